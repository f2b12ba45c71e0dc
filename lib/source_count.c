#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hash.h"
#include "wgrp/source_count.h"

#define FIRST_BUCKETS 64

struct entry {
	struct in6_addr key; /* IPv4 as IPv4-mapped */
	uint32_t count;
	struct entry *next;
};

struct source_count {
	uint64_t seed;
	struct entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t n;
};

int source_count_new(struct source_count **out)
{
	struct source_count *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->buckets = calloc(FIRST_BUCKETS, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return -ENOMEM;
	}
	t->n_buckets = FIRST_BUCKETS;
	/* Without a random seed the table still works; only predictably. */
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t;
	*out = t;
	return 0;
}

void source_count_free(struct source_count *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_buckets; i++)
		while (t->buckets[i]) {
			struct entry *e = t->buckets[i];

			t->buckets[i] = e->next;
			free(e);
		}
	free(t->buckets);
	free(t);
}

static struct in6_addr key_of(const struct ip_addr *a)
{
	struct in6_addr k = { 0 };

	if (a->family == AF_INET) {
		k.s6_addr[10] = k.s6_addr[11] = 0xff;
		memcpy(&k.s6_addr[12], &a->v4, 4);
	} else {
		k = a->v6;
	}
	return k;
}

static size_t bucket_of(const struct source_count *t, const struct in6_addr *k)
{
	uint64_t w[2];

	memcpy(w, k, sizeof(w));
	return (size_t)(hash_mix(hash_mix(t->seed ^ w[0]) ^ w[1]) & (t->n_buckets - 1));
}

static struct entry **find(const struct source_count *t, const struct in6_addr *k)
{
	struct entry **p = &t->buckets[bucket_of(t, k)];

	while (*p && memcmp(&(*p)->key, k, sizeof(*k)))
		p = &(*p)->next;
	return p;
}

/* Doubles the buckets; on failure the table stays as it is, only slower. */
static void grow(struct source_count *t)
{
	size_t old_n = t->n_buckets;
	struct entry **old = t->buckets, **b = calloc(old_n * 2, sizeof(*b));

	if (!b)
		return;
	t->buckets = b;
	t->n_buckets = old_n * 2;
	for (size_t i = 0; i < old_n; i++)
		while (old[i]) {
			struct entry *e = old[i], **slot;

			old[i] = e->next;
			slot = &t->buckets[bucket_of(t, &e->key)];
			e->next = *slot;
			*slot = e;
		}
	free(old);
}

int source_count_take(struct source_count *t, const struct ip_addr *a, uint32_t max)
{
	struct in6_addr k = key_of(a);
	struct entry **p = find(t, &k), *e = *p;

	if (e) {
		if (e->count >= max)
			return -EBUSY;
		e->count++;
		return 0;
	}
	if (!max)
		return -EBUSY;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->key = k;
	e->count = 1;
	*p = e;
	if (++t->n > t->n_buckets)
		grow(t);
	return 0;
}

void source_count_release(struct source_count *t, const struct ip_addr *a)
{
	struct in6_addr k = key_of(a);
	struct entry **p = find(t, &k), *e = *p;

	if (!e || --e->count)
		return;
	*p = e->next;
	free(e);
	t->n--;
}

uint32_t source_count_of(const struct source_count *t, const struct ip_addr *a)
{
	struct in6_addr k = key_of(a);
	struct entry *e = *find(t, &k);

	return e ? e->count : 0;
}

size_t source_count_sources(const struct source_count *t)
{
	return t->n;
}
