#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wgrp/num.h"
#include "wgrp/ports.h"
#include "wgrp/route.h"

static const char *const visitor_names[] = {
	[ROUTE_PLAIN] = "",
	[ROUTE_SEND_PROXY] = "send-proxy",
	[ROUTE_SEND_PROXY_V2] = "send-proxy-v2",
	[ROUTE_TRANSPARENT] = "transparent",
};

const char *route_visitor_name(enum route_visitor v)
{
	return visitor_names[v];
}

void route_format(const struct route *r, char *buf, size_t len)
{
	char local[ADDR_HOSTPORT_STRLEN];

	hostport_format(&r->local, local, sizeof(local));
	snprintf(buf, len, "%s-%u%s%s%s", local, r->remote_port,
		 r->protocol == IPPROTO_UDP ? "/udp" : "", r->visitor == ROUTE_PLAIN ? "" : ",",
		 route_visitor_name(r->visitor));
}

/* Parses the option after the spec's first ','. */
static int parse_option(struct route *out, const char *spec, const char *option, struct errbuf *e)
{
	char q[QUOTED_MAX], o[QUOTED_MAX];

	for (size_t i = ROUTE_PLAIN + 1; i < sizeof(visitor_names) / sizeof(visitor_names[0]); i++)
		if (!strcmp(option, visitor_names[i])) {
			out->visitor = (enum route_visitor)i;
			return 0;
		}
	if (strchr(option, ','))
		return errbuf_set(e, -EINVAL, "invalid route %s: one option at most", quote(q, spec));
	return errbuf_set(e, -EINVAL,
			  "invalid route %s: unknown option %s (expected send-proxy, send-proxy-v2 "
			  "or transparent)",
			  quote(q, spec), quote(o, option));
}

/* Takes the "/tcp" or "/udp" after the remote port off head. */
static int parse_protocol(struct route *out, const char *spec, char *head, struct errbuf *e)
{
	/* Neither host names nor ports hold '/'. */
	char *slash = strrchr(head, '/'), q[QUOTED_MAX], p[QUOTED_MAX];

	out->protocol = IPPROTO_TCP;
	if (!slash)
		return 0;
	*slash = '\0';
	if (port_protocol_parse(slash + 1, &out->protocol) < 0)
		return errbuf_set(e, -EINVAL,
				  "invalid route %s: unknown protocol %s (expected /tcp or /udp "
				  "after the remote port)",
				  quote(q, spec), quote(p, slash + 1));
	/* The v1 line has no word for UDP (HAProxy's proxy-protocol.txt). */
	if (out->protocol == IPPROTO_UDP && out->visitor == ROUTE_SEND_PROXY)
		return errbuf_set(e, -EINVAL,
				  "invalid route %s: send-proxy (PROXY v1) has no UDP; use "
				  "send-proxy-v2",
				  quote(q, spec));
	return 0;
}

int route_parse(struct route *out, const char *spec, struct errbuf *e)
{
	/* Neither host names nor ports hold ',': the first one ends the spec. */
	const char *comma = strchr(spec, ',');
	char *head = strndup(spec, comma ? (size_t)(comma - spec) : strlen(spec)), *dash;
	char q[QUOTED_MAX];
	struct errbuf why;
	int r;

	out->visitor = ROUTE_PLAIN;
	if (!head)
		return errbuf_set(e, -ENOMEM, "out of memory");
	if (comma) {
		r = parse_option(out, spec, comma + 1, e);
		if (r < 0)
			goto out;
	}
	r = parse_protocol(out, spec, head, e);
	if (r < 0)
		goto out;
	/* Host names may hold '-', ports never do: the last '-' splits the spec. */
	dash = strrchr(head, '-');
	if (!dash) {
		r = errbuf_set(e, -EINVAL,
			       "invalid route %s: expected local_host:local_port-remote_port, "
			       "e.g. 127.0.0.1:3000-3000",
			       quote(q, spec));
		goto out;
	}
	*dash = '\0';
	if (strlen(head) >= ADDR_HOSTPORT_STRLEN) {
		r = errbuf_set(e, -EINVAL, "invalid route %s: local address too long",
			       quote(q, spec));
		goto out;
	}
	r = hostport_parse(&out->local, head, 0, &why);
	if (r < 0) {
		errbuf_set(e, r, "invalid route %s: local address: %s", quote(q, spec), why.msg);
		goto out;
	}
	r = num_parse_port(dash + 1, &out->remote_port, &why);
	if (r < 0)
		errbuf_set(e, r, "invalid route %s: remote port: %s", quote(q, spec), why.msg);
out:
	free(head);
	return r;
}

int route_list_add(struct route_list *list, const char *spec, struct errbuf *e)
{
	struct route r, *items;
	char q[QUOTED_MAX], port[PORT_LABEL_LEN];
	int err = route_parse(&r, spec, e);

	if (err < 0)
		return err;
	for (size_t i = 0; i < list->n; i++)
		if (list->items[i].remote_port == r.remote_port &&
		    list->items[i].protocol == r.protocol)
			return errbuf_set(e, -EEXIST,
					  "invalid route %s: remote port %s is already used by "
					  "another route",
					  quote(q, spec), port_label(port, r.remote_port, r.protocol));
	items = reallocarray(list->items, list->n + 1, sizeof(*items));
	if (!items)
		return errbuf_set(e, -ENOMEM, "out of memory");
	items[list->n++] = r;
	list->items = items;
	return 0;
}

void route_list_clear(struct route_list *list)
{
	free(list->items);
	*list = (struct route_list){ 0 };
}
