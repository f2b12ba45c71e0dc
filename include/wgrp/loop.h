/* The event loop: one per daemon, owning every fd watcher, timer and signal,
 * so that no other thread and no lock is needed. Built on epoll (level
 * triggered), a binary heap of timers, and a signalfd.
 *
 * An fd is watched with the events it wants now; watching none takes it out
 * of epoll, so that a socket in error or hung up does not wake the loop while
 * its owner is not ready for it. Errors and hang-ups are delivered with
 * LOOP_ERROR/LOOP_HUP and also as readable and writable, so that the next
 * read or write reports them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum loop_event {
	LOOP_READ = 1 << 0,
	LOOP_WRITE = 1 << 1,
	LOOP_ERROR = 1 << 2,
	LOOP_HUP = 1 << 3,
};

struct loop;
struct loop_timer;

typedef void loop_io_fn(struct loop *l, int fd, unsigned events, void *data);
typedef void loop_timer_fn(struct loop *l, struct loop_timer *t);
typedef void loop_signal_fn(struct loop *l, int signo, void *data);
typedef uint64_t loop_clock_fn(void *data);

/* Embedded in its owner, which keeps it alive while it is armed. */
struct loop_timer {
	uint64_t due;  /* loop time in ms */
	uint64_t seq;  /* arming order: ties fire first-armed first */
	size_t slot;   /* heap index + 1; 0 when not armed */
	loop_timer_fn *fn;
	void *data;
};

/* Returns 0 with *out set, or a negative errno. */
int loop_new(struct loop **out);
/* Frees the loop; the fds it watched stay open (their owners close them). */
void loop_free(struct loop *l);

/* Replaces the clock (ms, monotonic) for tests; default CLOCK_MONOTONIC. */
void loop_set_clock(struct loop *l, loop_clock_fn *now, void *data);
uint64_t loop_now(struct loop *l);

/* Watches fd for events (LOOP_READ|LOOP_WRITE, or 0 for now none), calling fn.
 * Returns 0 or a negative errno. */
int loop_add(struct loop *l, int fd, unsigned events, loop_io_fn *fn, void *data);
/* Changes what a watched fd waits for; a no-op when unchanged. */
int loop_set_events(struct loop *l, int fd, unsigned events);
/* Forgets fd; call before closing it. Events of this round still pending for
 * it are dropped, even when its number is watched again in the same round
 * (each watch carries a generation in its epoll data). */
void loop_del(struct loop *l, int fd);
/* Forgets fd as loop_del() does and closes it, sparing the epoll_ctl():
 * closing the last fd of a file takes it out of epoll. Where another fd
 * still refers to the file (a fork in progress), its late events carry the
 * old generation and are dropped. */
void loop_close(struct loop *l, int fd);

void loop_timer_init(struct loop_timer *t, loop_timer_fn *fn, void *data);
/* (Re)arms t to fire once, after_ms from now. A timer armed from a timer
 * callback fires in a later round, even with 0 ms. Returns 0 or -ENOMEM. */
int loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t after_ms);
/* Disarms t; harmless when it is not armed. */
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->slot != 0;
}

/* Blocks signo and delivers it to fn from the loop. Returns 0 or -errno. */
int loop_add_signal(struct loop *l, int signo, loop_signal_fn *fn, void *data);

/* Runs until loop_stop(). Returns 0, or a negative errno if epoll failed. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
/* One round: waits up to timeout_ms (-1: until the next timer or event), then
 * runs ready fds and due timers. Returns 0 or a negative errno. */
int loop_run_once(struct loop *l, int timeout_ms);
