/* The Prometheus text of the metrics: label values escaped, HELP and TYPE
 * once per family with its samples together, numbers as integers; a
 * snapshot rendered whole; which --metrics addresses are private. */
#include <stdlib.h>

#include "test.h"
#include "wgrp/metrics.h"

static void label_values_are_escaped(void **state)
{
	struct metrics_text t = { 0 };
	struct metrics_label l[] = { { "name", "a\\b\"c\nd" }, { "port", "80" }, { "end", "\"x\\" } };

	(void)state;
	metrics_text_family(&t, "wgrp_x_total", "counter", "Help with a \\ and a\nnewline, \"as is\".");
	metrics_text_sample(&t, l, 3, 7);
	assert_false(t.failed);
	assert_string_equal(t.buf, "# HELP wgrp_x_total Help with a \\\\ and a\\nnewline, \"as is\".\n"
				   "# TYPE wgrp_x_total counter\n"
				   "wgrp_x_total{name=\"a\\\\b\\\"c\\nd\",port=\"80\",end=\"\\\"x\\\\\"} 7\n");
	metrics_text_free(&t);
}

static void help_and_type_come_once_per_family(void **state)
{
	struct metrics_text t = { 0 };
	struct metrics_label a[] = { { "reason", "a" } }, b[] = { { "reason", "b" } };

	(void)state;
	metrics_text_family(&t, "wgrp_y_total", "counter", "Y.");
	metrics_text_sample(&t, a, 1, 1);
	metrics_text_family(&t, "wgrp_y_total", "counter", "Y again.");
	metrics_text_sample(&t, b, 1, 2);
	metrics_text_family(&t, "wgrp_z", "gauge", "Z.");
	metrics_text_sample(&t, NULL, 0, 0);
	assert_false(t.failed);
	assert_string_equal(t.buf,
			    "# HELP wgrp_y_total Y.\n# TYPE wgrp_y_total counter\n"
			    "wgrp_y_total{reason=\"a\"} 1\nwgrp_y_total{reason=\"b\"} 2\n"
			    "# HELP wgrp_z Z.\n# TYPE wgrp_z gauge\nwgrp_z 0\n");
	metrics_text_free(&t);
}

static void numbers_are_whole_integers(void **state)
{
	struct metrics_text t = { 0 };

	(void)state;
	metrics_text_family(&t, "wgrp_n_total", "counter", "N.");
	metrics_text_sample(&t, NULL, 0, UINT64_MAX);
	metrics_text_sample(&t, NULL, 0, 1ull << 53 | 1); /* past a double's precision */
	assert_contains(t.buf, "\nwgrp_n_total 18446744073709551615\n");
	assert_contains(t.buf, "\nwgrp_n_total 9007199254740993\n");
	metrics_text_free(&t);
}

/* The number of lines of text that start with prefix. */
static size_t lines_starting(const char *text, const char *prefix)
{
	size_t n = 0;

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		n += !strncmp(p, prefix, strlen(prefix));
	return n;
}

static void a_snapshot_renders_every_family_once(void **state)
{
	struct conf_peer alice = { .public_key = { 1 }, .name = "alice" };
	struct metrics_mapping maps[] = {
		{ .port = 8080, .protocol = IPPROTO_TCP, .peer = &alice,
		  .tcp = { .active = 1, .total = 3, .bytes_in = 1000, .bytes_out = 5000000000ull,
			   .refused_source = 2, .idle_closed = 4 } },
		{ .port = 53, .protocol = IPPROTO_UDP,
		  .udp = { .flows_active = 2, .datagrams_in = 10, .too_big = 1 } },
	};
	struct metrics_peer peers[] = { { .public_key = { 1 }, .name = "alice",
					  .last_handshake = 1700000000, .rx_bytes = 9 } };
	struct metrics_rps_counts rps = { .created = 2, .replaced = 1 };
	struct metrics_snapshot s = { .maps = maps, .n_maps = 2, .peers = peers, .n_peers = 1,
				      .rps = &rps, .open_fds = 12, .max_fds = 1024,
				      .relays = { .fds = 6, .fd_budget = UINT64_MAX, .pipes_idle = 2 } };
	struct metrics_text t = { 0 };
	const char *key = "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	char want[256];

	(void)state;
	api_counts_add(&rps.refused, "POST", 409);
	api_counts_add(&rps.api, "GET", 200);
	api_counts_add(&rps.api, "GET", 200);
	api_counts_add(&rps.api, "BREW", 418); /* a method of no interest: "other" */
	metrics_render(&s, &t);
	assert_false(t.failed);
	snprintf(want, sizeof(want),
		 "wgrp_mapping_sent_bytes_total{port=\"8080\",protocol=\"tcp\",peer=\"%s\","
		 "name=\"alice\"} 5000000000\n", key);
	assert_contains(t.buf, want);
	snprintf(want, sizeof(want),
		 "wgrp_mapping_connections_refused_total{port=\"8080\",protocol=\"tcp\",peer=\"%s\","
		 "name=\"alice\",reason=\"source_cap\"} 2\n", key);
	assert_contains(t.buf, want);
	assert_contains(t.buf, "\nwgrp_mapping_dropped_datagrams_total{port=\"53\",protocol=\"udp\","
			       "reason=\"too_big\"} 1\n");
	assert_contains(t.buf, "\nwgrp_mapping_received_bytes_total{port=\"53\",protocol=\"udp\"} 0\n");
	/* UDP mappings have no TCP families, and the other way round. */
	assert_null(strstr(t.buf, "wgrp_mapping_connections_total{port=\"53\""));
	assert_null(strstr(t.buf, "wgrp_mapping_flows_total{port=\"8080\""));
	assert_contains(t.buf, "\nwgrp_registrations_total{result=\"created\",status=\"200\"} 2\n");
	assert_contains(t.buf, "\nwgrp_registrations_total{result=\"refused\",status=\"409\"} 1\n");
	assert_contains(t.buf, "\nwgrp_api_requests_total{method=\"GET\",status=\"200\"} 2\n");
	assert_contains(t.buf, "\nwgrp_api_requests_total{method=\"other\",status=\"418\"} 1\n");
	snprintf(want, sizeof(want),
		 "\nwgrp_peer_last_handshake_seconds{peer=\"%s\",name=\"alice\"} 1700000000\n", key);
	assert_contains(t.buf, want);
	assert_contains(t.buf, "\nwgrp_process_max_fds 1024\n");
	assert_contains(t.buf, "\nwgrp_relay_pipes{state=\"idle\"} 2\n");
	/* No budget without a limit; no rpc families in rps. */
	assert_null(strstr(t.buf, "wgrp_relay_fd_budget"));
	assert_null(strstr(t.buf, "wgrp_route_"));
	assert_null(strstr(t.buf, "wgrp_heartbeats_"));
	/* Each family's HELP and TYPE once, and as many of each. */
	assert_int_equal(lines_starting(t.buf, "# TYPE wgrp_mapping_connections_refused_total "), 1);
	assert_int_equal(lines_starting(t.buf, "# TYPE wgrp_mapping_received_bytes_total "), 1);
	assert_int_equal(lines_starting(t.buf, "# TYPE wgrp_registrations_total "), 1);
	assert_int_equal(lines_starting(t.buf, "# TYPE "), lines_starting(t.buf, "# HELP "));
	metrics_text_free(&t);
}

static void rpc_renders_its_routes(void **state)
{
	struct metrics_mapping maps[] = { { .port = 3000, .protocol = IPPROTO_TCP, .registered = 1,
					    .registration_attempts = 2, .registration_refusals = 1 } };
	struct metrics_rpc_counts rpc = { .heartbeats_sent = 5, .heartbeats_failed = 1 };
	struct metrics_snapshot s = { .maps = maps, .n_maps = 1, .rpc = &rpc,
				      .relays = { .fd_budget = 100 } };
	struct metrics_text t = { 0 };

	(void)state;
	metrics_render(&s, &t);
	assert_contains(t.buf, "\nwgrp_route_registered{port=\"3000\",protocol=\"tcp\"} 1\n");
	assert_contains(t.buf,
			"\nwgrp_route_registration_attempts_total{port=\"3000\",protocol=\"tcp\"} 2\n");
	assert_contains(t.buf,
			"\nwgrp_route_registration_refusals_total{port=\"3000\",protocol=\"tcp\"} 1\n");
	assert_contains(t.buf, "\nwgrp_heartbeats_sent_total 5\n");
	assert_contains(t.buf, "\nwgrp_relay_fd_budget 100\n");
	assert_null(strstr(t.buf, "wgrp_registrations_total"));
	metrics_text_free(&t);
}

static void private_addresses(void **state)
{
	struct ip_prefix tunnel[1];
	struct conf c = { .addresses = tunnel, .n_addresses = 1 };
	const char *yes[] = { "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "10.9.0.1" };
	const char *no[] = { "0.0.0.0", "::", "192.0.2.1", "10.9.0.2", "fd00::1" };
	struct ip_addr a;

	(void)state;
	assert_int_equal(ip_prefix_parse(&tunnel[0], "10.9.0.1/24", NULL), 0);
	for (size_t i = 0; i < N_ELEMS(yes); i++) {
		assert_int_equal(ip_addr_parse(&a, yes[i], NULL), 0);
		if (!metrics_addr_private(&a, &c))
			fail_msg("%s should be private", yes[i]);
	}
	for (size_t i = 0; i < N_ELEMS(no); i++) {
		assert_int_equal(ip_addr_parse(&a, no[i], NULL), 0);
		if (metrics_addr_private(&a, &c))
			fail_msg("%s should not be private", no[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(label_values_are_escaped),
		cmocka_unit_test(help_and_type_come_once_per_family),
		cmocka_unit_test(numbers_are_whole_integers),
		cmocka_unit_test(a_snapshot_renders_every_family_once),
		cmocka_unit_test(rpc_renders_its_routes),
		cmocka_unit_test(private_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
