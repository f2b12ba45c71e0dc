#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wgrp/num.h"
#include "wgrp/ports.h"

void port_set_add_range(struct port_set *s, uint16_t first, uint16_t last)
{
	for (uint32_t p = first; p <= last; p++)
		s->bits[p / 64] |= 1ull << (p % 64);
}

bool port_set_has(const struct port_set *s, uint16_t port)
{
	return s->bits[port / 64] & (1ull << (port % 64));
}

void port_set_print(FILE *f, const struct port_set *s)
{
	const char *sep = "";
	uint32_t p = 1;

	while (p <= 65535) {
		uint32_t last;

		if (!port_set_has(s, (uint16_t)p)) {
			p++;
			continue;
		}
		for (last = p; last < 65535 && port_set_has(s, (uint16_t)(last + 1));)
			last++;
		fprintf(f, last == p ? "%s%u" : "%s%u-%u", sep, p, last);
		sep = ",";
		p = last + 1;
	}
	if (!*sep)
		fputs("(none)", f);
}

int port_set_parse(struct port_set *out, const char *s, struct errbuf *e)
{
	char item[32], q[QUOTED_MAX];
	struct errbuf why;

	memset(out, 0, sizeof(*out));
	for (const char *cur = s;; cur++) {
		size_t len = strcspn(cur, ",");
		uint16_t first, last;
		char *dash;

		if (len == 0 || len >= sizeof(item))
			return errbuf_set(e, -EINVAL, "invalid port list %s: %s entry", quote(q, s),
					  len ? "overlong" : "empty");
		memcpy(item, cur, len);
		item[len] = '\0';
		dash = strchr(item, '-');
		if (dash)
			*dash = '\0';
		if (num_parse_port(item, &first, &why) < 0 ||
		    num_parse_port(dash ? dash + 1 : item, &last, &why) < 0)
			return errbuf_set(e, -EINVAL, "invalid port list %s: %s", quote(q, s), why.msg);
		if (last < first)
			return errbuf_set(e, -EINVAL, "invalid port list %s: range %u-%u is backwards",
					  quote(q, s), first, last);
		port_set_add_range(out, first, last);
		cur += len;
		if (!*cur)
			return 0;
	}
}

const char *port_protocol_name(int protocol)
{
	return protocol == IPPROTO_UDP ? "udp" : "tcp";
}

int port_protocol_parse(const char *s, int *out)
{
	if (!strcmp(s, "tcp"))
		*out = IPPROTO_TCP;
	else if (!strcmp(s, "udp"))
		*out = IPPROTO_UDP;
	else
		return -EINVAL;
	return 0;
}

const char *port_label(char buf[PORT_LABEL_LEN], uint16_t port, int protocol)
{
	snprintf(buf, PORT_LABEL_LEN, protocol == IPPROTO_UDP ? "%u/udp" : "%u", port);
	return buf;
}
