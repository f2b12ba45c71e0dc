/* The relay's bookkeeping on loopback, with a clock the test moves: the idle
 * timeout, the cap per source, and PROXY headers read and written.
 * (relay_test.sh drives the data path.) */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "fake_clock.h"
#include "test.h"
#include "wgrp/proxy_header.h"
#include "wgrp/relay.h"
#include <string.h>

struct fixture {
	struct loop *loop;
	struct relay_ctx *ctx;
	struct relay_listener *lis;
	int backend;              /* the target's listening socket */
	union sockaddr_inet addr; /* the relay's */
};

static void setup(struct fixture *f, uint32_t idle_s, uint32_t per_source)
{
	struct relay_config cfg = { .pipe_kb = 64, .idle_timeout_s = idle_s,
				    .max_conns_per_source = per_source };
	union sockaddr_inet any = { .in = { .sin_family = AF_INET,
					    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
	union sockaddr_inet target = any;
	socklen_t len = sizeof(target);
	struct errbuf e;

	fake_now = 0;
	assert_int_equal(loop_new(&f->loop), 0);
	loop_set_clock(f->loop, fake_clock, NULL);
	assert_int_equal(relay_ctx_new(&f->ctx, f->loop, &cfg), 0);
	f->backend = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->backend >= 0);
	assert_int_equal(bind(f->backend, &any.sa, sizeof(any.in)), 0);
	assert_int_equal(listen(f->backend, 16), 0);
	assert_int_equal(getsockname(f->backend, &target.sa, &len), 0);
	assert_int_equal(relay_listen(&f->lis, f->ctx, &any, &target, &e), 0);
	relay_listener_address(f->lis, &f->addr);
}

static void teardown(struct fixture *f)
{
	relay_listener_close(f->lis);
	relay_ctx_free(f->ctx);
	loop_free(f->loop);
	close(f->backend);
}

/* Runs loop rounds until fd is readable (or 2 s of rounds). */
static void run_until_readable(struct fixture *f, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (int i = 0; i < 200 && poll(&p, 1, 0) == 0; i++)
		assert_int_equal(loop_run_once(f->loop, 10), 0);
	assert_int_equal(poll(&p, 1, 0), 1);
}

/* A client through the relay and the backend's end of it, one byte each way. */
static void connect_pair(struct fixture *f, int *client, int *server)
{
	char c;

	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(*client, &f->addr.sa, sizeof(f->addr.in)), 0);
	run_until_readable(f, f->backend);
	*server = accept(f->backend, NULL, NULL);
	assert_true(*server >= 0);
	assert_int_equal(write(*client, "a", 1), 1);
	run_until_readable(f, *server);
	assert_int_equal(read(*server, &c, 1), 1);
	assert_int_equal(write(*server, "b", 1), 1);
	run_until_readable(f, *client);
	assert_int_equal(read(*client, &c, 1), 1);
}

static void run_at(struct fixture *f, uint64_t ms)
{
	fake_now = ms;
	for (int i = 0; i < 3; i++)
		assert_int_equal(loop_run_once(f->loop, 0), 0);
}

static void expect_reset(int fd)
{
	char c;

	assert_int_equal(read(fd, &c, 1), -1);
	assert_int_equal(errno, ECONNRESET);
}

static void a_silent_connection_is_reset_after_the_idle_timeout(void **state)
{
	struct fixture f;
	int client, server;

	(void)state;
	setup(&f, 2, 0);
	connect_pair(&f, &client, &server);
	/* Bytes at 1.5 s move the deadline to 3.5 s. */
	run_at(&f, 1500);
	assert_int_equal(write(client, "c", 1), 1);
	run_until_readable(&f, server);
	run_at(&f, 2100);
	assert_int_equal(relay_listener_stats(f.lis)->active, 1);
	run_at(&f, 3400);
	assert_int_equal(relay_listener_stats(f.lis)->active, 1);
	run_at(&f, 3500);
	assert_int_equal(relay_listener_stats(f.lis)->active, 0);
	assert_int_equal(relay_listener_stats(f.lis)->idle_closed, 1);
	expect_reset(client);
	close(client);
	close(server);
	teardown(&f);
}

static void a_half_closed_connection_is_idle_once_its_open_side_is_silent(void **state)
{
	struct fixture f;
	int client, server;
	char c;

	(void)state;
	setup(&f, 2, 0);
	connect_pair(&f, &client, &server);
	/* The service sends its last byte and ends its side at 1 s; the client
	 * never answers. */
	run_at(&f, 1000);
	assert_int_equal(write(server, "z", 1), 1);
	assert_int_equal(shutdown(server, SHUT_WR), 0);
	run_until_readable(&f, client);
	assert_int_equal(read(client, &c, 1), 1);
	run_until_readable(&f, client);
	assert_int_equal(read(client, &c, 1), 0);
	run_at(&f, 2900);
	assert_int_equal(relay_listener_stats(f.lis)->active, 1);
	run_at(&f, 3000);
	assert_int_equal(relay_listener_stats(f.lis)->active, 0);
	expect_reset(server);
	close(client);
	close(server);
	teardown(&f);
}

static void no_idle_timeout_keeps_silent_connections(void **state)
{
	struct fixture f;
	int client, server;

	(void)state;
	setup(&f, 0, 0);
	connect_pair(&f, &client, &server);
	run_at(&f, 48 * 3600 * 1000ULL);
	assert_int_equal(relay_listener_stats(f.lis)->active, 1);
	close(client);
	close(server);
	teardown(&f);
}

/* per_source: the option; listener_cap: the listener's own (0: none); the
 * one that applies is 2. */
static void third_connection_reset(uint32_t per_source, uint32_t listener_cap)
{
	struct fixture f;
	int client[3], server[2];
	char c;

	setup(&f, 0, per_source);
	if (listener_cap)
		relay_listener_set_source_cap(f.lis, listener_cap);
	connect_pair(&f, &client[0], &server[0]);
	connect_pair(&f, &client[1], &server[1]);
	client[2] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(client[2], &f.addr.sa, sizeof(f.addr.in)), 0);
	run_until_readable(&f, client[2]);
	assert_int_equal(read(client[2], &c, 1), -1);
	assert_int_equal(errno, ECONNRESET);
	assert_int_equal(relay_listener_stats(f.lis)->refused_source, 1);
	assert_int_equal(relay_listener_stats(f.lis)->active, 2);

	/* One ends: the source may connect again. */
	close(client[0]);
	close(client[2]);
	run_until_readable(&f, server[0]);
	close(server[0]);
	for (int i = 0; i < 20 && relay_listener_stats(f.lis)->active > 1; i++)
		assert_int_equal(loop_run_once(f.loop, 10), 0);
	connect_pair(&f, &client[0], &server[0]);
	assert_int_equal(relay_listener_stats(f.lis)->active, 2);
	for (int i = 0; i < 2; i++) {
		close(client[i]);
		close(server[i]);
	}
	teardown(&f);
}

static void a_source_past_its_share_is_reset(void **state)
{
	(void)state;
	third_connection_reset(2, 0);
}

/* A peer's own MaxConnsPerSource replaces the option for its listeners. */
static void a_listeners_own_source_cap_applies(void **state)
{
	(void)state;
	third_connection_reset(100, 2);
}

/* A client whose connection has no target yet (the relay waits for its
 * PROXY header): connected, nothing accepted behind it. */
static int connect_client(struct fixture *f)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, &f->addr.sa, sizeof(f->addr.in)), 0);
	return fd;
}

static void run_rounds(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(loop_run_once(f->loop, 5), 0);
}

static bool backend_has_pending(struct fixture *f)
{
	struct pollfd p = { .fd = f->backend, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* rpc's side: a v2 header that comes a byte at a time is read to its last
 * byte, not further, before the target is connected; the target gets the
 * visitor as a v1 line and then the visitor's bytes. */
static void a_header_in_pieces_becomes_a_v1_line(void **state)
{
	static const struct relay_visitor v1 = { .read_header = true, .send_header = 1 };
	struct proxy_addrs a = { .proto = SOCK_STREAM };
	struct fixture f;
	uint8_t hdr[PROXY_V2_MAX_LEN];
	char got[128] = "";
	ssize_t n, len;
	int client, server;

	(void)state;
	setup(&f, 0, 0);
	relay_listener_set_visitor(f.lis, &v1);
	a.src.in = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(5555) };
	inet_pton(AF_INET, "203.0.113.7", &a.src.in.sin_addr);
	a.dst.in = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(80) };
	inet_pton(AF_INET, "198.51.100.1", &a.dst.in.sin_addr);
	len = proxy_v2_build(hdr, sizeof(hdr), &a);
	assert_true(len > 0);
	client = connect_client(&f);
	for (ssize_t i = 0; i < len; i++) {
		assert_int_equal(write(client, hdr + i, 1), 1);
		run_rounds(&f, 2);
		/* Not a byte early. */
		assert_int_equal(backend_has_pending(&f), i == len - 1);
	}
	assert_int_equal(write(client, "data", 4), 4);
	server = accept(f.backend, NULL, NULL);
	assert_true(server >= 0);
	for (size_t have = 0; !strstr(got, "data") && have < sizeof(got) - 1; have += (size_t)n) {
		run_until_readable(&f, server);
		n = read(server, got + have, sizeof(got) - 1 - have);
		assert_true(n > 0);
	}
	assert_string_equal(got, "PROXY TCP4 203.0.113.7 198.51.100.1 5555 80\r\ndata");
	assert_int_equal(relay_listener_stats(f.lis)->bad_header, 0);
	close(client);
	close(server);
	teardown(&f);
}

/* A connection that does not start with a valid header, or sends none
 * within the connect timeout, is reset and counted; no target sees it. */
static void a_bad_or_missing_header_is_reset(void **state)
{
	static const struct relay_visitor v2 = { .read_header = true, .send_header = 2 };
	struct fixture f;
	int bad, silent;

	(void)state;
	setup(&f, 0, 0);
	relay_listener_set_visitor(f.lis, &v2);
	bad = connect_client(&f);
	assert_int_equal(write(bad, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	run_until_readable(&f, bad);
	expect_reset(bad);
	assert_int_equal(relay_listener_stats(f.lis)->bad_header, 1);

	silent = connect_client(&f);
	run_rounds(&f, 2); /* accepted at 0 */
	run_at(&f, RELAY_DEFAULT_CONNECT_TIMEOUT_MS - 1);
	assert_int_equal(relay_listener_stats(f.lis)->active, 1);
	run_at(&f, RELAY_DEFAULT_CONNECT_TIMEOUT_MS + 1);
	expect_reset(silent);
	assert_int_equal(relay_listener_stats(f.lis)->bad_header, 2);
	assert_int_equal(relay_listener_stats(f.lis)->active, 0);
	assert_false(backend_has_pending(&f));
	close(bad);
	close(silent);
	teardown(&f);
}

/* rps's side: the target gets a v2 header of the accepted connection (the
 * client's address, the relay's), then the client's bytes. */
static void the_target_gets_a_v2_header_first(void **state)
{
	static const struct relay_visitor v2 = { .send_header = 2 };
	struct fixture f;
	struct proxy_addrs a;
	union sockaddr_inet mine;
	socklen_t mine_len = sizeof(mine);
	uint8_t got[PROXY_V2_MAX_LEN + 4];
	size_t have = 0;
	ssize_t n, len = 0;
	int client, server;

	(void)state;
	setup(&f, 0, 0);
	relay_listener_set_visitor(f.lis, &v2);
	client = connect_client(&f);
	assert_int_equal(getsockname(client, &mine.sa, &mine_len), 0);
	assert_int_equal(write(client, "data", 4), 4);
	run_until_readable(&f, f.backend);
	server = accept(f.backend, NULL, NULL);
	assert_true(server >= 0);
	while (len <= 0 || have < (size_t)len + 4) {
		run_until_readable(&f, server);
		n = read(server, got + have, sizeof(got) - have);
		assert_true(n > 0);
		have += (size_t)n;
		len = proxy_v2_parse(got, have, &a, NULL);
		assert_true(len >= 0);
	}
	assert_int_equal(len, 16 + 12);
	assert_int_equal(a.proto, SOCK_STREAM);
	assert_memory_equal(&a.src.in.sin_addr, &mine.in.sin_addr, 4);
	assert_int_equal(a.src.in.sin_port, mine.in.sin_port);
	assert_int_equal(a.dst.in.sin_port, f.addr.in.sin_port);
	assert_memory_equal(got + len, "data", 4);
	close(client);
	close(server);
	teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_silent_connection_is_reset_after_the_idle_timeout),
		cmocka_unit_test(a_half_closed_connection_is_idle_once_its_open_side_is_silent),
		cmocka_unit_test(no_idle_timeout_keeps_silent_connections),
		cmocka_unit_test(a_source_past_its_share_is_reset),
		cmocka_unit_test(a_listeners_own_source_cap_applies),
		cmocka_unit_test(a_header_in_pieces_becomes_a_v1_line),
		cmocka_unit_test(a_bad_or_missing_header_is_reset),
		cmocka_unit_test(the_target_gets_a_v2_header_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
