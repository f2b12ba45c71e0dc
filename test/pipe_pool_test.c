#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "test.h"
#include "wgrp/pipe_pool.h"

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void pipes_are_sized_and_cut(void **state)
{
	struct pipe_pool *p;
	struct pipe_pair *pipe;

	(void)state;
	assert_int_equal(pipe_pool_new(&p, 256 * 1024, 128 * 1024, 4), 0);
	assert_int_equal(pipe_pool_size(p), 128 * 1024);
	assert_int_equal(pipe_pool_get(p, &pipe), 0);
	assert_int_equal(pipe->cap, (size_t)fcntl(pipe->wr, F_GETPIPE_SZ));
	assert_int_equal(pipe->cap, 128 * 1024);
	assert_int_equal(pipe->data, 0);
	assert_true(fcntl(pipe->rd, F_GETFL) & O_NONBLOCK);
	pipe_pool_put(p, pipe);
	pipe_pool_free(p);

	assert_int_equal(pipe_pool_new(&p, 1, 0, 4), 0);
	assert_int_equal(pipe_pool_size(p), 4096);
	pipe_pool_free(p);
}

static void returned_pipes_are_reused(void **state)
{
	struct pipe_pool *p;
	struct pipe_pair *a, *b;

	(void)state;
	assert_int_equal(pipe_pool_new(&p, 65536, 0, 4), 0);
	assert_int_equal(pipe_pool_get(p, &a), 0);
	assert_int_equal(pipe_pool_lent(p), 1);
	pipe_pool_put(p, a);
	assert_int_equal(pipe_pool_lent(p), 0);
	assert_int_equal(pipe_pool_idle(p), 1);
	assert_int_equal(pipe_pool_get(p, &b), 0);
	assert_ptr_equal(a, b);
	pipe_pool_put(p, b);
	pipe_pool_free(p);
}

static void idle_pipes_are_bounded_and_trimmed(void **state)
{
	enum { N = 10 };
	struct pipe_pool *p;
	struct pipe_pair *pipes[N];
	int base = open_fds();

	(void)state;
	assert_int_equal(pipe_pool_new(&p, 65536, 0, 4), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(pipe_pool_get(p, &pipes[i]), 0);
	assert_int_equal(open_fds(), base + 2 * N);
	for (int i = 0; i < N; i++)
		pipe_pool_put(p, pipes[i]);
	assert_int_equal(pipe_pool_idle(p), 4);
	assert_int_equal(open_fds(), base + 2 * 4);

	/* One pipe used since: that many stay, the rest were not needed. */
	pipe_pool_trim(p);
	assert_int_equal(pipe_pool_get(p, &pipes[0]), 0);
	pipe_pool_put(p, pipes[0]);
	pipe_pool_trim(p);
	assert_int_equal(pipe_pool_idle(p), 1);
	pipe_pool_trim(p);
	assert_int_equal(pipe_pool_idle(p), 0);
	assert_int_equal(open_fds(), base);
	pipe_pool_free(p);
}

static void idle_pipes_can_all_be_dropped(void **state)
{
	struct pipe_pool *p;
	struct pipe_pair *pipes[3];
	int base = open_fds();

	(void)state;
	assert_int_equal(pipe_pool_new(&p, 65536, 0, 4), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pipe_pool_get(p, &pipes[i]), 0);
	pipe_pool_put(p, pipes[0]);
	pipe_pool_put(p, pipes[1]);
	pipe_pool_drop_idle(p);
	assert_int_equal(pipe_pool_idle(p), 0);
	assert_int_equal(pipe_pool_lent(p), 1);
	assert_int_equal(open_fds(), base + 2);
	pipe_pool_put(p, pipes[2]);
	pipe_pool_trim(p);
	assert_int_equal(pipe_pool_idle(p), 1);
	pipe_pool_free(p);
	assert_int_equal(open_fds(), base);
}

static void killed_pipes_are_closed(void **state)
{
	struct pipe_pool *p;
	struct pipe_pair *pipe;
	int base = open_fds();

	(void)state;
	assert_int_equal(pipe_pool_new(&p, 65536, 0, 4), 0);
	assert_int_equal(pipe_pool_get(p, &pipe), 0);
	assert_int_equal(write(pipe->wr, "data", 4), 4);
	pipe_pool_kill(p, pipe);
	assert_int_equal(pipe_pool_lent(p), 0);
	assert_int_equal(pipe_pool_idle(p), 0);
	assert_int_equal(open_fds(), base);
	pipe_pool_free(p);
}

/* Growth is bounded in count and in size, and a large pipe leaves the
 * count when it is closed, whether from the idle list or killed. */
static void pipes_grow_within_bounds(void **state)
{
	struct pipe_pool *p;
	struct pipe_pair *a, *b, *c;

	(void)state;
	assert_int_equal(pipe_pool_new(&p, 65536, 0, 4), 0);
	assert_int_equal(pipe_pool_get(p, &a), 0);
	assert_int_equal(pipe_pool_grow(p, a), -ENOSPC); /* no growth by default */
	pipe_pool_allow_growth(p, 1024 * 1024, 256 * 1024, 2);
	assert_int_equal(pipe_pool_get(p, &b), 0);
	assert_int_equal(pipe_pool_get(p, &c), 0);
	assert_int_equal(pipe_pool_grow(p, a), 0);
	assert_int_equal(a->cap, 256 * 1024);
	assert_int_equal(a->cap, (size_t)fcntl(a->wr, F_GETPIPE_SZ));
	assert_int_equal(pipe_pool_grow(p, a), -ENOSPC); /* large already */
	assert_int_equal(pipe_pool_grow(p, b), 0);
	assert_int_equal(pipe_pool_grow(p, c), -ENOSPC); /* two at most */
	assert_int_equal(c->cap, 65536);
	assert_int_equal(pipe_pool_large(p), 2);

	/* A returned large pipe is lent again as it is. */
	pipe_pool_put(p, a);
	assert_int_equal(pipe_pool_get(p, &a), 0);
	assert_int_equal(a->cap, 256 * 1024);
	pipe_pool_kill(p, b);
	assert_int_equal(pipe_pool_large(p), 1);
	assert_int_equal(pipe_pool_grow(p, c), 0);
	pipe_pool_put(p, a);
	pipe_pool_put(p, c);
	pipe_pool_drop_idle(p);
	assert_int_equal(pipe_pool_large(p), 0);
	pipe_pool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pipes_are_sized_and_cut),
		cmocka_unit_test(returned_pipes_are_reused),
		cmocka_unit_test(idle_pipes_are_bounded_and_trimmed),
		cmocka_unit_test(idle_pipes_can_all_be_dropped),
		cmocka_unit_test(killed_pipes_are_closed),
		cmocka_unit_test(pipes_grow_within_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
