#include <errno.h>

#include "test.h"
#include "wgrp/route.h"

static void assert_route(const char *spec, const char *host, uint16_t local, uint16_t remote)
{
	struct route r;
	struct errbuf e = { "" };

	if (route_parse(&r, spec, &e) < 0)
		fail_msg("%s: %s", spec, e.msg);
	assert_string_equal(r.local.host, host);
	assert_int_equal(r.local.port, local);
	assert_int_equal(r.remote_port, remote);
}

static void parses_the_documented_forms(void **state)
{
	(void)state;
	assert_route("127.0.0.1:3000-3000", "127.0.0.1", 3000, 3000);
	assert_route("localhost:8080-8080", "localhost", 8080, 8080);
	assert_route("[::1]:8080-8080", "::1", 8080, 8080);
	assert_route("my-service.lan:1-65535", "my-service.lan", 1, 65535);
	assert_route("10.1.2.3:22-2222", "10.1.2.3", 22, 2222);
}

static void assert_route_error(const char *spec, const char *msg)
{
	struct route r;
	struct errbuf e;

	assert_true(route_parse(&r, spec, &e) < 0);
	assert_string_equal(e.msg, msg);
}

static void explains_each_mistake(void **state)
{
	(void)state;
	assert_route_error("bad", "invalid route \"bad\": expected local_host:local_port-remote_port, "
				  "e.g. 127.0.0.1:3000-3000");
	assert_route_error("127.0.0.1:3000", "invalid route \"127.0.0.1:3000\": expected "
					     "local_host:local_port-remote_port, e.g. 127.0.0.1:3000-3000");
	assert_route_error("127.0.0.1-3000", "invalid route \"127.0.0.1-3000\": local address: "
					     "missing port in \"127.0.0.1\" (expected host:port)");
	assert_route_error("127.0.0.1:3000-", "invalid route \"127.0.0.1:3000-\": remote port: "
					      "empty value, expected a number");
	assert_route_error("127.0.0.1:3000-70000", "invalid route \"127.0.0.1:3000-70000\": "
						   "remote port: \"70000\" is out of range (1-65535)");
	assert_route_error("127.0.0.1:0-80", "invalid route \"127.0.0.1:0-80\": local address: "
					     "invalid port in \"127.0.0.1:0\": \"0\" is out of range (1-65535)");
	assert_route_error(":80-80", "invalid route \":80-80\": local address: missing host in \":80\"");
	assert_route_error("::1:80-80", "invalid route \"::1:80-80\": local address: "
					"IPv6 address \"::1:80\" needs brackets: [address]:port");
	assert_route_error("127.0.0.1:80-80x", "invalid route \"127.0.0.1:80-80x\": remote port: "
					       "\"80x\" is not a number");
	assert_route_error("127.0.0.1:80--80", "invalid route \"127.0.0.1:80--80\": local address: "
					       "invalid port in \"127.0.0.1:80-\": \"80-\" is not a number");
}

static void assert_protocol(const char *spec, int protocol, enum route_visitor v, uint16_t remote)
{
	struct route r;
	struct errbuf e = { "" };

	if (route_parse(&r, spec, &e) < 0)
		fail_msg("%s: %s", spec, e.msg);
	assert_int_equal(r.protocol, protocol);
	assert_int_equal(r.visitor, v);
	assert_int_equal(r.remote_port, remote);
}

static void assert_formats(const char *spec, const char *want)
{
	struct route r;
	char buf[ROUTE_STRLEN];

	assert_int_equal(route_parse(&r, spec, NULL), 0);
	route_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void takes_a_protocol_after_the_remote_port(void **state)
{
	(void)state;
	assert_protocol("127.0.0.1:3000-3000", IPPROTO_TCP, ROUTE_PLAIN, 3000);
	assert_protocol("127.0.0.1:27015-27015/udp", IPPROTO_UDP, ROUTE_PLAIN, 27015);
	assert_protocol("127.0.0.1:53-5353/udp", IPPROTO_UDP, ROUTE_PLAIN, 5353);
	assert_protocol("127.0.0.1:80-80/tcp,send-proxy-v2", IPPROTO_TCP, ROUTE_SEND_PROXY_V2, 80);
	assert_protocol("127.0.0.1:80-80/tcp,send-proxy", IPPROTO_TCP, ROUTE_SEND_PROXY, 80);
	assert_route("[::1]:53-5353/udp", "::1", 53, 5353);
	assert_formats("[::1]:53-5353/udp", "[::1]:53-5353/udp");
	assert_formats("localhost:80-8080/tcp,send-proxy", "localhost:80-8080,send-proxy");
	assert_formats("127.0.0.1:80-80/tcp,transparent", "127.0.0.1:80-80,transparent");
	/* The visitor's address for UDP: a v2 header per datagram, or its source. */
	assert_protocol("[::1]:53-53/udp,send-proxy-v2", IPPROTO_UDP, ROUTE_SEND_PROXY_V2, 53);
	assert_protocol("my-dns.lan:53-5353/udp,transparent", IPPROTO_UDP, ROUTE_TRANSPARENT, 5353);
	assert_formats("[::1]:53-53/udp,send-proxy-v2", "[::1]:53-53/udp,send-proxy-v2");
	assert_formats("127.0.0.1:53-53/udp,transparent", "127.0.0.1:53-53/udp,transparent");
	assert_route_error("127.0.0.1:53-53/udp,send-proxy",
			   "invalid route \"127.0.0.1:53-53/udp,send-proxy\": send-proxy (PROXY v1) "
			   "has no UDP; use send-proxy-v2");
	assert_route_error("127.0.0.1:53-53/sctp",
			   "invalid route \"127.0.0.1:53-53/sctp\": unknown protocol \"sctp\" "
			   "(expected /tcp or /udp after the remote port)");
	assert_route_error("127.0.0.1:53-53/UDP",
			   "invalid route \"127.0.0.1:53-53/UDP\": unknown protocol \"UDP\" "
			   "(expected /tcp or /udp after the remote port)");
	assert_route_error("127.0.0.1:53-53/",
			   "invalid route \"127.0.0.1:53-53/\": unknown protocol \"\" "
			   "(expected /tcp or /udp after the remote port)");
	assert_route_error("127.0.0.1:53/udp-53",
			   "invalid route \"127.0.0.1:53/udp-53\": unknown protocol \"udp-53\" "
			   "(expected /tcp or /udp after the remote port)");
	assert_route_error("127.0.0.1:53-53/udp/udp",
			   "invalid route \"127.0.0.1:53-53/udp/udp\": remote port: \"53/udp\" "
			   "is not a number");
}

static void refuses_a_remote_port_twice(void **state)
{
	struct route_list list = { 0 };
	struct errbuf e;

	(void)state;
	assert_int_equal(route_list_add(&list, "127.0.0.1:3000-3000", &e), 0);
	assert_int_equal(route_list_add(&list, "127.0.0.1:3001-3001", &e), 0);
	assert_int_equal(route_list_add(&list, "localhost:4000-3000", &e), -EEXIST);
	assert_string_equal(e.msg, "invalid route \"localhost:4000-3000\": remote port 3000 is "
				   "already used by another route");
	assert_int_equal(route_list_add(&list, "nope", &e), -EINVAL);
	assert_int_equal(list.n, 2);
	assert_int_equal(list.items[1].remote_port, 3001);
	/* A TCP and a UDP route may share a port; two UDP routes may not. */
	assert_int_equal(route_list_add(&list, "127.0.0.1:53-3000/udp", &e), 0);
	assert_int_equal(route_list_add(&list, "127.0.0.1:54-3000/udp", &e), -EEXIST);
	assert_string_equal(e.msg, "invalid route \"127.0.0.1:54-3000/udp\": remote port 3000/udp "
				   "is already used by another route");
	assert_int_equal(route_list_add(&list, "127.0.0.1:3002-3000/tcp", &e), -EEXIST);
	assert_int_equal(list.n, 3);
	assert_int_equal(list.items[2].protocol, IPPROTO_UDP);
	route_list_clear(&list);
	assert_int_equal(list.n, 0);
}

static void assert_option(const char *spec, enum route_visitor v, uint16_t remote)
{
	assert_protocol(spec, IPPROTO_TCP, v, remote);
}

static void takes_one_option_for_the_visitor_address(void **state)
{
	(void)state;
	assert_option("127.0.0.1:3000-3000", ROUTE_PLAIN, 3000);
	assert_option("127.0.0.1:80-8080,send-proxy", ROUTE_SEND_PROXY, 8080);
	assert_option("[::1]:80-8080,send-proxy-v2", ROUTE_SEND_PROXY_V2, 8080);
	assert_option("my-host.lan:80-81,transparent", ROUTE_TRANSPARENT, 81);
	assert_string_equal(route_visitor_name(ROUTE_SEND_PROXY_V2), "send-proxy-v2");
	assert_string_equal(route_visitor_name(ROUTE_PLAIN), "");
	assert_route_error("127.0.0.1:80-80,proxy", "invalid route \"127.0.0.1:80-80,proxy\": "
				"unknown option \"proxy\" (expected send-proxy, send-proxy-v2 or "
				"transparent)");
	assert_route_error("127.0.0.1:80-80,", "invalid route \"127.0.0.1:80-80,\": unknown "
			   "option \"\" (expected send-proxy, send-proxy-v2 or transparent)");
	assert_route_error("127.0.0.1:80-80,send-proxy,transparent",
			   "invalid route \"127.0.0.1:80-80,send-proxy,transparent\": one option "
			   "at most");
	assert_route_error("127.0.0.1:80,send-proxy",
			   "invalid route \"127.0.0.1:80,send-proxy\": expected "
			   "local_host:local_port-remote_port, e.g. 127.0.0.1:3000-3000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_the_documented_forms),
		cmocka_unit_test(explains_each_mistake),
		cmocka_unit_test(takes_one_option_for_the_visitor_address),
		cmocka_unit_test(takes_a_protocol_after_the_remote_port),
		cmocka_unit_test(refuses_a_remote_port_twice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
