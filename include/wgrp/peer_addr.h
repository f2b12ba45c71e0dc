/* The tunnel addresses of a new client of rps: in each subnet of the server's
 * Address, the lowest host address that nothing uses yet. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "wgrp/addr.h"
#include "wgrp/conf.h"
#include "wgrp/diag.h"

/* Whether clients get an address in the server's Address prefix p: it is a
 * subnet, not a single host (/32, /128). */
bool peer_addr_subnet(const struct ip_prefix *p);

/* Picks one address in each subnet of c's Address (a single-host prefix such
 * as /32 is the server's alone and is passed over): the lowest that is not the
 * server's own, not IPv4's network or broadcast address nor IPv6's
 * subnet-router anycast (the all-zero host), and in no peer's AllowedIPs. A
 * wanted address (--address; n_wanted of them) is taken instead in its subnet,
 * if it is such an address. out has room for c->n_addresses.
 * Returns 0 with *n_out addresses in the order of c's Address, -EINVAL for a
 * wanted address outside the subnets, taken, or a second in one subnet, or
 * -ENOSPC when a subnet is full or there is none; the reason in e. */
int peer_addr_pick(const struct conf *c, const struct ip_addr *wanted, size_t n_wanted,
		   struct ip_addr *out, size_t *n_out, struct errbuf *e);
