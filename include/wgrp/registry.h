/* What rps knows of its clients: which public port is mapped to whom, when
 * each client was last heard from, and the policy deciding what a client may
 * map. Pure bookkeeping: the server opens and closes the listeners, keeping
 * them in each mapping's data. Clients are known by their tunnel address,
 * which WireGuard authenticates, and own what they map; limits count per
 * WireGuard peer, which may hold many addresses (a subnet, both families).
 * A mapping is a port of one protocol, IPPROTO_TCP or IPPROTO_UDP: the TCP
 * and the UDP port of one number are two mappings, maybe of two clients;
 * the policy's port set and quota count both alike. Lookups are O(log n) in the number of clients, expiry O(n). Times are the
 * loop's milliseconds. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"
#include "wgrp/ports.h"

/* What a peer's own lines in the config ("# wg-rp: AllowPorts", "MaxMappings")
 * set instead of the daemon's options. */
struct registry_peer_policy {
	const struct port_set *allowed; /* NULL: the policy's */
	size_t max_mappings;            /* 0: the policy's */
};

struct registry_policy {
	struct port_set allowed; /* of either protocol */
	/* Never mapped (0: none). TCP: the WireGuard and API ports, as the
	 * original refuses them. UDP: the WireGuard port, which its socket holds
	 * on every address; the API is TCP only. */
	uint16_t reserved_tcp[2];
	uint16_t reserved_udp;
	size_t max_per_client; /* mappings per peer, TCP and UDP together */
	size_t n_peers;        /* peers are numbered from 0 */
	/* n_peers entries, or NULL when no peer has its own; registry_new()
	 * copies what they point to. */
	const struct registry_peer_policy *peers;
};

struct registry_mapping {
	uint16_t remote_port;
	int protocol; /* IPPROTO_TCP or IPPROTO_UDP */
	struct ip_addr client;
	size_t peer; /* the WireGuard peer client belongs to */
	union sockaddr_inet target; /* client_ip:client_port in the tunnel */
	char local_addr[ADDR_HOSTPORT_STRLEN];
	int64_t created; /* Unix seconds */
	bool is_signed;  /* registered with the client's key, not by hand */
	uint8_t proxy_protocol; /* 2: connections start with a PROXY v2 header */
	void *data;      /* the server's, e.g. its listener */
};

enum registry_verdict {
	REGISTRY_NEW,       /* free: may be added */
	REGISTRY_REPLACE,   /* the client's own: its target may be replaced */
	REGISTRY_TAKEN,     /* another client's (HTTP 409) */
	REGISTRY_FORBIDDEN, /* against the policy (HTTP 403) */
};

struct registry;

int registry_new(struct registry **out, const struct registry_policy *policy);
/* Frees the bookkeeping; the mappings' data is the caller's to close first. */
void registry_free(struct registry *r);

#define REGISTRY_NO_PEER SIZE_MAX

/* What registry_set_policy() asks its caller of each mapping. */
struct registry_repeer {
	/* The mapping's peer under the new policy, or REGISTRY_NO_PEER to drop
	 * it. */
	size_t (*peer_of)(void *data, const struct registry_mapping *m);
	/* Each mapping dropped, just before it is forgotten: its data is the
	 * caller's to close. */
	void (*dropped)(void *data, struct registry_mapping *m);
};

/* Takes a new policy, for a reload: peers numbered anew, their own policies
 * changed, the WireGuard port moved. Each mapping gets its new peer from cb,
 * or is dropped: when cb says so, or when its peer may no longer map its
 * port. A mapping on a port the new policy reserves is the caller's to drop
 * (or to refuse the reload for). Returns how many were dropped, or -ENOMEM
 * (nothing changed). */
int registry_set_policy(struct registry *r, const struct registry_policy *policy,
			const struct registry_repeer *cb, void *data);

/* Each port below is of protocol: IPPROTO_TCP or IPPROTO_UDP. */

/* What mapping port for client, of peer, would be; refusals say why in e. */
enum registry_verdict registry_check(const struct registry *r, const struct ip_addr *client,
				     size_t peer, int protocol, uint16_t port, struct errbuf *e);
/* Adds m, or replaces the mapping of the same port, protocol and client.
 * The caller has checked it. Returns 0 or -ENOMEM. */
int registry_put(struct registry *r, const struct registry_mapping *m);
struct registry_mapping *registry_get(struct registry *r, int protocol, uint16_t port);
/* The mapping with the lowest port >= from, or NULL: for walking them all. */
struct registry_mapping *registry_next(struct registry *r, int protocol, uint32_t from);
/* Forgets the mapping of port (its data is the caller's). */
void registry_remove(struct registry *r, int protocol, uint16_t port);

/* Writes the ports of protocol client holds into ports (room for max), in
 * ascending order; returns how many it holds. */
size_t registry_ports_of(const struct registry *r, const struct ip_addr *client, int protocol,
			 uint16_t *ports, size_t max);

/* Returns how many mappings there are, of both protocols; *clients: how
 * many clients hold one. */
size_t registry_count(const struct registry *r, size_t *clients);

/* Records that client was heard from at now. Returns 0 or -ENOMEM. */
int registry_seen(struct registry *r, const struct ip_addr *client, uint64_t now);

/* What registry_expire() tells its caller. */
struct registry_expiry {
	/* Each mapping of a silent client, just before it is forgotten: its
	 * data is the caller's to close. */
	void (*mapping)(void *data, struct registry_mapping *m);
	/* Then each silent client, with how many mappings it lost (both
	 * protocols). */
	void (*client)(void *data, const struct ip_addr *client, size_t n_mappings);
};

/* Forgets every client not heard from since now - timeout, and its
 * mappings, in one pass over the clients and one over the ports. Returns how
 * many clients went, or -ENOMEM (nothing changed; try again later). */
int registry_expire(struct registry *r, uint64_t now, uint64_t timeout,
		    const struct registry_expiry *cb, void *data);
