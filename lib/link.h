/* Network interfaces, their addresses and routes over rtnetlink, with
 * libnl-route-3. Every function returns 0 or a negative errno. Private to
 * the library (device.c, transparent.c). */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "wgrp/addr.h"

struct nl_sock;

/* Room for IFLA_IFALIAS, which the kernel caps at 255 bytes. */
#define LINK_ALIAS_MAX 256

struct link_info {
	int ifindex;
	char kind[32];  /* "wireguard", "tun", ... or "" */
	char alias[LINK_ALIAS_MAX];
};

int link_open(struct nl_sock **out);
void link_close(struct nl_sock *sk);

/* Returns -ENODEV when there is no interface of that name. */
int link_lookup(struct nl_sock *sk, const char *ifname, struct link_info *out);

/* Returns -EOPNOTSUPP when the kernel has no WireGuard. */
int link_create_wireguard(struct nl_sock *sk, const char *ifname);

int link_set_alias(struct nl_sock *sk, int ifindex, const char *alias);
int link_set_mtu(struct nl_sock *sk, int ifindex, uint32_t mtu);
int link_set_up(struct nl_sock *sk, int ifindex);
int link_delete(struct nl_sock *sk, int ifindex);

/* IPv6 addresses skip duplicate address detection: the daemons bind to them
 * at once, and the tunnel has nobody else to collide with. */
int link_add_address(struct nl_sock *sk, int ifindex, const struct ip_prefix *p);
/* Adds (an exclusive create) or deletes the route to dst via ifindex. */
int link_change_route(struct nl_sock *sk, int ifindex, const struct ip_prefix *dst, bool add);

/* A policy routing rule: from FROM [iif lo] [ipproto tcp|udp sport SPORT]
 * lookup TABLE, at PRIORITY. */
struct link_rule {
	struct ip_prefix from;
	bool iif_lo;
	uint8_t ipproto; /* IPPROTO_TCP or IPPROTO_UDP, with sport */
	uint16_t sport;  /* 0: any protocol and port */
	uint32_t table;
	uint32_t priority;
};

/* Adds (an exclusive create: -EEXIST when the same is there already) or
 * deletes a rule, or the route `local default dev lo table TABLE` of family
 * (0.0.0.0/0 or ::/0). */
int link_change_rule(struct nl_sock *sk, const struct link_rule *rule, bool add);
int link_change_local_route(struct nl_sock *sk, int family, uint32_t table, bool add);
