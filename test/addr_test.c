#include <arpa/inet.h>
#include <errno.h>

#include "test.h"
#include "wgrp/addr.h"

static void assert_prefix(const char *text, const char *formatted)
{
	struct ip_prefix p;
	char buf[ADDR_PREFIX_STRLEN];
	struct errbuf e = { "" };

	if (ip_prefix_parse(&p, text, &e) < 0)
		fail_msg("%s: %s", text, e.msg);
	ip_prefix_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, formatted);
}

static void parses_prefixes_of_both_families(void **state)
{
	(void)state;
	assert_prefix("10.0.0.1/24", "10.0.0.1/24");
	assert_prefix("10.0.0.2", "10.0.0.2/32");
	assert_prefix("0.0.0.0/0", "0.0.0.0/0");
	assert_prefix("fd00::1/64", "fd00::1/64");
	assert_prefix("FD00:0::2", "fd00::2/128");
	assert_prefix("::/0", "::/0");
	assert_prefix("::ffff:10.0.0.1/128", "::ffff:10.0.0.1/128");
}

static void refuses_bad_prefixes_naming_the_value(void **state)
{
	static const char *const invalid[] = { "",        "10.0.0.300/32", "10.0.0/24", "10.0.0.1/",
					       "10.0.0.1/x", "10.0.0.1/-1", "fd00::g",  "fe80::1%eth0",
					       "10.0.0.1/24/1", " 10.0.0.1" };
	struct ip_prefix p;
	struct errbuf e;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(invalid); i++)
		assert_int_equal(ip_prefix_parse(&p, invalid[i], &e), -EINVAL);
	ip_prefix_parse(&p, "10.0.0.300/32", &e);
	assert_string_equal(e.msg, "invalid address \"10.0.0.300/32\"");

	assert_int_equal(ip_prefix_parse(&p, "10.0.0.1/33", &e), -ERANGE);
	assert_string_equal(e.msg, "prefix length out of range (0-32) in \"10.0.0.1/33\"");
	assert_int_equal(ip_prefix_parse(&p, "fd00::/129", &e), -ERANGE);
	assert_string_equal(e.msg, "prefix length out of range (0-128) in \"fd00::/129\"");
}

static void masks_and_contains(void **state)
{
	struct ip_prefix net, m, host;
	char buf[ADDR_PREFIX_STRLEN];

	(void)state;
	ip_prefix_parse(&net, "10.1.2.3/12", NULL);
	m = ip_prefix_masked(&net);
	ip_prefix_format(&m, buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.0/12");

	ip_prefix_parse(&net, "fd00:1:2:3::1/63", NULL);
	m = ip_prefix_masked(&net);
	ip_prefix_format(&m, buf, sizeof(buf));
	assert_string_equal(buf, "fd00:1:2:2::/63");

	ip_prefix_parse(&net, "10.0.0.1/24", NULL);
	ip_prefix_parse(&host, "10.0.0.200", NULL);
	assert_true(ip_prefix_contains(&net, &host.addr));
	ip_prefix_parse(&host, "10.0.1.1", NULL);
	assert_false(ip_prefix_contains(&net, &host.addr));
	ip_prefix_parse(&host, "fd00::1", NULL);
	assert_false(ip_prefix_contains(&net, &host.addr));
	ip_prefix_parse(&net, "0.0.0.0/0", NULL);
	ip_prefix_parse(&host, "192.0.2.1", NULL);
	assert_true(ip_prefix_contains(&net, &host.addr));
}

static void orders_prefixes(void **state)
{
	struct ip_prefix a, b;

	(void)state;
	ip_prefix_parse(&a, "10.0.0.0/24", NULL);
	ip_prefix_parse(&b, "10.0.0.0/25", NULL);
	assert_true(ip_prefix_cmp(&a, &b) < 0);
	assert_int_equal(ip_prefix_cmp(&a, &a), 0);
	ip_prefix_parse(&b, "::/0", NULL);
	assert_true(ip_prefix_cmp(&a, &b) < 0);
}

static void assert_hostport(const char *text, uint16_t default_port, const char *host,
			    uint16_t port, bool is_ip)
{
	struct hostport hp;
	struct errbuf e = { "" };

	if (hostport_parse(&hp, text, default_port, &e) < 0)
		fail_msg("%s: %s", text, e.msg);
	assert_string_equal(hp.host, host);
	assert_int_equal(hp.port, port);
	assert_int_equal(hp.is_ip, is_ip);
	if (is_ip)
		assert_int_equal(ntohs(hp.addr.sa.sa_family == AF_INET ? hp.addr.in.sin_port
								       : hp.addr.in6.sin6_port),
				 port);
}

static void parses_host_and_port_forms(void **state)
{
	(void)state;
	assert_hostport("192.0.2.1:51820", 0, "192.0.2.1", 51820, true);
	assert_hostport("[fd00::1]:51821", 0, "fd00::1", 51821, true);
	assert_hostport("server.example.com:51820", 0, "server.example.com", 51820, false);
	assert_hostport("localhost:8080", 0, "localhost", 8080, false);
	assert_hostport("my-host_1.example.:1", 0, "my-host_1.example.", 1, false);
	assert_hostport("server.example.com", 51820, "server.example.com", 51820, false);
	assert_hostport("[fd00::1]", 51820, "fd00::1", 51820, true);
	assert_hostport("192.0.2.1", 51820, "192.0.2.1", 51820, true);
}

static void assert_hostport_error(const char *text, uint16_t default_port, const char *msg)
{
	struct hostport hp;
	struct errbuf e;

	assert_true(hostport_parse(&hp, text, default_port, &e) < 0);
	assert_string_equal(e.msg, msg);
}

static void refuses_bad_host_and_port(void **state)
{
	(void)state;
	assert_hostport_error("", 0, "empty address");
	assert_hostport_error("example.com", 0,
			      "missing port in \"example.com\" (expected host:port)");
	assert_hostport_error("fd00::1", 51820,
			      "IPv6 address \"fd00::1\" needs brackets: [address]:port");
	assert_hostport_error("fd00::1:51820:x", 51820, "invalid address \"fd00::1:51820:x\"");
	assert_hostport_error("[fd00::1", 0, "missing ']' in \"[fd00::1\"");
	assert_hostport_error("[fd00::1]51820", 0, "expected ':' after ']' in \"[fd00::1]51820\"");
	assert_hostport_error("[10.0.0.1]:80", 0, "invalid address \"[10.0.0.1]:80\"");
	assert_hostport_error("[]:80", 0, "missing host in \"[]:80\"");
	assert_hostport_error(":80", 0, "missing host in \":80\"");
	assert_hostport_error("host:", 0,
			      "invalid port in \"host:\": empty value, expected a number");
	assert_hostport_error("host:0", 0, "invalid port in \"host:0\": \"0\" is out of range (1-65535)");
	assert_hostport_error("host:65536", 0,
			      "invalid port in \"host:65536\": \"65536\" is out of range (1-65535)");
	assert_hostport_error("10.0.0.300:80", 0, "invalid host \"10.0.0.300\"");
	assert_hostport_error("bad host:80", 0, "invalid host \"bad host\"");
	assert_hostport_error("-bad:80", 0, "invalid host \"-bad\"");
	assert_hostport_error("a..b:80", 0, "invalid host \"a..b\"");
	assert_hostport_error("[fe80::1%eth0]:80", 0, "invalid host \"fe80::1%eth0\"");
}

static void resolves_names_and_keeps_literals(void **state)
{
	struct hostport hp;
	struct errbuf e = { "" };

	(void)state;
	assert_int_equal(hostport_parse(&hp, "localhost:3000", 0, NULL), 0);
	if (hostport_resolve(&hp, &e) < 0)
		fail_msg("%s", e.msg);
	assert_true(hp.addr.sa.sa_family == AF_INET || hp.addr.sa.sa_family == AF_INET6);
	assert_int_equal(ntohs(hp.addr.sa.sa_family == AF_INET ? hp.addr.in.sin_port
							       : hp.addr.in6.sin6_port),
			 3000);
	assert_int_equal(hostport_parse(&hp, "[::1]:5", 0, NULL), 0);
	assert_int_equal(hostport_resolve(&hp, NULL), 0);
	assert_int_equal(hp.addr.sa.sa_family, AF_INET6);
}

static void formats_host_and_port(void **state)
{
	struct hostport hp;
	char buf[ADDR_HOSTPORT_STRLEN];

	(void)state;
	hostport_parse(&hp, "[fd00::1]:80", 0, NULL);
	hostport_format(&hp, buf, sizeof(buf));
	assert_string_equal(buf, "[fd00::1]:80");
	hostport_parse(&hp, "example.com", 51820, NULL);
	hostport_format(&hp, buf, sizeof(buf));
	assert_string_equal(buf, "example.com:51820");
}

static void quotes_anything_safely(void **state)
{
	char q[QUOTED_MAX], longer[300];

	(void)state;
	assert_string_equal(quote(q, "plain"), "\"plain\"");
	assert_string_equal(quote(q, "a\"b\\c\n\x1b[31m\xff"), "\"a\\x22b\\x5cc\\x0a\\x1b[31m\\xff\"");
	for (size_t i = 0; i < sizeof(longer) - 1; i++)
		longer[i] = i % 10 == 9 ? '.' : 'x';
	longer[sizeof(longer) - 1] = '\0';
	quote(q, longer);
	assert_true(strlen(q) < QUOTED_MAX);
	assert_contains(q, "x....\"");
	/* Whatever a message is about, it does not show a key. */
	assert_string_equal(quote(q, "YOYltDBmcdOlwCMqExR920sESriPJEmyZKQDANcMCFY="), QUOTE_HIDDEN);
	assert_string_equal(quote(q, "10.0.0.1/24 YOYltDBmcdOlwCMqExR920sE"), QUOTE_HIDDEN);
	memset(longer, '\x01', sizeof(longer) - 1);
	quote(q, longer);
	assert_true(strlen(q) < QUOTED_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_prefixes_of_both_families),
		cmocka_unit_test(refuses_bad_prefixes_naming_the_value),
		cmocka_unit_test(masks_and_contains),
		cmocka_unit_test(orders_prefixes),
		cmocka_unit_test(parses_host_and_port_forms),
		cmocka_unit_test(refuses_bad_host_and_port),
		cmocka_unit_test(resolves_names_and_keeps_literals),
		cmocka_unit_test(formats_host_and_port),
		cmocka_unit_test(quotes_anything_safely),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
