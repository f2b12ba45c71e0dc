/* Pipes for splice(), lent to a relay direction only while it has data in
 * flight and given back as soon as it is empty (HAProxy's model), so that
 * idle connections cost no pipe fds. Returned pipes are kept for reuse up to
 * a bound; beyond it they are closed. A bounded number of pipes may grow
 * for bulk transfers: fewer, larger splices per byte. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct pipe_pair {
	int rd, wr;
	size_t cap;  /* what the kernel granted */
	size_t data; /* bytes in the pipe, kept by the user */
	bool large;  /* grown by pipe_pool_grow() */
	struct pipe_pair *next; /* in the pool's idle list */
};

struct pipe_pool;

/* size: the wanted capacity in bytes, raised to the kernel's minimum and cut
 * to max_size (/proc/sys/fs/pipe-max-size for an unprivileged process; 0: no
 * cut). keep: how many idle pipes to keep. Returns 0 or -ENOMEM. */
int pipe_pool_new(struct pipe_pool **out, size_t size, size_t max_size, size_t keep);
/* Closes the idle pipes; every lent pipe must have been returned. */
void pipe_pool_free(struct pipe_pool *p);

/* The capacity every pipe of the pool is given. */
size_t pipe_pool_size(const struct pipe_pool *p);

/* Lets up to count pipes grow to size bytes (cut to max_size as in
 * pipe_pool_new()); none grows by default. */
void pipe_pool_allow_growth(struct pipe_pool *p, size_t size, size_t max_size, size_t count);
/* Grows a lent pipe to the large size. Returns 0; -ENOSPC when it is large
 * already, the pool allows no more large pipes, or growing failed since the
 * last trim; or F_SETPIPE_SZ's -errno (EPERM past the user's
 * /proc/sys/fs/pipe-user-pages-soft), which stops growth until the next
 * trim rather than costing a failing call per read. */
int pipe_pool_grow(struct pipe_pool *p, struct pipe_pair *pipe);

/* Lends a pipe with no data in it. Returns 0, or a negative errno (EMFILE
 * and ENFILE when out of fds). */
int pipe_pool_get(struct pipe_pool *p, struct pipe_pair **out);
/* Takes back an empty pipe. */
void pipe_pool_put(struct pipe_pool *p, struct pipe_pair *pipe);
/* Closes a pipe that may still hold data (its connection is gone). */
void pipe_pool_kill(struct pipe_pool *p, struct pipe_pair *pipe);

/* Closes the idle pipes that stayed idle since the last trim (none was
 * needed), so that a quiet daemon gives its pipe fds back. Call it
 * periodically. */
void pipe_pool_trim(struct pipe_pool *p);
/* Closes every idle pipe: their fds are needed elsewhere. */
void pipe_pool_drop_idle(struct pipe_pool *p);

/* Counts, for tests and status: pipes lent now, idle in the pool, and
 * grown (lent or idle). */
size_t pipe_pool_lent(const struct pipe_pool *p);
size_t pipe_pool_idle(const struct pipe_pool *p);
size_t pipe_pool_large(const struct pipe_pool *p);
