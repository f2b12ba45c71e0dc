/* What `rps status` and `rpc status` show: the daemons build a JSON object
 * of their state (the answer to the control socket's "status" command,
 * fields in docs/operations.md), the commands print it for people, as
 * `wg show` does, or as it is with --json. */
#pragma once

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "wgrp/device.h"
#include "wgrp/relay_pool.h"
#include "wgrp/wire.h"

/* Room for any status_format_age() or status_format_bytes() output. */
#define STATUS_TEXT_LEN 96

/* "1 hour, 2 minutes, 5 seconds ago", "now"; "never" when seconds < 0. */
const char *status_format_age(char buf[STATUS_TEXT_LEN], int64_t seconds);
/* "123 B", "1.50 KiB", "2.00 MiB", ... as wg(8) shows transfers. */
const char *status_format_bytes(char buf[STATUS_TEXT_LEN], uint64_t bytes);

/* A listener's counters as the API lists them: TCP connections (tcp), or
 * UDP flows as connections, datagrams and drops (udp). */
void status_traffic(struct wire_mapping_info *out, struct relay_pool_listener *tcp,
		    struct relay_pool_udp *udp);

struct control_request;

/* Adds a daemon's own part to status. Returns 0 or -ENOMEM. */
typedef int status_fill_fn(void *data, json_t *status);

/* Answers req with the status of program on d: {"success","message",
 * "program","interface","backend","listen_port","peers":[...]}, each peer
 * read from the device now (key, allowed IPs, endpoint, handshake, bytes),
 * and what fill adds; or with why not (out of memory, the device
 * unreadable). */
void status_reply(struct control_request *req, const char *program, struct device *d,
		  const char *message, status_fill_fn *fill, void *data);

/* The peer of the status with public_key, or NULL. */
json_t *status_peer(json_t *status, const uint8_t public_key[WG_KEY_LEN]);

/* Writes a status for people. Returns 0, or -EINVAL when it is not one. */
int status_print(FILE *f, const json_t *status);
