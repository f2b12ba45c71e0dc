/* The command line both daemons share: options, config loading, -t, and the
 * exit statuses. A daemon's main() describes itself in a cli_program and hands
 * over to cli_main(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "wgrp/addr.h"
#include "wgrp/conf.h"
#include "wgrp/loop.h"
#include "wgrp/notify.h"
#include "wgrp/ports.h"
#include "wgrp/route.h"

#define CLI_DEFAULT_BUFFER_KB 64
#define CLI_MAX_BUFFER_KB (1u << 20)
#define CLI_DEFAULT_API_PORT 80
#define CLI_DEFAULT_MAX_MAPPINGS 64
/* The original's timers: heartbeats every 20 s, silent after 60 s, checked every 30 s. */
#define CLI_DEFAULT_HEARTBEAT_INTERVAL_S 20
#define CLI_DEFAULT_HEARTBEAT_TIMEOUT_S 60
#define CLI_DEFAULT_CHECK_INTERVAL_S 30
#define CLI_MAX_IDLE_TIMEOUT_S (7 * 86400)
/* --udp-timeout: UDP has no close, so a flow ends after this much silence. */
#define CLI_DEFAULT_UDP_TIMEOUT_S 60
#define CLI_MAX_UDP_TIMEOUT_S 86400
/* More relay threads than this only cost memory and fds. */
#define CLI_MAX_WORKERS 1024

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
	uint32_t idle_timeout_s; /* 0: never */
	uint32_t udp_timeout_s;  /* a UDP flow silent this long ends */
	uint32_t workers;        /* relay threads; 0: one per online CPU */
	bool has_metrics;
	union sockaddr_inet metrics; /* --metrics: where /metrics is served */
	/* rps */
	uint32_t api_port;
	bool has_bind;
	struct ip_addr bind; /* public side; default: every address */
	struct port_set allow_ports;
	uint32_t max_mappings;
	uint32_t heartbeat_timeout_s;
	uint32_t check_interval_s;
	bool allow_unsigned; /* accept API requests without a signature */
	uint32_t max_conns_per_source;
	/* rpc */
	struct route_list routes;
	bool has_server;
	struct ip_addr server; /* the API's address; default: from the config */
	uint32_t heartbeat_interval_s;
};

enum cli_role {
	CLI_SERVER,
	CLI_CLIENT, /* takes -r, at least one */
};

struct cli_program {
	const char *name;           /* "rps" or "rpc" */
	const char *default_config; /* used without -c */
	enum cli_role role;
	/* Runs the daemon with parsed options and a loaded, resolved config it
	 * takes over; returns the exit status. */
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

/* The message for what getopt_long() (with opterr 0 and a ':' first in its
 * short options) returned as c for an option it could not take: unknown, or
 * missing its value. Returns -EINVAL. */
int cli_option_error(int c, char **argv, struct errbuf *e);

/* Checks s as an interface name for -i and sets *out to it. Returns 0, or
 * -EINVAL with the reason in e. */
int cli_parse_ifname(const char **out, const char *s, struct errbuf *e);

/* Writes the usage text of p. */
void cli_usage(FILE *f, const struct cli_program *p);

/* Writes what -t shows: addresses, listen port, peers and their allowed IPs,
 * routes; never key material. */
void cli_print_summary(FILE *f, const struct cli_program *p, const struct options *o,
		       const struct conf *c);

/* `rps status`, `rps reload` (and rpc's): which daemon, and how to print. */
struct status_options {
	const char *ifname;
	bool json; /* status only */
};

/* Parses the arguments of the status command (argv[0] is "status") into o.
 * Returns CLI_RUN or CLI_HELP, or -EINVAL with one line in e. */
int cli_parse_status(struct status_options *o, int argc, char **argv, struct errbuf *e);

struct control_server;
struct control_command;

/* control_server_new() for a daemon: logs its error. Returns 0 or a negative
 * errno. */
int cli_control_new(struct control_server **out, struct loop *l, const char *ifname,
		    const char *program, const struct control_command *commands, size_t n_commands,
		    void *data);

struct device;

/* device_up() for a daemon: logs what it noted, its error, or which
 * WireGuard path the interface runs on. Returns 0 or a negative errno. */
int cli_device_up(struct device **out, const struct conf *c, const char *ifname,
		  const char *program);

/* A daemon's watch on its device, for cli_watch_device(). */
struct cli_device_watch {
	struct loop *loop;
	struct notify_watchdog *watchdog;
	bool lost; /* set when the device was lost: the daemon exits 1 */
};

/* device_watch() for a daemon: when the device is lost, logs why, stops
 * feeding the watchdog and stops w->loop with w->lost set, so that the daemon
 * exits 1 and its service manager restarts it. Returns 0 or a negative errno,
 * logged. */
int cli_watch_device(struct cli_device_watch *w, struct device *d);

/* How a daemon reloads its config: reload(data, diags) returns 0 or a
 * negative errno, with its messages in diags. */
struct cli_reload {
	const char *path;
	int (*reload)(void *data, struct diag_list *diags);
	void *data;
};

/* A daemon's signals, delivered by its loop: SIGINT and SIGTERM call stop;
 * SIGHUP reloads (logged, with RELOADING=1 and READY=1 to the service
 * manager around it; reload must outlive the loop), or without one (NULL) is
 * logged and otherwise ignored (its default action would kill the daemon
 * without cleaning up). Returns 0 or -errno. */
int cli_add_signals(struct loop *l, loop_signal_fn *stop, struct cli_reload *reload,
		    void *data);

struct control_request;

/* The control socket's "reload" (`rps reload`, systemd's ExecReload): the
 * same reload as SIGHUP, answered with its outcome and every message. */
void cli_reload_command(const struct cli_reload *rl, struct control_request *req);

struct conf_diff;

/* How [Peer] i of c is named in the log: its name, or else its public key;
 * and where it is: "[Peer] alice (wg-server.conf:12)". Returns buf. */
const char *cli_peer_label(char *buf, size_t len, const struct conf *c, size_t i);

/* Logs what a reload from old to c changes: a line per peer removed, added
 * or changed, and per interface setting changed. */
void cli_log_reload(const struct conf *old, const struct conf *c, const struct conf_diff *diff);

/* Logs a stop signal and tells the service manager: for stop handlers. */
void cli_stopping(int signo);

/* The largest UDP datagram the tunnel carries whole: its MTU (WireGuard's
 * 1420 when the config sets none) less the UDP header and the inner IP
 * header, IPv6's when the interface has an IPv6 address. */
uint32_t cli_udp_max_datagram(const struct conf *c);

/* Parses the command line, loads and checks the config, then prints the
 * summary (-t) or runs the daemon; or, with "status" first, asks the running
 * daemon for its state and prints it. Returns the process exit status. */
int cli_main(const struct cli_program *p, int argc, char **argv);
