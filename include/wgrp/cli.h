/* The command line both daemons share: options, config loading, -t, and the
 * exit statuses. A daemon's main() describes itself in a cli_program and hands
 * over to cli_main(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "wgrp/conf.h"
#include "wgrp/route.h"

#define CLI_DEFAULT_BUFFER_KB 64
#define CLI_MAX_BUFFER_KB (1u << 20)

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILURE = 1, /* bad configuration or a fatal runtime error */
	CLI_EXIT_USAGE = 2,   /* bad command line */
};

struct options {
	const char *config_path;
	const char *ifname;
	bool verbose;
	bool test_config;
	uint32_t buffer_kb;
	struct route_list routes; /* rpc only */
};

struct cli_program {
	const char *name;           /* "rps" or "rpc" */
	const char *default_config; /* used without -c */
	bool takes_routes;          /* -r is accepted and at least one is required */
	/* Runs the daemon with parsed options and a loaded, resolved config it
	 * takes over; returns the exit status. NULL: the daemon only holds its
	 * interface up until SIGINT or SIGTERM. */
	int (*run)(const struct options *o, struct conf *c);
};

enum cli_action {
	CLI_RUN,
	CLI_HELP,
	CLI_VERSION,
};

/* Parses argv for program p into o (clear it with options_clear()). Returns a
 * cli_action, or -EINVAL with one line in e saying what is wrong. */
int cli_parse(struct options *o, const struct cli_program *p, int argc, char **argv,
	      struct errbuf *e);

void options_clear(struct options *o);

/* Writes the usage text of p. */
void cli_usage(FILE *f, const struct cli_program *p);

/* Writes what -t shows: addresses, listen port, peers and their allowed IPs,
 * routes; never key material. */
void cli_print_summary(FILE *f, const struct cli_program *p, const struct options *o,
		       const struct conf *c);

/* Parses the command line, loads and checks the config, then prints the
 * summary (-t) or runs the daemon. Returns the process exit status. */
int cli_main(const struct cli_program *p, int argc, char **argv);
