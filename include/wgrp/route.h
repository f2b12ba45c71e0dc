/* The -r route specs of rpc: local_host:local_port-remote_port[/PROTOCOL][,OPTION]. */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"

/* What the service learns of the visitor (the route option, named as in
 * HAProxy). Every mode but the first has rps send rpc a PROXY v2 header. */
enum route_visitor {
	ROUTE_PLAIN,         /* nothing: the service sees rpc's address */
	ROUTE_SEND_PROXY,    /* ",send-proxy": a PROXY v1 line before the data */
	ROUTE_SEND_PROXY_V2, /* ",send-proxy-v2": a PROXY v2 header */
	ROUTE_TRANSPARENT,   /* ",transparent": rpc connects from the visitor's address */
};

struct route {
	struct hostport local; /* the service rpc forwards to */
	uint16_t remote_port;  /* the port rps opens for it */
	int protocol;          /* IPPROTO_TCP (the default) or IPPROTO_UDP */
	enum route_visitor visitor;
};

/* The option's name as written after the spec; "" for ROUTE_PLAIN. */
const char *route_visitor_name(enum route_visitor v);

/* Room for any route_format(). */
#define ROUTE_STRLEN (ADDR_HOSTPORT_STRLEN + sizeof("-65535/udp,send-proxy-v2"))

/* Writes r as a spec, e.g. "127.0.0.1:53-5353/udp,send-proxy-v2" ("/tcp"
 * left out), for messages naming it. */
void route_format(const struct route *r, char *buf, size_t len);

struct route_list {
	struct route *items;
	size_t n;
};

/* Parses one spec such as "127.0.0.1:3000-3000", "localhost:8080-8080",
 * "[::1]:8080-8080", "127.0.0.1:53-5353/udp" (the protocol: /tcp, the
 * default, or /udp) or "127.0.0.1:80-80/tcp,send-proxy-v2" (one option at
 * most; send-proxy has no UDP). Returns 0, -EINVAL or -ERANGE with the
 * reason in e. */
int route_parse(struct route *out, const char *spec, struct errbuf *e);

/* Parses spec and appends it to list, refusing a remote port the list already
 * has for the same protocol (a TCP and a UDP route may share one). Returns 0, -EINVAL, -ERANGE, -EEXIST or -ENOMEM. */
int route_list_add(struct route_list *list, const char *spec, struct errbuf *e);

/* Frees the items; list may be reused afterwards. */
void route_list_clear(struct route_list *list);
