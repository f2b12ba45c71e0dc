#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "test.h"
#include "wgrp/cli.h"

static const struct cli_program rps = { .name = "rps", .default_config = "wg-server.conf" };
static const struct cli_program rpc = {
	.name = "rpc", .default_config = "wg-client.conf", .role = CLI_CLIENT
};

#define parse(prog, o, e, ...)                                                        \
	cli_parse(o, prog, (int)N_ELEMS(((char *[]){ "prog", __VA_ARGS__ })),          \
		  (char *[]){ "prog", __VA_ARGS__, NULL }, e)

static void defaults_follow_the_original(void **state)
{
	struct options o;

	(void)state;
	assert_int_equal(cli_parse(&o, &rps, 1, (char *[]){ "rps", NULL }, NULL), CLI_RUN);
	assert_string_equal(o.config_path, "wg-server.conf");
	assert_int_equal(o.buffer_kb, CLI_DEFAULT_BUFFER_KB);
	assert_string_equal(o.ifname, "wg0");
	assert_false(o.verbose);
	assert_false(o.test_config);
	options_clear(&o);
}

static void relay_limits_default_and_parse(void **state)
{
	struct options o;

	(void)state;
	assert_int_equal(parse(&rps, &o, NULL, "-v"), CLI_RUN);
	assert_int_equal(o.idle_timeout_s, 3600);
	assert_int_equal(o.max_conns_per_source, 512);
	options_clear(&o);
	assert_int_equal(parse(&rps, &o, NULL, "--idle-timeout", "0", "--max-conns-per-source=3"),
			 CLI_RUN);
	assert_int_equal(o.idle_timeout_s, 0);
	assert_int_equal(o.max_conns_per_source, 3);
	options_clear(&o);
	assert_int_equal(parse(&rpc, &o, NULL, "--idle-timeout=2", "-r", "127.0.0.1:1-1"), CLI_RUN);
	assert_int_equal(o.idle_timeout_s, 2);
	assert_int_equal(o.udp_timeout_s, 60);
	options_clear(&o);
}

static void udp_timeout_on_both_daemons(void **state)
{
	struct options o;

	(void)state;
	assert_int_equal(parse(&rps, &o, NULL, "--udp-timeout", "1"), CLI_RUN);
	assert_int_equal(o.udp_timeout_s, 1);
	options_clear(&o);
	assert_int_equal(parse(&rpc, &o, NULL, "--udp-timeout=86400", "-r", "127.0.0.1:53-53/udp",
			       "-r", "127.0.0.1:53-53"),
			 CLI_RUN);
	assert_int_equal(o.udp_timeout_s, 86400);
	assert_int_equal(o.routes.n, 2);
	assert_int_equal(o.routes.items[0].protocol, IPPROTO_UDP);
	assert_int_equal(o.routes.items[1].protocol, IPPROTO_TCP);
	options_clear(&o);
}

static void short_and_long_options_are_equal(void **state)
{
	struct options s, l;

	(void)state;
	assert_int_equal(parse(&rpc, &s, NULL, "-c", "x.conf", "-i", "wgx", "-v", "-t", "-b", "128", "-r",
			       "127.0.0.1:3000-3000", "-r", "localhost:8080-8080"),
			 CLI_RUN);
	assert_int_equal(parse(&rpc, &l, NULL, "--config", "x.conf", "--interface=wgx", "--verbose",
			       "--test-config",
			       "--buffer-size=128", "--route", "127.0.0.1:3000-3000",
			       "--route=localhost:8080-8080", "--workers", "3"),
			 CLI_RUN);
	assert_string_equal(s.config_path, l.config_path);
	assert_string_equal(s.ifname, "wgx");
	assert_string_equal(l.ifname, "wgx");
	assert_true(s.verbose && l.verbose && s.test_config && l.test_config);
	assert_int_equal(s.buffer_kb, 128);
	assert_int_equal(l.buffer_kb, 128);
	assert_int_equal(s.workers, 0);
	assert_int_equal(l.workers, 3);
	assert_int_equal(s.routes.n, 2);
	assert_int_equal(l.routes.n, 2);
	assert_int_equal(l.routes.items[1].remote_port, 8080);
	options_clear(&s);
	options_clear(&l);
}

static void help_and_version_need_no_route(void **state)
{
	struct options o;

	(void)state;
	assert_int_equal(parse(&rpc, &o, NULL, "-V"), CLI_VERSION);
	options_clear(&o);
	assert_int_equal(parse(&rpc, &o, NULL, "--help"), CLI_HELP);
	options_clear(&o);
}

static void assert_usage_error(const struct cli_program *p, const char *msg, int argc, char **argv)
{
	struct options o;
	struct errbuf e;

	assert_int_equal(cli_parse(&o, p, argc, argv, &e), -EINVAL);
	assert_string_equal(e.msg, msg);
	options_clear(&o);
}

#define usage_error(p, msg, ...) \
	assert_usage_error(p, msg, (int)N_ELEMS(((char *[]){ "prog", __VA_ARGS__ })), \
			   (char *[]){ "prog", __VA_ARGS__, NULL })

static void bad_command_lines_say_what_is_wrong(void **state)
{
	(void)state;
	usage_error(&rpc, "invalid route \"bad\": expected local_host:local_port-remote_port, "
			  "e.g. 127.0.0.1:3000-3000", "-r", "bad");
	usage_error(&rpc, "invalid route \"b:2-1\": remote port 1 is already used by another route",
		    "-r", "a:1-1", "-r", "b:2-1");
	usage_error(&rps, "unknown option '-r'", "-r", "a:1-1");
	usage_error(&rps, "unknown option '-x'", "-vx");
	usage_error(&rps, "unknown option \"--bogus\"", "--bogus");
	usage_error(&rps, "option \"-c\" needs a value", "-c");
	usage_error(&rps, "option \"--config\" needs a value", "--config");
	usage_error(&rps, "-b: \"0\" is out of range (1-1048576)", "-b", "0");
	usage_error(&rps, "-b: \"12k\" is not a number", "-b", "12k");
	usage_error(&rps, "-b: \"-5\" is not a number", "--buffer-size", "-5");
	usage_error(&rps, "--workers: \"0\" is out of range (1-1024)", "--workers", "0");
	usage_error(&rps, "--workers: \"1025\" is out of range (1-1024)", "--workers", "1025");
	usage_error(&rps, "unexpected argument \"extra\"", "extra");
	usage_error(&rps, "-i: invalid interface name \"a/b\" (1-15 characters, no '/', ':' or blanks)",
		    "-i", "a/b");
	usage_error(&rps, "-i: invalid interface name \"wg-rp-too-long-1\" (1-15 characters, no '/', "
			  "':' or blanks)", "--interface", "wg-rp-too-long-1");
	usage_error(&rps, "-i: invalid interface name \"\" (1-15 characters, no '/', ':' or blanks)",
		    "-i", "");
	usage_error(&rps, "--idle-timeout: \"-1\" is not a number", "--idle-timeout", "-1");
	usage_error(&rps, "--max-conns-per-source: \"0\" is out of range (1-1000000)",
		    "--max-conns-per-source", "0");
	usage_error(&rpc, "unknown option \"--max-conns-per-source\"", "--max-conns-per-source", "5",
		    "-r", "127.0.0.1:1-1");
	usage_error(&rps, "--udp-timeout: \"0\" is out of range (1-86400)", "--udp-timeout", "0");
	usage_error(&rps, "--udp-timeout: \"86401\" is out of range (1-86400)", "--udp-timeout=86401");
	usage_error(&rpc, "invalid route \"b:2-1/udp\": remote port 1/udp is already used by another "
			  "route", "-r", "a:1-1/udp", "-r", "a:1-1", "-r", "b:2-1/udp");
	usage_error(&rpc, "invalid route \"a:1-1/udp,send-proxy\": send-proxy (PROXY v1) has no "
			  "UDP; use send-proxy-v2", "-r", "a:1-1/udp,send-proxy");
}

#define parse_status(o, e, ...)                                                       \
	cli_parse_status(o, (int)N_ELEMS(((char *[]){ "status", __VA_ARGS__ })),        \
			 (char *[]){ "status", __VA_ARGS__, NULL }, e)

static void status_takes_an_interface_and_json(void **state)
{
	struct status_options o;
	struct errbuf e;

	(void)state;
	assert_int_equal(cli_parse_status(&o, 1, (char *[]){ "status", NULL }, &e), CLI_RUN);
	assert_string_equal(o.ifname, "wg0");
	assert_false(o.json);
	assert_int_equal(parse_status(&o, &e, "-i", "wg7", "--json"), CLI_RUN);
	assert_string_equal(o.ifname, "wg7");
	assert_true(o.json);
	assert_int_equal(parse_status(&o, &e, "--interface=x"), CLI_RUN);
	assert_string_equal(o.ifname, "x");
	assert_int_equal(parse_status(&o, &e, "-h"), CLI_HELP);
	assert_int_equal(parse_status(&o, &e, "-i", "a/b"), -EINVAL);
	assert_string_equal(e.msg, "-i: invalid interface name \"a/b\" (1-15 characters, no '/', "
			    "':' or blanks)");
	assert_int_equal(parse_status(&o, &e, "-i"), -EINVAL);
	assert_string_equal(e.msg, "option \"-i\" needs a value");
	assert_int_equal(parse_status(&o, &e, "-c", "x.conf"), -EINVAL);
	assert_string_equal(e.msg, "unknown option '-c'");
	assert_int_equal(parse_status(&o, &e, "now"), -EINVAL);
	assert_string_equal(e.msg, "unexpected argument \"now\"");
}

static int dumpable_in_run = -1;

static int record_dumpable(const struct options *o, struct conf *c)
{
	(void)o;
	dumpable_in_run = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	conf_free(c);
	return CLI_EXIT_OK;
}

/* The daemon runs holding its private key: a crash must not dump it. */
static void daemons_run_not_dumpable(void **state)
{
	static const char text[] = "[Interface]\nPrivateKey = "
				   "YOYltDBmcdOlwCMqExR920sESriPJEmyZKQDANcMCFY=\n"
				   "Address = 10.0.0.1/24\n";
	const struct cli_program daemon = { .name = "rps", .default_config = "none",
					    .run = record_dumpable };
	char path[] = "/tmp/cli_test.XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
	assert_int_equal(cli_main(&daemon, 3, (char *[]){ "rps", "-c", path, NULL }), CLI_EXIT_OK);
	unlink(path);
	assert_int_equal(dumpable_in_run, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_follow_the_original),
		cmocka_unit_test(relay_limits_default_and_parse),
		cmocka_unit_test(udp_timeout_on_both_daemons),
		cmocka_unit_test(short_and_long_options_are_equal),
		cmocka_unit_test(help_and_version_need_no_route),
		cmocka_unit_test(bad_command_lines_say_what_is_wrong),
		cmocka_unit_test(daemons_run_not_dumpable),
		cmocka_unit_test(status_takes_an_interface_and_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
