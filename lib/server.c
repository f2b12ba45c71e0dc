#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wgrp/api_server.h"
#include "wgrp/device.h"
#include "wgrp/log.h"
#include "wgrp/notify.h"
#include "wgrp/num.h"
#include "wgrp/registry.h"
#include "wgrp/relay.h"
#include "wgrp/server.h"
#include "wgrp/wire.h"

#define MAX_API_ADDRESSES 16

struct server {
	const struct options *o;
	struct loop *loop;
	struct device *dev;
	struct relay_ctx *relays;
	struct registry *reg;
	struct api_server *api[MAX_API_ADDRESSES];
	size_t n_api;
	struct loop_timer check_timer;
	struct notify_watchdog watchdog;
	char api_desc[MAX_API_ADDRESSES * ADDR_HOSTPORT_STRLEN]; /* where the API listens */
	int64_t startup_time;
	union sockaddr_inet public_addr; /* port 0; each mapping sets its own */
	uint16_t *ports; /* scratch for one client's ports: room for all of them */
};

#define ALL_PORTS 65536

/* The caller's identity: the tunnel address its request came from. A
 * client_ip in the body must name that same address. */
static bool identify(const struct api_request *req, bool has_ip, const struct ip_addr *claimed,
		     struct ip_addr *who, struct api_reply *reply)
{
	char seen[INET6_ADDRSTRLEN], said[INET6_ADDRSTRLEN];

	memset(who, 0, sizeof(*who));
	who->family = req->peer.sa.sa_family;
	if (who->family == AF_INET)
		who->v4 = req->peer.in.sin_addr;
	else
		who->v6 = req->peer.in6.sin6_addr;
	if (!has_ip || ip_addr_equal(claimed, who))
		return true;
	ip_addr_format(who, seen, sizeof(seen));
	ip_addr_format(claimed, said, sizeof(said));
	api_reply_error(reply, MHD_HTTP_FORBIDDEN,
			"client_ip %s does not match the tunnel address this request came from (%s)",
			said, seen);
	return false;
}

/* The one-line state systemctl status shows. */
static void show_status(struct server *s)
{
	size_t clients, n = registry_count(s->reg, &clients);

	notify_status("API on %s; %zu mapping%s from %zu client%s", s->api_desc, n, n == 1 ? "" : "s",
		      clients, clients == 1 ? "" : "s");
}

static void remove_mapping(struct server *s, uint16_t port)
{
	struct registry_mapping *m = registry_get(s->reg, port);

	if (!m)
		return;
	relay_listener_close(m->data);
	registry_remove(s->reg, port);
}

/* A refused registration is the operator's business too (a client after
 * port 22, two clients after one port): logged, and answered with why. */
static void refuse(struct api_reply *reply, unsigned status, const char *who, uint16_t port,
		   const char *why)
{
	log_warning("refused port %u to client %s: %s", port, who, why);
	api_reply_error(reply, status, "%s", why);
}

static void create_mapping(void *data, const struct api_request *req, struct api_reply *reply)
{
	struct server *s = data;
	struct wire_mapping_request w;
	struct registry_mapping m = { 0 }, *old;
	struct relay_listener *lis;
	union sockaddr_inet bind_addr = s->public_addr;
	char who_s[INET6_ADDRSTRLEN], target[ADDR_HOSTPORT_STRLEN];
	struct errbuf e;

	if (wire_mapping_request_decode(&w, req->body, req->body_len, &e) < 0) {
		api_reply_error(reply, MHD_HTTP_BAD_REQUEST, "invalid request body: %s", e.msg);
		return;
	}
	if (!identify(req, w.has_client_ip, &w.client_ip, &m.client, reply))
		return;
	registry_seen(s->reg, &m.client, loop_now(s->loop));
	m.remote_port = w.remote_port;
	sockaddr_inet_set(&m.target, &m.client, w.client_port);
	snprintf(m.local_addr, sizeof(m.local_addr), "%s", w.local_addr);
	m.created = time(NULL);
	sockaddr_inet_format(&m.target, target, sizeof(target));
	ip_addr_format(&m.client, who_s, sizeof(who_s));

	switch (registry_check(s->reg, &m.client, m.remote_port, &e)) {
	case REGISTRY_TAKEN:
		refuse(reply, MHD_HTTP_CONFLICT, who_s, m.remote_port, e.msg);
		return;
	case REGISTRY_FORBIDDEN:
		refuse(reply, MHD_HTTP_FORBIDDEN, who_s, m.remote_port, e.msg);
		return;
	case REGISTRY_REPLACE:
		/* Connections in progress keep their target; new ones take the new. */
		old = registry_get(s->reg, m.remote_port);
		m.data = old->data;
		m.created = old->created;
		relay_listener_set_target(m.data, &m.target);
		registry_put(s->reg, &m);
		log_info("port %u of client %s now goes to %s (%s)", m.remote_port, who_s, target,
			 m.local_addr);
		api_reply_error(reply, MHD_HTTP_OK, "Port mapping updated for port %u", m.remote_port);
		return;
	case REGISTRY_NEW:
		break;
	}
	if (bind_addr.sa.sa_family == AF_INET)
		bind_addr.in.sin_port = htons(m.remote_port);
	else
		bind_addr.in6.sin6_port = htons(m.remote_port);
	if (relay_listen(&lis, s->relays, &bind_addr, &m.target, &e) < 0) {
		refuse(reply, MHD_HTTP_CONFLICT, who_s, m.remote_port, e.msg);
		return;
	}
	m.data = lis;
	if (registry_put(s->reg, &m) < 0) {
		relay_listener_close(lis);
		api_reply_error(reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	log_info("port %u mapped to %s (%s) for client %s", m.remote_port, target, m.local_addr,
		 who_s);
	show_status(s);
	api_reply_error(reply, MHD_HTTP_OK, "Port mapping created successfully for port %u",
			m.remote_port);
}

static void delete_mapping(void *data, const struct api_request *req, struct api_reply *reply)
{
	struct server *s = data;
	const char *arg = api_request_arg(req, "port");
	struct registry_mapping *m;
	struct ip_addr who;
	struct errbuf e;
	uint16_t port;

	if (!arg) {
		api_reply_error(reply, MHD_HTTP_BAD_REQUEST, "port parameter is required: ?port=N");
		return;
	}
	if (num_parse_port(arg, &port, &e) < 0) {
		api_reply_error(reply, MHD_HTTP_BAD_REQUEST, "invalid port: %s", e.msg);
		return;
	}
	identify(req, false, NULL, &who, reply);
	registry_seen(s->reg, &who, loop_now(s->loop));
	m = registry_get(s->reg, port);
	if (!m) {
		api_reply_error(reply, MHD_HTTP_NOT_FOUND, "no mapping for port %u", port);
		return;
	}
	if (!ip_addr_equal(&m->client, &who)) {
		api_reply_error(reply, MHD_HTTP_FORBIDDEN, "port %u is mapped by another client", port);
		return;
	}
	remove_mapping(s, port);
	log_info("port %u unmapped", port);
	show_status(s);
	api_reply_error(reply, MHD_HTTP_OK, "Port mapping deleted successfully for port %u", port);
}

static void list_mappings(void *data, const struct api_request *req, struct api_reply *reply)
{
	struct server *s = data;
	struct wire_mapping_info *v;
	struct ip_addr who;
	size_t n;

	identify(req, false, NULL, &who, reply);
	n = registry_ports_of(s->reg, &who, s->ports, ALL_PORTS);
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		api_reply_error(reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct registry_mapping *m = registry_get(s->reg, s->ports[i]);
		const struct relay_stats *st = relay_listener_stats(m->data);

		v[i] = (struct wire_mapping_info){ .remote_port = m->remote_port,
						   .active = st->active, .total = st->total,
						   .bytes_in = st->bytes_in, .bytes_out = st->bytes_out,
						   .created = m->created };
		sockaddr_inet_format(&m->target, v[i].target, sizeof(v[i].target));
		snprintf(v[i].local_addr, sizeof(v[i].local_addr), "%s", m->local_addr);
	}
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
				.mappings = s->ports };
	struct ip_addr who;
	struct errbuf e;

	r.server_startup_time = s->startup_time;
	if (wire_heartbeat_request_decode(&w, req->body, req->body_len, &e) < 0) {
		api_reply_error(reply, MHD_HTTP_BAD_REQUEST, "invalid request body: %s", e.msg);
		return;
	}
	if (!identify(req, w.has_client_ip, &w.client_ip, &who, reply))
		return;
	registry_seen(s->reg, &who, loop_now(s->loop));
	r.n_mappings = registry_ports_of(s->reg, &who, s->ports, ALL_PORTS);
	if (wire_reply_encode(&r, &reply->json) < 0)
		api_reply_error(reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
}

static const struct api_route routes[] = {
	{ "POST", "/api/v1/port-mappings", create_mapping },
	{ "DELETE", "/api/v1/port-mappings", delete_mapping },
	{ "GET", "/api/v1/port-mappings", list_mappings },
	{ "POST", "/api/v1/heartbeat", heartbeat },
};

/* The original's cleanup: a client silent past the timeout loses all. */
static void check_clients(struct loop *l, struct loop_timer *t)
{
	struct server *s = t->data;
	uint64_t timeout = (uint64_t)s->o->heartbeat_timeout_s * 1000;
	char who[INET6_ADDRSTRLEN];
	struct ip_addr stale;

	while (registry_find_stale(s->reg, loop_now(l), timeout, &stale)) {
		size_t n = registry_ports_of(s->reg, &stale, s->ports, ALL_PORTS);

		ip_addr_format(&stale, who, sizeof(who));
		if (n)
			log_warning("client %s silent for %u s: removing its %zu mapping%s", who,
				    s->o->heartbeat_timeout_s, n, n == 1 ? "" : "s");
		for (size_t i = 0; i < n; i++)
			remove_mapping(s, s->ports[i]);
		registry_forget(s->reg, &stale);
		if (n)
			show_status(s);
	}
	loop_timer_start(l, t, (uint64_t)s->o->check_interval_s * 1000);
}

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
				   sizeof(routes) / sizeof(routes[0]), s, &e) < 0) {
			log_error("%s", e.msg);
			return -1;
		}
		s->n_api++;
		sockaddr_inet_format(&addr, shown, sizeof(shown));
		log_info("API listening on %s", shown);
		snprintf(s->api_desc + strlen(s->api_desc), sizeof(s->api_desc) - strlen(s->api_desc),
			 "%s%s", s->n_api > 1 ? " " : "", shown);
	}
	return 0;
}

static void set_public_addr(struct server *s)
{
	struct ip_addr any6 = { .family = AF_INET6 };

	sockaddr_inet_set(&s->public_addr, s->o->has_bind ? &s->o->bind : &any6, 0);
}

int server_run(const struct options *o, struct conf *c)
{
	struct relay_config rc = { .pipe_kb = o->buffer_kb, .idle_timeout_s = o->idle_timeout_s,
				   .max_conns_per_source = o->max_conns_per_source };
	struct registry_policy policy = { .allowed = o->allow_ports,
					  .reserved = { c->listen_port, (uint16_t)o->api_port },
					  .max_per_client = o->max_mappings };
	struct server s = { .o = o, .startup_time = time(NULL) };
	struct registry_mapping *m;
	int status = CLI_EXIT_FAILURE;

	s.ports = calloc(ALL_PORTS, sizeof(*s.ports));
	if (!s.ports || loop_new(&s.loop) < 0 || cli_add_signals(s.loop, on_stop_signal, NULL) < 0 ||
	    registry_new(&s.reg, &policy) < 0 || relay_ctx_new(&s.relays, s.loop, &rc) < 0) {
		log_error("cannot set up: out of memory or file descriptors");
		goto out;
	}
	set_public_addr(&s);
	if (cli_device_up(&s.dev, c, o->ifname, "rps") < 0)
		goto out;
	if (start_api(&s, c) < 0)
		goto out;
	loop_timer_init(&s.check_timer, check_clients, &s);
	loop_timer_start(s.loop, &s.check_timer, (uint64_t)o->check_interval_s * 1000);
	log_info("ready");
	notify_ready("API on %s; no mappings yet", s.api_desc);
	notify_watchdog_start(&s.watchdog, s.loop);
	status = loop_run(s.loop) < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
out:
	for (size_t i = 0; i < s.n_api; i++)
		api_server_free(s.api[i]);
	if (s.reg)
		while ((m = registry_next(s.reg, 0)))
			remove_mapping(&s, m->remote_port);
	if (s.loop) {
		loop_timer_stop(s.loop, &s.check_timer);
		notify_watchdog_stop(&s.watchdog, s.loop);
	}
	relay_ctx_free(s.relays);
	device_down(s.dev);
	registry_free(s.reg);
	loop_free(s.loop);
	free(s.ports);
	conf_free(c);
	return status;
}
