/* TCP relays: a listener accepts, connects out non-blocking, and moves bytes
 * both ways with splice() through pipes lent by a pipe pool, driven by the
 * daemon's loop. Output that would block stops the input feeding it (no
 * buffering beyond one pipe per direction); an EOF is passed on with
 * shutdown(SHUT_WR) once its data is out; a reset is passed on as a reset.
 * Where splice() cannot be used, a bounded buffer of the same size copies. */
#pragma once

#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"
#include "wgrp/loop.h"

#define RELAY_DEFAULT_CONNECT_TIMEOUT_MS 10000

struct relay_config {
	uint32_t pipe_kb;            /* -b; cut to /proc/sys/fs/pipe-max-size */
	uint32_t connect_timeout_ms; /* 0: the default */
};

/* What a listener has done; read for status and metrics. */
struct relay_stats {
	uint64_t active;
	uint64_t total;
	uint64_t bytes_in;  /* client to target */
	uint64_t bytes_out; /* target to client */
	uint64_t connect_failures;
	uint64_t refused; /* no fds left: closed at once */
};

struct relay_ctx;
struct relay_listener;

/* State shared by a daemon's listeners: the loop, the pipe pool. Raises
 * RLIMIT_NOFILE to its hard limit and ignores SIGPIPE (relays write to
 * sockets whose peer may be gone), logging what it set once. Returns 0 or a
 * negative errno. */
int relay_ctx_new(struct relay_ctx **out, struct loop *l, const struct relay_config *cfg);
/* Frees ctx; its listeners must be closed first. */
void relay_ctx_free(struct relay_ctx *ctx);

/* Listens on bind (port 0: any; the IPv6 any-address also takes IPv4) and
 * relays each connection to target. Returns 0 with *out set, or a negative
 * errno with the reason in e. */
int relay_listen(struct relay_listener **out, struct relay_ctx *ctx, const union sockaddr_inet *bind,
		 const union sockaddr_inet *target, struct errbuf *e);
/* New connections go to target; those in progress keep theirs. */
void relay_listener_set_target(struct relay_listener *lis, const union sockaddr_inet *target);
/* Accepts connections only from peer (rpc: the server's tunnel address);
 * others are reset and logged. */
void relay_listener_only_from(struct relay_listener *lis, const struct ip_addr *peer);
/* The address the listener is bound to, with the port the kernel chose. */
void relay_listener_address(const struct relay_listener *lis, union sockaddr_inet *out);
const struct relay_stats *relay_listener_stats(const struct relay_listener *lis);
/* Stops listening and resets every connection in progress; accepts NULL. */
void relay_listener_close(struct relay_listener *lis);
