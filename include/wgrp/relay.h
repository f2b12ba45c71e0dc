/* TCP relays: a listener accepts, connects out non-blocking, and moves bytes
 * both ways with splice() through pipes lent by a pipe pool, driven by the
 * daemon's loop. Output that would block stops the input feeding it (no
 * buffering beyond one pipe per direction); an EOF is passed on with
 * shutdown(SHUT_WR) once its data is out; a reset is passed on as a reset.
 * Where splice() cannot be used, a bounded buffer of the same size copies.
 *
 * Every byte from the accepted side may be hostile: urgent data is passed
 * inline as an ordinary byte (SO_OOBINLINE); a connection silent both ways
 * for the idle timeout is reset on both sides; TCP keepalive finds dead
 * peers; a source address may hold only so many connections; and the relays
 * never hold more than the fd limit less a reserve, so that the API and the
 * control plane always have fds (new connections are reset meanwhile). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"
#include "wgrp/loop.h"

#define RELAY_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define RELAY_DEFAULT_IDLE_TIMEOUT_S 3600
#define RELAY_DEFAULT_MAX_CONNS_PER_SOURCE 512
/* UDP flows (udp_relay.h): closed after this long silent both ways; at most
 * this many per listener (all workers together); datagrams larger than this
 * are dropped: a tunnel MTU of 1420 less the IPv6 and UDP headers. */
#define RELAY_DEFAULT_UDP_TIMEOUT_S 60
#define RELAY_DEFAULT_UDP_MAX_FLOWS 16384
#define RELAY_DEFAULT_UDP_MAX_DATAGRAM (1420 - 48)
/* File descriptors the relays leave to the rest of the daemon (its API,
 * libcurl, netlink, the device): this many, or half the limit when the
 * limit is below twice this. */
#define RELAY_FD_RESERVE 256

struct relay_config {
	uint32_t pipe_kb;              /* -b; cut to /proc/sys/fs/pipe-max-size */
	uint32_t connect_timeout_ms;   /* 0: the default */
	uint32_t idle_timeout_s;       /* --idle-timeout; 0: never */
	uint32_t max_conns_per_source; /* --max-conns-per-source; 0: no cap */
	uint32_t workers;              /* relay_pool: --workers; 0: one per online CPU */
	/* UDP listeners (udp_relay.h). 0 is the default for each: a flow has
	 * no end of its own, so "never" is no choice for the timeout. */
	uint32_t udp_timeout_s;    /* --udp-timeout */
	uint32_t udp_max_flows;    /* per listener, all workers together */
	uint32_t udp_max_datagram; /* the tunnel MTU less the IP and UDP headers */
	/* Set by relay_pool for each of its contexts: how many share the
	 * process's fds and the cap per source (0: one), each taking an equal
	 * part; and quiet for all but the first, which logs the limits for all. */
	uint32_t shares;
	bool quiet;
	/* Set by relay_pool: the fds its worker holds for the context (its
	 * loop, its command pipes), counted in the context's share. */
	uint32_t owner_fds;
};

/* What a listener tells its target of each visitor: the PROXY protocol
 * (HAProxy's proxy-protocol.txt) and transparent connections. All false or 0:
 * a plain relay. */
struct relay_visitor {
	/* rpc: each connection starts with a PROXY v2 header from rps, read
	 * to its last byte (never past it) and checked before connecting out;
	 * a missing or malformed one resets the connection. */
	bool read_header;
	/* 0, 1 or 2: the PROXY version written to the target before any data,
	 * for the accepted connection's peer (rps) or the header's visitor. */
	uint8_t send_header;
	/* rpc, with read_header: connect to the target from the visitor's
	 * address and port (IP_TRANSPARENT), as if it were the visitor. */
	bool transparent;
};

/* What a listener has done; read for status and metrics. */
struct relay_stats {
	uint64_t active;
	uint64_t total;
	uint64_t bytes_in;  /* client to target */
	uint64_t bytes_out; /* target to client */
	uint64_t connect_failures;
	uint64_t refused;        /* no fds left: reset at once */
	uint64_t refused_source; /* the source had its share: reset at once */
	uint64_t idle_closed;    /* silent for the idle timeout: reset */
	uint64_t bad_header;     /* a PROXY header missing or malformed: reset */
};

/* What a relay context holds now, for metrics: its fds (sockets, pipes
 * and its own) against its share of the limit, and its pipes. */
struct relay_ctx_stats {
	uint64_t fds;
	uint64_t fd_budget; /* UINT64_MAX: no limit */
	uint64_t pipes_lent, pipes_idle;
};

struct relay_ctx;
struct relay_listener;

/* State shared by a daemon's listeners: the loop, the pipe pool, the count
 * of connections per source and of fds held. Raises RLIMIT_NOFILE to its
 * hard limit, sets the fds the relays may hold from it, and ignores SIGPIPE
 * (relays write to sockets whose peer may be gone), logging what it set
 * once. Returns 0 or a negative errno. */
int relay_ctx_new(struct relay_ctx **out, struct loop *l, const struct relay_config *cfg);
/* The fds the relays leave to the rest of the daemon (RELAY_FD_RESERVE, or
 * less under a low limit): what the daemon's API must stay within. */
size_t relay_ctx_fd_reserve(const struct relay_ctx *ctx);
void relay_ctx_stats(const struct relay_ctx *ctx, struct relay_ctx_stats *out);

/* Frees ctx; its listeners must be closed first. */
void relay_ctx_free(struct relay_ctx *ctx);

/* Listens on bind (port 0: any; the IPv6 any-address also takes IPv4) and
 * relays each connection to target. Returns 0 with *out set, or a negative
 * errno with the reason in e. */
int relay_listen(struct relay_listener **out, struct relay_ctx *ctx, const union sockaddr_inet *bind,
		 const union sockaddr_inet *target, struct errbuf *e);
/* The listening socket relay_listen() makes, on its own: with reuseport,
 * more sockets may listen on the same address (SO_REUSEPORT), the kernel
 * spreading connections over them. *bound gets the address with the port
 * the kernel chose. Returns the fd, or a negative errno with the reason in e. */
int relay_socket(const union sockaddr_inet *bind, bool reuseport, union sockaddr_inet *bound,
		 struct errbuf *e);
/* Relays the connections of fd, a socket from relay_socket(), to target;
 * the listener owns fd from then on, whatever the outcome. Returns 0 or
 * -ENOMEM. */
int relay_adopt(struct relay_listener **out, struct relay_ctx *ctx, int fd,
		const union sockaddr_inet *target);
/* New connections go to target; those in progress keep theirs. */
void relay_listener_set_target(struct relay_listener *lis, const union sockaddr_inet *target);
/* What new connections tell their target of the visitor (see struct
 * relay_visitor); those in progress keep what they had. */
void relay_listener_set_visitor(struct relay_listener *lis, const struct relay_visitor *v);
/* New connections count against cap per source instead of
 * --max-conns-per-source (0: that again): the mapping's peer's own
 * MaxConnsPerSource, daemon-wide as the option is. */
void relay_listener_set_source_cap(struct relay_listener *lis, uint32_t cap);
/* Accepts connections only from peer (rpc: the server's tunnel address);
 * others are reset and logged. */
void relay_listener_only_from(struct relay_listener *lis, const struct ip_addr *peer);
/* The address the listener is bound to, with the port the kernel chose. */
void relay_listener_address(const struct relay_listener *lis, union sockaddr_inet *out);
const struct relay_stats *relay_listener_stats(const struct relay_listener *lis);
/* Stops listening and resets every connection in progress; accepts NULL. */
void relay_listener_close(struct relay_listener *lis);
