#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wgrp/log.h"
#include "wgrp/pipe_pool.h"
#include "wgrp/relay.h"

/* Idle pipes kept for reuse: enough for bursts, bounded in fds. */
#define PIPES_KEPT 64
/* Connections accepted per wake-up, so that one busy listener cannot starve
 * the loop's other work. */
#define ACCEPT_BATCH 64
#define FD_WARNING_INTERVAL_MS 10000
/* How often pipes that went unused are closed. */
#define PIPE_TRIM_INTERVAL_MS 10000

struct relay_ctx {
	struct loop *loop;
	struct pipe_pool *pipes;
	size_t copy_size;
	uint32_t connect_timeout_ms;
	bool no_splice; /* splice() was refused once: copy from then on */
	int reserve_fd; /* given up to accept and refuse when fds run out */
	uint64_t last_fd_warning;
	struct loop_timer trim_timer;
};

/* One direction of a connection: bytes read from `from`, written to `to`. */
struct dir {
	int from, to;
	struct pipe_pair *pipe; /* lent while data is in flight */
	char *buf;              /* the copy path's, likewise */
	size_t buf_len;
	bool full; /* the pipe took no more: wait until it drains */
	bool eof;  /* `from` reached its end */
	bool shut; /* and that end was passed on */
	uint64_t *bytes;
};

struct conn {
	struct relay_listener *lis;
	int fd[2];         /* 0: accepted from the client, 1: to the target */
	struct dir dir[2]; /* 0: client to target, 1: target to client */
	struct loop_timer connect_timer;
	bool connecting;
	struct conn *prev, *next;
};

struct relay_listener {
	struct relay_ctx *ctx;
	int fd;
	union sockaddr_inet addr, target;
	struct relay_stats stats;
	struct conn *conns;
	bool filtered;
	struct ip_addr only_from;
	uint64_t last_filter_warning;
};

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_info("open file limit raised to %llu", (unsigned long long)rl.rlim_cur);
}

static size_t pipe_max_size(void)
{
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
	unsigned long v = 0;

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void on_trim(struct loop *l, struct loop_timer *t)
{
	struct relay_ctx *ctx = t->data;

	pipe_pool_trim(ctx->pipes);
	loop_timer_start(l, t, PIPE_TRIM_INTERVAL_MS);
}

int relay_ctx_new(struct relay_ctx **out, struct loop *l, const struct relay_config *cfg)
{
	struct relay_ctx *ctx = calloc(1, sizeof(*ctx));
	size_t want = (size_t)cfg->pipe_kb * 1024, max = pipe_max_size();
	int r;

	*out = NULL;
	if (!ctx)
		return -ENOMEM;
	ctx->loop = l;
	ctx->connect_timeout_ms =
		cfg->connect_timeout_ms ? cfg->connect_timeout_ms : RELAY_DEFAULT_CONNECT_TIMEOUT_MS;
	r = pipe_pool_new(&ctx->pipes, want, max, PIPES_KEPT);
	if (r < 0)
		goto fail;
	ctx->copy_size = pipe_pool_size(ctx->pipes);
	if (ctx->copy_size < want)
		log_info("relay pipe size %zu KiB (asked %u KiB; /proc/sys/fs/pipe-max-size is %zu)",
			 ctx->copy_size / 1024, cfg->pipe_kb, max);
	else if (ctx->copy_size > want)
		log_info("relay pipe size %zu KiB (asked %u KiB; a pipe holds at least a page)",
			 ctx->copy_size / 1024, cfg->pipe_kb);
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	ctx->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (ctx->reserve_fd < 0) {
		r = -errno;
		goto fail;
	}
	loop_timer_init(&ctx->trim_timer, on_trim, ctx);
	r = loop_timer_start(l, &ctx->trim_timer, PIPE_TRIM_INTERVAL_MS);
	if (r < 0) {
		close(ctx->reserve_fd);
		goto fail;
	}
	*out = ctx;
	return 0;
fail:
	pipe_pool_free(ctx->pipes);
	free(ctx);
	return r;
}

void relay_ctx_free(struct relay_ctx *ctx)
{
	if (!ctx)
		return;
	loop_timer_stop(ctx->loop, &ctx->trim_timer);
	close(ctx->reserve_fd);
	pipe_pool_free(ctx->pipes);
	free(ctx);
}

static size_t in_flight(const struct dir *d)
{
	return d->pipe ? d->pipe->data : d->buf_len;
}

static bool no_room(const struct relay_ctx *ctx, const struct dir *d)
{
	return d->pipe ? d->pipe->data >= d->pipe->cap : d->buf && d->buf_len >= ctx->copy_size;
}

/* Gives back the pipe or buffer of a direction with nothing in flight. */
static void release(struct relay_ctx *ctx, struct dir *d)
{
	if (d->pipe && !d->pipe->data) {
		pipe_pool_put(ctx->pipes, d->pipe);
		d->pipe = NULL;
	}
	if (d->buf && !d->buf_len) {
		free(d->buf);
		d->buf = NULL;
	}
}

/* Makes sure d has somewhere to put data: a pipe, or when pipes cannot be
 * had (splice refused, no fds left) a copy buffer, which needs no fd. */
static int borrow(struct relay_ctx *ctx, struct dir *d)
{
	if (d->pipe || d->buf)
		return 0;
	if (!ctx->no_splice && pipe_pool_get(ctx->pipes, &d->pipe) == 0)
		return 0;
	d->buf = malloc(ctx->copy_size);
	return d->buf ? 0 : -ENOMEM;
}

/* Reads into d's pipe or buffer. Returns bytes, 0 at EOF, or -errno. */
static ssize_t move_in(struct relay_ctx *ctx, struct dir *d)
{
	ssize_t n;

	if (borrow(ctx, d) < 0)
		return -ENOMEM;
	if (d->pipe) {
		n = splice(d->from, NULL, d->pipe->wr, NULL, d->pipe->cap - d->pipe->data,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			d->pipe->data += (size_t)n;
		if (n >= 0)
			return n;
		if ((errno != EINVAL && errno != ENOSYS) || d->pipe->data)
			return -errno;
		/* This kernel or socket cannot splice: copy instead, for good. */
		log_debug("splice() refused (%s): relays copy through buffers", strerror(errno));
		ctx->no_splice = true;
		release(ctx, d);
		return move_in(ctx, d);
	}
	n = recv(d->from, d->buf + d->buf_len, ctx->copy_size - d->buf_len, 0);
	if (n > 0)
		d->buf_len += (size_t)n;
	return n < 0 ? -errno : n;
}

/* Writes what d holds. Returns bytes written, or -errno. */
static ssize_t move_out(struct dir *d)
{
	ssize_t n;

	if (d->pipe) {
		n = splice(d->pipe->rd, NULL, d->to, NULL, d->pipe->data,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			d->pipe->data -= (size_t)n;
	} else {
		n = send(d->to, d->buf, d->buf_len, MSG_NOSIGNAL);
		if (n > 0) {
			d->buf_len -= (size_t)n;
			memmove(d->buf, d->buf + n, d->buf_len);
		}
	}
	return n < 0 ? -errno : n;
}

/* Moves what can be moved now in one direction. Returns 0, or -errno when
 * the connection must be reset. */
static int pump(struct relay_ctx *ctx, struct dir *d)
{
	bool progress = true;
	ssize_t n;

	while (progress) {
		progress = false;
		if (in_flight(d)) {
			n = move_out(d);
			if (n > 0) {
				*d->bytes += (uint64_t)n;
				d->full = false;
				progress = true;
			} else if (n != -EAGAIN) {
				return (int)n;
			}
		}
		release(ctx, d);
		if (no_room(ctx, d))
			d->full = true;
		if (d->eof || d->full)
			continue;
		n = move_in(ctx, d);
		if (n > 0)
			progress = true;
		else if (n == 0)
			d->eof = true;
		else if (n != -EAGAIN)
			return (int)n;
		/* EAGAIN with data in the pipe: it is full (its slots hold partial
		 * pages), or the socket is dry; either way wait for it to drain. */
		else if (in_flight(d))
			d->full = true;
		release(ctx, d);
	}
	if (d->eof && !in_flight(d) && !d->shut) {
		shutdown(d->to, SHUT_WR);
		d->shut = true;
	}
	return 0;
}

/* Closes fd so that its peer gets a RST, not a FIN. */
static void close_with_reset(int fd)
{
	static const struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
	close(fd);
}

static void unlink_conn(struct conn *c)
{
	struct relay_listener *lis = c->lis;

	if (c->prev)
		c->prev->next = c->next;
	else
		lis->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	lis->stats.active--;
}

/* Ends c; with reset, both sides get a RST instead of a FIN. */
static void finish(struct conn *c, bool reset)
{
	struct relay_ctx *ctx = c->lis->ctx;

	loop_timer_stop(ctx->loop, &c->connect_timer);
	for (int i = 0; i < 2; i++) {
		struct dir *d = &c->dir[i];

		if (d->pipe)
			pipe_pool_kill(ctx->pipes, d->pipe);
		free(d->buf);
		if (c->fd[i] < 0)
			continue;
		loop_del(ctx->loop, c->fd[i]);
		if (reset)
			close_with_reset(c->fd[i]);
		else
			close(c->fd[i]);
	}
	unlink_conn(c);
	free(c);
}

static void update_events(struct conn *c)
{
	struct loop *l = c->lis->ctx->loop;
	unsigned ev[2] = { 0, 0 };

	for (int i = 0; i < 2; i++) {
		const struct dir *d = &c->dir[i];

		if (!d->eof && !d->full)
			ev[i] |= LOOP_READ;
		if (in_flight(d))
			ev[1 - i] |= LOOP_WRITE;
	}
	if (loop_set_events(l, c->fd[0], ev[0]) < 0 || loop_set_events(l, c->fd[1], ev[1]) < 0)
		finish(c, true);
}

static void connect_failed(struct conn *c, int err)
{
	char target[ADDR_HOSTPORT_STRLEN];

	c->lis->stats.connect_failures++;
	if (log_debug_enabled()) {
		sockaddr_inet_format(&c->lis->target, target, sizeof(target));
		log_debug("connecting to %s: %s", target, strerror(err));
	}
	finish(c, true);
}

static void on_connect_timeout(struct loop *l, struct loop_timer *t)
{
	(void)l;
	connect_failed(t->data, ETIMEDOUT);
}

static void on_io(struct loop *l, int fd, unsigned events, void *data)
{
	struct conn *c = data;
	int err = 0, one = 1;
	socklen_t len = sizeof(err);

	if (c->connecting) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			connect_failed(c, err);
			return;
		}
		c->connecting = false;
		loop_timer_stop(l, &c->connect_timer);
		setsockopt(c->fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else if (events & LOOP_ERROR) {
		finish(c, true);
		return;
	}
	for (int i = 0; i < 2; i++) {
		int r = pump(c->lis->ctx, &c->dir[i]);

		if (r < 0) {
			log_debug("relay connection reset: %s", strerror(-r));
			finish(c, true);
			return;
		}
	}
	if (c->dir[0].shut && c->dir[1].shut)
		finish(c, false);
	else
		update_events(c);
}

static void warn_no_fds(struct relay_listener *lis)
{
	struct relay_ctx *ctx = lis->ctx;
	uint64_t now = loop_now(ctx->loop);
	char addr[ADDR_HOSTPORT_STRLEN];

	if (ctx->last_fd_warning && now - ctx->last_fd_warning < FD_WARNING_INTERVAL_MS)
		return;
	ctx->last_fd_warning = now;
	sockaddr_inet_format(&lis->addr, addr, sizeof(addr));
	log_warning("out of file descriptors: refusing new connections on %s "
		    "(%llu refused so far, %llu active)",
		    addr, (unsigned long long)lis->stats.refused,
		    (unsigned long long)lis->stats.active);
}

static void refuse(struct relay_listener *lis, int fd)
{
	close_with_reset(fd);
	lis->stats.refused++;
	warn_no_fds(lis);
}

/* Out of fds, the pending connection cannot even be accepted: the reserve
 * fd makes room to accept it and refuse it, rather than leaving it waiting. */
static void refuse_pending(struct relay_listener *lis)
{
	struct relay_ctx *ctx = lis->ctx;
	int fd;

	close(ctx->reserve_fd);
	fd = accept4(lis->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		refuse(lis, fd);
	ctx->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* True when the filter lets from in; logs refusals, at most every 10 s. */
static bool allowed(struct relay_listener *lis, const union sockaddr_inet *from)
{
	struct ip_addr a = { .family = from->sa.sa_family };
	char who[ADDR_HOSTPORT_STRLEN], addr[ADDR_HOSTPORT_STRLEN];
	uint64_t now;

	if (!lis->filtered)
		return true;
	if (a.family == AF_INET)
		a.v4 = from->in.sin_addr;
	else
		a.v6 = from->in6.sin6_addr;
	if (ip_addr_equal(&a, &lis->only_from))
		return true;
	now = loop_now(lis->ctx->loop);
	if (!lis->last_filter_warning || now - lis->last_filter_warning >= FD_WARNING_INTERVAL_MS) {
		lis->last_filter_warning = now;
		sockaddr_inet_format(from, who, sizeof(who));
		sockaddr_inet_format(&lis->addr, addr, sizeof(addr));
		log_warning("refused a connection from %s to %s: only the server may connect", who,
			    addr);
	}
	return false;
}

static int start_conn(struct relay_listener *lis, int client)
{
	struct relay_ctx *ctx = lis->ctx;
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1, r;

	if (!c)
		return -ENOMEM;
	c->lis = lis;
	c->fd[0] = client;
	c->fd[1] = socket(lis->target.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd[1] < 0) {
		r = -errno;
		free(c);
		return r;
	}
	c->dir[0] = (struct dir){ .from = c->fd[0], .to = c->fd[1], .bytes = &lis->stats.bytes_in };
	c->dir[1] = (struct dir){ .from = c->fd[1], .to = c->fd[0], .bytes = &lis->stats.bytes_out };
	c->connecting = true;
	loop_timer_init(&c->connect_timer, on_connect_timeout, c);
	c->next = lis->conns;
	if (c->next)
		c->next->prev = c;
	lis->conns = c;
	lis->stats.active++;
	lis->stats.total++;
	setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if ((loop_add(ctx->loop, c->fd[0], 0, on_io, c) < 0) ||
	    loop_add(ctx->loop, c->fd[1], LOOP_WRITE, on_io, c) < 0 ||
	    loop_timer_start(ctx->loop, &c->connect_timer, ctx->connect_timeout_ms) < 0) {
		finish(c, true);
		return 0;
	}
	if (connect(c->fd[1], &lis->target.sa, sockaddr_inet_len(&lis->target)) < 0 &&
	    errno != EINPROGRESS)
		connect_failed(c, errno);
	return 0;
}

static void on_accept(struct loop *l, int fd, unsigned events, void *data)
{
	struct relay_listener *lis = data;

	(void)l;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		union sockaddr_inet from;
		socklen_t len = sizeof(from);
		int client = accept4(fd, &from.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC), r;

		if (client < 0) {
			if (errno == EMFILE || errno == ENFILE)
				refuse_pending(lis);
			else if (errno != EINTR && errno != ECONNABORTED)
				return; /* EAGAIN: all taken */
			continue;
		}
		if (!allowed(lis, &from)) {
			close_with_reset(client);
			continue;
		}
		r = start_conn(lis, client);
		if (r == -EMFILE || r == -ENFILE)
			refuse(lis, client);
		else if (r < 0)
			close(client);
	}
}

int relay_listen(struct relay_listener **out, struct relay_ctx *ctx, const union sockaddr_inet *bind_addr,
		 const union sockaddr_inet *target, struct errbuf *e)
{
	struct relay_listener *lis = calloc(1, sizeof(*lis));
	char addr[ADDR_HOSTPORT_STRLEN];
	socklen_t len = sizeof(lis->addr);
	int one = 1, zero = 0, r;

	*out = NULL;
	if (!lis)
		return errbuf_set(e, -ENOMEM, "out of memory");
	lis->ctx = ctx;
	lis->target = *target;
	sockaddr_inet_format(bind_addr, addr, sizeof(addr));
	lis->fd = socket(bind_addr->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lis->fd < 0) {
		r = errbuf_set(e, -errno, "cannot listen on %s: %s", addr, strerror(errno));
		free(lis);
		return r;
	}
	setsockopt(lis->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* The IPv6 any-address serves IPv4 too, whatever the system default. */
	if (bind_addr->sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&bind_addr->in6.sin6_addr))
		setsockopt(lis->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(lis->fd, &bind_addr->sa, sockaddr_inet_len(bind_addr)) < 0 ||
	    listen(lis->fd, SOMAXCONN) < 0 ||
	    getsockname(lis->fd, &lis->addr.sa, &len) < 0) {
		r = errbuf_set(e, -errno, "cannot listen on %s: %s", addr, strerror(errno));
		goto fail;
	}
	r = loop_add(ctx->loop, lis->fd, LOOP_READ, on_accept, lis);
	if (r < 0) {
		errbuf_set(e, r, "cannot watch %s: %s", addr, strerror(-r));
		goto fail;
	}
	*out = lis;
	return 0;
fail:
	close(lis->fd);
	free(lis);
	return r;
}

void relay_listener_set_target(struct relay_listener *lis, const union sockaddr_inet *target)
{
	lis->target = *target;
}

void relay_listener_only_from(struct relay_listener *lis, const struct ip_addr *peer)
{
	lis->filtered = true;
	lis->only_from = *peer;
}

void relay_listener_address(const struct relay_listener *lis, union sockaddr_inet *out)
{
	*out = lis->addr;
}

const struct relay_stats *relay_listener_stats(const struct relay_listener *lis)
{
	return &lis->stats;
}

void relay_listener_close(struct relay_listener *lis)
{
	if (!lis)
		return;
	loop_del(lis->ctx->loop, lis->fd);
	close(lis->fd);
	while (lis->conns)
		finish(lis->conns, true);
	free(lis);
}
