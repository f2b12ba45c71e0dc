/* A small JSON-over-HTTP server on the daemon's loop, with libmicrohttpd:
 * one MHD daemon per listening address, each polled through its epoll fd and
 * timed with a loop timer (no MHD thread). Requests are routed by method and
 * path through a table; handlers answer at once. Every error answer is the
 * wire envelope {"success":false,"message":...}. Bodies are limited to
 * WIRE_BODY_MAX; connections are limited in number and time, so that no
 * client can hold the server up; with api_limits, also per group of
 * addresses (a WireGuard peer's), across every server sharing the limits. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"
#include "wgrp/loop.h"

struct api_request {
	const char *method;
	const char *path;   /* decoded, without the query */
	const char *target; /* path and query exactly as sent: what a signature covers */
	union sockaddr_inet peer; /* who sent it: the identity of a tunnel client */
	const char *body;         /* NUL-terminated */
	size_t body_len;
	void *conn; /* for api_request_arg() */
};

struct api_reply {
	unsigned status;
	char *json; /* the body, malloc'd by the handler; NULL for the envelope of message */
	const char *content_type; /* of json when it is not JSON (NULL: application/json) */
	char message[ERRBUF_LEN];
};

typedef void api_handler_fn(void *data, const struct api_request *req, struct api_reply *reply);

struct api_route {
	const char *method;
	const char *path;
	api_handler_fn *fn;
};

/* What the API lets one WireGuard peer (or the addresses of none) keep
 * open at a time. */
#define API_MAX_CONNECTIONS_PER_PEER 8

/* Connections open at a time per group of client addresses. */
struct api_limits {
	/* Where the connections of a client address's group are counted,
	 * called with data (servers of other data may share the limits): a
	 * count that stays while a connection counted there is open (its owner
	 * may regroup addresses meanwhile). */
	unsigned *(*open_of)(void *data, const union sockaddr_inet *peer);
	void *data;
	unsigned max_per_group;
	/* Over every group and server sharing these limits: within the fds the
	 * relays leave, so that the API never runs out of them. */
	unsigned open_total, max_total;
};

/* Requests answered, by method and status, for metrics: a few methods
 * (others count as "other") times the statuses a server answers. */
#define API_COUNTS_MAX 96
struct api_count {
	const char *method; /* static */
	unsigned status;
	uint64_t n;
};
struct api_counts {
	struct api_count v[API_COUNTS_MAX];
	size_t n;
};

/* Counts one answer of status to method. */
void api_counts_add(struct api_counts *c, const char *method, unsigned status);

struct api_server;

/* Serves routes on bind_addr, only for packets that arrive through ifname
 * (SO_BINDTODEVICE; NULL: any). data goes to every handler. limits (NULL:
 * none) must outlive the server. Returns 0, or a negative errno with the
 * reason in e. */
int api_server_new(struct api_server **out, struct loop *l, const union sockaddr_inet *bind_addr,
		   const char *ifname, const struct api_route *routes, size_t n_routes, void *data,
		   struct api_limits *limits, struct errbuf *e);
/* Closes every connection and the listener; accepts NULL. */
void api_server_free(struct api_server *s);
/* Counts every request s answers into counts (which may be shared by
 * several servers, and must outlive them). */
void api_server_count(struct api_server *s, struct api_counts *counts);

/* A query argument of the request, or NULL. */
const char *api_request_arg(const struct api_request *req, const char *name);
/* A header of the request (name in any case), or NULL. */
const char *api_request_header(const struct api_request *req, const char *name);

/* Sets reply to the envelope with success false and a formatted message. */
void api_reply_error(struct api_reply *reply, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
