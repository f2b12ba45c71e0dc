#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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

/* A daemon's side on a real socket (root only: /run/wg-rp): "now" answers
 * at once, "later" keeps its request for the test to answer. */
struct daemon {
	struct loop *loop;
	struct control_server *srv;
	struct control_request *held;
	char ifname[16];
};

static void answer_now(void *data, struct control_request *req)
{
	(void)data;
	control_reply(req, json_pack("{s:b, s:s}", "success", 1, "message", "now"));
}

static void answer_later(void *data, struct control_request *req)
{
	((struct daemon *)data)->held = req;
}

static const struct control_command commands[] = { { "now", answer_now },
						    { "later", answer_later } };

static int start(void **state)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct errbuf e;

	/* Skipped (see need()) without root: the directory is root's. */
	*state = NULL;
	if (getuid() != 0) {
		free(d);
		return 0;
	}
	snprintf(d->ifname, sizeof(d->ifname), "ctltest%d", (int)getpid());
	assert_int_equal(loop_new(&d->loop), 0);
	assert_int_equal(control_server_new(&d->srv, d->loop, d->ifname, "test", commands, 2, d, &e),
			 0);
	*state = d;
	return 0;
}

static int stop(void **state)
{
	struct daemon *d = *state;
	char path[CONTROL_PATH_LEN];

	if (!d)
		return 0;
	control_path(path, d->ifname);
	control_server_free(d->srv);
	/* The socket file goes with the server. */
	assert_int_equal(access(path, F_OK), -1);
	loop_free(d->loop);
	free(d);
	return 0;
}

static struct daemon *need(void **state)
{
	if (!*state)
		skip();
	return *state;
}

/* A client that sent line: its fd, not blocking. */
static int ask(const struct daemon *d, const char *line)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	control_path(sa.sun_path, d->ifname);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, line, strlen(line), 0), (ssize_t)strlen(line));
	return fd;
}

/* Runs the loop until fd has an answer; returns it (static). */
static const char *answer(struct daemon *d, int fd)
{
	static char buf[512];
	ssize_t n = -1;

	for (int i = 0; i < 100 && n < 0; i++) {
		loop_run_once(d->loop, 10);
		n = recv(fd, buf, sizeof(buf) - 1, 0);
	}
	assert_true(n > 0);
	buf[n] = 0;
	return buf;
}

static void a_handler_answers_at_once_or_later(void **state)
{
	struct daemon *d = need(state);
	int a = ask(d, "{\"command\":\"now\"}\n"), b, c;

	assert_string_equal(answer(d, a), "{\"success\":true,\"message\":\"now\"}\n");
	close(a);
	b = ask(d, "{\"command\":\"later\"}\n");
	for (int i = 0; i < 10; i++)
		loop_run_once(d->loop, 10);
	assert_non_null(d->held);
	/* Meanwhile others are served, and the held client is not timed. */
	c = ask(d, "{\"command\":\"what\"}");
	shutdown(c, SHUT_WR);
	assert_string_equal(answer(d, c), "{\"success\":false,\"message\":\"unknown command "
					 "\\\"what\\\" (test knows: now, later)\"}\n");
	close(c);
	control_reply_error(d->held, "done after %d", 1);
	d->held = NULL;
	assert_string_equal(answer(d, b), "{\"success\":false,\"message\":\"done after 1\"}\n");
	close(b);
}

static void a_late_answer_to_a_client_gone_is_dropped(void **state)
{
	struct daemon *d = need(state);
	int a = ask(d, "{\"command\":\"later\"}\n");

	for (int i = 0; i < 10 && !d->held; i++)
		loop_run_once(d->loop, 10);
	assert_non_null(d->held);
	close(a);
	control_reply(d->held, json_pack("{s:b, s:s}", "success", 1, "message", "late"));
	d->held = NULL;
	/* And the server goes on. */
	a = ask(d, "{\"command\":\"now\"}\n");
	assert_string_equal(answer(d, a), "{\"success\":true,\"message\":\"now\"}\n");
	close(a);
}

static void a_second_server_on_a_live_socket_is_refused(void **state)
{
	struct daemon *d = need(state);
	struct control_server *other;
	struct errbuf e;

	assert_int_equal(control_server_new(&other, d->loop, d->ifname, "test", commands, 2, d, &e),
			 -EADDRINUSE);
	assert_contains(e.msg, "another rps or rpc is running on interface ctltest");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_command_line_parses),
		cmocka_unit_test(bad_requests_say_why),
		cmocka_unit_test(the_path_is_named_after_the_interface),
		cmocka_unit_test_setup_teardown(a_handler_answers_at_once_or_later, start, stop),
		cmocka_unit_test_setup_teardown(a_late_answer_to_a_client_gone_is_dropped, start,
						stop),
		cmocka_unit_test_setup_teardown(a_second_server_on_a_live_socket_is_refused, start,
						stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
