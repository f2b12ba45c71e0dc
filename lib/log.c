#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wgrp/log.h"

static const char *log_ident = "wg-rp";
static unsigned log_flags;
static bool log_to_journal;

static const struct {
	const char *name;
	int syslog_priority;
} levels[] = {
	[LOG_LEVEL_ERROR] = { "error", 3 },
	[LOG_LEVEL_WARNING] = { "warning", 4 },
	[LOG_LEVEL_INFO] = { "info", 6 },
	[LOG_LEVEL_DEBUG] = { "debug", 7 },
};

void log_init(const char *ident, unsigned flags)
{
	log_ident = ident;
	log_flags = flags;
	/* systemd sets this when stderr is connected to the journal. */
	log_to_journal = getenv("JOURNAL_STREAM") != NULL;
}

bool log_debug_enabled(void)
{
	return log_flags & LOG_VERBOSE;
}

/* How byte c is written: escaped, or as it is. */
static size_t escape_byte(char out[5], unsigned char c, bool all)
{
	if (c < 0x20 || c == 0x7f || (all && c > 0x7f))
		return (size_t)snprintf(out, 5, "\\x%02x", c);
	if (all && c == '\\')
		return (size_t)snprintf(out, 5, "\\\\");
	out[0] = (char)c;
	return 1;
}

/* Escapes into dst: control bytes always, and with all set, backslashes and
 * bytes past ASCII too. */
static const char *escape(char *dst, size_t size, const char *s, bool all)
{
	size_t need = 0, n = 0, len;
	char esc[5];
	bool cut;

	if (!size)
		return dst;
	for (const char *c = s; *c; c++)
		need += escape_byte(esc, (unsigned char)*c, all);
	cut = need >= size;
	for (; *s; s++) {
		len = escape_byte(esc, (unsigned char)*s, all);
		if (cut && n + len + 3 >= size) {
			if (n + 3 < size)
				memcpy(dst + n, "...", 3), n += 3;
			break;
		}
		memcpy(dst + n, esc, len);
		n += len;
	}
	dst[n] = '\0';
	return dst;
}

const char *log_escape(char *dst, size_t size, const char *s)
{
	return escape(dst, size, s, true);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char text[1024], line[LOG_ESCAPED_MAX];
	va_list ap;

	if (level == LOG_LEVEL_DEBUG && !(log_flags & LOG_VERBOSE))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* A newline must not start a line the journal would take as ours. */
	escape(line, sizeof(line), text, false);

	if (log_to_journal) {
		fprintf(stderr, "<%d>%s: %s\n", levels[level].syslog_priority, levels[level].name,
			line);
	} else if (log_flags & LOG_TIMESTAMPS) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s %s: %s\n", stamp, ts.tv_nsec / 1000000, log_ident,
			levels[level].name, line);
	} else {
		fprintf(stderr, "%s: %s: %s\n", log_ident, levels[level].name, line);
	}
}

void log_diags(const struct diag_list *d)
{
	for (size_t i = 0; i < d->n; i++)
		log_msg(d->items[i].level == DIAG_ERROR ? LOG_LEVEL_ERROR : LOG_LEVEL_WARNING, "%s",
			d->items[i].msg);
	if (d->oom)
		log_error("out of memory: some messages were lost");
}
