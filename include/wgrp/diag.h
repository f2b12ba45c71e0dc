/* Error messages for the caller: a single-message buffer for parsers of one
 * value, and a list of errors and warnings for parsers of whole files. The
 * library never logs; callers decide where these messages go. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define ERRBUF_LEN 320

struct errbuf {
	char msg[ERRBUF_LEN];
};

/* Formats a message into e (if e is non-NULL) and returns err, so a parser can
 * write `return errbuf_set(e, -EINVAL, "...")`. */
int errbuf_set(struct errbuf *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Room for quote()'s output. */
#define QUOTED_MAX 100
#define QUOTE_HIDDEN "(not shown: it may hold a key)"

/* Writes s in double quotes into dst, escaping control and non-ASCII bytes as
 * \xNN and cutting long values short with "...", so that any input is safe to
 * show inside one log line; or QUOTE_HIDDEN when s may hold a WireGuard key
 * (key_lookalike()), which no message may show. Returns dst. */
const char *quote(char dst[QUOTED_MAX], const char *s);

enum diag_level {
	DIAG_ERROR,
	DIAG_WARNING,
};

struct diag {
	enum diag_level level;
	char *msg;
};

struct diag_list {
	struct diag *items;
	size_t n;
	size_t cap;
	size_t n_errors;
	/* Set when a message could not be stored; the list then lacks entries. */
	bool oom;
};

/* Appends a message. Out of memory is recorded in d->oom and counted as an
 * error when level is DIAG_ERROR, so a failed parse never looks clean. */
void diag_add(struct diag_list *d, enum diag_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Frees the messages; d may be reused afterwards. */
void diag_list_clear(struct diag_list *d);
