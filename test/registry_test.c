#include "test.h"
#include "wgrp/registry.h"

static struct ip_addr addr(const char *s)
{
	struct ip_addr a;

	assert_int_equal(ip_addr_parse(&a, s, NULL), 0);
	return a;
}

static struct registry *new_registry(size_t max_per_client)
{
	struct registry_policy p = { .reserved_tcp = { 51820, 80 }, .reserved_udp = 51820, .max_per_client = max_per_client };
	struct registry *r;

	port_set_add_range(&p.allowed, 1, 65535);
	assert_int_equal(registry_new(&r, &p), 0);
	return r;
}

static void put_of(struct registry *r, const char *client, int protocol, uint16_t port, void *data)
{
	struct registry_mapping m = { .remote_port = port, .protocol = protocol,
				      .client = addr(client), .data = data };

	assert_int_equal(registry_put(r, &m), 0);
}

static void put(struct registry *r, const char *client, uint16_t port, void *data)
{
	put_of(r, client, IPPROTO_TCP, port, data);
}

static void a_port_belongs_to_one_client(void **state)
{
	struct registry *r = new_registry(64);
	struct ip_addr a = addr("10.0.0.2"), b = addr("10.0.0.3");
	struct errbuf e;
	int one, two;

	(void)state;
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_TCP, 3000, &e), REGISTRY_NEW);
	put(r, "10.0.0.2", 3000, &one);
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_TCP, 3000, &e), REGISTRY_REPLACE);
	assert_int_equal(registry_check(r, &b, 0, IPPROTO_TCP, 3000, &e), REGISTRY_TAKEN);
	assert_string_equal(e.msg, "port 3000 is already mapped by another client");

	/* Replacing keeps one mapping, with the new data. */
	put(r, "10.0.0.2", 3000, &two);
	assert_ptr_equal(registry_get(r, IPPROTO_TCP, 3000)->data, &two);
	assert_int_equal(registry_ports_of(r, &a, IPPROTO_TCP, NULL, 0), 1);

	registry_remove(r, IPPROTO_TCP, 3000);
	assert_null(registry_get(r, IPPROTO_TCP, 3000));
	assert_int_equal(registry_check(r, &b, 0, IPPROTO_TCP, 3000, &e), REGISTRY_NEW);
	registry_free(r);
}

static void policy_refuses_with_reasons(void **state)
{
	struct registry_policy p = { .reserved_tcp = { 51820, 80 }, .reserved_udp = 51820,
				     .max_per_client = 2 };
	struct ip_addr a = addr("fd00::2");
	struct registry *r;
	struct errbuf e;

	(void)state;
	assert_int_equal(port_set_parse(&p.allowed, "80,1024-65535", NULL), 0);
	assert_int_equal(registry_new(&r, &p), 0);
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_TCP, 22, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "port 22 is not allowed on this server (see --allow-ports)");
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_TCP, 80, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "port 80 is used by the server itself and cannot be mapped");
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_TCP, 51820, &e), REGISTRY_FORBIDDEN);
	/* Each reserved port is the server's in its own protocol only: the
	 * API is TCP, so UDP 80 is free. The port set holds for UDP too. */
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_UDP, 51820, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg,
			    "port 51820/udp is used by the server itself and cannot be mapped");
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_UDP, 80, &e), REGISTRY_NEW);
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_UDP, 22, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "port 22/udp is not allowed on this server (see --allow-ports)");
	put(r, "fd00::2", 2000, NULL);
	put(r, "fd00::2", 2001, NULL);
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_TCP, 2002, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "this client already holds 2 mappings, the most allowed");
	/* The quota counts both protocols. */
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_UDP, 2000, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "this client already holds 2 mappings, the most allowed");
	/* At the limit, replacing its own is still fine. */
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_TCP, 2001, &e), REGISTRY_REPLACE);
	registry_free(r);
}

static void lists_a_clients_own_ports_in_order(void **state)
{
	struct registry *r = new_registry(64);
	struct ip_addr a = addr("10.0.0.2"), b = addr("10.0.0.3"), c = addr("10.0.0.4");
	uint16_t ports[8];

	(void)state;
	put(r, "10.0.0.2", 9000, NULL);
	put(r, "10.0.0.3", 4000, NULL);
	put(r, "10.0.0.2", 3000, NULL);
	assert_int_equal(registry_ports_of(r, &a, IPPROTO_TCP, ports, 8), 2);
	assert_int_equal(ports[0], 3000);
	assert_int_equal(ports[1], 9000);
	assert_int_equal(registry_ports_of(r, &b, IPPROTO_TCP, ports, 8), 1);
	assert_int_equal(ports[0], 4000);
	assert_int_equal(registry_ports_of(r, &c, IPPROTO_TCP, ports, 8), 0);
	assert_int_equal(registry_ports_of(r, &a, IPPROTO_TCP, ports, 1), 2); /* counts beyond room */
	registry_free(r);
}

static void counts_mappings_and_the_clients_holding_them(void **state)
{
	struct registry *r = new_registry(64);
	struct ip_addr idle = addr("10.0.0.9");
	size_t clients;

	(void)state;
	assert_int_equal(registry_count(r, &clients), 0);
	assert_int_equal(clients, 0);
	assert_int_equal(registry_seen(r, &idle, 1000), 0);
	put(r, "10.0.0.2", 9000, NULL);
	put(r, "10.0.0.3", 4000, NULL);
	put(r, "10.0.0.2", 3000, NULL);
	put(r, "10.0.0.2", 3000, NULL); /* a replacement adds nothing */
	assert_int_equal(registry_count(r, &clients), 3);
	assert_int_equal(clients, 2);
	registry_remove(r, IPPROTO_TCP, 4000);
	assert_int_equal(registry_count(r, &clients), 2);
	assert_int_equal(clients, 1);
	registry_free(r);
}

static void on_expired_mapping_none(void *data, struct registry_mapping *m)
{
	(void)data;
	(void)m;
}

static void on_expired_client_none(void *data, const struct ip_addr *client, size_t n)
{
	(void)data;
	(void)client;
	(void)n;
}

struct expired {
	int mappings[4];
	size_t n_mappings;
	struct ip_addr clients[4];
	size_t lost[4];
	size_t n_clients;
};

static void on_expired_mapping(void *data, struct registry_mapping *m)
{
	struct expired *x = data;

	x->mappings[x->n_mappings++] = m->remote_port;
}

static void on_expired_client(void *data, const struct ip_addr *client, size_t n)
{
	struct expired *x = data;

	x->clients[x->n_clients] = *client;
	x->lost[x->n_clients++] = n;
}

static const struct registry_expiry expiry = { on_expired_mapping, on_expired_client };

static void silent_clients_go_stale(void **state)
{
	struct registry *r = new_registry(64);
	struct ip_addr a = addr("10.0.0.2"), b = addr("10.0.0.3");
	struct expired x = { 0 };
	size_t clients;

	(void)state;
	assert_int_equal(registry_seen(r, &a, 1000), 0);
	assert_int_equal(registry_seen(r, &b, 1000), 0);
	put(r, "10.0.0.2", 3000, NULL);
	put(r, "10.0.0.2", 3001, NULL);
	put(r, "10.0.0.3", 4000, NULL);
	assert_int_equal(registry_expire(r, 60999, 60000, &expiry, &x), 0);
	assert_int_equal(registry_seen(r, &b, 30000), 0);
	assert_int_equal(registry_expire(r, 61000, 60000, &expiry, &x), 1);
	assert_int_equal(x.n_mappings, 2);
	assert_int_equal(x.mappings[0], 3000);
	assert_int_equal(x.mappings[1], 3001);
	assert_int_equal(x.n_clients, 1);
	assert_true(ip_addr_equal(&x.clients[0], &a));
	assert_int_equal(x.lost[0], 2);
	assert_null(registry_get(r, IPPROTO_TCP, 3000));
	assert_int_equal(registry_count(r, &clients), 1);
	assert_int_equal(registry_expire(r, 61000, 60000, &expiry, &x), 0);
	assert_int_equal(registry_expire(r, 90000, 60000, &expiry, &x), 1);
	assert_true(ip_addr_equal(&x.clients[1], &b));
	assert_int_equal(registry_count(r, &clients), 0);
	/* Its quota is free again. */
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_TCP, 3000, NULL), REGISTRY_NEW);
	registry_free(r);
}

static void many_clients_expire_in_one_pass(void **state)
{
	struct registry *r = new_registry(64);
	struct registry_expiry quiet = { on_expired_mapping_none, on_expired_client_none };
	size_t clients;

	(void)state;
	for (uint32_t i = 0; i < 20000; i++) {
		struct ip_addr a = { .family = AF_INET6 };
		struct registry_mapping m = { .remote_port = (uint16_t)(1024 + i),
					      .protocol = IPPROTO_TCP };

		memcpy(&a.v6.s6_addr[12], &i, sizeof(i));
		assert_int_equal(registry_seen(r, &a, i < 10000 ? 0 : 50000), 0);
		m.client = a;
		m.peer = i % 3;
		assert_int_equal(registry_put(r, &m), 0);
	}
	assert_int_equal(registry_count(r, &clients), 20000);
	assert_int_equal(registry_expire(r, 60000, 60000, &quiet, NULL), 10000);
	assert_int_equal(registry_count(r, &clients), 10000);
	assert_int_equal(clients, 10000);
	assert_null(registry_get(r, IPPROTO_TCP, 1024));
	assert_non_null(registry_get(r, IPPROTO_TCP, 1024 + 10000));
	registry_free(r);
}

static void the_quota_is_per_peer_not_per_address(void **state)
{
	struct registry_policy p = { .max_per_client = 2, .n_peers = 2 };
	struct ip_addr v4 = addr("10.0.0.2"), v6 = addr("fd00::2"), other = addr("10.0.0.3");
	struct registry_mapping m = { .client = v4, .peer = 1, .protocol = IPPROTO_TCP };
	struct registry *r;
	struct errbuf e;

	(void)state;
	port_set_add_range(&p.allowed, 1, 65535);
	assert_int_equal(registry_new(&r, &p), 0);
	m.remote_port = 3000;
	assert_int_equal(registry_put(r, &m), 0);
	m.client = v6;
	m.remote_port = 3001;
	assert_int_equal(registry_put(r, &m), 0);
	/* The peer's two addresses share one quota; another peer has its own. */
	assert_int_equal(registry_check(r, &v4, 1, IPPROTO_TCP, 3002, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "this client already holds 2 mappings, the most allowed");
	assert_int_equal(registry_check(r, &v6, 1, IPPROTO_TCP, 3002, &e), REGISTRY_FORBIDDEN);
	assert_int_equal(registry_check(r, &other, 0, IPPROTO_TCP, 3002, &e), REGISTRY_NEW);
	/* Ownership stays with the address. */
	assert_int_equal(registry_check(r, &v6, 1, IPPROTO_TCP, 3000, &e), REGISTRY_TAKEN);
	registry_remove(r, IPPROTO_TCP, 3000);
	assert_int_equal(registry_check(r, &v6, 1, IPPROTO_TCP, 3002, &e), REGISTRY_NEW);
	registry_free(r);
}

/* A TCP and a UDP mapping of one port are two mappings, maybe of two
 * clients, each found, listed and removed on its own. */
static void tcp_and_udp_ports_are_apart(void **state)
{
	struct registry *r = new_registry(64);
	struct ip_addr a = addr("10.0.0.2"), b = addr("10.0.0.3");
	uint16_t ports[8];
	struct errbuf e;
	size_t clients;
	int tcp, udp;

	(void)state;
	put(r, "10.0.0.2", 53, &tcp);
	assert_int_equal(registry_check(r, &b, 0, IPPROTO_UDP, 53, &e), REGISTRY_NEW);
	put_of(r, "10.0.0.3", IPPROTO_UDP, 53, &udp);
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_UDP, 53, &e), REGISTRY_TAKEN);
	assert_string_equal(e.msg, "port 53/udp is already mapped by another client");
	assert_int_equal(registry_check(r, &b, 0, IPPROTO_UDP, 53, &e), REGISTRY_REPLACE);
	assert_int_equal(registry_check(r, &b, 0, IPPROTO_TCP, 53, &e), REGISTRY_TAKEN);
	assert_string_equal(e.msg, "port 53 is already mapped by another client");
	assert_ptr_equal(registry_get(r, IPPROTO_TCP, 53)->data, &tcp);
	assert_ptr_equal(registry_get(r, IPPROTO_UDP, 53)->data, &udp);
	assert_int_equal(registry_get(r, IPPROTO_UDP, 53)->protocol, IPPROTO_UDP);
	assert_null(registry_get(r, IPPROTO_UDP, 54));

	put_of(r, "10.0.0.2", IPPROTO_UDP, 5353, NULL);
	put_of(r, "10.0.0.2", IPPROTO_UDP, 27015, NULL);
	assert_int_equal(registry_ports_of(r, &a, IPPROTO_TCP, ports, 8), 1);
	assert_int_equal(registry_ports_of(r, &a, IPPROTO_UDP, ports, 8), 2);
	assert_int_equal(ports[0], 5353);
	assert_int_equal(ports[1], 27015);
	assert_int_equal(registry_ports_of(r, &b, IPPROTO_UDP, ports, 8), 1);
	assert_int_equal(registry_ports_of(r, &b, IPPROTO_TCP, ports, 8), 0);
	assert_int_equal(registry_count(r, &clients), 4);
	assert_int_equal(clients, 2);
	assert_ptr_equal(registry_next(r, IPPROTO_UDP, 54), registry_get(r, IPPROTO_UDP, 5353));
	assert_ptr_equal(registry_next(r, IPPROTO_TCP, 54), NULL);

	registry_remove(r, IPPROTO_UDP, 53);
	assert_null(registry_get(r, IPPROTO_UDP, 53));
	assert_non_null(registry_get(r, IPPROTO_TCP, 53));
	assert_int_equal(registry_count(r, &clients), 3);
	assert_int_equal(clients, 1);
	registry_free(r);
}

/* A silent client loses its mappings of both protocols. */
static void expiry_takes_udp_mappings_too(void **state)
{
	struct registry *r = new_registry(64);
	struct ip_addr a = addr("10.0.0.2");
	struct expired x = { 0 };
	size_t clients;

	(void)state;
	assert_int_equal(registry_seen(r, &a, 0), 0);
	put(r, "10.0.0.2", 3000, NULL);
	put_of(r, "10.0.0.2", IPPROTO_UDP, 3000, NULL);
	put_of(r, "10.0.0.2", IPPROTO_UDP, 53, NULL);
	assert_int_equal(registry_expire(r, 60000, 60000, &expiry, &x), 1);
	assert_int_equal(x.n_mappings, 3);
	assert_int_equal(x.lost[0], 3);
	assert_null(registry_get(r, IPPROTO_UDP, 53));
	assert_null(registry_get(r, IPPROTO_UDP, 3000));
	assert_int_equal(registry_count(r, &clients), 0);
	registry_free(r);
}

/* A peer's own AllowPorts and MaxMappings replace the options for it alone. */
static void a_peers_own_policy_overrides_the_options(void **state)
{
	struct port_set ports_b;
	const struct registry_peer_policy own[3] = { { 0 }, { .allowed = &ports_b, .max_mappings = 1 } };
	struct registry_policy p = { .reserved_tcp = { 51820, 80 }, .reserved_udp = 51820,
				     .max_per_client = 2, .n_peers = 3, .peers = own };
	struct ip_addr a = addr("10.0.0.2"), b = addr("10.0.0.3");
	struct registry_mapping m = { .remote_port = 8000, .protocol = IPPROTO_TCP, .client = b,
				      .peer = 1 };
	struct registry *r;
	struct errbuf e;

	(void)state;
	port_set_add_range(&p.allowed, 1024, 65535);
	assert_int_equal(port_set_parse(&ports_b, "8000-8100", NULL), 0);
	assert_int_equal(registry_new(&r, &p), 0);
	/* The copy is the registry's: the caller's set may go. */
	memset(&ports_b, 0, sizeof(ports_b));
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_TCP, 9000, &e), REGISTRY_NEW);
	assert_int_equal(registry_check(r, &b, 1, IPPROTO_TCP, 9000, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "port 9000 is not allowed for this client (its AllowPorts)");
	assert_int_equal(registry_check(r, &b, 1, IPPROTO_UDP, 8100, &e), REGISTRY_NEW);
	/* Reserved ports stay the server's whatever a peer may map. */
	assert_int_equal(registry_check(r, &b, 1, IPPROTO_TCP, 80, &e), REGISTRY_FORBIDDEN);
	assert_int_equal(registry_put(r, &m), 0);
	assert_int_equal(registry_check(r, &b, 1, IPPROTO_TCP, 8001, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "this client already holds 1 mappings, the most allowed");
	/* Peer 0 keeps the options' quota of 2. */
	put(r, "10.0.0.2", 9000, NULL);
	assert_int_equal(registry_check(r, &a, 0, IPPROTO_TCP, 9001, &e), REGISTRY_NEW);
	registry_free(r);
}


static size_t keep_peer(void *data, const struct registry_mapping *m)
{
	(void)data;
	return m->peer;
}

static size_t renumbered(void *data, const struct registry_mapping *m)
{
	(void)data;
	return m->peer == 1 ? 0 : m->peer == 0 ? REGISTRY_NO_PEER : 2;
}

static void dropped(void *data, struct registry_mapping *m)
{
	*(size_t *)data += m->remote_port;
}

/* A reload's renumbering: peer 1 becomes 0, peer 0 goes, a new peer 1 with
 * its own ports; what cb drops and what the new policy no longer allows
 * goes, every kept mapping counts under its new peer. */
static void a_new_policy_renumbers_and_drops(void **state)
{
	struct registry_policy p = { .max_per_client = 3, .n_peers = 3 };
	struct port_set only_9000;
	const struct registry_peer_policy own[3] = { { .max_mappings = 2 },
						     { .allowed = &only_9000 } };
	struct registry_mapping m = { .protocol = IPPROTO_TCP };
	const struct registry_repeer cb = { renumbered, dropped };
	struct ip_addr a = addr("10.0.0.2"), b = addr("10.0.0.3"), u = addr("10.9.9.9");
	struct registry *r;
	struct errbuf e;
	size_t gone = 0;

	(void)state;
	port_set_add_range(&p.allowed, 1, 65535);
	assert_int_equal(port_set_parse(&only_9000, "9000", NULL), 0);
	assert_int_equal(registry_new(&r, &p), 0);
	/* a of peer 0: 3000; b of peer 1: 4000, 4001; u of no peer (2): 5000. */
	m.client = a, m.peer = 0, m.remote_port = 3000;
	assert_int_equal(registry_put(r, &m), 0);
	m.client = b, m.peer = 1, m.remote_port = 4000;
	assert_int_equal(registry_put(r, &m), 0);
	m.remote_port = 4001;
	assert_int_equal(registry_put(r, &m), 0);
	m.client = u, m.peer = 2, m.remote_port = 5000;
	assert_int_equal(registry_put(r, &m), 0);

	p.peers = own;
	p.reserved_tcp[0] = 4001;
	assert_int_equal(registry_set_policy(r, &p, &cb, &gone), 1);
	assert_int_equal(gone, 3000);
	assert_null(registry_get(r, IPPROTO_TCP, 3000));
	assert_int_equal(registry_get(r, IPPROTO_TCP, 4000)->peer, 0);
	/* Reserved now, but kept: the caller's to decide (rps refuses such a
	 * reload). */
	assert_int_equal(registry_get(r, IPPROTO_TCP, 4001)->peer, 0);
	assert_int_equal(registry_get(r, IPPROTO_TCP, 5000)->peer, 2);
	assert_int_equal(registry_ports_of(r, &a, IPPROTO_TCP, NULL, 0), 0);
	/* Peer 0 holds 2 of its own 2; peer 1 may map 9000 only. */
	assert_int_equal(registry_check(r, &b, 0, IPPROTO_TCP, 4002, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "this client already holds 2 mappings, the most allowed");
	assert_int_equal(registry_check(r, &a, 1, IPPROTO_TCP, 4002, &e), REGISTRY_FORBIDDEN);
	assert_int_equal(registry_check(r, &a, 1, IPPROTO_TCP, 9000, &e), REGISTRY_NEW);

	/* Peer 0 (b) may now map 9000 only: its two go. */
	gone = 0;
	p.peers = (const struct registry_peer_policy[3]){ { .allowed = &only_9000 } };
	assert_int_equal(registry_set_policy(r, &p,
					     &(struct registry_repeer){ keep_peer, dropped },
					     &gone),
			 2);
	assert_int_equal(gone, 4000 + 4001);
	assert_int_equal(registry_check(r, &b, 0, IPPROTO_TCP, 9000, &e), REGISTRY_NEW);
	registry_remove(r, IPPROTO_TCP, 5000);
	registry_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_port_belongs_to_one_client),
		cmocka_unit_test(policy_refuses_with_reasons),
		cmocka_unit_test(lists_a_clients_own_ports_in_order),
		cmocka_unit_test(counts_mappings_and_the_clients_holding_them),
		cmocka_unit_test(silent_clients_go_stale),
		cmocka_unit_test(many_clients_expire_in_one_pass),
		cmocka_unit_test(the_quota_is_per_peer_not_per_address),
		cmocka_unit_test(tcp_and_udp_ports_are_apart),
		cmocka_unit_test(expiry_takes_udp_mappings_too),
		cmocka_unit_test(a_peers_own_policy_overrides_the_options),
		cmocka_unit_test(a_new_policy_renumbers_and_drops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
