/* What the UDP engine (udp_relay.c) shares with the TCP relays of its
 * context (relay.c): the loop, the count per source, the share of fds, the
 * rate limit of warnings, and the UDP settings of the relay_config. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgrp/relay.h"
#include "wgrp/source_count.h"

/* The UDP settings of a context, defaults applied; max_flows is this
 * context's share. */
struct relay_udp_limits {
	uint64_t timeout_ms;
	size_t max_flows;
	size_t max_datagram;
};

struct loop *relay_ctx_loop(const struct relay_ctx *ctx);
const struct relay_udp_limits *relay_ctx_udp(const struct relay_ctx *ctx);
/* The count of connections per source (NULL: no cap), which UDP flows
 * join: one address's TCP connections and UDP flows count together. */
struct source_count *relay_ctx_sources(const struct relay_ctx *ctx);
/* This context's share of cap, a daemon-wide count per source (0: the
 * context's --max-conns-per-source), as source_count_take() wants it. */
uint32_t relay_ctx_source_share(const struct relay_ctx *ctx, uint32_t cap);
/* What set the cap a listener applies, for messages: its peer's own
 * MaxConnsPerSource (cap != 0) or the option. */
const char *relay_source_cap_name(uint32_t cap);
/* True when n more fds fit in the context's share (idle pipes are closed
 * to make room if need be): the reserve stays the API's. */
bool relay_ctx_room_for(struct relay_ctx *ctx, size_t n);
/* Counts n sockets more (n < 0: fewer) held by the context's listeners. */
void relay_ctx_count_sockets(struct relay_ctx *ctx, int n);
/* Rate limit for warnings: true at most once every 10 s per *last. */
bool relay_ctx_warning_due(struct relay_ctx *ctx, uint64_t *last);
/* A socket of type (SOCK_STREAM: listening, SOCK_DGRAM) bound to bind, as
 * relay_socket() and udp_socket() make them. */
int relay_bind_socket(const union sockaddr_inet *bind, int type, bool reuseport,
		      union sockaddr_inet *bound, struct errbuf *e);
/* The address a peer came from; IPv4 as itself, not IPv4-mapped as a
 * dual-stack socket sees it. */
struct ip_addr relay_source_of(const union sockaddr_inet *from);
