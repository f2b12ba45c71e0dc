#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "wgrp/control.h"
#include "wgrp/key.h"
#include "wgrp/status.h"

const char *status_format_age(char buf[STATUS_TEXT_LEN], int64_t seconds)
{
	static const struct {
		const char *name;
		int64_t seconds;
	} units[] = { { "day", 86400 }, { "hour", 3600 }, { "minute", 60 }, { "second", 1 } };
	size_t len = 0;

	if (seconds < 0)
		return strcpy(buf, "never");
	if (seconds == 0)
		return strcpy(buf, "now");
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		int64_t n = seconds / units[i].seconds;

		seconds %= units[i].seconds;
		if (n)
			len += (size_t)snprintf(buf + len, STATUS_TEXT_LEN - len, "%s%" PRId64 " %s%s",
						len ? ", " : "", n, units[i].name, n == 1 ? "" : "s");
	}
	snprintf(buf + len, STATUS_TEXT_LEN - len, " ago");
	return buf;
}

const char *status_format_bytes(char buf[STATUS_TEXT_LEN], uint64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t i = 0;

	if (bytes < 1024) {
		snprintf(buf, STATUS_TEXT_LEN, "%" PRIu64 " B", bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && i + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		i++;
	}
	snprintf(buf, STATUS_TEXT_LEN, "%.2f %s", v, units[i]);
	return buf;
}

void status_traffic(struct wire_mapping_info *out, struct relay_pool_listener *tcp,
		    struct relay_pool_udp *udp)
{
	const struct relay_stats *t;
	const struct udp_stats *u;

	if (tcp) {
		t = relay_pool_stats(tcp);
		out->active = t->active;
		out->total = t->total;
		out->bytes_in = t->bytes_in;
		out->bytes_out = t->bytes_out;
		return;
	}
	u = relay_pool_udp_stats(udp);
	out->active = u->flows_active;
	out->total = u->flows_total;
	out->bytes_in = u->bytes_in;
	out->bytes_out = u->bytes_out;
	out->udp = (struct wire_udp_counts){ .datagrams_in = u->datagrams_in,
					     .datagrams_out = u->datagrams_out,
					     .too_big = u->too_big, .flow_cap = u->flow_cap,
					     .source_cap = u->source_cap, .no_fds = u->no_fds,
					     .send_failed = u->send_failed };
}

static json_t *peer_pack(const struct wg_peer_info *p, int64_t now)
{
	char key[WG_KEY_B64_LEN + 1], buf[ADDR_HOSTPORT_STRLEN];
	int64_t handshake = p->last_handshake.tv_sec;
	json_t *ips = json_array(), *o;

	for (size_t i = 0; ips && i < p->n_allowed_ips; i++) {
		ip_prefix_format(&p->allowed_ips[i], buf, sizeof(buf));
		if (json_array_append_new(ips, json_string(buf)) < 0) {
			json_decref(ips);
			return NULL;
		}
	}
	key_to_base64(key, p->public_key);
	if (p->has_endpoint)
		sockaddr_inet_format(&p->endpoint, buf, sizeof(buf));
	/* A handshake "in the future" (the clock stepped back) is now. */
	o = ips ? json_pack("{s:s, s:o, s:o, s:I, s:o, s:I, s:I}", "public_key", key, "allowed_ips",
			    ips, "endpoint", p->has_endpoint ? json_string(buf) : json_null(),
			    "latest_handshake", (json_int_t)handshake, "handshake_age",
			    handshake ? json_integer(now > handshake ? now - handshake : 0)
				      : json_null(),
			    "rx_bytes", (json_int_t)p->rx_bytes, "tx_bytes", (json_int_t)p->tx_bytes)
		: NULL;
	return o;
}

void status_reply(struct control_request *req, const char *program, struct device *d,
		  const char *message, status_fill_fn *fill, void *data)
{
	struct wg_device_info *info;
	json_t *peers, *status;
	int64_t now = time(NULL);
	struct errbuf e;

	if (device_get(d, &info, &e) < 0) {
		control_reply_error(req, "%s", e.msg);
		return;
	}
	peers = json_array();
	for (size_t i = 0; peers && i < info->n_peers; i++) {
		if (json_array_append_new(peers, peer_pack(&info->peers[i], now)) < 0) {
			json_decref(peers);
			peers = NULL;
		}
	}
	status = peers ? json_pack("{s:b, s:s, s:s, s:s, s:s, s:i, s:o}", "success", 1, "message",
				   message, "program", program, "interface", device_ifname(d),
				   "backend",
				   device_backend(d) == DEVICE_KERNEL ? "kernel" : "userspace",
				   "listen_port", (int)info->listen_port, "peers", peers)
		       : NULL;
	wg_device_info_free(info);
	if (status && fill(data, status) < 0) {
		json_decref(status);
		status = NULL;
	}
	control_reply(req, status);
}

json_t *status_peer(json_t *status, const uint8_t public_key[WG_KEY_LEN])
{
	char key[WG_KEY_B64_LEN + 1];
	json_t *peer;
	size_t i;

	key_to_base64(key, public_key);
	json_array_foreach(json_object_get(status, "peers"), i, peer)
		if (!strcmp(key, json_string_value(json_object_get(peer, "public_key")) ?: ""))
			return peer;
	return NULL;
}

/* Printing: fields a daemon of another version left out show as "?". */

static const char *text(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "?";
}

static uint64_t count(const json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

static void print_list(FILE *f, const json_t *list)
{
	const json_t *v;
	size_t i;

	if (!json_array_size(list))
		fputs("(none)", f);
	json_array_foreach(list, i, v)
		fprintf(f, "%s%s", i ? ", " : "", json_string_value(v) ?: "?");
}

/* "1 active, 5 total connections; 1.00 KiB from visitors, 2.00 KiB to them" */
static void print_traffic(FILE *f, const json_t *m)
{
	char in[STATUS_TEXT_LEN], out[STATUS_TEXT_LEN];
	bool udp = !strcmp(text(m, "protocol"), "udp");

	fprintf(f, "%" PRIu64 " active, %" PRIu64 " total %s; %s from visitors, %s to them",
		count(m, "active"), count(m, "total"), udp ? "flows" : "connections",
		status_format_bytes(in, count(m, "bytes_in")),
		status_format_bytes(out, count(m, "bytes_out")));
	if (udp)
		fprintf(f, "; %" PRIu64 " datagrams in, %" PRIu64 " out", count(m, "datagrams_in"),
			count(m, "datagrams_out"));
	fputc('\n', f);
}

static void print_peer(FILE *f, const json_t *p)
{
	char age[STATUS_TEXT_LEN], rx[STATUS_TEXT_LEN], tx[STATUS_TEXT_LEN];
	const json_t *age_v = json_object_get(p, "handshake_age"), *maps, *m;
	const char *name = json_string_value(json_object_get(p, "name"));
	bool server = json_is_true(json_object_get(p, "server"));
	size_t i;

	fprintf(f, "\npeer: %s", text(p, "public_key"));
	if (name || server)
		fprintf(f, " (%s%s%s)", name ? name : "", name && server ? ", " : "",
			server ? "the server" : "");
	fputs("\n  allowed ips: ", f);
	print_list(f, json_object_get(p, "allowed_ips"));
	fprintf(f, "\n  endpoint: %s\n", json_string_value(json_object_get(p, "endpoint")) ?: "(none)");
	fprintf(f, "  latest handshake: %s\n",
		status_format_age(age, json_is_integer(age_v) ? json_integer_value(age_v) : -1));
	fprintf(f, "  transfer: %s received, %s sent\n", status_format_bytes(rx, count(p, "rx_bytes")),
		status_format_bytes(tx, count(p, "tx_bytes")));
	maps = json_object_get(p, "mappings");
	if (!json_is_array(maps))
		return;
	if (!json_array_size(maps))
		fputs("  mappings: none\n", f);
	json_array_foreach(maps, i, m) {
		fprintf(f, "  port %" PRIu64 "/%s -> %s (%s): ", count(m, "remote_port"),
			text(m, "protocol"), text(m, "target"), text(m, "local_addr"));
		print_traffic(f, m);
	}
}

static void print_route(FILE *f, const json_t *r)
{
	const char *state = text(r, "state"), *option = json_string_value(json_object_get(r, "option"));

	fprintf(f, "route %s -> server port %" PRIu64 "/%s%s%s: ", text(r, "local_addr"),
		count(r, "remote_port"), text(r, "protocol"), option ? ", " : "", option ?: "");
	if (!strcmp(state, "registered"))
		fputs("registered\n", f);
	else if (!strcmp(state, "refused"))
		fprintf(f, "refused: %s\n", text(r, "message"));
	else if (!strcmp(state, "waiting"))
		fputs("waiting for the server\n", f);
	else
		fprintf(f, "%s\n", state);
	fprintf(f, "  tunnel %s: ", text(r, "target"));
	print_traffic(f, r);
}

int status_print(FILE *f, const json_t *status)
{
	const json_t *server = json_object_get(status, "server"), *v;
	const char *program = text(status, "program");
	size_t i;

	if (!json_is_object(status) || !json_is_array(json_object_get(status, "peers")))
		return -EINVAL;
	fprintf(f, "interface: %s (%s, %s WireGuard)\n", text(status, "interface"), program,
		text(status, "backend"));
	fprintf(f, "  listening port: %" PRIu64 "\n", count(status, "listen_port"));
	if (json_is_array(json_object_get(status, "api"))) {
		fputs("  API: ", f);
		print_list(f, json_object_get(status, "api"));
		fputc('\n', f);
	}
	if (json_is_object(server))
		fprintf(f, "  server API: %s (%s)\n", text(server, "api"),
			json_is_true(json_object_get(server, "reachable")) ? "reachable"
									  : "not reachable");
	json_array_foreach(json_object_get(status, "peers"), i, v)
		print_peer(f, v);
	json_array_foreach(json_object_get(status, "routes"), i, v) {
		if (i == 0)
			fputc('\n', f);
		print_route(f, v);
	}
	return 0;
}
