/* What the daemons log of text from outside stays one line of printable
 * ASCII, and a line with a newline in it stays one line. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "wgrp/log.h"

static void escapes_controls_backslashes_and_non_ascii(void **state)
{
	char out[LOG_ESCAPED_MAX];

	(void)state;
	assert_string_equal(log_escape(out, sizeof(out), "port 22 is not allowed"),
			    "port 22 is not allowed");
	assert_string_equal(log_escape(out, sizeof(out), "taken\nrpc: info: all fine\r"),
			    "taken\\x0arpc: info: all fine\\x0d");
	assert_string_equal(log_escape(out, sizeof(out), "\x1b[31mred\x7f\t"),
			    "\\x1b[31mred\\x7f\\x09");
	/* A backslash doubled: "\x0a" from the server cannot pass for an escape. */
	assert_string_equal(log_escape(out, sizeof(out), "a\\x0a"), "a\\\\x0a");
	assert_string_equal(log_escape(out, sizeof(out), "caf\xc3\xa9"), "caf\\xc3\\xa9");
	assert_string_equal(log_escape(out, sizeof(out), ""), "");
}

static void cuts_long_text_short_between_escapes(void **state)
{
	char out[12];

	(void)state;
	assert_string_equal(log_escape(out, sizeof(out), "0123456789a"), "0123456789a");
	assert_string_equal(log_escape(out, sizeof(out), "0123456789ab"), "01234567...");
	assert_string_equal(log_escape(out, sizeof(out), "0123456\n89ab"), "0123456...");
	assert_string_equal(log_escape(out, 4, "\n"), "...");
	assert_string_equal(log_escape(out, 1, "abc"), "");
}

/* Captures what log_msg() writes to stderr. */
static void logged(char *out, size_t size, const char *text)
{
	char path[] = "/tmp/log_test.XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	log_msg(LOG_LEVEL_WARNING, "server says: %s", text);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, out, size - 1, 0);
	close(fd);
	assert_true(n >= 0);
	out[n] = '\0';
}

static void a_logged_line_never_holds_a_newline(void **state)
{
	char out[256];

	(void)state;
	log_init("rpc", 0);
	logged(out, sizeof(out), "one\ntwo\x1b[0m \\ caf\xc3\xa9");
	assert_string_equal(out, "rpc: warning: server says: one\\x0atwo\\x1b[0m \\ caf\xc3\xa9\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(escapes_controls_backslashes_and_non_ascii),
		cmocka_unit_test(cuts_long_text_short_between_escapes),
		cmocka_unit_test(a_logged_line_never_holds_a_newline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
