#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wgrp/log.h"
#include "wgrp/loop.h"
#include "wgrp/relay_pool.h"
#include "wgrp/udp_relay.h"

/* More workers than this cost fds and memory and win nothing. */
#define MAX_WORKERS 1024
/* A worker's own fds: its epoll and the ends of its two pipes. */
#define WORKER_FDS 5

enum command_op {
	CMD_ADOPT,
	CMD_SET_TARGET,
	CMD_SET_SOURCE_CAP,
	CMD_STATS,
	CMD_CTX_STATS,
	CMD_CLOSE,
	CMD_STOP,
};

/* A worker's listener of one mapping, TCP or UDP as the pool's listener
 * is; NULL (either member) until the worker adopted its socket. */
union listener {
	struct relay_listener *tcp;
	struct udp_listener *udp;
};

/* A message from the main loop to one worker. The main loop waits for the
 * answer before it touches the command again, so the worker may use it
 * meanwhile: the pipes order the two threads' accesses. */
struct command {
	enum command_op op;
	bool udp;
	union listener lis; /* CMD_ADOPT sets it */
	int fd;             /* CMD_ADOPT: the worker's socket */
	union sockaddr_inet target;
	const struct ip_addr *only_from;
	struct relay_visitor visitor; /* CMD_ADOPT, CMD_SET_TARGET */
	uint32_t source_cap;          /* CMD_SET_SOURCE_CAP */
	union {                       /* CMD_STATS, CMD_CTX_STATS */
		struct relay_stats tcp;
		struct udp_stats udp;
		struct relay_ctx_stats ctx;
	} stats;
	int result;
};

struct worker {
	unsigned index;
	pthread_t thread;
	bool running;
	/* The worker's own from the moment it runs; the main loop frees them
	 * after joining it. */
	struct loop *loop;
	struct relay_ctx *relays;
	int commands[2]; /* struct command pointers, main loop -> worker */
	int answers[2];  /* a byte per command done, worker -> main loop */
};

struct relay_pool {
	struct worker *workers;
	unsigned n;
	struct command *cmds; /* one per worker, for the main loop's calls */
};

/* A mapping's sockets, one per worker, each adopted by its worker. */
struct sockets {
	struct relay_pool *pool;
	bool udp;
	union sockaddr_inet addr;
	union listener *lis; /* one per worker, each the worker's */
};

struct relay_pool_listener {
	struct sockets s;
	struct relay_stats stats; /* the sum, as of the last relay_pool_stats() */
};

struct relay_pool_udp {
	struct sockets s;
	struct udp_stats stats; /* the sum, as of the last relay_pool_udp_stats() */
};

static int write_all(int fd, const void *buf, size_t len)
{
	ssize_t n;

	while ((n = write(fd, buf, len)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)len ? 0 : -EIO;
}

static int read_all(int fd, void *buf, size_t len)
{
	ssize_t n;

	while ((n = read(fd, buf, len)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)len ? 0 : -EIO;
}

static void run_command(struct worker *w, struct command *c)
{
	c->result = 0;
	switch (c->op) {
	case CMD_ADOPT:
		c->result = c->udp ? udp_adopt(&c->lis.udp, w->relays, c->fd, &c->target)
				   : relay_adopt(&c->lis.tcp, w->relays, c->fd, &c->target);
		if (c->result < 0)
			break;
		if (c->udp && c->only_from)
			udp_listener_only_from(c->lis.udp, c->only_from);
		else if (c->only_from)
			relay_listener_only_from(c->lis.tcp, c->only_from);
		if (c->udp)
			udp_listener_set_visitor(c->lis.udp, &c->visitor);
		else
			relay_listener_set_visitor(c->lis.tcp, &c->visitor);
		break;
	case CMD_SET_TARGET:
		if (c->udp) {
			udp_listener_set_target(c->lis.udp, &c->target);
			udp_listener_set_visitor(c->lis.udp, &c->visitor);
			break;
		}
		relay_listener_set_target(c->lis.tcp, &c->target);
		relay_listener_set_visitor(c->lis.tcp, &c->visitor);
		break;
	case CMD_SET_SOURCE_CAP:
		if (c->udp)
			udp_listener_set_source_cap(c->lis.udp, c->source_cap);
		else
			relay_listener_set_source_cap(c->lis.tcp, c->source_cap);
		break;
	case CMD_STATS:
		if (c->udp)
			c->stats.udp = *udp_listener_stats(c->lis.udp);
		else
			c->stats.tcp = *relay_listener_stats(c->lis.tcp);
		break;
	case CMD_CTX_STATS:
		relay_ctx_stats(w->relays, &c->stats.ctx);
		break;
	case CMD_CLOSE:
		if (c->udp)
			udp_listener_close(c->lis.udp);
		else
			relay_listener_close(c->lis.tcp);
		break;
	case CMD_STOP:
		loop_stop(w->loop);
		break;
	}
}

/* The worker's end of its command pipe. */
static void on_command(struct loop *l, int fd, unsigned events, void *data)
{
	struct worker *w = data;
	struct command *c;
	char done = 1;

	(void)l;
	(void)events;
	/* Pointers are written whole (less than PIPE_BUF), so read whole. */
	if (read_all(fd, &c, sizeof(c)) < 0)
		return;
	run_command(w, c);
	if (write_all(w->answers[1], &done, 1) < 0) {
		/* The main loop would wait for ever. */
		log_error("relay worker %u: cannot answer the main loop: %s", w->index,
			  strerror(errno));
		abort();
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int r = loop_run(w->loop);

	if (r < 0) {
		/* epoll itself failed: this worker's connections are lost and the
		 * main loop would wait for it for ever. */
		log_error("relay worker %u: event loop failed: %s", w->index, strerror(-r));
		abort();
	}
	return NULL;
}

static void send_command(struct worker *w, struct command *c)
{
	if (write_all(w->commands[1], &c, sizeof(c)) < 0) {
		log_error("relay worker %u: cannot send a command: %s", w->index, strerror(errno));
		abort();
	}
}

static void await_answer(struct worker *w)
{
	char done;

	if (read_all(w->answers[0], &done, 1) < 0) {
		log_error("relay worker %u: no answer: %s", w->index, strerror(errno));
		abort();
	}
}

/* Sends p->cmds[i] to worker i, for every worker, then waits for all:
 * they work on them at the same time. */
static void broadcast(struct relay_pool *p)
{
	for (unsigned i = 0; i < p->n; i++)
		send_command(&p->workers[i], &p->cmds[i]);
	for (unsigned i = 0; i < p->n; i++)
		await_answer(&p->workers[i]);
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

static void worker_free(struct worker *w)
{
	relay_ctx_free(w->relays);
	loop_free(w->loop);
	for (int i = 0; i < 2; i++) {
		if (w->commands[i] >= 0)
			close(w->commands[i]);
		if (w->answers[i] >= 0)
			close(w->answers[i]);
	}
}

/* Everything but the thread, made by the main loop before it starts. */
static int worker_init(struct worker *w, unsigned index, const struct relay_config *cfg)
{
	int r;

	w->index = index;
	w->commands[0] = w->commands[1] = w->answers[0] = w->answers[1] = -1;
	if (pipe2(w->commands, O_CLOEXEC) < 0 || pipe2(w->answers, O_CLOEXEC) < 0)
		return -errno;
	r = loop_new(&w->loop);
	if (r < 0)
		return r;
	r = relay_ctx_new(&w->relays, w->loop, cfg);
	if (r < 0)
		return r;
	return loop_add(w->loop, w->commands[0], LOOP_READ, on_command, w);
}

/* Starts w's thread with every signal blocked: signals are the main loop's
 * (its signalfd), and one delivered to a worker would take the default action. */
static int worker_start(struct worker *w)
{
	sigset_t all, old;
	char name[16];
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return r;
	w->running = true;
	snprintf(name, sizeof(name), "relay-%u", w->index);
	pthread_setname_np(w->thread, name);
	return 0;
}

int relay_pool_new(struct relay_pool **out, const struct relay_config *cfg)
{
	struct relay_pool *p = calloc(1, sizeof(*p));
	struct relay_config wcfg = *cfg;
	unsigned n = cfg->workers ? cfg->workers : online_cpus();
	int r = -ENOMEM;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	if (n > MAX_WORKERS)
		n = MAX_WORKERS;
	p->workers = calloc(n, sizeof(*p->workers));
	p->cmds = calloc(n, sizeof(*p->cmds));
	if (!p->workers || !p->cmds)
		goto fail;
	wcfg.shares = n;
	wcfg.owner_fds = WORKER_FDS;
	for (unsigned i = 0; i < n; i++) {
		wcfg.quiet = i > 0;
		p->n = i + 1;
		r = worker_init(&p->workers[i], i, &wcfg);
		if (r < 0)
			goto fail;
	}
	for (unsigned i = 0; i < n; i++) {
		r = worker_start(&p->workers[i]);
		if (r < 0)
			goto fail;
	}
	*out = p;
	return 0;
fail:
	relay_pool_free(p);
	return r;
}

unsigned relay_pool_workers(const struct relay_pool *p)
{
	return p->n;
}

size_t relay_pool_fd_reserve(const struct relay_pool *p)
{
	return relay_ctx_fd_reserve(p->workers[0].relays);
}

void relay_pool_ctx_stats(struct relay_pool *p, struct relay_ctx_stats *sum)
{
	for (unsigned i = 0; i < p->n; i++)
		p->cmds[i] = (struct command){ .op = CMD_CTX_STATS };
	broadcast(p);
	*sum = (struct relay_ctx_stats){ 0 };
	for (unsigned i = 0; i < p->n; i++) {
		const struct relay_ctx_stats *s = &p->cmds[i].stats.ctx;

		sum->fds += s->fds;
		/* Each worker has an equal share: the budget is their sum. */
		sum->fd_budget = s->fd_budget == UINT64_MAX || sum->fd_budget == UINT64_MAX
					 ? UINT64_MAX
					 : sum->fd_budget + s->fd_budget;
		sum->pipes_lent += s->pipes_lent;
		sum->pipes_idle += s->pipes_idle;
	}
}

void relay_pool_free(struct relay_pool *p)
{
	struct command stop = { .op = CMD_STOP };

	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++) {
		struct worker *w = &p->workers[i];

		if (!w->running)
			continue;
		send_command(w, &stop);
		await_answer(w);
		pthread_join(w->thread, NULL);
	}
	for (unsigned i = 0; i < p->n; i++)
		worker_free(&p->workers[i]);
	free(p->workers);
	free(p->cmds);
	free(p);
}

/* Closes the listeners the workers have adopted and, with fds, the sockets
 * they have not. */
static void close_sockets(struct sockets *ss, const int *fds)
{
	struct relay_pool *p = ss->pool;

	for (unsigned i = 0; i < p->n; i++) {
		p->cmds[i] = (struct command){ .op = CMD_CLOSE, .udp = ss->udp, .lis = ss->lis[i] };
		if (ss->lis[i].tcp)
			send_command(&p->workers[i], &p->cmds[i]);
		else if (fds && fds[i] >= 0)
			close(fds[i]);
	}
	for (unsigned i = 0; i < p->n; i++)
		if (ss->lis[i].tcp)
			await_answer(&p->workers[i]);
	free(ss->lis);
}

/* Opens ss's sockets on bind, one per worker (the first picks the port
 * when asked for any, the others join it), and has each worker adopt its
 * own with proto (CMD_ADOPT: its target, filter and visitor). Returns 0, or
 * a negative errno with the reason in e and nothing left open. */
static int open_sockets(struct sockets *ss, struct relay_pool *p, const union sockaddr_inet *bind,
			const struct command *proto, struct errbuf *e)
{
	int *fds = malloc(p->n * sizeof(*fds));
	union sockaddr_inet addr = *bind, bound;
	char where[ADDR_HOSTPORT_STRLEN];
	int r = 0;

	ss->pool = p;
	ss->lis = calloc(p->n, sizeof(*ss->lis));
	if (!fds || !ss->lis) {
		free(fds);
		free(ss->lis);
		return errbuf_set(e, -ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < p->n; i++)
		fds[i] = -1;
	for (unsigned i = 0; i < p->n; i++) {
		fds[i] = ss->udp ? udp_socket(&addr, p->n > 1, &bound, e)
				 : relay_socket(&addr, p->n > 1, &bound, e);
		if (fds[i] < 0) {
			r = fds[i];
			goto fail;
		}
		if (i == 0)
			addr = ss->addr = bound;
	}
	for (unsigned i = 0; i < p->n; i++) {
		p->cmds[i] = *proto;
		p->cmds[i].fd = fds[i];
	}
	broadcast(p);
	for (unsigned i = 0; i < p->n; i++) {
		/* An adopted socket is the worker's, even when adopting failed. */
		fds[i] = -1;
		ss->lis[i] = p->cmds[i].lis;
		if (p->cmds[i].result < 0)
			r = p->cmds[i].result;
	}
	if (r < 0) {
		sockaddr_inet_format(&ss->addr, where, sizeof(where));
		errbuf_set(e, r, "cannot relay %s: %s", where, strerror(-r));
		goto fail;
	}
	free(fds);
	return 0;
fail:
	close_sockets(ss, fds);
	free(fds);
	return r;
}

int relay_pool_listen(struct relay_pool_listener **out, struct relay_pool *p,
		      const union sockaddr_inet *bind, const union sockaddr_inet *target,
		      const struct ip_addr *only_from, const struct relay_visitor *visitor,
		      struct errbuf *e)
{
	struct relay_pool_listener *pl = calloc(1, sizeof(*pl));
	struct command adopt = { .op = CMD_ADOPT, .target = *target, .only_from = only_from };
	int r;

	*out = NULL;
	if (!pl)
		return errbuf_set(e, -ENOMEM, "out of memory");
	if (visitor)
		adopt.visitor = *visitor;
	r = open_sockets(&pl->s, p, bind, &adopt, e);
	if (r < 0) {
		free(pl);
		return r;
	}
	*out = pl;
	return 0;
}

/* New connections or flows go to target, told of the visitor as visitor
 * says (NULL: nothing). */
static void set_target(struct sockets *ss, const union sockaddr_inet *target,
		       const struct relay_visitor *visitor)
{
	struct relay_pool *p = ss->pool;

	for (unsigned i = 0; i < p->n; i++) {
		p->cmds[i] = (struct command){ .op = CMD_SET_TARGET, .udp = ss->udp,
					       .lis = ss->lis[i], .target = *target };
		if (visitor)
			p->cmds[i].visitor = *visitor;
	}
	broadcast(p);
}

void relay_pool_set_target(struct relay_pool_listener *pl, const union sockaddr_inet *target,
			   const struct relay_visitor *visitor)
{
	set_target(&pl->s, target, visitor);
}

static void set_source_cap(struct sockets *ss, uint32_t cap)
{
	struct relay_pool *p = ss->pool;

	for (unsigned i = 0; i < p->n; i++)
		p->cmds[i] = (struct command){ .op = CMD_SET_SOURCE_CAP, .udp = ss->udp,
					       .lis = ss->lis[i], .source_cap = cap };
	broadcast(p);
}

void relay_pool_set_source_cap(struct relay_pool_listener *pl, uint32_t cap)
{
	set_source_cap(&pl->s, cap);
}

void relay_pool_udp_set_source_cap(struct relay_pool_udp *pu, uint32_t cap)
{
	set_source_cap(&pu->s, cap);
}

/* Has every worker copy its listener's counters into its command. */
static void read_stats(struct sockets *ss)
{
	struct relay_pool *p = ss->pool;

	for (unsigned i = 0; i < p->n; i++)
		p->cmds[i] = (struct command){ .op = CMD_STATS, .udp = ss->udp, .lis = ss->lis[i] };
	broadcast(p);
}

void relay_pool_address(const struct relay_pool_listener *pl, union sockaddr_inet *out)
{
	*out = pl->s.addr;
}

const struct relay_stats *relay_pool_stats(struct relay_pool_listener *pl)
{
	struct relay_pool *p = pl->s.pool;
	struct relay_stats *sum = &pl->stats;

	read_stats(&pl->s);
	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < p->n; i++) {
		const struct relay_stats *s = &p->cmds[i].stats.tcp;

		sum->active += s->active;
		sum->total += s->total;
		sum->bytes_in += s->bytes_in;
		sum->bytes_out += s->bytes_out;
		sum->connect_failures += s->connect_failures;
		sum->refused += s->refused;
		sum->refused_source += s->refused_source;
		sum->idle_closed += s->idle_closed;
		sum->bad_header += s->bad_header;
	}
	return sum;
}

void relay_pool_close(struct relay_pool_listener *pl)
{
	if (!pl)
		return;
	close_sockets(&pl->s, NULL);
	free(pl);
}

int relay_pool_listen_udp(struct relay_pool_udp **out, struct relay_pool *p,
			  const union sockaddr_inet *bind, const union sockaddr_inet *target,
			  const struct ip_addr *only_from, const struct relay_visitor *visitor,
			  struct errbuf *e)
{
	struct relay_pool_udp *pu = calloc(1, sizeof(*pu));
	struct command adopt = { .op = CMD_ADOPT, .udp = true, .target = *target,
				 .only_from = only_from };
	int r;

	*out = NULL;
	if (!pu)
		return errbuf_set(e, -ENOMEM, "out of memory");
	if (visitor)
		adopt.visitor = *visitor;
	pu->s.udp = true;
	r = open_sockets(&pu->s, p, bind, &adopt, e);
	if (r < 0) {
		free(pu);
		return r;
	}
	*out = pu;
	return 0;
}

void relay_pool_udp_set_target(struct relay_pool_udp *pu, const union sockaddr_inet *target,
			       const struct relay_visitor *visitor)
{
	set_target(&pu->s, target, visitor);
}

void relay_pool_udp_address(const struct relay_pool_udp *pu, union sockaddr_inet *out)
{
	*out = pu->s.addr;
}

const struct udp_stats *relay_pool_udp_stats(struct relay_pool_udp *pu)
{
	struct relay_pool *p = pu->s.pool;
	struct udp_stats *sum = &pu->stats;

	read_stats(&pu->s);
	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < p->n; i++) {
		const struct udp_stats *s = &p->cmds[i].stats.udp;

		sum->flows_active += s->flows_active;
		sum->flows_total += s->flows_total;
		sum->datagrams_in += s->datagrams_in;
		sum->datagrams_out += s->datagrams_out;
		sum->bytes_in += s->bytes_in;
		sum->bytes_out += s->bytes_out;
		sum->too_big += s->too_big;
		sum->flow_cap += s->flow_cap;
		sum->source_cap += s->source_cap;
		sum->no_fds += s->no_fds;
		sum->not_from_peer += s->not_from_peer;
		sum->bad_header += s->bad_header;
		sum->send_failed += s->send_failed;
		sum->flows_expired += s->flows_expired;
		sum->flows_ended_by_icmp += s->flows_ended_by_icmp;
		sum->flows_failed += s->flows_failed;
	}
	return sum;
}

void relay_pool_udp_close(struct relay_pool_udp *pu)
{
	if (!pu)
		return;
	close_sockets(&pu->s, NULL);
	free(pu);
}
