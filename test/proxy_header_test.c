#include <errno.h>

#include "test.h"
#include "wgrp/proxy_header.h"

#define SIG "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
/* Sizes of byte-string literals, without the NUL the compiler adds. */
#define LIT_LEN(s) (sizeof(s) - 1)

/* TCP from 192.0.2.1:51234 to 198.51.100.7:443. */
static const uint8_t tcp4[] = SIG "\x21\x11\x00\x0c"
				  "\xc0\x00\x02\x01\xc6\x33\x64\x07\xc8\x22\x01\xbb";
/* TCP from [2001:db8::1]:1000 to [2001:db8::2]:80. */
static const uint8_t tcp6[] = SIG "\x21\x21\x00\x24"
				  "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
				  "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02"
				  "\x03\xe8\x00\x50";
/* UDP from 10.0.0.1:53 to 10.0.0.2:5353. */
static const uint8_t udp4[] = SIG "\x21\x12\x00\x0c"
				  "\x0a\x00\x00\x01\x0a\x00\x00\x02\x00\x35\x14\xe9";
/* UDP from [2001:db8::1]:5000 to [2001:db8::2]:53, as rps prefixes a
 * datagram of an IPv6 visitor. */
static const uint8_t udp6[] = SIG "\x21\x22\x00\x24"
				  "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
				  "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02"
				  "\x13\x88\x00\x35";
/* TCP from [2001:db8::1]:1000 to 198.51.100.7:443, as IPv6. */
static const uint8_t mixed[] = SIG "\x21\x21\x00\x24"
				   "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
				   "\0\0\0\0\0\0\0\0\0\0\xff\xff\xc6\x33\x64\x07"
				   "\x03\xe8\x01\xbb";
/* tcp4 with two TLVs after the addresses: a NOOP of 3 bytes, an empty one. */
static const uint8_t tcp4_tlvs[] = SIG "\x21\x11\x00\x15"
				       "\xc0\x00\x02\x01\xc6\x33\x64\x07\xc8\x22\x01\xbb"
				       "\x04\x00\x03xyz"
				       "\xe0\x00\x00";

static struct proxy_addrs addrs(int proto, const char *src, uint16_t sport, const char *dst,
				uint16_t dport)
{
	return (struct proxy_addrs){ .proto = proto,
				     .src = test_sockaddr(src, sport),
				     .dst = test_sockaddr(dst, dport) };
}

/* What each builder writes for a visitor and the address it reached: v2 NULL
 * for no v2 check, v1 NULL for the -EPROTONOSUPPORT of UDP. */
static const struct vector {
	int proto;
	const char *src;
	uint16_t src_port;
	const char *dst;
	uint16_t dst_port;
	const uint8_t *v2;
	size_t v2_len;
	const char *v1;
} vectors[] = {
	{ SOCK_STREAM, "192.0.2.1", 51234, "198.51.100.7", 443, tcp4, LIT_LEN(tcp4),
	  "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n" },
	{ SOCK_STREAM, "2001:db8::1", 1000, "2001:db8::2", 80, tcp6, LIT_LEN(tcp6),
	  "PROXY TCP6 2001:db8::1 2001:db8::2 1000 80\r\n" },
	{ SOCK_DGRAM, "10.0.0.1", 53, "10.0.0.2", 5353, udp4, LIT_LEN(udp4), NULL },
	{ SOCK_DGRAM, "2001:db8::1", 5000, "2001:db8::2", 53, udp6, LIT_LEN(udp6), NULL },
	/* rps's dual-stack UDP socket: an IPv4 visitor and the address it
	 * reached (IP_PKTINFO) both IPv4-mapped, UDP over IPv4 on the wire. */
	{ SOCK_DGRAM, "::ffff:10.0.0.1", 53, "::ffff:10.0.0.2", 5353, udp4, LIT_LEN(udp4), NULL },
	/* A dual-stack listener reports IPv4 visitors as ::ffff:a.b.c.d: IPv4
	 * on the wire, unless the other address is a real IPv6 one. */
	{ SOCK_STREAM, "::ffff:192.0.2.1", 51234, "198.51.100.7", 443, tcp4, LIT_LEN(tcp4),
	  "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n" },
	{ SOCK_STREAM, "::ffff:192.0.2.1", 51234, "::ffff:198.51.100.7", 443, tcp4, LIT_LEN(tcp4),
	  "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n" },
	{ SOCK_STREAM, "2001:db8::1", 1000, "198.51.100.7", 443, mixed, LIT_LEN(mixed),
	  "PROXY TCP6 2001:db8::1 ::ffff:198.51.100.7 1000 443\r\n" },
	{ SOCK_STREAM, "2001:db8::1", 1000, "::ffff:198.51.100.7", 443, mixed, LIT_LEN(mixed),
	  "PROXY TCP6 2001:db8::1 ::ffff:198.51.100.7 1000 443\r\n" },
	/* The longest line there is, within the protocol's 107 bytes. */
	{ SOCK_STREAM, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535,
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, NULL, 0,
	  "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n" },
};

static void builds_exact_bytes_and_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMS(vectors); i++) {
		const struct vector *v = &vectors[i];
		struct proxy_addrs a = addrs(v->proto, v->src, v->src_port, v->dst, v->dst_port);
		uint8_t bytes[PROXY_V2_MAX_LEN];
		char line[PROXY_V1_MAX_LEN];

		if (v->v2) {
			assert_int_equal(proxy_v2_build(bytes, sizeof(bytes), &a), v->v2_len);
			assert_memory_equal(bytes, v->v2, v->v2_len);
		}
		if (!v->v1) {
			assert_int_equal(proxy_v1_build(line, sizeof(line), &a), -EPROTONOSUPPORT);
			continue;
		}
		assert_int_equal(proxy_v1_build(line, sizeof(line), &a), strlen(v->v1));
		assert_string_equal(line, v->v1);
	}
}

static void build_refuses_small_buffers_and_unknown_input(void **state)
{
	struct proxy_addrs a = addrs(SOCK_STREAM, "2001:db8::1", 1000, "2001:db8::2", 80);
	const char *line = "PROXY TCP6 2001:db8::1 2001:db8::2 1000 80\r\n";
	uint8_t buf[PROXY_V2_MAX_LEN];
	char text[PROXY_V1_MAX_LEN];

	(void)state;
	assert_int_equal(proxy_v2_build(buf, LIT_LEN(tcp6) - 1, &a), -ENOSPC);
	assert_int_equal(proxy_v2_build(buf, 0, &a), -ENOSPC);
	/* Room for the line but not its NUL. */
	assert_int_equal(proxy_v1_build(text, strlen(line), &a), -ENOSPC);
	assert_int_equal(proxy_v1_build(text, strlen(line) + 1, &a), strlen(line));

	a.proto = SOCK_RAW;
	assert_int_equal(proxy_v2_build(buf, sizeof(buf), &a), -EINVAL);
	assert_int_equal(proxy_v1_build(text, sizeof(text), &a), -EINVAL);
	a.proto = SOCK_STREAM;
	a.dst.sa.sa_family = AF_UNIX;
	assert_int_equal(proxy_v2_build(buf, sizeof(buf), &a), -EINVAL);
	assert_int_equal(proxy_v1_build(text, sizeof(text), &a), -EINVAL);
	a.dst.sa.sa_family = AF_INET6;
	a.src.sa.sa_family = AF_UNSPEC;
	assert_int_equal(proxy_v2_build(buf, sizeof(buf), &a), -EINVAL);
}

static void assert_parses_to(const uint8_t *buf, size_t len, const struct proxy_addrs *want)
{
	struct proxy_addrs got;
	struct errbuf e = { "" };

	memset(&got, 0xa5, sizeof(got));
	assert_int_equal(proxy_v2_parse(buf, len, &got, &e), len);
	assert_string_equal(e.msg, "");
	assert_int_equal(got.proto, want->proto);
	assert_memory_equal(&got.src, &want->src, sizeof(got.src));
	assert_memory_equal(&got.dst, &want->dst, sizeof(got.dst));
}

static void v2_parses_addresses_in_network_order(void **state)
{
	struct proxy_addrs a, got;

	(void)state;
	a = addrs(SOCK_STREAM, "192.0.2.1", 51234, "198.51.100.7", 443);
	assert_parses_to(tcp4, LIT_LEN(tcp4), &a);
	assert_parses_to(tcp4_tlvs, LIT_LEN(tcp4_tlvs), &a);
	a = addrs(SOCK_STREAM, "2001:db8::1", 1000, "2001:db8::2", 80);
	assert_parses_to(tcp6, LIT_LEN(tcp6), &a);
	a = addrs(SOCK_DGRAM, "10.0.0.1", 53, "10.0.0.2", 5353);
	assert_parses_to(udp4, LIT_LEN(udp4), &a);
	a = addrs(SOCK_DGRAM, "2001:db8::1", 5000, "2001:db8::2", 53);
	assert_parses_to(udp6, LIT_LEN(udp6), &a);
	/* The header says IPv6: the mapped address stays as it came. */
	a = addrs(SOCK_STREAM, "2001:db8::1", 1000, "::ffff:198.51.100.7", 443);
	assert_parses_to(mixed, LIT_LEN(mixed), &a);

	assert_int_equal(proxy_v2_parse(tcp4, LIT_LEN(tcp4), &got, NULL), LIT_LEN(tcp4));
	assert_int_equal(got.src.in.sin_port, htons(51234));
	assert_int_equal(sockaddr_inet_port(&got.dst), 443);
	assert_int_equal(got.src.in.sin_addr.s_addr, htonl(0xc0000201));
}

/* What follows the header is the relayed stream's first bytes. */
static void v2_parse_stops_at_the_headers_end(void **state)
{
	uint8_t buf[sizeof(tcp6) + 10];
	struct proxy_addrs got;

	(void)state;
	memcpy(buf, tcp6, LIT_LEN(tcp6));
	memcpy(buf + LIT_LEN(tcp6), "GET / HTTP", 10);
	assert_int_equal(proxy_v2_parse(buf, LIT_LEN(tcp6) + 10, &got, NULL), LIT_LEN(tcp6));
}

static void assert_every_prefix_incomplete(const uint8_t *buf, size_t len)
{
	struct proxy_addrs got;
	struct errbuf e;

	for (size_t k = 0; k < len; k++)
		if (proxy_v2_parse(buf, k, &got, &e) != 0)
			fail_msg("prefix of %zu bytes of %zu: not 0", k, len);
}

static void every_proper_prefix_asks_for_more(void **state)
{
	(void)state;
	assert_every_prefix_incomplete(tcp4, LIT_LEN(tcp4));
	assert_every_prefix_incomplete(tcp6, LIT_LEN(tcp6));
	assert_every_prefix_incomplete(udp4, LIT_LEN(udp4));
	assert_every_prefix_incomplete(tcp4_tlvs, LIT_LEN(tcp4_tlvs));
}

static void assert_refused(const uint8_t *buf, size_t len, const char *msg)
{
	struct proxy_addrs got;
	struct errbuf e;

	assert_int_equal(proxy_v2_parse(buf, len, &got, &e), -EBADMSG);
	assert_string_equal(e.msg, msg);
}

/* tcp4 with byte i set to v, judged from its first n bytes. */
static void assert_tcp4_refused(size_t i, uint8_t v, size_t n, const char *msg)
{
	uint8_t buf[sizeof(tcp4)];

	memcpy(buf, tcp4, sizeof(buf));
	buf[i] = v;
	assert_refused(buf, n, msg);
}

static void v2_refuses_malformed_headers_with_a_reason(void **state)
{
	static const uint8_t v1[] = "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n";
	static const uint8_t short_ipv6[] = SIG "\x21\x21\x00\x0c"
						"\xc0\x00\x02\x01\xc6\x33\x64\x07\xc8\x22\x01\xbb";

	(void)state;
	assert_refused(v1, LIT_LEN(v1), "PROXY v2 header: bad signature");
	/* Known bad as soon as the bytes that show it have arrived. */
	assert_refused(v1, 1, "PROXY v2 header: bad signature");
	assert_tcp4_refused(11, 0x0b, 12, "PROXY v2 header: bad signature");
	assert_tcp4_refused(12, 0x11, 13, "PROXY v2 header: version 1, not 2 (byte 0x11)");
	assert_tcp4_refused(12, 0x31, 13, "PROXY v2 header: version 3, not 2 (byte 0x31)");
	assert_tcp4_refused(12, 0x20, 13, "PROXY v2 header: command LOCAL (0x20) refused");
	assert_tcp4_refused(12, 0x2f, 13, "PROXY v2 header: unknown command 0x2f");
	assert_tcp4_refused(13, 0x00, 14,
			    "PROXY v2 header: family 0x00 is not TCP or UDP over IPv4 or IPv6");
	assert_tcp4_refused(13, 0x31, 14,
			    "PROXY v2 header: family 0x31 is not TCP or UDP over IPv4 or IPv6");
	assert_tcp4_refused(13, 0x10, 14,
			    "PROXY v2 header: family 0x10 is not TCP or UDP over IPv4 or IPv6");
	assert_tcp4_refused(13, 0x13, 14,
			    "PROXY v2 header: family 0x13 is not TCP or UDP over IPv4 or IPv6");
	assert_tcp4_refused(15, 11, 16,
			    "PROXY v2 header: address length 11 too short for IPv4 (12)");
	assert_refused(short_ipv6, LIT_LEN(short_ipv6),
		       "PROXY v2 header: address length 12 too short for IPv6 (36)");
	/* 0x20c: a total of 540 bytes, refused from the preamble alone. */
	assert_tcp4_refused(14, 0x02, 16, "PROXY v2 header: length 540 above 536");
}

static void tlvs_are_skipped_within_the_cap(void **state)
{
	/* 16 + 12 + a TLV of 3 + 505: exactly the cap. */
	uint8_t buf[PROXY_V2_PARSE_MAX + 1] = { 0 };
	struct proxy_addrs got;

	(void)state;
	memcpy(buf, tcp4, LIT_LEN(tcp4));
	buf[14] = (PROXY_V2_PARSE_MAX - 16) >> 8;
	buf[15] = (PROXY_V2_PARSE_MAX - 16) & 0xff;
	buf[28] = 0x04;
	buf[29] = 505 >> 8;
	buf[30] = 505 & 0xff;
	assert_int_equal(proxy_v2_parse(buf, sizeof(buf), &got, NULL), PROXY_V2_PARSE_MAX);
	assert_int_equal(sockaddr_inet_port(&got.src), 51234);
	assert_every_prefix_incomplete(buf, PROXY_V2_PARSE_MAX);

	/* One byte more is above the cap. */
	buf[15]++;
	assert_refused(buf, sizeof(buf), "PROXY v2 header: length 537 above 536");
}

static void a_tlv_must_fit_in_the_header(void **state)
{
	uint8_t buf[sizeof(tcp4_tlvs)];

	(void)state;
	/* The second TLV's length, 1, runs one byte past the end. */
	memcpy(buf, tcp4_tlvs, sizeof(buf));
	buf[LIT_LEN(tcp4_tlvs) - 1] = 1;
	assert_refused(buf, LIT_LEN(tcp4_tlvs),
		       "PROXY v2 header: TLV 0xe0 at byte 34: length 1 runs past the header's end "
		       "at 37");
	/* The header ends 2 bytes into the second TLV's 3-byte head. */
	memcpy(buf, tcp4_tlvs, sizeof(buf));
	buf[15] -= 1;
	assert_refused(buf, LIT_LEN(tcp4_tlvs),
		       "PROXY v2 header: TLV at byte 34 cut short by the header's end at 36");
	/* The first TLV's value is longer than all that is left. */
	memcpy(buf, tcp4_tlvs, sizeof(buf));
	buf[30] = 0xff;
	assert_refused(buf, LIT_LEN(tcp4_tlvs),
		       "PROXY v2 header: TLV 0x04 at byte 28: length 255 runs past the header's "
		       "end at 37");
}

static void port_zero_is_valid(void **state)
{
	struct proxy_addrs a = addrs(SOCK_DGRAM, "2001:db8::1", 0, "192.0.2.1", 0), got;
	uint8_t buf[PROXY_V2_MAX_LEN];
	ssize_t n;

	(void)state;
	n = proxy_v2_build(buf, sizeof(buf), &a);
	assert_int_equal(n, 16 + 36);
	assert_int_equal(proxy_v2_parse(buf, (size_t)n, &got, NULL), n);
	assert_int_equal(got.proto, SOCK_DGRAM);
	assert_int_equal(sockaddr_inet_port(&got.src), 0);
	assert_int_equal(sockaddr_inet_port(&got.dst), 0);
}

static void build_then_parse_round_trips(void **state)
{
	static const struct {
		int proto;
		const char *src, *dst;
	} cases[] = {
		{ SOCK_STREAM, "0.0.0.0", "255.255.255.255" },
		{ SOCK_DGRAM, "203.0.113.9", "10.1.2.3" },
		{ SOCK_STREAM, "::", "::1" },
		{ SOCK_DGRAM, "fe80::1", "2001:db8:ffff::7" },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		struct proxy_addrs a = addrs(cases[i].proto, cases[i].src, (uint16_t)(40000 + i),
					     cases[i].dst, (uint16_t)(65535 - i));
		uint8_t buf[PROXY_V2_MAX_LEN];
		ssize_t n = proxy_v2_build(buf, sizeof(buf), &a);

		assert_true(n > 0);
		assert_parses_to(buf, (size_t)n, &a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(builds_exact_bytes_and_lines),
		cmocka_unit_test(build_refuses_small_buffers_and_unknown_input),
		cmocka_unit_test(v2_parses_addresses_in_network_order),
		cmocka_unit_test(v2_parse_stops_at_the_headers_end),
		cmocka_unit_test(every_proper_prefix_asks_for_more),
		cmocka_unit_test(v2_refuses_malformed_headers_with_a_reason),
		cmocka_unit_test(tlvs_are_skipped_within_the_cap),
		cmocka_unit_test(a_tlv_must_fit_in_the_header),
		cmocka_unit_test(port_zero_is_valid),
		cmocka_unit_test(build_then_parse_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
