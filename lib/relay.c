#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay_ctx.h"
#include "wgrp/log.h"
#include "wgrp/pipe_pool.h"
#include "wgrp/proxy_header.h"
#include "wgrp/relay.h"
#include "wgrp/source_count.h"
#include "wgrp/transparent.h"

/* Idle pipes kept for reuse: enough for bursts, bounded in fds. */
#define PIPES_KEPT 64
/* Connections accepted per wake-up, so that one busy listener cannot starve
 * the loop's other work. */
#define ACCEPT_BATCH 64
#define FD_WARNING_INTERVAL_MS 10000
/* How often pipes that went unused are closed. */
#define PIPE_TRIM_INTERVAL_MS 10000
/* A listener whose accept() fails for want of memory or buffers stops
 * accepting this long, rather than spinning on the error. */
#define ACCEPT_PAUSE_MS 100
/* The fds a new connection may need: its two sockets and two pipes. */
#define FDS_PER_CONN 6
/* Pipes of bulk transfers grow to this (or /proc/sys/fs/pipe-max-size):
 * measured on veth, 1 MiB pipes take a sixth of the splices per byte of
 * 64 KiB ones and 15 % less relay CPU per byte. */
#define LARGE_PIPE_SIZE (1024 * 1024)
/* A daemon's large pipes take at most this part of the pages that all
 * processes of its user may give pipes (pipe-user-pages-soft, 16384 by
 * default), past which the kernel cuts every new pipe of the user to a
 * page: bulk transfers must not starve other pipes, ours or not. */
#define LARGE_PIPE_PAGES_PART 4
/* TCP keepalive on relayed sockets: a peer silent this long is probed, and
 * dropped after this many unanswered probes this far apart (about 2 min). */
#define KEEPALIVE_IDLE_S 60
#define KEEPALIVE_INTERVAL_S 10
#define KEEPALIVE_PROBES 6
/* A UDP listener's receive buffer, asked for (the kernel cuts it to
 * net.core.rmem_max): many flows' datagrams meet there, in bursts. */
#define UDP_LISTENER_RCVBUF (4 << 20)

struct relay_ctx {
	struct loop *loop;
	struct pipe_pool *pipes;
	size_t copy_size;
	uint32_t connect_timeout_ms;
	uint64_t idle_timeout_ms; /* 0: never */
	struct source_count *sources; /* NULL: no cap per source */
	uint32_t source_cap;          /* --max-conns-per-source, for all shares */
	uint32_t shares;
	struct relay_udp_limits udp;
	size_t sockets;   /* held by listeners and connections */
	size_t own_fds;   /* the reserve fd, and the owner's for this context */
	size_t fd_budget;  /* what sockets and pipes may hold together */
	size_t fd_reserve; /* what they leave to the rest of the daemon */
	bool no_splice; /* splice() was refused once: copy from then on */
	int reserve_fd; /* given up to accept and refuse when fds run out */
	uint64_t last_fd_warning, last_source_warning, last_accept_warning, last_header_warning,
		 last_visitor_warning;
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

/* A connection's visitor, while its listener's relay_visitor needs it: read
 * from the PROXY header (buf, of which have bytes came), or taken from the
 * accepted socket; dropped once the target was told. */
struct visitor {
	struct proxy_addrs addrs;
	uint8_t send;     /* relay_visitor's send_header */
	bool transparent; /* and transparent, as when accepted */
	size_t have;
	uint8_t buf[PROXY_V2_PARSE_MAX];
};

struct conn {
	struct relay_listener *lis;
	struct visitor *visitor;
	int fd[2];         /* 0: accepted from the client, 1: to the target */
	struct dir dir[2]; /* 0: client to target, 1: target to client */
	/* The connect timeout while connecting, then the idle timeout: armed
	 * for the whole timeout and, when it fires, moved on by the bytes seen
	 * since (last_active), so that no byte touches the timer heap. */
	struct loop_timer timer;
	uint64_t last_active;
	bool connecting;
	bool counted; /* source is in the context's count per source */
	struct ip_addr source;
	struct conn *prev, *next;
};

struct relay_listener {
	struct relay_ctx *ctx;
	int fd;
	union sockaddr_inet addr, target;
	struct relay_stats stats;
	struct relay_visitor visitor;
	struct conn *conns;
	bool filtered;
	struct ip_addr only_from;
	uint32_t source_cap; /* its peer's MaxConnsPerSource; 0: the context's */
	uint64_t last_filter_warning;
	struct loop_timer pause_timer; /* accept() failed: accepting again */
};

/* Raises the fd limit to its hard limit and sets the fds the relays may hold:
 * the limit less RELAY_FD_RESERVE, or less half of it when it is small,
 * divided among the contexts that share it. */
static void set_fd_budget(struct relay_ctx *ctx, bool quiet)
{
	struct rlimit rl;
	size_t limit, reserve;

	ctx->fd_budget = SIZE_MAX;
	ctx->fd_reserve = RELAY_FD_RESERVE;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit raised = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
			rl = raised;
			log_info("open file limit raised to %llu", (unsigned long long)rl.rlim_cur);
		}
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > SIZE_MAX / 2)
		return;
	limit = (size_t)rl.rlim_cur;
	reserve = limit >= 2 * RELAY_FD_RESERVE ? RELAY_FD_RESERVE : limit / 2;
	if (reserve < RELAY_FD_RESERVE && !quiet)
		log_info("open file limit %zu: relays hold at most %zu, keeping %zu for the API "
			 "and the control plane", limit, limit - reserve, reserve);
	ctx->fd_budget = (limit - reserve) / ctx->shares;
	ctx->fd_reserve = reserve;
}

/* The fds relays hold now: sockets, and pipes lent or kept. */
static size_t relay_fds(const struct relay_ctx *ctx)
{
	return ctx->own_fds + ctx->sockets +
	       2 * (pipe_pool_lent(ctx->pipes) + pipe_pool_idle(ctx->pipes));
}

static size_t read_proc_number(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long v = 0;

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/* Lets this context's share of the daemon's large pipes grow. */
static void allow_large_pipes(struct relay_ctx *ctx, size_t max_size)
{
	size_t pages = read_proc_number("/proc/sys/fs/pipe-user-pages-soft"), count;

	/* 0 is no limit: bound the memory in flight as the default would. */
	if (!pages)
		pages = 16384;
	count = pages / LARGE_PIPE_PAGES_PART * (size_t)sysconf(_SC_PAGESIZE) / LARGE_PIPE_SIZE /
		ctx->shares;
	pipe_pool_allow_growth(ctx->pipes, LARGE_PIPE_SIZE, max_size, count);
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
	size_t want = (size_t)cfg->pipe_kb * 1024,
	       max = read_proc_number("/proc/sys/fs/pipe-max-size");
	int r;

	*out = NULL;
	if (!ctx)
		return -ENOMEM;
	ctx->loop = l;
	ctx->shares = cfg->shares ? cfg->shares : 1;
	ctx->own_fds = 1 + cfg->owner_fds;
	ctx->connect_timeout_ms =
		cfg->connect_timeout_ms ? cfg->connect_timeout_ms : RELAY_DEFAULT_CONNECT_TIMEOUT_MS;
	ctx->idle_timeout_ms = (uint64_t)cfg->idle_timeout_s * 1000;
	ctx->udp = (struct relay_udp_limits){
		.timeout_ms = (uint64_t)(cfg->udp_timeout_s ? cfg->udp_timeout_s
							    : RELAY_DEFAULT_UDP_TIMEOUT_S) * 1000,
		.max_flows = ((cfg->udp_max_flows ? cfg->udp_max_flows : RELAY_DEFAULT_UDP_MAX_FLOWS) +
			      ctx->shares - 1) / ctx->shares,
		.max_datagram = cfg->udp_max_datagram ? cfg->udp_max_datagram
						      : RELAY_DEFAULT_UDP_MAX_DATAGRAM,
	};
	r = pipe_pool_new(&ctx->pipes, want, max, PIPES_KEPT);
	if (r < 0)
		goto fail;
	allow_large_pipes(ctx, max);
	if (cfg->max_conns_per_source) {
		ctx->source_cap = cfg->max_conns_per_source;
		r = source_count_new(&ctx->sources);
		if (r < 0)
			goto fail;
	}
	ctx->copy_size = pipe_pool_size(ctx->pipes);
	if (!cfg->quiet && ctx->copy_size < want)
		log_info("relay pipe size %zu KiB (asked %u KiB; /proc/sys/fs/pipe-max-size is %zu)",
			 ctx->copy_size / 1024, cfg->pipe_kb, max);
	else if (!cfg->quiet && ctx->copy_size > want)
		log_info("relay pipe size %zu KiB (asked %u KiB; a pipe holds at least a page)",
			 ctx->copy_size / 1024, cfg->pipe_kb);
	set_fd_budget(ctx, cfg->quiet);
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
	source_count_free(ctx->sources);
	pipe_pool_free(ctx->pipes);
	free(ctx);
	return r;
}

size_t relay_ctx_fd_reserve(const struct relay_ctx *ctx)
{
	return ctx->fd_reserve;
}

void relay_ctx_stats(const struct relay_ctx *ctx, struct relay_ctx_stats *out)
{
	*out = (struct relay_ctx_stats){ .fds = relay_fds(ctx),
					 .fd_budget = ctx->fd_budget == SIZE_MAX ? UINT64_MAX
										 : ctx->fd_budget,
					 .pipes_lent = pipe_pool_lent(ctx->pipes),
					 .pipes_idle = pipe_pool_idle(ctx->pipes) };
}

struct loop *relay_ctx_loop(const struct relay_ctx *ctx)
{
	return ctx->loop;
}

const struct relay_udp_limits *relay_ctx_udp(const struct relay_ctx *ctx)
{
	return &ctx->udp;
}

struct source_count *relay_ctx_sources(const struct relay_ctx *ctx)
{
	return ctx->sources;
}

uint32_t relay_ctx_source_share(const struct relay_ctx *ctx, uint32_t cap)
{
	/* Rounded up: a share of 0 would refuse everyone. */
	cap = cap ? cap : ctx->source_cap;
	return (cap + ctx->shares - 1) / ctx->shares;
}

const char *relay_source_cap_name(uint32_t cap)
{
	return cap ? "its peer's MaxConnsPerSource" : "--max-conns-per-source";
}

/* Idle pipes are only a cache: they go first. */
bool relay_ctx_room_for(struct relay_ctx *ctx, size_t n)
{
	if (relay_fds(ctx) + n > ctx->fd_budget)
		pipe_pool_drop_idle(ctx->pipes);
	return relay_fds(ctx) + n <= ctx->fd_budget;
}

void relay_ctx_count_sockets(struct relay_ctx *ctx, int n)
{
	ctx->sockets += (size_t)(ssize_t)n;
}

void relay_ctx_free(struct relay_ctx *ctx)
{
	if (!ctx)
		return;
	loop_timer_stop(ctx->loop, &ctx->trim_timer);
	close(ctx->reserve_fd);
	source_count_free(ctx->sources);
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
 * had (splice refused, no fds left, or the relays' share of fds taken) a
 * copy buffer, which needs no fd. */
static int borrow(struct relay_ctx *ctx, struct dir *d)
{
	if (d->pipe || d->buf)
		return 0;
	if (!ctx->no_splice && (pipe_pool_idle(ctx->pipes) || relay_fds(ctx) + 2 <= ctx->fd_budget) &&
	    pipe_pool_get(ctx->pipes, &d->pipe) == 0)
		return 0;
	d->buf = malloc(ctx->copy_size);
	return d->buf ? 0 : -ENOMEM;
}

/* The errors by which splice() says it cannot handle this fd (HAProxy's
 * list): the bytes are copied instead. */
static bool splice_refused(int err)
{
	return err == EINVAL || err == ENOSYS || err == EBADF;
}

static void stop_splicing(struct relay_ctx *ctx, int err)
{
	if (!ctx->no_splice)
		log_debug("splice() refused (%s): relays copy through buffers", strerror(err));
	ctx->no_splice = true;
}

static ssize_t splice_retrying(int in, int out, size_t len)
{
	ssize_t n;

	do
		n = splice(in, NULL, out, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static bool at_urgent_mark(int fd)
{
	int at = 0;

	return ioctl(fd, SIOCATMARK, &at) == 0 && at;
}

/* splice() from TCP stops at the urgent mark (tcp_read_sock()): it says
 * EAGAIN, or 0 once the peer has closed, for as long as the mark is
 * unread, while epoll says readable. Only a plain read passes the mark; the
 * byte there comes inline (SO_OOBINLINE) and goes into the pipe like any
 * other. An empty pipe always takes one byte. Returns 1, -EAGAIN until the
 * pipe is empty, or -errno. */
static ssize_t pass_urgent_mark(struct dir *d)
{
	ssize_t n;
	char c;

	if (d->pipe->data)
		return -EAGAIN;
	do
		n = recv(d->from, &c, 1, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	if (write(d->pipe->wr, &c, 1) != 1)
		return -EIO;
	d->pipe->data++;
	return 1;
}

/* Reads into d's pipe or buffer. dry_wakeup: the loop said readable and
 * nothing was read since, so an EAGAIN may be the urgent mark. Otherwise it
 * is only the end of the bytes (if the mark is next, the socket stays
 * readable and the next wake-up is a dry one): this spares an ioctl per
 * wake-up. *drained: the read filled less than half the room it had, so
 * the socket is most likely dry (a read that came close was cut short by
 * the pipe's slots holding partial pages, and more is waiting).
 * Returns bytes, 0 at EOF, or -errno. */
static ssize_t move_in(struct relay_ctx *ctx, struct dir *d, bool dry_wakeup, bool *drained)
{
	size_t room;
	ssize_t n;

	if (borrow(ctx, d) < 0)
		return -ENOMEM;
	room = d->pipe ? d->pipe->cap - d->pipe->data : ctx->copy_size - d->buf_len;
	*drained = true;
	if (d->pipe) {
		n = splice_retrying(d->from, d->pipe->wr, room);
		if (n > 0) {
			d->pipe->data += (size_t)n;
			*drained = (size_t)n < room / 2;
			if (!*drained)
				pipe_pool_grow(ctx->pipes, d->pipe);
		}
		if ((n == 0 || (n == -EAGAIN && dry_wakeup && !d->pipe->data)) &&
		    at_urgent_mark(d->from))
			return pass_urgent_mark(d);
		if (n >= 0 || !splice_refused((int)-n))
			return n;
		/* This kernel or socket cannot splice: copy instead, for good,
		 * once the pipe has drained. */
		stop_splicing(ctx, (int)-n);
		if (d->pipe->data)
			return -EAGAIN;
		release(ctx, d);
		return move_in(ctx, d, dry_wakeup, drained);
	}
	do
		n = recv(d->from, d->buf + d->buf_len, room, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		d->buf_len += (size_t)n;
		*drained = (size_t)n < room / 2;
	}
	return n < 0 ? -errno : n;
}

/* Moves what d's pipe holds into a copy buffer, when splice() cannot write
 * to d->to. Returns 0 or -errno. */
static int pipe_to_buffer(struct relay_ctx *ctx, struct dir *d)
{
	ssize_t n;

	d->buf = malloc(ctx->copy_size);
	if (!d->buf)
		return -ENOMEM;
	while (d->pipe->data) {
		n = read(d->pipe->rd, d->buf + d->buf_len, d->pipe->data);
		if (n <= 0)
			return n < 0 && errno != EINTR ? -errno : -EIO;
		d->buf_len += (size_t)n;
		d->pipe->data -= (size_t)n;
	}
	release(ctx, d);
	return 0;
}

/* Writes what d holds. Returns bytes written, or -errno. */
static ssize_t move_out(struct relay_ctx *ctx, struct dir *d)
{
	ssize_t n;
	int r;

	if (d->pipe) {
		n = splice_retrying(d->pipe->rd, d->to, d->pipe->data);
		if (n > 0)
			d->pipe->data -= (size_t)n;
		if (n >= 0 || !splice_refused((int)-n))
			return n;
		stop_splicing(ctx, (int)-n);
		r = pipe_to_buffer(ctx, d);
		return r < 0 ? r : move_out(ctx, d);
	}
	do
		n = send(d->to, d->buf, d->buf_len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		d->buf_len -= (size_t)n;
		memmove(d->buf, d->buf + n, d->buf_len);
	}
	return n < 0 ? -errno : n;
}

/* Moves what can be moved now in one direction, setting *moved when any
 * byte went out. It reads only when readable, the loop having said d->from
 * is, and not again after a read that drained it: the loop is
 * level-triggered and says so again while bytes wait, so a wake-up for the
 * other direction (or for output room), or a second read after a short one,
 * spares a read that would find nothing. Returns 0, or -errno when the
 * connection must be reset. */
static int pump(struct relay_ctx *ctx, struct dir *d, bool readable, bool *moved)
{
	bool progress = true, read_any = false, drained;
	ssize_t n;

	while (progress) {
		progress = false;
		if (in_flight(d)) {
			n = move_out(ctx, d);
			if (n > 0) {
				*d->bytes += (uint64_t)n;
				*moved = true;
				d->full = false;
				progress = true;
			} else if (n != -EAGAIN) {
				return (int)n;
			}
		}
		release(ctx, d);
		if (no_room(ctx, d))
			d->full = true;
		if (d->eof || d->full || !readable)
			continue;
		n = move_in(ctx, d, !read_any, &drained);
		if (n > 0) {
			progress = *moved = read_any = true;
			readable = !drained;
		}
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
	return 0;
}

/* d read its end and wrote all it read: its EOF is due to d->to. */
static bool ended(const struct dir *d)
{
	return d->eof && !in_flight(d);
}

/* Makes closing fd send its peer a RST, not a FIN. */
static void reset_on_close(int fd)
{
	static const struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
}

static void close_with_reset(int fd)
{
	reset_on_close(fd);
	close(fd);
}

static void unlink_conn(struct conn *c)
{
	struct relay_listener *lis = c->lis;

	if (c->counted)
		source_count_release(lis->ctx->sources, &c->source);
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

	loop_timer_stop(ctx->loop, &c->timer);
	for (int i = 0; i < 2; i++) {
		struct dir *d = &c->dir[i];

		if (d->pipe)
			pipe_pool_kill(ctx->pipes, d->pipe);
		free(d->buf);
		if (c->fd[i] < 0)
			continue;
		ctx->sockets--;
		if (reset)
			reset_on_close(c->fd[i]);
		loop_close(ctx->loop, c->fd[i]);
	}
	unlink_conn(c);
	free(c->visitor);
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

static void bad_header(struct conn *c, const char *why);
static void read_header(struct conn *c);
static int tell_target(struct conn *c);

/* The connect timeout while connecting; then the idle timeout, which is
 * pushed on by as long as the connection has been active since. */
static void on_timer(struct loop *l, struct loop_timer *t)
{
	struct conn *c = t->data;
	uint64_t idle;

	if (c->fd[1] < 0) {
		bad_header(c, "its PROXY header did not come within the connect timeout");
		return;
	}
	if (c->connecting) {
		connect_failed(c, ETIMEDOUT);
		return;
	}
	idle = loop_now(l) - c->last_active;
	if (idle < c->lis->ctx->idle_timeout_ms) {
		if (loop_timer_start(l, t, c->lis->ctx->idle_timeout_ms - idle) < 0)
			finish(c, true);
		return;
	}
	log_debug("relay connection idle for %llu s: reset",
		  (unsigned long long)(idle / 1000));
	c->lis->stats.idle_closed++;
	finish(c, true);
}

static void on_io(struct loop *l, int fd, unsigned events, void *data)
{
	struct conn *c = data;
	struct relay_ctx *ctx = c->lis->ctx;
	bool moved = false;
	int err = 0, r;
	socklen_t len = sizeof(err);

	if (c->fd[1] < 0) {
		read_header(c);
		return;
	}
	if (c->connecting) {
		/* Meanwhile the client is watched for errors only: it is gone. */
		if (fd != c->fd[1]) {
			finish(c, true);
			return;
		}
		/* A failed connect says so with EPOLLERR: only then is its error
		 * worth a system call. */
		if ((events & (LOOP_ERROR | LOOP_HUP)) &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			connect_failed(c, err);
			return;
		}
		c->connecting = false;
		if (c->visitor && (r = tell_target(c)) < 0) {
			log_debug("telling the target of the visitor: %s", strerror(-r));
			finish(c, true);
			return;
		}
		c->last_active = loop_now(l);
		loop_timer_stop(l, &c->timer);
		if (ctx->idle_timeout_ms && loop_timer_start(l, &c->timer, ctx->idle_timeout_ms) < 0) {
			finish(c, true);
			return;
		}
	} else if (events & LOOP_ERROR) {
		finish(c, true);
		return;
	}
	for (int i = 0; i < 2; i++) {
		r = pump(ctx, &c->dir[i], fd == c->dir[i].from && (events & LOOP_READ), &moved);
		if (r < 0) {
			log_debug("relay connection reset: %s", strerror(-r));
			finish(c, true);
			return;
		}
	}
	if (moved)
		c->last_active = loop_now(l);
	/* Both ends read to their EOF: close() sends the FINs still due, with no
	 * unread byte to turn them into RSTs. */
	if (ended(&c->dir[0]) && ended(&c->dir[1])) {
		finish(c, false);
		return;
	}
	for (int i = 0; i < 2; i++) {
		struct dir *d = &c->dir[i];

		if (ended(d) && !d->shut) {
			shutdown(d->to, SHUT_WR);
			d->shut = true;
		}
	}
	update_events(c);
}

/* Rate limit for warnings: true at most once per FD_WARNING_INTERVAL_MS. */
static bool warning_due(struct relay_ctx *ctx, uint64_t *last)
{
	uint64_t now = loop_now(ctx->loop);

	if (*last && now - *last < FD_WARNING_INTERVAL_MS)
		return false;
	*last = now;
	return true;
}

bool relay_ctx_warning_due(struct relay_ctx *ctx, uint64_t *last)
{
	return warning_due(ctx, last);
}

/* Counts (and logs) a connection reset for want of fds. */
static void count_refused(struct relay_listener *lis)
{
	struct relay_ctx *ctx = lis->ctx;
	char addr[ADDR_HOSTPORT_STRLEN];

	lis->stats.refused++;
	if (!warning_due(ctx, &ctx->last_fd_warning))
		return;
	sockaddr_inet_format(&lis->addr, addr, sizeof(addr));
	log_warning("out of file descriptors for relays: refusing new connections on %s "
		    "(%llu refused so far, %llu active)",
		    addr, (unsigned long long)lis->stats.refused,
		    (unsigned long long)lis->stats.active);
}

static void refuse(struct relay_listener *lis, int fd)
{
	close_with_reset(fd);
	count_refused(lis);
}

static void on_pause_end(struct loop *l, struct loop_timer *t)
{
	struct relay_listener *lis = t->data;

	if (loop_set_events(l, lis->fd, LOOP_READ) < 0)
		loop_timer_start(l, t, ACCEPT_PAUSE_MS);
}

/* accept() failed for a reason that does not go away by retrying at once
 * (no memory, no buffers): stop watching the listener for a while rather
 * than spin; pending connections wait in the backlog meanwhile. */
static void pause_accepting(struct relay_listener *lis, int err)
{
	struct relay_ctx *ctx = lis->ctx;
	char addr[ADDR_HOSTPORT_STRLEN];

	if (loop_timer_start(ctx->loop, &lis->pause_timer, ACCEPT_PAUSE_MS) < 0 ||
	    loop_set_events(ctx->loop, lis->fd, 0) < 0)
		return;
	if (!warning_due(ctx, &ctx->last_accept_warning))
		return;
	sockaddr_inet_format(&lis->addr, addr, sizeof(addr));
	log_warning("cannot accept connections on %s: %s; pausing for %d ms", addr, strerror(err),
		    ACCEPT_PAUSE_MS);
}

/* Out of fds, the pending connection cannot even be accepted: the reserve
 * fd makes room to accept it and refuse it, rather than leaving it waiting.
 * Returns false when even that failed. */
static bool refuse_pending(struct relay_listener *lis)
{
	struct relay_ctx *ctx = lis->ctx;
	int fd;

	close(ctx->reserve_fd);
	fd = accept4(lis->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		refuse(lis, fd);
	ctx->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0 || errno == EAGAIN;
}

struct ip_addr relay_source_of(const union sockaddr_inet *from)
{
	struct ip_addr a = { .family = from->sa.sa_family };

	if (a.family == AF_INET) {
		a.v4 = from->in.sin_addr;
	} else if (IN6_IS_ADDR_V4MAPPED(&from->in6.sin6_addr)) {
		a.family = AF_INET;
		memcpy(&a.v4, &from->in6.sin6_addr.s6_addr[12], sizeof(a.v4));
	} else {
		a.v6 = from->in6.sin6_addr;
	}
	return a;
}

/* True when the filter lets from in; logs refusals, at most every 10 s. */
static bool allowed(struct relay_listener *lis, const union sockaddr_inet *from,
		    const struct ip_addr *source)
{
	char who[ADDR_HOSTPORT_STRLEN], addr[ADDR_HOSTPORT_STRLEN];

	if (!lis->filtered || ip_addr_equal(source, &lis->only_from))
		return true;
	if (warning_due(lis->ctx, &lis->last_filter_warning)) {
		sockaddr_inet_format(from, who, sizeof(who));
		sockaddr_inet_format(&lis->addr, addr, sizeof(addr));
		log_warning("refused a connection from %s to %s: only the server may connect", who,
			    addr);
	}
	return false;
}

/* Counts a connection from source against its cap. Returns false (and logs,
 * at most every 10 s) when the source has its share. */
static bool within_share(struct relay_listener *lis, struct conn *c, const struct ip_addr *source)
{
	struct relay_ctx *ctx = lis->ctx;
	char who[INET6_ADDRSTRLEN], addr[ADDR_HOSTPORT_STRLEN];
	int r;

	if (!ctx->sources)
		return true;
	r = source_count_take(ctx->sources, source, relay_ctx_source_share(ctx, lis->source_cap));
	if (r == 0) {
		c->counted = true;
		c->source = *source;
		return true;
	}
	lis->stats.refused_source++;
	if (r == -EBUSY && warning_due(ctx, &ctx->last_source_warning)) {
		ip_addr_format(source, who, sizeof(who));
		sockaddr_inet_format(&lis->addr, addr, sizeof(addr));
		if (ctx->shares == 1)
			log_warning("refused a connection from %s to %s: it has %u already (%s)",
				    who, addr, source_count_of(ctx->sources, source),
				    relay_source_cap_name(lis->source_cap));
		else
			log_warning("refused a connection from %s to %s: it has %u already on "
				    "this relay worker, its share of %s %u over %u workers",
				    who, addr, source_count_of(ctx->sources, source),
				    relay_source_cap_name(lis->source_cap),
				    lis->source_cap ? lis->source_cap : ctx->source_cap, ctx->shares);
	}
	return false;
}

/* Options of every relayed socket: no Nagle delay (the relay adds none of
 * its own), keepalive probes to find dead peers, and urgent data inline so
 * that it is relayed as an ordinary byte (see pass_urgent_mark()). */
static void set_socket_options(int fd)
{
	static const int one = 1, idle = KEEPALIVE_IDLE_S, interval = KEEPALIVE_INTERVAL_S,
			 probes = KEEPALIVE_PROBES;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
}

/* A socket for the listener's target. Returns it, or -errno. */
static int open_target(const struct relay_listener *lis)
{
	int fd = socket(lis->target.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	set_socket_options(fd);
	return fd;
}

/* Connects c out through fd, a socket from open_target() that c owns from
 * then on; failures finish c. */
static void connect_target(struct conn *c, int fd)
{
	struct relay_listener *lis = c->lis;
	struct relay_ctx *ctx = lis->ctx;
	char who[ADDR_HOSTPORT_STRLEN], target[ADDR_HOSTPORT_STRLEN];
	int r;

	c->fd[1] = fd;
	ctx->sockets++;
	c->dir[0] = (struct dir){ .from = c->fd[0], .to = fd, .bytes = &lis->stats.bytes_in };
	c->dir[1] = (struct dir){ .from = fd, .to = c->fd[0], .bytes = &lis->stats.bytes_out };
	if (c->visitor && c->visitor->transparent &&
	    (r = transparent_bind(fd, lis->target.sa.sa_family, &c->visitor->addrs.src)) < 0) {
		if (warning_due(ctx, &ctx->last_visitor_warning)) {
			sockaddr_inet_format(&c->visitor->addrs.src, who, sizeof(who));
			sockaddr_inet_format(&lis->target, target, sizeof(target));
			log_warning("cannot connect to %s as visitor %s: %s", target, who,
				    r == -EAFNOSUPPORT ? "not of the service's address family"
						       : strerror(-r));
		}
		lis->stats.connect_failures++;
		finish(c, true);
		return;
	}
	if (loop_add(ctx->loop, fd, LOOP_WRITE, on_io, c) < 0) {
		finish(c, true);
		return;
	}
	if (connect(fd, &lis->target.sa, sockaddr_inet_len(&lis->target)) < 0 &&
	    errno != EINPROGRESS)
		connect_failed(c, errno);
}

/* Resets c for a PROXY header that is missing or malformed, logging why at
 * most every 10 s. */
static void bad_header(struct conn *c, const char *why)
{
	struct relay_listener *lis = c->lis;
	char addr[ADDR_HOSTPORT_STRLEN];

	lis->stats.bad_header++;
	if (warning_due(lis->ctx, &lis->ctx->last_header_warning)) {
		sockaddr_inet_format(&lis->addr, addr, sizeof(addr));
		log_warning("reset a connection to %s: %s (%llu so far)", addr, why,
			    (unsigned long long)lis->stats.bad_header);
	}
	finish(c, true);
}

/* Reads what is missing of the PROXY v2 header that starts c's client
 * connection, exactly to its last byte (what follows is the visitor's own
 * data), and then connects out. */
static void read_header(struct conn *c)
{
	struct visitor *v = c->visitor;
	struct relay_ctx *ctx = c->lis->ctx;
	/* The fixed part tells the length of the rest. */
	size_t want = v->have < 16 ? 16 : 16 + ((size_t)v->buf[14] << 8 | v->buf[15]);
	struct errbuf e;
	ssize_t n;
	int fd;

	if (want > sizeof(v->buf))
		want = sizeof(v->buf); /* proxy_v2_parse() refuses it */
	do
		n = recv(c->fd[0], v->buf + v->have, want - v->have, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN)
			finish(c, true);
		return;
	}
	if (n == 0) {
		bad_header(c, "it ended before its PROXY header did");
		return;
	}
	v->have += (size_t)n;
	n = proxy_v2_parse(v->buf, v->have, &v->addrs, &e);
	if (n == 0)
		return;
	if (n > 0 && v->addrs.proto != SOCK_STREAM)
		n = errbuf_set(&e, -EBADMSG, "PROXY v2 header: a UDP visitor on a TCP connection");
	if (n < 0) {
		bad_header(c, e.msg);
		return;
	}
	fd = open_target(c->lis);
	if (fd < 0) {
		if (fd == -EMFILE || fd == -ENFILE)
			count_refused(c->lis);
		finish(c, true);
		return;
	}
	if (loop_set_events(ctx->loop, c->fd[0], 0) < 0) {
		close(fd);
		finish(c, true);
		return;
	}
	connect_target(c, fd);
}

/* Tells the connected target who the visitor is, with the PROXY header in
 * one send() before any data (a fresh socket's buffer takes it whole), and
 * forgets the visitor. Returns 0 or -errno. */
static int tell_target(struct conn *c)
{
	struct visitor *v = c->visitor;
	uint8_t buf[PROXY_V1_MAX_LEN];
	ssize_t n = 0, sent;

	if (v->send == 2)
		n = proxy_v2_build(buf, sizeof(buf), &v->addrs);
	else if (v->send == 1)
		n = proxy_v1_build((char *)buf, sizeof(buf), &v->addrs);
	if (n > 0) {
		sent = send(c->fd[1], buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent != n)
			n = sent < 0 ? -errno : -EIO;
	}
	free(v);
	c->visitor = NULL;
	return n < 0 ? (int)n : 0;
}

/* The visitor of an accepted connection: its peer, and the address it
 * reached. Returns 0 or -errno. */
static int visitor_of(struct conn *c, const union sockaddr_inet *from)
{
	socklen_t len = sizeof(c->visitor->addrs.dst);

	c->visitor->addrs.proto = SOCK_STREAM;
	c->visitor->addrs.src = *from;
	return getsockname(c->fd[0], &c->visitor->addrs.dst.sa, &len) < 0 ? -errno : 0;
}

/* Relays the accepted client. Returns 0 when it is taken care of (relayed,
 * or finished), or a negative errno with client still the caller's. */
static int start_conn(struct relay_listener *lis, int client, const union sockaddr_inet *from,
		      const struct ip_addr *source)
{
	struct relay_ctx *ctx = lis->ctx;
	const struct relay_visitor *rv = &lis->visitor;
	struct conn *c = calloc(1, sizeof(*c));
	int fd = -1;

	if (!c)
		return -ENOMEM;
	if ((rv->read_header || rv->send_header) && !(c->visitor = calloc(1, sizeof(*c->visitor)))) {
		free(c);
		return -ENOMEM;
	}
	if (!rv->read_header) {
		fd = open_target(lis);
		if (fd < 0) {
			free(c->visitor);
			free(c);
			return fd;
		}
	}
	if (!within_share(lis, c, source)) {
		if (fd >= 0)
			close(fd);
		free(c->visitor);
		free(c);
		close_with_reset(client);
		return 0;
	}
	if (c->visitor) {
		c->visitor->send = rv->send_header;
		c->visitor->transparent = rv->transparent;
	}
	c->lis = lis;
	c->fd[0] = client;
	c->fd[1] = -1;
	ctx->sockets++;
	c->connecting = true;
	loop_timer_init(&c->timer, on_timer, c);
	c->next = lis->conns;
	if (c->next)
		c->next->prev = c;
	lis->conns = c;
	lis->stats.active++;
	lis->stats.total++;
	/* Until connected, the client is watched for errors only, or for its
	 * PROXY header; the timer bounds both. */
	if (loop_add(ctx->loop, client, rv->read_header ? LOOP_READ : 0, on_io, c) < 0 ||
	    loop_timer_start(ctx->loop, &c->timer, ctx->connect_timeout_ms) < 0 ||
	    (rv->send_header && !rv->read_header && visitor_of(c, from) < 0)) {
		if (fd >= 0)
			close(fd);
		finish(c, true);
		return 0;
	}
	if (fd >= 0)
		connect_target(c, fd);
	return 0;
}

static void on_accept(struct loop *l, int fd, unsigned events, void *data)
{
	struct relay_listener *lis = data;
	struct relay_ctx *ctx = lis->ctx;

	(void)l;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		union sockaddr_inet from;
		socklen_t len = sizeof(from);
		int client = accept4(fd, &from.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC), r;
		struct ip_addr source;

		if (client < 0) {
			r = errno;
			if (r == EAGAIN || r == EWOULDBLOCK)
				return;
			if (r == EMFILE || r == ENFILE) {
				if (refuse_pending(lis))
					continue;
			} else if (r == EINTR || r == ECONNABORTED || r == EPROTO || r == ENETDOWN ||
				   r == ENOPROTOOPT || r == EHOSTDOWN || r == ENONET ||
				   r == EHOSTUNREACH || r == EOPNOTSUPP || r == ENETUNREACH) {
				/* The pending connection's own error (accept(2)): it is gone. */
				continue;
			}
			pause_accepting(lis, r);
			return;
		}
		source = relay_source_of(&from);
		if (!allowed(lis, &from, &source)) {
			close_with_reset(client);
			continue;
		}
		/* The relays' share of fds is taken: reset, so that the API and the
		 * control plane keep the reserve. */
		if (!relay_ctx_room_for(ctx, FDS_PER_CONN)) {
			refuse(lis, client);
			continue;
		}
		r = start_conn(lis, client, &from, &source);
		if (r == -EMFILE || r == -ENFILE)
			refuse(lis, client);
		else if (r < 0)
			close_with_reset(client);
	}
}

int relay_bind_socket(const union sockaddr_inet *bind_addr, int type, bool reuseport,
		      union sockaddr_inet *bound, struct errbuf *e)
{
	char addr[ADDR_HOSTPORT_STRLEN];
	socklen_t len = sizeof(*bound);
	int one = 1, zero = 0, rcvbuf = UDP_LISTENER_RCVBUF, fd, r;
	bool tcp = type == SOCK_STREAM;

	sockaddr_inet_format(bind_addr, addr, sizeof(addr));
	fd = socket(bind_addr->sa.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* The IPv6 any-address serves IPv4 too, whatever the system default. */
	if (bind_addr->sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&bind_addr->in6.sin6_addr))
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (tcp) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* Accepted sockets inherit them (the kernel clones the listener's
		 * socket): six system calls fewer per connection. */
		set_socket_options(fd);
	} else {
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
	if ((reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, &bind_addr->sa, sockaddr_inet_len(bind_addr)) < 0 ||
	    (tcp && listen(fd, SOMAXCONN) < 0) || getsockname(fd, &bound->sa, &len) < 0)
		goto fail;
	return fd;
fail:
	r = errbuf_set(e, -errno, "cannot listen on %s%s: %s", addr, tcp ? "" : "/udp",
		       strerror(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

int relay_socket(const union sockaddr_inet *bind_addr, bool reuseport, union sockaddr_inet *bound,
		 struct errbuf *e)
{
	return relay_bind_socket(bind_addr, SOCK_STREAM, reuseport, bound, e);
}

int relay_adopt(struct relay_listener **out, struct relay_ctx *ctx, int fd,
		const union sockaddr_inet *target)
{
	struct relay_listener *lis = calloc(1, sizeof(*lis));
	socklen_t len = sizeof(lis->addr);
	int r = -ENOMEM;

	*out = NULL;
	if (!lis)
		goto fail;
	lis->ctx = ctx;
	lis->fd = fd;
	lis->target = *target;
	loop_timer_init(&lis->pause_timer, on_pause_end, lis);
	if (getsockname(fd, &lis->addr.sa, &len) < 0) {
		r = -errno;
		goto fail;
	}
	r = loop_add(ctx->loop, fd, LOOP_READ, on_accept, lis);
	if (r < 0)
		goto fail;
	ctx->sockets++;
	*out = lis;
	return 0;
fail:
	close(fd);
	free(lis);
	return r;
}

int relay_listen(struct relay_listener **out, struct relay_ctx *ctx, const union sockaddr_inet *bind_addr,
		 const union sockaddr_inet *target, struct errbuf *e)
{
	union sockaddr_inet bound;
	char addr[ADDR_HOSTPORT_STRLEN];
	int fd = relay_socket(bind_addr, false, &bound, e), r;

	*out = NULL;
	if (fd < 0)
		return fd;
	r = relay_adopt(out, ctx, fd, target);
	if (r < 0) {
		sockaddr_inet_format(&bound, addr, sizeof(addr));
		return errbuf_set(e, r, "cannot relay %s: %s", addr, strerror(-r));
	}
	return 0;
}

void relay_listener_set_target(struct relay_listener *lis, const union sockaddr_inet *target)
{
	lis->target = *target;
}

void relay_listener_set_visitor(struct relay_listener *lis, const struct relay_visitor *v)
{
	lis->visitor = *v;
}

void relay_listener_set_source_cap(struct relay_listener *lis, uint32_t cap)
{
	lis->source_cap = cap;
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
	loop_timer_stop(lis->ctx->loop, &lis->pause_timer);
	loop_del(lis->ctx->loop, lis->fd);
	close(lis->fd);
	lis->ctx->sockets--;
	while (lis->conns)
		finish(lis->conns, true);
	free(lis);
}
