#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <stdio.h>
#include <string.h>

#include "link.h"

/* libnl has its own error codes; callers here speak errno. */
static int errno_of(int nle)
{
	static const int map[][2] = {
		{ NLE_PERM, EPERM },         { NLE_NOACCESS, EACCES },
		{ NLE_EXIST, EEXIST },       { NLE_OPNOTSUPP, EOPNOTSUPP },
		{ NLE_NODEV, ENODEV },       { NLE_OBJ_NOTFOUND, ENODEV },
		{ NLE_INVAL, EINVAL },       { NLE_RANGE, ERANGE },
		{ NLE_NOMEM, ENOMEM },       { NLE_BUSY, EBUSY },
		{ NLE_AGAIN, EAGAIN },       { NLE_NOADDR, EADDRNOTAVAIL },
		{ NLE_MSGSIZE, EMSGSIZE },   { NLE_AF_NOSUPPORT, EAFNOSUPPORT },
	};

	if (nle >= 0)
		return 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i][0] == -nle)
			return -map[i][1];
	return -EIO;
}

int link_open(struct nl_sock **out)
{
	struct nl_sock *sk = nl_socket_alloc();
	int r;

	*out = NULL;
	if (!sk)
		return -ENOMEM;
	r = errno_of(nl_connect(sk, NETLINK_ROUTE));
	if (r < 0) {
		nl_socket_free(sk);
		return r;
	}
	*out = sk;
	return 0;
}

void link_close(struct nl_sock *sk)
{
	if (sk)
		nl_socket_free(sk);
}

int link_lookup(struct nl_sock *sk, const char *ifname, struct link_info *out)
{
	struct rtnl_link *link = NULL;
	const char *s;
	int r = errno_of(rtnl_link_get_kernel(sk, 0, ifname, &link));

	memset(out, 0, sizeof(*out));
	if (r < 0)
		return r;
	out->ifindex = rtnl_link_get_ifindex(link);
	s = rtnl_link_get_type(link);
	snprintf(out->kind, sizeof(out->kind), "%s", s ? s : "");
	s = rtnl_link_get_ifalias(link);
	snprintf(out->alias, sizeof(out->alias), "%s", s ? s : "");
	rtnl_link_put(link);
	return 0;
}

int link_create_wireguard(struct nl_sock *sk, const char *ifname)
{
	struct rtnl_link *link = rtnl_link_alloc();
	int r;

	if (!link)
		return -ENOMEM;
	rtnl_link_set_name(link, ifname);
	r = errno_of(rtnl_link_set_type(link, "wireguard"));
	if (r == 0)
		r = errno_of(rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL));
	rtnl_link_put(link);
	return r;
}

/* Applies what change holds to the interface ifindex. */
static int change(struct nl_sock *sk, int ifindex, struct rtnl_link *changes)
{
	struct rtnl_link *orig = NULL;
	int r = errno_of(rtnl_link_get_kernel(sk, ifindex, NULL, &orig));

	if (r == 0)
		r = errno_of(rtnl_link_change(sk, orig, changes, 0));
	if (orig)
		rtnl_link_put(orig);
	rtnl_link_put(changes);
	return r;
}

int link_set_alias(struct nl_sock *sk, int ifindex, const char *alias)
{
	struct rtnl_link *c = rtnl_link_alloc();

	if (!c)
		return -ENOMEM;
	rtnl_link_set_ifalias(c, alias);
	return change(sk, ifindex, c);
}

int link_set_mtu(struct nl_sock *sk, int ifindex, uint32_t mtu)
{
	struct rtnl_link *c = rtnl_link_alloc();

	if (!c)
		return -ENOMEM;
	rtnl_link_set_mtu(c, mtu);
	return change(sk, ifindex, c);
}

int link_set_up(struct nl_sock *sk, int ifindex)
{
	struct rtnl_link *c = rtnl_link_alloc();

	if (!c)
		return -ENOMEM;
	rtnl_link_set_flags(c, IFF_UP);
	return change(sk, ifindex, c);
}

int link_delete(struct nl_sock *sk, int ifindex)
{
	struct rtnl_link *link = rtnl_link_alloc();
	int r;

	if (!link)
		return -ENOMEM;
	rtnl_link_set_ifindex(link, ifindex);
	r = errno_of(rtnl_link_delete(sk, link));
	rtnl_link_put(link);
	return r;
}

static struct nl_addr *nl_addr_of(const struct ip_prefix *p)
{
	bool v4 = p->addr.family == AF_INET;
	struct nl_addr *a = nl_addr_build(p->addr.family,
					  v4 ? (const void *)&p->addr.v4 : (const void *)&p->addr.v6,
					  v4 ? sizeof(p->addr.v4) : sizeof(p->addr.v6));

	if (a)
		nl_addr_set_prefixlen(a, p->cidr);
	return a;
}

int link_add_address(struct nl_sock *sk, int ifindex, const struct ip_prefix *p)
{
	struct rtnl_addr *addr = rtnl_addr_alloc();
	struct nl_addr *local = nl_addr_of(p);
	int r = -ENOMEM;

	if (!addr || !local)
		goto out;
	rtnl_addr_set_ifindex(addr, ifindex);
	r = errno_of(rtnl_addr_set_local(addr, local));
	if (r < 0)
		goto out;
	if (p->addr.family == AF_INET6)
		rtnl_addr_set_flags(addr, IFA_F_NODAD);
	r = errno_of(rtnl_addr_add(sk, addr, 0));
out:
	if (local)
		nl_addr_put(local);
	if (addr)
		rtnl_addr_put(addr);
	return r;
}

int link_change_route(struct nl_sock *sk, int ifindex, const struct ip_prefix *dst, bool add)
{
	struct rtnl_route *route = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *d = nl_addr_of(dst);
	int r = -ENOMEM;

	if (!route || !nh || !d)
		goto out;
	rtnl_route_set_family(route, (uint8_t)dst->addr.family);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_protocol(route, RTPROT_STATIC);
	rtnl_route_set_scope(route, RT_SCOPE_LINK);
	r = errno_of(rtnl_route_set_dst(route, d));
	if (r < 0)
		goto out;
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_add_nexthop(route, nh);
	nh = NULL; /* the route owns it now */
	r = errno_of(add ? rtnl_route_add(sk, route, NLM_F_EXCL) : rtnl_route_delete(sk, route, 0));
out:
	if (nh)
		rtnl_route_nh_free(nh);
	if (d)
		nl_addr_put(d);
	if (route)
		rtnl_route_put(route);
	return r;
}

static struct rtnl_rule *rule_of(const struct link_rule *lr)
{
	struct rtnl_rule *rule = rtnl_rule_alloc();
	struct nl_addr *src = nl_addr_of(&lr->from);
	int r = -ENOMEM;

	if (!rule || !src)
		goto out;
	rtnl_rule_set_family(rule, lr->from.addr.family);
	rtnl_rule_set_prio(rule, lr->priority);
	rtnl_rule_set_table(rule, lr->table);
	rtnl_rule_set_action(rule, FR_ACT_TO_TBL);
	r = errno_of(rtnl_rule_set_src(rule, src));
	if (r == 0 && lr->iif_lo)
		r = errno_of(rtnl_rule_set_iif(rule, "lo"));
	if (r == 0 && lr->sport)
		r = errno_of(rtnl_rule_set_ipproto(rule, lr->ipproto));
	if (r == 0 && lr->sport)
		r = errno_of(rtnl_rule_set_sport(rule, lr->sport));
out:
	if (src)
		nl_addr_put(src);
	if (r < 0 && rule) {
		rtnl_rule_put(rule);
		rule = NULL;
	}
	return rule;
}

int link_change_rule(struct nl_sock *sk, const struct link_rule *lr, bool add)
{
	struct rtnl_rule *rule = rule_of(lr);
	int r;

	if (!rule)
		return -ENOMEM;
	r = errno_of(add ? rtnl_rule_add(sk, rule, NLM_F_EXCL) : rtnl_rule_delete(sk, rule, 0));
	rtnl_rule_put(rule);
	return r;
}

/* `local default dev lo table TABLE`, of family. */
static struct rtnl_route *local_route_of(int family, uint32_t table)
{
	struct ip_prefix any = { .addr.family = family };
	struct rtnl_route *route = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *d = nl_addr_of(&any);
	int r = -ENOMEM;

	if (!route || !nh || !d)
		goto out;
	rtnl_route_set_family(route, (uint8_t)family);
	rtnl_route_set_table(route, table);
	rtnl_route_set_protocol(route, RTPROT_STATIC);
	rtnl_route_set_scope(route, RT_SCOPE_HOST);
	r = errno_of(rtnl_route_set_type(route, RTN_LOCAL));
	if (r == 0)
		r = errno_of(rtnl_route_set_dst(route, d));
	if (r < 0)
		goto out;
	rtnl_route_nh_set_ifindex(nh, (int)if_nametoindex("lo"));
	rtnl_route_add_nexthop(route, nh);
	nh = NULL; /* the route owns it now */
out:
	if (nh)
		rtnl_route_nh_free(nh);
	if (d)
		nl_addr_put(d);
	if (r < 0 && route) {
		rtnl_route_put(route);
		route = NULL;
	}
	return route;
}

int link_change_local_route(struct nl_sock *sk, int family, uint32_t table, bool add)
{
	struct rtnl_route *route = local_route_of(family, table);
	int r;

	if (!route)
		return -ENOMEM;
	r = errno_of(add ? rtnl_route_add(sk, route, NLM_F_EXCL) : rtnl_route_delete(sk, route, 0));
	rtnl_route_put(route);
	return r;
}
