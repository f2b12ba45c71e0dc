#include <errno.h>

#include "test.h"
#include "wgrp/client.h"

static void assert_default_server(const char *allowed, const char *want)
{
	struct conf_peer peer = { .n_allowed_ips = 1 };
	struct conf c = { .peers = &peer, .n_peers = 1 };
	struct ip_prefix p;
	struct ip_addr got;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(ip_prefix_parse(&p, allowed, NULL), 0);
	peer.allowed_ips = &p;
	assert_int_equal(client_default_server(&c, &got), 0);
	ip_addr_format(&got, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

/* The original's example configs give the original's answer, 10.0.0.1. */
static void server_is_the_first_host_of_the_first_network(void **state)
{
	(void)state;
	assert_default_server("10.0.0.0/24", "10.0.0.1");
	assert_default_server("10.0.0.77/24", "10.0.0.1");
	assert_default_server("10.1.0.0/16", "10.1.0.1");
	assert_default_server("fd00::/64", "fd00::1");
	assert_default_server("10.0.0.1/32", "10.0.0.1");
	assert_default_server("10.0.0.4/31", "10.0.0.4");
	assert_default_server("fd00::9/128", "fd00::9");
}

static void no_allowed_ips_no_default(void **state)
{
	struct conf_peer peer = { 0 };
	struct conf c = { .peers = &peer, .n_peers = 1 }, none = { 0 };
	struct ip_addr got;

	(void)state;
	assert_int_equal(client_default_server(&c, &got), -ENOENT);
	assert_int_equal(client_default_server(&none, &got), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(server_is_the_first_host_of_the_first_network),
		cmocka_unit_test(no_allowed_ips_no_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
