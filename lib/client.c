#include <errno.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "wgrp/api_client.h"
#include "wgrp/auth.h"
#include "wgrp/client.h"
#include "wgrp/conf_diff.h"
#include "wgrp/control.h"
#include "wgrp/device.h"
#include "wgrp/log.h"
#include "wgrp/metrics.h"
#include "wgrp/notify.h"
#include "wgrp/ports.h"
#include "wgrp/ratelimit.h"
#include "wgrp/relay_pool.h"
#include "wgrp/status.h"
#include "wgrp/transparent.h"
#include "wgrp/wire.h"

#define REQUEST_TIMEOUT_MS 5000
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 30000
/* A refused registration may succeed once the port is free again. */
#define REFUSED_RETRY_MS 30000
/* How long mappings get to be deleted on the way out. */
#define STOP_TIMEOUT_MS 3000
/* How often rpc reads the server peer's latest handshake from its device. */
#define HANDSHAKE_POLL_MS 1000

enum reg_state {
	UNREGISTERED,
	PENDING,
	REGISTERED,
	REFUSED, /* waiting for the retry timer */
};

struct client;

struct mapping {
	struct client *cl;
	struct route route; /* its own copy: a reload may change it */
	char port[PORT_LABEL_LEN]; /* the remote port as messages name it */
	struct relay_pool_listener *lis; /* a TCP route's */
	struct relay_pool_udp *udp;      /* a UDP route's */
	uint16_t tunnel_port;
	enum reg_state state;
	bool delete_when_answered; /* stopping: its POST is in flight */
	bool repost;               /* its POST in flight is out of date: post again */
	bool gone;                 /* removed by a reload while its POST was in flight */
	struct loop_timer retry;
	struct ratelimit refusal_log;
	uint64_t registrations, refusals; /* POSTs sent, and refused */
	char refusal[ERRBUF_LEN]; /* why the server refused it last, for the status */
	int64_t registered_at;    /* Unix seconds; 0: not registered */
};

struct client {
	const struct options *o;
	struct loop *loop;
	struct device *dev;
	struct relay_pool *relays;
	struct transparent_routing *routing; /* for transparent routes, if any */
	struct api_client *api;
	struct ip_addr self, server;
	char base_url[64];
	struct mapping **maps; /* each an allocation of its own: callbacks hold them */
	size_t n_maps;
	/* Removed by a reload with a POST in flight: freed on its answer, the
	 * port then deleted if the server took it. */
	struct mapping **gone;
	size_t n_gone;
	struct conf *conf;             /* what the device runs on, secrets wiped; the
					* metrics name its peers */
	struct conf_secrets secrets;   /* their digests, for a reload */
	size_t n_cli_routes;           /* the routes of -r, before the config's */
	bool reachable, reached_once, knows_startup;
	int64_t startup_time;
	uint64_t backoff_ms;
	struct loop_timer heartbeat_timer;
	/* The server peer's latest handshake, as last read. */
	uint8_t server_key[WG_KEY_LEN];
	struct timespec server_handshake;
	struct loop_timer handshake_timer;
	struct notify_watchdog watchdog;
	struct cli_device_watch watch;
	struct cli_reload reload;
	struct control_server *control;
	bool stopping;
	size_t deletes_pending;
	struct loop_timer stop_timer;
	/* Signs every API request; the only copy, wiped on the way out. */
	uint8_t mac_key[AUTH_KEY_LEN];
	struct metrics_rpc_counts counts;
	struct metrics_server *metrics;
};

int client_default_server(const struct conf *c, struct ip_addr *out)
{
	struct ip_prefix net;
	uint8_t *b;
	int last;

	if (!c->n_peers || !c->peers[0].n_allowed_ips)
		return -ENOENT;
	net = ip_prefix_masked(&c->peers[0].allowed_ips[0]);
	*out = net.addr;
	/* A host route (/32, /128) or a point-to-point pair names the host itself. */
	if (net.cidr >= (net.addr.family == AF_INET ? 31 : 127))
		return 0;
	b = net.addr.family == AF_INET ? (uint8_t *)&out->v4 : (uint8_t *)&out->v6;
	last = net.addr.family == AF_INET ? 3 : 15;
	b[last] |= 1;
	return 0;
}

static void register_mapping(struct mapping *m);
static void send_heartbeat(struct client *cl);
static void delete_mapping(struct mapping *m);

/* The one-line state systemctl status shows. */
static void show_status(struct client *cl)
{
	size_t registered = 0, refused = 0;

	for (size_t i = 0; i < cl->n_maps; i++) {
		registered += cl->maps[i]->state == REGISTERED;
		refused += cl->maps[i]->state == REFUSED;
	}
	if (!cl->reachable)
		notify_status("%s server at %s", cl->reached_once ? "lost the" : "waiting for",
			      cl->base_url);
	else if (refused)
		notify_status("%zu of %zu mappings registered; %zu refused by the server (see the log)",
			      registered, cl->n_maps, refused);
	else if (registered == cl->n_maps)
		notify_status("%zu mapping%s registered", registered, registered == 1 ? "" : "s");
	else
		notify_status("registering: %zu of %zu mappings done", registered, cl->n_maps);
}

static void schedule_heartbeat(struct client *cl, uint64_t after_ms)
{
	if (!cl->stopping)
		loop_timer_start(cl->loop, &cl->heartbeat_timer, after_ms);
}

/* Logs once per change between reachable and not, never per attempt. */
static void set_reachable(struct client *cl, bool reachable, const char *why)
{
	if (reachable && !cl->reachable)
		log_info("server at %s is %s", cl->base_url,
			 cl->reached_once ? "reachable again" : "reachable");
	else if (!reachable && (cl->reachable || !cl->reached_once) && why)
		log_warning("%s at %s (%s); retrying with backoff up to %d s",
			    cl->reached_once ? "lost the server" : "no answer yet from the server",
			    cl->base_url, why, BACKOFF_MAX_MS / 1000);
	if (reachable)
		cl->reached_once = true;
	cl->reachable = reachable;
}

/* What an answer says, escaped for the log: its message, or what went wrong
 * reading it. */
static void answer_message(const char *body, size_t len, char *out, size_t size)
{
	struct wire_reply r;
	struct errbuf e;

	if (wire_reply_decode(&r, body, len, &e) == 0) {
		log_escape(out, size, r.message);
		wire_reply_clear(&r);
	} else {
		snprintf(out, size, "unreadable answer: ");
		log_escape(out + strlen(out), size - strlen(out), e.msg);
	}
}

/* The DELETE of port: "?port=N", with "&protocol=udp" for UDP (absent is
 * tcp, as the original server knows it). */
static void deletion_target(char *buf, size_t size, uint16_t port, int protocol)
{
	snprintf(buf, size, "/api/v1/port-mappings?port=%u%s", port,
		 protocol == IPPROTO_UDP ? "&protocol=udp" : "");
}

/* Answers to the deletion of a port no route wants. */
static void on_unwanted_deleted(void *data, long status, const char *body, size_t len,
				const char *error)
{
	char msg[ERRBUF_LEN];

	(void)data;
	if (status == 200)
		return;
	if (status)
		answer_message(body, len, msg, sizeof(msg));
	log_warning("removing a port no route wants: %s", status ? msg : error);
}

/* Asks the server to drop port, which no route should have there. */
static void delete_unwanted(struct client *cl, uint16_t port, int protocol)
{
	char target[64];

	deletion_target(target, sizeof(target), port, protocol);
	api_client_request(cl->api, "DELETE", target, NULL, REQUEST_TIMEOUT_MS,
			   on_unwanted_deleted, cl);
}

/* A route that tells the service of its visitors needs a server that sends
 * PROXY headers, and a UDP route one that relays UDP: one that says so in
 * its answer (the original ignores both fields, and would relay connections
 * that rpc must then reset, or open a TCP port). Returns the field the
 * answer does not repeat, or NULL. */
static const char *unhonoured_field(const struct mapping *m, const char *body, size_t len)
{
	bool proxy = m->route.visitor != ROUTE_PLAIN, udp = m->route.protocol == IPPROTO_UDP;
	const char *missing = NULL;
	struct wire_reply r;

	if (!proxy && !udp)
		return NULL;
	if (wire_reply_decode(&r, body, len, NULL) < 0)
		return udp ? "protocol" : "proxy_protocol";
	if (udp && !(r.has_protocol && r.protocol == IPPROTO_UDP))
		missing = "protocol";
	else if (proxy && !(r.has_proxy_protocol && r.proxy_protocol == 2))
		missing = "proxy_protocol";
	wire_reply_clear(&r);
	return missing;
}

static void registration_answered(struct mapping *m, long status, const char *body, size_t len,
				  const char *error)
{
	struct client *cl = m->cl;
	char msg[ERRBUF_LEN], local[ADDR_HOSTPORT_STRLEN], note[64] = "";
	const char *missing = status == 200 ? unhonoured_field(m, body, len) : NULL;
	unsigned held;

	if (missing) {
		bool as_tcp = !strcmp(missing, "protocol");

		m->refusals++;
		m->state = REFUSED;
		snprintf(m->refusal, sizeof(m->refusal),
			 "the server took the port but not its \"%s\" (an rps older than this rpc?)",
			 missing);
		loop_timer_start(cl->loop, &m->retry, REFUSED_RETRY_MS);
		/* A server blind to "protocol" opened a TCP port. */
		delete_unwanted(cl, m->route.remote_port, as_tcp ? IPPROTO_TCP : m->route.protocol);
		if (ratelimit_allow(&m->refusal_log, loop_now(cl->loop), &held))
			log_error("the server took port %s but not its \"%s\" (an rps older than "
				  "this rpc?): the route's %s needs it; removed the port, retrying "
				  "in %d s",
				  m->port, missing,
				  as_tcp ? "/udp" : route_visitor_name(m->route.visitor),
				  REFUSED_RETRY_MS / 1000);
		return;
	}
	if (status == 200) {
		m->state = REGISTERED;
		m->registered_at = time(NULL);
		hostport_format(&m->route.local, local, sizeof(local));
		log_info("port %s on the server now reaches %s (tunnel port %u)%s%s", m->port, local,
			 m->tunnel_port, m->route.visitor == ROUTE_PLAIN ? "" : ", ",
			 route_visitor_name(m->route.visitor));
		return;
	}
	if (status == 409 || status == 403) {
		m->refusals++;
		m->state = REFUSED;
		loop_timer_start(cl->loop, &m->retry, REFUSED_RETRY_MS);
		answer_message(body, len, m->refusal, sizeof(m->refusal));
		if (!ratelimit_allow(&m->refusal_log, loop_now(cl->loop), &held))
			return;
		if (held)
			snprintf(note, sizeof(note), " (%u refusals before this one not logged)", held);
		log_warning("server refused port %s: %s; retrying in %d s%s", m->port, m->refusal,
			    REFUSED_RETRY_MS / 1000, note);
		return;
	}
	/* Unreachable or confused: the heartbeat finds out and registers again. */
	m->state = UNREGISTERED;
	if (status) {
		answer_message(body, len, msg, sizeof(msg));
		log_warning("registering port %s: HTTP %ld: %s", m->port, status, msg);
	} else {
		log_debug("registering port %s: %s", m->port, log_escape(msg, sizeof(msg), error));
	}
}

/* One of the deletions on the way out is done. */
static void deletion_done(struct client *cl)
{
	if (--cl->deletes_pending == 0)
		loop_stop(cl->loop);
}

/* The answer to the POST of a mapping a reload removed: the port goes again
 * if the server took it. */
static void gone_answered(struct mapping *m, long status)
{
	struct client *cl = m->cl;
	size_t i = 0;

	if (status == 200)
		delete_unwanted(cl, m->route.remote_port, m->route.protocol);
	while (cl->gone[i] != m)
		i++;
	cl->gone[i] = cl->gone[--cl->n_gone];
	free(m);
}

static void on_registered(void *data, long status, const char *body, size_t len, const char *error)
{
	struct mapping *m = data;

	if (m->gone) {
		gone_answered(m, status);
		return;
	}
	registration_answered(m, status, body, len, error);
	/* A reload changed what the server must do for it meanwhile. */
	if (m->repost && m->state != PENDING) {
		m->repost = false;
		m->state = UNREGISTERED;
		if (m->cl->reachable)
			register_mapping(m);
	}
	show_status(m->cl);
	if (!m->delete_when_answered)
		return;
	/* Stopping: now that the POST is answered, a DELETE cannot overtake it.
	 * Without an answer the server may have it all the same. */
	m->delete_when_answered = false;
	if (status == 200 || status == 0)
		delete_mapping(m);
	else
		deletion_done(m->cl);
}

static void register_mapping(struct mapping *m)
{
	struct client *cl = m->cl;
	struct wire_mapping_request w = { .remote_port = m->route.remote_port,
					  .has_client_ip = true, .client_ip = cl->self,
					  .client_port = m->tunnel_port };
	char *body;

	/* After SIGTERM nothing new: the DELETEs on the way out must be last. */
	if (cl->stopping)
		return;
	if (m->route.visitor != ROUTE_PLAIN) {
		w.has_proxy_protocol = true;
		w.proxy_protocol = 2;
	}
	/* Said for UDP only: an rps older than this rpc refuses the field. */
	if (m->route.protocol == IPPROTO_UDP) {
		w.has_protocol = true;
		w.protocol = IPPROTO_UDP;
	}
	hostport_format(&m->route.local, w.local_addr, sizeof(w.local_addr));
	if (wire_mapping_request_encode(&w, &body) < 0)
		return;
	if (api_client_request(cl->api, "POST", "/api/v1/port-mappings", body, REQUEST_TIMEOUT_MS,
			       on_registered, m) == 0) {
		m->state = PENDING;
		m->registrations++;
	}
	free(body);
}

static void on_retry(struct loop *l, struct loop_timer *t)
{
	struct mapping *m = t->data;

	(void)l;
	if (m->state == REFUSED)
		register_mapping(m);
}

/* Whether the heartbeat's answer r lists m's port among those the server
 * holds for us; true when it does not say (the original server). */
static bool server_holds(const struct mapping *m, const struct wire_reply *r)
{
	bool udp = m->route.protocol == IPPROTO_UDP;
	const uint16_t *ports = udp ? r->udp_mappings : r->mappings;
	size_t n = udp ? r->n_udp_mappings : r->n_mappings;

	if (!(udp ? r->has_udp_mappings : r->has_mappings))
		return true;
	for (size_t i = 0; i < n; i++)
		if (ports[i] == m->route.remote_port)
			return true;
	return false;
}

/* Compares what the server holds with what we want, and repairs. */
static void reconcile(struct client *cl, const struct wire_reply *r)
{
	if (cl->knows_startup && r->server_startup_time != cl->startup_time) {
		log_warning("server restarted: registering every mapping again");
		for (size_t i = 0; i < cl->n_maps; i++)
			if (cl->maps[i]->state == REGISTERED)
				cl->maps[i]->state = UNREGISTERED;
	}
	cl->knows_startup = r->has_server_startup_time;
	cl->startup_time = r->server_startup_time;
	for (size_t i = 0; i < cl->n_maps; i++) {
		struct mapping *m = cl->maps[i];

		if (m->state == REGISTERED && !server_holds(m, r)) {
			log_warning("server lost port %s: registering it again", m->port);
			m->state = UNREGISTERED;
		}
	}
	for (size_t i = 0; i < cl->n_maps; i++)
		if (cl->maps[i]->state == UNREGISTERED)
			register_mapping(cl->maps[i]);
}

/* Whether the server's entry e is what mapping m registered. */
static bool points_to_us(const struct mapping *m, const struct wire_mapping_info *e)
{
	union sockaddr_inet target;
	char want[ADDR_HOSTPORT_STRLEN];

	sockaddr_inet_set(&target, &m->cl->self, m->tunnel_port);
	sockaddr_inet_format(&target, want, sizeof(want));
	return !strcmp(want, e->target);
}

/* What the server lists for us: each registered mapping must point at its
 * own tunnel port (anyone else on this host may have re-posted it, if the
 * server takes unsigned requests), and a port made with our key that no
 * route wants is left by an earlier run: it goes. Ports made by hand
 * (unsigned) are not ours to remove. */
static void on_listed(void *data, long status, const char *body, size_t len, const char *error)
{
	struct client *cl = data;
	struct wire_mapping_info *v;
	struct errbuf e;
	size_t n;

	if (status != 200 || cl->stopping) {
		log_debug("listing the mappings: %s", status ? "not answered 200" : error);
		return;
	}
	if (wire_mapping_list_decode(&v, &n, body, len, &e) < 0) {
		log_debug("listing the mappings: %s", e.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct mapping *m = NULL;
		char port[PORT_LABEL_LEN];

		for (size_t j = 0; j < cl->n_maps && !m; j++)
			if (cl->maps[j]->route.remote_port == v[i].remote_port &&
			    cl->maps[j]->route.protocol == v[i].protocol)
				m = cl->maps[j];
		port_label(port, v[i].remote_port, v[i].protocol);
		if (m && m->state == REGISTERED && !points_to_us(m, &v[i])) {
			log_warning("port %s on the server goes to %s, not to this rpc: registering it again",
				    port, v[i].target);
			m->state = UNREGISTERED;
			register_mapping(m);
		} else if (!m && v[i].is_signed) {
			log_warning("port %s on the server is ours but no route wants it "
				    "(left by an earlier run?): removing it", port);
			delete_unwanted(cl, v[i].remote_port, v[i].protocol);
		}
	}
	free(v);
	show_status(cl);
}

static void on_heartbeat(void *data, long status, const char *body, size_t len, const char *error)
{
	struct client *cl = data;
	struct wire_reply r;
	struct errbuf e;
	char why[ERRBUF_LEN], msg[ERRBUF_LEN];

	if (status == 200 && wire_reply_decode(&r, body, len, &e) == 0) {
		set_reachable(cl, true, NULL);
		cl->backoff_ms = BACKOFF_FIRST_MS;
		reconcile(cl, &r);
		wire_reply_clear(&r);
		show_status(cl);
		if (!cl->stopping)
			api_client_request(cl->api, "GET", "/api/v1/port-mappings", NULL,
					   REQUEST_TIMEOUT_MS, on_listed, cl);
		schedule_heartbeat(cl, (uint64_t)cl->o->heartbeat_interval_s * 1000);
		return;
	}
	if (status == 200) {
		snprintf(why, sizeof(why), "unreadable heartbeat answer: %s",
			 log_escape(msg, sizeof(msg), e.msg));
	} else if (status) {
		/* A 401 says why: clocks apart, or another key in the server's config. */
		answer_message(body, len, msg, sizeof(msg));
		snprintf(why, sizeof(why), "HTTP %ld: %.200s", status, msg);
	} else {
		log_escape(why, sizeof(why), error);
	}
	cl->counts.heartbeats_failed++;
	set_reachable(cl, false, why);
	show_status(cl);
	schedule_heartbeat(cl, cl->backoff_ms);
	cl->backoff_ms = cl->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : cl->backoff_ms * 2;
}

static void send_heartbeat(struct client *cl)
{
	struct wire_heartbeat_request w = { .has_client_ip = true, .client_ip = cl->self };
	char *body;

	if (wire_heartbeat_request_encode(&w, &body) < 0) {
		schedule_heartbeat(cl, cl->backoff_ms);
		return;
	}
	if (api_client_request(cl->api, "POST", "/api/v1/heartbeat", body, REQUEST_TIMEOUT_MS,
			       on_heartbeat, cl) < 0)
		schedule_heartbeat(cl, cl->backoff_ms);
	else
		cl->counts.heartbeats_sent++;
	free(body);
}

static void on_heartbeat_timer(struct loop *l, struct loop_timer *t)
{
	(void)l;
	send_heartbeat(t->data);
}

/* A handshake other than the first may be with a new server: a restarted
 * rps has no session, so the tunnel makes a new one at our next packet,
 * while the heartbeat that sent it waits out TCP's backoff. A heartbeat at
 * once learns the server's startup time and registers again without that
 * wait (a routine rekey, every 2 minutes, costs one heartbeat more). */
static void on_handshake_timer(struct loop *l, struct loop_timer *t)
{
	struct client *cl = t->data;
	struct wg_device_info *info;
	struct errbuf e;

	if (device_get(cl->dev, &info, &e) == 0) {
		for (size_t i = 0; i < info->n_peers; i++) {
			const struct timespec *hs = &info->peers[i].last_handshake;
			bool had = cl->server_handshake.tv_sec || cl->server_handshake.tv_nsec;

			if (memcmp(info->peers[i].public_key, cl->server_key, WG_KEY_LEN) ||
			    (hs->tv_sec == cl->server_handshake.tv_sec &&
			     hs->tv_nsec == cl->server_handshake.tv_nsec))
				continue;
			cl->server_handshake = *hs;
			if (had && !cl->stopping) {
				log_debug("a new handshake with the server: heartbeat now, in case it "
					  "restarted");
				loop_timer_stop(l, &cl->heartbeat_timer);
				send_heartbeat(cl);
			}
		}
		wg_device_info_free(info);
	}
	loop_timer_start(l, t, HANDSHAKE_POLL_MS);
}

static void on_deleted(void *data, long status, const char *body, size_t len, const char *error)
{
	struct mapping *m = data;
	struct client *cl = m->cl;
	char msg[ERRBUF_LEN];

	if (status == 200) {
		log_info("port %s removed from the server", m->port);
	} else if (status) {
		answer_message(body, len, msg, sizeof(msg));
		log_warning("removing port %s from the server: HTTP %ld: %s", m->port, status, msg);
	} else {
		log_warning("removing port %s from the server: %s", m->port,
			    log_escape(msg, sizeof(msg), error));
	}
	deletion_done(cl);
}

static void delete_mapping(struct mapping *m)
{
	struct client *cl = m->cl;
	char target[64];

	deletion_target(target, sizeof(target), m->route.remote_port, m->route.protocol);
	if (api_client_request(cl->api, "DELETE", target, NULL, STOP_TIMEOUT_MS, on_deleted, m) < 0)
		deletion_done(cl);
}

static void on_stop_timeout(struct loop *l, struct loop_timer *t)
{
	struct client *cl = t->data;

	log_warning("gave up waiting for the server to remove %zu mapping%s", cl->deletes_pending,
		    cl->deletes_pending == 1 ? "" : "s");
	loop_stop(l);
}

/* On the way out, the server is told to drop our mappings, for a bounded
 * time: a server that is gone must not keep us from exiting. */
static void on_stop_signal(struct loop *l, int signo, void *data)
{
	struct client *cl = data;

	if (cl->stopping)
		return;
	cli_stopping(signo);
	cl->stopping = true;
	loop_timer_stop(l, &cl->heartbeat_timer);
	/* Counted first: a failed request ends its count while others start. */
	for (size_t i = 0; i < cl->n_maps; i++)
		cl->deletes_pending += cl->maps[i]->state == REGISTERED || cl->maps[i]->state == PENDING;
	if (!cl->deletes_pending) {
		loop_stop(l);
		return;
	}
	for (size_t i = 0; i < cl->n_maps; i++) {
		struct mapping *m = cl->maps[i];

		loop_timer_stop(l, &m->retry);
		/* A DELETE could overtake a POST in flight on another connection:
		 * it waits for the answer. */
		if (m->state == PENDING)
			m->delete_when_answered = true;
		else if (m->state == REGISTERED)
			delete_mapping(m);
	}
	if (!cl->deletes_pending) {
		loop_stop(l);
		return;
	}
	loop_timer_start(l, &cl->stop_timer, STOP_TIMEOUT_MS);
}

/* Every route, its state and counters, for a scrape of /metrics. */
static int collect_metrics(void *data, struct metrics_snapshot *snap)
{
	struct client *cl = data;

	snap->maps = calloc(cl->n_maps ? cl->n_maps : 1, sizeof(*snap->maps));
	if (!snap->maps)
		return -ENOMEM;
	for (size_t i = 0; i < cl->n_maps; i++) {
		const struct mapping *m = cl->maps[i];
		struct metrics_mapping *out = &snap->maps[i];

		*out = (struct metrics_mapping){ .port = m->route.remote_port,
						 .protocol = m->route.protocol,
						 .registered = m->state == REGISTERED,
						 .registration_attempts = m->registrations,
						 .registration_refusals = m->refusals };
		if (m->route.protocol == IPPROTO_UDP)
			out->udp = *relay_pool_udp_stats(m->udp);
		else
			out->tcp = *relay_pool_stats(m->lis);
	}
	snap->n_maps = cl->n_maps;
	snap->conf = cl->conf;
	snap->rpc = &cl->counts;
	return 0;
}

static const char *const state_names[] = {
	[UNREGISTERED] = "waiting", [PENDING] = "waiting",
	[REGISTERED] = "registered", [REFUSED] = "refused",
};

/* A route in the status: its entry as the server lists it (the tunnel port
 * as target, the service as local_addr), with its state and counters. */
static json_t *route_pack(const struct mapping *m)
{
	bool udp = m->route.protocol == IPPROTO_UDP;
	struct wire_mapping_info v = {
		.remote_port = m->route.remote_port, .protocol = (uint8_t)m->route.protocol,
		.created = m->state == REGISTERED ? m->registered_at : 0,
		.proxy_protocol = m->route.visitor == ROUTE_PLAIN ? 0 : 2,
	};
	union sockaddr_inet tunnel;
	json_t *o;

	sockaddr_inet_set(&tunnel, &m->cl->self, m->tunnel_port);
	sockaddr_inet_format(&tunnel, v.target, sizeof(v.target));
	hostport_format(&m->route.local, v.local_addr, sizeof(v.local_addr));
	status_traffic(&v, udp ? NULL : m->lis, udp ? m->udp : NULL);
	o = wire_mapping_info_pack(&v);
	/* Ours are always signed: nothing to tell. */
	json_object_del(o, "signed");
	if (json_object_set_new(o, "option",
				m->route.visitor == ROUTE_PLAIN
					? json_null()
					: json_string(route_visitor_name(m->route.visitor))) < 0 ||
	    json_object_set_new(o, "state", json_string(state_names[m->state])) < 0 ||
	    (m->state == REFUSED && json_object_set_new(o, "message", json_string(m->refusal)) < 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int fill_status(void *data, json_t *status)
{
	struct client *cl = data;
	json_t *routes = json_array(), *peer = status_peer(status, cl->server_key);

	for (size_t i = 0; routes && i < cl->n_maps; i++)
		if (json_array_append_new(routes, route_pack(cl->maps[i])) < 0) {
			json_decref(routes);
			return -ENOMEM;
		}
	if (json_object_set_new(status, "routes", routes) < 0 ||
	    json_object_set_new(status, "server",
				json_pack("{s:s, s:b}", "api", cl->base_url, "reachable",
					  (int)cl->reachable)) < 0 ||
	    (peer && json_object_set_new(peer, "server", json_true()) < 0))
		return -ENOMEM;
	return 0;
}

static void status_command(void *data, struct control_request *req)
{
	struct client *cl = data;
	size_t registered = 0;
	char message[128];

	for (size_t i = 0; i < cl->n_maps; i++)
		registered += cl->maps[i]->state == REGISTERED;
	snprintf(message, sizeof(message), "%zu of %zu route%s registered", registered, cl->n_maps,
		 cl->n_maps == 1 ? "" : "s");
	status_reply(req, "rpc", cl->dev, message, fill_status, cl);
}

static void reload_command(void *data, struct control_request *req)
{
	struct client *cl = data;

	cli_reload_command(&cl->reload, req);
}

static const struct control_command control_commands[] = {
	{ "status", status_command },
	{ "reload", reload_command },
};

/* The local service: a name is resolved once, preferring IPv4 as services
 * on "localhost" mostly listen there. */
static int resolve_local(const struct route *r, union sockaddr_inet *out, struct errbuf *e)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = r->protocol == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM },
			*res, *pick;
	char port[8];
	int err;

	if (r->local.is_ip) {
		*out = r->local.addr;
		return 0;
	}
	snprintf(port, sizeof(port), "%u", r->local.port);
	err = getaddrinfo(r->local.host, port, &hints, &res);
	if (err)
		return errbuf_set(e, -EHOSTUNREACH, "cannot resolve %s: %s", r->local.host,
				  gai_strerror(err));
	pick = res;
	for (struct addrinfo *a = res; a; a = a->ai_next)
		if (a->ai_family == AF_INET) {
			pick = a;
			break;
		}
	memcpy(out, pick->ai_addr, pick->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

/* What the relays of route r read from rps and tell the service. */
static const struct relay_visitor *visitor_of_route(const struct route *r)
{
	static const struct relay_visitor modes[] = {
		[ROUTE_PLAIN] = { 0 },
		[ROUTE_SEND_PROXY] = { .read_header = true, .send_header = 1 },
		[ROUTE_SEND_PROXY_V2] = { .read_header = true, .send_header = 2 },
		[ROUTE_TRANSPARENT] = { .read_header = true, .transparent = true },
	};

	return &modes[r->visitor];
}

/* Checks that connections to target can come from visitors' addresses, and
 * routes the service's answers to them back to us. */
static int route_transparently(struct client *cl, const struct route *route,
			       const union sockaddr_inet *target, struct errbuf *e)
{
	char spec[ROUTE_STRLEN];
	struct errbuf why;
	int r = transparent_probe(target->sa.sa_family, &why);

	if (r == 0 && !cl->routing)
		r = transparent_routing_new(&cl->routing, TRANSPARENT_TABLE, &why);
	if (r == 0)
		r = transparent_routing_add_target(cl->routing, target, route->protocol, &why);
	if (r < 0) {
		route_format(route, spec, sizeof(spec));
		return errbuf_set(e, r, "route %s: %s", spec, why.msg);
	}
	return 0;
}

/* A UDP route's flows through the UDP engine, from the server only. */
static int open_udp_listener(struct mapping *m, const union sockaddr_inet *bind_addr,
			     const union sockaddr_inet *target, struct errbuf *e)
{
	union sockaddr_inet bound;
	int r;

	r = relay_pool_listen_udp(&m->udp, m->cl->relays, bind_addr, target, &m->cl->server,
				  visitor_of_route(&m->route), e);
	if (r < 0)
		return r;
	relay_pool_udp_address(m->udp, &bound);
	m->tunnel_port = sockaddr_inet_port(&bound);
	return 0;
}

/* Opens m's listener on our tunnel address, where rps sends its visitors,
 * and notes its port. */
static int open_listener(struct mapping *m, const union sockaddr_inet *bind_addr,
			 const union sockaddr_inet *target, struct errbuf *e)
{
	union sockaddr_inet bound;
	int r;

	if (m->route.protocol == IPPROTO_UDP)
		return open_udp_listener(m, bind_addr, target, e);
	r = relay_pool_listen(&m->lis, m->cl->relays, bind_addr, target, &m->cl->server,
			      visitor_of_route(&m->route), e);
	if (r < 0)
		return r;
	relay_pool_address(m->lis, &bound);
	m->tunnel_port = sockaddr_inet_port(&bound);
	return 0;
}

static void close_listener(struct mapping *m)
{
	if (m->route.protocol == IPPROTO_UDP)
		relay_pool_udp_close(m->udp);
	else
		relay_pool_close(m->lis);
}

/* Where route's connections go: its service, resolved, and reachable from
 * visitors' addresses for a transparent one. */
static int route_target(struct client *cl, const struct route *route, union sockaddr_inet *target,
			struct errbuf *e)
{
	int r = resolve_local(route, target, e);

	if (r == 0 && route->visitor == ROUTE_TRANSPARENT)
		r = route_transparently(cl, route, target, e);
	return r;
}

/* A mapping for route, its listener open on our tunnel address. Returns 0
 * with *out set, or a negative errno with the reason in e. */
static int mapping_new(struct client *cl, const struct route *route, struct mapping **out,
		       struct errbuf *e)
{
	union sockaddr_inet bind_addr, target;
	struct mapping *m = calloc(1, sizeof(*m));
	int r;

	*out = NULL;
	if (!m)
		return errbuf_set(e, -ENOMEM, "out of memory");
	m->cl = cl;
	m->route = *route;
	port_label(m->port, route->remote_port, route->protocol);
	loop_timer_init(&m->retry, on_retry, m);
	m->refusal_log = (struct ratelimit)RATELIMIT_INIT(RATELIMIT_WARNING_INTERVAL_MS,
							  RATELIMIT_WARNING_BURST);
	sockaddr_inet_set(&bind_addr, &cl->self, 0);
	r = route_target(cl, route, &target, e);
	if (r == 0)
		r = open_listener(m, &bind_addr, &target, e);
	if (r < 0) {
		free(m);
		return r;
	}
	*out = m;
	return 0;
}

static void mapping_free(struct mapping *m)
{
	if (!m)
		return;
	loop_timer_stop(m->cl->loop, &m->retry);
	close_listener(m);
	free(m);
}

static int open_listeners(struct client *cl, const struct route_list *routes, struct errbuf *e)
{
	for (size_t i = 0; i < routes->n; i++) {
		int r = mapping_new(cl, &routes->items[i], &cl->maps[i], e);

		if (r < 0)
			return r;
		cl->n_maps++;
	}
	return 0;
}

/* The MAC key shared with the server, and its public key: of the [Peer]
 * whose AllowedIPs hold the server's API address (the longest prefix, as
 * WireGuard routes), or the first. */
static int derive_key(uint8_t key[AUTH_KEY_LEN], uint8_t server_key[WG_KEY_LEN],
		      const struct ip_addr *server_addr, const struct conf *c, struct errbuf *e)
{
	size_t i = conf_peer_of(c, server_addr);
	const struct conf_peer *server = &c->peers[i < c->n_peers ? i : 0];

	if (!c->n_peers)
		return errbuf_set(e, -EINVAL, "%s: no [Peer]: the server's public key is needed "
				  "to sign API requests", c->name);
	memcpy(server_key, server->public_key, WG_KEY_LEN);
	if (auth_derive_key(key, c->private_key, server->public_key) < 0)
		return errbuf_set(e, -EINVAL,
				  "%s:%u: [Peer] PublicKey: no shared secret can be made with it "
				  "to sign API requests", c->name, server->line);
	return 0;
}

/* Our tunnel address of the server's family: where the server reaches us. */
static int pick_self(struct client *cl, const struct conf *c, struct errbuf *e)
{
	char server[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < c->n_addresses; i++) {
		if (c->addresses[i].addr.family == cl->server.family) {
			cl->self = c->addresses[i].addr;
			return 0;
		}
	}
	ip_addr_format(&cl->server, server, sizeof(server));
	return errbuf_set(e, -EINVAL, "%s: no Address of the family of the server's %s", c->name,
			  server);
}

/* What a reload does with a route kept (same remote port and protocol). */
enum route_change {
	ROUTE_SAME,
	ROUTE_RETARGET,   /* the local side only: the service, or which header it gets */
	ROUTE_REREGISTER, /* and whether rps sends PROXY headers: posted again */
};

static enum route_change route_change(const struct route *old, const struct route *new)
{
	if (!strcmp(old->local.host, new->local.host) && old->local.port == new->local.port &&
	    old->visitor == new->visitor)
		return ROUTE_SAME;
	return (old->visitor == ROUTE_PLAIN) == (new->visitor == ROUTE_PLAIN) ? ROUTE_RETARGET
									   : ROUTE_REREGISTER;
}

/* Whether m is one of the running mappings (compared, never read: a
 * removed one may be freed). */
static bool running_mapping(const struct client *cl, const struct mapping *m)
{
	for (size_t i = 0; i < cl->n_maps; i++)
		if (cl->maps[i] == m)
			return true;
	return false;
}

static struct mapping *find_mapping(struct client *cl, const struct route *r)
{
	for (size_t i = 0; i < cl->n_maps; i++)
		if (cl->maps[i]->route.remote_port == r->remote_port &&
		    cl->maps[i]->route.protocol == r->protocol)
			return cl->maps[i];
	return NULL;
}

/* The routes after a reload: those of -r, then c's Route lines. */
static int reload_routes(struct client *cl, const struct conf *c, struct route_list *out,
			 struct diag_list *diags)
{
	struct errbuf e;
	int r = 0;

	for (size_t i = 0; i < cl->n_cli_routes; i++) {
		if (array_reserve(&out->items, out->n, sizeof(*out->items)) < 0)
			return -ENOMEM;
		out->items[out->n++] = cl->o->routes.items[i];
	}
	for (size_t i = 0; i < c->n_routes; i++) {
		int err = route_list_add(out, c->routes[i].spec, &e);

		if (err == -ENOMEM)
			return err;
		if (err < 0) {
			diag_add(diags, DIAG_ERROR, "%s:%u: Route: %s", c->name, c->routes[i].line,
				 e.msg);
			r = -EINVAL;
		}
	}
	if (r == 0 && out->n == 0) {
		diag_add(diags, DIAG_ERROR, "%s: no route left (no -r, no Route line)", c->name);
		r = -EINVAL;
	}
	return r;
}

/* The mapping of each new route: kept ones (their new targets in targets),
 * or opened for the added ones. Nothing of the running ones changes here. */
static int reload_maps(struct client *cl, const struct route_list *routes, struct mapping **maps,
		       union sockaddr_inet *targets, struct diag_list *diags)
{
	char spec[ROUTE_STRLEN];
	struct errbuf e;
	int r = 0;

	for (size_t i = 0; i < routes->n && r == 0; i++) {
		const struct route *route = &routes->items[i];
		struct mapping *old = find_mapping(cl, route);

		if (old && route_change(&old->route, route) == ROUTE_SAME)
			maps[i] = old;
		else if (old && (r = route_target(cl, route, &targets[i], &e)) == 0)
			maps[i] = old;
		else if (!old)
			r = mapping_new(cl, route, &maps[i], &e);
		if (r < 0) {
			route_format(route, spec, sizeof(spec));
			diag_add(diags, DIAG_ERROR, "Route %s: %s", spec, e.msg);
		}
	}
	return r;
}

/* A route no longer wanted: its port leaves the server (now, or once the
 * POST in flight is answered), its listener closes. */
static void remove_route(struct client *cl, struct mapping *m)
{
	log_info("route to port %s removed", m->port);
	if (m->state == REGISTERED)
		delete_unwanted(cl, m->route.remote_port, m->route.protocol);
	if (m->state != PENDING) {
		mapping_free(m);
		return;
	}
	loop_timer_stop(cl->loop, &m->retry);
	close_listener(m);
	m->gone = true;
	cl->gone[cl->n_gone++] = m;
}

/* A kept route whose local side changed: new connections go to target, those
 * in progress keep theirs; rps is told too when its headers change. */
static void retarget_route(struct client *cl, struct mapping *m, const struct route *route,
			   const union sockaddr_inet *target)
{
	char local[ADDR_HOSTPORT_STRLEN];
	enum route_change change = route_change(&m->route, route);

	m->route = *route;
	if (m->route.protocol == IPPROTO_UDP)
		relay_pool_udp_set_target(m->udp, target, visitor_of_route(&m->route));
	else
		relay_pool_set_target(m->lis, target, visitor_of_route(&m->route));
	hostport_format(&m->route.local, local, sizeof(local));
	log_info("port %s now reaches %s%s%s", m->port, local,
		 m->route.visitor == ROUTE_PLAIN ? "" : ", ", route_visitor_name(m->route.visitor));
	if (change != ROUTE_REREGISTER)
		return;
	if (m->state == PENDING) {
		m->repost = true;
		return;
	}
	loop_timer_stop(cl->loop, &m->retry);
	m->state = UNREGISTERED;
	if (cl->reachable)
		register_mapping(m);
}

/* Reads the config again and applies what changed: the server's [Peer]
 * (through the device, as rps does), the routes of its Route lines (added:
 * opened and registered; removed: deleted and closed; retargeted: the
 * local side changed, posted again only when rps's part changes). A config
 * that does not load, or that changes what only a restart applies, changes
 * nothing. Returns 0, or a negative errno with every reason in diags. */
static int client_reload(void *data, struct diag_list *diags)
{
	struct client *cl = data;
	struct conf *c = NULL;
	struct conf_diff diff = { 0 };
	struct conf_secrets secrets = { 0 };
	struct route_list routes = { 0 };
	struct mapping **maps = NULL, **gone;
	union sockaddr_inet *targets = NULL;
	uint8_t key[AUTH_KEY_LEN], server_key[WG_KEY_LEN];
	struct ip_addr server;
	struct errbuf e;
	size_t added = 0, removed = 0, changed = 0;
	int r;

	if (cl->stopping) {
		diag_add(diags, DIAG_ERROR, "stopping: not reloading");
		return -ECANCELED;
	}
	r = conf_load(&c, cl->o->config_path, diags);
	if (r == 0)
		r = conf_resolve_endpoints(c, diags);
	if (r == 0)
		r = conf_diff(&diff, cl->conf, &cl->secrets, c, "rpc", diags);
	if (r == 0 && !cl->o->has_server &&
	    (client_default_server(c, &server) < 0 || !ip_addr_equal(&server, &cl->server))) {
		diag_add(diags, DIAG_ERROR,
			 "%s: the server's API address (the first host of the first [Peer]'s "
			 "AllowedIPs) changed: restart rpc to apply it; nothing was reloaded",
			 c->name);
		r = -EPERM;
	}
	if (r == 0 && (r = derive_key(key, server_key, &cl->server, c, &e)) < 0)
		diag_add(diags, DIAG_ERROR, "%s", e.msg);
	if (r == 0)
		r = reload_routes(cl, c, &routes, diags);
	if (r == 0) {
		maps = calloc(routes.n, sizeof(*maps));
		targets = calloc(routes.n, sizeof(*targets));
		gone = reallocarray(cl->gone, cl->n_gone + cl->n_maps + 1, sizeof(*gone));
		if (gone)
			cl->gone = gone;
		if (!maps || !targets || !gone || conf_secrets_take(&secrets, c) < 0)
			r = -ENOMEM;
	}
	if (r == 0)
		r = reload_maps(cl, &routes, maps, targets, diags);
	if (r == 0 && (r = device_update(cl->dev, cl->conf, c, &diff, diags, &e)) < 0)
		diag_add(diags, DIAG_ERROR, "%s (the interface may hold part of the new config)",
			 e.msg);
	if (r == -ENOMEM)
		diag_add(diags, DIAG_ERROR, "%s: out of memory", cl->o->config_path);
	if (r < 0)
		goto out;

	cli_log_reload(cl->conf, c, &diff);
	for (size_t i = 0; i < routes.n; i++) {
		if (!running_mapping(cl, maps[i])) {
			log_info("route to port %s added", maps[i]->port);
			if (cl->reachable)
				register_mapping(maps[i]);
			added++;
		} else if (route_change(&maps[i]->route, &routes.items[i]) != ROUTE_SAME) {
			retarget_route(cl, maps[i], &routes.items[i], &targets[i]);
			changed++;
		}
	}
	for (size_t i = 0; i < cl->n_maps; i++) {
		bool kept = false;

		for (size_t j = 0; j < routes.n && !kept; j++)
			kept = maps[j] == cl->maps[i];
		if (!kept) {
			remove_route(cl, cl->maps[i]);
			removed++;
		}
	}
	free(cl->maps);
	cl->maps = maps;
	cl->n_maps = routes.n;
	maps = NULL;
	memcpy(cl->mac_key, key, sizeof(key));
	memcpy(cl->server_key, server_key, sizeof(server_key));
	conf_take_over(&cl->conf, &cl->secrets, c, &secrets);
	c = NULL;
	log_info("reloaded %s: %zu peer%s added, %zu removed, %zu changed; %zu route%s added, "
		 "%zu removed, %zu changed",
		 cl->o->config_path, diff.n_added, diff.n_added == 1 ? "" : "s", diff.n_removed,
		 diff.n_changed, added, added == 1 ? "" : "s", removed, changed);
	show_status(cl);
out:
	/* What a failed reload opened for routes it would have added. */
	for (size_t i = 0; maps && i < routes.n; i++)
		if (maps[i] && !running_mapping(cl, maps[i]))
			mapping_free(maps[i]);
	free(maps);
	free(targets);
	route_list_clear(&routes);
	OPENSSL_cleanse(key, sizeof(key));
	conf_secrets_clear(&secrets);
	conf_diff_free(&diff);
	conf_free(c);
	return r;
}

int client_run(const struct options *o, struct conf *c)
{
	struct relay_config rc = { .pipe_kb = o->buffer_kb, .idle_timeout_s = o->idle_timeout_s,
				   .workers = o->workers, .udp_timeout_s = o->udp_timeout_s,
				   .udp_max_datagram = cli_udp_max_datagram(c) };
	/* cli_main() put the config's routes after those of -r. */
	struct client cl = { .o = o, .backoff_ms = BACKOFF_FIRST_MS, .conf = c,
			     .n_cli_routes = o->routes.n - c->n_routes,
			     .reload = { o->config_path, client_reload, &cl } };
	char addr[INET6_ADDRSTRLEN];
	struct errbuf e;
	int status = CLI_EXIT_FAILURE;

	if (o->has_server) {
		cl.server = o->server;
	} else if (client_default_server(c, &cl.server) < 0) {
		log_error("%s: no [Peer] AllowedIPs to find the server's API in; give --server", c->name);
		goto out;
	}
	if (pick_self(&cl, c, &e) < 0 ||
	    derive_key(cl.mac_key, cl.server_key, &cl.server, c, &e) < 0) {
		log_error("%s", e.msg);
		goto out;
	}
	ip_addr_format(&cl.server, addr, sizeof(addr));
	snprintf(cl.base_url, sizeof(cl.base_url),
		 cl.server.family == AF_INET6 ? "http://[%s]:%u" : "http://%s:%u", addr, o->api_port);
	cl.maps = calloc(o->routes.n, sizeof(*cl.maps));
	if (!cl.maps || conf_secrets_take(&cl.secrets, c) < 0 || loop_new(&cl.loop) < 0 ||
	    cli_add_signals(cl.loop, on_stop_signal, &cl.reload, &cl) < 0 ||
	    relay_pool_new(&cl.relays, &rc) < 0 ||
	    api_client_new(&cl.api, cl.loop, cl.base_url, &cl.self, cl.mac_key) < 0) {
		log_error("cannot set up: out of memory or file descriptors");
		goto out;
	}
	loop_timer_init(&cl.heartbeat_timer, on_heartbeat_timer, &cl);
	loop_timer_init(&cl.handshake_timer, on_handshake_timer, &cl);
	loop_timer_init(&cl.stop_timer, on_stop_timeout, &cl);
	if (cli_control_new(&cl.control, cl.loop, o->ifname, "rpc", control_commands,
			    sizeof(control_commands) / sizeof(control_commands[0]), &cl) < 0 ||
	    cli_device_up(&cl.dev, c, o->ifname, "rpc") < 0)
		goto out;
	/* The device holds the keys now; we have no further use for them. */
	conf_wipe_private_key(c);
	cl.watch = (struct cli_device_watch){ .loop = cl.loop, .watchdog = &cl.watchdog };
	if (cli_watch_device(&cl.watch, cl.dev) < 0)
		goto out;
	if (open_listeners(&cl, &o->routes, &e) < 0) {
		log_error("%s", e.msg);
		goto out;
	}
	if (o->has_metrics &&
	    metrics_start(&cl.metrics, cl.loop, &o->metrics,
			  &(struct metrics_source){ .dev = cl.dev, .conf = c, .relays = cl.relays,
						    .collect = collect_metrics, .data = &cl },
			  NULL) < 0)
		goto out;
	log_info("%zu route%s ready; waiting for server at %s", cl.n_maps, cl.n_maps == 1 ? "" : "s",
		 cl.base_url);
	notify_ready("waiting for server at %s", cl.base_url);
	notify_watchdog_start(&cl.watchdog, cl.loop);
	send_heartbeat(&cl);
	loop_timer_start(cl.loop, &cl.handshake_timer, HANDSHAKE_POLL_MS);
	status = loop_run(cl.loop) < 0 || cl.watch.lost ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
out:
	metrics_free(cl.metrics);
	control_server_free(cl.control);
	api_client_free(cl.api);
	for (size_t i = 0; i < cl.n_maps; i++)
		mapping_free(cl.maps[i]);
	for (size_t i = 0; i < cl.n_gone; i++)
		free(cl.gone[i]);
	if (cl.loop) {
		loop_timer_stop(cl.loop, &cl.heartbeat_timer);
		loop_timer_stop(cl.loop, &cl.handshake_timer);
		loop_timer_stop(cl.loop, &cl.stop_timer);
		notify_watchdog_stop(&cl.watchdog, cl.loop);
	}
	relay_pool_free(cl.relays);
	if (transparent_routing_free(cl.routing, &e) < 0)
		log_warning("%s", e.msg);
	device_down(cl.dev);
	loop_free(cl.loop);
	free(cl.maps);
	free(cl.gone);
	OPENSSL_cleanse(cl.mac_key, sizeof(cl.mac_key));
	conf_secrets_clear(&cl.secrets);
	conf_free(cl.conf);
	return status;
}
