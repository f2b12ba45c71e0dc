#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "wgrp/registry.h"

struct client {
	struct ip_addr addr;
	uint64_t last_seen;
	size_t n_mappings;
};

struct registry {
	struct registry_policy policy;
	struct registry_mapping *by_port[65536];
	struct client *clients;
	size_t n_clients;
};

int registry_new(struct registry **out, const struct registry_policy *policy)
{
	struct registry *r = calloc(1, sizeof(*r));

	*out = r;
	if (!r)
		return -ENOMEM;
	r->policy = *policy;
	return 0;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	for (size_t p = 0; p < 65536; p++)
		free(r->by_port[p]);
	free(r->clients);
	free(r);
}

static struct client *find_client(const struct registry *r, const struct ip_addr *addr)
{
	for (size_t i = 0; i < r->n_clients; i++)
		if (ip_addr_equal(&r->clients[i].addr, addr))
			return &r->clients[i];
	return NULL;
}

static struct client *get_client(struct registry *r, const struct ip_addr *addr)
{
	struct client *c = find_client(r, addr);

	if (c)
		return c;
	if (array_reserve(&r->clients, r->n_clients, sizeof(*r->clients)) < 0)
		return NULL;
	c = &r->clients[r->n_clients++];
	*c = (struct client){ .addr = *addr };
	return c;
}

enum registry_verdict registry_check(const struct registry *r, const struct ip_addr *client,
				     uint16_t port, struct errbuf *e)
{
	const struct registry_mapping *m = r->by_port[port];
	const struct client *c = find_client(r, client);

	if (m && !ip_addr_equal(&m->client, client)) {
		errbuf_set(e, 0, "port %u is already mapped by another client", port);
		return REGISTRY_TAKEN;
	}
	if (m)
		return REGISTRY_REPLACE;
	if (port == r->policy.reserved[0] || port == r->policy.reserved[1]) {
		errbuf_set(e, 0, "port %u is used by the server itself and cannot be mapped", port);
		return REGISTRY_FORBIDDEN;
	}
	if (!port_set_has(&r->policy.allowed, port)) {
		errbuf_set(e, 0, "port %u is not allowed on this server (see --allow-ports)", port);
		return REGISTRY_FORBIDDEN;
	}
	if (c && c->n_mappings >= r->policy.max_per_client) {
		errbuf_set(e, 0, "this client already holds %zu mappings, the most allowed", c->n_mappings);
		return REGISTRY_FORBIDDEN;
	}
	return REGISTRY_NEW;
}

int registry_put(struct registry *r, const struct registry_mapping *m)
{
	struct registry_mapping *slot = r->by_port[m->remote_port];
	struct client *c;

	if (slot) {
		*slot = *m;
		return 0;
	}
	c = get_client(r, &m->client);
	slot = malloc(sizeof(*slot));
	if (!c || !slot) {
		free(slot);
		return -ENOMEM;
	}
	*slot = *m;
	r->by_port[m->remote_port] = slot;
	c->n_mappings++;
	return 0;
}

struct registry_mapping *registry_get(struct registry *r, uint16_t port)
{
	return r->by_port[port];
}

struct registry_mapping *registry_next(struct registry *r, uint32_t from)
{
	for (uint32_t p = from; p < 65536; p++)
		if (r->by_port[p])
			return r->by_port[p];
	return NULL;
}

void registry_remove(struct registry *r, uint16_t port)
{
	struct registry_mapping *m = r->by_port[port];
	struct client *c;

	if (!m)
		return;
	c = find_client(r, &m->client);
	if (c)
		c->n_mappings--;
	r->by_port[port] = NULL;
	free(m);
}

size_t registry_ports_of(const struct registry *r, const struct ip_addr *client, uint16_t *ports,
			 size_t max)
{
	const struct client *c = find_client(r, client);
	size_t n = 0;

	if (!c)
		return 0;
	for (size_t p = 1; p < 65536 && n < c->n_mappings; p++) {
		const struct registry_mapping *m = r->by_port[p];

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
		n += r->clients[i].n_mappings;
		*clients += r->clients[i].n_mappings > 0;
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

bool registry_find_stale(const struct registry *r, uint64_t now, uint64_t timeout,
			 struct ip_addr *out)
{
	for (size_t i = 0; i < r->n_clients; i++) {
		if (now - r->clients[i].last_seen >= timeout) {
			*out = r->clients[i].addr;
			return true;
		}
	}
	return false;
}

void registry_forget(struct registry *r, const struct ip_addr *client)
{
	struct client *c = find_client(r, client);

	if (!c)
		return;
	*c = r->clients[--r->n_clients];
}
