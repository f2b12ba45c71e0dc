/* A PROXY v2 header comes from whoever connects: any bytes must parse, ask
 * for more or be refused with a reason, never read past their end. A header
 * that parses must build back into one that parses to the same addresses,
 * and each of its proper prefixes must ask for more. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "must.h"
#include "wgrp/proxy_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REASON_PREFIX "PROXY v2 header: "

static bool is_ipv4ish(const union sockaddr_inet *sa)
{
	return sa->sa.sa_family == AF_INET || IN6_IS_ADDR_V4MAPPED(&sa->in6.sin6_addr);
}

static void unmap(union sockaddr_inet *sa)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = sa->in6.sin6_port };

	if (sa->sa.sa_family == AF_INET)
		return;
	memcpy(&in.sin_addr, sa->in6.sin6_addr.s6_addr + 12, 4);
	memset(sa, 0, sizeof(*sa));
	sa->in = in;
}

/* The addresses as a header built from a carries them. */
static void as_built(struct proxy_addrs *a)
{
	if (is_ipv4ish(&a->src) && is_ipv4ish(&a->dst)) {
		unmap(&a->src);
		unmap(&a->dst);
	}
}

static void check_v1_line(const struct proxy_addrs *a)
{
	char line[PROXY_V1_MAX_LEN];
	ssize_t n = proxy_v1_build(line, sizeof(line), a);

	must(n > 0 && (size_t)n == strlen(line) && n <= PROXY_V1_MAX_LEN - 1);
	must(!strncmp(line, a->src.sa.sa_family == AF_INET ? "PROXY TCP4 " : "PROXY TCP6 ", 11));
	must(!strcmp(line + n - 2, "\r\n"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t header[PROXY_V2_MAX_LEN];
	struct proxy_addrs a, b;
	struct errbuf e;
	ssize_t n, m;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	n = proxy_v2_parse(data, size, &a, &e);
	if (n < 0) {
		must(n == -EBADMSG && !strncmp(e.msg, REASON_PREFIX, strlen(REASON_PREFIX)));
		return 0;
	}
	if (n == 0) {
		must(size < PROXY_V2_PARSE_MAX);
		return 0;
	}
	must((size_t)n <= size && n <= PROXY_V2_PARSE_MAX);
	must(a.proto == SOCK_STREAM || a.proto == SOCK_DGRAM);
	for (size_t k = 0; k < (size_t)n; k++)
		must(proxy_v2_parse(data, k, &b, &e) == 0);

	m = proxy_v2_build(header, sizeof(header), &a);
	must(m > 0);
	must(proxy_v2_parse(header, (size_t)m, &b, &e) == m);
	as_built(&a);
	must(!memcmp(&a, &b, sizeof(a)));
	if (a.proto == SOCK_STREAM)
		check_v1_line(&a);
	return 0;
}
