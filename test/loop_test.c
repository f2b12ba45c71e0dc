#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "fake_clock.h"
#include "test.h"
#include "wgrp/loop.h"

struct record {
	char order[32];
	size_t n;
};

struct tagged_timer {
	struct loop_timer t;
	char tag;
	struct record *rec;
};

static void note_fire(struct loop *l, struct loop_timer *t)
{
	struct tagged_timer *tt = t->data;

	(void)l;
	tt->rec->order[tt->rec->n++] = tt->tag;
}

static struct loop *fake_loop(void)
{
	struct loop *l;

	assert_int_equal(loop_new(&l), 0);
	fake_now = 1000;
	loop_set_clock(l, fake_clock, NULL);
	return l;
}

static void arm(struct loop *l, struct tagged_timer *tt, struct record *rec, char tag, uint64_t ms)
{
	tt->tag = tag;
	tt->rec = rec;
	loop_timer_init(&tt->t, note_fire, tt);
	assert_int_equal(loop_timer_start(l, &tt->t, ms), 0);
}

static void timers_fire_in_due_order_when_due(void **state)
{
	struct record rec = { 0 };
	struct tagged_timer a, b, c, d;
	struct loop *l = fake_loop();

	(void)state;
	arm(l, &c, &rec, 'c', 300);
	arm(l, &a, &rec, 'a', 100);
	arm(l, &b, &rec, 'b', 200);
	arm(l, &d, &rec, 'd', 200); /* same time as b: armed later, fires later */
	assert_int_equal(loop_run_once(l, 0), 0);
	assert_string_equal(rec.order, "");
	fake_now += 99;
	loop_run_once(l, 0);
	assert_string_equal(rec.order, "");
	fake_now += 1;
	loop_run_once(l, 0);
	assert_string_equal(rec.order, "a");
	fake_now += 1000;
	loop_run_once(l, 0);
	assert_string_equal(rec.order, "abdc");
	assert_false(loop_timer_armed(&a.t));
	loop_free(l);
}

static void stopped_timers_do_not_fire_and_restart_moves_them(void **state)
{
	struct record rec = { 0 };
	struct tagged_timer a, b, c;
	struct loop *l = fake_loop();

	(void)state;
	arm(l, &a, &rec, 'a', 100);
	arm(l, &b, &rec, 'b', 200);
	arm(l, &c, &rec, 'c', 300);
	loop_timer_stop(l, &b.t);
	loop_timer_stop(l, &b.t); /* twice is harmless */
	assert_int_equal(loop_timer_start(l, &a.t, 400), 0); /* moved after c */
	fake_now += 1000;
	loop_run_once(l, 0);
	assert_string_equal(rec.order, "ca");
	loop_free(l);
}

static void rearm_self(struct loop *l, struct loop_timer *t)
{
	struct tagged_timer *tt = t->data;

	tt->rec->order[tt->rec->n++] = tt->tag;
	if (tt->rec->n < 3)
		loop_timer_start(l, t, 0);
}

/* A timer re-armed with 0 ms from its callback must wait for the next round,
 * or the loop would never get back to its fds. */
static void zero_delay_rearm_fires_once_per_round(void **state)
{
	struct record rec = { 0 };
	struct tagged_timer a = { .tag = 'a', .rec = &rec };
	struct loop *l = fake_loop();

	(void)state;
	loop_timer_init(&a.t, rearm_self, &a);
	loop_timer_start(l, &a.t, 0);
	loop_run_once(l, 0);
	assert_string_equal(rec.order, "a");
	loop_run_once(l, 0);
	assert_string_equal(rec.order, "aa");
	loop_run_once(l, 0);
	loop_run_once(l, 0);
	assert_string_equal(rec.order, "aaa");
	loop_free(l);
}

struct fired {
	uint64_t last_due;
	int count;
};

static void check_order(struct loop *l, struct loop_timer *t)
{
	struct fired *f = t->data;

	(void)l;
	assert_true(t->due >= f->last_due);
	f->last_due = t->due;
	f->count++;
}

static void many_timers_keep_heap_order(void **state)
{
	enum { N = 1000 };
	static struct loop_timer t[N];
	struct fired f = { 0 };
	struct loop *l = fake_loop();
	int stopped = 0;

	(void)state;
	/* Armed in a scrambled order, every third stopped, moved about: they
	 * must fire in due order, and only those still armed. */
	for (int i = 0; i < N; i++) {
		int k = (i * 7919) % N;

		loop_timer_init(&t[k], check_order, &f);
		assert_int_equal(loop_timer_start(l, &t[k], (uint64_t)(k % 97) * 10 + 1), 0);
	}
	for (int k = 0; k < N; k += 3, stopped++)
		loop_timer_stop(l, &t[k]);
	for (int k = 1; k < N; k += 5)
		if (loop_timer_armed(&t[k]))
			loop_timer_start(l, &t[k], (uint64_t)(k % 13) * 10);
	for (int step = 0; step < 100; step++) {
		fake_now += 10;
		loop_run_once(l, 0);
	}
	assert_int_equal(f.count, N - stopped);
	loop_free(l);
}

static void on_readable(struct loop *l, int fd, unsigned events, void *data)
{
	char c;

	(void)l;
	assert_true(events & LOOP_READ);
	assert_int_equal(read(fd, &c, 1), 1);
	*(char *)data = c;
}

static void fds_are_watched_for_what_they_want(void **state)
{
	struct loop *l;
	int p[2];
	char got = 0;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop_add(l, p[0], LOOP_READ, on_readable, &got), 0);
	assert_int_equal(loop_add(l, p[0], LOOP_READ, on_readable, &got), -EEXIST);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(loop_run_once(l, 1000), 0);
	assert_int_equal(got, 'x');

	/* Wanting nothing: the data waits. */
	got = 0;
	assert_int_equal(loop_set_events(l, p[0], 0), 0);
	assert_int_equal(write(p[1], "y", 1), 1);
	loop_run_once(l, 0);
	assert_int_equal(got, 0);
	assert_int_equal(loop_set_events(l, p[0], LOOP_READ), 0);
	loop_run_once(l, 1000);
	assert_int_equal(got, 'y');

	loop_del(l, p[0]);
	got = 0;
	assert_int_equal(write(p[1], "z", 1), 1);
	loop_run_once(l, 0);
	assert_int_equal(got, 0);
	close(p[0]);
	close(p[1]);
	loop_free(l);
}

static void on_hup(struct loop *l, int fd, unsigned events, void *data)
{
	(void)l;
	(void)fd;
	*(unsigned *)data = events;
}

static void hang_up_comes_as_readable(void **state)
{
	struct loop *l;
	unsigned events = 0;
	int p[2];

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop_add(l, p[0], LOOP_READ, on_hup, &events), 0);
	close(p[1]);
	loop_run_once(l, 1000);
	assert_true(events & LOOP_HUP);
	assert_true(events & LOOP_READ);
	loop_del(l, p[0]);
	close(p[0]);
	loop_free(l);
}

/* Two pipes readable in the same round; whichever callback runs first closes
 * the other pipe's read end and puts a fresh, empty pipe on its fd number,
 * as accept() reuses a number a callback has just closed. */
struct reuse {
	int rd[2], wr[2];
	int fresh[2];
	unsigned first_calls, fresh_calls;
};

static void on_fresh(struct loop *l, int fd, unsigned events, void *data)
{
	(void)l;
	(void)fd;
	(void)events;
	((struct reuse *)data)->fresh_calls++;
}

static void on_first(struct loop *l, int fd, unsigned events, void *data)
{
	struct reuse *r = data;
	int other = fd == r->rd[0] ? 1 : 0;

	(void)events;
	if (r->first_calls++)
		return;
	loop_del(l, r->rd[other]);
	assert_int_equal(pipe(r->fresh), 0);
	assert_int_equal(dup2(r->fresh[0], r->rd[other]), r->rd[other]);
	close(r->fresh[0]);
	r->fresh[0] = r->rd[other];
	assert_int_equal(loop_add(l, r->fresh[0], LOOP_READ, on_fresh, r), 0);
}

static void an_event_of_a_closed_fd_does_not_reach_its_reuser(void **state)
{
	struct reuse r = { 0 };
	struct loop *l;
	int p[2];

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe(p), 0);
		r.rd[i] = p[0];
		r.wr[i] = p[1];
		assert_int_equal(loop_add(l, r.rd[i], LOOP_READ, on_first, &r), 0);
		assert_int_equal(write(r.wr[i], "x", 1), 1);
	}
	assert_int_equal(loop_run_once(l, 1000), 0);
	assert_int_equal(r.first_calls, 1);
	/* The fresh pipe has nothing to read: the old fd's event is not its. */
	assert_int_equal(r.fresh_calls, 0);

	/* It is watched all the same. */
	assert_int_equal(write(r.fresh[1], "y", 1), 1);
	assert_int_equal(loop_run_once(l, 1000), 0);
	assert_int_equal(r.fresh_calls, 1);
	for (int i = 0; i < 2; i++) {
		loop_del(l, r.rd[i]);
		close(r.rd[i]);
		close(r.wr[i]);
	}
	close(r.fresh[1]);
	loop_free(l);
}

/* loop_close() spares the epoll_ctl(): the number may be watched again at
 * once, and a copy of the old fd that keeps its file in epoll (as a fork in
 * progress does) sends nothing to the new watcher. */
static void a_closed_fd_may_be_watched_again(void **state)
{
	struct reuse r = { 0 };
	struct loop *l;
	int old[2], copy;
	char got = 0;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(pipe(old), 0);
	copy = dup(old[0]);
	assert_true(copy >= 0);
	assert_int_equal(loop_add(l, old[0], LOOP_READ, on_readable, &got), 0);
	loop_close(l, old[0]);
	assert_int_equal(write(old[1], "x", 1), 1);

	/* The lowest free number: the one just closed. */
	assert_int_equal(pipe(r.fresh), 0);
	assert_int_equal(r.fresh[0], old[0]);
	assert_int_equal(loop_add(l, r.fresh[0], LOOP_READ, on_fresh, &r), 0);
	assert_int_equal(loop_run_once(l, 0), 0);
	assert_int_equal(got, 0);
	assert_int_equal(r.fresh_calls, 0);

	assert_int_equal(write(r.fresh[1], "y", 1), 1);
	assert_int_equal(loop_run_once(l, 1000), 0);
	assert_int_equal(r.fresh_calls, 1);
	loop_close(l, r.fresh[0]);
	close(r.fresh[1]);
	close(copy);
	close(old[1]);
	loop_free(l);
}

static void stop_on_signal(struct loop *l, int signo, void *data)
{
	*(int *)data = signo;
	loop_stop(l);
}

static void signals_arrive_through_the_loop(void **state)
{
	struct loop *l;
	int got = 0;

	(void)state;
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_signal(l, SIGUSR2, stop_on_signal, &got), 0);
	raise(SIGUSR2);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(got, SIGUSR2);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(timers_fire_in_due_order_when_due),
		cmocka_unit_test(stopped_timers_do_not_fire_and_restart_moves_them),
		cmocka_unit_test(zero_delay_rearm_fires_once_per_round),
		cmocka_unit_test(many_timers_keep_heap_order),
		cmocka_unit_test(fds_are_watched_for_what_they_want),
		cmocka_unit_test(hang_up_comes_as_readable),
		cmocka_unit_test(an_event_of_a_closed_fd_does_not_reach_its_reuser),
		cmocka_unit_test(a_closed_fd_may_be_watched_again),
		cmocka_unit_test(signals_arrive_through_the_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
