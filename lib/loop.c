#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "wgrp/loop.h"

#define MAX_EVENTS 256

struct watch {
	loop_io_fn *fn;
	void *data;
	unsigned events; /* LOOP_READ|LOOP_WRITE wanted; 0: not in epoll */
	uint32_t gen;    /* which watch of this fd number, as in its epoll data */
};

struct loop {
	int epfd;
	struct watch *watches; /* indexed by fd */
	size_t n_watches;
	struct loop_timer **heap;
	size_t n_timers, heap_cap;
	uint64_t timer_seq;
	uint32_t watch_gen;
	loop_clock_fn *clock;
	void *clock_data;
	int sigfd;
	sigset_t sigs;
	struct {
		loop_signal_fn *fn;
		void *data;
	} signals[_NSIG];
	bool stop;
};

static uint64_t monotonic_ms(void *data)
{
	struct timespec ts;

	(void)data;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int loop_new(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;

		free(l);
		return r;
	}
	l->sigfd = -1;
	l->clock = monotonic_ms;
	sigemptyset(&l->sigs);
	*out = l;
	return 0;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->sigfd >= 0)
		close(l->sigfd);
	close(l->epfd);
	free(l->watches);
	free(l->heap);
	free(l);
}

void loop_set_clock(struct loop *l, loop_clock_fn *now, void *data)
{
	l->clock = now;
	l->clock_data = data;
}

uint64_t loop_now(struct loop *l)
{
	return l->clock(l->clock_data);
}

static uint32_t epoll_bits(unsigned events)
{
	return (events & LOOP_READ ? EPOLLIN : 0u) | (events & LOOP_WRITE ? EPOLLOUT : 0u);
}

int loop_add(struct loop *l, int fd, unsigned events, loop_io_fn *fn, void *data)
{
	if (fd < 0)
		return -EBADF;
	if ((size_t)fd >= l->n_watches) {
		size_t n = l->n_watches ? l->n_watches : 64;
		struct watch *w;

		while (n <= (size_t)fd)
			n *= 2;
		w = reallocarray(l->watches, n, sizeof(*w));
		if (!w)
			return -ENOMEM;
		memset(w + l->n_watches, 0, (n - l->n_watches) * sizeof(*w));
		l->watches = w;
		l->n_watches = n;
	}
	if (l->watches[fd].fn)
		return -EEXIST;
	l->watches[fd] = (struct watch){ .fn = fn, .data = data, .gen = ++l->watch_gen };
	return loop_set_events(l, fd, events);
}

int loop_set_events(struct loop *l, int fd, unsigned events)
{
	struct watch *w = &l->watches[fd];
	struct epoll_event ev = { .events = epoll_bits(events),
				  .data.u64 = (uint64_t)w->gen << 32 | (uint32_t)fd };
	int op;

	events &= LOOP_READ | LOOP_WRITE;
	if (events == w->events)
		return 0;
	op = !events ? EPOLL_CTL_DEL : w->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
		return -errno;
	w->events = events;
	return 0;
}

void loop_del(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->n_watches || !l->watches[fd].fn)
		return;
	loop_set_events(l, fd, 0);
	l->watches[fd] = (struct watch){ 0 };
}

void loop_close(struct loop *l, int fd)
{
	if (fd >= 0 && (size_t)fd < l->n_watches)
		l->watches[fd] = (struct watch){ 0 };
	close(fd);
}

/* The heap orders timers by due time, then by arming order. */
static bool earlier(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_place(struct loop *l, struct loop_timer *t, size_t i)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0 && earlier(t, l->heap[(i - 1) / 2])) {
		heap_place(l, l->heap[(i - 1) / 2], i);
		i = (i - 1) / 2;
	}
	heap_place(l, t, i);
}

static void sift_down(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->n_timers)
			break;
		if (c + 1 < l->n_timers && earlier(l->heap[c + 1], l->heap[c]))
			c++;
		if (!earlier(l->heap[c], t))
			break;
		heap_place(l, l->heap[c], i);
		i = c;
	}
	heap_place(l, t, i);
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn *fn, void *data)
{
	*t = (struct loop_timer){ .fn = fn, .data = data };
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	size_t i;
	struct loop_timer *last;

	if (!t->slot)
		return;
	i = t->slot - 1;
	t->slot = 0;
	last = l->heap[--l->n_timers];
	if (last == t)
		return;
	heap_place(l, last, i);
	sift_up(l, i);
	sift_down(l, last->slot - 1);
}

int loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t after_ms)
{
	loop_timer_stop(l, t);
	if (l->n_timers == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : 16;
		struct loop_timer **heap = reallocarray(l->heap, cap, sizeof(*heap));

		if (!heap)
			return -ENOMEM;
		l->heap = heap;
		l->heap_cap = cap;
	}
	t->due = loop_now(l) + after_ms;
	t->seq = ++l->timer_seq;
	heap_place(l, t, l->n_timers++);
	sift_up(l, l->n_timers - 1);
	return 0;
}

/* Fires the timers due now that were armed before this round began. */
static void run_timers(struct loop *l)
{
	uint64_t now = loop_now(l), last_seq = l->timer_seq;

	while (l->n_timers && l->heap[0]->due <= now && l->heap[0]->seq <= last_seq) {
		struct loop_timer *t = l->heap[0];

		loop_timer_stop(l, t);
		t->fn(l, t);
	}
}

static void on_signal(struct loop *l, int fd, unsigned events, void *data)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)data;
	while (read(fd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo < _NSIG && l->signals[si.ssi_signo].fn)
			l->signals[si.ssi_signo].fn(l, (int)si.ssi_signo, l->signals[si.ssi_signo].data);
}

int loop_add_signal(struct loop *l, int signo, loop_signal_fn *fn, void *data)
{
	int fd, r;

	if (signo <= 0 || signo >= _NSIG)
		return -EINVAL;
	sigaddset(&l->sigs, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigs, NULL) < 0)
		return -errno;
	fd = signalfd(l->sigfd, &l->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (l->sigfd < 0) {
		r = loop_add(l, fd, LOOP_READ, on_signal, NULL);
		if (r < 0) {
			close(fd);
			return r;
		}
		l->sigfd = fd;
	}
	l->signals[signo].fn = fn;
	l->signals[signo].data = data;
	return 0;
}

static int next_timeout(struct loop *l, int timeout_ms)
{
	uint64_t now, due;

	if (!l->n_timers)
		return timeout_ms;
	now = loop_now(l);
	due = l->heap[0]->due;
	if (due <= now)
		return 0;
	if (timeout_ms >= 0 && due - now > (uint64_t)timeout_ms)
		return timeout_ms;
	return due - now > INT32_MAX ? INT32_MAX : (int)(due - now);
}

int loop_run_once(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(l->epfd, evs, MAX_EVENTS, next_timeout(l, timeout_ms));

	if (n < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32), e = evs[i].events;
		unsigned events = 0;
		struct watch *w;

		/* An earlier callback of this round may have dropped fd, and maybe
		 * reused its number for a new watch: the event was for the old one
		 * (a fresh connect would be taken as done). */
		if ((size_t)fd >= l->n_watches || !(w = &l->watches[fd])->fn || w->gen != gen)
			continue;
		if (e & EPOLLIN)
			events |= LOOP_READ;
		if (e & EPOLLOUT)
			events |= LOOP_WRITE;
		if (e & EPOLLERR)
			events |= LOOP_ERROR | LOOP_READ | LOOP_WRITE;
		if (e & EPOLLHUP)
			events |= LOOP_HUP | LOOP_READ | LOOP_WRITE;
		w->fn(l, fd, events, w->data);
	}
	run_timers(l);
	return 0;
}

int loop_run(struct loop *l)
{
	int r = 0;

	l->stop = false;
	while (!l->stop && r == 0)
		r = loop_run_once(l, -1);
	return r;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
