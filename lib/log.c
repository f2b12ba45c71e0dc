#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (level == LOG_LEVEL_DEBUG && !(log_flags & LOG_VERBOSE))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

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
