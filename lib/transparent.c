#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "array.h"
#include "link.h"
#include "wgrp/transparent.h"

/* One rule or local route that transparent_routing_add_target() made sure of. */
struct step {
	bool is_route; /* else a rule */
	struct link_rule rule; /* a route has only rule.from's family and rule.table */
	bool owned; /* created by us (not there before): removed on free */
};

struct transparent_routing {
	struct nl_sock *sk;
	uint32_t table;
	struct step *steps;
	size_t n_steps;
};

static const char *family_name(int family)
{
	return family == AF_INET6 ? "IPv6" : "IPv4";
}

/* Why a routing change of family failed, in words naming what is missing. */
static const char *routing_reason(int err, int family, bool is_route)
{
	switch (-err) {
	case EPERM:
		return "no CAP_NET_ADMIN";
	case EACCES:
		/* What IPv6 says of a route through a device it is disabled on. */
		if (is_route && family == AF_INET6)
			return "IPv6 disabled on lo (net.ipv6.conf.lo.disable_ipv6)";
		return strerror(-err);
	case EAFNOSUPPORT:
		if (is_route)
			return "IPv6 disabled";
		return family == AF_INET6 ? "kernel lacks IPv6 policy routing (CONFIG_IPV6_MULTIPLE_TABLES)"
					  : "kernel lacks policy routing (CONFIG_IP_MULTIPLE_TABLES)";
	case ENODEV:
		return "not found";
	default:
		return strerror(-err);
	}
}

static void step_format(const struct step *s, char *buf, size_t len)
{
	char from[ADDR_PREFIX_STRLEN], sport[32];
	bool v6 = s->rule.from.addr.family == AF_INET6;

	if (s->is_route) {
		snprintf(buf, len, "%sroute local %s dev lo table %u", v6 ? "-6 " : "",
			 v6 ? "::/0" : "0.0.0.0/0", s->rule.table);
		return;
	}
	ip_prefix_format(&s->rule.from, from, sizeof(from));
	snprintf(sport, sizeof(sport), " ipproto %s sport %u",
		 s->rule.ipproto == IPPROTO_UDP ? "udp" : "tcp", s->rule.sport);
	snprintf(buf, len, "%srule pref %u from %s%s%s lookup %u", v6 ? "-6 " : "",
		 s->rule.priority, from, s->rule.iif_lo ? " iif lo" : "",
		 s->rule.sport ? sport : "", s->rule.table);
}

static int step_apply(struct nl_sock *sk, const struct step *s, bool add)
{
	if (s->is_route)
		return link_change_local_route(sk, s->rule.from.addr.family, s->rule.table, add);
	return link_change_rule(sk, &s->rule, add);
}

static bool step_equal(const struct step *a, const struct step *b)
{
	if (a->is_route != b->is_route || a->rule.from.addr.family != b->rule.from.addr.family)
		return false;
	return a->is_route ||
	       (a->rule.iif_lo == b->rule.iif_lo && a->rule.ipproto == b->rule.ipproto &&
		a->rule.sport == b->rule.sport &&
		ip_prefix_cmp(&a->rule.from, &b->rule.from) == 0);
}

/* Adds s unless an earlier call did; records whether we created it. */
static int ensure(struct transparent_routing *r, struct step s, struct errbuf *e)
{
	char what[128];
	int err;

	for (size_t i = 0; i < r->n_steps; i++)
		if (step_equal(&r->steps[i], &s))
			return 0;
	if (array_reserve(&r->steps, r->n_steps, sizeof(*r->steps)) < 0)
		return errbuf_set(e, -ENOMEM, "out of memory");
	err = step_apply(r->sk, &s, true);
	if (err < 0 && err != -EEXIST) {
		step_format(&s, what, sizeof(what));
		return errbuf_set(e, err, "adding ip %s: %s", what,
				  routing_reason(err, s.rule.from.addr.family, s.is_route));
	}
	s.owned = err == 0;
	r->steps[r->n_steps++] = s;
	return 0;
}

/* Removes the steps from index keep on, newest first. Returns 0 or the first error. */
static int remove_steps(struct transparent_routing *r, size_t keep, struct errbuf *e)
{
	char what[128];
	int first = 0, err;

	while (r->n_steps > keep) {
		const struct step *s = &r->steps[--r->n_steps];

		if (!s->owned)
			continue;
		err = step_apply(r->sk, s, false);
		if (err < 0 && first == 0) {
			step_format(s, what, sizeof(what));
			first = errbuf_set(e, err, "removing ip %s: %s", what,
					   routing_reason(err, s->rule.from.addr.family, s->is_route));
		}
	}
	return first;
}

int transparent_socket_prepare(int fd, int family)
{
	int one = 1;

	if (family == AF_INET) {
		if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0)
			return -errno;
	} else if (family == AF_INET6) {
		if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0)
			return -errno;
	} else {
		return -EAFNOSUPPORT;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

int transparent_bind(int fd, int family, const union sockaddr_inet *visitor)
{
	int r;

	if (visitor->sa.sa_family != family)
		return -EAFNOSUPPORT;
	r = transparent_socket_prepare(fd, family);
	if (r < 0)
		return r;
	return bind(fd, &visitor->sa, sockaddr_inet_len(visitor)) < 0 ? -errno : 0;
}

int transparent_probe(int family, struct errbuf *e)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0) {
		r = -errno;
		if (r == -EAFNOSUPPORT && family == AF_INET6)
			return errbuf_set(e, r, "transparent connections over IPv6: IPv6 disabled");
		return errbuf_set(e, r, "transparent connections over %s: socket: %s",
				  family_name(family), strerror(-r));
	}
	r = transparent_socket_prepare(fd, family);
	close(fd);
	if (r == -EPERM)
		return errbuf_set(e, r, "transparent connections over %s: no CAP_NET_ADMIN "
				  "(nor CAP_NET_RAW) to set %s", family_name(family),
				  family == AF_INET6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT");
	if (r < 0)
		return errbuf_set(e, r, "transparent connections over %s: %s", family_name(family),
				  strerror(-r));
	return 0;
}

int transparent_routing_new(struct transparent_routing **out, uint32_t table, struct errbuf *e)
{
	struct transparent_routing *r = calloc(1, sizeof(*r));
	int err;

	*out = NULL;
	if (!r)
		return errbuf_set(e, -ENOMEM, "out of memory");
	err = link_open(&r->sk);
	if (err < 0) {
		free(r);
		return errbuf_set(e, err, "rtnetlink: %s", strerror(-err));
	}
	r->table = table;
	*out = r;
	return 0;
}

/* Whether a is an address of this machine: binding to it needs no
 * IP_TRANSPARENT then. */
static bool is_local(const struct ip_addr *a)
{
	union sockaddr_inet sa;
	int fd = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool local;

	if (fd < 0)
		return false;
	sockaddr_inet_set(&sa, a, 0);
	local = bind(fd, &sa.sa, sockaddr_inet_len(&sa)) == 0;
	close(fd);
	return local;
}

int transparent_routing_add_target(struct transparent_routing *r,
				   const union sockaddr_inet *service_sa, int protocol,
				   struct errbuf *e)
{
	bool v6 = service_sa->sa.sa_family == AF_INET6;
	struct ip_addr service = { .family = service_sa->sa.sa_family };
	struct step route = { .is_route = true, .rule.from.addr.family = service.family,
			      .rule.table = r->table };
	struct step rule = { .rule = { .from.cidr = v6 ? 128 : 32, .table = r->table,
				       .priority = TRANSPARENT_RULE_PRIORITY } };
	char text[INET6_ADDRSTRLEN];
	size_t keep = r->n_steps;
	int fd, err;

	if (v6)
		service.v6 = service_sa->in6.sin6_addr;
	else
		service.v4 = service_sa->in.sin_addr;
	rule.rule.from.addr = service;
	ip_addr_format(&service, text, sizeof(text));
	if (v6 ? IN6_IS_ADDR_UNSPECIFIED(&service.v6) || IN6_IS_ADDR_MULTICAST(&service.v6)
	       : service.v4.s_addr == htonl(INADDR_ANY) || IN_MULTICAST(ntohl(service.v4.s_addr)))
		return errbuf_set(e, -EINVAL, "%s is not the address of a service", text);
	if (sockaddr_inet_port(service_sa) == 0)
		return errbuf_set(e, -EINVAL, "transparent route to %s: no port", text);
	if (v6) {
		/* Tell "IPv6 disabled" from a kernel without IPv6 policy routing:
		 * both refuse the rule with EAFNOSUPPORT. */
		fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return errbuf_set(e, -errno, "transparent route to %s: IPv6 disabled", text);
		close(fd);
	}
	if (v6 ? IN6_IS_ADDR_LOOPBACK(&service.v6) : (ntohl(service.v4.s_addr) >> 24) == 127) {
		/* Replies come from the loopback address the service is bound to,
		 * and leave through lo: only the loopback network, only from lo. */
		rule.rule.iif_lo = true;
		if (!v6) {
			rule.rule.from.addr.v4.s_addr = htonl(INADDR_LOOPBACK & IN_CLASSA_NET);
			rule.rule.from.cidr = 8;
		}
	} else if (is_local(&service)) {
		return errbuf_set(e, -EINVAL, "transparent route to %s: an address of this machine "
				  "(a rule from it would catch its replies to every other client): "
				  "bind the service to %s", text, v6 ? "::1" : "127.0.0.1");
	} else {
		/* Only the service's replies: a rule for all from S would also
		 * catch S's ARP requests (the kernel answers those for any
		 * address that routes to a local route, hijacking S's LAN
		 * traffic) and everything S sends through this machine. */
		rule.rule.ipproto = (uint8_t)protocol;
		rule.rule.sport = sockaddr_inet_port(service_sa);
	}
	err = ensure(r, route, e);
	if (err == 0)
		err = ensure(r, rule, e);
	if (err < 0) {
		remove_steps(r, keep, NULL);
		return err;
	}
	return 0;
}

int transparent_routing_free(struct transparent_routing *r, struct errbuf *e)
{
	int err;

	if (!r)
		return 0;
	err = remove_steps(r, 0, e);
	link_close(r->sk);
	free(r->steps);
	free(r);
	return err;
}
