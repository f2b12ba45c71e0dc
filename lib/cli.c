#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "wgrp/cli.h"
#include "wgrp/conf_diff.h"
#include "wgrp/control.h"
#include "wgrp/device.h"
#include "wgrp/log.h"
#include "wgrp/notify.h"
#include "wgrp/num.h"
#include "wgrp/peer_admin.h"
#include "wgrp/relay.h"
#include "wgrp/status.h"
#include "wgrp/version.h"

enum {
	OPT_API_PORT = 256,
	OPT_BIND,
	OPT_ALLOW_PORTS,
	OPT_MAX_MAPPINGS,
	OPT_HEARTBEAT_TIMEOUT,
	OPT_CHECK_INTERVAL,
	OPT_ALLOW_UNSIGNED,
	OPT_SERVER,
	OPT_HEARTBEAT_INTERVAL,
	OPT_IDLE_TIMEOUT,
	OPT_MAX_CONNS_PER_SOURCE,
	OPT_WORKERS,
	OPT_UDP_TIMEOUT,
	OPT_METRICS,
};

enum role_filter {
	BOTH,
	SERVER_ONLY,
	CLIENT_ONLY,
};

struct option_def {
	const char *long_name;
	int val;         /* the short option's letter, or an OPT_ above */
	const char *arg; /* NULL for a flag */
	enum role_filter role;
	const char *help;
};

static const struct option_def option_defs[] = {
	{ "config", 'c', "FILE", BOTH, "wg-quick style config" },
	{ "route", 'r', "SPEC", CLIENT_ONLY,
	  "publish a local service: local_host:local_port-remote_port,\n"
	  "                          e.g. 127.0.0.1:3000-3000; repeat for more;\n"
	  "                          /udp after it for a UDP service (/tcp: the default);\n"
	  "                          ,send-proxy-v2 ,send-proxy or ,transparent after\n"
	  "                          that tell the service the visitor's address" },
	{ "interface", 'i', "NAME", BOTH, "WireGuard interface name (default: " DEVICE_DEFAULT_IFNAME ")" },
	{ "buffer-size", 'b', "KB", BOTH, "relay pipe size in KiB (default: 64)" },
	{ "idle-timeout", OPT_IDLE_TIMEOUT, "SECS", BOTH,
	  "reset a relayed connection silent both ways this long\n"
	  "                          (default: 3600; 0: never)" },
	{ "udp-timeout", OPT_UDP_TIMEOUT, "SECS", BOTH,
	  "end a relayed UDP flow silent both ways this long\n"
	  "                          (default: 60)" },
	{ "workers", OPT_WORKERS, "N", BOTH,
	  "relay threads, each with its own connections\n"
	  "                          (default: the number of online CPUs)" },
	{ "metrics", OPT_METRICS, "ADDR:PORT", BOTH,
	  "serve Prometheus metrics at http://ADDR:PORT/metrics\n"
	  "                          (default: none; IPv6 in brackets)" },
	{ "api-port", OPT_API_PORT, "PORT", SERVER_ONLY, "API port on the tunnel addresses (default: 80)" },
	{ "bind", OPT_BIND, "ADDR", SERVER_ONLY, "public address for mapped ports (default: all)" },
	{ "allow-ports", OPT_ALLOW_PORTS, "LIST", SERVER_ONLY,
	  "ports clients may map, e.g. 1024-65535,8080 (default: 1-65535)" },
	{ "max-mappings", OPT_MAX_MAPPINGS, "N", SERVER_ONLY, "mappings per client (default: 64)" },
	{ "heartbeat-timeout", OPT_HEARTBEAT_TIMEOUT, "SECS", SERVER_ONLY,
	  "drop a silent client's mappings after (default: 60)" },
	{ "check-interval", OPT_CHECK_INTERVAL, "SECS", SERVER_ONLY,
	  "how often to look for silent clients (default: 30)" },
	{ "allow-unsigned", OPT_ALLOW_UNSIGNED, NULL, SERVER_ONLY,
	  "accept API requests not signed with the client's key\n"
	  "                          (the original Go clients; signed ones are always checked)" },
	{ "max-conns-per-source", OPT_MAX_CONNS_PER_SOURCE, "N", SERVER_ONLY,
	  "relayed connections one address may hold (default: 512)" },
	{ "server", OPT_SERVER, "ADDR", CLIENT_ONLY,
	  "server API address (default: first host of the first peer's AllowedIPs)" },
	{ "heartbeat-interval", OPT_HEARTBEAT_INTERVAL, "SECS", CLIENT_ONLY,
	  "time between heartbeats (default: 20)" },
	{ "test-config", 't', NULL, BOTH, "check the config and options, print a summary, exit" },
	{ "verbose", 'v', NULL, BOTH, "log debug messages too" },
	{ "version", 'V', NULL, BOTH, "print the version and exit" },
	{ "help", 'h', NULL, BOTH, "print this help and exit" },
};

#define N_OPTIONS (sizeof(option_defs) / sizeof(option_defs[0]))

static bool offered(const struct option_def *d, const struct cli_program *p)
{
	return d->role == BOTH || (d->role == CLIENT_ONLY) == (p->role == CLI_CLIENT);
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

int cli_parse_ifname(const char **out, const char *s, struct errbuf *e)
{
	char q[QUOTED_MAX];

	if (!valid_ifname(s))
		return errbuf_set(e, -EINVAL,
				  "-i: invalid interface name %s (1-%d characters, no '/', ':' or blanks)",
				  quote(q, s), IFNAMSIZ - 1);
	*out = s;
	return 0;
}

int cli_option_error(int c, char **argv, struct errbuf *e)
{
	char q[QUOTED_MAX];

	if (c == ':')
		return errbuf_set(e, -EINVAL, "option %s needs a value", quote(q, argv[optind - 1]));
	if (optopt)
		return errbuf_set(e, -EINVAL, "unknown option '-%c'", optopt);
	return errbuf_set(e, -EINVAL, "unknown option %s", quote(q, argv[optind - 1]));
}

/* Parses a number option into *out, naming the option in errors. */
static int number(const char *name, const char *value, uint32_t min, uint32_t max, uint32_t *out,
		  struct errbuf *e)
{
	struct errbuf why;

	if (num_parse_u32(value, min, max, out, &why) < 0)
		return errbuf_set(e, -EINVAL, "%s: %s", name, why.msg);
	return 0;
}

static int address(const char *name, const char *value, struct ip_addr *out, bool *has,
		   struct errbuf *e)
{
	struct errbuf why;

	if (ip_addr_parse(out, value, &why) < 0)
		return errbuf_set(e, -EINVAL, "%s: %s", name, why.msg);
	*has = true;
	return 0;
}

/* --metrics: an IP address (IPv6 in brackets) and a port. */
static int metrics_address(const char *value, struct options *o, struct errbuf *e)
{
	struct hostport hp;
	struct errbuf why;
	char q[QUOTED_MAX];

	if (hostport_parse(&hp, value, 0, &why) < 0)
		return errbuf_set(e, -EINVAL, "--metrics: %s", why.msg);
	if (!hp.is_ip)
		return errbuf_set(e, -EINVAL,
				  "--metrics: %s is not an IP address (ADDR:PORT, e.g. "
				  "127.0.0.1:9586 or [::1]:9586)",
				  quote(q, hp.host));
	o->metrics = hp.addr;
	o->has_metrics = true;
	return 0;
}

void cli_usage(FILE *f, const struct cli_program *p)
{
	fprintf(f, "Usage: %s [-c FILE]%s [-i NAME] [-b KB] [OPTIONS] [-t] [-v] [-V] [-h]\n",
		p->name, p->role == CLI_CLIENT ? " -r SPEC [-r SPEC ...]" : "");
	if (p->role == CLI_SERVER)
		peer_admin_usage_lines(f, p, "       ");
	fprintf(f, "       %s status [-i NAME] [--json]\n", p->name);
	fprintf(f, "       %s reload [-i NAME] [OPTIONS]\n\n", p->name);
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *d = &option_defs[i];
		char head[40];

		if (!offered(d, p))
			continue;
		if (d->val < 256)
			snprintf(head, sizeof(head), "-%c, --%s%s%s", d->val, d->long_name,
				 d->arg ? " " : "", d->arg ? d->arg : "");
		else
			snprintf(head, sizeof(head), "    --%s%s%s", d->long_name, d->arg ? " " : "",
				 d->arg ? d->arg : "");
		fprintf(f, "  %-24s", head);
		if (strlen(head) > 24)
			fprintf(f, "\n  %-24s", "");
		fputs(d->help, f);
		if (d->val == 'c')
			fprintf(f, " (default: %s)", p->default_config);
		fputc('\n', f);
	}
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
	o->idle_timeout_s = RELAY_DEFAULT_IDLE_TIMEOUT_S;
	o->udp_timeout_s = CLI_DEFAULT_UDP_TIMEOUT_S;
	o->max_conns_per_source = RELAY_DEFAULT_MAX_CONNS_PER_SOURCE;
	o->api_port = CLI_DEFAULT_API_PORT;
	port_set_add_range(&o->allow_ports, 1, 65535);
	o->max_mappings = CLI_DEFAULT_MAX_MAPPINGS;
	o->heartbeat_timeout_s = CLI_DEFAULT_HEARTBEAT_TIMEOUT_S;
	o->check_interval_s = CLI_DEFAULT_CHECK_INTERVAL_S;
	o->heartbeat_interval_s = CLI_DEFAULT_HEARTBEAT_INTERVAL_S;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *d = &option_defs[i];

		if (!offered(d, p))
			continue;
		longopts[n++] = (struct option){ d->long_name, d->arg ? required_argument : no_argument,
						 NULL, d->val };
		if (d->val >= 256)
			continue;
		*s++ = (char)d->val;
		if (d->arg)
			*s++ = ':';
	}

	/* 0 resets getopt's state, so that parsing can run more than once. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		r = 0;
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
			r = cli_parse_ifname(&o->ifname, optarg, e);
			break;
		case 'b':
			if (num_parse_u32(optarg, 1, CLI_MAX_BUFFER_KB, &o->buffer_kb, &why) < 0)
				return errbuf_set(e, -EINVAL, "-b: %s", why.msg);
			break;
		case OPT_API_PORT:
			r = number("--api-port", optarg, 1, 65535, &o->api_port, e);
			break;
		case OPT_BIND:
			r = address("--bind", optarg, &o->bind, &o->has_bind, e);
			break;
		case OPT_ALLOW_PORTS:
			r = port_set_parse(&o->allow_ports, optarg, &why);
			if (r < 0)
				errbuf_set(e, r, "--allow-ports: %s", why.msg);
			break;
		case OPT_MAX_MAPPINGS:
			r = number("--max-mappings", optarg, 1, CONF_MAX_MAPPINGS, &o->max_mappings, e);
			break;
		case OPT_HEARTBEAT_TIMEOUT:
			r = number("--heartbeat-timeout", optarg, 1, 86400, &o->heartbeat_timeout_s, e);
			break;
		case OPT_CHECK_INTERVAL:
			r = number("--check-interval", optarg, 1, 86400, &o->check_interval_s, e);
			break;
		case OPT_ALLOW_UNSIGNED:
			o->allow_unsigned = true;
			break;
		case OPT_IDLE_TIMEOUT:
			r = number("--idle-timeout", optarg, 0, CLI_MAX_IDLE_TIMEOUT_S, &o->idle_timeout_s,
				   e);
			break;
		case OPT_UDP_TIMEOUT:
			r = number("--udp-timeout", optarg, 1, CLI_MAX_UDP_TIMEOUT_S, &o->udp_timeout_s,
				   e);
			break;
		case OPT_MAX_CONNS_PER_SOURCE:
			r = number("--max-conns-per-source", optarg, 1, CONF_MAX_CONNS_PER_SOURCE,
				   &o->max_conns_per_source, e);
			break;
		case OPT_WORKERS:
			r = number("--workers", optarg, 1, CLI_MAX_WORKERS, &o->workers, e);
			break;
		case OPT_METRICS:
			r = metrics_address(optarg, o, e);
			break;
		case OPT_SERVER:
			r = address("--server", optarg, &o->server, &o->has_server, e);
			break;
		case OPT_HEARTBEAT_INTERVAL:
			r = number("--heartbeat-interval", optarg, 1, 86400, &o->heartbeat_interval_s, e);
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
		default:
			return cli_option_error(c, argv, e);
		}
		if (r < 0)
			return -EINVAL;
	}
	if (optind < argc)
		return errbuf_set(e, -EINVAL, "unexpected argument %s", quote(q, argv[optind]));
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

/* What rps lets peer do: its own "# wg-rp:" lines over the options. */
static void print_policy(FILE *f, const struct options *o, const struct conf_peer *peer)
{
	fputs("  ports ", f);
	port_set_print(f, peer->allow_ports ? peer->allow_ports : &o->allow_ports);
	fprintf(f, "%s; at most %u mappings%s; at most %u connections per source address%s\n",
		peer->allow_ports ? " (AllowPorts)" : "",
		peer->max_mappings ? peer->max_mappings : o->max_mappings,
		peer->max_mappings ? " (MaxMappings)" : "",
		peer->max_conns_per_source ? peer->max_conns_per_source : o->max_conns_per_source,
		peer->max_conns_per_source ? " (MaxConnsPerSource)" : "");
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

		fprintf(f, "peer %zu (line %u%s%s): allowed IPs ", i + 1, peer->line,
			peer->name ? ", " : "", peer->name ? peer->name : "");
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
		if (p->role == CLI_SERVER)
			print_policy(f, o, peer);
	}
	for (size_t i = 0; i < o->routes.n; i++) {
		const struct route *r = &o->routes.items[i];
		char port[PORT_LABEL_LEN];

		hostport_format(&r->local, buf, sizeof(buf));
		fprintf(f, "route %zu: %s published on the server's port %s%s%s\n", i + 1, buf,
			port_label(port, r->remote_port, r->protocol),
			r->visitor == ROUTE_PLAIN ? "" : ", ", route_visitor_name(r->visitor));
	}
	fprintf(f, "%s: relay pipe size %u KiB\n", p->name, o->buffer_kb);
	if (o->workers)
		fprintf(f, "%s: %u relay workers\n", p->name, o->workers);
	else
		fprintf(f, "%s: one relay worker per online CPU\n", p->name);
	if (o->idle_timeout_s)
		fprintf(f, "%s: relayed connections idle for %u s are reset\n", p->name,
			o->idle_timeout_s);
	else
		fprintf(f, "%s: relayed connections are never reset for being idle\n", p->name);
	fprintf(f, "%s: relayed UDP flows silent for %u s end\n", p->name, o->udp_timeout_s);
	if (o->has_metrics) {
		sockaddr_inet_format(&o->metrics, buf, sizeof(buf));
		fprintf(f, "%s: Prometheus metrics at http://%s/metrics\n", p->name, buf);
	}
	if (p->role == CLI_SERVER)
		fprintf(f, "%s: at most %u relayed connections per source address\n", p->name,
			o->max_conns_per_source);
}

int cli_control_new(struct control_server **out, struct loop *l, const char *ifname,
		    const char *program, const struct control_command *commands, size_t n_commands,
		    void *data)
{
	struct errbuf e;
	int r = control_server_new(out, l, ifname, program, commands, n_commands, data, &e);

	/* The first thing a daemon makes that needs root: say so, as
	 * cli_device_up() would. */
	if (r == -EACCES || r == -EPERM)
		log_error("%s: %s needs root", e.msg, program);
	else if (r < 0)
		log_error("%s", e.msg);
	return r;
}

int cli_device_up(struct device **out, const struct conf *c, const char *ifname,
		  const char *program)
{
	struct diag_list notes = { 0 };
	struct errbuf e;
	int r = device_up(out, c, ifname, program, &notes, &e);

	log_diags(&notes);
	diag_list_clear(&notes);
	if (r < 0)
		log_error("%s", e.msg);
	else
		log_info("interface %s is up (%s WireGuard)", ifname,
			 device_backend(*out) == DEVICE_KERNEL ? "kernel" : "userspace");
	return r;
}

static void on_device_lost(void *data, const char *why)
{
	struct cli_device_watch *w = data;

	log_error("%s: exiting with status 1, for the service manager to restart us", why);
	notify_watchdog_stop(w->watchdog, w->loop);
	w->lost = true;
	loop_stop(w->loop);
}

int cli_watch_device(struct cli_device_watch *w, struct device *d)
{
	struct errbuf e;
	int r = device_watch(d, w->loop, on_device_lost, w, &e);

	if (r < 0)
		log_error("%s", e.msg);
	return r;
}

static void on_hangup(struct loop *l, int signo, void *data)
{
	(void)l;
	(void)signo;
	(void)data;
	log_warning("SIGHUP ignored: there is no reload; restart to apply a changed config");
}

const char *cli_peer_label(char *buf, size_t len, const struct conf *c, size_t i)
{
	char key[WG_KEY_B64_LEN + 1];

	key_to_base64(key, c->peers[i].public_key);
	snprintf(buf, len, "[Peer] %s (%s:%u)", c->peers[i].name ? c->peers[i].name : key, c->name,
		 c->peers[i].line);
	return buf;
}

void cli_log_reload(const struct conf *old, const struct conf *c, const struct conf_diff *diff)
{
	char label[128], what[96];

	for (size_t i = 0; i < old->n_peers; i++)
		if (diff->new_index[i] == CONF_DIFF_NONE)
			log_info("%s removed", cli_peer_label(label, sizeof(label), old, i));
	for (size_t i = 0; i < c->n_peers; i++) {
		if (diff->old_index[i] == CONF_DIFF_NONE)
			log_info("%s added", cli_peer_label(label, sizeof(label), c, i));
		else if (diff->changes[i])
			log_info("%s changed: %s", cli_peer_label(label, sizeof(label), c, i),
				 conf_peer_changes_format(diff->changes[i], what, sizeof(what)));
	}
	if (diff->listen_port)
		log_info("ListenPort changed from %u to %u", old->listen_port, c->listen_port);
	if (diff->fwmark)
		log_info("FwMark changed from 0x%x to 0x%x", old->fwmark, c->fwmark);
	if (diff->mtu)
		log_info("MTU changed from %u to %u (UDP relays keep their datagram size, %u bytes, "
			 "until the daemon restarts)",
			 old->mtu ? old->mtu : CONF_PATH_MTU, c->mtu ? c->mtu : CONF_PATH_MTU,
			 cli_udp_max_datagram(old));
}

/* A reload, asked by why: logs it, tells the service manager (RELOADING=1,
 * then READY=1), reloads, and logs the messages and the failure, leaving
 * them in diags. Returns as rl->reload(). */
static int run_reload(const struct cli_reload *rl, const char *why, struct diag_list *diags)
{
	int r;

	log_info("reloading %s (%s)", rl->path, why);
	notify_reloading();
	r = rl->reload(rl->data, diags);
	log_diags(diags);
	if (r < 0)
		log_error("reload failed (%zu error%s): still running on the config loaded before",
			  diags->n_errors, diags->n_errors == 1 ? "" : "s");
	notify_reloaded();
	return r;
}

static void on_reload_signal(struct loop *l, int signo, void *data)
{
	struct diag_list diags = { 0 };

	(void)l;
	(void)signo;
	run_reload(data, "SIGHUP", &diags);
	diag_list_clear(&diags);
}

void cli_reload_command(const struct cli_reload *rl, struct control_request *req)
{
	struct diag_list diags = { 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r = run_reload(rl, "asked over the control socket", &diags);

	/* The answer carries what the log got, for `reload` to show. */
	if (f) {
		if (r < 0)
			fprintf(f, "reload failed (%zu error%s): still running on the config loaded "
				   "before", diags.n_errors, diags.n_errors == 1 ? "" : "s");
		else
			fprintf(f, "reloaded %s", rl->path);
		for (size_t i = 0; i < diags.n; i++)
			fprintf(f, "\n%s: %s", diags.items[i].level == DIAG_ERROR ? "error" : "warning",
				diags.items[i].msg);
	}
	if (!f || fclose(f) != 0)
		control_reply_error(req, "reload %s; out of memory for its messages",
				    r < 0 ? "failed" : "done");
	else if (r < 0)
		control_reply_error(req, "%s", text);
	else
		control_reply(req, json_pack("{s:b,s:s}", "success", 1, "message", text));
	free(text);
	diag_list_clear(&diags);
}

int cli_add_signals(struct loop *l, loop_signal_fn *stop, struct cli_reload *reload,
		    void *data)
{
	int r = loop_add_signal(l, SIGINT, stop, data);

	if (r == 0)
		r = loop_add_signal(l, SIGTERM, stop, data);
	if (r == 0)
		r = reload ? loop_add_signal(l, SIGHUP, on_reload_signal, reload)
			   : loop_add_signal(l, SIGHUP, on_hangup, NULL);
	return r;
}

void cli_stopping(int signo)
{
	log_info("stopping on %s", signo == SIGINT ? "SIGINT" : "SIGTERM");
	notify_stopping();
}

/* One config file may serve both ends' wg-rp lines; each daemon says which
 * it ignores, so that a line in the wrong file is not taken for in force. */
static void warn_other_daemons_lines(const struct cli_program *p, const struct conf *c)
{
	if (p->role == CLI_SERVER && c->n_routes)
		log_warning("%s:%u: Route: an rpc setting; rps ignores it", c->name,
			    c->routes[0].line);
	for (size_t i = 0; p->role == CLI_CLIENT && i < c->n_peers; i++)
		if (c->peers[i].allow_ports || c->peers[i].max_mappings ||
		    c->peers[i].max_conns_per_source)
			log_warning("%s:%u: [Peer]: its AllowPorts, MaxMappings and "
				    "MaxConnsPerSource are rps settings; rpc ignores them",
				    c->name, c->peers[i].line);
}

/* rpc's routes: those of -r, then its config's "# wg-rp: Route" lines.
 * Returns 0 or -EINVAL, logged. */
static int add_conf_routes(struct options *o, const struct conf *c)
{
	struct errbuf e;

	for (size_t i = 0; i < c->n_routes; i++) {
		if (route_list_add(&o->routes, c->routes[i].spec, &e) < 0) {
			log_error("%s:%u: Route: %s", c->name, c->routes[i].line, e.msg);
			return -EINVAL;
		}
	}
	if (o->routes.n == 0) {
		log_error("no route given: add -r local_host:local_port-remote_port (e.g. -r "
			  "127.0.0.1:3000-3000) or \"# wg-rp: Route = ...\" lines to %s",
			  c->name);
		return -EINVAL;
	}
	return 0;
}

/* How long `status` waits for the daemon's answer. */
#define STATUS_TIMEOUT_MS 10000

static void status_usage(FILE *f, const struct cli_program *p, const char *command)
{
	bool status = !strcmp(command, "status");

	fprintf(f, "Usage: %s %s [-i NAME]%s\n\n", p->name, command,
		status ? " [--json]" : " [OPTIONS]");
	if (status)
		fprintf(f, "Shows the state of the %s running on interface NAME (default: %s),\n",
			p->name, DEVICE_DEFAULT_IFNAME);
	else
		fprintf(f, "Has the %s running on interface NAME (default: %s) read its config\n"
			   "again and apply what changed, as SIGHUP does, and tells how it went,\n"
			   "taking the daemon's own options (only -i matters), as a unit's\n"
			   "ExecReload= repeats ExecStart='s; ",
			p->name, DEVICE_DEFAULT_IFNAME);
	fprintf(f, "asked over %s/NAME.sock (root only).\n\n"
		   "  -i, --interface NAME    the daemon's interface\n", CONTROL_DIR);
	if (status)
		fputs("      --json              print the state as one JSON object\n", f);
	fputs("  -h, --help              print this help and exit\n", f);
}

int cli_parse_status(struct status_options *o, int argc, char **argv, struct errbuf *e)
{
	static const struct option longopts[] = { { "interface", required_argument, NULL, 'i' },
						  { "json", no_argument, NULL, 'j' },
						  { "help", no_argument, NULL, 'h' },
						  { 0 } };
	char q[QUOTED_MAX];
	int c;

	*o = (struct status_options){ .ifname = DEVICE_DEFAULT_IFNAME };
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (cli_parse_ifname(&o->ifname, optarg, e) < 0)
				return -EINVAL;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			return CLI_HELP;
		default:
			return cli_option_error(c, argv, e);
		}
	}
	if (optind < argc)
		return errbuf_set(e, -EINVAL, "unexpected argument %s", quote(q, argv[optind]));
	return CLI_RUN;
}

/* `reload` takes the daemon's own command line (only -i matters), so that a
 * unit's ExecReload= can repeat its ExecStart='s options. Returns as
 * cli_parse_status(). */
static int parse_reload(struct status_options *so, const struct cli_program *p, int argc,
			char **argv, struct errbuf *e)
{
	struct options o;
	int r = cli_parse(&o, p, argc, argv, e);

	*so = (struct status_options){ .ifname = o.ifname };
	options_clear(&o);
	if (r == CLI_VERSION)
		return errbuf_set(e, -EINVAL, "-V is not for reload");
	return r;
}

/* `rps status`, `rps reload` and rpc's: the running daemon's answer,
 * printed (reload: its message; a failed one's, with every error, on stderr
 * and exit status 1, as systemctl reload wants it). */
static int status_main(const struct cli_program *p, int argc, char **argv)
{
	bool reload = !strcmp(argv[0], "reload");
	struct status_options o;
	json_t *status = NULL;
	struct errbuf e;
	int r = reload ? parse_reload(&o, p, argc, argv, &e) : cli_parse_status(&o, argc, argv, &e);

	if (r < 0) {
		fprintf(stderr, "%s %s: %s\n", p->name, argv[0], e.msg);
		status_usage(stderr, p, argv[0]);
		return CLI_EXIT_USAGE;
	}
	if (r == CLI_HELP) {
		status_usage(stdout, p, argv[0]);
		return CLI_EXIT_OK;
	}
	r = control_call(p->name, o.ifname, argv[0], reload ? CONTROL_RELOAD_TIMEOUT_MS : STATUS_TIMEOUT_MS,
			 &status, &e);
	if (r < 0) {
		fprintf(stderr, "%s %s: %s\n", p->name, argv[0], e.msg);
		return CLI_EXIT_FAILURE;
	}
	if (reload) {
		const char *msg = json_string_value(json_object_get(status, "message"));

		r = printf("%s\n", msg ? msg : "reloaded") < 0 ? -EIO : 0;
	} else if (o.json) {
		r = json_dumpf(status, stdout, JSON_INDENT(2)) < 0 ? -EIO : 0;
		putchar('\n');
	} else {
		r = status_print(stdout, status);
	}
	json_decref(status);
	if (r == -EINVAL)
		fprintf(stderr, "%s status: the daemon's answer is not a status\n", p->name);
	return r < 0 || fflush(stdout) != 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

int cli_main(const struct cli_program *p, int argc, char **argv)
{
	struct diag_list diags = { 0 };
	struct options o;
	struct conf *c = NULL;
	struct errbuf e;
	int status = CLI_EXIT_FAILURE, r;

	if (p->role == CLI_SERVER && argc > 1 && peer_admin_command(argv[1]))
		return peer_admin_main(p, argc - 1, argv + 1);
	if (argc > 1 && (!strcmp(argv[1], "status") || !strcmp(argv[1], "reload")))
		return status_main(p, argc - 1, argv + 1);
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
	/* Before the private key is read: a crash must not write it to a core
	 * file, and no process without CAP_SYS_PTRACE may read our memory. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		log_error("cannot make %s non-dumpable: %s", p->name, strerror(errno));
		goto out;
	}
	r = conf_load(&c, o.config_path, &diags);
	log_diags(&diags);
	if (r < 0) {
		if (o.test_config)
			log_error("%s: configuration test failed (%zu error%s)", o.config_path,
				  diags.n_errors, diags.n_errors == 1 ? "" : "s");
		goto out;
	}
	warn_other_daemons_lines(p, c);
	r = p->role == CLI_CLIENT ? add_conf_routes(&o, c) : 0;
	if (r < 0) {
		status = CLI_EXIT_USAGE;
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
	status = p->run(&o, c);
	c = NULL;
out:
	conf_free(c);
	diag_list_clear(&diags);
	options_clear(&o);
	return status;
}

uint32_t cli_udp_max_datagram(const struct conf *c)
{
	uint32_t mtu = c->mtu ? c->mtu : 1420, headers = 8 + 20;

	for (size_t i = 0; i < c->n_addresses; i++)
		if (c->addresses[i].addr.family == AF_INET6)
			headers = 8 + 40;
	return mtu > headers ? mtu - headers : 0;
}
