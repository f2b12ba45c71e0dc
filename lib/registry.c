#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "wgrp/registry.h"

/* The protocols, as slots of the tables below. */
enum {
	SLOT_TCP,
	SLOT_UDP,
	N_SLOTS,
};

struct client {
	struct ip_addr addr;
	uint64_t last_seen;
	size_t n_mappings[N_SLOTS];
};

struct peer {
	size_t mappings;
	struct port_set *allowed; /* its own; NULL: the policy's */
	size_t max_mappings;
};

struct registry {
	struct registry_policy policy;
	struct registry_mapping *by_port[N_SLOTS][65536];
	struct client *clients; /* sorted by address, for bsearch */
	size_t n_clients;
	struct peer *peers; /* policy.n_peers */
};

static void peers_free(struct peer *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].allowed);
	free(v);
}

/* The peers of policy (n_peers of them, at least one), with no mappings. */
static struct peer *peers_new(const struct registry_policy *policy, size_t n_peers)
{
	struct peer *v = calloc(n_peers, sizeof(*v));

	for (size_t i = 0; v && i < n_peers; i++) {
		const struct registry_peer_policy *own = policy->peers ? &policy->peers[i] : NULL;

		v[i].max_mappings = own && own->max_mappings ? own->max_mappings
							     : policy->max_per_client;
		if (!own || !own->allowed)
			continue;
		v[i].allowed = malloc(sizeof(*v[i].allowed));
		if (!v[i].allowed) {
			peers_free(v, n_peers);
			return NULL;
		}
		*v[i].allowed = *own->allowed;
	}
	return v;
}

int registry_new(struct registry **out, const struct registry_policy *policy)
{
	struct registry *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->policy = *policy;
	r->policy.peers = NULL;
	if (!r->policy.n_peers)
		r->policy.n_peers = 1;
	r->peers = peers_new(policy, r->policy.n_peers);
	if (!r->peers) {
		free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

static size_t slot_of(int protocol)
{
	return protocol == IPPROTO_UDP ? SLOT_UDP : SLOT_TCP;
}

static size_t mappings_of(const struct client *c)
{
	return c->n_mappings[SLOT_TCP] + c->n_mappings[SLOT_UDP];
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	for (size_t k = 0; k < N_SLOTS; k++)
		for (size_t p = 0; p < 65536; p++)
			free(r->by_port[k][p]);
	free(r->clients);
	peers_free(r->peers, r->policy.n_peers);
	free(r);
}

static int addr_cmp(const struct ip_addr *a, const struct ip_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return a->family == AF_INET ? memcmp(&a->v4, &b->v4, sizeof(a->v4))
				    : memcmp(&a->v6, &b->v6, sizeof(a->v6));
}

/* Where addr is in v, sorted, or where it would go: *found says. */
static size_t client_index(const struct client *v, size_t n, const struct ip_addr *addr,
			   bool *found)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = addr_cmp(&v[mid].addr, addr);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static struct client *find_client(const struct registry *r, const struct ip_addr *addr)
{
	bool found;
	size_t i = client_index(r->clients, r->n_clients, addr, &found);

	return found ? &r->clients[i] : NULL;
}

static struct client *get_client(struct registry *r, const struct ip_addr *addr)
{
	bool found;
	size_t i = client_index(r->clients, r->n_clients, addr, &found);

	if (found)
		return &r->clients[i];
	if (array_reserve(&r->clients, r->n_clients, sizeof(*r->clients)) < 0)
		return NULL;
	memmove(&r->clients[i + 1], &r->clients[i], (r->n_clients - i) * sizeof(*r->clients));
	r->n_clients++;
	r->clients[i] = (struct client){ .addr = *addr };
	return &r->clients[i];
}

static size_t peer_of(const struct registry *r, size_t peer)
{
	return peer < r->policy.n_peers ? peer : r->policy.n_peers - 1;
}

static bool reserved(const struct registry_policy *p, int protocol, uint16_t port)
{
	if (protocol == IPPROTO_UDP)
		return port == p->reserved_udp;
	return port == p->reserved_tcp[0] || port == p->reserved_tcp[1];
}

enum registry_verdict registry_check(const struct registry *r, const struct ip_addr *client,
				     size_t peer, int protocol, uint16_t port, struct errbuf *e)
{
	const struct registry_mapping *m = r->by_port[slot_of(protocol)][port];
	const struct peer *p = &r->peers[peer_of(r, peer)];
	size_t held = p->mappings;
	char label[PORT_LABEL_LEN];

	port_label(label, port, protocol);
	if (m && !ip_addr_equal(&m->client, client)) {
		errbuf_set(e, 0, "port %s is already mapped by another client", label);
		return REGISTRY_TAKEN;
	}
	if (m)
		return REGISTRY_REPLACE;
	if (reserved(&r->policy, protocol, port)) {
		errbuf_set(e, 0, "port %s is used by the server itself and cannot be mapped", label);
		return REGISTRY_FORBIDDEN;
	}
	if (p->allowed && !port_set_has(p->allowed, port)) {
		errbuf_set(e, 0, "port %s is not allowed for this client (its AllowPorts)", label);
		return REGISTRY_FORBIDDEN;
	}
	if (!p->allowed && !port_set_has(&r->policy.allowed, port)) {
		errbuf_set(e, 0, "port %s is not allowed on this server (see --allow-ports)", label);
		return REGISTRY_FORBIDDEN;
	}
	if (held >= p->max_mappings) {
		errbuf_set(e, 0, "this client already holds %zu mappings, the most allowed", held);
		return REGISTRY_FORBIDDEN;
	}
	return REGISTRY_NEW;
}

int registry_put(struct registry *r, const struct registry_mapping *m)
{
	size_t k = slot_of(m->protocol);
	struct registry_mapping *slot = r->by_port[k][m->remote_port];
	struct client *c;

	if (slot) {
		*slot = *m;
		slot->peer = peer_of(r, m->peer);
		return 0;
	}
	c = get_client(r, &m->client);
	slot = malloc(sizeof(*slot));
	if (!c || !slot) {
		free(slot);
		return -ENOMEM;
	}
	*slot = *m;
	slot->peer = peer_of(r, m->peer);
	r->by_port[k][m->remote_port] = slot;
	c->n_mappings[k]++;
	r->peers[slot->peer].mappings++;
	return 0;
}

struct registry_mapping *registry_get(struct registry *r, int protocol, uint16_t port)
{
	return r->by_port[slot_of(protocol)][port];
}

struct registry_mapping *registry_next(struct registry *r, int protocol, uint32_t from)
{
	struct registry_mapping **by_port = r->by_port[slot_of(protocol)];

	for (uint32_t p = from; p < 65536; p++)
		if (by_port[p])
			return by_port[p];
	return NULL;
}

/* Forgets the mapping at port of slot k but for its peer's count; c is its
 * client's entry, if known. */
static void unlink_mapping(struct registry *r, size_t k, uint16_t port, struct client *c)
{
	if (c)
		c->n_mappings[k]--;
	free(r->by_port[k][port]);
	r->by_port[k][port] = NULL;
}

static void forget_mapping(struct registry *r, size_t k, uint16_t port, struct client *c)
{
	r->peers[r->by_port[k][port]->peer].mappings--;
	unlink_mapping(r, k, port, c);
}

void registry_remove(struct registry *r, int protocol, uint16_t port)
{
	size_t k = slot_of(protocol);

	if (r->by_port[k][port])
		forget_mapping(r, k, port, find_client(r, &r->by_port[k][port]->client));
}

/* Whether peer p may map port (the reserved ports aside). */
static bool allowed(const struct registry *r, const struct peer *p, uint16_t port)
{
	return port_set_has(p->allowed ? p->allowed : &r->policy.allowed, port);
}

int registry_set_policy(struct registry *r, const struct registry_policy *policy,
			const struct registry_repeer *cb, void *data)
{
	size_t n_peers = policy->n_peers ? policy->n_peers : 1, dropped = 0;
	struct peer *peers = peers_new(policy, n_peers);

	if (!peers)
		return -ENOMEM;
	peers_free(r->peers, r->policy.n_peers);
	r->peers = peers;
	r->policy = *policy;
	r->policy.peers = NULL;
	r->policy.n_peers = n_peers;
	for (size_t k = 0; k < N_SLOTS; k++)
		for (uint32_t p = 1; p < 65536; p++) {
			struct registry_mapping *m = r->by_port[k][p];
			size_t peer;

			if (!m)
				continue;
			peer = cb->peer_of(data, m);
			if (peer == REGISTRY_NO_PEER || !allowed(r, &peers[peer_of(r, peer)], (uint16_t)p)) {
				cb->dropped(data, m);
				unlink_mapping(r, k, (uint16_t)p, find_client(r, &m->client));
				dropped++;
				continue;
			}
			m->peer = peer_of(r, peer);
			peers[m->peer].mappings++;
		}
	return (int)dropped;
}

size_t registry_ports_of(const struct registry *r, const struct ip_addr *client, int protocol,
			 uint16_t *ports, size_t max)
{
	const struct client *c = find_client(r, client);
	size_t n = 0, k = slot_of(protocol);

	if (!c)
		return 0;
	for (size_t p = 1; p < 65536 && n < c->n_mappings[k]; p++) {
		const struct registry_mapping *m = r->by_port[k][p];

		if (m && ip_addr_equal(&m->client, client)) {
			if (n < max)
				ports[n] = (uint16_t)p;
			n++;
		}
	}
	return n;
}

size_t registry_count(const struct registry *r, size_t *clients)
{
	size_t n = 0;

	*clients = 0;
	for (size_t i = 0; i < r->n_clients; i++) {
		n += mappings_of(&r->clients[i]);
		*clients += mappings_of(&r->clients[i]) > 0;
	}
	return n;
}

int registry_seen(struct registry *r, const struct ip_addr *client, uint64_t now)
{
	struct client *c = get_client(r, client);

	if (!c)
		return -ENOMEM;
	c->last_seen = now;
	return 0;
}

int registry_expire(struct registry *r, uint64_t now, uint64_t timeout,
		    const struct registry_expiry *cb, void *data)
{
	struct client *stale = NULL;
	size_t n_stale = 0, kept = 0, holding = 0;

	for (size_t i = 0; i < r->n_clients; i++) {
		if (now - r->clients[i].last_seen < timeout)
			continue;
		if (array_reserve(&stale, n_stale, sizeof(*stale)) < 0) {
			free(stale);
			return -ENOMEM;
		}
		stale[n_stale++] = r->clients[i];
	}
	if (!n_stale)
		return 0;
	/* Both lists stay sorted: the stale ones can be searched below. */
	for (size_t i = 0; i < r->n_clients; i++)
		if (now - r->clients[i].last_seen < timeout)
			r->clients[kept++] = r->clients[i];
	r->n_clients = kept;
	for (size_t i = 0; i < n_stale; i++)
		holding += mappings_of(&stale[i]);
	for (size_t k = 0; k < N_SLOTS; k++)
		for (uint32_t p = 1; p < 65536 && holding; p++) {
			struct registry_mapping *m = r->by_port[k][p];
			bool found = false;

			if (m)
				client_index(stale, n_stale, &m->client, &found);
			if (!found)
				continue;
			cb->mapping(data, m);
			forget_mapping(r, k, (uint16_t)p, NULL);
			holding--;
		}
	for (size_t i = 0; i < n_stale; i++)
		cb->client(data, &stale[i].addr, mappings_of(&stale[i]));
	free(stale);
	return (int)n_stale;
}
