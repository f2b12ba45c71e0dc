/* Hashing for the tables keyed by addresses an outsider chooses
 * (source_count.c, udp_relay.c): each table mixes a random seed in. */
#pragma once

#include <stdint.h>

/* MurmurHash3's finalizer: every input bit moves every output bit. */
static inline uint64_t hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}
