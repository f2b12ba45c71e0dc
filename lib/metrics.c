#include <dirent.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "wgrp/device.h"
#include "wgrp/log.h"
#include "wgrp/metrics.h"
#include "wgrp/relay_pool.h"
#include "wgrp/version.h"

struct metrics_server {
	struct api_server *http;
	struct metrics_source src;
	/* rpc's, when the daemon has no API limits to share */
	struct api_limits own_limits;
	unsigned own_open;
};

static void append(struct metrics_text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void append(struct metrics_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = t->cap - t->len;
		char *grown;

		if (t->failed)
			return;
		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		grown = realloc(t->buf, t->cap + (size_t)n + 4096);
		if (!grown) {
			t->failed = true;
			return;
		}
		t->buf = grown;
		t->cap += (size_t)n + 4096;
	}
}

/* s with backslash and newline escaped, and with quote also the double
 * quote: what HELP text and label values need. */
static void append_escaped(struct metrics_text *t, const char *s, bool quote)
{
	while (*s) {
		size_t plain = strcspn(s, quote ? "\\\n\"" : "\\\n");

		append(t, "%.*s", (int)plain, s);
		s += plain;
		if (!*s)
			break;
		append(t, "%s", *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : "\\\"");
		s++;
	}
}

void metrics_text_family(struct metrics_text *t, const char *name, const char *type,
			 const char *help)
{
	if (!strcmp(t->family, name))
		return;
	snprintf(t->family, sizeof(t->family), "%s", name);
	append(t, "# HELP %s ", name);
	append_escaped(t, help, false);
	append(t, "\n# TYPE %s %s\n", name, type);
}

void metrics_text_sample(struct metrics_text *t, const struct metrics_label *labels, size_t n,
			 uint64_t value)
{
	append(t, "%s", t->family);
	for (size_t i = 0; i < n; i++) {
		append(t, "%s%s=\"", i ? "," : "{", labels[i].name);
		append_escaped(t, labels[i].value, true);
		append(t, "\"");
	}
	append(t, "%s %llu\n", n ? "}" : "", (unsigned long long)value);
}

void metrics_text_free(struct metrics_text *t)
{
	free(t->buf);
	*t = (struct metrics_text){ 0 };
}

/* ---------------------------------------------------------------- rendering */

/* A mapping's labels: port, protocol, and its client's peer and name when
 * known; room for a reason after them. */
struct mapping_labels {
	struct metrics_label v[5];
	size_t n;
	char port[8];
	char key[WG_KEY_B64_LEN + 1];
};

static void mapping_labels(struct mapping_labels *l, const struct metrics_mapping *m)
{
	snprintf(l->port, sizeof(l->port), "%u", m->port);
	l->v[0] = (struct metrics_label){ "port", l->port };
	l->v[1] = (struct metrics_label){ "protocol", m->protocol == IPPROTO_UDP ? "udp" : "tcp" };
	l->n = 2;
	if (!m->peer)
		return;
	key_to_base64(l->key, m->peer->public_key);
	l->v[l->n++] = (struct metrics_label){ "peer", l->key };
	if (m->peer->name)
		l->v[l->n++] = (struct metrics_label){ "name", m->peer->name };
}

/* A family of numbers per mapping, read by offset from its counters: each
 * row for the mappings of its protocol (0: all), with a reason label when
 * it has one. Rows end at the first with offset 0 (the port's). */
#define MAX_ROWS 7
struct mapping_family {
	const char *name, *type, *help;
	struct {
		int protocol;
		const char *reason;
		size_t offset; /* into struct metrics_mapping */
	} rows[MAX_ROWS];
};


#define AT(field) offsetof(struct metrics_mapping, field)
#define TCP(field) { IPPROTO_TCP, NULL, AT(tcp.field) }
#define UDP(field) { IPPROTO_UDP, NULL, AT(udp.field) }
#define TCP_WHY(why, field) { IPPROTO_TCP, why, AT(tcp.field) }
#define UDP_WHY(why, field) { IPPROTO_UDP, why, AT(udp.field) }

static const struct mapping_family mapping_families[] = {
	{ "wgrp_mapping_connections_active", "gauge", "TCP connections relayed now.",
	  { TCP(active) } },
	{ "wgrp_mapping_connections_total", "counter", "TCP connections accepted and relayed.",
	  { TCP(total) } },
	{ "wgrp_mapping_connections_refused_total", "counter",
	  "TCP connections reset at once, by reason: no_fds (the relays' share of fds taken), "
	  "source_cap (the source address had its share), bad_header (rpc: a PROXY header "
	  "missing or malformed).",
	  { TCP_WHY("no_fds", refused), TCP_WHY("source_cap", refused_source),
	    TCP_WHY("bad_header", bad_header) } },
	{ "wgrp_mapping_connect_failures_total", "counter",
	  "TCP connections whose connect to the target failed.", { TCP(connect_failures) } },
	{ "wgrp_mapping_idle_closed_total", "counter",
	  "TCP connections reset after --idle-timeout with no byte either way.",
	  { TCP(idle_closed) } },
	{ "wgrp_mapping_received_bytes_total", "counter",
	  "Bytes from the visitors' side to the target, counted as they are relayed.",
	  { TCP(bytes_in), UDP(bytes_in) } },
	{ "wgrp_mapping_sent_bytes_total", "counter",
	  "Bytes from the target back to the visitors' side, counted as they are relayed.",
	  { TCP(bytes_out), UDP(bytes_out) } },
	{ "wgrp_mapping_flows_active", "gauge", "UDP flows (source address and port) open now.",
	  { UDP(flows_active) } },
	{ "wgrp_mapping_flows_total", "counter", "UDP flows opened.", { UDP(flows_total) } },
	{ "wgrp_mapping_received_datagrams_total", "counter",
	  "UDP datagrams from the visitors' side relayed to the target.",
	  { UDP(datagrams_in) } },
	{ "wgrp_mapping_sent_datagrams_total", "counter",
	  "UDP datagrams from the target relayed back to the visitors' side.",
	  { UDP(datagrams_out) } },
	{ "wgrp_mapping_flows_ended_total", "counter",
	  "UDP flows ended, by reason: expired (silent for --udp-timeout), icmp (the target's "
	  "port unreachable), failed (another socket error).",
	  { UDP_WHY("expired", flows_expired), UDP_WHY("icmp", flows_ended_by_icmp),
	    UDP_WHY("failed", flows_failed) } },
	{ "wgrp_mapping_dropped_datagrams_total", "counter",
	  "UDP datagrams dropped, by reason: too_big (larger than the tunnel carries), flow_cap "
	  "(a new flow past the listener's share), source_cap (past the source's share), "
	  "no_fds, not_from_peer (rpc: not from the server), bad_header (rpc: a PROXY header "
	  "missing, malformed or of another visitor), send_failed.",
	  { UDP_WHY("too_big", too_big), UDP_WHY("flow_cap", flow_cap),
	    UDP_WHY("source_cap", source_cap), UDP_WHY("no_fds", no_fds),
	    UDP_WHY("not_from_peer", not_from_peer), UDP_WHY("bad_header", bad_header),
	    UDP_WHY("send_failed", send_failed) } },
};

/* rpc's per route. */
static const struct mapping_family route_families[] = {
	{ "wgrp_route_registered", "gauge",
	  "1 when the server holds the route's port for this rpc, else 0.",
	  { { 0, NULL, AT(registered) } } },
	{ "wgrp_route_registration_attempts_total", "counter",
	  "Registrations of the route's port sent to the server.",
	  { { 0, NULL, AT(registration_attempts) } } },
	{ "wgrp_route_registration_refusals_total", "counter",
	  "Registrations the server refused (403, 409, or a field it did not honour).",
	  { { 0, NULL, AT(registration_refusals) } } },
};

static void render_mappings(const struct metrics_snapshot *s, struct metrics_text *t,
			    const struct mapping_family *fams, size_t n_fams)
{
	for (size_t i = 0; i < n_fams; i++) {
		const struct mapping_family *f = &fams[i];

		metrics_text_family(t, f->name, f->type, f->help);
		for (size_t j = 0; j < s->n_maps; j++) {
			const struct metrics_mapping *m = &s->maps[j];

			for (size_t k = 0; k < MAX_ROWS && f->rows[k].offset; k++) {
				struct mapping_labels l;
				uint64_t v;

				if (f->rows[k].protocol && f->rows[k].protocol != m->protocol)
					continue;
				mapping_labels(&l, m);
				if (f->rows[k].reason)
					l.v[l.n++] = (struct metrics_label){ "reason", f->rows[k].reason };
				memcpy(&v, (const char *)m + f->rows[k].offset, sizeof(v));
				metrics_text_sample(t, l.v, l.n, v);
			}
		}
	}
}

/* Answers counted by status: labelled with their method, or with name="value"
 * instead when name is set. */
static void render_counts(struct metrics_text *t, const struct api_counts *c, const char *name,
			  const char *value)
{
	for (size_t i = 0; i < c->n; i++) {
		char status[8];
		struct metrics_label l[2] = { { "method", c->v[i].method }, { "status", status } };

		snprintf(status, sizeof(status), "%u", c->v[i].status);
		if (name)
			l[0] = (struct metrics_label){ name, value };
		metrics_text_sample(t, l, 2, c->v[i].n);
	}
}

static void render_rps(const struct metrics_rps_counts *c, struct metrics_text *t)
{
	metrics_text_family(t, "wgrp_registrations_total", "counter",
			    "Port registrations answered, by result (created, replaced: a "
			    "client's own port retargeted; refused) and HTTP status.");
	metrics_text_sample(t, (struct metrics_label[]){ { "result", "created" }, { "status", "200" } },
			    2, c->created);
	metrics_text_sample(t, (struct metrics_label[]){ { "result", "replaced" }, { "status", "200" } },
			    2, c->replaced);
	render_counts(t, &c->refused, "result", "refused");
	metrics_text_family(t, "wgrp_expired_clients_total", "counter",
			    "Clients silent past --heartbeat-timeout, forgotten with their mappings.");
	metrics_text_sample(t, NULL, 0, c->expired_clients);
	metrics_text_family(t, "wgrp_expired_mappings_total", "counter",
			    "Mappings removed with their silent client.");
	metrics_text_sample(t, NULL, 0, c->expired_mappings);
	metrics_text_family(t, "wgrp_api_requests_total", "counter",
			    "API requests answered, by method and HTTP status.");
	render_counts(t, &c->api, NULL, NULL);
}

static void render_rpc(const struct metrics_rpc_counts *c, struct metrics_text *t)
{
	metrics_text_family(t, "wgrp_heartbeats_sent_total", "counter", "Heartbeats sent to the server.");
	metrics_text_sample(t, NULL, 0, c->heartbeats_sent);
	metrics_text_family(t, "wgrp_heartbeats_failed_total", "counter",
			    "Heartbeats without a good answer (none in time, or an error).");
	metrics_text_sample(t, NULL, 0, c->heartbeats_failed);
}

/* The peers' families: one number each, by offset. */
static const struct {
	const char *name, *type, *help;
	size_t offset;
} peer_families[] = {
	{ "wgrp_peer_last_handshake_seconds", "gauge",
	  "Unix time of the peer's latest WireGuard handshake; 0: none yet.",
	  offsetof(struct metrics_peer, last_handshake) },
	{ "wgrp_peer_received_bytes_total", "counter",
	  "Bytes received from the peer through the tunnel, as WireGuard counts them.",
	  offsetof(struct metrics_peer, rx_bytes) },
	{ "wgrp_peer_sent_bytes_total", "counter",
	  "Bytes sent to the peer through the tunnel, as WireGuard counts them.",
	  offsetof(struct metrics_peer, tx_bytes) },
};

static void render_peers(const struct metrics_snapshot *s, struct metrics_text *t)
{
	for (size_t i = 0; i < sizeof(peer_families) / sizeof(peer_families[0]); i++) {
		metrics_text_family(t, peer_families[i].name, peer_families[i].type,
				    peer_families[i].help);
		for (size_t j = 0; j < s->n_peers; j++) {
			const struct metrics_peer *p = &s->peers[j];
			char key[WG_KEY_B64_LEN + 1];
			struct metrics_label l[2] = { { "peer", key }, { "name", p->name } };
			uint64_t v;

			key_to_base64(key, p->public_key);
			memcpy(&v, (const char *)p + peer_families[i].offset, sizeof(v));
			metrics_text_sample(t, l, p->name ? 2 : 1, v);
		}
	}
}

static void render_process(const struct metrics_snapshot *s, struct metrics_text *t)
{
	metrics_text_family(t, "wgrp_build_info", "gauge", "Always 1: the version of wg-rp running.");
	metrics_text_sample(t, (struct metrics_label[]){ { "version", WGRP_VERSION } }, 1, 1);
	metrics_text_family(t, "wgrp_process_open_fds", "gauge", "File descriptors open now.");
	metrics_text_sample(t, NULL, 0, s->open_fds);
	if (s->max_fds) {
		metrics_text_family(t, "wgrp_process_max_fds", "gauge",
				    "The open file limit (RLIMIT_NOFILE).");
		metrics_text_sample(t, NULL, 0, s->max_fds);
	}
	metrics_text_family(t, "wgrp_relay_fds", "gauge",
			    "File descriptors the relays hold: sockets and pipes.");
	metrics_text_sample(t, NULL, 0, s->relays.fds);
	if (s->relays.fd_budget != UINT64_MAX) {
		metrics_text_family(t, "wgrp_relay_fd_budget", "gauge",
				    "File descriptors the relays may hold: the limit less the "
				    "reserve of the API and the control plane.");
		metrics_text_sample(t, NULL, 0, s->relays.fd_budget);
	}
	metrics_text_family(t, "wgrp_relay_pipes", "gauge",
			    "splice() pipes, by state: lent (data in flight) or idle (pooled).");
	metrics_text_sample(t, (struct metrics_label[]){ { "state", "lent" } }, 1, s->relays.pipes_lent);
	metrics_text_sample(t, (struct metrics_label[]){ { "state", "idle" } }, 1, s->relays.pipes_idle);
}

void metrics_render(const struct metrics_snapshot *s, struct metrics_text *t)
{
	render_mappings(s, t, mapping_families, sizeof(mapping_families) / sizeof(mapping_families[0]));
	if (s->rpc)
		render_mappings(s, t, route_families, sizeof(route_families) / sizeof(route_families[0]));
	if (s->rps)
		render_rps(s->rps, t);
	if (s->rpc)
		render_rpc(s->rpc, t);
	render_peers(s, t);
	render_process(s, t);
}

/* ---------------------------------------------------------------- collecting */

static uint64_t count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	uint64_t n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	/* ".", "..", and the directory's own fd */
	return n >= 3 ? n - 3 : 0;
}

/* The device's peers, named as the config names them. */
static int collect_peers(struct metrics_server *m, struct metrics_snapshot *s)
{
	struct wg_device_info *info;
	struct errbuf e;
	int r = device_get(m->src.dev, &info, &e);

	if (r < 0) {
		log_debug("metrics: %s", e.msg);
		return 0; /* the rest is still worth a scrape */
	}
	s->peers = calloc(info->n_peers ? info->n_peers : 1, sizeof(*s->peers));
	if (!s->peers) {
		wg_device_info_free(info);
		return -ENOMEM;
	}
	for (size_t i = 0; i < info->n_peers; i++) {
		const struct wg_peer_info *w = &info->peers[i];
		struct metrics_peer *p = &s->peers[i];

		memcpy(p->public_key, w->public_key, WG_KEY_LEN);
		for (size_t j = 0; j < s->conf->n_peers; j++)
			if (!memcmp(s->conf->peers[j].public_key, w->public_key, WG_KEY_LEN))
				p->name = s->conf->peers[j].name;
		p->last_handshake = w->last_handshake.tv_sec;
		p->rx_bytes = w->rx_bytes;
		p->tx_bytes = w->tx_bytes;
	}
	s->n_peers = info->n_peers;
	wg_device_info_free(info);
	return 0;
}

static void serve(void *data, const struct api_request *req, struct api_reply *reply)
{
	struct metrics_server *m = data;
	struct metrics_snapshot s = { 0 };
	struct metrics_text t = { 0 };
	struct rlimit rl;

	(void)req;
	if (m->src.collect(m->src.data, &s) < 0 || collect_peers(m, &s) < 0) {
		api_reply_error(reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		goto out;
	}
	s.open_fds = count_open_fds();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		s.max_fds = rl.rlim_cur;
	relay_pool_ctx_stats(m->src.relays, &s.relays);
	metrics_render(&s, &t);
	if (t.failed || !t.buf) {
		api_reply_error(reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		metrics_text_free(&t);
		goto out;
	}
	reply->json = t.buf;
	reply->content_type = METRICS_CONTENT_TYPE;
out:
	free(s.maps);
	free(s.peers);
}

static const struct api_route routes[] = {
	{ "GET", "/metrics", serve },
};

bool metrics_addr_private(const struct ip_addr *addr, const struct conf *c)
{
	static const uint8_t mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

	if (addr->family == AF_INET && (ntohl(addr->v4.s_addr) >> 24) == 127)
		return true;
	if (addr->family == AF_INET6 &&
	    (IN6_IS_ADDR_LOOPBACK(&addr->v6) ||
	     (!memcmp(addr->v6.s6_addr, mapped_prefix, sizeof(mapped_prefix)) &&
	      addr->v6.s6_addr[12] == 127)))
		return true;
	for (size_t i = 0; i < c->n_addresses; i++)
		if (ip_addr_equal(addr, &c->addresses[i].addr))
			return true;
	return false;
}

/* rpc's: every client in one group, as rps's API treats addresses of no peer. */
static unsigned *one_group(void *data, const union sockaddr_inet *peer)
{
	(void)peer;
	return &((struct metrics_server *)data)->own_open;
}

int metrics_start(struct metrics_server **out, struct loop *l, const union sockaddr_inet *addr,
		  const struct metrics_source *src, struct api_limits *limits)
{
	struct metrics_server *m = calloc(1, sizeof(*m));
	char where[ADDR_HOSTPORT_STRLEN];
	struct ip_addr host = { .family = addr->sa.sa_family };
	struct errbuf e;
	int r;

	*out = NULL;
	if (!m) {
		log_error("--metrics: out of memory");
		return -ENOMEM;
	}
	m->src = *src;
	if (!limits) {
		m->own_limits = (struct api_limits){
			.open_of = one_group, .data = m,
			.max_per_group = API_MAX_CONNECTIONS_PER_PEER,
			.max_total = (unsigned)(relay_pool_fd_reserve(src->relays) / 2) };
		limits = &m->own_limits;
	}
	sockaddr_inet_format(addr, where, sizeof(where));
	r = api_server_new(&m->http, l, addr, NULL, routes, sizeof(routes) / sizeof(routes[0]), m,
			   limits, &e);
	if (r < 0) {
		log_error("--metrics %s: %s", where, e.msg);
		free(m);
		return r;
	}
	if (host.family == AF_INET)
		host.v4 = addr->in.sin_addr;
	else
		host.v6 = addr->in6.sin6_addr;
	log_info("metrics on http://%s/metrics", where);
	if (!metrics_addr_private(&host, src->conf))
		log_warning("--metrics %s is neither a loopback nor a tunnel address: whoever reaches "
			    "it learns the clients, their ports and traffic", where);
	*out = m;
	return 0;
}

void metrics_free(struct metrics_server *m)
{
	if (!m)
		return;
	api_server_free(m->http);
	free(m);
}
