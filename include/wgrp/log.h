/* One line per event on stderr, with a level. Under systemd (JOURNAL_STREAM
 * set) lines carry a <N> priority prefix and no timestamp, since the journal
 * adds both. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "wgrp/diag.h"

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_flags {
	LOG_VERBOSE = 1 << 0,    /* emit debug lines */
	LOG_TIMESTAMPS = 1 << 1, /* start lines with the local time (not under systemd) */
};

/* ident names the program in each line. */
void log_init(const char *ident, unsigned flags);
bool log_debug_enabled(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* Room for log_escape() to write any text a line can hold. */
#define LOG_ESCAPED_MAX 1024

/* Writes s into dst (size bytes) so that it stays one line of printable
 * ASCII whatever it holds: a backslash as \\, every other byte outside
 * 0x20-0x7e as \xNN; cut short with "..." when dst is too small. For text
 * from outside (a server's message) to be logged. Returns dst. */
const char *log_escape(char *dst, size_t size, const char *s);

/* Logs every entry of d at its level, in order. */
void log_diags(const struct diag_list *d);
