/* Shared by the cmocka unit tests. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wgrp/addr.h"

/* Fails showing both strings when needle is not inside haystack. */
#define assert_contains(haystack, needle)                                                    \
	do {                                                                                 \
		const char *h_ = (haystack), *n_ = (needle);                                 \
		if (!strstr(h_, n_))                                                         \
			fail_msg("\"%s\" does not contain \"%s\"", h_, n_);                  \
	} while (0)

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ip, an address literal of either family, with port. */
static inline union sockaddr_inet test_sockaddr(const char *ip, uint16_t port)
{
	union sockaddr_inet s;
	struct ip_addr a;

	assert_int_equal(ip_addr_parse(&a, ip, NULL), 0);
	sockaddr_inet_set(&s, &a, port);
	return s;
}
