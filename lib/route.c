#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wgrp/num.h"
#include "wgrp/route.h"

int route_parse(struct route *out, const char *spec, struct errbuf *e)
{
	/* Host names may hold '-', ports never do: the last '-' splits the spec. */
	const char *dash = strrchr(spec, '-');
	char local[ADDR_HOSTPORT_STRLEN], q[QUOTED_MAX];
	struct errbuf why;
	size_t len;
	int r;

	if (!dash)
		return errbuf_set(e, -EINVAL,
				  "invalid route %s: expected local_host:local_port-remote_port, "
				  "e.g. 127.0.0.1:3000-3000",
				  quote(q, spec));
	len = (size_t)(dash - spec);
	if (len >= sizeof(local))
		return errbuf_set(e, -EINVAL, "invalid route %s: local address too long",
				  quote(q, spec));
	memcpy(local, spec, len);
	local[len] = '\0';

	r = hostport_parse(&out->local, local, 0, &why);
	if (r < 0)
		return errbuf_set(e, r, "invalid route %s: local address: %s", quote(q, spec),
				  why.msg);
	r = num_parse_port(dash + 1, &out->remote_port, &why);
	if (r < 0)
		return errbuf_set(e, r, "invalid route %s: remote port: %s", quote(q, spec),
				  why.msg);
	return 0;
}

int route_list_add(struct route_list *list, const char *spec, struct errbuf *e)
{
	struct route r, *items;
	char q[QUOTED_MAX];
	int err = route_parse(&r, spec, e);

	if (err < 0)
		return err;
	for (size_t i = 0; i < list->n; i++)
		if (list->items[i].remote_port == r.remote_port)
			return errbuf_set(e, -EEXIST,
					  "invalid route %s: remote port %u is already used by "
					  "another route",
					  quote(q, spec), r.remote_port);
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
