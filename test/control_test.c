#include <errno.h>

#include "test.h"
#include "wgrp/control.h"

static int parse(const char *text, const char **command, json_t **out, struct errbuf *e)
{
	return control_request_parse(text, strlen(text), out, command, e);
}

static void a_command_line_parses(void **state)
{
	const char *command;
	json_t *req;
	struct errbuf e;

	(void)state;
	assert_int_equal(parse("{\"command\":\"status\"}\n", &command, &req, &e), 0);
	assert_string_equal(command, "status");
	json_decref(req);
	/* Arguments are the command's: kept for its handler. */
	assert_int_equal(parse(" {\"command\":\"reload\",\"dry_run\":true} ", &command, &req, &e), 0);
	assert_string_equal(command, "reload");
	assert_true(json_is_true(json_object_get(req, "dry_run")));
	json_decref(req);
}

static void bad_requests_say_why(void **state)
{
	static const char *const bad[] = {
		"",
		"status\n",
		"{\"command\":\"status\"",
		"{\"command\":\"status\"}{}",
		"{\"command\":\"status\"}\nmore",
		"[\"status\"]",
		"{\"cmd\":\"status\"}",
		"{\"command\":1}",
		"{\"command\":null}",
		"{\"command\":\"a\",\"command\":\"b\"}",
		"\"status\"",
	};
	const char *command;
	json_t *req;
	struct errbuf e;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		assert_int_equal(parse(bad[i], &command, &req, &e), -EINVAL);
		assert_true(strlen(e.msg) > 0);
	}
	assert_int_equal(parse("{}", &command, &req, &e), -EINVAL);
	assert_string_equal(e.msg, "expected an object with a string \"command\"");
	assert_int_equal(parse("{", &command, &req, &e), -EINVAL);
	assert_contains(e.msg, "not JSON: ");
	/* A NUL inside is not JSON text. */
	assert_int_equal(control_request_parse("{\"command\":\"st\0atus\"}", 21, &req, &command, &e),
			 -EINVAL);
}

static void the_path_is_named_after_the_interface(void **state)
{
	char path[CONTROL_PATH_LEN];

	(void)state;
	control_path(path, "wg0");
	assert_string_equal(path, "/run/wg-rp/wg0.sock");
	/* The longest interface name fits. */
	control_path(path, "abcdefghijklmno");
	assert_string_equal(path, "/run/wg-rp/abcdefghijklmno.sock");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_command_line_parses),
		cmocka_unit_test(bad_requests_say_why),
		cmocka_unit_test(the_path_is_named_after_the_interface),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
