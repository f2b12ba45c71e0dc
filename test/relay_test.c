/* The relay's bookkeeping on loopback, with a clock the test moves: the idle
 * timeout and the cap per source. (relay_test.sh drives the data path.) */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "test.h"
#include "wgrp/relay.h"

static uint64_t fake_now;

static uint64_t fake_clock(void *data)
{
	(void)data;
	return fake_now;
}

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

static void a_source_past_its_share_is_reset(void **state)
{
	struct fixture f;
	int client[3], server[2];
	char c;

	(void)state;
	setup(&f, 0, 2);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_silent_connection_is_reset_after_the_idle_timeout),
		cmocka_unit_test(a_half_closed_connection_is_idle_once_its_open_side_is_silent),
		cmocka_unit_test(no_idle_timeout_keeps_silent_connections),
		cmocka_unit_test(a_source_past_its_share_is_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
