/* The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2),
 * which tells a service behind a proxy the visitor's real address: built by
 * the side that relays, parsed by the side that receives. Pure functions of
 * their buffers: no I/O, no allocation. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"

/* The largest v2 header proxy_v2_build() writes: 16 bytes of preamble and the
 * IPv6 address block, no TLVs. */
#define PROXY_V2_MAX_LEN (16 + 36)
/* Room for any proxy_v1_build() line: the protocol's longest line (107 bytes,
 * CRLF included) and a terminating NUL. */
#define PROXY_V1_MAX_LEN 108
/* The largest v2 header proxy_v2_parse() accepts, TLVs included: the minimal
 * IPv4 TCP MSS, so that a whole header always fits in a sender's first
 * segment. */
#define PROXY_V2_PARSE_MAX 536

struct proxy_addrs {
	int proto; /* SOCK_STREAM or SOCK_DGRAM */
	union sockaddr_inet src, dst; /* the visitor, and the address it reached */
};

/* On addresses: when src and dst are both IPv4 or IPv4-mapped IPv6 (as a
 * dual-stack listener reports IPv4 visitors), the header carries them as IPv4;
 * otherwise as IPv6, an IPv4 address among them written IPv4-mapped. */

/* Writes a v2 header with the PROXY command, TCP or UDP (by a->proto) over
 * IPv4 or IPv6, and no TLVs. Returns its length, -ENOSPC when len is too
 * small (PROXY_V2_MAX_LEN always suffices), or -EINVAL for a protocol or an
 * address family it cannot carry. */
ssize_t proxy_v2_build(uint8_t *buf, size_t len, const struct proxy_addrs *a);

/* Writes the v1 line "PROXY TCP4 src dst sport dport\r\n" (TCP6 for IPv6),
 * NUL-terminated. Returns its length without the NUL, -ENOSPC when len is too
 * small (PROXY_V1_MAX_LEN always suffices), -EPROTONOSUPPORT for SOCK_DGRAM
 * (v1 has no UDP), or -EINVAL as proxy_v2_build(). */
ssize_t proxy_v1_build(char *buf, size_t len, const struct proxy_addrs *a);

/* Reads a v2 header at the start of the len bytes of buf, never past them.
 * Returns the header's total length (TLVs included, which are checked for
 * fitting in the header and skipped) with *out filled; 0 when buf is a proper
 * prefix of a header that may still be valid, so the caller reads more; or
 * -EBADMSG, with the reason in e (may be NULL), for a bad signature or
 * version, a command other than PROXY (LOCAL too), a family other than TCP or
 * UDP over IPv4 or IPv6, a length too short for the addresses, a total length
 * above PROXY_V2_PARSE_MAX, or a TLV running past the header. Addresses come
 * back as the header carries them: IPv4-mapped ones stay IPv6. */
ssize_t proxy_v2_parse(const uint8_t *buf, size_t len, struct proxy_addrs *out, struct errbuf *e);
