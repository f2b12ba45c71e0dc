/* The JSON bodies of the REST API between rpc and rps, compatible with the
 * original Go wg-rp. Requests are decoded strictly (unknown fields, wrong
 * types, missing fields and trailing text are refused) since they come from
 * outside; replies leniently (unknown fields ignored) so that rpc keeps working
 * against servers that add fields. Decode errors carry a message fit to send
 * back to the peer. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"

/* Largest request body rps accepts. */
#define WIRE_BODY_MAX (16 * 1024)

/* POST /api/v1/port-mappings */
struct wire_mapping_request {
	char local_addr[ADDR_HOSTPORT_STRLEN]; /* "host:port" of the service behind rpc */
	uint16_t remote_port;                  /* the public port on the server */
	bool has_client_ip;                    /* optional since identity is the tunnel source */
	struct ip_addr client_ip;
	uint16_t client_port; /* rpc's listener on its tunnel address */
	/* Optional "proxy_protocol": 2 has rps start each connection it relays
	 * with a PROXY v2 header; absent is 0, as the original knows it. */
	bool has_proxy_protocol;
	uint8_t proxy_protocol;
	/* Optional "protocol": "tcp" or "udp" (IPPROTO_TCP, IPPROTO_UDP); absent
	 * is tcp, as the original knows it. */
	bool has_protocol;
	uint8_t protocol;
};

/* POST /api/v1/heartbeat */
struct wire_heartbeat_request {
	bool has_client_ip;
	struct ip_addr client_ip;
};

/* Every answer: {"success","message"}, plus what the heartbeat adds. */
struct wire_reply {
	bool success;
	char *message;
	bool has_server_startup_time; /* Unix seconds, as the original sends */
	int64_t server_startup_time;
	bool has_mappings; /* the TCP ports the server holds for the caller */
	uint16_t *mappings;
	size_t n_mappings;
	bool has_udp_mappings; /* "udp_mappings": its UDP ports */
	uint16_t *udp_mappings;
	size_t n_udp_mappings;
	/* A registration's answer repeats a non-zero "proxy_protocol" and a
	 * "protocol" of udp: a server that does not say it ignored the field
	 * (the original does). */
	bool has_proxy_protocol;
	uint8_t proxy_protocol;
	bool has_protocol;
	uint8_t protocol;
};

/* Each encoder returns 0 with *out a NUL-terminated JSON text the caller frees
 * with free(), or -ENOMEM. Each decoder reads len bytes of body and returns 0,
 * or -EINVAL with the reason in e. */
int wire_mapping_request_encode(const struct wire_mapping_request *r, char **out);
int wire_mapping_request_decode(struct wire_mapping_request *out, const char *body, size_t len,
				struct errbuf *e);

int wire_heartbeat_request_encode(const struct wire_heartbeat_request *r, char **out);
int wire_heartbeat_request_decode(struct wire_heartbeat_request *out, const char *body,
				  size_t len, struct errbuf *e);

int wire_reply_encode(const struct wire_reply *r, char **out);

/* GET /api/v1/port-mappings: the caller's mappings, each with its counters. */
/* A UDP mapping's datagrams each way, and those dropped, by reason. */
struct wire_udp_counts {
	uint64_t datagrams_in, datagrams_out;
	uint64_t too_big, flow_cap, source_cap, no_fds, send_failed;
};

struct wire_mapping_info {
	uint16_t remote_port;
	uint8_t protocol; /* IPPROTO_TCP or IPPROTO_UDP */
	char target[ADDR_HOSTPORT_STRLEN];     /* client_ip:client_port */
	char local_addr[ADDR_HOSTPORT_STRLEN]; /* as the client described it */
	uint64_t active, total, bytes_in, bytes_out; /* UDP: flows, not connections */
	struct wire_udp_counts udp;                 /* UDP only */
	int64_t created; /* Unix seconds */
	bool is_signed;  /* "signed": registered with the client's key */
	uint8_t proxy_protocol;
};

/* One entry of that list, as a JSON object (NULL: out of memory). */
json_t *wire_mapping_info_pack(const struct wire_mapping_info *m);
/* Encodes {"success":true,"message":...,"port_mappings":[{...}]}. */
int wire_mapping_list_encode(const struct wire_mapping_info *v, size_t n, char **out);
/* Decodes that answer leniently: of each entry remote_port, protocol (tcp
 * when absent; entries of other protocols are left out), target and signed
 * (false when absent). On success the caller frees *out (*n
 * entries); -EINVAL or -ENOMEM with the reason in e otherwise. */
int wire_mapping_list_decode(struct wire_mapping_info **out, size_t *n, const char *body,
			     size_t len, struct errbuf *e);
/* On success the caller frees out's members with wire_reply_clear(). */
int wire_reply_decode(struct wire_reply *out, const char *body, size_t len, struct errbuf *e);
void wire_reply_clear(struct wire_reply *r);

/* Replaces, in place, each byte of s that is not part of valid UTF-8 with '?'. */
void wire_utf8_fix(char *s);
/* Drops a character cut short at the end of s (by a bounded snprintf). */
void wire_utf8_trim(char *s);
