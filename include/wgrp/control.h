/* The control socket: how `rps status` and `rpc status` (and later
 * commands) ask a running daemon. A Unix stream socket,
 * /run/wg-rp/IFNAME.sock (mode 0600, in a directory of mode 0700), served by
 * the daemon's main loop; only root may use it (SO_PEERCRED is checked too).
 *
 * Protocol: the client sends one JSON object on one line,
 * {"command":"status"}, the daemon answers one JSON object,
 * {"success":bool,"message":string,...} as the API does, and closes. The
 * daemon holds few clients at once, each for a bounded time and request
 * size, so that a stuck or hostile client takes neither the loop nor the
 * fds of the relays and the API. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "wgrp/diag.h"
#include "wgrp/loop.h"

#define CONTROL_DIR "/run/wg-rp"
/* Room for CONTROL_DIR "/" IFNAME ".sock". */
#define CONTROL_PATH_LEN 64
/* The largest request: one command and its arguments. */
#define CONTROL_REQUEST_MAX 4096
/* Clients served at once; more wait in the backlog. Their fds come out of
 * the reserve the relays leave to the control plane (relay_pool). */
#define CONTROL_MAX_CLIENTS 4
/* A client has this long to send its request, and again to read the answer. */
#define CONTROL_TIMEOUT_MS 5000
/* How long a reload may take, for those who ask for one: it resolves
 * endpoints and talks to the device. */
#define CONTROL_RELOAD_TIMEOUT_MS 60000

struct control_server;
/* One client's request, from its arrival to its answer. */
struct control_request;

/* A command's handler answers req with control_reply() or
 * control_reply_error(), at once or later from the loop (a reload that takes
 * time), exactly once. */
typedef void control_handler_fn(void *data, struct control_request *req);

struct control_command {
	const char *name;
	control_handler_fn *fn;
};

/* The socket's path for interface ifname. */
void control_path(char out[CONTROL_PATH_LEN], const char *ifname);

/* Serves commands on the socket of ifname from loop l, for program (e.g.
 * "rps", in messages). Creates CONTROL_DIR (0700) if missing; a socket file
 * that no one answers on (left by a daemon that was killed) is replaced; one
 * that answers belongs to a running daemon: -EADDRINUSE. data goes to every
 * handler. Returns 0, or a negative errno with the reason in e. */
int control_server_new(struct control_server **out, struct loop *l, const char *ifname,
		       const char *program, const struct control_command *commands,
		       size_t n_commands, void *data, struct errbuf *e);
/* Closes every client, also those whose answer is pending (their handlers
 * must not answer after this), and removes the socket file if it is still
 * ours. Accepts NULL. */
void control_server_free(struct control_server *s);

/* The request's object (its "command" and any arguments). */
const json_t *control_request_args(const struct control_request *req);
/* Answers req with answer, a JSON object holding "success" and "message",
 * which it takes over; NULL (out of memory) answers an error. */
void control_reply(struct control_request *req, json_t *answer);
/* Answers req with {"success":false,"message":...}. */
void control_reply_error(struct control_request *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parses one request: a JSON object with a string "command", and a newline
 * at most after it. Returns 0 with *out (the caller's) and *command (in
 * *out) set, or -EINVAL with the reason in e. */
int control_request_parse(const char *buf, size_t len, json_t **out, const char **command,
			  struct errbuf *e);

/* The client: sends command to program's daemon on ifname and waits for its
 * answer (up to timeout_ms). Returns 0 with *answer (the caller's; its
 * "success" true), or a negative errno with a message for the user in e:
 * no daemon running, not root, no answer, the daemon's error message. */
int control_call(const char *program, const char *ifname, const char *command, int timeout_ms,
		 json_t **answer, struct errbuf *e);
