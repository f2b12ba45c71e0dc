#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "wgrp/status.h"

static void ages_read_as_wg_shows_them(void **state)
{
	char buf[STATUS_TEXT_LEN];

	(void)state;
	assert_string_equal(status_format_age(buf, -1), "never");
	assert_string_equal(status_format_age(buf, 0), "now");
	assert_string_equal(status_format_age(buf, 1), "1 second ago");
	assert_string_equal(status_format_age(buf, 12), "12 seconds ago");
	assert_string_equal(status_format_age(buf, 60), "1 minute ago");
	assert_string_equal(status_format_age(buf, 3600 + 2 * 60 + 5), "1 hour, 2 minutes, 5 seconds ago");
	assert_string_equal(status_format_age(buf, 2 * 86400 + 1), "2 days, 1 second ago");
	/* The largest fits. */
	assert_contains(status_format_age(buf, INT64_MAX), " ago");
}

static void bytes_read_as_wg_shows_them(void **state)
{
	char buf[STATUS_TEXT_LEN];

	(void)state;
	assert_string_equal(status_format_bytes(buf, 0), "0 B");
	assert_string_equal(status_format_bytes(buf, 1023), "1023 B");
	assert_string_equal(status_format_bytes(buf, 1024), "1.00 KiB");
	assert_string_equal(status_format_bytes(buf, 1536), "1.50 KiB");
	assert_string_equal(status_format_bytes(buf, 5u << 20), "5.00 MiB");
	assert_string_equal(status_format_bytes(buf, 3ull << 30), "3.00 GiB");
	assert_string_equal(status_format_bytes(buf, UINT64_MAX), "16.00 EiB");
}

/* Prints j (a JSON text) into a string the caller frees; *r is status_print()'s result. */
static char *print(const char *j, int *r)
{
	json_t *status = json_loads(j, 0, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	*r = status_print(f, status);
	fclose(f);
	json_decref(status);
	return text;
}

static void an_rps_status_prints_like_wg_show(void **state)
{
	int r;
	char *text = print(
		"{\"success\":true,\"message\":\"1 mapping\",\"program\":\"rps\",\"interface\":\"wg0\","
		"\"backend\":\"kernel\",\"listen_port\":51820,\"api\":[\"10.0.0.1:80\"],"
		"\"peers\":[{\"public_key\":\"KEY\",\"name\":\"alice\",\"allowed_ips\":[\"10.0.0.2/32\"],"
		"\"endpoint\":null,\"latest_handshake\":0,\"handshake_age\":null,\"rx_bytes\":0,"
		"\"tx_bytes\":2048,\"mappings\":[{\"remote_port\":53,\"protocol\":\"udp\","
		"\"target\":\"10.0.0.2:4000\",\"local_addr\":\"127.0.0.1:53\",\"active\":1,"
		"\"total\":2,\"bytes_in\":10,\"bytes_out\":20,\"datagrams_in\":1,"
		"\"datagrams_out\":2}]},{\"public_key\":\"KEY2\",\"allowed_ips\":[],"
		"\"endpoint\":\"192.0.2.2:5000\",\"handshake_age\":65,\"mappings\":[]}]}",
		&r);

	(void)state;
	assert_int_equal(r, 0);
	assert_string_equal(text,
			    "interface: wg0 (rps, kernel WireGuard)\n"
			    "  listening port: 51820\n"
			    "  API: 10.0.0.1:80\n"
			    "\n"
			    "peer: KEY (alice)\n"
			    "  allowed ips: 10.0.0.2/32\n"
			    "  endpoint: (none)\n"
			    "  latest handshake: never\n"
			    "  transfer: 0 B received, 2.00 KiB sent\n"
			    "  port 53/udp -> 10.0.0.2:4000 (127.0.0.1:53): 1 active, 2 total flows; "
			    "10 B from visitors, 20 B to them; 1 datagrams in, 2 out\n"
			    "\n"
			    "peer: KEY2\n"
			    "  allowed ips: (none)\n"
			    "  endpoint: 192.0.2.2:5000\n"
			    "  latest handshake: 1 minute, 5 seconds ago\n"
			    "  transfer: 0 B received, 0 B sent\n"
			    "  mappings: none\n");
	free(text);
}

static void an_rpc_status_shows_each_route_state(void **state)
{
	int r;
	char *text = print(
		"{\"program\":\"rpc\",\"interface\":\"wg1\",\"backend\":\"userspace\","
		"\"listen_port\":0,\"server\":{\"api\":\"http://10.0.0.1:80\",\"reachable\":false},"
		"\"peers\":[{\"public_key\":\"S\",\"server\":true,\"name\":\"hub\"}],\"routes\":["
		"{\"remote_port\":80,\"protocol\":\"tcp\",\"target\":\"10.0.0.2:1\","
		"\"local_addr\":\"127.0.0.1:8080\",\"option\":\"send-proxy\",\"state\":\"registered\","
		"\"active\":0,\"total\":0,\"bytes_in\":0,\"bytes_out\":0},"
		"{\"remote_port\":22,\"protocol\":\"tcp\",\"local_addr\":\"127.0.0.1:22\","
		"\"option\":null,\"state\":\"refused\",\"message\":\"not allowed\"},"
		"{\"remote_port\":23,\"protocol\":\"tcp\",\"state\":\"waiting\"}]}",
		&r);

	(void)state;
	assert_int_equal(r, 0);
	assert_contains(text, "  server API: http://10.0.0.1:80 (not reachable)\n");
	assert_contains(text, "peer: S (hub, the server)\n  allowed ips: (none)\n");
	assert_contains(text, "route 127.0.0.1:8080 -> server port 80/tcp, send-proxy: registered\n"
			      "  tunnel 10.0.0.2:1: 0 active, 0 total connections; 0 B from "
			      "visitors, 0 B to them\n");
	assert_contains(text, "route 127.0.0.1:22 -> server port 22/tcp: refused: not allowed\n");
	/* What a daemon of another version leaves out shows as "?". */
	assert_contains(text, "route ? -> server port 23/tcp: waiting for the server\n  tunnel ?: ");
	free(text);
}

static void what_is_not_a_status_is_refused(void **state)
{
	int r;

	(void)state;
	free(print("[1]", &r));
	assert_int_equal(r, -EINVAL);
	free(print("{\"success\":true}", &r));
	assert_int_equal(r, -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ages_read_as_wg_shows_them),
		cmocka_unit_test(bytes_read_as_wg_shows_them),
		cmocka_unit_test(an_rps_status_prints_like_wg_show),
		cmocka_unit_test(an_rpc_status_shows_each_route_state),
		cmocka_unit_test(what_is_not_a_status_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
