/* relay-check: a test client and backend in one program, for wgrp-relay or
 * any TCP relay. It listens on the backend address (the relay's target),
 * connects to the relay, accepts what the relay connects through, and checks
 * what arrives at each end. usage() lists the options; the modes:
 *   integrity    --bytes N (200M) each way at once, verified; prints MB/s
 *   backpressure the backend reads nothing until the client is held back, which
 *                must happen before all --bytes N (200M) were sent
 *   small-writes --count N (20000) writes of 1..7 bytes each way, in order
 *   half-close   each end in turn sends and shuts down: the other gets all,
 *                then EOF; after --pause MS (1000) it sends back all of its own
 *   reset        each end in turn closes with SO_LINGER 0: the other gets
 *                ECONNRESET within --within MS (3000)
 *   refused      the backend port is bound, not listening: the client's
 *                connection ends (EOF or reset) after --after MS (0) and
 *                within --within MS (2000)
 *   concurrent   --conns N (1000) connections open at once, a distinct payload
 *                each way; prints "all N connections open", holds them
 *                --hold MS (0), then shuts all down. --allow-refused: clients
 *                the relay drops before reaching the backend are only counted
 * Exit 0 with a summary on stdout, 1 with the reason on stderr, 2 on bad
 * usage. One thread, non-blocking sockets, one poll() loop: nothing assumes
 * how much the kernel or the relay buffers. Each direction carries a seeded
 * xorshift64* stream starting with the connection's 4-byte index: receivers
 * regenerate and compare as data arrives, storing nothing, and a concurrent
 * backend learns its client from it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024) /* the largest send() or recv() */
#define HDR 4              /* bytes of the index prefix */

struct stream {
	uint64_t x, word; /* xorshift64* state; the word being handed out */
	uint64_t pos;     /* bytes produced */
	uint32_t id;
};

struct tx {
	struct stream data;
	uint64_t sizes; /* small writes: their sizes' PRNG state; 0: bulk */
	uint64_t total, sent;
	size_t cur; /* what is left of the write under way */
	bool shut_after, shut;
};

enum want { WANT_EOF, WANT_RESET, WANT_ANY };
enum ended { OPEN, GOT_EOF, GOT_RESET };

struct rx {
	struct stream data;
	uint64_t expect, got;
	bool ready; /* false while a concurrent backend does not know its index */
	bool paused;
	uint8_t hdr[HDR];
	enum want want;
	enum ended ended;
};

struct end {
	char name[24]; /* for messages: "client", "backend 17" */
	int fd;
	bool is_client;
	struct tx tx;
	struct rx rx;
	struct end *peer; /* the other end of the same relayed connection */
};

static const char *mode;
static struct sockaddr_storage relay_sa, backend_sa;
static socklen_t relay_len, backend_len;
static int listen_fd = -1;
static uint8_t tbuf[CHUNK], rbuf[CHUNK], ebuf[CHUNK];
static uint64_t o_seed = 1, o_bytes = 200 << 20, o_count = 20000, o_conns = 1000, o_hold,
		o_pause = 1000, o_within, o_after, o_limit;
static bool allow_refused;
static int64_t end_of_time; /* the time limit, less a second to say why */

/* What the poll loop drives: these ends, and the backend listener when
 * on_accept is set. */
static struct end **ends;
static size_t n_ends;
static void (*on_accept)(int fd);

/* The concurrent mode's connections. */
static struct end *clients, *backends;
static unsigned n_accepted, n_refused;

static void learn_index(struct end *b, uint32_t idx);
static bool refused_client(struct end *e);

static void __attribute__((format(printf, 1, 2), noreturn)) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "relay-check: %s: ", mode);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void on_alarm(int sig)
{
	static const char msg[] = "relay-check: time limit reached, stuck\n";
	ssize_t r = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)sig, (void)r;
	_exit(1);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- byte streams --- */

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545F4914F6CDD1DULL;
}

/* splitmix64, so that neighbouring indices give unrelated streams; never 0,
 * which xorshift would keep forever. */
static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t z = a + b * 0x9E3779B97F4A7C15ULL;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return (z ^ (z >> 31)) | 1;
}

/* dir 0 goes to the backend, 1 to the client: different streams, so that a
 * relay echoing or crossing directions fails at once. */
static void stream_init(struct stream *s, uint32_t id, unsigned dir)
{
	*s = (struct stream){ .x = mix(o_seed, (uint64_t)id << 1 | dir), .id = id };
}

static void stream_fill(struct stream *s, uint8_t *p, size_t n)
{
	for (; n; p++, n--, s->pos++) {
		unsigned k = (unsigned)((s->pos - HDR) % 8);

		if (s->pos < HDR) {
			*p = (uint8_t)(s->id >> (8 * (HDR - 1 - s->pos)));
			continue;
		}
		if (k == 0 && n >= 8) { /* a whole word: the fast path */
			uint64_t w = xorshift(&s->x);

			for (int j = 0; j < 8; j++)
				p[j] = (uint8_t)(w >> (8 * j));
			p += 7, n -= 7, s->pos += 7;
			continue;
		}
		if (k == 0)
			s->word = xorshift(&s->x);
		*p = (uint8_t)(s->word >> (8 * k));
	}
}

/* --- sending --- */

static uint64_t small_write_size(uint64_t *sizes)
{
	return 1 + xorshift(sizes) % 7;
}

static void tx_init(struct tx *t, uint32_t id, unsigned dir, uint64_t total, uint64_t sizes)
{
	*t = (struct tx){ .total = total, .sizes = sizes };
	stream_init(&t->data, id, dir);
}

static bool tx_active(const struct end *e)
{
	return e->fd >= 0 && (e->tx.sent < e->tx.total || (e->tx.shut_after && !e->tx.shut));
}

/* Sends until the socket is full. The stream advances only by what the
 * kernel took, so a partial write regenerates just the part that went. */
static void tx_pump(struct end *e)
{
	struct tx *t = &e->tx;

	for (int i = 0; i < 64 && t->sent < t->total; i++) {
		struct stream next = t->data;
		ssize_t w;

		if (!t->cur)
			t->cur = t->sizes ? small_write_size(&t->sizes) : CHUNK;
		if (t->cur > t->total - t->sent)
			t->cur = t->total - t->sent;
		stream_fill(&next, tbuf, t->cur);
		w = send(e->fd, tbuf, t->cur, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (w < 0 && (errno == ECONNRESET || errno == EPIPE) && refused_client(e))
			return;
		if (w < 0)
			fail("%s: send after %" PRIu64 " bytes: %s", e->name, t->sent, strerror(errno));
		if ((size_t)w == t->cur)
			t->data = next;
		else
			stream_fill(&t->data, tbuf, (size_t)w);
		t->sent += (size_t)w;
		t->cur -= (size_t)w;
	}
	if (t->sent == t->total && t->shut_after && !t->shut) {
		if (shutdown(e->fd, SHUT_WR) < 0)
			fail("%s: shutdown: %s", e->name, strerror(errno));
		t->shut = true;
	}
}

/* --- receiving --- */

static void rx_init(struct rx *r, uint32_t id, unsigned dir, uint64_t expect)
{
	*r = (struct rx){ .expect = expect, .ready = true };
	stream_init(&r->data, id, dir);
}

static bool rx_active(const struct end *e)
{
	return e->fd >= 0 && e->rx.ended == OPEN && !e->rx.paused;
}

static void rx_verify(struct end *e, const uint8_t *p, size_t n)
{
	struct rx *r = &e->rx;
	size_t i = 0;

	if (r->got + n > r->expect)
		fail("%s: received %" PRIu64 " bytes, more than the %" PRIu64 " sent", e->name,
		     r->got + n, r->expect);
	stream_fill(&r->data, ebuf, n);
	if (memcmp(p, ebuf, n) != 0) {
		while (p[i] == ebuf[i])
			i++;
		fail("%s: byte %" PRIu64 " differs: got 0x%02x, sent 0x%02x", e->name, r->got + i,
		     p[i], ebuf[i]);
	}
	r->got += n;
}

static void rx_data(struct end *e, const uint8_t *p, size_t n)
{
	struct rx *r = &e->rx;
	uint8_t hdr[HDR];

	if (!r->ready) { /* a concurrent backend: the first bytes name the client */
		size_t k = HDR - r->got < n ? HDR - r->got : n;

		memcpy(r->hdr + r->got, p, k);
		r->got += k, p += k, n -= k;
		if (r->got < HDR)
			return;
		memcpy(hdr, r->hdr, HDR); /* learn_index() starts rx afresh */
		learn_index(e, (uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3]);
		rx_verify(e, hdr, HDR);
	}
	rx_verify(e, p, n);
}

/* A clean EOF is right only after all the data, once the far end shut down. */
static void rx_ended(struct end *e, enum ended how)
{
	struct rx *r = &e->rx;

	r->ended = how;
	if (refused_client(e) || r->want == WANT_ANY || (how == GOT_RESET && r->want == WANT_RESET))
		return;
	if (how == GOT_RESET)
		fail("%s: connection reset after %" PRIu64 " bytes", e->name, r->got);
	if (r->want == WANT_RESET)
		fail("%s: clean EOF where a reset was expected", e->name);
	if (!e->peer || !e->peer->tx.shut)
		fail("%s: EOF after %" PRIu64 " bytes, but the other end had not shut down", e->name,
		     r->got);
	if (r->got != r->expect)
		fail("%s: EOF after %" PRIu64 " of %" PRIu64 " bytes", e->name, r->got, r->expect);
}

static void rx_pump(struct end *e)
{
	for (int i = 0; i < 16 && rx_active(e); i++) {
		ssize_t n = recv(e->fd, rbuf, sizeof(rbuf), 0);

		if (n > 0)
			rx_data(e, rbuf, (size_t)n);
		else if (n == 0 || errno == ECONNRESET)
			rx_ended(e, n == 0 ? GOT_EOF : GOT_RESET);
		else if (errno == EAGAIN)
			return;
		else if (errno != EINTR)
			fail("%s: recv after %" PRIu64 " bytes: %s", e->name, e->rx.got, strerror(errno));
	}
}

/* --- sockets and ends --- */

static void parse_addr(const char *s, struct sockaddr_storage *sa, socklen_t *len)
{
	const char *colon = strrchr(s, ':'), *host = s;
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV }, *ai;
	size_t n = colon ? (size_t)(colon - s) : 0;
	char buf[64];

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
		host++, n -= 2;
	if (!colon || n >= sizeof(buf))
		fail("%s: expected ip:port or [ip6]:port", s);
	memcpy(buf, host, n);
	buf[n] = '\0';
	if (getaddrinfo(buf, colon + 1, &hints, &ai) != 0)
		fail("%s: expected ip:port or [ip6]:port", s);
	memcpy(sa, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
}

static int new_socket(const struct sockaddr_storage *sa)
{
	int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		fail("socket: %s", strerror(errno));
	/* Small writes leave as written, not coalesced by our kernel. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Not listening (the refused mode), the port is held without SO_REUSEADDR,
 * so nothing else can listen there and connecting to it is refused. */
static void open_backend(bool listening)
{
	int one = 1;

	listen_fd = new_socket(&backend_sa);
	if (listening)
		setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listen_fd, (struct sockaddr *)&backend_sa, backend_len) < 0)
		fail("bind to the backend address: %s", strerror(errno));
	if (listening && listen(listen_fd, 4096) < 0)
		fail("listen: %s", strerror(errno));
}

static void add_end(struct end *e, const char *role, unsigned idx, int fd)
{
	static size_t cap;

	e->fd = fd;
	e->is_client = role[0] == 'c';
	snprintf(e->name, sizeof(e->name), clients ? "%s %u" : "%s", role, idx);
	if (n_ends == cap) {
		cap = cap ? 2 * cap : 16;
		ends = realloc(ends, cap * sizeof(*ends));
		if (!ends)
			fail("out of memory");
	}
	ends[n_ends++] = e;
}

/* Non-blocking: the connection completes while the loop runs. */
static void add_client(struct end *c, unsigned idx)
{
	int fd = new_socket(&relay_sa);

	if (connect(fd, (struct sockaddr *)&relay_sa, relay_len) < 0 && errno != EINPROGRESS)
		fail("connect to the relay: %s", strerror(errno));
	add_end(c, "client", idx, fd);
}

/* A client through the relay to the backend, the only connection in flight. */
static void open_pair(struct end *c, struct end *b)
{
	struct pollfd p[2] = { { .fd = listen_fd, .events = POLLIN } };
	int fd, err = 0;
	socklen_t len = sizeof(err);

	memset(c, 0, sizeof(*c));
	memset(b, 0, sizeof(*b));
	n_ends = 0;
	add_client(c, 0);
	p[1] = (struct pollfd){ .fd = c->fd }; /* POLLERR: the relay is not there */
	if (poll(p, 2, 5000) > 0 && !p[0].revents) {
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		fail("connection to the relay: %s", err ? strerror(err) : "closed before the backend's");
	}
	if (!p[0].revents)
		fail("the relay connected nothing to the backend within 5 s");
	if ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0)
		fail("accept: %s", strerror(errno));
	add_end(b, "backend", 0, fd);
	c->peer = b, b->peer = c;
}

static void close_end(struct end *e, bool reset)
{
	static const struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };

	if (reset && setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &abort_on_close,
				sizeof(abort_on_close)) < 0)
		fail("SO_LINGER: %s", strerror(errno));
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
}

/* --- the poll loop --- */

static void accept_all(void)
{
	int fd;

	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		on_accept(fd);
	if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
		fail("accept: %s", strerror(errno));
}

/* Moves data until done(arg) holds (true) or ms pass (false). With done
 * NULL it just runs for ms, failing on anything unexpected that arrives. */
static bool run(bool (*done)(const struct end *), const struct end *arg, uint64_t ms)
{
	static struct pollfd *pfd;
	static struct end **pe;
	static size_t cap;
	int64_t deadline = now_ms() + (int64_t)ms;

	if (deadline > end_of_time)
		deadline = end_of_time;

	for (;;) {
		int64_t left = deadline - now_ms();
		size_t n = 0;

		if (done && done(arg))
			return true;
		if (left <= 0)
			return false;
		if (cap < n_ends + 1) {
			cap = n_ends + 1;
			pfd = realloc(pfd, cap * sizeof(*pfd));
			pe = realloc(pe, cap * sizeof(*pe));
			if (!pfd || !pe)
				fail("out of memory");
		}
		if (on_accept)
			pe[n] = NULL, pfd[n++] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
		for (size_t i = 0; i < n_ends; i++) {
			short ev = (short)((tx_active(ends[i]) ? POLLOUT : 0) |
					   (rx_active(ends[i]) ? POLLIN : 0));

			if (ev)
				pe[n] = ends[i], pfd[n++] = (struct pollfd){ .fd = ends[i]->fd, .events = ev };
		}
		if (poll(pfd, n, left > INT32_MAX ? INT32_MAX : (int)left) < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		for (size_t i = 0; i < n; i++) {
			short rev = pfd[i].revents;

			if (rev && !pe[i])
				accept_all();
			if (!rev || !pe[i])
				continue;
			if (rev & (POLLIN | POLLHUP | POLLERR) && rx_active(pe[i]))
				rx_pump(pe[i]);
			if (rev & (POLLOUT | POLLHUP | POLLERR) && tx_active(pe[i]))
				tx_pump(pe[i]);
		}
	}
}

static bool all_ended(const struct end *unused)
{
	(void)unused;
	for (size_t i = 0; i < n_ends; i++)
		if (ends[i]->rx.ended == OPEN)
			return false;
	return true;
}

static bool has_ended(const struct end *e)
{
	return e->rx.ended != OPEN;
}

static bool has_all(const struct end *e)
{
	return e->rx.got == e->rx.expect && e->peer->rx.got == e->peer->rx.expect;
}

/* Sets a pair going: to_b bytes client to backend and to_c back, each shut
 * down when sent if shut; sizes: small writes' PRNG states, or NULL. */
static void exchange(struct end *c, struct end *b, uint64_t to_b, uint64_t to_c,
		     const uint64_t *sizes, bool shut)
{
	tx_init(&c->tx, 0, 0, to_b, sizes ? sizes[0] : 0);
	rx_init(&b->rx, 0, 0, to_b);
	tx_init(&b->tx, 0, 1, to_c, sizes ? sizes[1] : 0);
	rx_init(&c->rx, 0, 1, to_c);
	c->tx.shut_after = b->tx.shut_after = shut;
}

static void expect_all_ended(struct end *c, struct end *b)
{
	if (!run(all_ended, NULL, UINT32_MAX))
		fail("time limit reached: client got %" PRIu64 " of %" PRIu64 " bytes, backend %" PRIu64
		     " of %" PRIu64, c->rx.got, c->rx.expect, b->rx.got, b->rx.expect);
}

/* --- the modes --- */

static void mode_integrity(void)
{
	struct end c, b;
	int64_t t0 = now_ms();
	double s;

	open_pair(&c, &b);
	exchange(&c, &b, o_bytes, o_bytes, NULL, true);
	expect_all_ended(&c, &b);
	s = (double)(now_ms() - t0 + 1) / 1000;
	printf("integrity: %" PRIu64 " bytes each way verified in %.2f s: %.1f MB/s each way\n",
	       o_bytes, s, (double)o_bytes / 1e6 / s);
}

/* With the backend reading nothing, the client must be held back (a second
 * without progress) before it sent them all: the relay did not buffer all
 * it was given. Then the backend reads, and all must arrive. */
static void mode_backpressure(void)
{
	struct end c, b;
	uint64_t held = UINT64_MAX;

	open_pair(&c, &b);
	exchange(&c, &b, o_bytes, 0, NULL, true);
	b.tx.shut_after = false; /* no half-close yet: that is another test */
	b.rx.paused = true;
	while (held != c.tx.sent && c.tx.sent < o_bytes) {
		held = c.tx.sent;
		run(NULL, NULL, 1000);
	}
	if (c.tx.sent == o_bytes)
		fail("the client sent all %" PRIu64 " bytes with the backend reading none", o_bytes);
	b.rx.paused = false;
	b.tx.shut_after = true;
	expect_all_ended(&c, &b);
	printf("backpressure: the client was held after %" PRIu64 " bytes (all buffers), then all %"
	       PRIu64 " arrived\n", held, o_bytes);
}

static void mode_small_writes(void)
{
	struct end c, b;
	uint64_t sizes[2], total[2] = { 0, 0 };

	for (unsigned d = 0; d < 2; d++) { /* run each PRNG ahead for the totals */
		sizes[d] = mix(o_seed + 1, d);
		for (uint64_t i = 0, s = sizes[d]; i < o_count; i++)
			total[d] += small_write_size(&s);
	}
	open_pair(&c, &b);
	exchange(&c, &b, total[0], total[1], sizes, true);
	expect_all_ended(&c, &b);
	printf("small-writes: %" PRIu64 " writes of 1..7 bytes each way (%" PRIu64 " and %" PRIu64
	       " bytes), all in order\n", o_count, total[0], total[1]);
}

/* first sends 4 MB and shuts down; second reads late, so that the relay
 * holds data when the EOF comes, and must get it all and then EOF. After a
 * quiet pause second sends 1 MB back, which first must get, then EOF. */
static void half_close_from(bool client_first)
{
	const uint64_t k = 4 << 20, m = 1 << 20;
	struct end c, b, *first = client_first ? &c : &b, *second = client_first ? &b : &c;

	open_pair(&c, &b);
	exchange(&c, &b, client_first ? k : m, client_first ? m : k, NULL, true);
	second->tx.total = 0;
	second->tx.shut_after = false;
	second->rx.paused = true;
	run(NULL, NULL, 200);
	second->rx.paused = false;
	if (!run(has_ended, second, 10000))
		fail("%s got %" PRIu64 " of %" PRIu64 " bytes and no EOF within 10 s of %s's", second->name,
		     second->rx.got, k, first->name);
	run(NULL, NULL, o_pause);
	second->tx.total = m;
	second->tx.shut_after = true;
	if (!run(has_ended, first, 10000))
		fail("after its shutdown, %s got %" PRIu64 " of the %" PRIu64 " bytes sent back, no EOF",
		     first->name, first->rx.got, m);
	close_end(&c, false);
	close_end(&b, false);
}

static void mode_half_close(void)
{
	half_close_from(true);
	half_close_from(false);
	printf("half-close: each end's EOF came after all its data; the other direction went on after "
	       "%" PRIu64 " ms\n", o_pause);
}

/* After traffic both ways, one end aborts; the other must see a reset. */
static int64_t reset_from(bool client_resets)
{
	struct end c, b, *resetter = client_resets ? &c : &b, *victim = client_resets ? &b : &c;
	int64_t t0;

	open_pair(&c, &b);
	exchange(&c, &b, 100000, 100000, NULL, false);
	if (!run(has_all, &c, 5000))
		fail("the traffic before the reset did not get through within 5 s");
	close_end(resetter, true);
	victim->rx.want = WANT_RESET;
	t0 = now_ms();
	if (!run(has_ended, victim, o_within))
		fail("%s saw no reset within %" PRIu64 " ms of the %s's", victim->name, o_within,
		     resetter->name);
	close_end(victim, false);
	return now_ms() - t0;
}

static void mode_reset(void)
{
	int64_t to_client = reset_from(false), to_backend = reset_from(true);

	printf("reset: the backend's reached the client in %" PRId64 " ms, the client's the backend in %"
	       PRId64 " ms\n", to_client, to_backend);
}

static void mode_refused(void)
{
	struct end c = { 0 };
	int64_t t0 = now_ms(), dt;

	add_client(&c, 0);
	rx_init(&c.rx, 0, 1, 0); /* any byte is wrong */
	c.rx.want = WANT_ANY;
	if (!run(has_ended, &c, o_within))
		fail("the client's connection was still open %" PRIu64 " ms after connecting", o_within);
	if ((dt = now_ms() - t0) < (int64_t)o_after)
		fail("the client's connection ended after %" PRId64 " ms, before %" PRIu64 " ms", dt,
		     o_after);
	printf("refused: the client got %s %" PRId64 " ms after connecting\n",
	       c.rx.ended == GOT_EOF ? "EOF" : "a reset", dt);
}

static uint64_t payload_len(unsigned i)
{
	return HDR + 1 + i % 251;
}

static void accept_concurrent(int fd)
{
	struct end *b = &backends[n_accepted];

	if (n_accepted == o_conns)
		fail("more connections reached the backend than the %" PRIu64 " made", o_conns);
	b->rx.expect = HDR;
	add_end(b, "backend", n_accepted++, fd);
}

/* Its first bytes tell a concurrent backend which client it serves: from
 * then on each checks the other's stream, and the backend replies. */
static void learn_index(struct end *b, uint32_t idx)
{
	if (idx >= o_conns || clients[idx].peer)
		fail("%s: got index %" PRIu32 ", out of range or taken", b->name, idx);
	rx_init(&b->rx, idx, 0, payload_len(idx));
	tx_init(&b->tx, idx, 1, payload_len(idx), 0);
	snprintf(b->name, sizeof(b->name), "backend %" PRIu32, idx);
	b->peer = &clients[idx], clients[idx].peer = b;
}

/* With --allow-refused, a client whose connection ends before its backend
 * has even heard from it was refused by the relay: counted, then left be. */
static bool refused_client(struct end *e)
{
	if (!allow_refused || !e->is_client || e->peer || e->rx.got)
		return false;
	n_refused++;
	close_end(e, false);
	e->rx.ended = e->rx.ended ? e->rx.ended : GOT_RESET;
	return true;
}

static bool all_delivered(const struct end *unused)
{
	(void)unused;
	for (unsigned i = 0; i < o_conns; i++) {
		const struct end *c = &clients[i];

		if (c->fd >= 0 && (c->rx.got < c->rx.expect || !c->peer ||
				   c->peer->rx.got < c->peer->rx.expect))
			return false;
	}
	return true;
}

static void mode_concurrent(void)
{
	struct rlimit rl = { 0, 0 };

	/* Both ends of every connection are in this process. */
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2 * o_conns + 16)
		fail("%" PRIu64 " connections need %" PRIu64 " fds, the hard limit is %ju", o_conns,
		     2 * o_conns + 16, (uintmax_t)rl.rlim_cur);
	clients = calloc(o_conns, sizeof(*clients));
	backends = calloc(o_conns, sizeof(*backends));
	if (!clients || !backends)
		fail("out of memory");
	on_accept = accept_concurrent;
	for (unsigned i = 0; i < o_conns; i++) {
		add_client(&clients[i], i);
		tx_init(&clients[i].tx, i, 0, payload_len(i), 0);
		rx_init(&clients[i].rx, i, 1, payload_len(i));
	}
	if (!run(all_delivered, NULL, UINT32_MAX))
		fail("time limit reached: %u of %" PRIu64 " reached the backend", n_accepted, o_conns);
	if (n_refused == o_conns)
		fail("the relay refused all %" PRIu64 " connections", o_conns);
	printf("all %u connections open\n", n_accepted);
	fflush(stdout);
	run(NULL, NULL, o_hold);
	for (size_t i = 0; i < n_ends; i++)
		ends[i]->tx.shut_after = true;
	if (!run(all_ended, NULL, UINT32_MAX))
		fail("time limit reached before every connection saw both shutdowns");
	for (size_t i = 0; i < n_ends; i++)
		close_end(ends[i], false);
	printf("concurrent: %u connections open at once, payloads delivered both ways, all shut down "
	       "cleanly; %u refused\n", n_accepted, n_refused);
}

static const struct {
	const char *name;
	void (*run)(void);
	uint64_t time_limit, within; /* defaults: s, ms */
} modes[] = {
	{ "integrity", mode_integrity, 300, 0 },  { "backpressure", mode_backpressure, 300, 0 },
	{ "small-writes", mode_small_writes, 120, 0 },
	{ "half-close", mode_half_close, 60, 0 }, { "reset", mode_reset, 60, 3000 },
	{ "refused", mode_refused, 60, 2000 },    { "concurrent", mode_concurrent, 240, 0 },
};

/* A count, or a size with a K, M or G suffix. */
static uint64_t parse_num(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end && strchr("KMG", *end) && !end[1])
		v <<= *end == 'K' ? 10 : *end == 'M' ? 20 : 30, end++;
	if (errno || end == s || *end || s[0] == '-' || v > UINT32_MAX * 1024ULL)
		fail("%s: not a number, or too large", s);
	return v;
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: relay-check integrity|backpressure|small-writes|half-close|reset|\n"
			"         refused|concurrent\n"
			"         --relay ADDR:PORT --backend ADDR:PORT [--bytes N[KMG]] [--count N]\n"
			"         [--pause MS] [--within MS] [--after MS] [--conns N] [--hold MS]\n"
			"         [--allow-refused] [--seed N] [--time-limit S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	/* Each numeric option's val indexes nums[]. */
	uint64_t *nums[] = { &o_bytes, &o_count, &o_pause, &o_within, &o_after,
			     &o_conns, &o_hold,  &o_seed,  &o_limit };
	static const struct option opts[] = {
		{ "bytes", 1, 0, 0 },  { "count", 1, 0, 1 },      { "pause", 1, 0, 2 },
		{ "within", 1, 0, 3 }, { "after", 1, 0, 4 },      { "conns", 1, 0, 5 },
		{ "hold", 1, 0, 6 },   { "seed", 1, 0, 7 },       { "time-limit", 1, 0, 8 },
		{ "relay", 1, 0, 'r' }, { "backend", 1, 0, 'b' }, { "allow-refused", 0, 0, 'A' },
		{ 0, 0, 0, 0 },
	};
	unsigned m = 0, n_modes = sizeof(modes) / sizeof(modes[0]);
	int o;

	mode = argc > 1 ? argv[1] : "";
	while (m < n_modes && strcmp(modes[m].name, mode) != 0)
		m++;
	if (m == n_modes)
		usage();
	o_within = modes[m].within;
	o_limit = modes[m].time_limit;
	optind = 2;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o >= 0 && o < (int)(sizeof(nums) / sizeof(nums[0])))
			*nums[o] = parse_num(optarg);
		else if (o == 'r')
			parse_addr(optarg, &relay_sa, &relay_len);
		else if (o == 'b')
			parse_addr(optarg, &backend_sa, &backend_len);
		else if (o == 'A')
			allow_refused = true;
		else
			usage();
	}
	if (optind != argc || !relay_len || !backend_len || !o_conns || !o_limit)
		usage();
	signal(SIGALRM, on_alarm);
	alarm((unsigned)o_limit); /* in case the loop itself is stuck */
	end_of_time = now_ms() + 1000 * (int64_t)o_limit - 1000;
	open_backend(strcmp(mode, "refused") != 0);
	modes[m].run();
	return 0;
}
