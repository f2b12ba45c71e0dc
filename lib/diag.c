#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wgrp/diag.h"
#include "wgrp/key.h"

int errbuf_set(struct errbuf *e, int err, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return err;
}

const char *quote(char dst[QUOTED_MAX], const char *s)
{
	/* Leave room for the worst case of one more escape, the dots and quotes. */
	const size_t limit = QUOTED_MAX - sizeof("\\xNN...\"");
	size_t n = 0;

	/* With its '=' forgotten, "PrivateKey <key>" would be an unknown key;
	 * pasted under another name, a key would be an invalid address. */
	if (key_lookalike(s))
		return strcpy(dst, QUOTE_HIDDEN);
	dst[n++] = '"';
	for (; *s && n < limit; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			n += (size_t)snprintf(dst + n, QUOTED_MAX - n, "\\x%02x", c);
		else
			dst[n++] = (char)c;
	}
	if (*s) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n++] = '"';
	dst[n] = '\0';
	return dst;
}

void diag_add(struct diag_list *d, enum diag_level level, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;
	int len;

	if (level == DIAG_ERROR)
		d->n_errors++;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct diag *items = reallocarray(d->items, cap, sizeof(*items));

		if (!items)
			goto oom;
		d->items = items;
		d->cap = cap;
	}
	va_start(ap, fmt);
	len = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (len < 0)
		goto oom;
	d->items[d->n++] = (struct diag){ .level = level, .msg = msg };
	return;
oom:
	d->oom = true;
}

void diag_list_clear(struct diag_list *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->items[i].msg);
	free(d->items);
	*d = (struct diag_list){ 0 };
}
