/* UDP relays, one engine for both daemons: a listener socket receives
 * datagrams from many sources; each source address and port is a flow with
 * a UDP socket of its own, connect()ed to the target, from which its
 * datagrams go out and on which the target's replies come back, to be sent
 * to the flow's source from the listener. The target tells flows apart by
 * the port of their socket: nothing is added to the datagrams. rps: the
 * listener is the public port, the target rpc's internal port; rpc: the
 * listener is on the tunnel address (only the server's datagrams are
 * taken), the target the local service.
 *
 * Datagrams pass whole or not at all: one larger than the context's
 * udp_max_datagram (the tunnel's MTU less the headers) is dropped and
 * counted, either way. A flow silent both ways for udp_timeout_s is closed;
 * so is one whose target answers with an ICMP port unreachable. New flows
 * are refused (the datagram dropped and counted) past the listener's share
 * of udp_max_flows, past the source's share of max_conns_per_source (one
 * address's TCP connections and UDP flows count together), and when the
 * context's share of fds is taken, so that the API keeps its reserve;
 * existing flows go on. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"
#include "wgrp/relay.h"

/* What a UDP listener has done; in: source to target, out: target to source. */
struct udp_stats {
	uint64_t flows_active;
	uint64_t flows_total;
	uint64_t datagrams_in, datagrams_out;
	uint64_t bytes_in, bytes_out;
	/* Datagrams dropped, by why. */
	uint64_t too_big;       /* larger than udp_max_datagram, either way */
	uint64_t flow_cap;      /* would open a flow past the listener's share */
	uint64_t source_cap;    /* past the source's share of max_conns_per_source */
	uint64_t no_fds;        /* the context's share of fds (or memory) is taken */
	uint64_t not_from_peer; /* not from only_from's address */
	uint64_t bad_header;    /* read_header: its PROXY header missing, malformed,
				 * or naming another visitor than the flow's */
	uint64_t send_failed;   /* the socket took it not (buffers full, an error) */
	/* Flows ended. */
	uint64_t flows_expired;       /* silent for udp_timeout_s */
	uint64_t flows_ended_by_icmp; /* the target's port unreachable */
	uint64_t flows_failed;        /* another error of their socket */
};

struct udp_listener;

/* A UDP socket bound to bind (port 0: any; the IPv6 any-address also takes
 * IPv4), non-blocking; with reuseport, more may bind the same address
 * (SO_REUSEPORT), the kernel hashing each source to one of them. *bound
 * gets the address with the port the kernel chose. Returns the fd, or a
 * negative errno with the reason in e. */
int udp_socket(const union sockaddr_inet *bind, bool reuseport, union sockaddr_inet *bound,
	       struct errbuf *e);
/* Relays the datagrams of fd, a socket from udp_socket(), to target, in
 * flows; the listener owns fd from then on, whatever the outcome. Returns 0
 * or a negative errno. */
int udp_adopt(struct udp_listener **out, struct relay_ctx *ctx, int fd,
	      const union sockaddr_inet *target);
/* What new flows tell their target of the visitor (see struct
 * relay_visitor; send_header is 0 or 2: v1 has no UDP); existing flows keep
 * what they had. rps (send_header alone): every datagram of a flow goes to
 * the target after a PROXY v2 header naming the flow's source and the
 * address it reached, so the largest payload taken is udp_max_datagram less
 * the header (28 bytes for IPv4, 52 for IPv6); larger ones are dropped as
 * too big. rpc (read_header): every datagram must start with such a header
 * (dropped as bad_header if not), taken off; the flow's visitor is its first
 * datagram's, and a later datagram naming another is dropped as bad_header;
 * with send_header each datagram goes to the target after a header of its
 * own naming the visitor, with transparent from the visitor's address and
 * port (a visitor not of the target's family: the flow is not opened, its
 * datagram dropped as send_failed). Replies pass unchanged. */
void udp_listener_set_visitor(struct udp_listener *lis, const struct relay_visitor *v);
/* New flows go to target; existing ones keep theirs. */
void udp_listener_set_target(struct udp_listener *lis, const union sockaddr_inet *target);
/* Takes datagrams only from peer's address (rpc: the server's tunnel
 * address); others are dropped, counted and logged. */
void udp_listener_only_from(struct udp_listener *lis, const struct ip_addr *peer);
/* As relay_listener_set_source_cap(): flows count with TCP connections. */
void udp_listener_set_source_cap(struct udp_listener *lis, uint32_t cap);
/* The address the listener is bound to, with the port the kernel chose. */
void udp_listener_address(const struct udp_listener *lis, union sockaddr_inet *out);
const struct udp_stats *udp_listener_stats(const struct udp_listener *lis);
/* Closes the listener and every flow at once; accepts NULL. */
void udp_listener_close(struct udp_listener *lis);
