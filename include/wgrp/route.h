/* The -r route specs of rpc: local_host:local_port-remote_port. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"

struct route {
	struct hostport local; /* the service rpc forwards to */
	uint16_t remote_port;  /* the port rps opens for it */
};

struct route_list {
	struct route *items;
	size_t n;
};

/* Parses one spec such as "127.0.0.1:3000-3000", "localhost:8080-8080" or
 * "[::1]:8080-8080". Returns 0, -EINVAL or -ERANGE with the reason in e. */
int route_parse(struct route *out, const char *spec, struct errbuf *e);

/* Parses spec and appends it to list, refusing a remote port the list already
 * has. Returns 0, -EINVAL, -ERANGE, -EEXIST or -ENOMEM. */
int route_list_add(struct route_list *list, const char *spec, struct errbuf *e);

/* Frees the items; list may be reused afterwards. */
void route_list_clear(struct route_list *list);
