#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "wgrp/proxy_header.h"

static const uint8_t v2_signature[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					  0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* Signature, version and command, family and protocol, length. */
#define V2_PREAMBLE_LEN 16
#define V2_VERSION 0x2
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_AF_INET 0x1
#define V2_AF_INET6 0x2
#define V2_STREAM 0x1
#define V2_DGRAM 0x2
/* The address block: source and destination addresses, then their ports. */
#define V2_BLOCK_LEN(addr_len) (2 * (addr_len) + 4)
/* Type, and the value's length in two bytes. */
#define V2_TLV_HEAD_LEN 3

/* The addresses of a header as it carries them. */
struct endpoints {
	int family;       /* AF_INET or AF_INET6 */
	size_t addr_len;  /* 4 or 16 */
	uint8_t src[16], dst[16];
	uint16_t src_port, dst_port; /* network order */
};

static bool is_ipv4ish(const union sockaddr_inet *sa)
{
	return sa->sa.sa_family == AF_INET ||
	       (sa->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sa->in6.sin6_addr));
}

/* Writes sa's address as ep->family wants it; sa is IPv4-ish when that is
 * AF_INET. */
static void endpoint_set(const struct endpoints *ep, const union sockaddr_inet *sa, uint8_t *addr,
			 uint16_t *port)
{
	static const uint8_t mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

	if (sa->sa.sa_family == AF_INET) {
		*port = sa->in.sin_port;
		if (ep->family == AF_INET) {
			memcpy(addr, &sa->in.sin_addr, 4);
		} else {
			memcpy(addr, mapped_prefix, sizeof(mapped_prefix));
			memcpy(addr + 12, &sa->in.sin_addr, 4);
		}
	} else {
		*port = sa->in6.sin6_port;
		/* A mapped address's IPv4 address is its last 4 bytes. */
		memcpy(addr, sa->in6.sin6_addr.s6_addr + (16 - ep->addr_len), ep->addr_len);
	}
}

static int endpoints_of(const struct proxy_addrs *a, struct endpoints *ep)
{
	int fs = a->src.sa.sa_family, fd = a->dst.sa.sa_family;

	if ((a->proto != SOCK_STREAM && a->proto != SOCK_DGRAM) ||
	    (fs != AF_INET && fs != AF_INET6) || (fd != AF_INET && fd != AF_INET6))
		return -EINVAL;
	memset(ep, 0, sizeof(*ep));
	ep->family = is_ipv4ish(&a->src) && is_ipv4ish(&a->dst) ? AF_INET : AF_INET6;
	ep->addr_len = ep->family == AF_INET ? 4 : 16;
	endpoint_set(ep, &a->src, ep->src, &ep->src_port);
	endpoint_set(ep, &a->dst, ep->dst, &ep->dst_port);
	return 0;
}

ssize_t proxy_v2_build(uint8_t *buf, size_t len, const struct proxy_addrs *a)
{
	struct endpoints ep;
	size_t block, n;
	uint8_t *p;
	int r;

	r = endpoints_of(a, &ep);
	if (r < 0)
		return r;
	block = V2_BLOCK_LEN(ep.addr_len);
	n = V2_PREAMBLE_LEN + block;
	if (len < n)
		return -ENOSPC;
	memcpy(buf, v2_signature, sizeof(v2_signature));
	buf[12] = V2_VERSION << 4 | V2_CMD_PROXY;
	buf[13] = (ep.family == AF_INET ? V2_AF_INET : V2_AF_INET6) << 4 |
		  (a->proto == SOCK_STREAM ? V2_STREAM : V2_DGRAM);
	buf[14] = (uint8_t)(block >> 8);
	buf[15] = (uint8_t)block;
	p = buf + V2_PREAMBLE_LEN;
	memcpy(p, ep.src, ep.addr_len);
	memcpy(p + ep.addr_len, ep.dst, ep.addr_len);
	memcpy(p + 2 * ep.addr_len, &ep.src_port, 2);
	memcpy(p + 2 * ep.addr_len + 2, &ep.dst_port, 2);
	return (ssize_t)n;
}

ssize_t proxy_v1_build(char *buf, size_t len, const struct proxy_addrs *a)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	struct endpoints ep;
	int r, n;

	if (a->proto == SOCK_DGRAM)
		return -EPROTONOSUPPORT;
	r = endpoints_of(a, &ep);
	if (r < 0)
		return r;
	/* Cannot fail: the family is valid and the buffers large enough. */
	inet_ntop(ep.family, ep.src, src, sizeof(src));
	inet_ntop(ep.family, ep.dst, dst, sizeof(dst));
	n = snprintf(buf, len, "PROXY %s %s %s %u %u\r\n", ep.family == AF_INET ? "TCP4" : "TCP6",
		     src, dst, ntohs(ep.src_port), ntohs(ep.dst_port));
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

#define bad(e, fmt, ...) errbuf_set(e, -EBADMSG, "PROXY v2 header: " fmt, ##__VA_ARGS__)

/* Checks that the TLVs in buf[from, to) stay inside it; what they carry is
 * skipped, since nothing of it is needed. */
static int check_tlvs(const uint8_t *buf, size_t from, size_t to, struct errbuf *e)
{
	size_t at = from, value_len;

	while (at < to) {
		if (to - at < V2_TLV_HEAD_LEN)
			return bad(e, "TLV at byte %zu cut short by the header's end at %zu", at,
				   to);
		value_len = (size_t)buf[at + 1] << 8 | buf[at + 2];
		if (value_len > to - at - V2_TLV_HEAD_LEN)
			return bad(e,
				   "TLV 0x%02x at byte %zu: length %zu runs past the header's "
				   "end at %zu",
				   buf[at], at, value_len, to);
		at += V2_TLV_HEAD_LEN + value_len;
	}
	return 0;
}

static void sockaddr_from(union sockaddr_inet *sa, int family, const uint8_t *addr,
			  const uint8_t *port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sa.sa_family = (sa_family_t)family;
	if (family == AF_INET) {
		memcpy(&sa->in.sin_addr, addr, 4);
		memcpy(&sa->in.sin_port, port, 2);
	} else {
		memcpy(&sa->in6.sin6_addr, addr, 16);
		memcpy(&sa->in6.sin6_port, port, 2);
	}
}

ssize_t proxy_v2_parse(const uint8_t *buf, size_t len, struct proxy_addrs *out, struct errbuf *e)
{
	size_t addr_len, block, total;
	int family, proto, r;
	uint8_t af, transport;
	const uint8_t *p;

	/* Each field is judged as soon as it has arrived, so that a bad header
	 * is refused without waiting for bytes that may never come. */
	if (!len)
		return 0;
	if (memcmp(buf, v2_signature, len < sizeof(v2_signature) ? len : sizeof(v2_signature)))
		return bad(e, "bad signature");
	if (len <= 12)
		return 0;
	if (buf[12] >> 4 != V2_VERSION)
		return bad(e, "version %u, not 2 (byte 0x%02x)", buf[12] >> 4, buf[12]);
	if ((buf[12] & 0xf) == V2_CMD_LOCAL)
		return bad(e, "command LOCAL (0x%02x) refused", buf[12]);
	if ((buf[12] & 0xf) != V2_CMD_PROXY)
		return bad(e, "unknown command 0x%02x", buf[12]);
	if (len <= 13)
		return 0;
	af = buf[13] >> 4;
	transport = buf[13] & 0xf;
	family = af == V2_AF_INET ? AF_INET : af == V2_AF_INET6 ? AF_INET6 : 0;
	proto = transport == V2_STREAM ? SOCK_STREAM : transport == V2_DGRAM ? SOCK_DGRAM : 0;
	if (!family || !proto)
		return bad(e, "family 0x%02x is not TCP or UDP over IPv4 or IPv6", buf[13]);
	addr_len = family == AF_INET ? 4 : 16;
	if (len < V2_PREAMBLE_LEN)
		return 0;
	block = (size_t)buf[14] << 8 | buf[15];
	total = V2_PREAMBLE_LEN + block;
	if (total > PROXY_V2_PARSE_MAX)
		return bad(e, "length %zu above %d", total, PROXY_V2_PARSE_MAX);
	if (block < V2_BLOCK_LEN(addr_len))
		return bad(e, "address length %zu too short for %s (%zu)", block,
			   family == AF_INET ? "IPv4" : "IPv6", V2_BLOCK_LEN(addr_len));
	if (len < total)
		return 0;
	r = check_tlvs(buf, V2_PREAMBLE_LEN + V2_BLOCK_LEN(addr_len), total, e);
	if (r < 0)
		return r;
	p = buf + V2_PREAMBLE_LEN;
	out->proto = proto;
	sockaddr_from(&out->src, family, p, p + 2 * addr_len);
	sockaddr_from(&out->dst, family, p + addr_len, p + 2 * addr_len + 2);
	return (ssize_t)total;
}
