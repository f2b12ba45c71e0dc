/* Connections counted per source address, so that one outside host cannot
 * hold every connection slot: a hash table of the sources that have
 * connections now, keyed with a random seed (an outsider choosing addresses
 * cannot aim them at one bucket). An IPv4 address and its IPv4-mapped IPv6
 * form are one source. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "wgrp/addr.h"

struct source_count;

/* Returns 0 or -ENOMEM. */
int source_count_new(struct source_count **out);
/* Accepts NULL. */
void source_count_free(struct source_count *t);

/* Counts one more connection from a. Returns 0; -EBUSY when a already has
 * max (nothing counted); -ENOMEM. The caller says max each time: it may
 * differ by what a connects to (a peer's own MaxConnsPerSource). */
int source_count_take(struct source_count *t, const struct ip_addr *a, uint32_t max);
/* Counts one connection from a less; it must have been taken. */
void source_count_release(struct source_count *t, const struct ip_addr *a);

/* Connections counted now from a, and the number of sources with any. */
uint32_t source_count_of(const struct source_count *t, const struct ip_addr *a);
size_t source_count_sources(const struct source_count *t);
