/* Transparent connections to a local service: rpc connects with the
 * visitor's address as its source (IP_TRANSPARENT), so that an unmodified
 * service sees the real peer in getpeername() (UDP: recvfrom()), as
 * go-mmproxy does. The
 * service's replies are addressed to the visitor, an address not on this
 * machine; policy routing delivers them locally, to the transparent socket:
 *
 *   loopback IPv4 service: ip rule add pref PRIO from 127.0.0.0/8 iif lo lookup T
 *                          ip route add local 0.0.0.0/0 dev lo table T
 *   loopback IPv6 service: ip -6 rule add pref PRIO from ::1/128 iif lo lookup T
 *                          ip -6 route add local ::/0 dev lo table T
 *   service at S:P on another host, whose routes to the visitors' addresses
 *   go via this machine:
 *       ip rule add pref PRIO from S/32 ipproto tcp sport P lookup T
 *       (ipproto udp for a UDP service; ip -6 and S/128 for IPv6), and the
 *       local route of S's family
 *
 * Limitation of the last: every TCP (UDP) packet from S:P that reaches this
 * machine is delivered locally, whatever its destination, so clients
 * elsewhere that reach S:P through this machine as their router get no
 * answers while the rule is in. The rule names the protocol and port
 * because with `from S` alone the kernel answers S's ARP requests for any
 * address (arp_process() routes the request as coming from S, finds the
 * local route and replies), taking over S's traffic to its gateway and its
 * whole LAN, and swallows everything S sends through this machine.
 * `ipproto` and `sport` in rules need Linux 4.17: older kernels would
 * ignore them and make the broad rule. `iif DEV` would not narrow it (S's
 * packets all come in on DEV) and would break when DEV is renamed or
 * recreated. A service on a non-loopback address of this machine itself is
 * refused: its rule would catch the service's replies to every other client.
 *
 * All functions return 0 or a negative errno, with the reason in e. */
#pragma once

#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"

/* The routing table of the local routes. Above 255, so only in FRA_TABLE /
 * RTA_TABLE, out of the range that /etc/iproute2/rt_tables entries and
 * examples use (go-mmproxy's documentation uses 123), and not wg-quick's
 * 51820. The table is wg-rp's alone: a default route already in it is taken
 * for ours (EEXIST). Two processes must not share it: the first to stop
 * removes the routes the other relies on. */
#define TRANSPARENT_TABLE 30100u

/* The rules' priority: after the local table (0), so that traffic to this
 * machine's own addresses is unaffected, and before everything that could
 * send a reply to a visitor elsewhere: wg-quick's rules (32764, 32765),
 * rules `ip rule add` numbers itself (counting down from 32765), main
 * (32766), and rules of VPN clients such as Tailscale (5210-5270). Rules an
 * administrator wants to win can still go below 1000. */
#define TRANSPARENT_RULE_PRIORITY 1000u

/* Makes fd (a TCP socket of family AF_INET or AF_INET6, not yet bound) able
 * to bind() to a visitor's address and port that are not local: sets
 * IP_TRANSPARENT or IPV6_TRANSPARENT, and SO_REUSEADDR so that a visitor
 * who reuses a source port soon after is not refused by the TIME_WAIT
 * socket of its previous connection to another service (the 4-tuple must
 * still be unique; connect() says EADDRNOTAVAIL when it is not). The
 * visitor's address must be of fd's family: an IPv4 visitor cannot reach an
 * IPv6-only service this way. Returns 0, -EPERM without CAP_NET_ADMIN (or
 * CAP_NET_RAW), or another -errno of setsockopt(). */
int transparent_socket_prepare(int fd, int family);

/* Makes fd, a new socket of family (TCP or UDP) that is to connect() to a
 * service, send from visitor's address and port: transparent_socket_prepare()
 * and bind(). Returns 0 or -errno: -EAFNOSUPPORT when visitor is not of
 * family (an IPv6 visitor cannot be the source of a packet to an IPv4
 * service, nor the reverse). */
int transparent_bind(int fd, int family, const union sockaddr_inet *visitor);

/* Checks at start that transparent sockets of family can be made here: a
 * throwaway socket gets IP_TRANSPARENT. Returns 0, or -EPERM ("no
 * CAP_NET_ADMIN"), -EAFNOSUPPORT ("IPv6 disabled"), ... with the reason in e. */
int transparent_probe(int family, struct errbuf *e);

/* The rules and routes one process added, and removes again. */
struct transparent_routing;

/* Opens an rtnetlink socket; adds nothing yet. table is the routing table of
 * the local routes (TRANSPARENT_TABLE unless the caller has a reason). */
int transparent_routing_new(struct transparent_routing **out, uint32_t table, struct errbuf *e);

/* Adds what replies from service (address and port, over protocol:
 * IPPROTO_TCP or IPPROTO_UDP) need, unless this object added it before: the
 * loopback rule and local route of the family once, a `from S ipproto
 * tcp|udp sport P` rule once per S:P and protocol. A rule or route
 * that exists already (EEXIST on an exclusive create) is used and left
 * alone: only what this object created is removed by
 * transparent_routing_free(). On failure, what this call added is taken
 * back. Returns 0 or -errno, e.g. -EPERM ("no CAP_NET_ADMIN"), -EAFNOSUPPORT
 * ("kernel lacks policy routing", "IPv6 disabled"), -EACCES ("IPv6 disabled
 * on lo"), -EINVAL (a non-loopback address of this machine, an unspecified
 * or multicast address, port 0). */
int transparent_routing_add_target(struct transparent_routing *r,
				   const union sockaddr_inet *service, int protocol,
				   struct errbuf *e);

/* Removes every rule and route r added, newest first, and frees r (NULL is
 * fine). Blocks for a netlink round trip each. Returns 0, or the first
 * error (the others are still tried), with its reason in e (may be NULL). */
int transparent_routing_free(struct transparent_routing *r, struct errbuf *e);
