#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "wgrp/wire.h"

#define decode_mapping(body, out, e) wire_mapping_request_decode(out, body, strlen(body), e)

/* The body the original Go client sends, byte for byte. */
static void decodes_the_original_clients_mapping_request(void **state)
{
	static const char body[] = "{\"local_addr\":\"127.0.0.1:8080\",\"remote_port\":8080,"
				   "\"client_ip\":\"10.0.0.2\",\"client_port\":12345}\n";
	struct wire_mapping_request r;
	char ip[INET6_ADDRSTRLEN];

	(void)state;
	assert_int_equal(decode_mapping(body, &r, NULL), 0);
	assert_string_equal(r.local_addr, "127.0.0.1:8080");
	assert_int_equal(r.remote_port, 8080);
	assert_true(r.has_client_ip);
	ip_addr_format(&r.client_ip, ip, sizeof(ip));
	assert_string_equal(ip, "10.0.0.2");
	assert_int_equal(r.client_port, 12345);
}

static void client_ip_is_optional(void **state)
{
	struct wire_mapping_request r;
	struct wire_heartbeat_request h;

	(void)state;
	assert_int_equal(decode_mapping("{\"local_addr\":\"[::1]:80\",\"remote_port\":80,"
					"\"client_port\":1}",
					&r, NULL),
			 0);
	assert_false(r.has_client_ip);
	assert_string_equal(r.local_addr, "[::1]:80");
	assert_int_equal(wire_heartbeat_request_decode(&h, "{}", 2, NULL), 0);
	assert_false(h.has_client_ip);
	assert_int_equal(wire_heartbeat_request_decode(&h, "{\"client_ip\":null}", 18, NULL), 0);
	assert_false(h.has_client_ip);
	assert_int_equal(wire_heartbeat_request_decode(&h, "{\"client_ip\":\"fd00::2\"}", 23, NULL),
			 0);
	assert_true(h.has_client_ip);
	assert_int_equal(h.client_ip.family, AF_INET6);
}

static void assert_mapping_error(const char *body, const char *msg)
{
	struct wire_mapping_request r;
	struct errbuf e;

	assert_int_equal(decode_mapping(body, &r, &e), -EINVAL);
	assert_string_equal(e.msg, msg);
}

/* jansson's own wording varies between versions: check only its gist. */
static void assert_mapping_json_error(const char *body, const char *gist)
{
	struct wire_mapping_request r;
	struct errbuf e;

	assert_int_equal(decode_mapping(body, &r, &e), -EINVAL);
	assert_contains(e.msg, "invalid JSON at line 1, column ");
	assert_contains(e.msg, gist);
}

#define VALID_TAIL "\"remote_port\":80,\"client_port\":1"

static void refuses_malformed_requests_with_a_reason(void **state)
{
	(void)state;
	assert_mapping_json_error("", "expected");
	assert_mapping_error("[]", "expected a JSON object");
	assert_mapping_json_error("{\"local_addr\":\"a:1\"," VALID_TAIL "} x", "end of file expected");
	assert_mapping_error("{" VALID_TAIL "}", "missing field \"local_addr\"");
	assert_mapping_error("{\"local_addr\":\"a:1\",\"client_port\":1}",
			     "missing field \"remote_port\"");
	assert_mapping_error("{\"local_addr\":1," VALID_TAIL "}",
			     "field \"local_addr\" must be a string");
	assert_mapping_error("{\"local_addr\":\"a\"," VALID_TAIL "}",
			     "field \"local_addr\": missing port in \"a\" (expected host:port)");
	assert_mapping_error("{\"local_addr\":\"a:1\",\"remote_port\":\"80\",\"client_port\":1}",
			     "field \"remote_port\" must be an integer from 1 to 65535");
	assert_mapping_error("{\"local_addr\":\"a:1\",\"remote_port\":80.0,\"client_port\":1}",
			     "field \"remote_port\" must be an integer from 1 to 65535");
	assert_mapping_error("{\"local_addr\":\"a:1\",\"remote_port\":0,\"client_port\":1}",
			     "field \"remote_port\" must be an integer from 1 to 65535");
	assert_mapping_error("{\"local_addr\":\"a:1\",\"remote_port\":65536,\"client_port\":1}",
			     "field \"remote_port\" must be an integer from 1 to 65535");
	assert_mapping_error("{\"local_addr\":\"a:1\",\"remote_port\":true,\"client_port\":1}",
			     "field \"remote_port\" must be an integer from 1 to 65535");
	assert_mapping_json_error("{\"local_addr\":\"a:1\",\"remote_port\":99999999999999999999999,"
				  "\"client_port\":1}",
				  "too big integer");
	assert_mapping_error("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"client_ip\":\"10.0.0.300\"}",
			     "field \"client_ip\": invalid address \"10.0.0.300\"");
	assert_mapping_error("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"client_ip\":7}",
			     "field \"client_ip\" must be a string");
	assert_mapping_error("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"remote_prot\":1}",
			     "unknown field \"remote_prot\"");
	assert_mapping_json_error("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"remote_port\":81}",
				  "duplicate object key");
	assert_mapping_json_error("{\"local_addr\":\"a\\u0000:1\"," VALID_TAIL "}",
				  "\\u0000 is not allowed");
	assert_mapping_error("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"proxy_protocol\":1}",
			     "field \"proxy_protocol\" must be 0 (none) or 2 (PROXY protocol v2)");
	assert_mapping_error("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"proxy_protocol\":\"2\"}",
			     "field \"proxy_protocol\" must be 0 (none) or 2 (PROXY protocol v2)");
	assert_mapping_error("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"protocol\":\"sctp\"}",
			     "field \"protocol\" must be \"tcp\" or \"udp\"");
	assert_mapping_error("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"protocol\":\"UDP\"}",
			     "field \"protocol\" must be \"tcp\" or \"udp\"");
	assert_mapping_error("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"protocol\":17}",
			     "field \"protocol\" must be \"tcp\" or \"udp\"");
}

static void protocol_is_optional_and_tcp_by_default(void **state)
{
	struct wire_mapping_request r;

	(void)state;
	assert_int_equal(decode_mapping("{\"local_addr\":\"a:1\"," VALID_TAIL "}", &r, NULL), 0);
	assert_false(r.has_protocol);
	assert_int_equal(decode_mapping("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"protocol\":null}",
					&r, NULL),
			 0);
	assert_false(r.has_protocol);
	assert_int_equal(decode_mapping("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"protocol\":\"tcp\"}",
					&r, NULL),
			 0);
	assert_true(r.has_protocol);
	assert_int_equal(r.protocol, IPPROTO_TCP);
	assert_int_equal(decode_mapping("{\"local_addr\":\"a:1\"," VALID_TAIL ",\"protocol\":\"udp\","
					"\"proxy_protocol\":2}",
					&r, NULL),
			 0);
	assert_true(r.has_protocol);
	assert_int_equal(r.protocol, IPPROTO_UDP);
	assert_int_equal(r.proxy_protocol, 2);
}

static void mapping_request_round_trips(void **state)
{
	struct wire_mapping_request a = { .local_addr = "localhost:8080", .remote_port = 8080,
					  .client_port = 40000 },
				    b;
	char *text;

	(void)state;
	assert_int_equal(ip_addr_parse(&a.client_ip, "10.0.0.2", NULL), 0);
	a.has_client_ip = true;
	assert_int_equal(wire_mapping_request_encode(&a, &text), 0);
	assert_string_equal(text, "{\"local_addr\":\"localhost:8080\",\"remote_port\":8080,"
				  "\"client_ip\":\"10.0.0.2\",\"client_port\":40000}");
	assert_int_equal(decode_mapping(text, &b, NULL), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	free(text);

	a.has_client_ip = false;
	assert_int_equal(wire_mapping_request_encode(&a, &text), 0);
	assert_string_equal(text, "{\"local_addr\":\"localhost:8080\",\"remote_port\":8080,"
				  "\"client_port\":40000}");
	free(text);

	/* Absent is 0, as the original client sends it. */
	assert_false(b.has_proxy_protocol);
	a.has_proxy_protocol = true;
	a.proxy_protocol = 2;
	assert_int_equal(wire_mapping_request_encode(&a, &text), 0);
	assert_string_equal(text, "{\"local_addr\":\"localhost:8080\",\"remote_port\":8080,"
				  "\"client_port\":40000,\"proxy_protocol\":2}");
	assert_int_equal(decode_mapping(text, &b, NULL), 0);
	assert_true(b.has_proxy_protocol);
	assert_int_equal(b.proxy_protocol, 2);
	free(text);

	a.has_protocol = true;
	a.protocol = IPPROTO_UDP;
	assert_int_equal(wire_mapping_request_encode(&a, &text), 0);
	assert_string_equal(text, "{\"local_addr\":\"localhost:8080\",\"remote_port\":8080,"
				  "\"client_port\":40000,\"proxy_protocol\":2,\"protocol\":\"udp\"}");
	assert_int_equal(decode_mapping(text, &b, NULL), 0);
	assert_true(b.has_protocol);
	assert_int_equal(b.protocol, IPPROTO_UDP);
	assert_int_equal(b.proxy_protocol, 2);
	free(text);
}

/* TCP ports stay in "mappings", as the original means them: UDP ones have
 * a list of their own. */
static void heartbeat_reply_carries_startup_time_and_mappings(void **state)
{
	uint16_t ports[] = { 80, 8080 }, udp[] = { 53 };
	struct wire_reply a = { .success = true, .message = "Heartbeat received",
				.has_server_startup_time = true, .server_startup_time = 1764100000,
				.has_mappings = true, .mappings = ports, .n_mappings = 2,
				.has_udp_mappings = true, .udp_mappings = udp, .n_udp_mappings = 1 },
			  b;
	char *text;

	(void)state;
	assert_int_equal(wire_reply_encode(&a, &text), 0);
	assert_string_equal(text, "{\"success\":true,\"message\":\"Heartbeat received\","
				  "\"server_startup_time\":1764100000,\"mappings\":[80,8080],"
				  "\"udp_mappings\":[53]}");
	assert_int_equal(wire_reply_decode(&b, text, strlen(text), NULL), 0);
	assert_true(b.success);
	assert_string_equal(b.message, "Heartbeat received");
	assert_true(b.has_server_startup_time);
	assert_int_equal(b.server_startup_time, 1764100000);
	assert_true(b.has_mappings);
	assert_int_equal(b.n_mappings, 2);
	assert_int_equal(b.mappings[1], 8080);
	assert_true(b.has_udp_mappings);
	assert_int_equal(b.n_udp_mappings, 1);
	assert_int_equal(b.udp_mappings[0], 53);
	wire_reply_clear(&b);
	free(text);
}

/* A registration's answer says "protocol" when it is udp, as rpc checks. */
static void registration_reply_repeats_the_protocol(void **state)
{
	struct wire_reply a = { .success = true, .message = "Port mapping created successfully "
							    "for port 5353/udp",
				.has_protocol = true, .protocol = IPPROTO_UDP },
			  b;
	struct errbuf e;
	char *text;
	const char *json;

	(void)state;
	assert_int_equal(wire_reply_encode(&a, &text), 0);
	assert_string_equal(text, "{\"success\":true,\"message\":\"Port mapping created "
				  "successfully for port 5353/udp\",\"protocol\":\"udp\"}");
	assert_int_equal(wire_reply_decode(&b, text, strlen(text), NULL), 0);
	assert_true(b.has_protocol);
	assert_int_equal(b.protocol, IPPROTO_UDP);
	wire_reply_clear(&b);
	free(text);
	/* A UDP mapping with PROXY headers (one per datagram) repeats both. */
	a.has_proxy_protocol = true;
	a.proxy_protocol = 2;
	assert_int_equal(wire_reply_encode(&a, &text), 0);
	assert_int_equal(wire_reply_decode(&b, text, strlen(text), NULL), 0);
	assert_true(b.has_protocol && b.has_proxy_protocol);
	assert_int_equal(b.protocol, IPPROTO_UDP);
	assert_int_equal(b.proxy_protocol, 2);
	wire_reply_clear(&b);
	free(text);
	json = "{\"success\":true,\"message\":\"\"}";
	assert_int_equal(wire_reply_decode(&b, json, strlen(json), NULL), 0);
	assert_false(b.has_protocol);
	wire_reply_clear(&b);
	json = "{\"success\":true,\"message\":\"\",\"protocol\":\"x\"}";
	assert_int_equal(wire_reply_decode(&b, json, strlen(json), &e), -EINVAL);
	assert_string_equal(e.msg, "field \"protocol\" must be \"tcp\" or \"udp\"");
}

/* The original server answers without "mappings", and may add fields. */
static void reply_decoding_takes_the_original_servers_answers(void **state)
{
	static const char body[] = "{\"success\":false,\"message\":\"Port 80 is already mapped "
				   "by another client\",\"extra\":{\"x\":[1]}}";
	struct wire_reply r;
	struct errbuf e;

	(void)state;
	assert_int_equal(wire_reply_decode(&r, body, strlen(body), NULL), 0);
	assert_false(r.success);
	assert_contains(r.message, "already mapped");
	assert_false(r.has_mappings);
	assert_false(r.has_server_startup_time);
	wire_reply_clear(&r);

	assert_int_equal(wire_reply_decode(&r, "Method not allowed\n", 19, &e), -EINVAL);
	assert_int_equal(wire_reply_decode(&r, "{\"success\":1,\"message\":\"\"}", 26, &e), -EINVAL);
	assert_string_equal(e.msg, "field \"success\" must be true or false");
	assert_int_equal(wire_reply_decode(&r, "{\"success\":true,\"message\":\"\",\"mappings\":[0]}",
					   44, &e),
			 -EINVAL);
	assert_string_equal(e.msg, "field \"mappings\" must hold integers from 1 to 65535");
	assert_int_equal(wire_reply_decode(&r, "{\"success\":true}", 16, &e), -EINVAL);
	assert_string_equal(e.msg, "missing field \"message\"");
}

static void a_message_that_is_not_utf8_still_encodes(void **state)
{
	char path[] = "no such endpoint: /\xff\xc3x\xe2\x82\xac\xed\xa0\x80";
	struct wire_reply r = { .success = false, .message = path };
	char *json;

	(void)state;
	assert_int_equal(wire_reply_encode(&r, &json), 0);
	/* The euro sign stays; a lone byte, a cut sequence and a surrogate do not. */
	assert_string_equal(json, "{\"success\":false,\"message\":\"no such endpoint: /??x\u20ac???\"}");
	free(json);
}

static void a_cut_message_ends_between_characters(void **state)
{
	char two[] = "ab\xc3\xa9\xc3", three[] = "a\xe2\x82", whole[] = "a\xe2\x82\xac",
	     four[] = "\xf0\x9f\x98", ascii[] = "abc";

	(void)state;
	wire_utf8_trim(two);
	assert_string_equal(two, "ab\xc3\xa9");
	wire_utf8_trim(three);
	assert_string_equal(three, "a");
	wire_utf8_trim(whole);
	assert_string_equal(whole, "a\xe2\x82\xac");
	wire_utf8_trim(four);
	assert_string_equal(four, "");
	wire_utf8_trim(ascii);
	assert_string_equal(ascii, "abc");
}

static void mapping_list_round_trips_with_targets(void **state)
{
	struct wire_mapping_info v[2] = {
		{ .remote_port = 3000, .protocol = IPPROTO_TCP, .target = "10.0.0.2:41234",
		  .local_addr = "127.0.0.1:3000", .is_signed = true },
		{ .remote_port = 3001, .protocol = IPPROTO_UDP, .target = "[fd00::2]:1",
		  .local_addr = "localhost:1",
		  .udp = { .datagrams_in = 7, .datagrams_out = 5, .too_big = 1, .no_fds = 2 } },
	}, *got;
	struct errbuf e;
	char *text;
	const char *json;
	size_t n;

	(void)state;
	assert_int_equal(wire_mapping_list_encode(v, 2, &text), 0);
	json = text;
	assert_contains(json, "{\"remote_port\":3001,\"protocol\":\"udp\",\"target\":");
	/* Datagrams and drops by reason, for UDP entries only. */
	assert_contains(json, "\"datagrams_in\":7,\"datagrams_out\":5,\"drops\":{\"too_big\":1,"
			      "\"flow_cap\":0,\"source_cap\":0,\"no_fds\":2,\"send_failed\":0}}");
	assert_int_equal(strstr(json, "datagrams_in") > strstr(json, "3001"), 1);
	assert_int_equal(wire_mapping_list_decode(&got, &n, json, strlen(json), &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].remote_port, 3000);
	assert_int_equal(got[0].protocol, IPPROTO_TCP);
	assert_int_equal(got[1].protocol, IPPROTO_UDP);
	assert_string_equal(got[0].target, "10.0.0.2:41234");
	assert_true(got[0].is_signed);
	assert_string_equal(got[1].target, "[fd00::2]:1");
	assert_false(got[1].is_signed);
	free(got);
	free(text);
	json = "{\"port_mappings\":[{\"remote_port\":0,\"target\":\"x\"}]}";
	assert_int_equal(wire_mapping_list_decode(&got, &n, json, strlen(json), &e), -EINVAL);
	assert_null(got);
	assert_int_equal(wire_mapping_list_decode(&got, &n, "{}", 2, &e), -EINVAL);
	/* The original lists no protocol: tcp. One rpc does not know is left out. */
	json = "{\"port_mappings\":[{\"remote_port\":1,\"target\":\"a:1\",\"protocol\":\"sctp\"},"
	       "{\"remote_port\":2,\"target\":\"a:2\"},"
	       "{\"remote_port\":3,\"target\":\"a:3\",\"protocol\":17}]}";
	assert_int_equal(wire_mapping_list_decode(&got, &n, json, strlen(json), &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].remote_port, 2);
	assert_int_equal(got[0].protocol, IPPROTO_TCP);
	free(got);
	json = "{\"port_mappings\":[]}";
	assert_int_equal(wire_mapping_list_decode(&got, &n, json, strlen(json), &e), 0);
	assert_int_equal(n, 0);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decodes_the_original_clients_mapping_request),
		cmocka_unit_test(client_ip_is_optional),
		cmocka_unit_test(refuses_malformed_requests_with_a_reason),
		cmocka_unit_test(protocol_is_optional_and_tcp_by_default),
		cmocka_unit_test(mapping_request_round_trips),
		cmocka_unit_test(heartbeat_reply_carries_startup_time_and_mappings),
		cmocka_unit_test(registration_reply_repeats_the_protocol),
		cmocka_unit_test(reply_decoding_takes_the_original_servers_answers),
		cmocka_unit_test(a_message_that_is_not_utf8_still_encodes),
		cmocka_unit_test(a_cut_message_ends_between_characters),
		cmocka_unit_test(mapping_list_round_trips_with_targets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
