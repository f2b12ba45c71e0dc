/* Rate limits for log lines that an outsider or a misbehaving peer can
 * repeat at will: at most a burst of lines per interval, for each key (a
 * client, a mapping), with a count of what was held back for the next line
 * let through. Times are the caller's monotonic milliseconds (the loop's
 * clock), so that tests choose them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgrp/addr.h"

/* The daemons' policy for a repeated warning about one client or mapping:
 * the first few are logged, then one now and then. */
#define RATELIMIT_WARNING_INTERVAL_MS (5 * 60 * 1000)
#define RATELIMIT_WARNING_BURST 3

struct ratelimit {
	uint64_t interval_ms;
	unsigned burst;
	bool started;
	uint64_t begin;      /* of the current interval */
	unsigned n;          /* lines let through in it */
	unsigned suppressed; /* held back since the last one let through */
};

#define RATELIMIT_INIT(interval, max) { .interval_ms = (interval), .burst = (max) }

/* Counts an event at now. Returns true when its line may be logged, with
 * *suppressed set to how many were held back before it (for the line to say
 * so); false when it is to be held back. */
bool ratelimit_allow(struct ratelimit *r, uint64_t now, unsigned *suppressed);

/* One rate limit per client address, for at most max_clients of them: when
 * more are seen, the one quiet the longest is forgotten (and starts afresh
 * when seen again), so that many addresses can cost no more than max_clients
 * entries, nor silence anyone else's lines. */
struct ratelimit_table;

/* Returns 0 with *out set, or -ENOMEM. */
int ratelimit_table_new(struct ratelimit_table **out, size_t max_clients, uint64_t interval_ms,
			unsigned burst);
/* Accepts NULL. */
void ratelimit_table_free(struct ratelimit_table *t);
/* ratelimit_allow() with client's own limit. */
bool ratelimit_table_allow(struct ratelimit_table *t, const struct ip_addr *client, uint64_t now,
			   unsigned *suppressed);
