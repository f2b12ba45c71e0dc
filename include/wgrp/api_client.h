/* HTTP requests from the daemon's loop with libcurl's multi-socket interface:
 * curl's sockets are watched by the loop and its timeouts are loop timers,
 * so a request never blocks the loop. URLs hold IP addresses only (no name
 * resolution, hence none of curl's resolver threads). */
#pragma once

#include <stddef.h>

#include "wgrp/loop.h"

/* Called once per request from the loop: status is the HTTP status, or 0 when
 * no answer came (error says why). body holds what was received, bounded. */
typedef void api_done_fn(void *data, long status, const char *body, size_t len, const char *error);

struct api_client;

int api_client_new(struct api_client **out, struct loop *l);
/* Abandons requests in flight without calling them back; accepts NULL. */
void api_client_free(struct api_client *c);

/* Starts method on url with an optional JSON body, giving up after
 * timeout_ms. Returns 0 or a negative errno. */
int api_client_request(struct api_client *c, const char *method, const char *url,
		       const char *body, long timeout_ms, api_done_fn *done, void *data);
