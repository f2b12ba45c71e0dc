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
	struct registry_policy p = { .reserved = { 51820, 80 }, .max_per_client = max_per_client };
	struct registry *r;

	port_set_add_range(&p.allowed, 1, 65535);
	assert_int_equal(registry_new(&r, &p), 0);
	return r;
}

static void put(struct registry *r, const char *client, uint16_t port, void *data)
{
	struct registry_mapping m = { .remote_port = port, .client = addr(client), .data = data };

	assert_int_equal(registry_put(r, &m), 0);
}

static void a_port_belongs_to_one_client(void **state)
{
	struct registry *r = new_registry(64);
	struct ip_addr a = addr("10.0.0.2"), b = addr("10.0.0.3");
	struct errbuf e;
	int one, two;

	(void)state;
	assert_int_equal(registry_check(r, &a, 3000, &e), REGISTRY_NEW);
	put(r, "10.0.0.2", 3000, &one);
	assert_int_equal(registry_check(r, &a, 3000, &e), REGISTRY_REPLACE);
	assert_int_equal(registry_check(r, &b, 3000, &e), REGISTRY_TAKEN);
	assert_string_equal(e.msg, "port 3000 is already mapped by another client");

	/* Replacing keeps one mapping, with the new data. */
	put(r, "10.0.0.2", 3000, &two);
	assert_ptr_equal(registry_get(r, 3000)->data, &two);
	assert_int_equal(registry_ports_of(r, &a, NULL, 0), 1);

	registry_remove(r, 3000);
	assert_null(registry_get(r, 3000));
	assert_int_equal(registry_check(r, &b, 3000, &e), REGISTRY_NEW);
	registry_free(r);
}

static void policy_refuses_with_reasons(void **state)
{
	struct registry_policy p = { .reserved = { 51820, 80 }, .max_per_client = 2 };
	struct ip_addr a = addr("fd00::2");
	struct registry *r;
	struct errbuf e;

	(void)state;
	assert_int_equal(port_set_parse(&p.allowed, "80,1024-65535", NULL), 0);
	assert_int_equal(registry_new(&r, &p), 0);
	assert_int_equal(registry_check(r, &a, 22, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "port 22 is not allowed on this server (see --allow-ports)");
	assert_int_equal(registry_check(r, &a, 80, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "port 80 is used by the server itself and cannot be mapped");
	assert_int_equal(registry_check(r, &a, 51820, &e), REGISTRY_FORBIDDEN);
	put(r, "fd00::2", 2000, NULL);
	put(r, "fd00::2", 2001, NULL);
	assert_int_equal(registry_check(r, &a, 2002, &e), REGISTRY_FORBIDDEN);
	assert_string_equal(e.msg, "this client already holds 2 mappings, the most allowed");
	/* At the limit, replacing its own is still fine. */
	assert_int_equal(registry_check(r, &a, 2001, &e), REGISTRY_REPLACE);
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
	assert_int_equal(registry_ports_of(r, &a, ports, 8), 2);
	assert_int_equal(ports[0], 3000);
	assert_int_equal(ports[1], 9000);
	assert_int_equal(registry_ports_of(r, &b, ports, 8), 1);
	assert_int_equal(ports[0], 4000);
	assert_int_equal(registry_ports_of(r, &c, ports, 8), 0);
	assert_int_equal(registry_ports_of(r, &a, ports, 1), 2); /* counts beyond room */
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
	registry_remove(r, 4000);
	assert_int_equal(registry_count(r, &clients), 2);
	assert_int_equal(clients, 1);
	registry_free(r);
}

static void silent_clients_go_stale(void **state)
{
	struct registry *r = new_registry(64);
	struct ip_addr a = addr("10.0.0.2"), b = addr("10.0.0.3"), stale;

	(void)state;
	assert_int_equal(registry_seen(r, &a, 1000), 0);
	assert_int_equal(registry_seen(r, &b, 1000), 0);
	put(r, "10.0.0.2", 3000, NULL);
	assert_false(registry_find_stale(r, 60999, 60000, &stale));
	assert_int_equal(registry_seen(r, &b, 30000), 0);
	assert_true(registry_find_stale(r, 61000, 60000, &stale));
	assert_true(ip_addr_equal(&stale, &a));
	registry_remove(r, 3000);
	registry_forget(r, &a);
	assert_false(registry_find_stale(r, 61000, 60000, &stale));
	assert_true(registry_find_stale(r, 90000, 60000, &stale));
	assert_true(ip_addr_equal(&stale, &b));
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
