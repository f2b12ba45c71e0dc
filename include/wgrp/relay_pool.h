/* Relay workers: N threads, each with its own event loop and relay context
 * (connections, pipe pool, counts per source, its share of the fds), so that
 * relaying uses every core while nothing on the data path is shared or
 * locked. Each mapping listens with one socket per worker on the same port
 * (SO_REUSEPORT): the kernel spreads new connections over them, and a
 * connection stays on the worker that accepted it.
 *
 * The calls below are the main loop's: each is a message to the workers
 * (a pointer through a pipe), answered before it returns, so that when one
 * returns every worker has done it (a closed listener's connections are
 * reset on every worker). */
#pragma once

#include "wgrp/addr.h"
#include "wgrp/diag.h"
#include "wgrp/relay.h"
#include "wgrp/udp_relay.h"

struct relay_pool;
struct relay_pool_listener;
struct relay_pool_udp;

/* Starts cfg->workers workers (0: one per online CPU), each with a context
 * made from cfg. Returns 0 or a negative errno. */
int relay_pool_new(struct relay_pool **out, const struct relay_config *cfg);
unsigned relay_pool_workers(const struct relay_pool *p);
/* The fds the relays leave to the rest of the daemon (relay_ctx_fd_reserve()). */
size_t relay_pool_fd_reserve(const struct relay_pool *p);
/* What the workers' contexts hold, summed over them now. */
void relay_pool_ctx_stats(struct relay_pool *p, struct relay_ctx_stats *sum);
/* Stops the workers and frees p; its listeners must be closed first. */
void relay_pool_free(struct relay_pool *p);

/* Listens on bind (port 0: any, the same for every worker) and relays each
 * connection to target, telling it of the visitor as visitor says (NULL: a
 * plain relay); with only_from, only that peer's connections (others are
 * reset and logged). Returns 0 with *out set, or a negative errno with the
 * reason in e. */
int relay_pool_listen(struct relay_pool_listener **out, struct relay_pool *p,
		      const union sockaddr_inet *bind, const union sockaddr_inet *target,
		      const struct ip_addr *only_from, const struct relay_visitor *visitor,
		      struct errbuf *e);
/* New connections go to target, told of the visitor as visitor says (NULL:
 * nothing); those in progress keep what they had. */
void relay_pool_set_target(struct relay_pool_listener *pl, const union sockaddr_inet *target,
			   const struct relay_visitor *visitor);
/* New connections (flows: relay_pool_udp_set_source_cap()) count against
 * cap per source, the mapping's peer's own MaxConnsPerSource (0: the pool's
 * --max-conns-per-source). */
void relay_pool_set_source_cap(struct relay_pool_listener *pl, uint32_t cap);
void relay_pool_udp_set_source_cap(struct relay_pool_udp *pu, uint32_t cap);
/* The address listened on, with the port the kernel chose. */
void relay_pool_address(const struct relay_pool_listener *pl, union sockaddr_inet *out);
/* The listener's counters, summed over the workers now. */
const struct relay_stats *relay_pool_stats(struct relay_pool_listener *pl);
/* Stops listening and resets every connection in progress, on every
 * worker, before it returns; accepts NULL. */
void relay_pool_close(struct relay_pool_listener *pl);

/* UDP: listens on bind (port 0: any, the same for every worker) with one
 * socket per worker (SO_REUSEPORT: the kernel hashes each source address
 * and port to one, so a flow stays on one worker), relaying each source's
 * flow to target, telling it of the visitor as visitor says (NULL: a plain
 * relay; see udp_listener_set_visitor()); with only_from, only that peer's
 * datagrams (others are dropped, counted and logged). Returns 0 with *out
 * set, or a negative errno with the reason in e. */
int relay_pool_listen_udp(struct relay_pool_udp **out, struct relay_pool *p,
			  const union sockaddr_inet *bind, const union sockaddr_inet *target,
			  const struct ip_addr *only_from, const struct relay_visitor *visitor,
			  struct errbuf *e);
/* New flows go to target, told of the visitor as visitor says (NULL:
 * nothing); existing ones keep theirs. */
void relay_pool_udp_set_target(struct relay_pool_udp *pu, const union sockaddr_inet *target,
			       const struct relay_visitor *visitor);
/* The address bound, with the port the kernel chose. */
void relay_pool_udp_address(const struct relay_pool_udp *pu, union sockaddr_inet *out);
/* The listener's counters, summed over the workers now. */
const struct udp_stats *relay_pool_udp_stats(struct relay_pool_udp *pu);
/* Closes the listener and every flow, on every worker, before it returns;
 * accepts NULL. */
void relay_pool_udp_close(struct relay_pool_udp *pu);
