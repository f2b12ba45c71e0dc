#include <errno.h>
#include <stdlib.h>

#include "wgrp/ratelimit.h"

bool ratelimit_allow(struct ratelimit *r, uint64_t now, unsigned *suppressed)
{
	if (!r->started || now - r->begin >= r->interval_ms) {
		r->started = true;
		r->begin = now;
		r->n = 0;
	}
	if (r->n >= r->burst) {
		r->suppressed++;
		return false;
	}
	r->n++;
	*suppressed = r->suppressed;
	r->suppressed = 0;
	return true;
}

struct table_entry {
	struct ip_addr client;
	uint64_t last; /* when it was last seen */
	struct ratelimit limit;
};

struct ratelimit_table {
	struct ratelimit model;
	size_t n, max;
	struct table_entry entries[];
};

int ratelimit_table_new(struct ratelimit_table **out, size_t max_clients, uint64_t interval_ms,
			unsigned burst)
{
	struct ratelimit_table *t = calloc(1, sizeof(*t) + max_clients * sizeof(t->entries[0]));

	*out = t;
	if (!t)
		return -ENOMEM;
	t->model = (struct ratelimit)RATELIMIT_INIT(interval_ms, burst);
	t->max = max_clients;
	return 0;
}

void ratelimit_table_free(struct ratelimit_table *t)
{
	free(t);
}

/* The client's entry, or a new one in a free slot or the quietest's. */
static struct table_entry *entry_of(struct ratelimit_table *t, const struct ip_addr *client)
{
	struct table_entry *quietest = NULL;

	for (size_t i = 0; i < t->n; i++) {
		if (ip_addr_equal(&t->entries[i].client, client))
			return &t->entries[i];
		if (!quietest || t->entries[i].last < quietest->last)
			quietest = &t->entries[i];
	}
	if (t->n < t->max)
		quietest = &t->entries[t->n++];
	*quietest = (struct table_entry){ .client = *client, .limit = t->model };
	return quietest;
}

bool ratelimit_table_allow(struct ratelimit_table *t, const struct ip_addr *client, uint64_t now,
			   unsigned *suppressed)
{
	struct table_entry *e = entry_of(t, client);

	e->last = now;
	return ratelimit_allow(&e->limit, now, suppressed);
}
