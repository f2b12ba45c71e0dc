#include <errno.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wgrp/api_server.h"
#include "wgrp/auth.h"
#include "wgrp/conf_diff.h"
#include "wgrp/control.h"
#include "wgrp/device.h"
#include "wgrp/liveness.h"
#include "wgrp/log.h"
#include "wgrp/metrics.h"
#include "wgrp/notify.h"
#include "wgrp/num.h"
#include "wgrp/ratelimit.h"
#include "wgrp/registry.h"
#include "wgrp/relay_pool.h"
#include "wgrp/server.h"
#include "wgrp/status.h"
#include "wgrp/wire.h"

#define MAX_API_ADDRESSES 16
/* Clients whose refusals are rate-limited apart; more share the oldest slots. */
#define REFUSAL_LIMIT_CLIENTS 256

/* What rps knows of one [Peer] of its config: it signs its requests with
 * mac_key. The keys live here only, wiped when the server stops. Each is an
 * allocation of its own, kept by a reload that keeps its peer: its API
 * connections are counted in it. */
struct server_peer {
	const struct conf_peer *conf;
	uint8_t mac_key[AUTH_KEY_LEN];
	bool has_key;          /* false for a public key no secret can be made with */
	bool warned_unsigned;  /* logged once that it sends unsigned requests */
	struct auth_nonces nonces;
	unsigned api_open;     /* API connections open now */
};

struct server {
	const struct options *o;
	struct loop *loop;
	struct device *dev;
	struct relay_pool *relays;
	struct registry *reg;
	struct ratelimit_table *refusal_logs; /* per client */
	struct api_server *api[MAX_API_ADDRESSES];
	size_t n_api;
	struct loop_timer check_timer;
	struct notify_watchdog watchdog;
	struct cli_device_watch watch;
	struct cli_reload reload;
	char api_desc[MAX_API_ADDRESSES * ADDR_HOSTPORT_STRLEN]; /* where the API listens */
	char api_addr[MAX_API_ADDRESSES][ADDR_HOSTPORT_STRLEN];  /* the same, one by one */
	struct control_server *control;
	int64_t startup_time;
	union sockaddr_inet public_addr; /* port 0; each mapping sets its own */
	uint16_t *ports; /* scratch for one client's ports: TCP, then UDP at ALL_PORTS */
	struct conf *conf;
	struct conf_secrets secrets; /* digests of conf's, wiped, for a reload */
	struct server_peer **peers; /* one per [Peer] */
	size_t n_peers;
	/* Peers a reload removed while API connections of theirs were open:
	 * freed once those are closed. */
	struct server_peer **retired;
	size_t n_retired;
	unsigned api_open_unknown; /* API connections of addresses of no peer */
	struct api_limits api_limits;
	struct metrics_rps_counts counts;
	struct metrics_server *metrics;
};

#define ALL_PORTS 65536

/* The caller's identity is the tunnel address its request came from: a
 * client_ip in the body must name that same address. */
static bool identify(bool has_ip, const struct ip_addr *claimed, const struct ip_addr *who,
		     struct api_reply *reply)
{
	char seen[INET6_ADDRSTRLEN], said[INET6_ADDRSTRLEN];

	if (!has_ip || ip_addr_equal(claimed, who))
		return true;
	ip_addr_format(who, seen, sizeof(seen));
	ip_addr_format(claimed, said, sizeof(said));
	api_reply_error(reply, MHD_HTTP_FORBIDDEN,
			"client_ip %s does not match the tunnel address this request came from (%s)",
			said, seen);
	return false;
}

/* The address of a socket address, without its port. */
static struct ip_addr address_of(const union sockaddr_inet *sa)
{
	struct ip_addr a = { .family = sa->sa.sa_family };

	if (a.family == AF_INET)
		a.v4 = sa->in.sin_addr;
	else
		a.v6 = sa->in6.sin6_addr;
	return a;
}

static unsigned *api_open_of(void *data, const union sockaddr_inet *peer)
{
	struct server *s = data;
	struct ip_addr who = address_of(peer);
	size_t i = conf_peer_of(s->conf, &who);

	return i < s->n_peers ? &s->peers[i]->api_open : &s->api_open_unknown;
}

enum proof {
	REFUSED,  /* answered with 401 */
	UNSIGNED, /* no signature, and none needed */
	SIGNED,   /* signed with the key of the caller's peer */
};

/* Checks the signature of a request from who, of peer. A request without
 * one passes when it changes nothing (!required) or with --allow-unsigned;
 * a signed one is always checked, and its nonce remembered. */
static enum proof authorize(struct server *s, const struct api_request *req,
			    const struct ip_addr *who, size_t peer, bool required,
			    struct api_reply *reply)
{
	const char *ts = api_request_header(req, AUTH_HEADER_TIMESTAMP);
	const char *nonce = api_request_header(req, AUTH_HEADER_NONCE);
	const char *sig = api_request_header(req, AUTH_HEADER_SIGNATURE);
	struct server_peer *p = peer < s->n_peers ? s->peers[peer] : NULL;
	char addr[INET6_ADDRSTRLEN];
	struct auth_proof proof;
	struct errbuf e;
	int r;

	ip_addr_format(who, addr, sizeof(addr));
	if (!ts && !nonce && !sig) {
		if (!required)
			return UNSIGNED;
		if (s->o->allow_unsigned) {
			if (p && !p->warned_unsigned)
				log_warning("client %s ([Peer] at %s:%u) sends unsigned requests: "
					    "accepted (--allow-unsigned)",
					    addr, s->conf->name, p->conf->line);
			if (p)
				p->warned_unsigned = true;
			return UNSIGNED;
		}
		api_reply_error(reply, MHD_HTTP_UNAUTHORIZED,
				"this request must be signed with the client's WireGuard key "
				"(headers %s, %s, %s)",
				AUTH_HEADER_TIMESTAMP, AUTH_HEADER_NONCE, AUTH_HEADER_SIGNATURE);
		return REFUSED;
	}
	if (auth_proof_parse(&proof, ts, nonce, sig, &e) < 0) {
		api_reply_error(reply, MHD_HTTP_UNAUTHORIZED, "invalid signature headers: %s", e.msg);
		return REFUSED;
	}
	if (!p || !p->has_key) {
		api_reply_error(reply, MHD_HTTP_UNAUTHORIZED,
				"no [Peer] of the server with a usable key holds address %s", addr);
		return REFUSED;
	}
	if (auth_check(&proof, p->mac_key, req->method, req->target, req->body, req->body_len,
		       (int64_t)time(NULL), &e) < 0) {
		log_debug("refused a request from %s: %s", addr, e.msg);
		api_reply_error(reply, MHD_HTTP_UNAUTHORIZED, "%s", e.msg);
		return REFUSED;
	}
	r = auth_nonces_add(&p->nonces, &proof, (int64_t)time(NULL));
	if (r == -EALREADY) {
		log_debug("refused a replayed request from %s", addr);
		api_reply_error(reply, MHD_HTTP_UNAUTHORIZED, "replayed request: nonce already used");
		return REFUSED;
	}
	if (r == -EBUSY) {
		api_reply_error(reply, MHD_HTTP_TOO_MANY_REQUESTS,
				"too many signed requests from this client in %d s", AUTH_MAX_SKEW_S);
		return REFUSED;
	}
	if (r < 0) {
		api_reply_error(reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return REFUSED;
	}
	return SIGNED;
}

/* The caller's address, and whether it may go on (see authorize()). */
static enum proof caller(struct server *s, const struct api_request *req, bool required,
			 struct ip_addr *who, size_t *peer, struct api_reply *reply)
{
	*who = address_of(&req->peer);
	*peer = conf_peer_of(s->conf, who);
	return authorize(s, req, who, *peer, required, reply);
}

/* The one-line state systemctl status shows. */
static void show_status(struct server *s)
{
	size_t clients, n = registry_count(s->reg, &clients);

	notify_status("API on %s; %zu mapping%s from %zu client%s", s->api_desc, n, n == 1 ? "" : "s",
		      clients, clients == 1 ? "" : "s");
}

/* What the relays of m tell the client of each visitor. */
static const struct relay_visitor *visitor_of_mapping(const struct registry_mapping *m)
{
	static const struct relay_visitor plain, v2 = { .send_header = 2 };

	return m->proxy_protocol ? &v2 : &plain;
}

/* A UDP mapping's flows through the UDP engine; with PROXY headers, one
 * before each datagram. */
static int open_udp_listener(void **out, struct server *s, const union sockaddr_inet *bind_addr,
			     const struct registry_mapping *m, struct errbuf *e)
{
	struct relay_pool_udp *pu;
	int r;

	r = relay_pool_listen_udp(&pu, s->relays, bind_addr, &m->target, NULL,
				  visitor_of_mapping(m), e);
	if (r == 0)
		*out = pu;
	return r;
}


/* New connections to m count per source against cap (0: the daemon's
 * --max-conns-per-source). */
static void set_source_cap(const struct registry_mapping *m, uint32_t cap)
{
	if (m->protocol == IPPROTO_UDP)
		relay_pool_udp_set_source_cap(m->data, cap);
	else
		relay_pool_set_source_cap(m->data, cap);
}

/* Opens m's public port, keeping its listener in m->data: TCP connections
 * go to the relay pool, UDP flows to the UDP engine. Connections count per
 * source against the peer's own MaxConnsPerSource if it has one. */
static int open_listener(struct server *s, struct registry_mapping *m, struct errbuf *e)
{
	union sockaddr_inet bind_addr = s->public_addr;
	uint32_t cap = m->peer < s->conf->n_peers ? s->conf->peers[m->peer].max_conns_per_source : 0;
	struct relay_pool_listener *lis;
	int r;

	if (bind_addr.sa.sa_family == AF_INET)
		bind_addr.in.sin_port = htons(m->remote_port);
	else
		bind_addr.in6.sin6_port = htons(m->remote_port);
	if (m->protocol == IPPROTO_UDP) {
		r = open_udp_listener(&m->data, s, &bind_addr, m, e);
	} else {
		r = relay_pool_listen(&lis, s->relays, &bind_addr, &m->target, NULL,
				      visitor_of_mapping(m), e);
		if (r == 0)
			m->data = lis;
	}
	if (r == 0 && cap)
		set_source_cap(m, cap);
	return r;
}

/* Sends m's new visitors to its new target; those in progress go on. */
static void retarget_listener(const struct registry_mapping *m)
{
	if (m->protocol == IPPROTO_UDP)
		relay_pool_udp_set_target(m->data, &m->target, visitor_of_mapping(m));
	else
		relay_pool_set_target(m->data, &m->target, visitor_of_mapping(m));
}

/* The entry of m in the API's list and in the status, with its counters. */
static void describe(const struct registry_mapping *m, struct wire_mapping_info *out)
{
	bool udp = m->protocol == IPPROTO_UDP;

	*out = (struct wire_mapping_info){ .remote_port = m->remote_port,
					   .protocol = (uint8_t)m->protocol, .created = m->created,
					   .is_signed = m->is_signed,
					   .proxy_protocol = m->proxy_protocol };
	status_traffic(out, udp ? NULL : m->data, udp ? m->data : NULL);
	sockaddr_inet_format(&m->target, out->target, sizeof(out->target));
	snprintf(out->local_addr, sizeof(out->local_addr), "%s", m->local_addr);
}

static void close_listener(const struct registry_mapping *m)
{
	if (m->protocol == IPPROTO_UDP)
		relay_pool_udp_close(m->data);
	else
		relay_pool_close(m->data);
}

static void remove_mapping(struct server *s, int protocol, uint16_t port)
{
	struct registry_mapping *m = registry_get(s->reg, protocol, port);

	if (!m)
		return;
	close_listener(m);
	registry_remove(s->reg, protocol, port);
}

/* A refused registration is the operator's business too (a client after
 * port 22, two clients after one port): answered with why, and logged, as
 * often as the rate limit of that client lets a client that keeps asking. */
static void refuse(struct server *s, struct api_reply *reply, unsigned status,
		   const struct registry_mapping *m, const char *why)
{
	char who[INET6_ADDRSTRLEN], port[PORT_LABEL_LEN];
	unsigned held;

	api_reply_error(reply, status, "%s", why);
	api_counts_add(&s->counts.refused, "POST", status);
	if (!ratelimit_table_allow(s->refusal_logs, &m->client, loop_now(s->loop), &held))
		return;
	ip_addr_format(&m->client, who, sizeof(who));
	port_label(port, m->remote_port, m->protocol);
	if (held)
		log_warning("refused port %s to client %s: %s (and %u more refusals to it, not logged)",
			    port, who, why, held);
	else
		log_warning("refused port %s to client %s: %s", port, who, why);
}

/* A registration's answer repeats the mapping's PROXY version and a UDP
 * protocol, so that rpc knows the server honours them: the original ignores
 * both fields. Without memory the answer stays the plain envelope, which rpc
 * takes as refusal. */
static void mapping_reply(struct api_reply *reply, const struct registry_mapping *m)
{
	struct wire_reply r = { .success = true, .message = reply->message,
				.has_proxy_protocol = m->proxy_protocol != 0,
				.proxy_protocol = m->proxy_protocol,
				.has_protocol = m->protocol == IPPROTO_UDP,
				.protocol = IPPROTO_UDP };

	if (r.has_proxy_protocol || r.has_protocol)
		wire_reply_encode(&r, &reply->json);
}

static void create_mapping(void *data, const struct api_request *req, struct api_reply *reply)
{
	struct server *s = data;
	struct wire_mapping_request w;
	struct registry_mapping m = { 0 }, *old;
	char who_s[INET6_ADDRSTRLEN], target[ADDR_HOSTPORT_STRLEN], port[PORT_LABEL_LEN];
	struct errbuf e;
	int r;
	enum proof proof = caller(s, req, true, &m.client, &m.peer, reply);

	if (proof == REFUSED)
		return;
	m.is_signed = proof == SIGNED;
	if (wire_mapping_request_decode(&w, req->body, req->body_len, &e) < 0) {
		api_reply_error(reply, MHD_HTTP_BAD_REQUEST, "invalid request body: %s", e.msg);
		return;
	}
	if (!identify(w.has_client_ip, &w.client_ip, &m.client, reply))
		return;
	registry_seen(s->reg, &m.client, loop_now(s->loop));
	m.remote_port = w.remote_port;
	m.protocol = w.has_protocol ? w.protocol : IPPROTO_TCP;
	port_label(port, m.remote_port, m.protocol);
	sockaddr_inet_set(&m.target, &m.client, w.client_port);
	snprintf(m.local_addr, sizeof(m.local_addr), "%s", w.local_addr);
	m.proxy_protocol = w.has_proxy_protocol ? w.proxy_protocol : 0;
	m.created = time(NULL);
	sockaddr_inet_format(&m.target, target, sizeof(target));
	ip_addr_format(&m.client, who_s, sizeof(who_s));

	switch (registry_check(s->reg, &m.client, m.peer, m.protocol, m.remote_port, &e)) {
	case REGISTRY_TAKEN:
		refuse(s, reply, MHD_HTTP_CONFLICT, &m, e.msg);
		return;
	case REGISTRY_FORBIDDEN:
		refuse(s, reply, MHD_HTTP_FORBIDDEN, &m, e.msg);
		return;
	case REGISTRY_REPLACE:
		/* Connections in progress keep their target; new ones take the new. */
		old = registry_get(s->reg, m.protocol, m.remote_port);
		m.data = old->data;
		m.created = old->created;
		retarget_listener(&m);
		registry_put(s->reg, &m);
		s->counts.replaced++;
		log_info("port %s of client %s now goes to %s (%s)%s", port, who_s, target,
			 m.local_addr, m.proxy_protocol ? " with PROXY v2 headers" : "");
		api_reply_error(reply, MHD_HTTP_OK, "Port mapping updated for port %s", port);
		mapping_reply(reply, &m);
		return;
	case REGISTRY_NEW:
		break;
	}
	r = open_listener(s, &m, &e);
	if (r < 0) {
		refuse(s, reply, MHD_HTTP_CONFLICT, &m, e.msg);
		return;
	}
	if (registry_put(s->reg, &m) < 0) {
		close_listener(&m);
		api_reply_error(reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	s->counts.created++;
	log_info("port %s mapped to %s (%s) for client %s%s", port, target, m.local_addr, who_s,
		 m.proxy_protocol ? ", with PROXY v2 headers" : "");
	show_status(s);
	api_reply_error(reply, MHD_HTTP_OK, "Port mapping created successfully for port %s", port);
	mapping_reply(reply, &m);
}

static void delete_mapping(void *data, const struct api_request *req, struct api_reply *reply)
{
	struct server *s = data;
	const char *arg = api_request_arg(req, "port");
	const char *protocol_arg = api_request_arg(req, "protocol");
	struct registry_mapping *m;
	struct ip_addr who;
	struct errbuf e;
	char q[QUOTED_MAX], label[PORT_LABEL_LEN];
	uint16_t port;
	int protocol = IPPROTO_TCP;
	size_t peer;

	if (caller(s, req, true, &who, &peer, reply) == REFUSED)
		return;
	if (!arg) {
		api_reply_error(reply, MHD_HTTP_BAD_REQUEST, "port parameter is required: ?port=N");
		return;
	}
	if (num_parse_port(arg, &port, &e) < 0) {
		api_reply_error(reply, MHD_HTTP_BAD_REQUEST, "invalid port: %s", e.msg);
		return;
	}
	/* Absent is tcp, as the original clients delete. */
	if (protocol_arg && port_protocol_parse(protocol_arg, &protocol) < 0) {
		api_reply_error(reply, MHD_HTTP_BAD_REQUEST,
				"invalid protocol: %s (expected tcp or udp)", quote(q, protocol_arg));
		return;
	}
	port_label(label, port, protocol);
	registry_seen(s->reg, &who, loop_now(s->loop));
	m = registry_get(s->reg, protocol, port);
	if (!m) {
		api_reply_error(reply, MHD_HTTP_NOT_FOUND, "no mapping for port %s", label);
		return;
	}
	if (!ip_addr_equal(&m->client, &who)) {
		api_reply_error(reply, MHD_HTTP_FORBIDDEN, "port %s is mapped by another client", label);
		return;
	}
	remove_mapping(s, protocol, port);
	log_info("port %s unmapped", label);
	show_status(s);
	api_reply_error(reply, MHD_HTTP_OK, "Port mapping deleted successfully for port %s", label);
}

static void list_mappings(void *data, const struct api_request *req, struct api_reply *reply)
{
	struct server *s = data;
	struct wire_mapping_info *v;
	struct ip_addr who;
	size_t n, n_tcp, peer;

	if (caller(s, req, false, &who, &peer, reply) == REFUSED)
		return;
	/* TCP ports first, then UDP ones, each in ascending order. */
	n_tcp = registry_ports_of(s->reg, &who, IPPROTO_TCP, s->ports, ALL_PORTS);
	n = n_tcp + registry_ports_of(s->reg, &who, IPPROTO_UDP, s->ports + n_tcp, ALL_PORTS);
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		api_reply_error(reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		describe(registry_get(s->reg, i < n_tcp ? IPPROTO_TCP : IPPROTO_UDP, s->ports[i]),
			 &v[i]);
	if (wire_mapping_list_encode(v, n, &reply->json) < 0)
		api_reply_error(reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	free(v);
}

static void heartbeat(void *data, const struct api_request *req, struct api_reply *reply)
{
	struct server *s = data;
	struct wire_heartbeat_request w;
	struct wire_reply r = { .success = true, .message = "Heartbeat received",
				.has_server_startup_time = true, .has_mappings = true,
				.mappings = s->ports, .has_udp_mappings = true,
				.udp_mappings = s->ports + ALL_PORTS };
	struct ip_addr who;
	struct errbuf e;
	size_t peer;

	if (caller(s, req, true, &who, &peer, reply) == REFUSED)
		return;
	r.server_startup_time = s->startup_time;
	if (wire_heartbeat_request_decode(&w, req->body, req->body_len, &e) < 0) {
		api_reply_error(reply, MHD_HTTP_BAD_REQUEST, "invalid request body: %s", e.msg);
		return;
	}
	if (!identify(w.has_client_ip, &w.client_ip, &who, reply))
		return;
	registry_seen(s->reg, &who, loop_now(s->loop));
	r.n_mappings = registry_ports_of(s->reg, &who, IPPROTO_TCP, r.mappings, ALL_PORTS);
	r.n_udp_mappings = registry_ports_of(s->reg, &who, IPPROTO_UDP, r.udp_mappings, ALL_PORTS);
	if (wire_reply_encode(&r, &reply->json) < 0)
		api_reply_error(reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
}

static const struct api_route routes[] = {
	{ "POST", "/api/v1/port-mappings", create_mapping },
	{ "DELETE", "/api/v1/port-mappings", delete_mapping },
	{ "GET", "/api/v1/port-mappings", list_mappings },
	{ "POST", "/api/v1/heartbeat", heartbeat },
};

static void expired_mapping(void *data, struct registry_mapping *m)
{
	struct server *s = data;

	s->counts.expired_mappings++;
	close_listener(m);
}

static void expired_client(void *data, const struct ip_addr *client, size_t n)
{
	struct server *s = data;
	char who[INET6_ADDRSTRLEN];

	s->counts.expired_clients++;
	ip_addr_format(client, who, sizeof(who));
	if (n)
		log_warning("client %s silent for %u s: removing its %zu mapping%s", who,
			    s->o->heartbeat_timeout_s, n, n == 1 ? "" : "s");
}

/* Removes every mapping of peer i; returns how many went. */
static size_t remove_peer_mappings(struct server *s, size_t i)
{
	static const int protocols[] = { IPPROTO_TCP, IPPROTO_UDP };
	struct registry_mapping *m;
	size_t n = 0;

	for (size_t k = 0; k < sizeof(protocols) / sizeof(protocols[0]); k++)
		for (uint32_t from = 0; (m = registry_next(s->reg, protocols[k], from));) {
			from = m->remote_port + 1u;
			if (m->peer != i)
				continue;
			remove_mapping(s, protocols[k], m->remote_port);
			n++;
		}
	return n;
}

/* A peer whose tunnel has been dead past the heartbeat timeout loses its
 * mappings even if heartbeats still come (liveness.h). */
static size_t expire_dead_tunnels(struct server *s)
{
	struct wg_device_info *info;
	struct timespec now;
	struct errbuf e;
	size_t gone = 0;

	if (device_get(s->dev, &info, &e) < 0) {
		log_debug("cannot read the peers' handshakes: %s", e.msg);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t d = 0; d < info->n_peers; d++) {
		const struct wg_peer_info *p = &info->peers[d];
		char label[128];
		size_t i = 0, n;

		if (!liveness_tunnel_dead(&p->last_handshake, &now, s->o->heartbeat_timeout_s))
			continue;
		while (i < s->conf->n_peers &&
		       memcmp(s->conf->peers[i].public_key, p->public_key, WG_KEY_LEN))
			i++;
		if (i == s->conf->n_peers || !(n = remove_peer_mappings(s, i)))
			continue;
		s->counts.expired_mappings += n;
		gone += n;
		log_warning("%s: no handshake for %lld s, past --heartbeat-timeout and a WireGuard "
			    "session (%d s): removing its %zu mapping%s, whatever its heartbeats say",
			    cli_peer_label(label, sizeof(label), s->conf, i),
			    (long long)(now.tv_sec - p->last_handshake.tv_sec), LIVENESS_SESSION_S, n,
			    n == 1 ? "" : "s");
	}
	wg_device_info_free(info);
	return gone;
}

/* The original's cleanup: a client silent past the timeout loses all; and
 * so does a peer whose tunnel is dead. */
static void check_clients(struct loop *l, struct loop_timer *t)
{
	static const struct registry_expiry expiry = { expired_mapping, expired_client };
	struct server *s = t->data;
	uint64_t timeout = (uint64_t)s->o->heartbeat_timeout_s * 1000;

	int expired = registry_expire(s->reg, loop_now(l), timeout, &expiry, s);

	if (expire_dead_tunnels(s) > 0 || expired > 0)
		show_status(s);
	loop_timer_start(l, t, (uint64_t)s->o->check_interval_s * 1000);
}

/* Every mapping and its counters, for a scrape of /metrics. */
static int collect_metrics(void *data, struct metrics_snapshot *snap)
{
	static const int protocols[] = { IPPROTO_TCP, IPPROTO_UDP };
	struct server *s = data;
	size_t clients, n = registry_count(s->reg, &clients);
	struct registry_mapping *m;

	snap->maps = calloc(n ? n : 1, sizeof(*snap->maps));
	if (!snap->maps)
		return -ENOMEM;
	for (size_t i = 0; i < 2; i++)
		for (m = registry_next(s->reg, protocols[i], 0); m && snap->n_maps < n;
		     m = registry_next(s->reg, protocols[i], m->remote_port + 1u)) {
			struct metrics_mapping *out = &snap->maps[snap->n_maps++];

			*out = (struct metrics_mapping){ .port = m->remote_port, .protocol = m->protocol,
							 .peer = m->peer < s->conf->n_peers
									 ? &s->conf->peers[m->peer]
									 : NULL };
			if (m->protocol == IPPROTO_UDP)
				out->udp = *relay_pool_udp_stats(m->data);
			else
				out->tcp = *relay_pool_stats(m->data);
		}
	snap->conf = s->conf;
	snap->rps = &s->counts;
	return 0;
}

/* Each peer's name and mappings into its entry of status: one pass over
 * the ports.
 * Every mapping has a peer: only peers reach the API, bound to the tunnel. */
static int add_mappings(struct server *s, json_t *status)
{
	static const int protocols[] = { IPPROTO_TCP, IPPROTO_UDP };
	json_t **lists = calloc(s->n_peers + 1, sizeof(*lists));
	struct registry_mapping *m;
	struct wire_mapping_info v;
	int r = lists ? 0 : -ENOMEM;

	for (size_t i = 0; r == 0 && i < s->n_peers; i++) {
		const char *name = s->conf->peers[i].name;
		json_t *peer = status_peer(status, s->conf->peers[i].public_key);

		lists[i] = json_array();
		if (!lists[i] ||
		    (peer && (json_object_set_new(peer, "name", name ? json_string(name) : json_null()) < 0 ||
			      json_object_set(peer, "mappings", lists[i]) < 0)))
			r = -ENOMEM;
	}
	for (size_t i = 0; r == 0 && i < sizeof(protocols) / sizeof(protocols[0]); i++) {
		for (m = registry_next(s->reg, protocols[i], 0); r == 0 && m;
		     m = registry_next(s->reg, protocols[i], (uint32_t)m->remote_port + 1)) {
			if (m->peer >= s->n_peers)
				continue;
			describe(m, &v);
			r = json_array_append_new(lists[m->peer], wire_mapping_info_pack(&v));
		}
	}
	for (size_t i = 0; lists && i < s->n_peers; i++)
		json_decref(lists[i]);
	free(lists);
	return r < 0 ? -ENOMEM : 0;
}

static int fill_status(void *data, json_t *status)
{
	struct server *s = data;
	json_t *api = json_array();

	for (size_t i = 0; api && i < s->n_api; i++)
		if (json_array_append_new(api, json_string(s->api_addr[i])) < 0) {
			json_decref(api);
			return -ENOMEM;
		}
	if (json_object_set_new(status, "api", api) < 0)
		return -ENOMEM;
	return add_mappings(s, status);
}

static void status_command(void *data, struct control_request *req)
{
	struct server *s = data;
	size_t clients, n = registry_count(s->reg, &clients);
	char message[128];

	snprintf(message, sizeof(message), "%zu mapping%s from %zu client%s", n, n == 1 ? "" : "s",
		 clients, clients == 1 ? "" : "s");
	status_reply(req, "rps", s->dev, message, fill_status, s);
}

static void reload_command(void *data, struct control_request *req)
{
	struct server *s = data;

	cli_reload_command(&s->reload, req);
}

static const struct control_command control_commands[] = {
	{ "status", status_command },
	{ "reload", reload_command },
};

static void on_stop_signal(struct loop *l, int signo, void *data)
{
	(void)data;
	cli_stopping(signo);
	loop_stop(l);
}

static int start_api(struct server *s, const struct conf *c)
{
	struct errbuf e;

	if (c->n_addresses > MAX_API_ADDRESSES)
		log_warning("%s: the API listens on the first %d of its %zu Addresses only", c->name,
			    MAX_API_ADDRESSES, c->n_addresses);
	for (size_t i = 0; i < c->n_addresses && s->n_api < MAX_API_ADDRESSES; i++) {
		union sockaddr_inet addr;
		char shown[ADDR_HOSTPORT_STRLEN];

		sockaddr_inet_set(&addr, &c->addresses[i].addr, (uint16_t)s->o->api_port);
		if (api_server_new(&s->api[s->n_api], s->loop, &addr, s->o->ifname, routes,
				   sizeof(routes) / sizeof(routes[0]), s, &s->api_limits, &e) < 0) {
			log_error("API: %s", e.msg);
			return -1;
		}
		api_server_count(s->api[s->n_api], &s->counts.api);
		s->n_api++;
		sockaddr_inet_format(&addr, shown, sizeof(shown));
		memcpy(s->api_addr[s->n_api - 1], shown, sizeof(shown));
		log_info("API listening on %s", shown);
		snprintf(s->api_desc + strlen(s->api_desc), sizeof(s->api_desc) - strlen(s->api_desc),
			 "%s%s", s->n_api > 1 ? " " : "", shown);
	}
	return 0;
}

/* Peer i of c, with its MAC key: c's private key must be at hand. */
static struct server_peer *peer_new(const struct conf *c, size_t i)
{
	struct server_peer *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->conf = &c->peers[i];
	p->has_key = auth_derive_key(p->mac_key, c->private_key, c->peers[i].public_key) == 0;
	if (!p->has_key)
		log_warning("%s:%u: [Peer] PublicKey: no shared secret can be made with it; "
			    "its API requests can only be unsigned",
			    c->name, c->peers[i].line);
	return p;
}

static void peer_free(struct server_peer *p)
{
	if (!p)
		return;
	OPENSSL_cleanse(p->mac_key, sizeof(p->mac_key));
	auth_nonces_clear(&p->nonces);
	free(p);
}

static void free_peer_list(struct server_peer **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		peer_free(v[i]);
	free(v);
}

/* Each peer's MAC key, while the private key is at hand. */
static int set_up_peers(struct server *s, const struct conf *c)
{
	s->peers = calloc(c->n_peers + 1, sizeof(*s->peers));
	if (!s->peers || conf_secrets_take(&s->secrets, c) < 0)
		return -ENOMEM;
	for (; s->n_peers < c->n_peers; s->n_peers++) {
		s->peers[s->n_peers] = peer_new(c, s->n_peers);
		if (!s->peers[s->n_peers])
			return -ENOMEM;
	}
	s->api_limits = (struct api_limits){ .open_of = api_open_of, .data = s,
					     .max_per_group = API_MAX_CONNECTIONS_PER_PEER };
	return 0;
}

static void free_peers(struct server *s)
{
	free_peer_list(s->peers, s->n_peers);
	free_peer_list(s->retired, s->n_retired);
	conf_secrets_clear(&s->secrets);
}

/* The registry's policy for config c: the options, c's WireGuard port, and
 * each peer's own lines, which *own holds (the caller frees it). */
static int policy_of(const struct options *o, const struct conf *c, struct registry_policy *out,
		     struct registry_peer_policy **own)
{
	*own = calloc(c->n_peers + 1, sizeof(**own));
	if (!*own)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_peers; i++)
		(*own)[i] = (struct registry_peer_policy){ .allowed = c->peers[i].allow_ports,
							   .max_mappings = c->peers[i].max_mappings };
	*out = (struct registry_policy){ .allowed = o->allow_ports,
					 .reserved_tcp = { c->listen_port, (uint16_t)o->api_port },
					 .reserved_udp = c->listen_port,
					 .max_per_client = o->max_mappings,
					 .n_peers = c->n_peers + 1,
					 .peers = *own };
	return 0;
}

/* A reload in progress: the config it goes to and how it differs. */
struct reload {
	struct server *s;
	const struct conf *c;
	const struct conf_diff *diff;
};

/* A mapping stays with the peer that holds its client's address, when that
 * is the peer it had: an address now of another peer, or of none, loses it. */
static size_t reload_peer_of(void *data, const struct registry_mapping *m)
{
	const struct reload *rl = data;
	size_t now = conf_peer_of(rl->c, &m->client);

	if (m->peer >= rl->s->n_peers)
		return now == rl->c->n_peers ? now : REGISTRY_NO_PEER;
	return now < rl->c->n_peers && rl->diff->new_index[m->peer] == now ? now : REGISTRY_NO_PEER;
}

static void reload_dropped(void *data, struct registry_mapping *m)
{
	const struct reload *rl = data;
	char who[INET6_ADDRSTRLEN], port[PORT_LABEL_LEN];
	const char *why = "not in its [Peer]'s AllowPorts any more";

	if (m->peer < rl->s->n_peers && rl->diff->new_index[m->peer] == CONF_DIFF_NONE)
		why = "its [Peer] was removed";
	else if (reload_peer_of(data, m) == REGISTRY_NO_PEER)
		why = "no longer in its [Peer]'s AllowedIPs";
	ip_addr_format(&m->client, who, sizeof(who));
	log_warning("port %s of client %s unmapped: %s",
		    port_label(port, m->remote_port, m->protocol), who, why);
	close_listener(m);
}

/* The mappings of a peer whose MaxConnsPerSource changed take the new one,
 * for their new connections. Their peers are c's now. */
static void update_source_caps(struct server *s, const struct conf *c,
			       const struct conf_diff *diff)
{
	static const int protocols[] = { IPPROTO_TCP, IPPROTO_UDP };
	const struct registry_mapping *m;

	for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
		for (uint32_t port = 1;
		     (m = registry_next(s->reg, protocols[i], port)); port = m->remote_port + 1u)
			if (m->peer < c->n_peers &&
			    diff->changes[m->peer] & CONF_PEER_MAX_CONNS_PER_SOURCE)
				set_source_cap(m, c->peers[m->peer].max_conns_per_source);
}

/* The WireGuard port is never mapped: a new one held by a mapping refuses
 * the reload (WireGuard could not bind it, or the original refuses it). */
static int check_listen_port(struct server *s, const struct conf *c, struct diag_list *diags)
{
	static const int protocols[] = { IPPROTO_TCP, IPPROTO_UDP };
	char who[INET6_ADDRSTRLEN], port[PORT_LABEL_LEN];
	int r = 0;

	if (!c->listen_port || c->listen_port == s->conf->listen_port)
		return 0;
	for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++) {
		const struct registry_mapping *m = registry_get(s->reg, protocols[i], c->listen_port);

		if (!m)
			continue;
		ip_addr_format(&m->client, who, sizeof(who));
		diag_add(diags, DIAG_ERROR,
			 "%s: ListenPort %u: port %s is mapped by client %s; nothing was reloaded",
			 c->name, c->listen_port, port_label(port, m->remote_port, m->protocol), who);
		r = -EADDRINUSE;
	}
	return r;
}

/* The peers of c: those kept move over with their keys, nonces and counts;
 * the added get theirs (c's private key must be at hand). */
static int reload_peers(const struct conf *c, const struct conf_diff *diff,
			struct server_peer ***out)
{
	struct server_peer **v = calloc(c->n_peers + 1, sizeof(*v));

	*out = NULL;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_peers; i++) {
		if (diff->old_index[i] != CONF_DIFF_NONE)
			continue;
		v[i] = peer_new(c, i);
		if (!v[i]) {
			free_peer_list(v, c->n_peers);
			return -ENOMEM;
		}
	}
	*out = v;
	return 0;
}

/* Room in s->retired for every peer a reload may remove. */
static int reserve_retired(struct server *s)
{
	struct server_peer **v = reallocarray(s->retired, s->n_retired + s->n_peers + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	s->retired = v;
	return 0;
}

/* Takes the new peers over: the removed are freed, or kept aside while API
 * connections of theirs are open (s->retired has room for all). */
static void swap_peers(struct server *s, struct conf *c, const struct conf_diff *diff,
		       struct server_peer **peers)
{
	size_t kept = 0;

	for (size_t i = 0; i < c->n_peers; i++) {
		if (diff->old_index[i] != CONF_DIFF_NONE)
			peers[i] = s->peers[diff->old_index[i]];
		peers[i]->conf = &c->peers[i];
	}
	for (size_t i = 0; i < s->n_retired; i++) {
		if (s->retired[i]->api_open)
			s->retired[kept++] = s->retired[i];
		else
			peer_free(s->retired[i]);
	}
	s->n_retired = kept;
	for (size_t i = 0; i < s->n_peers; i++) {
		if (diff->new_index[i] != CONF_DIFF_NONE)
			continue;
		if (s->peers[i]->api_open)
			s->retired[s->n_retired++] = s->peers[i];
		else
			peer_free(s->peers[i]);
	}
	free(s->peers);
	s->peers = peers;
	s->n_peers = c->n_peers;
}

/* Reads the config again and applies what changed: the peers added,
 * removed or changed, over the device (the others are not touched, their
 * sessions go on), the mappings of addresses their peer lost, ListenPort,
 * FwMark, MTU. A config that does not load, or that changes what only a
 * restart applies, changes nothing. Returns 0, or a negative errno with
 * every reason in diags (its warnings too); SIGHUP and the control socket's
 * reload both come here. */
static int server_reload(void *data, struct diag_list *diags)
{
	struct server *s = data;
	struct conf *c = NULL;
	struct conf_diff diff = { 0 };
	struct conf_secrets secrets = { 0 };
	struct server_peer **peers = NULL;
	struct registry_policy policy;
	struct registry_peer_policy *own = NULL;
	struct reload rl = { .s = s, .diff = &diff };
	struct errbuf e;
	int r;

	r = conf_load(&c, s->o->config_path, diags);
	if (r == 0)
		r = conf_resolve_endpoints(c, diags);
	if (r == 0)
		r = conf_diff(&diff, s->conf, &s->secrets, c, "rps", diags);
	if (r == 0)
		r = check_listen_port(s, c, diags);
	if (r == 0 && (conf_secrets_take(&secrets, c) < 0 || reload_peers(c, &diff, &peers) < 0 ||
		       policy_of(s->o, c, &policy, &own) < 0 || reserve_retired(s) < 0)) {
		diag_add(diags, DIAG_ERROR, "%s: out of memory", s->o->config_path);
		r = -ENOMEM;
	}
	if (r < 0)
		goto out;
	r = device_update(s->dev, s->conf, c, &diff, diags, &e);
	if (r < 0) {
		diag_add(diags, DIAG_ERROR, "%s (the interface may hold part of the new config)",
			 e.msg);
		goto out;
	}
	cli_log_reload(s->conf, c, &diff);
	rl.c = c;
	if (registry_set_policy(s->reg, &policy, &(struct registry_repeer){ reload_peer_of,
									 reload_dropped },
				&rl) < 0)
		log_error("out of memory renumbering the mappings' peers: their quotas may be "
			  "off until rps restarts");
	update_source_caps(s, c, &diff);
	swap_peers(s, c, &diff, peers);
	peers = NULL;
	conf_take_over(&s->conf, &s->secrets, c, &secrets);
	c = NULL;
	if (conf_diff_empty(&diff))
		log_info("reloaded %s: no change", s->o->config_path);
	else
		log_info("reloaded %s: %zu peer%s added, %zu removed, %zu changed",
			 s->o->config_path, diff.n_added, diff.n_added == 1 ? "" : "s", diff.n_removed,
			 diff.n_changed);
	show_status(s);
out:
	free(own);
	free_peer_list(peers, c ? c->n_peers : 0);
	conf_secrets_clear(&secrets);
	conf_diff_free(&diff);
	conf_free(c);
	return r;
}

static void set_public_addr(struct server *s)
{
	struct ip_addr any6 = { .family = AF_INET6 };

	sockaddr_inet_set(&s->public_addr, s->o->has_bind ? &s->o->bind : &any6, 0);
}

int server_run(const struct options *o, struct conf *c)
{
	struct relay_config rc = { .pipe_kb = o->buffer_kb, .idle_timeout_s = o->idle_timeout_s,
				   .max_conns_per_source = o->max_conns_per_source,
				   .workers = o->workers, .udp_timeout_s = o->udp_timeout_s,
				   .udp_max_datagram = cli_udp_max_datagram(c) };
	struct registry_policy policy;
	struct registry_peer_policy *own = NULL;
	static const int protocols[] = { IPPROTO_TCP, IPPROTO_UDP };
	struct server s = { .o = o, .startup_time = time(NULL), .conf = c,
			    .reload = { o->config_path, server_reload, &s } };
	struct registry_mapping *m;
	int status = CLI_EXIT_FAILURE;

	s.ports = calloc(2 * ALL_PORTS, sizeof(*s.ports));
	if (!s.ports || policy_of(o, c, &policy, &own) < 0 || set_up_peers(&s, c) < 0 ||
	    loop_new(&s.loop) < 0 ||
	    cli_add_signals(s.loop, on_stop_signal, &s.reload, &s) < 0 ||
	    registry_new(&s.reg, &policy) < 0 ||
	    relay_pool_new(&s.relays, &rc) < 0 ||
	    ratelimit_table_new(&s.refusal_logs, REFUSAL_LIMIT_CLIENTS, RATELIMIT_WARNING_INTERVAL_MS,
				RATELIMIT_WARNING_BURST) < 0) {
		log_error("cannot set up: out of memory or file descriptors");
		goto out;
	}
	/* The API's connections, all together, stay within half of the fds the
	 * relays leave to the rest of rps, so the API never meets EMFILE (on
	 * which libmicrohttpd spins); the other half is for the device, netlink,
	 * the listeners and the control socket (CONTROL_MAX_CLIENTS + 1). */
	s.api_limits.max_total = (unsigned)(relay_pool_fd_reserve(s.relays) / 2);
	set_public_addr(&s);
	if (cli_control_new(&s.control, s.loop, o->ifname, "rps", control_commands,
			    sizeof(control_commands) / sizeof(control_commands[0]), &s) < 0 ||
	    cli_device_up(&s.dev, c, o->ifname, "rps") < 0)
		goto out;
	/* The device holds the keys now; we have no further use for them. */
	conf_wipe_private_key(c);
	s.watch = (struct cli_device_watch){ .loop = s.loop, .watchdog = &s.watchdog };
	if (cli_watch_device(&s.watch, s.dev) < 0)
		goto out;
	if (start_api(&s, c) < 0)
		goto out;
	if (o->has_metrics &&
	    metrics_start(&s.metrics, s.loop, &o->metrics,
			  &(struct metrics_source){ .dev = s.dev, .conf = c, .relays = s.relays,
						    .collect = collect_metrics, .data = &s },
			  &s.api_limits) < 0)
		goto out;
	loop_timer_init(&s.check_timer, check_clients, &s);
	loop_timer_start(s.loop, &s.check_timer, (uint64_t)o->check_interval_s * 1000);
	log_info("ready");
	notify_ready("API on %s; no mappings yet", s.api_desc);
	notify_watchdog_start(&s.watchdog, s.loop);
	status = loop_run(s.loop) < 0 || s.watch.lost ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
out:
	metrics_free(s.metrics);
	control_server_free(s.control);
	for (size_t i = 0; i < s.n_api; i++)
		api_server_free(s.api[i]);
	for (size_t i = 0; s.reg && i < sizeof(protocols) / sizeof(protocols[0]); i++)
		while ((m = registry_next(s.reg, protocols[i], 0)))
			remove_mapping(&s, protocols[i], m->remote_port);
	if (s.loop) {
		loop_timer_stop(s.loop, &s.check_timer);
		notify_watchdog_stop(&s.watchdog, s.loop);
	}
	relay_pool_free(s.relays);
	device_down(s.dev);
	registry_free(s.reg);
	ratelimit_table_free(s.refusal_logs);
	loop_free(s.loop);
	free(s.ports);
	free_peers(&s);
	free(own);
	conf_free(s.conf);
	return status;
}
