#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "wgrp/pipe_pool.h"

struct pipe_pool {
	size_t size;
	size_t keep;
	size_t large_size, large_max, n_large;
	bool growth_failed; /* since the last trim */
	struct pipe_pair *idle;
	size_t n_idle;
	size_t n_lent;
	size_t unused; /* the fewest idle pipes since the last trim */
};

/* The kernel's pipe buffers are whole pages, one page at least. */
#define PIPE_MIN_SIZE 4096

static size_t bounded(size_t size, size_t max_size)
{
	if (max_size && size > max_size)
		size = max_size;
	return size < PIPE_MIN_SIZE ? PIPE_MIN_SIZE : size;
}

int pipe_pool_new(struct pipe_pool **out, size_t size, size_t max_size, size_t keep)
{
	struct pipe_pool *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->size = bounded(size, max_size);
	p->keep = keep;
	*out = p;
	return 0;
}

void pipe_pool_allow_growth(struct pipe_pool *p, size_t size, size_t max_size, size_t count)
{
	p->large_size = bounded(size, max_size);
	p->large_max = count;
}

int pipe_pool_grow(struct pipe_pool *p, struct pipe_pair *pipe)
{
	int r;

	if (pipe->large || p->n_large >= p->large_max || p->growth_failed ||
	    p->large_size <= pipe->cap)
		return -ENOSPC;
	r = fcntl(pipe->wr, F_SETPIPE_SZ, (int)p->large_size);
	if (r < 0) {
		p->growth_failed = true;
		return -errno;
	}
	pipe->cap = (size_t)r;
	pipe->large = true;
	p->n_large++;
	return 0;
}

static void close_pipe(struct pipe_pool *p, struct pipe_pair *pipe)
{
	if (pipe->large)
		p->n_large--;
	close(pipe->rd);
	close(pipe->wr);
	free(pipe);
}

void pipe_pool_free(struct pipe_pool *p)
{
	if (!p)
		return;
	while (p->idle) {
		struct pipe_pair *next = p->idle->next;

		close_pipe(p, p->idle);
		p->idle = next;
	}
	free(p);
}

size_t pipe_pool_size(const struct pipe_pool *p)
{
	return p->size;
}

int pipe_pool_get(struct pipe_pool *p, struct pipe_pair **out)
{
	struct pipe_pair *pipe = p->idle;
	int fds[2], r;

	if (pipe) {
		p->idle = pipe->next;
		p->n_idle--;
		if (p->unused > p->n_idle)
			p->unused = p->n_idle;
	} else {
		pipe = malloc(sizeof(*pipe));
		if (!pipe)
			return -ENOMEM;
		if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
			r = -errno;
			free(pipe);
			return r;
		}
		/* Failure leaves the default size (64 KiB), e.g. past the user's
		 * pipe-user-pages-soft quota: smaller, still correct. */
		r = fcntl(fds[1], F_SETPIPE_SZ, (int)p->size);
		pipe->cap = (size_t)(r > 0 ? r : fcntl(fds[1], F_GETPIPE_SZ));
		pipe->large = false;
		pipe->rd = fds[0];
		pipe->wr = fds[1];
	}
	pipe->data = 0;
	pipe->next = NULL;
	p->n_lent++;
	*out = pipe;
	return 0;
}

void pipe_pool_put(struct pipe_pool *p, struct pipe_pair *pipe)
{
	p->n_lent--;
	if (p->n_idle >= p->keep) {
		close_pipe(p, pipe);
		return;
	}
	pipe->next = p->idle;
	p->idle = pipe;
	p->n_idle++;
}

void pipe_pool_kill(struct pipe_pool *p, struct pipe_pair *pipe)
{
	p->n_lent--;
	close_pipe(p, pipe);
}

/* Closes up to n idle pipes. */
static void close_idle(struct pipe_pool *p, size_t n)
{
	for (; n && p->idle; n--) {
		struct pipe_pair *next = p->idle->next;

		close_pipe(p, p->idle);
		p->idle = next;
		p->n_idle--;
	}
}

void pipe_pool_trim(struct pipe_pool *p)
{
	close_idle(p, p->unused);
	p->unused = p->n_idle;
	p->growth_failed = false;
}

void pipe_pool_drop_idle(struct pipe_pool *p)
{
	close_idle(p, p->n_idle);
	p->unused = 0;
}

size_t pipe_pool_lent(const struct pipe_pool *p)
{
	return p->n_lent;
}

size_t pipe_pool_idle(const struct pipe_pool *p)
{
	return p->n_idle;
}

size_t pipe_pool_large(const struct pipe_pool *p)
{
	return p->n_large;
}
