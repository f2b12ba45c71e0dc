#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "wgrp/cli.h"
#include "wgrp/device.h"
#include "wgrp/log.h"
#include "wgrp/num.h"
#include "wgrp/version.h"

struct option_def {
	const char *long_name;
	char short_name;
	const char *arg; /* NULL for a flag */
	bool routes_only; /* rpc's options */
	const char *help;
};

static const struct option_def option_defs[] = {
	{ "config", 'c', "FILE", false, "wg-quick style config" },
	{ "route", 'r', "SPEC", true,
	  "publish a local service: local_host:local_port-remote_port,\n"
	  "                          e.g. 127.0.0.1:3000-3000; repeat for more" },
	{ "interface", 'i', "NAME", false, "WireGuard interface name (default: " DEVICE_DEFAULT_IFNAME ")" },
	{ "buffer-size", 'b', "KB", false, "relay pipe size in KiB (default: 64)" },
	{ "test-config", 't', NULL, false, "check the config and options, print a summary, exit" },
	{ "verbose", 'v', NULL, false, "log debug messages too" },
	{ "version", 'V', NULL, false, "print the version and exit" },
	{ "help", 'h', NULL, false, "print this help and exit" },
};

#define N_OPTIONS (sizeof(option_defs) / sizeof(option_defs[0]))

static bool offered(const struct option_def *d, const struct cli_program *p)
{
	return !d->routes_only || p->takes_routes;
}

void cli_usage(FILE *f, const struct cli_program *p)
{
	fprintf(f, "Usage: %s [-c FILE]%s [-i NAME] [-b KB] [-t] [-v] [-V] [-h]\n\n", p->name,
		p->takes_routes ? " -r SPEC [-r SPEC ...]" : "");
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *d = &option_defs[i];
		char head[40];

		if (!offered(d, p))
			continue;
		snprintf(head, sizeof(head), "-%c, --%s%s%s", d->short_name, d->long_name,
			 d->arg ? " " : "", d->arg ? d->arg : "");
		fprintf(f, "  %-24s", head);
		fputs(d->help, f);
		if (d->short_name == 'c')
			fprintf(f, " (default: %s)", p->default_config);
		fputc('\n', f);
	}
}

/* The kernel's rules for interface names (dev_valid_name()). */
static bool valid_ifname(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

void options_clear(struct options *o)
{
	route_list_clear(&o->routes);
	memset(o, 0, sizeof(*o));
}

int cli_parse(struct options *o, const struct cli_program *p, int argc, char **argv,
	      struct errbuf *e)
{
	struct option longopts[N_OPTIONS + 1] = { 0 };
	char optstring[2 * N_OPTIONS + 2] = ":", *s = optstring + 1;
	char q[QUOTED_MAX];
	enum cli_action action = CLI_RUN;
	size_t n = 0;
	struct errbuf why;
	int c, r;

	memset(o, 0, sizeof(*o));
	o->config_path = p->default_config;
	o->ifname = DEVICE_DEFAULT_IFNAME;
	o->buffer_kb = CLI_DEFAULT_BUFFER_KB;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *d = &option_defs[i];

		if (!offered(d, p))
			continue;
		longopts[n++] = (struct option){ d->long_name, d->arg ? required_argument : no_argument,
						 NULL, d->short_name };
		*s++ = d->short_name;
		if (d->arg)
			*s++ = ':';
	}

	/* 0 resets getopt's state, so that parsing can run more than once. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'r':
			r = route_list_add(&o->routes, optarg, e);
			if (r < 0)
				return r == -ENOMEM ? r : -EINVAL;
			break;
		case 'i':
			if (!valid_ifname(optarg))
				return errbuf_set(e, -EINVAL,
						  "-i: invalid interface name %s (1-%d characters, "
						  "no '/', ':' or blanks)",
						  quote(q, optarg), IFNAMSIZ - 1);
			o->ifname = optarg;
			break;
		case 'b':
			if (num_parse_u32(optarg, 1, CLI_MAX_BUFFER_KB, &o->buffer_kb, &why) < 0)
				return errbuf_set(e, -EINVAL, "-b: %s", why.msg);
			break;
		case 't':
			o->test_config = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'V':
			action = CLI_VERSION;
			break;
		case 'h':
			action = CLI_HELP;
			break;
		case ':':
			return errbuf_set(e, -EINVAL, "option %s needs a value",
					  quote(q, argv[optind - 1]));
		default:
			if (optopt)
				return errbuf_set(e, -EINVAL, "unknown option '-%c'", optopt);
			return errbuf_set(e, -EINVAL, "unknown option %s",
					  quote(q, argv[optind - 1]));
		}
	}
	if (optind < argc)
		return errbuf_set(e, -EINVAL, "unexpected argument %s", quote(q, argv[optind]));
	if (action == CLI_RUN && p->takes_routes && o->routes.n == 0)
		return errbuf_set(e, -EINVAL,
				  "no route given: add -r local_host:local_port-remote_port, "
				  "e.g. -r 127.0.0.1:3000-3000");
	return action;
}

static void print_prefixes(FILE *f, const struct ip_prefix *v, size_t n)
{
	char buf[ADDR_PREFIX_STRLEN];

	if (n == 0)
		fputs("(none)", f);
	for (size_t i = 0; i < n; i++) {
		ip_prefix_format(&v[i], buf, sizeof(buf));
		fprintf(f, "%s%s", i ? ", " : "", buf);
	}
}

void cli_print_summary(FILE *f, const struct cli_program *p, const struct options *o,
		       const struct conf *c)
{
	char buf[ADDR_HOSTPORT_STRLEN];

	fprintf(f, "%s: configuration is valid\n", c->name);
	fprintf(f, "interface %s: addresses ", o->ifname);
	print_prefixes(f, c->addresses, c->n_addresses);
	if (c->listen_port)
		fprintf(f, "; listen port %u", c->listen_port);
	else
		fputs("; listen port chosen by the kernel", f);
	if (c->mtu)
		fprintf(f, "; MTU %u", c->mtu);
	if (c->fwmark)
		fprintf(f, "; fwmark 0x%x", c->fwmark);
	fputc('\n', f);

	for (size_t i = 0; i < c->n_peers; i++) {
		const struct conf_peer *peer = &c->peers[i];

		fprintf(f, "peer %zu (line %u): allowed IPs ", i + 1, peer->line);
		print_prefixes(f, peer->allowed_ips, peer->n_allowed_ips);
		if (peer->has_endpoint) {
			hostport_format(&peer->endpoint, buf, sizeof(buf));
			fprintf(f, "; endpoint %s", buf);
		}
		if (peer->persistent_keepalive)
			fprintf(f, "; keepalive every %u s", peer->persistent_keepalive);
		if (peer->has_preshared_key)
			fputs("; preshared key set", f);
		fputc('\n', f);
	}
	for (size_t i = 0; i < o->routes.n; i++) {
		hostport_format(&o->routes.items[i].local, buf, sizeof(buf));
		fprintf(f, "route %zu: %s published on the server's port %u\n", i + 1, buf,
			o->routes.items[i].remote_port);
	}
	fprintf(f, "%s: relay pipe size %u KiB\n", p->name, o->buffer_kb);
}

/* Until the relays and the API exist, a daemon holds its interface up until
 * it is told to stop. */
static int hold_device(const struct cli_program *p, const struct options *o, struct conf *c)
{
	struct diag_list notes = { 0 };
	struct device *d = NULL;
	struct errbuf e;
	sigset_t stop;
	int sig, r;

	/* Blocked before anything starts, so that a signal is never lost. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, NULL);

	r = device_up(&d, c, o->ifname, p->name, &notes, &e);
	log_diags(&notes);
	diag_list_clear(&notes);
	conf_free(c);
	if (r < 0) {
		log_error("%s", e.msg);
		return CLI_EXIT_FAILURE;
	}
	log_info("interface %s is up (%s WireGuard)", o->ifname,
		 device_backend(d) == DEVICE_KERNEL ? "kernel" : "userspace");
	while (sigwait(&stop, &sig) != 0)
		;
	log_info("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	device_down(d);
	return CLI_EXIT_OK;
}

int cli_main(const struct cli_program *p, int argc, char **argv)
{
	struct diag_list diags = { 0 };
	struct options o;
	struct conf *c = NULL;
	struct errbuf e;
	int status = CLI_EXIT_FAILURE, r;

	r = cli_parse(&o, p, argc, argv, &e);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", p->name, e.msg);
		cli_usage(stderr, p);
		status = CLI_EXIT_USAGE;
		goto out;
	}
	if (r == CLI_HELP || r == CLI_VERSION) {
		if (r == CLI_HELP)
			cli_usage(stdout, p);
		else
			printf("%s %s\n", p->name, WGRP_VERSION);
		status = CLI_EXIT_OK;
		goto out;
	}

	log_init(p->name, (o.verbose ? LOG_VERBOSE : 0) | (o.test_config ? 0 : LOG_TIMESTAMPS));
	r = conf_load(&c, o.config_path, &diags);
	log_diags(&diags);
	if (r < 0) {
		if (o.test_config)
			log_error("%s: configuration test failed (%zu error%s)", o.config_path,
				  diags.n_errors, diags.n_errors == 1 ? "" : "s");
		goto out;
	}
	if (o.test_config) {
		cli_print_summary(stdout, p, &o, c);
		status = CLI_EXIT_OK;
		goto out;
	}
	diag_list_clear(&diags);
	r = conf_resolve_endpoints(c, &diags);
	log_diags(&diags);
	if (r < 0)
		goto out;
	status = p->run ? p->run(&o, c) : hold_device(p, &o, c);
	c = NULL;
out:
	conf_free(c);
	diag_list_clear(&diags);
	options_clear(&o);
	return status;
}
