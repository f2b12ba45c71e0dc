#include <errno.h>
#include <microhttpd.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wgrp/api_server.h"
#include "wgrp/wire.h"

/* Enough for a few clients each with a request in flight, not for a flood. */
#define MAX_CONNECTIONS 64
#define CONNECTION_TIMEOUT_S 10

struct api_server {
	struct loop *loop;
	struct MHD_Daemon *mhd;
	int listen_fd;
	int epoll_fd;
	struct loop_timer timer;
	const struct api_route *routes;
	size_t n_routes;
	void *data;
	struct api_limits *limits;
	struct api_counts *counts;
};

/* A request as it arrives: its target as sent, then its body. */
struct upload {
	char *target;
	char *body;
	size_t len;
	bool started, too_large;
};

static void reschedule(struct api_server *s)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
		loop_timer_start(s->loop, &s->timer, ms);
	else
		loop_timer_stop(s->loop, &s->timer);
}

static void on_ready(struct loop *l, int fd, unsigned events, void *data)
{
	struct api_server *s = data;

	(void)l;
	(void)fd;
	(void)events;
	MHD_run(s->mhd);
	reschedule(s);
}

static void on_timer(struct loop *l, struct loop_timer *t)
{
	on_ready(l, -1, 0, t->data);
}

void api_reply_error(struct api_reply *reply, unsigned status, const char *fmt, ...)
{
	va_list ap;

	reply->status = status;
	va_start(ap, fmt);
	if (vsnprintf(reply->message, sizeof(reply->message), fmt, ap) >= (int)sizeof(reply->message))
		wire_utf8_trim(reply->message);
	va_end(ap);
}

/* The method as counted: one of a few, so that a client cannot make labels
 * up. */
static const char *counted_method(const char *method)
{
	static const char *const known[] = { "GET", "POST", "DELETE", "PUT", "HEAD" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(method, known[i]))
			return known[i];
	return "other";
}

void api_counts_add(struct api_counts *c, const char *method, unsigned status)
{
	const char *m = counted_method(method);
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->v[i].method == m && c->v[i].status == status)
			break;
	if (i == c->n) {
		if (c->n == API_COUNTS_MAX)
			return; /* not with the statuses this server answers */
		c->v[c->n++] = (struct api_count){ .method = m, .status = status };
	}
	c->v[i].n++;
}

static enum MHD_Result send_reply(struct api_server *s, const char *method,
				  struct MHD_Connection *conn, struct api_reply *reply)
{
	struct wire_reply envelope = { .success = reply->status < 300, .message = reply->message };
	struct MHD_Response *resp;
	enum MHD_Result r;
	char *json = reply->json;

	if (!json && wire_reply_encode(&envelope, &json) < 0)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(json);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				reply->content_type ? reply->content_type : "application/json");
	r = MHD_queue_response(conn, reply->status, resp);
	MHD_destroy_response(resp);
	if (r == MHD_YES && s->counts)
		api_counts_add(s->counts, method, reply->status);
	return r;
}

static void route(struct api_server *s, struct api_request *req, struct api_reply *reply)
{
	bool path_known = false;

	for (size_t i = 0; i < s->n_routes; i++) {
		if (strcmp(s->routes[i].path, req->path))
			continue;
		path_known = true;
		if (!strcmp(s->routes[i].method, req->method)) {
			s->routes[i].fn(s->data, req, reply);
			return;
		}
	}
	if (path_known)
		api_reply_error(reply, MHD_HTTP_METHOD_NOT_ALLOWED, "method %s is not allowed on %s",
				req->method, req->path);
	else
		api_reply_error(reply, MHD_HTTP_NOT_FOUND, "no such endpoint: %s", req->path);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct api_server *s = cls;
	struct upload *up = *con_cls;
	struct api_reply reply = { .status = MHD_HTTP_OK };
	struct api_request req = { .method = method, .path = url, .conn = conn };
	const union MHD_ConnectionInfo *info;
	const char *length;

	(void)version;
	if (!up || !up->target)
		return MHD_NO; /* out of memory in on_uri() */
	if (!up->started) {
		up->started = true;
		/* Refuse an announced oversized body before reading any of it. */
		length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
		up->too_large = length && strtoull(length, NULL, 10) > WIRE_BODY_MAX;
		if (!up->too_large)
			return MHD_YES;
	}
	if (*upload_data_size) {
		char *grown;

		/* MHD cannot answer in the middle of a body: an oversized one that
		 * was not announced is read to its end (bounded by the connection
		 * timeout) and dropped, then refused. */
		if (up->too_large || up->len + *upload_data_size > WIRE_BODY_MAX) {
			up->too_large = true;
			*upload_data_size = 0;
			return MHD_YES;
		}
		grown = realloc(up->body, up->len + *upload_data_size + 1);
		if (!grown)
			return MHD_NO;
		memcpy(grown + up->len, upload_data, *upload_data_size);
		up->body = grown;
		up->len += *upload_data_size;
		up->body[up->len] = '\0';
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (up->too_large) {
		api_reply_error(&reply, MHD_HTTP_CONTENT_TOO_LARGE,
				"request body too large (at most %d bytes)", WIRE_BODY_MAX);
		return send_reply(s, method, conn, &reply);
	}

	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!info || !info->client_addr)
		return MHD_NO;
	req.peer.sa.sa_family = info->client_addr->sa_family;
	memcpy(&req.peer, info->client_addr, sockaddr_inet_len(&req.peer));
	req.target = up->target;
	req.body = up->body ? up->body : "";
	req.body_len = up->len;
	route(s, &req, &reply);
	return send_reply(s, method, conn, &reply);
}

/* The request target exactly as sent, before MHD decodes it: what a
 * signature covers. MHD passes what this returns as the request's *con_cls,
 * and calls on_completed() for it whatever happens next. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct upload *up = calloc(1, sizeof(*up));

	(void)cls;
	(void)conn;
	if (up)
		up->target = strdup(uri);
	return up;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct upload *up = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (up) {
		free(up->target);
		free(up->body);
		free(up);
		*con_cls = NULL;
	}
}

/* The count of a connection's group; NULL without limits. */
static unsigned *open_of(struct api_server *s, const struct sockaddr *addr)
{
	union sockaddr_inet peer = { 0 };

	if (!s->limits || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
		return NULL;
	peer.sa.sa_family = addr->sa_family;
	memcpy(&peer, addr, sockaddr_inet_len(&peer));
	return s->limits->open_of(s->limits->data, &peer);
}

/* A group with all its slots taken gets no more: its connections are
 * closed at accept, and other groups keep theirs. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct api_server *s = cls;
	unsigned *open = open_of(s, addr);

	(void)addrlen;
	if (!open)
		return MHD_YES;
	return *open < s->limits->max_per_group && s->limits->open_total < s->limits->max_total
		       ? MHD_YES
		       : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct api_server *s = cls;
	const union MHD_ConnectionInfo *info;
	unsigned *open;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		open = info && info->client_addr ? open_of(s, info->client_addr) : NULL;
		if (open) {
			(*open)++;
			s->limits->open_total++;
			*socket_context = open;
		}
	} else if (*socket_context) {
		(*(unsigned *)*socket_context)--;
		s->limits->open_total--;
		*socket_context = NULL;
	}
}

const char *api_request_arg(const struct api_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_request_header(const struct api_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static int open_listener(const union sockaddr_inet *bind_addr, const char *ifname, struct errbuf *e)
{
	char addr[ADDR_HOSTPORT_STRLEN];
	int one = 1, fd, r;

	sockaddr_inet_format(bind_addr, addr, sizeof(addr));
	fd = socket(bind_addr->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errbuf_set(e, -errno, "cannot listen on %s: %s", addr, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Only what came through the tunnel: an outside host routing the tunnel
	 * address at us must not reach the API. */
	if ((ifname && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0) ||
	    bind(fd, &bind_addr->sa, sockaddr_inet_len(bind_addr)) < 0 ||
	    listen(fd, 64) < 0) {
		r = errbuf_set(e, -errno, "cannot listen on %s: %s", addr, strerror(errno));
		close(fd);
		return r;
	}
	return fd;
}

int api_server_new(struct api_server **out, struct loop *l, const union sockaddr_inet *bind_addr,
		   const char *ifname, const struct api_route *routes, size_t n_routes, void *data,
		   struct api_limits *limits, struct errbuf *e)
{
	struct api_server *s = calloc(1, sizeof(*s));
	const union MHD_DaemonInfo *info;
	int r;

	*out = NULL;
	if (!s)
		return errbuf_set(e, -ENOMEM, "out of memory");
	*s = (struct api_server){ .loop = l, .routes = routes, .n_routes = n_routes, .data = data,
				  .limits = limits, .epoll_fd = -1 };
	loop_timer_init(&s->timer, on_timer, s);
	s->listen_fd = open_listener(bind_addr, ifname, e);
	if (s->listen_fd < 0) {
		r = s->listen_fd;
		free(s);
		return r;
	}
	s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_TURBO, 0, on_accept, s, on_request, s,
				  MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
				  MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				  MHD_OPTION_END);
	if (!s->mhd) {
		r = errbuf_set(e, -EIO, "cannot start the HTTP server");
		goto fail;
	}
	s->listen_fd = -1; /* MHD owns it now and closes it when stopped */
	info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	r = info ? loop_add(l, info->epoll_fd, LOOP_READ, on_ready, s) : -EIO;
	if (r < 0) {
		errbuf_set(e, r, "cannot watch the HTTP server");
		goto fail;
	}
	s->epoll_fd = info->epoll_fd;
	reschedule(s);
	*out = s;
	return 0;
fail:
	api_server_free(s);
	return r;
}

void api_server_count(struct api_server *s, struct api_counts *counts)
{
	s->counts = counts;
}

void api_server_free(struct api_server *s)
{
	if (!s)
		return;
	loop_timer_stop(s->loop, &s->timer);
	if (s->epoll_fd >= 0)
		loop_del(s->loop, s->epoll_fd);
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	free(s);
}
