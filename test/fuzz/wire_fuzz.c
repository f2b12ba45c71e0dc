/* Request bodies arrive from any tunnel peer, replies from the server: every
 * decoder must take any bytes. Whatever decodes must encode back to text that
 * decodes to the same value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "must.h"
#include "wgrp/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Requests hold no pointers: a round trip must give the same bytes, since
 * decoders zero what they fill. */
#define check_request_round_trip(T, body, len)                                 \
	do {                                                                   \
		struct T a, b;                                                 \
		struct errbuf e;                                               \
		char *text;                                                    \
		if (T##_decode(&a, body, len, &e) == 0 && T##_encode(&a, &text) == 0) { \
			must(T##_decode(&b, text, strlen(text), &e) == 0);     \
			must(!memcmp(&a, &b, sizeof(a)));                      \
			free(text);                                            \
		}                                                              \
	} while (0)

static void check_reply(const char *body, size_t len)
{
	struct wire_reply a, b;
	struct errbuf e;
	char *text;

	if (wire_reply_decode(&a, body, len, &e) < 0)
		return;
	if (wire_reply_encode(&a, &text) == 0) {
		must(wire_reply_decode(&b, text, strlen(text), &e) == 0);
		must(a.success == b.success && !strcmp(a.message, b.message));
		must(a.has_server_startup_time == b.has_server_startup_time &&
		       a.server_startup_time == b.server_startup_time);
		must(a.n_mappings == b.n_mappings &&
		       (!a.n_mappings ||
			!memcmp(a.mappings, b.mappings, a.n_mappings * sizeof(*a.mappings))));
		must(a.n_udp_mappings == b.n_udp_mappings &&
		       (!a.n_udp_mappings ||
			!memcmp(a.udp_mappings, b.udp_mappings,
				a.n_udp_mappings * sizeof(*a.udp_mappings))));
		must(a.has_protocol == b.has_protocol && a.protocol == b.protocol);
		wire_reply_clear(&b);
		free(text);
	}
	wire_reply_clear(&a);
}

/* rpc reads the server's list: entries it decodes must be well formed. */
static void check_mapping_list(const char *body, size_t len)
{
	struct wire_mapping_info *v;
	struct errbuf e;
	size_t n;

	if (wire_mapping_list_decode(&v, &n, body, len, &e) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		must(v[i].remote_port && memchr(v[i].target, '\0', sizeof(v[i].target)) &&
		     (v[i].protocol == IPPROTO_TCP || v[i].protocol == IPPROTO_UDP));
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;

	if (size > WIRE_BODY_MAX)
		return 0;
	check_request_round_trip(wire_mapping_request, body, size);
	check_request_round_trip(wire_heartbeat_request, body, size);
	check_reply(body, size);
	check_mapping_list(body, size);
	return 0;
}
