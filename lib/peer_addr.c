#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wgrp/peer_addr.h"

static size_t n_bytes(int family)
{
	return family == AF_INET ? 4 : 16;
}

static uint8_t *bytes_of(struct ip_addr *a)
{
	return a->family == AF_INET ? (uint8_t *)&a->v4 : (uint8_t *)&a->v6;
}

static int addr_cmp(const struct ip_addr *a, const struct ip_addr *b)
{
	const void *x = a->family == AF_INET ? (const void *)&a->v4 : (const void *)&a->v6;
	const void *y = b->family == AF_INET ? (const void *)&b->v4 : (const void *)&b->v6;

	return memcmp(x, y, n_bytes(a->family));
}

/* The last address of p: every host bit set. */
static struct ip_addr last_of(const struct ip_prefix *p)
{
	struct ip_addr a = ip_prefix_masked(p).addr;
	uint8_t *b = bytes_of(&a);

	for (size_t i = 0; i < n_bytes(a.family); i++) {
		unsigned keep = p->cidr > i * 8 ? p->cidr - (unsigned)i * 8 : 0;

		if (keep < 8)
			b[i] |= (uint8_t)(0xffu >> keep);
	}
	return a;
}

/* Adds one; false when a was the family's last address. */
static bool next_addr(struct ip_addr *a)
{
	uint8_t *b = bytes_of(a);

	for (size_t i = n_bytes(a->family); i-- > 0;)
		if (++b[i] != 0)
			return true;
	return false;
}

bool peer_addr_subnet(const struct ip_prefix *p)
{
	return p->cidr < n_bytes(p->addr.family) * 8;
}

/* The addresses of net a client may have: *first to *last. IPv4 subnets of 4
 * or more lose their network and broadcast addresses, IPv6 ones of 4 or more
 * the subnet-router anycast. */
static void hosts_of(const struct ip_prefix *net, struct ip_addr *first, struct ip_addr *last)
{
	unsigned bits = (unsigned)n_bytes(net->addr.family) * 8;

	*first = ip_prefix_masked(net).addr;
	*last = last_of(net);
	if (net->cidr + 2u <= bits) {
		bytes_of(first)[n_bytes(first->family) - 1] |= 1;
		if (net->addr.family == AF_INET)
			bytes_of(last)[3] &= (uint8_t)~1u;
	}
}

/* Whether a is the server's or in a peer's AllowedIPs: then *until is the
 * last address of what holds it, and *peer the peer (c->n_peers: the server). */
static bool taken(const struct conf *c, const struct ip_addr *a, struct ip_addr *until,
		  size_t *peer)
{
	for (size_t i = 0; i < c->n_addresses; i++)
		if (ip_addr_equal(&c->addresses[i].addr, a)) {
			*until = *a;
			*peer = c->n_peers;
			return true;
		}
	for (size_t i = 0; i < c->n_peers; i++)
		for (size_t j = 0; j < c->peers[i].n_allowed_ips; j++)
			if (ip_prefix_contains(&c->peers[i].allowed_ips[j], a)) {
				*until = last_of(&c->peers[i].allowed_ips[j]);
				*peer = i;
				return true;
			}
	return false;
}

/* The lowest free address of net in *out. Each step passes one prefix or
 * server address that holds the candidate, so the walk ends after at most
 * that many steps, whatever the subnet's size. */
static int lowest_free(const struct conf *c, const struct ip_prefix *net, struct ip_addr *out,
		       struct errbuf *e)
{
	struct ip_addr cand, last, until;
	char q[ADDR_PREFIX_STRLEN];
	size_t peer;

	hosts_of(net, &cand, &last);
	while (addr_cmp(&cand, &last) <= 0) {
		if (!taken(c, &cand, &until, &peer)) {
			*out = cand;
			return 0;
		}
		if (addr_cmp(&until, &last) >= 0 || !next_addr(&until))
			break;
		cand = until;
	}
	ip_prefix_format(net, q, sizeof(q));
	return errbuf_set(e, -ENOSPC,
			  "no free address left in %s: every one is the server's or a peer's "
			  "(give a larger subnet in the server's Address, or remove a client)",
			  q);
}

/* Checks that a, wanted inside net, may be a client's. */
static int check_wanted(const struct conf *c, const struct ip_prefix *net,
			const struct ip_addr *a, struct errbuf *e)
{
	char s[INET6_ADDRSTRLEN], n[ADDR_PREFIX_STRLEN];
	struct ip_addr first, last, until;
	size_t peer;

	ip_addr_format(a, s, sizeof(s));
	ip_prefix_format(net, n, sizeof(n));
	hosts_of(net, &first, &last);
	if (addr_cmp(a, &first) < 0)
		return errbuf_set(e, -EINVAL, "%s is the %s address of %s, not a host's", s,
				  a->family == AF_INET ? "network" : "subnet-router anycast", n);
	if (addr_cmp(a, &last) > 0)
		return errbuf_set(e, -EINVAL, "%s is the broadcast address of %s, not a host's", s,
				  n);
	if (!taken(c, a, &until, &peer))
		return 0;
	if (peer == c->n_peers)
		return errbuf_set(e, -EINVAL, "%s is the server's own address", s);
	return errbuf_set(e, -EINVAL, "%s is taken: it is in the AllowedIPs of the [Peer] at line %u",
			  s, c->peers[peer].line);
}

int peer_addr_pick(const struct conf *c, const struct ip_addr *wanted, size_t n_wanted,
		   struct ip_addr *out, size_t *n_out, struct errbuf *e)
{
	char s[INET6_ADDRSTRLEN];
	size_t n = 0;
	int r;

	for (size_t w = 0; w < n_wanted; w++) {
		size_t in = c->n_addresses;

		for (size_t i = 0; i < c->n_addresses; i++)
			if (peer_addr_subnet(&c->addresses[i]) &&
			    ip_prefix_contains(&c->addresses[i], &wanted[w]))
				in = i;
		ip_addr_format(&wanted[w], s, sizeof(s));
		if (in == c->n_addresses)
			return errbuf_set(e, -EINVAL,
					  "%s is in none of the server's subnets (its Address)", s);
		for (size_t v = 0; v < w; v++)
			if (ip_prefix_contains(&c->addresses[in], &wanted[v]))
				return errbuf_set(e, -EINVAL, "%s: a second address in one subnet",
						  s);
	}
	for (size_t i = 0; i < c->n_addresses; i++) {
		const struct ip_prefix *net = &c->addresses[i];
		size_t w = 0;

		if (!peer_addr_subnet(net))
			continue;
		while (w < n_wanted && !ip_prefix_contains(net, &wanted[w]))
			w++;
		r = w < n_wanted ? check_wanted(c, net, &wanted[w], e) : lowest_free(c, net, &out[n], e);
		if (r < 0)
			return r;
		if (w < n_wanted)
			out[n] = wanted[w];
		n++;
	}
	if (n == 0)
		return errbuf_set(e, -ENOSPC,
				  "the server's Address has no subnet to give clients addresses in "
				  "(only single-host prefixes such as /32): write it as, e.g., "
				  "10.0.0.1/24");
	*n_out = n;
	return 0;
}
