/* Prometheus metrics (the text format, version 0.0.4) at GET /metrics, for
 * --metrics ADDR:PORT: served by an api_server on the daemon's main loop
 * (no thread of its own), within the API's limits and fds. On each scrape
 * the daemon fills a snapshot of its mappings and counters, this file adds
 * the peers (from the device) and the process's fds, and renders it all.
 * Counters live as long as what they count: a mapping removed takes its
 * series with it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/api_server.h"
#include "wgrp/conf.h"
#include "wgrp/key.h"
#include "wgrp/loop.h"
#include "wgrp/relay.h"
#include "wgrp/udp_relay.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Text being rendered. A family's HELP and TYPE lines come once, before
 * its first sample; its samples must follow one another (the format
 * wants each family in one block). On out of memory it stops growing and
 * says so in failed. */
struct metrics_text {
	char *buf;
	size_t len, cap;
	bool failed;
	char family[96]; /* the family being written */
};

struct metrics_label {
	const char *name;
	const char *value; /* escaped here: backslash, double quote, newline */
};

/* Starts family name (a counter's ends in _total), unless it is the one
 * being written. type: "counter" or "gauge". */
void metrics_text_family(struct metrics_text *t, const char *name, const char *type,
			 const char *help);
/* A sample of the family being written, with n labels. */
void metrics_text_sample(struct metrics_text *t, const struct metrics_label *labels, size_t n,
			 uint64_t value);
void metrics_text_free(struct metrics_text *t);

/* rps's counters, kept by the server as it answers. */
struct metrics_rps_counts {
	uint64_t created, replaced;   /* registrations that made or updated a mapping */
	struct api_counts refused;    /* registrations refused, by status ("POST") */
	uint64_t expired_clients;     /* silent past --heartbeat-timeout */
	uint64_t expired_mappings;    /* theirs */
	struct api_counts api;        /* every API request answered */
};

/* rpc's. */
struct metrics_rpc_counts {
	uint64_t heartbeats_sent, heartbeats_failed;
};

/* One mapping (rps) or route (rpc), with its listener's counters. */
struct metrics_mapping {
	uint16_t port; /* the public port */
	int protocol;  /* IPPROTO_TCP or IPPROTO_UDP */
	const struct conf_peer *peer; /* rps: the client's [Peer]; NULL: none known */
	/* rpc: the route's state and registrations */
	uint64_t registered; /* 1 or 0 */
	uint64_t registration_attempts, registration_refusals;
	struct relay_stats tcp; /* IPPROTO_TCP */
	struct udp_stats udp;   /* IPPROTO_UDP */
};

/* A WireGuard peer as the device reports it. */
struct metrics_peer {
	uint8_t public_key[WG_KEY_LEN];
	const char *name; /* from the config; NULL: none */
	int64_t last_handshake; /* Unix seconds; 0: never */
	uint64_t rx_bytes, tx_bytes;
};

struct metrics_snapshot {
	const struct conf *conf; /* the daemon's now: its peers' names */
	struct metrics_mapping *maps; /* malloc'd */
	size_t n_maps;
	struct metrics_peer *peers; /* malloc'd */
	size_t n_peers;
	const struct metrics_rps_counts *rps; /* the one of these the daemon has */
	const struct metrics_rpc_counts *rpc;
	uint64_t open_fds, max_fds; /* max_fds 0: no limit */
	struct relay_ctx_stats relays;
};

/* Renders s into t. */
void metrics_render(const struct metrics_snapshot *s, struct metrics_text *t);

/* Fills s->conf, s->maps, s->n_maps and s's counters. Returns 0 or
 * -ENOMEM. */
typedef int metrics_collect_fn(void *data, struct metrics_snapshot *s);

struct device;
struct relay_pool;

/* What a daemon's metrics come from. */
struct metrics_source {
	struct device *dev;
	const struct conf *conf; /* at start, for its addresses; scrapes take s->conf */
	struct relay_pool *relays;
	metrics_collect_fn *collect;
	void *data;
};

/* Whether serving metrics on addr tells nobody outside this host and the
 * tunnel: a loopback address or one of c's Addresses. */
bool metrics_addr_private(const struct ip_addr *addr, const struct conf *c);

struct metrics_server;

/* Serves /metrics on addr for src's daemon, logging where (and a warning
 * when addr is not private) or why not. Its connections count in limits
 * (rps: the API's); NULL: limits of its own, the API's numbers within the
 * relays' reserve of fds. Returns 0 or a negative errno. */
int metrics_start(struct metrics_server **out, struct loop *l, const union sockaddr_inet *addr,
		  const struct metrics_source *src, struct api_limits *limits);
/* Accepts NULL. */
void metrics_free(struct metrics_server *m);
