#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "wgrp/addr.h"
#include "wgrp/num.h"

static unsigned family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static const uint8_t *addr_bytes(const struct ip_addr *a)
{
	return a->family == AF_INET ? (const uint8_t *)&a->v4 : (const uint8_t *)&a->v6;
}

int ip_addr_parse(struct ip_addr *out, const char *s, struct errbuf *e)
{
	char q[QUOTED_MAX];

	/* All bytes, so that equal addresses compare equal with memcmp(). */
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, &out->v4) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, s, &out->v6) == 1)
		out->family = AF_INET6;
	else
		return errbuf_set(e, -EINVAL, "invalid address %s", quote(q, s));
	return 0;
}

int ip_prefix_parse(struct ip_prefix *out, const char *s, struct errbuf *e)
{
	char addr[INET6_ADDRSTRLEN], q[QUOTED_MAX];
	const char *slash = strchr(s, '/');
	size_t addr_len = slash ? (size_t)(slash - s) : strlen(s);
	uint32_t cidr;

	if (addr_len >= sizeof(addr))
		return errbuf_set(e, -EINVAL, "invalid address %s", quote(q, s));
	memcpy(addr, s, addr_len);
	addr[addr_len] = '\0';
	if (ip_addr_parse(&out->addr, addr, NULL) < 0)
		return errbuf_set(e, -EINVAL, "invalid address %s", quote(q, s));

	if (!slash) {
		out->cidr = (uint8_t)family_bits(out->addr.family);
		return 0;
	}
	switch (num_parse_u32(slash + 1, 0, family_bits(out->addr.family), &cidr, NULL)) {
	case 0:
		out->cidr = (uint8_t)cidr;
		return 0;
	case -ERANGE:
		return errbuf_set(e, -ERANGE, "prefix length out of range (0-%u) in %s",
				  family_bits(out->addr.family), quote(q, s));
	default:
		return errbuf_set(e, -EINVAL, "invalid prefix length in %s", quote(q, s));
	}
}

struct ip_prefix ip_prefix_masked(const struct ip_prefix *p)
{
	struct ip_prefix m = *p;
	uint8_t *b = m.addr.family == AF_INET ? (uint8_t *)&m.addr.v4 : (uint8_t *)&m.addr.v6;
	unsigned bytes = family_bits(p->addr.family) / 8;

	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = p->cidr > i * 8 ? p->cidr - i * 8 : 0;

		if (keep < 8)
			b[i] &= (uint8_t)(0xff00u >> keep);
	}
	return m;
}

bool ip_prefix_contains(const struct ip_prefix *net, const struct ip_addr *addr)
{
	struct ip_prefix host = { .addr = *addr, .cidr = net->cidr };
	struct ip_prefix a, b;

	if (net->addr.family != addr->family)
		return false;
	a = ip_prefix_masked(net);
	b = ip_prefix_masked(&host);
	return ip_addr_equal(&a.addr, &b.addr);
}

int ip_prefix_cmp(const struct ip_prefix *a, const struct ip_prefix *b)
{
	int r;

	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	r = memcmp(addr_bytes(&a->addr), addr_bytes(&b->addr), family_bits(a->addr.family) / 8);
	if (r)
		return r;
	return (int)a->cidr - (int)b->cidr;
}

bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b)
{
	return a->family == b->family &&
	       memcmp(addr_bytes(a), addr_bytes(b), family_bits(a->family) / 8) == 0;
}

void ip_addr_format(const struct ip_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family, addr_bytes(a), buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

void ip_prefix_format(const struct ip_prefix *p, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	ip_addr_format(&p->addr, addr, sizeof(addr));
	snprintf(buf, len, "%s/%u", addr, p->cidr);
}

/* RFC 1123 host names; '_' is allowed as resolvers accept it. A numeric last
 * label is refused so that a mistyped IPv4 address is not looked up in DNS. */
static bool valid_dns_name(const char *s)
{
	size_t len = strlen(s), label = 0;
	const char *last_label = s;
	bool numeric = true;

	if (len == 0 || len > ADDR_HOST_MAX - 1)
		return false;
	if (s[len - 1] == '.')
		len--;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			last_label = s + i + 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	if (label == 0 || s[len - 1] == '-')
		return false;
	for (const char *p = last_label; p < s + len; p++)
		if (*p < '0' || *p > '9')
			numeric = false;
	return !numeric;
}

void sockaddr_inet_set(union sockaddr_inet *sa, const struct ip_addr *a, uint16_t port)
{
	memset(sa, 0, sizeof(*sa));
	if (a->family == AF_INET) {
		sa->in.sin_family = AF_INET;
		sa->in.sin_addr = a->v4;
		sa->in.sin_port = htons(port);
	} else {
		sa->in6.sin6_family = AF_INET6;
		sa->in6.sin6_addr = a->v6;
		sa->in6.sin6_port = htons(port);
	}
}

int hostport_parse(struct hostport *out, const char *s, uint16_t default_port, struct errbuf *e)
{
	char q[QUOTED_MAX];
	const char *host = s, *port = NULL;
	size_t host_len;
	struct ip_addr ip;
	struct errbuf why;

	memset(out, 0, sizeof(*out));
	if (!*s)
		return errbuf_set(e, -EINVAL, "empty address");

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close)
			return errbuf_set(e, -EINVAL, "missing ']' in %s", quote(q, s));
		host = s + 1;
		host_len = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return errbuf_set(e, -EINVAL, "expected ':' after ']' in %s", quote(q, s));
	} else {
		const char *colon = strchr(s, ':');

		if (colon && strchr(colon + 1, ':')) {
			if (ip_addr_parse(&ip, s, NULL) == 0)
				return errbuf_set(e, -EINVAL,
						  "IPv6 address %s needs brackets: [address]:port",
						  quote(q, s));
			return errbuf_set(e, -EINVAL, "invalid address %s", quote(q, s));
		}
		host_len = colon ? (size_t)(colon - s) : strlen(s);
		if (colon)
			port = colon + 1;
	}

	if (host_len == 0)
		return errbuf_set(e, -EINVAL, "missing host in %s", quote(q, s));
	if (host_len >= sizeof(out->host))
		return errbuf_set(e, -EINVAL, "host name too long in %s", quote(q, s));
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';

	if (port) {
		int r = num_parse_port(port, &out->port, &why);

		if (r < 0)
			return errbuf_set(e, r, "invalid port in %s: %s", quote(q, s), why.msg);
	} else if (default_port) {
		out->port = default_port;
	} else {
		return errbuf_set(e, -EINVAL, "missing port in %s (expected host:port)",
				  quote(q, s));
	}

	if (ip_addr_parse(&ip, out->host, NULL) == 0) {
		if (s[0] == '[' ? ip.family != AF_INET6 : ip.family != AF_INET)
			return errbuf_set(e, -EINVAL, "invalid address %s", quote(q, s));
		out->is_ip = true;
		sockaddr_inet_set(&out->addr, &ip, out->port);
	} else if (s[0] == '[' || !valid_dns_name(out->host)) {
		return errbuf_set(e, -EINVAL, "invalid host %s", quote(q, out->host));
	}
	return 0;
}

int hostport_resolve(struct hostport *hp, struct errbuf *e)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char q[QUOTED_MAX];
	int r;

	if (hp->is_ip)
		return 0;
	r = getaddrinfo(hp->host, NULL, &hints, &res);
	if (r != 0)
		return errbuf_set(e, -EHOSTUNREACH, "cannot resolve %s: %s", quote(q, hp->host),
				  r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	memset(&hp->addr, 0, sizeof(hp->addr));
	memcpy(&hp->addr, res->ai_addr, res->ai_addrlen);
	if (hp->addr.sa.sa_family == AF_INET)
		hp->addr.in.sin_port = htons(hp->port);
	else
		hp->addr.in6.sin6_port = htons(hp->port);
	freeaddrinfo(res);
	return 0;
}

void hostport_format(const struct hostport *hp, char *buf, size_t len)
{
	snprintf(buf, len, strchr(hp->host, ':') ? "[%s]:%u" : "%s:%u", hp->host, hp->port);
}

socklen_t sockaddr_inet_len(const union sockaddr_inet *a)
{
	return a->sa.sa_family == AF_INET ? sizeof(a->in) : sizeof(a->in6);
}

uint16_t sockaddr_inet_port(const union sockaddr_inet *a)
{
	return ntohs(a->sa.sa_family == AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

void sockaddr_inet_format(const union sockaddr_inet *a, char *buf, size_t len)
{
	struct hostport hp = { .port = sockaddr_inet_port(a) };

	if (!inet_ntop(a->sa.sa_family,
		       a->sa.sa_family == AF_INET ? (const void *)&a->in.sin_addr
						  : (const void *)&a->in6.sin6_addr,
		       hp.host, sizeof(hp.host)))
		snprintf(hp.host, sizeof(hp.host), "?");
	hostport_format(&hp, buf, len);
}
