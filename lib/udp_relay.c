#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hash.h"
#include "relay_ctx.h"
#include "wgrp/log.h"
#include "wgrp/proxy_header.h"
#include "wgrp/transparent.h"
#include "wgrp/udp_relay.h"

/* Datagrams per recvmmsg() and sendmmsg(), and one such call per wake-up of
 * a socket: the loop is level-triggered and comes back to a socket that
 * still has some, after the others ready in that round, so one busy
 * listener or flow cannot starve the rest. */
#define UDP_BATCH 32
/* The largest UDP payload (IPv6's; IPv4's is 20 bytes less): a larger
 * udp_max_datagram is no limit but this. */
#define UDP_PAYLOAD_MAX 65527
#define FIRST_BUCKETS 64

/* A source address and port, and its socket to the target. Expiry: one
 * timer per flow, armed for the whole timeout and, when it fires, moved on
 * by the activity seen since (last_active), so that datagrams never touch
 * the timer heap: one heap operation per timeout period per flow, as
 * relay.c's idle timer, where a periodic sweep would visit every flow each
 * time, idle or not. */
struct flow {
	struct udp_listener *lis;
	int fd; /* connect()ed to the target */
	union sockaddr_inet peer; /* the source, as the listener sees it */
	struct ip_addr source;    /* counted per source when counted */
	bool counted;
	struct loop_timer timer;
	uint64_t last_active;
	struct flow *next; /* in its bucket */
	/* With the listener's read_header, the visitor its first datagram's
	 * header named: later ones must name the same. */
	union sockaddr_inet visitor;
	/* With send_header, the PROXY v2 header before each of its datagrams
	 * to the target, built once. */
	uint8_t header_len;
	uint8_t header[PROXY_V2_MAX_LEN];
};

struct udp_listener {
	struct relay_ctx *ctx;
	int fd;
	union sockaddr_inet addr, target;
	bool filtered;
	struct ip_addr only_from;
	uint32_t source_cap; /* as relay_listener_set_source_cap() */
	struct relay_visitor visitor;
	/* rps, sending headers: each datagram's destination address comes in
	 * a control message (the listener is bound to the any-address). */
	bool pktinfo;
	struct udp_stats stats;
	/* The flows by source address and port: a hash table with a random
	 * seed (a sender choosing addresses cannot aim them at one bucket). */
	struct flow **buckets;
	size_t n_buckets; /* a power of two */
	uint64_t seed;
	/* One batch, either way: the loop runs one callback at a time. */
	size_t max_datagram;
	uint8_t *bufs; /* UDP_BATCH of max_datagram */
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iovs[UDP_BATCH];
	union sockaddr_inet names[UDP_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} controls[UDP_BATCH];
	uint64_t last_drop_warning, last_recv_warning;
};

static bool same_peer(const union sockaddr_inet *a, const union sockaddr_inet *b)
{
	if (a->sa.sa_family != b->sa.sa_family || sockaddr_inet_port(a) != sockaddr_inet_port(b))
		return false;
	return a->sa.sa_family == AF_INET ? a->in.sin_addr.s_addr == b->in.sin_addr.s_addr
					  : IN6_ARE_ADDR_EQUAL(&a->in6.sin6_addr, &b->in6.sin6_addr);
}

/* Where peer's flow is in the table, or would go. */
static struct flow **slot_of(const struct udp_listener *lis, const union sockaddr_inet *peer)
{
	uint64_t w[2] = { 0, 0 }, h;
	struct flow **p;

	if (peer->sa.sa_family == AF_INET)
		w[0] = peer->in.sin_addr.s_addr;
	else
		memcpy(w, &peer->in6.sin6_addr, sizeof(w));
	h = hash_mix(hash_mix(hash_mix(lis->seed ^ sockaddr_inet_port(peer)) ^ w[0]) ^ w[1]);
	p = &lis->buckets[h & (lis->n_buckets - 1)];
	while (*p && !same_peer(&(*p)->peer, peer))
		p = &(*p)->next;
	return p;
}

/* Doubles the buckets; on failure the table stays as it is, only slower. */
static void rehash(struct udp_listener *lis)
{
	struct flow **old = lis->buckets, **b = calloc(lis->n_buckets * 2, sizeof(*b));
	size_t old_n = lis->n_buckets;

	if (!b)
		return;
	lis->buckets = b;
	lis->n_buckets = old_n * 2;
	for (size_t i = 0; i < old_n; i++)
		while (old[i]) {
			struct flow *f = old[i];

			old[i] = f->next;
			f->next = NULL;
			*slot_of(lis, &f->peer) = f;
		}
	free(old);
}

static void close_flow(struct flow *f)
{
	struct udp_listener *lis = f->lis;
	struct relay_ctx *ctx = lis->ctx;
	struct flow **p = slot_of(lis, &f->peer);

	*p = f->next;
	loop_timer_stop(relay_ctx_loop(ctx), &f->timer);
	loop_close(relay_ctx_loop(ctx), f->fd);
	relay_ctx_count_sockets(ctx, -1);
	if (f->counted)
		source_count_release(relay_ctx_sources(ctx), &f->source);
	lis->stats.flows_active--;
	free(f);
}

/* Ends f for an error of its socket: ECONNREFUSED is the target's ICMP
 * port unreachable. */
static void end_flow(struct flow *f, int err)
{
	char target[ADDR_HOSTPORT_STRLEN];

	if (err == ECONNREFUSED) {
		f->lis->stats.flows_ended_by_icmp++;
	} else {
		f->lis->stats.flows_failed++;
		if (log_debug_enabled()) {
			sockaddr_inet_format(&f->lis->target, target, sizeof(target));
			log_debug("UDP flow to %s closed: %s", target, strerror(err));
		}
	}
	close_flow(f);
}

/* Counts a datagram dropped for why, logging at most every 10 s. */
static void drop(struct udp_listener *lis, uint64_t *counter, const union sockaddr_inet *from,
		 const char *why)
{
	char who[ADDR_HOSTPORT_STRLEN], addr[ADDR_HOSTPORT_STRLEN];

	(*counter)++;
	if (!relay_ctx_warning_due(lis->ctx, &lis->last_drop_warning))
		return;
	sockaddr_inet_format(from, who, sizeof(who));
	sockaddr_inet_format(&lis->addr, addr, sizeof(addr));
	log_warning("dropped a UDP datagram between %s and %s: %s (%llu so far)", who, addr, why,
		    (unsigned long long)*counter);
}

static void on_flow(struct loop *l, int fd, unsigned events, void *data);

static void on_flow_timer(struct loop *l, struct loop_timer *t)
{
	struct flow *f = t->data;
	uint64_t timeout = relay_ctx_udp(f->lis->ctx)->timeout_ms, idle = loop_now(l) - f->last_active;

	if (idle < timeout && loop_timer_start(l, t, timeout - idle) == 0)
		return;
	f->lis->stats.flows_expired++;
	close_flow(f);
}

/* Closes f, which could not reach the target as the visitor (transparent
 * mode): a drop of its first datagram, counted and logged. */
static void visitor_failed(struct flow *f, int err)
{
	struct udp_listener *lis = f->lis;
	char target[ADDR_HOSTPORT_STRLEN];
	struct errbuf why;

	sockaddr_inet_format(&lis->target, target, sizeof(target));
	errbuf_set(&why, err, "cannot send to %s as the visitor: %s", target,
		   err == -EAFNOSUPPORT ? "not of the service's address family" : strerror(-err));
	drop(lis, &lis->stats.send_failed, &f->visitor, why.msg);
	close_flow(f);
}

/* Opens a flow from peer into *slot, its place in the table, for visitor
 * (what the listener's relay_visitor needs of it). Returns it, or NULL with
 * the datagram counted as dropped. */
static struct flow *open_flow(struct udp_listener *lis, const union sockaddr_inet *peer,
			      struct flow **slot, const struct proxy_addrs *visitor, uint64_t now)
{
	struct relay_ctx *ctx = lis->ctx;
	struct loop *l = relay_ctx_loop(ctx);
	struct source_count *sources = relay_ctx_sources(ctx);
	struct ip_addr source = relay_source_of(peer);
	struct flow *f;
	int r;

	if (lis->filtered && !ip_addr_equal(&source, &lis->only_from)) {
		drop(lis, &lis->stats.not_from_peer, peer, "only the server may send");
		return NULL;
	}
	if (lis->stats.flows_active >= relay_ctx_udp(ctx)->max_flows) {
		drop(lis, &lis->stats.flow_cap, peer, "the listener has all the flows it may");
		return NULL;
	}
	if (!relay_ctx_room_for(ctx, 1) || !(f = calloc(1, sizeof(*f)))) {
		drop(lis, &lis->stats.no_fds, peer, "out of file descriptors for relays");
		return NULL;
	}
	if (sources) {
		r = source_count_take(sources, &source, relay_ctx_source_share(ctx, lis->source_cap));
		if (r < 0) {
			char why[64];

			free(f);
			snprintf(why, sizeof(why), "the source has its share of %s",
				 relay_source_cap_name(lis->source_cap));
			if (r == -EBUSY)
				drop(lis, &lis->stats.source_cap, peer, why);
			else
				drop(lis, &lis->stats.no_fds, peer, "out of memory");
			return NULL;
		}
		f->counted = true;
		f->source = source;
	}
	f->lis = lis;
	f->peer = *peer;
	f->visitor = visitor->src;
	f->last_active = now;
	loop_timer_init(&f->timer, on_flow_timer, f);
	if (lis->visitor.send_header) {
		r = (int)proxy_v2_build(f->header, sizeof(f->header), visitor);
		if (r < 0)
			goto fail;
		f->header_len = (uint8_t)r;
	}
	f->fd = socket(lis->target.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->fd < 0) {
		r = -errno;
		goto fail;
	}
	relay_ctx_count_sockets(ctx, 1);
	*slot = f;
	lis->stats.flows_active++;
	lis->stats.flows_total++;
	if (lis->stats.flows_active > lis->n_buckets)
		rehash(lis);
	if (lis->visitor.transparent &&
	    (r = transparent_bind(f->fd, lis->target.sa.sa_family, &f->visitor)) < 0) {
		visitor_failed(f, r);
		return NULL;
	}
	if (connect(f->fd, &lis->target.sa, sockaddr_inet_len(&lis->target)) < 0)
		r = -errno;
	else if ((r = loop_add(l, f->fd, LOOP_READ, on_flow, f)) == 0)
		r = loop_timer_start(l, &f->timer, relay_ctx_udp(ctx)->timeout_ms);
	if (r < 0) {
		lis->stats.send_failed++;
		end_flow(f, -r);
		return NULL;
	}
	return f;
fail:
	if (f->counted)
		source_count_release(sources, &source);
	free(f);
	drop(lis, &lis->stats.no_fds, peer, strerror(-r));
	return NULL;
}

/* One recvmmsg() from fd into the batch, with the senders' addresses when
 * names. Returns how many datagrams, or -errno. */
static int receive(struct udp_listener *lis, int fd, bool names)
{
	int n;

	for (int i = 0; i < UDP_BATCH; i++) {
		lis->iovs[i] = (struct iovec){ .iov_base = lis->bufs + i * lis->max_datagram,
					       .iov_len = lis->max_datagram };
		lis->msgs[i].msg_hdr = (struct msghdr){
			.msg_iov = &lis->iovs[i],
			.msg_iovlen = 1,
			.msg_name = names ? &lis->names[i] : NULL,
			.msg_namelen = names ? sizeof(lis->names[i]) : 0,
			.msg_control = names && lis->pktinfo ? lis->controls[i].buf : NULL,
			.msg_controllen = names && lis->pktinfo ? sizeof(lis->controls[i]) : 0,
		};
	}
	/* Too big for the buffer: MSG_TRUNC in msg_flags, and dropped. */
	do
		n = recvmmsg(fd, lis->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Sends the source's datagram to the target, on the flow's socket, after
 * the flow's PROXY header if it has one (from where each is: no copy). */
static void forward(struct flow *f, void *buf, size_t len, uint64_t now)
{
	struct udp_listener *lis = f->lis;
	struct iovec iov[2] = { { f->header, f->header_len }, { buf, len } };
	struct msghdr h = { .msg_iov = f->header_len ? iov : iov + 1,
			    .msg_iovlen = f->header_len ? 2 : 1 };
	ssize_t n;

	if (f->header_len + len > lis->max_datagram) {
		drop(lis, &lis->stats.too_big, &f->peer,
		     "with its PROXY header, larger than the tunnel takes");
		return;
	}
	do
		n = sendmsg(f->fd, &h, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		lis->stats.datagrams_in++;
		lis->stats.bytes_in += len;
		f->last_active = now;
		return;
	}
	lis->stats.send_failed++;
	/* Full buffers: lost, as UDP may lose it; the flow goes on. */
	if (errno != EAGAIN && errno != ENOBUFS)
		end_flow(f, errno);
}

/* rpc: takes the PROXY v2 header rps put before the datagram *buf of *len
 * bytes off it, into *out. Returns 0, or -EBADMSG with the datagram dropped,
 * counted and logged. */
static int strip_header(struct udp_listener *lis, const union sockaddr_inet *from, uint8_t **buf,
			size_t *len, struct proxy_addrs *out)
{
	struct errbuf e;
	ssize_t n = proxy_v2_parse(*buf, *len, out, &e);

	if (n == 0)
		n = errbuf_set(&e, -EBADMSG, "PROXY v2 header: %s",
			       *len ? "cut short by the datagram's end" : "missing (an empty datagram)");
	else if (n > 0 && out->proto != SOCK_DGRAM)
		n = errbuf_set(&e, -EBADMSG, "PROXY v2 header: a TCP visitor in a UDP datagram");
	if (n < 0) {
		drop(lis, &lis->stats.bad_header, from, e.msg);
		return -EBADMSG;
	}
	*buf += n;
	*len -= (size_t)n;
	return 0;
}

/* rps: the visitor of the batch's datagram i, from, and the address it
 * reached: the listener's, with the address of the datagram's control
 * message (the any-address names none), if any. */
static void sender_of(struct udp_listener *lis, int i, const union sockaddr_inet *from,
		      struct proxy_addrs *out)
{
	struct msghdr *h = &lis->msgs[i].msg_hdr;

	out->proto = SOCK_DGRAM;
	out->src = *from;
	out->dst = lis->addr;
	if (!lis->pktinfo)
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
		if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
		    out->dst.sa.sa_family == AF_INET6) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			out->dst.in6.sin6_addr = pi.ipi6_addr;
		} else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
			   out->dst.sa.sa_family == AF_INET) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			out->dst.in.sin_addr = pi.ipi_addr;
		}
	}
}

static void on_listener(struct loop *l, int fd, unsigned events, void *data)
{
	struct udp_listener *lis = data;
	char addr[ADDR_HOSTPORT_STRLEN];
	int n = receive(lis, fd, true);
	uint64_t now = loop_now(l);

	(void)events;
	/* An error other than EAGAIN is one the socket had pending (no
	 * datagram is lost by it): reported once, so no spinning. */
	if (n < 0 && n != -EAGAIN && relay_ctx_warning_due(lis->ctx, &lis->last_recv_warning)) {
		sockaddr_inet_format(&lis->addr, addr, sizeof(addr));
		log_warning("receiving UDP on %s: %s", addr, strerror(-n));
	}
	for (int i = 0; i < n; i++) {
		const union sockaddr_inet *from = &lis->names[i];
		uint8_t *buf = lis->iovs[i].iov_base;
		size_t len = lis->msgs[i].msg_len;
		struct proxy_addrs visitor;
		struct flow **slot, *f;

		if (lis->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
			drop(lis, &lis->stats.too_big, from, "larger than the tunnel takes");
			continue;
		}
		if (lis->visitor.read_header && strip_header(lis, from, &buf, &len, &visitor) < 0)
			continue;
		slot = slot_of(lis, from);
		f = *slot;
		if (f && lis->visitor.read_header && !same_peer(&f->visitor, &visitor.src)) {
			drop(lis, &lis->stats.bad_header, from,
			     "PROXY v2 header: names another visitor than the flow's first");
			continue;
		}
		if (!f && !lis->visitor.read_header)
			sender_of(lis, i, from, &visitor);
		if (!f)
			f = open_flow(lis, from, slot, &visitor, now);
		if (f)
			forward(f, buf, len, now);
	}
}

/* Sends the batch's first n datagrams from the listener, as the flow's
 * replies; what its buffer does not take is lost, as UDP may lose it. */
static void reply(struct udp_listener *lis, int n)
{
	int done = 0, r;

	while (done < n) {
		r = sendmmsg(lis->fd, lis->msgs + done, (unsigned)(n - done), MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			lis->stats.send_failed += (uint64_t)(n - done);
			return;
		}
		for (int i = done; i < done + r; i++) {
			lis->stats.datagrams_out++;
			lis->stats.bytes_out += lis->msgs[i].msg_len;
		}
		done += r;
	}
}

/* The target's replies, on the flow's socket. */
static void on_flow(struct loop *l, int fd, unsigned events, void *data)
{
	struct flow *f = data;
	struct udp_listener *lis = f->lis;
	int n = receive(lis, fd, false), kept = 0;

	(void)events;
	if (n < 0) {
		if (n != -EAGAIN)
			end_flow(f, -n);
		return;
	}
	f->last_active = loop_now(l);
	for (int i = 0; i < n; i++) {
		struct msghdr *h = &lis->msgs[i].msg_hdr;

		if (h->msg_flags & MSG_TRUNC) {
			drop(lis, &lis->stats.too_big, &f->peer, "a reply larger than the tunnel takes");
			continue;
		}
		lis->iovs[i].iov_len = lis->msgs[i].msg_len;
		h->msg_name = &f->peer;
		h->msg_namelen = sockaddr_inet_len(&f->peer);
		lis->msgs[kept++].msg_hdr = *h;
	}
	reply(lis, kept);
}

int udp_socket(const union sockaddr_inet *bind_addr, bool reuseport, union sockaddr_inet *bound,
	       struct errbuf *e)
{
	return relay_bind_socket(bind_addr, SOCK_DGRAM, reuseport, bound, e);
}

int udp_adopt(struct udp_listener **out, struct relay_ctx *ctx, int fd,
	      const union sockaddr_inet *target)
{
	struct udp_listener *lis = calloc(1, sizeof(*lis));
	socklen_t len = sizeof(lis->addr);
	size_t max = relay_ctx_udp(ctx)->max_datagram;
	int r = -ENOMEM;

	*out = NULL;
	if (!lis)
		goto fail;
	lis->ctx = ctx;
	lis->fd = fd;
	lis->target = *target;
	lis->max_datagram = max < UDP_PAYLOAD_MAX ? max : UDP_PAYLOAD_MAX;
	lis->bufs = malloc(UDP_BATCH * lis->max_datagram);
	lis->n_buckets = FIRST_BUCKETS;
	lis->buckets = calloc(lis->n_buckets, sizeof(*lis->buckets));
	if (!lis->bufs || !lis->buckets)
		goto fail;
	/* Without a random seed the table still works; only predictably. */
	if (getrandom(&lis->seed, sizeof(lis->seed), GRND_NONBLOCK) != sizeof(lis->seed))
		lis->seed = (uint64_t)(uintptr_t)lis;
	if (getsockname(fd, &lis->addr.sa, &len) < 0) {
		r = -errno;
		goto fail;
	}
	r = loop_add(relay_ctx_loop(ctx), fd, LOOP_READ, on_listener, lis);
	if (r < 0)
		goto fail;
	relay_ctx_count_sockets(ctx, 1);
	*out = lis;
	return 0;
fail:
	close(fd);
	if (lis) {
		free(lis->bufs);
		free(lis->buckets);
	}
	free(lis);
	return r;
}

void udp_listener_set_target(struct udp_listener *lis, const union sockaddr_inet *target)
{
	lis->target = *target;
}

void udp_listener_set_source_cap(struct udp_listener *lis, uint32_t cap)
{
	lis->source_cap = cap;
}

void udp_listener_set_visitor(struct udp_listener *lis, const struct relay_visitor *v)
{
	int v6 = lis->addr.sa.sa_family == AF_INET6, on = v->send_header && !v->read_header;

	lis->visitor = *v;
	/* Without it, headers name the address bound, maybe the any-address. */
	lis->pktinfo = setsockopt(lis->fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP,
				  v6 ? IPV6_RECVPKTINFO : IP_PKTINFO, &on, sizeof(on)) == 0 && on;
}

void udp_listener_only_from(struct udp_listener *lis, const struct ip_addr *peer)
{
	lis->filtered = true;
	lis->only_from = *peer;
}

void udp_listener_address(const struct udp_listener *lis, union sockaddr_inet *out)
{
	*out = lis->addr;
}

const struct udp_stats *udp_listener_stats(const struct udp_listener *lis)
{
	return &lis->stats;
}

void udp_listener_close(struct udp_listener *lis)
{
	if (!lis)
		return;
	for (size_t i = 0; i < lis->n_buckets; i++)
		while (lis->buckets[i])
			close_flow(lis->buckets[i]);
	loop_close(relay_ctx_loop(lis->ctx), lis->fd);
	relay_ctx_count_sockets(lis->ctx, -1);
	free(lis->bufs);
	free(lis->buckets);
	free(lis);
}
