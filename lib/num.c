#include <errno.h>
#include <stdlib.h>

#include "wgrp/num.h"

int num_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out, struct errbuf *e)
{
	unsigned long long v = 0;
	char q[QUOTED_MAX];
	const char *p;

	if (!*s)
		return errbuf_set(e, -EINVAL, "empty value, expected a number");
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return errbuf_set(e, -EINVAL, "%s is not a number", quote(q, s));
		/* Saturate instead of overflowing; anything this large is out of range. */
		if (v <= UINT32_MAX)
			v = v * 10 + (unsigned)(*p - '0');
	}
	if (v < min || v > max)
		return errbuf_set(e, -ERANGE, "%s is out of range (%u-%u)", quote(q, s), min,
				  max);
	*out = (uint32_t)v;
	return 0;
}

int num_parse_port(const char *s, uint16_t *out, struct errbuf *e)
{
	uint32_t v = 0; /* set when r is 0; gcc -O2 cannot tell */
	int r = num_parse_u32(s, 1, 65535, &v, e);

	if (r == 0)
		*out = (uint16_t)v;
	return r;
}
