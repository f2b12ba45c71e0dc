/* HTTP requests from the daemon's loop with libcurl's multi-socket interface:
 * curl's sockets are watched by the loop and its timeouts are loop timers,
 * so a request never blocks the loop. URLs hold IP addresses only (no name
 * resolution, hence none of curl's resolver threads). Requests go from one
 * source address, never through a proxy, over at most 4 connections, each
 * signed with the MAC key when one is given (see auth.h). */
#pragma once

#include <stddef.h>

#include "wgrp/addr.h"
#include "wgrp/loop.h"

/* Called once per request from the loop: status is the HTTP status, or 0 when
 * no answer came (error says why). body holds what was received, bounded. */
typedef void api_done_fn(void *data, long status, const char *body, size_t len, const char *error);

struct api_client;

/* A client of the API at base_url ("http://10.0.0.1:80"), connecting from
 * source. key (AUTH_KEY_LEN bytes, NULL: requests go unsigned) stays the
 * caller's and must outlive the client. Returns 0 or -ENOMEM. */
int api_client_new(struct api_client **out, struct loop *l, const char *base_url,
		   const struct ip_addr *source, const uint8_t *key);
/* Abandons requests in flight without calling them back; accepts NULL. */
void api_client_free(struct api_client *c);

/* Starts method on target (path and query, appended to the base URL) with
 * an optional JSON body, giving up after timeout_ms. Returns 0 or a
 * negative errno. */
int api_client_request(struct api_client *c, const char *method, const char *target,
		       const char *body, long timeout_ms, api_done_fn *done, void *data);
