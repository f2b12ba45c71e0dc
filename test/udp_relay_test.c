/* The UDP engine on loopback, with a clock the test moves: flows per
 * source, replies back to their source, expiry, the caps, datagrams too
 * big, ICMP port unreachable, the filter, the fd budget and closing; and
 * through relay_pool's workers (their own clocks): retargeting, the
 * counters summed, closing.
 * (udp_relay_test.sh drives the data path under load.) */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fake_clock.h"
#include "test.h"
#include "wgrp/proxy_header.h"
#include "wgrp/relay_pool.h"
#include "wgrp/udp_relay.h"

struct fixture {
	struct loop *loop;
	struct relay_ctx *ctx;
	struct udp_listener *lis;
	int target;               /* the target's socket */
	union sockaddr_inet addr; /* the relay's */
};

static union sockaddr_inet loopback(const char *ip)
{
	union sockaddr_inet a = { .in = { .sin_family = AF_INET } };

	assert_int_equal(inet_pton(AF_INET, ip, &a.in.sin_addr), 1);
	return a;
}

static int udp_bound(const char *ip)
{
	union sockaddr_inet a = loopback(ip);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, &a.sa, sizeof(a.in)), 0);
	return fd;
}

static void setup_with(struct fixture *f, const struct relay_config *cfg)
{
	union sockaddr_inet any = loopback("127.0.0.1"), target;
	socklen_t len = sizeof(target);
	struct errbuf e;
	int fd;

	fake_now = 0;
	assert_int_equal(loop_new(&f->loop), 0);
	loop_set_clock(f->loop, fake_clock, NULL);
	assert_int_equal(relay_ctx_new(&f->ctx, f->loop, cfg), 0);
	f->target = udp_bound("127.0.0.1");
	assert_int_equal(getsockname(f->target, &target.sa, &len), 0);
	fd = udp_socket(&any, false, &f->addr, &e);
	assert_true(fd >= 0);
	assert_int_equal(udp_adopt(&f->lis, f->ctx, fd, &target), 0);
}

static void setup(struct fixture *f)
{
	struct relay_config cfg = { .pipe_kb = 64, .udp_timeout_s = 2 };

	setup_with(f, &cfg);
}

static void teardown(struct fixture *f)
{
	udp_listener_close(f->lis);
	relay_ctx_free(f->ctx);
	loop_free(f->loop);
	if (f->target >= 0)
		close(f->target);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* Runs loop rounds until fd is readable (or 2 s of rounds). */
static void run_until_readable(struct fixture *f, int fd)
{
	for (int i = 0; i < 200 && !readable(fd); i++)
		assert_int_equal(loop_run_once(f->loop, 10), 0);
	assert_true(readable(fd));
}

static void run_rounds(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(loop_run_once(f->loop, 5), 0);
}

static void run_at(struct fixture *f, uint64_t ms)
{
	fake_now = ms;
	run_rounds(f, 3);
}

static const struct udp_stats *stats(const struct fixture *f)
{
	return udp_listener_stats(f->lis);
}

/* The flows opened, and the datagrams and bytes from sources to the target. */
static void assert_in(const struct fixture *f, uint64_t flows, uint64_t datagrams, uint64_t bytes)
{
	assert_int_equal(stats(f)->flows_total, flows);
	assert_int_equal(stats(f)->datagrams_in, datagrams);
	assert_int_equal(stats(f)->bytes_in, bytes);
}

static void send_to_relay(const struct fixture *f, int client, const void *buf, size_t len)
{
	assert_int_equal(sendto(client, buf, len, 0, &f->addr.sa, sizeof(f->addr.in)), (ssize_t)len);
}

/* The target gets what the client sent; returns the port it came from. */
static uint16_t target_gets(struct fixture *f, int client, const char *msg, union sockaddr_inet *from)
{
	socklen_t len = sizeof(*from);
	char buf[64];

	send_to_relay(f, client, msg, strlen(msg));
	run_until_readable(f, f->target);
	assert_int_equal(recvfrom(f->target, buf, sizeof(buf), 0, &from->sa, &len),
			 (ssize_t)strlen(msg));
	assert_memory_equal(buf, msg, strlen(msg));
	return ntohs(from->in.sin_port);
}

/* The client gets msg, from the relay's address, when the target sends it to flow. */
static void client_gets(struct fixture *f, int client, const union sockaddr_inet *flow,
			const char *msg)
{
	union sockaddr_inet from;
	socklen_t len = sizeof(from);
	char buf[64];

	assert_int_equal(sendto(f->target, msg, strlen(msg), 0, &flow->sa, sizeof(flow->in)),
			 (ssize_t)strlen(msg));
	run_until_readable(f, client);
	assert_int_equal(recvfrom(client, buf, sizeof(buf), 0, &from.sa, &len), (ssize_t)strlen(msg));
	assert_memory_equal(buf, msg, strlen(msg));
	assert_int_equal(from.in.sin_port, f->addr.in.sin_port);
	assert_int_equal(from.in.sin_addr.s_addr, f->addr.in.sin_addr.s_addr);
}

static void a_flow_per_source_and_replies_find_theirs(void **state)
{
	struct fixture f;
	union sockaddr_inet fa, fb, again;
	int a, b;

	(void)state;
	setup(&f);
	a = udp_bound("127.0.0.1");
	b = udp_bound("127.0.0.1");
	target_gets(&f, a, "a1", &fa);
	target_gets(&f, b, "b1", &fb);
	assert_int_not_equal(fa.in.sin_port, fb.in.sin_port);
	assert_int_not_equal(fa.in.sin_port, f.addr.in.sin_port);
	target_gets(&f, a, "a2", &again);
	assert_int_equal(again.in.sin_port, fa.in.sin_port);
	client_gets(&f, b, &fb, "to b");
	client_gets(&f, a, &fa, "to a");
	assert_int_equal(stats(&f)->flows_active, 2);
	assert_in(&f, 2, 3, 6);
	assert_int_equal(stats(&f)->datagrams_out, 2);
	assert_int_equal(stats(&f)->bytes_out, 8);
	close(a);
	close(b);
	teardown(&f);
}

/* An empty datagram is a datagram: it passes both ways. */
static void empty_datagrams_pass(void **state)
{
	struct fixture f;
	union sockaddr_inet flow;
	int a;

	(void)state;
	setup(&f);
	a = udp_bound("127.0.0.1");
	target_gets(&f, a, "", &flow);
	client_gets(&f, a, &flow, "");
	assert_int_equal(stats(&f)->datagrams_in, 1);
	assert_int_equal(stats(&f)->datagrams_out, 1);
	close(a);
	teardown(&f);
}

static void a_silent_flow_expires_and_activity_either_way_pushes_it(void **state)
{
	struct fixture f;
	union sockaddr_inet flow;
	int a;

	(void)state;
	setup(&f); /* 2 s */
	a = udp_bound("127.0.0.1");
	target_gets(&f, a, "x", &flow);
	/* A reply at 1.5 s moves the end to 3.5 s. */
	fake_now = 1500;
	client_gets(&f, a, &flow, "y");
	run_at(&f, 2100);
	assert_int_equal(stats(&f)->flows_active, 1);
	run_at(&f, 3499);
	assert_int_equal(stats(&f)->flows_active, 1);
	run_at(&f, 3500);
	assert_int_equal(stats(&f)->flows_active, 0);
	assert_int_equal(stats(&f)->flows_expired, 1);
	/* The source comes back: a new flow. */
	target_gets(&f, a, "z", &flow);
	assert_int_equal(stats(&f)->flows_total, 2);
	close(a);
	teardown(&f);
}

/* With room for two flows, a third source's datagram is dropped and counted
 * in *counter, and the two go on. source_cap: the listener's own (0: none). */
static void third_source_dropped(const struct relay_config *cfg, uint32_t source_cap,
				 size_t counter)
{
	struct fixture f;
	union sockaddr_inet flow[2];
	int c[3];

	setup_with(&f, cfg);
	if (source_cap)
		udp_listener_set_source_cap(f.lis, source_cap);
	for (int i = 0; i < 3; i++)
		c[i] = udp_bound("127.0.0.1");
	target_gets(&f, c[0], "0", &flow[0]);
	target_gets(&f, c[1], "1", &flow[1]);
	send_to_relay(&f, c[2], "2", 1);
	run_rounds(&f, 3);
	assert_false(readable(f.target));
	assert_int_equal(*(const uint64_t *)((const char *)stats(&f) + counter), 1);
	assert_int_equal(stats(&f)->flows_active, 2);
	client_gets(&f, c[0], &flow[0], "still");
	target_gets(&f, c[1], "going", &flow[1]);
	for (int i = 0; i < 3; i++)
		close(c[i]);
	teardown(&f);
}

static void the_flow_cap_drops_and_counts(void **state)
{
	struct relay_config cfg = { .pipe_kb = 64, .udp_max_flows = 2 };

	(void)state;
	third_source_dropped(&cfg, 0, offsetof(struct udp_stats, flow_cap));
}

/* The cap per source is the one of TCP connections. */
static void the_source_cap_drops_and_counts(void **state)
{
	struct relay_config cfg = { .pipe_kb = 64, .max_conns_per_source = 2 };

	(void)state;
	third_source_dropped(&cfg, 0, offsetof(struct udp_stats, source_cap));
}

/* A peer's own MaxConnsPerSource replaces the option for its listeners. */
static void a_listeners_own_source_cap_applies(void **state)
{
	struct relay_config cfg = { .pipe_kb = 64, .max_conns_per_source = 100 };

	(void)state;
	third_source_dropped(&cfg, 2, offsetof(struct udp_stats, source_cap));
}

/* Datagrams over the maximum are dropped, not cut, either way. */
static void a_datagram_too_big_is_dropped(void **state)
{
	struct relay_config cfg = { .pipe_kb = 64, .udp_max_datagram = 100 };
	struct fixture f;
	union sockaddr_inet flow;
	socklen_t len = sizeof(flow);
	char big[101] = { 0 }, buf[128];
	int a;

	(void)state;
	setup_with(&f, &cfg);
	a = udp_bound("127.0.0.1");
	send_to_relay(&f, a, big, sizeof(big));
	run_rounds(&f, 3);
	assert_false(readable(f.target));
	assert_int_equal(stats(&f)->too_big, 1);
	send_to_relay(&f, a, big, 100);
	run_until_readable(&f, f.target);
	assert_int_equal(recvfrom(f.target, buf, sizeof(buf), 0, &flow.sa, &len), 100);
	assert_int_equal(sendto(f.target, big, sizeof(big), 0, &flow.sa, len), (ssize_t)sizeof(big));
	run_rounds(&f, 3);
	assert_false(readable(a));
	assert_int_equal(stats(&f)->too_big, 2);
	assert_int_equal(stats(&f)->datagrams_out, 0);
	client_gets(&f, a, &flow, "small");
	close(a);
	teardown(&f);
}

/* Nothing listens at the target: its ICMP port unreachable ends the flow. */
static void port_unreachable_ends_the_flow(void **state)
{
	struct fixture f;
	int a;

	(void)state;
	setup(&f);
	close(f.target);
	f.target = -1;
	a = udp_bound("127.0.0.1");
	send_to_relay(&f, a, "x", 1);
	for (int i = 0; i < 50 && stats(&f)->flows_ended_by_icmp == 0; i++)
		run_rounds(&f, 1);
	assert_int_equal(stats(&f)->flows_ended_by_icmp, 1);
	assert_int_equal(stats(&f)->flows_active, 0);
	assert_int_equal(stats(&f)->flows_total, 1);
	close(a);
	teardown(&f);
}

static void only_the_peer_opens_flows(void **state)
{
	struct ip_addr peer;
	struct fixture f;
	union sockaddr_inet flow;
	int other, server;

	(void)state;
	setup(&f);
	assert_int_equal(ip_addr_parse(&peer, "127.0.0.2", NULL), 0);
	udp_listener_only_from(f.lis, &peer);
	other = udp_bound("127.0.0.1");
	server = udp_bound("127.0.0.2");
	send_to_relay(&f, other, "no", 2);
	run_rounds(&f, 3);
	assert_false(readable(f.target));
	assert_int_equal(stats(&f)->not_from_peer, 1);
	target_gets(&f, server, "yes", &flow);
	client_gets(&f, server, &flow, "back");
	assert_int_equal(stats(&f)->flows_total, 1);
	close(other);
	close(server);
	teardown(&f);
}

/* A datagram from client to the relay at relay, and the target's reply to
 * the flow it came from, which must come back from the relay's port. */
static void round_trip(struct fixture *f, int client, const union sockaddr_inet *relay,
		       union sockaddr_inet *flow)
{
	socklen_t len = sizeof(*flow), rlen = sizeof(*relay);
	union sockaddr_inet from;
	char buf[8];

	assert_int_equal(sendto(client, "q", 1, 0, &relay->sa, sockaddr_inet_len(relay)), 1);
	run_until_readable(f, f->target);
	assert_int_equal(recvfrom(f->target, buf, sizeof(buf), 0, &flow->sa, &len), 1);
	assert_int_equal(sendto(f->target, "r", 1, 0, &flow->sa, len), 1);
	run_until_readable(f, client);
	assert_int_equal(recvfrom(client, buf, sizeof(buf), 0, &from.sa, &rlen), 1);
	assert_int_equal(sockaddr_inet_port(&from), sockaddr_inet_port(relay));
}

/* setup(), with the listener on the IPv6 any-address; *bound gets it. */
static void setup_dual_stack(struct fixture *f, union sockaddr_inet *bound)
{
	union sockaddr_inet any6 = { .in6 = { .sin6_family = AF_INET6 } }, target;
	socklen_t len = sizeof(target);
	struct errbuf e;
	int fd;

	setup(f);
	udp_listener_close(f->lis);
	assert_int_equal(getsockname(f->target, &target.sa, &len), 0);
	fd = udp_socket(&any6, false, bound, &e);
	assert_true(fd >= 0);
	assert_int_equal(udp_adopt(&f->lis, f->ctx, fd, &target), 0);
}

/* The IPv6 any-address takes IPv4 too (sources IPv4-mapped): an IPv4 and an
 * IPv6 source are two flows, each answered, and the IPv4 one finds its
 * flow again. */
static void a_dual_stack_listener_keeps_families_apart(void **state)
{
	union sockaddr_inet bound, v4, v6, flow[3];
	struct fixture f;
	int a, b;

	(void)state;
	setup_dual_stack(&f, &bound);
	v4 = loopback("127.0.0.1");
	v4.in.sin_port = bound.in6.sin6_port;
	v6 = (union sockaddr_inet){ .in6 = { .sin6_family = AF_INET6, .sin6_port = bound.in6.sin6_port,
					     .sin6_addr = IN6ADDR_LOOPBACK_INIT } };
	a = udp_bound("127.0.0.1");
	b = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(b >= 0);
	round_trip(&f, a, &v4, &flow[0]);
	round_trip(&f, b, &v6, &flow[1]);
	round_trip(&f, a, &v4, &flow[2]);
	assert_int_not_equal(flow[0].in.sin_port, flow[1].in.sin_port);
	assert_int_equal(flow[0].in.sin_port, flow[2].in.sin_port);
	assert_int_equal(stats(&f)->flows_total, 2);
	close(a);
	close(b);
	teardown(&f);
}

static void assert_same_sockaddr(const union sockaddr_inet *a, const union sockaddr_inet *b)
{
	assert_int_equal(a->sa.sa_family, b->sa.sa_family);
	assert_int_equal(sockaddr_inet_port(a), sockaddr_inet_port(b));
	if (a->sa.sa_family == AF_INET)
		assert_int_equal(a->in.sin_addr.s_addr, b->in.sin_addr.s_addr);
	else
		assert_memory_equal(&a->in6.sin6_addr, &b->in6.sin6_addr, 16);
}

/* Receives a datagram at fd: a PROXY v2 UDP header naming src and dst,
 * then payload. Returns where it came from. */
static union sockaddr_inet gets_with_header(int fd, const union sockaddr_inet *src,
					    const union sockaddr_inet *dst, const char *payload)
{
	union sockaddr_inet from;
	socklen_t len = sizeof(from);
	struct proxy_addrs got;
	uint8_t buf[256];
	ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, &from.sa, &len), h;

	assert_true(n > 0);
	h = proxy_v2_parse(buf, (size_t)n, &got, NULL);
	assert_true(h > 0);
	assert_int_equal(got.proto, SOCK_DGRAM);
	assert_same_sockaddr(&got.src, src);
	assert_same_sockaddr(&got.dst, dst);
	assert_int_equal(n - h, strlen(payload));
	assert_memory_equal(buf + h, payload, strlen(payload));
	return from;
}

/* rps: each datagram of a flow reaches the target after a v2 UDP header
 * naming its source and the address it reached (from the datagram's
 * IP_PKTINFO on the dual-stack any-address: IPv4 visitors as IPv4), the
 * reply comes back plain. */
static void rps_prefixes_each_datagram_with_its_flows_header(void **state)
{
	union sockaddr_inet bound, relay4, relay6, client4, client6, flow;
	struct relay_visitor v = { .send_header = 2 };
	socklen_t len;
	struct fixture f;
	int a, b;
	char buf[8];

	(void)state;
	setup_dual_stack(&f, &bound);
	udp_listener_set_visitor(f.lis, &v);
	relay4 = test_sockaddr("127.0.0.1", sockaddr_inet_port(&bound));
	relay6 = test_sockaddr("::1", sockaddr_inet_port(&bound));
	a = udp_bound("127.0.0.1");
	b = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(b >= 0);
	client6 = test_sockaddr("::1", 0);
	assert_int_equal(bind(b, &client6.sa, sizeof(client6.in6)), 0);
	len = sizeof(client4);
	assert_int_equal(getsockname(a, &client4.sa, &len), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sendto(a, "four", 4, 0, &relay4.sa, sizeof(relay4.in)), 4);
		run_until_readable(&f, f.target);
		flow = gets_with_header(f.target, &client4, &relay4, "four");
	}
	assert_int_equal(sendto(f.target, "back", 4, 0, &flow.sa, sizeof(flow.in)), 4);
	run_until_readable(&f, a);
	assert_int_equal(recv(a, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "back", 4);

	assert_int_equal(sendto(b, "six", 3, 0, &relay6.sa, sizeof(relay6.in6)), 3);
	len = sizeof(client6);
	assert_int_equal(getsockname(b, &client6.sa, &len), 0);
	run_until_readable(&f, f.target);
	flow = gets_with_header(f.target, &client6, &relay6, "six");
	assert_int_equal(sendto(f.target, "", 0, 0, &flow.sa, sizeof(flow.in)), 0);
	run_until_readable(&f, b);
	assert_int_equal(recv(b, buf, sizeof(buf), 0), 0);
	assert_in(&f, 2, 3, 11);
	close(a);
	close(b);
	teardown(&f);
}

/* The header takes its room in the tunnel's largest datagram: 28 bytes for
 * an IPv4 visitor. */
static void the_header_counts_towards_too_big(void **state)
{
	struct relay_config cfg = { .pipe_kb = 64, .udp_max_datagram = 100 };
	struct relay_visitor v = { .send_header = 2 };
	union sockaddr_inet client;
	socklen_t len = sizeof(client);
	char big[74];
	struct fixture f;
	int a;

	(void)state;
	setup_with(&f, &cfg);
	udp_listener_set_visitor(f.lis, &v);
	a = udp_bound("127.0.0.1");
	assert_int_equal(getsockname(a, &client.sa, &len), 0);
	memset(big, 'x', sizeof(big));
	send_to_relay(&f, a, big, 73);
	run_rounds(&f, 3);
	assert_false(readable(f.target));
	assert_int_equal(stats(&f)->too_big, 1);
	big[72] = '\0';
	send_to_relay(&f, a, big, 72);
	run_until_readable(&f, f.target);
	gets_with_header(f.target, &client, &f.addr, big);
	assert_int_equal(stats(&f)->too_big, 1);
	assert_in(&f, 1, 1, 72);
	close(a);
	teardown(&f);
}

/* What rps sends for a's visitor: header (with a NOOP TLV when tlv), then
 * payload. */
static size_t from_rps(uint8_t *buf, const struct proxy_addrs *a, bool tlv, const char *payload)
{
	ssize_t n = proxy_v2_build(buf, PROXY_V2_MAX_LEN, a);
	size_t len;

	assert_true(n > 0);
	len = (size_t)n;
	if (tlv) {
		memcpy(buf + len, "\x04\x00\x02zz", 5);
		len += 5;
		buf[15] = (uint8_t)(buf[15] + 5);
	}
	memcpy(buf + len, payload, strlen(payload));
	return len + strlen(payload);
}

static void rps_sends(struct fixture *f, int rps, const struct proxy_addrs *a, const char *payload)
{
	uint8_t buf[128];

	send_to_relay(f, rps, buf, from_rps(buf, a, false, payload));
}

/* rpc with send-proxy-v2: the service gets payload, sent by rps for a's
 * visitor, after a header of rpc's naming the same. Returns the flow. */
static union sockaddr_inet service_gets(struct fixture *f, int rps, const struct proxy_addrs *a,
					const char *payload)
{
	rps_sends(f, rps, a, payload);
	run_until_readable(f, f->target);
	return gets_with_header(f->target, &a->src, &a->dst, payload);
}

/* setup() for rpc's side, v as a route asks; returns rps's socket. */
static int setup_rpc(struct fixture *f, const struct relay_visitor *v)
{
	setup(f);
	udp_listener_set_visitor(f->lis, v);
	return udp_bound("127.0.0.1");
}

static const struct relay_visitor send_proxy_v2 = { .read_header = true, .send_header = 2 };

/* rpc, send-proxy-v2: the header from rps taken off (TLVs and all), a
 * header of its own put before each datagram to the service, the reply
 * back plain. */
static void rpc_strips_the_header_and_rebuilds_it(void **state)
{
	struct proxy_addrs a = { SOCK_DGRAM, test_sockaddr("192.0.2.7", 5000),
				 test_sockaddr("198.51.100.1", 53) };
	union sockaddr_inet flow;
	struct fixture f;
	uint8_t buf[128];
	int rps;

	(void)state;
	rps = setup_rpc(&f, &send_proxy_v2);
	send_to_relay(&f, rps, buf, from_rps(buf, &a, true, "query"));
	run_until_readable(&f, f.target);
	flow = gets_with_header(f.target, &a.src, &a.dst, "query");
	service_gets(&f, rps, &a, "again");
	client_gets(&f, rps, &flow, "answer");
	assert_in(&f, 1, 2, 10);
	assert_int_equal(stats(&f)->bad_header, 0);
	close(rps);
	teardown(&f);
}

/* rpc: a datagram without a whole, valid UDP header is dropped and counted,
 * as is one naming another visitor than its flow's first; the flow goes on. */
static void rpc_drops_bad_missing_and_changing_headers(void **state)
{
	struct proxy_addrs a = { SOCK_STREAM, test_sockaddr("2001:db8::7", 5000),
				 test_sockaddr("2001:db8::1", 53) },
			   other = a;
	struct fixture f;
	uint8_t buf[128];
	size_t n;
	int rps;

	(void)state;
	rps = setup_rpc(&f, &send_proxy_v2);
	send_to_relay(&f, rps, "no header", 9);
	send_to_relay(&f, rps, "", 0);
	rps_sends(&f, rps, &a, "tcp");
	a.proto = SOCK_DGRAM;
	n = from_rps(buf, &a, false, "");
	send_to_relay(&f, rps, buf, n - 1); /* cut short */
	buf[12] = 0x20;                     /* LOCAL */
	send_to_relay(&f, rps, buf, n);
	run_rounds(&f, 3);
	assert_false(readable(f.target));
	assert_int_equal(stats(&f)->bad_header, 5);
	assert_int_equal(stats(&f)->flows_total, 0);

	service_gets(&f, rps, &a, "ok");
	other = a;
	other.src = test_sockaddr("2001:db8::8", 5000);
	rps_sends(&f, rps, &other, "other");
	other.src = test_sockaddr("2001:db8::7", 5001);
	rps_sends(&f, rps, &other, "port");
	run_rounds(&f, 3);
	assert_false(readable(f.target));
	assert_int_equal(stats(&f)->bad_header, 7);
	service_gets(&f, rps, &a, "still");
	assert_in(&f, 1, 2, 7);
	close(rps);
	teardown(&f);
}

/* rpc, transparent: the service sees the visitor as the source (a loopback
 * address here, which needs no policy routing to be answered); a visitor
 * of another family than the service's is a drop, the flow not opened. */
static void rpc_sends_transparently_as_the_visitor(void **state)
{
	struct relay_visitor v = { .read_header = true, .transparent = true };
	struct proxy_addrs a = { SOCK_DGRAM, test_sockaddr("2001:db8::7", 5000),
				 test_sockaddr("2001:db8::1", 53) };
	union sockaddr_inet from;
	socklen_t len = sizeof(from);
	struct fixture f;
	char buf[16];
	int rps;

	(void)state;
	rps = setup_rpc(&f, &v);
	rps_sends(&f, rps, &a, "v6");
	run_rounds(&f, 3);
	assert_false(readable(f.target));
	assert_int_equal(stats(&f)->send_failed, 1);
	assert_int_equal(stats(&f)->flows_active, 0);
	a.src = test_sockaddr("127.0.0.9", 4321);
	a.dst = test_sockaddr("198.51.100.1", 53);
	rps_sends(&f, rps, &a, "hello");
	run_until_readable(&f, f.target);
	assert_int_equal(recvfrom(f.target, buf, sizeof(buf), 0, &from.sa, &len), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_same_sockaddr(&from, &a.src);
	client_gets(&f, rps, &from, "hi back");
	close(rps);
	teardown(&f);
}

/* The fds the context may hold, as relay.c sets them from the limit. */
static size_t fd_budget(void)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	return rl.rlim_max >= 2 * RELAY_FD_RESERVE ? rl.rlim_max - RELAY_FD_RESERVE
						   : rl.rlim_max - rl.rlim_max / 2;
}

/* With room for two flows' sockets only, a third source is dropped (no_fds)
 * and the two go on. The room is made small by the fds the owner is said to
 * hold: the budget less the reserve fd, the listener and two flows. */
static void out_of_fds_new_flows_are_dropped_and_old_ones_go_on(void **state)
{
	struct relay_config cfg = { .pipe_kb = 64, .owner_fds = (uint32_t)(fd_budget() - 4) };

	(void)state;
	third_source_dropped(&cfg, 0, offsetof(struct udp_stats, no_fds));
}

static size_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void close_ends_every_flow(void **state)
{
	struct fixture f;
	union sockaddr_inet flow;
	size_t base;
	int c[3];

	(void)state;
	setup(&f);
	base = open_fds();
	for (int i = 0; i < 3; i++) {
		c[i] = udp_bound("127.0.0.1");
		target_gets(&f, c[i], "hi", &flow);
	}
	assert_int_equal(open_fds(), base + 6);
	udp_listener_close(f.lis);
	f.lis = NULL;
	for (int i = 0; i < 3; i++)
		close(c[i]);
	assert_int_equal(open_fds(), base - 1);
	teardown(&f);
}

/* The workers run their loops: waits up to 2 s for msg at target from
 * client, sent to the pool's listener at addr. */
static void through_pool(int client, const union sockaddr_inet *addr, int target, const char *msg)
{
	struct pollfd p = { .fd = target, .events = POLLIN };
	char buf[64];

	assert_int_equal(sendto(client, msg, strlen(msg), 0, &addr->sa, sizeof(addr->in)),
			 (ssize_t)strlen(msg));
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(recv(target, buf, sizeof(buf), 0), (ssize_t)strlen(msg));
	assert_memory_equal(buf, msg, strlen(msg));
}

/* Two workers, each with its socket on the port: flows to the target,
 * then new ones to another while the old go on; the counters summed over
 * the workers; closing closes every worker's flows. */
static void a_pool_listener_retargets_sums_and_closes(void **state)
{
	struct relay_config cfg = { .pipe_kb = 64, .workers = 2 };
	union sockaddr_inet any = loopback("127.0.0.1"), target[2], addr;
	socklen_t len = sizeof(target[0]);
	struct relay_pool *p;
	struct relay_pool_udp *pu;
	struct errbuf e;
	const struct udp_stats *st;
	size_t base;
	int t[2], c[9];

	(void)state;
	assert_int_equal(relay_pool_new(&p, &cfg), 0);
	for (int i = 0; i < 2; i++) {
		t[i] = udp_bound("127.0.0.1");
		assert_int_equal(getsockname(t[i], &target[i].sa, &len), 0);
	}
	base = open_fds();
	assert_int_equal(relay_pool_listen_udp(&pu, p, &any, &target[0], NULL, NULL, &e), 0);
	relay_pool_udp_address(pu, &addr);
	for (int i = 0; i < 9; i++) {
		c[i] = udp_bound("127.0.0.1");
		if (i < 8)
			through_pool(c[i], &addr, t[0], "old");
	}
	relay_pool_udp_set_target(pu, &target[1], NULL);
	through_pool(c[8], &addr, t[1], "new");
	through_pool(c[0], &addr, t[0], "old again");
	st = relay_pool_udp_stats(pu);
	assert_int_equal(st->flows_active, 9);
	assert_int_equal(st->flows_total, 9);
	assert_int_equal(st->datagrams_in, 10);
	assert_int_equal(st->bytes_in, 8 * 3 + 3 + 9);
	relay_pool_udp_close(pu);
	for (int i = 0; i < 9; i++)
		close(c[i]);
	assert_int_equal(open_fds(), base);
	relay_pool_free(p);
	close(t[0]);
	close(t[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_flow_per_source_and_replies_find_theirs),
		cmocka_unit_test(empty_datagrams_pass),
		cmocka_unit_test(a_silent_flow_expires_and_activity_either_way_pushes_it),
		cmocka_unit_test(the_flow_cap_drops_and_counts),
		cmocka_unit_test(the_source_cap_drops_and_counts),
		cmocka_unit_test(a_listeners_own_source_cap_applies),
		cmocka_unit_test(a_datagram_too_big_is_dropped),
		cmocka_unit_test(port_unreachable_ends_the_flow),
		cmocka_unit_test(only_the_peer_opens_flows),
		cmocka_unit_test(a_dual_stack_listener_keeps_families_apart),
		cmocka_unit_test(out_of_fds_new_flows_are_dropped_and_old_ones_go_on),
		cmocka_unit_test(close_ends_every_flow),
		cmocka_unit_test(a_pool_listener_retargets_sums_and_closes),
		cmocka_unit_test(rps_prefixes_each_datagram_with_its_flows_header),
		cmocka_unit_test(the_header_counts_towards_too_big),
		cmocka_unit_test(rpc_strips_the_header_and_rebuilds_it),
		cmocka_unit_test(rpc_drops_bad_missing_and_changing_headers),
		cmocka_unit_test(rpc_sends_transparently_as_the_visitor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
