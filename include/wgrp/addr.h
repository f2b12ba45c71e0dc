/* IP addresses, prefixes and host:port pairs as users write them. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wgrp/diag.h"

/* Longest DNS name (RFC 1035) plus the terminating NUL. */
#define ADDR_HOST_MAX 254
/* Large enough for any ip_prefix_format() output: an IPv6 address and "/128". */
#define ADDR_PREFIX_STRLEN (INET6_ADDRSTRLEN + 4)
/* Large enough for any hostport_format() output: "[" host "]:" port. */
#define ADDR_HOSTPORT_STRLEN (ADDR_HOST_MAX + 8)

struct ip_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	};
};

struct ip_prefix {
	struct ip_addr addr;
	uint8_t cidr;
};

union sockaddr_inet {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* A host (IP literal or DNS name) and a port, as in an Endpoint or a -r spec. */
struct hostport {
	char host[ADDR_HOST_MAX]; /* without brackets */
	uint16_t port;
	bool is_ip; /* host is an IP literal, so addr is already known */
	union sockaddr_inet addr; /* valid when is_ip, or after hostport_resolve() */
};

/* Parses an IPv4 or IPv6 literal. Returns 0 or -EINVAL. */
int ip_addr_parse(struct ip_addr *out, const char *s, struct errbuf *e);

/* Parses "addr/cidr", or "addr" alone as a host prefix (/32, /128). Returns 0,
 * -EINVAL for a bad address or number, -ERANGE for a prefix length too long for
 * the family. Host bits beyond the prefix are kept as written. */
int ip_prefix_parse(struct ip_prefix *out, const char *s, struct errbuf *e);

/* Returns p with every bit past its prefix length cleared. */
struct ip_prefix ip_prefix_masked(const struct ip_prefix *p);

/* Tells whether addr lies inside net. */
bool ip_prefix_contains(const struct ip_prefix *net, const struct ip_addr *addr);

/* Orders prefixes by family, address, then length; for qsort and dedup. */
int ip_prefix_cmp(const struct ip_prefix *a, const struct ip_prefix *b);

bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b);

/* Writes "addr/cidr" (buf of ADDR_PREFIX_STRLEN). */
void ip_prefix_format(const struct ip_prefix *p, char *buf, size_t len);
/* Writes the address alone (buf of INET6_ADDRSTRLEN). */
void ip_addr_format(const struct ip_addr *a, char *buf, size_t len);

/* Parses "host:port", "[v6]:port", or, when default_port is non-zero, "host"
 * and "[v6]" alone. A bare IPv6 address is refused with a hint to bracket it.
 * Host names must be valid DNS names. Returns 0, -EINVAL or -ERANGE. */
int hostport_parse(struct hostport *out, const char *s, uint16_t default_port, struct errbuf *e);

/* Resolves a host name to its first address (IPv4 or IPv6) when it is not an
 * IP literal. Returns 0 or -EHOSTUNREACH, with the resolver's reason in e. */
int hostport_resolve(struct hostport *hp, struct errbuf *e);

/* Writes "host:port", bracketing IPv6 literals (buf of ADDR_HOSTPORT_STRLEN). */
void hostport_format(const struct hostport *hp, char *buf, size_t len);

/* Writes a socket address as "ip:port" or "[ip6]:port" (buf of
 * ADDR_HOSTPORT_STRLEN). */
void sockaddr_inet_format(const union sockaddr_inet *a, char *buf, size_t len);
/* Makes the socket address of a and port. */
void sockaddr_inet_set(union sockaddr_inet *sa, const struct ip_addr *a, uint16_t port);
/* The length of a socket address, as bind() and connect() take it. */
socklen_t sockaddr_inet_len(const union sockaddr_inet *a);
/* The port of a socket address, in host order. */
uint16_t sockaddr_inet_port(const union sockaddr_inet *a);
