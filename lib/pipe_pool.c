#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "wgrp/pipe_pool.h"

struct pipe_pool {
	size_t size;
	size_t keep;
	struct pipe_pair *idle;
	size_t n_idle;
	size_t n_lent;
	size_t unused; /* the fewest idle pipes since the last trim */
};

/* The kernel's pipe buffers are whole pages, one page at least. */
#define PIPE_MIN_SIZE 4096

int pipe_pool_new(struct pipe_pool **out, size_t size, size_t max_size, size_t keep)
{
	struct pipe_pool *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return -ENOMEM;
	if (max_size && size > max_size)
		size = max_size;
	p->size = size < PIPE_MIN_SIZE ? PIPE_MIN_SIZE : size;
	p->keep = keep;
	*out = p;
	return 0;
}

static void close_pipe(struct pipe_pair *pipe)
{
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

		close_pipe(p->idle);
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
	int fds[2];

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
			int r = -errno;

			free(pipe);
			return r;
		}
		/* Failure leaves the default size (64 KiB), e.g. past the user's
		 * pipe-user-pages-soft quota: smaller, still correct. */
		fcntl(fds[1], F_SETPIPE_SZ, (int)p->size);
		pipe->cap = (size_t)fcntl(fds[1], F_GETPIPE_SZ);
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
		close_pipe(pipe);
		return;
	}
	pipe->next = p->idle;
	p->idle = pipe;
	p->n_idle++;
}

void pipe_pool_kill(struct pipe_pool *p, struct pipe_pair *pipe)
{
	p->n_lent--;
	close_pipe(pipe);
}

/* Closes up to n idle pipes. */
static void close_idle(struct pipe_pool *p, size_t n)
{
	for (; n && p->idle; n--) {
		struct pipe_pair *next = p->idle->next;

		close_pipe(p->idle);
		p->idle = next;
		p->n_idle--;
	}
}

void pipe_pool_trim(struct pipe_pool *p)
{
	close_idle(p, p->unused);
	p->unused = p->n_idle;
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
