#!/bin/bash
# Transparent connections end to end, without WireGuard: wgrp-transparent
# (test/transparent_tool.c) connects from visitor addresses that are on no
# interface, with the library's IP_TRANSPARENT sockets and policy routing;
# each service must see the visitor as its peer (getpeername()) and echo the
# bytes back. The rules and routes must be exactly as before once the tool
# has exited, normally or on SIGTERM; ones that were there before it must
# stay; without CAP_NET_ADMIN it must say so.
#
#   netns $T (the tool)                       netns $L (a LAN service host)
#   services 127.0.0.1:7001 [::1]:7001
#   $VT 192.168.79.1/24 fd79::1/64  <--veth-->  $VL 192.168.79.2/24 fd79::2/64
#                                               services on both, port 7001;
#                                               203.0.113.0/24, 2001:db8:7::/48
#                                               via $T
#
# Visitors: 203.0.113.7, .8 and 2001:db8:7::7 (documentation ranges).
# Nothing is linked to the root namespace.
#
# usage: transparent_test.sh TOOL
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces and policy routing"
tool=$(realpath "$1")
tag=$$
T=wgrp-tp-t-$tag L=wgrp-tp-l-$tag D=wgrp-tp-d-$tag
VT=vtpt$tag VL=vtpl$tag
TABLE=30100 # TRANSPARENT_TABLE
work=$(mktemp -d /tmp/wgrp-transparent-test.XXXXXX)
pids=()
. "$(dirname "$0")/checks.sh"
trap 'end_run "$T" "$L" "$D"' EXIT
trap 'exit 1' INT TERM HUP

inT() { ip netns exec "$T" "$@"; }
inL() { ip netns exec "$L" "$@"; }

netns_new "$T" "$L" || exit 1
ip link add "$VT" netns "$T" type veth peer name "$VL" netns "$L" || exit 1
inT ip addr add 192.168.79.1/24 dev "$VT"
inL ip addr add 192.168.79.2/24 dev "$VL"
inT ip addr add fd79::1/64 dev "$VT" nodad
inL ip addr add fd79::2/64 dev "$VL" nodad
# Link-local addresses of our own, without DAD: generated ones would appear
# in the routing tables during the test, whose checks compare the tables
# before and after. Neighbor discovery needs them: a solicitation for a
# packet from an address not local (the visitor's) is sent from the
# link-local address, or not at all.
inT ip addr add fe80::1/64 dev "$VT" nodad
inL ip addr add fe80::2/64 dev "$VL" nodad
inT ip link set "$VT" addrgenmode none up
inL ip link set "$VL" addrgenmode none up
# Strict reverse path filtering where the LAN service's replies come in
# (Debian's default is loose): the replies must pass it.
inT sysctl -qw net.ipv4.conf.all.rp_filter=1
# The LAN host routes the visitors back via the tool's host, as it must.
inL ip route add 203.0.113.0/24 via 192.168.79.1
inL ip -6 route add 2001:db8:7::/48 via fd79::1

# An echo service on each ADDR:PORT: it first sends "peer ADDR PORT" of
# getpeername(), then echoes until EOF.
cat >"$work/service.py" <<'PY'
import socket, sys, threading

def serve(ls):
    while True:
        c, peer = ls.accept()
        with c:
            c.sendall(f"peer {peer[0]} {peer[1]}\n".encode())
            while data := c.recv(4096):
                c.sendall(data)

for spec in sys.argv[1:]:
    host, port = spec.rsplit(":", 1)
    host = host.strip("[]")
    ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(16)
    threading.Thread(target=serve, args=(ls,), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
PY
# service NETNS NAME ADDR:PORT...: started, and listening.
service() {
	local ns=$1 name=$2
	shift 2
	ip netns exec "$ns" /usr/bin/python3 "$work/service.py" "$@" >"$work/$name.log" 2>&1 &
	pids+=("$!")
	wait_for 10 contains "$work/$name.log" listening || die "$name: not listening"
}
service "$T" service-lo 127.0.0.1:7001 '[::1]:7001'
service "$L" service-lan 192.168.79.2:7001 '[fd79::2]:7001'

# state: the tool's namespace's rules and every routing table, in $state.
state() {
	state=$(inT ip -4 rule; inT ip -6 rule; inT ip -4 route show table all; inT ip -6 route show table all)
}
# reply VISITOR_ADDR VISITOR_PORT SERVICE: what the tool must print.
reply() { echo "reply $3: peer $1 $2|$4:$2 says hello|"; }

pairs=(203.0.113.7:40001 127.0.0.1:7001
	203.0.113.8:40002 127.0.0.1:7001
	'[2001:db8:7::7]:40003' '[::1]:7001'
	203.0.113.7:40004 192.168.79.2:7001
	'[2001:db8:7::7]:40005' '[fd79::2]:7001')
want=$(reply 203.0.113.7 40001 127.0.0.1:7001 203.0.113.7
	reply 203.0.113.8 40002 127.0.0.1:7001 203.0.113.8
	reply 2001:db8:7::7 40003 '[::1]:7001' '[2001:db8:7::7]'
	reply 203.0.113.7 40004 192.168.79.2:7001 203.0.113.7
	reply 2001:db8:7::7 40005 '[fd79::2]:7001' '[2001:db8:7::7]')

section "a normal run: loopback and LAN services, both families"
state
before=$state
got=$(inT "$tool" "${pairs[@]}" 2>"$work/tool.log")
check "tool exits 0" [ $? -eq 0 ]
expect_eq "each service sees the visitor and echoes" "$want" "$got"
state
expect_eq "rules and routes as before, after exit" "$before" "$state"

section "held, then SIGTERM"
# Not through inT: $! must be the tool's PID (ip netns exec execs it).
ip netns exec "$T" "$tool" --wait "${pairs[@]}" >"$work/held.out" 2>"$work/held.log" &
held=$!
pids+=("$held")
wait_for 20 contains "$work/held.out" ready || fail "held tool: never ready"
rules=$(inT ip -4 rule; inT ip -6 rule)
echo "$rules"
routes=$(inT ip -4 route show table $TABLE; inT ip -6 route show table $TABLE)
routes=${routes// $'\n'/$'\n'} # ip ends some lines with a space
echo "$routes"
expect_eq "rules while held" "0:	from all lookup local
1000:	from 127.0.0.0/8 iif lo lookup $TABLE
1000:	from 192.168.79.2 ipproto tcp sport 7001 lookup $TABLE
32766:	from all lookup main
32767:	from all lookup default
0:	from all lookup local
1000:	from ::1 iif lo lookup $TABLE
1000:	from fd79::2 ipproto tcp sport 7001 lookup $TABLE
32766:	from all lookup main" "$rules"
expect_eq "local routes while held" "local default dev lo proto static scope host
local default dev lo proto static metric 1024 pref medium" "$routes"
# The LAN rule must not make this host answer the LAN host's ARP requests
# for addresses not its own (`from S` alone does: the request routes to the
# local route). Both requests go out together; that for our own address is
# answered, that for .99 must end unanswered (FAILED).
inL /usr/bin/python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for a in ("192.168.79.1", "192.168.79.99"):
    s.sendto(b"x", (a, 9))'
neigh_has() { [[ $(inL ip neigh show "$1") == *"$2"* ]]; }
check "ARP: ours answered" wait_for 10 neigh_has 192.168.79.1 lladdr
check "ARP: another address not answered" \
	wait_for 20 neigh_has 192.168.79.99 FAILED
kill -TERM "$held"
wait "$held"
check "held tool exits 0 on SIGTERM" [ $? -eq 0 ]
state
expect_eq "rules and routes as before, after SIGTERM" "$before" "$state"

section "a rule and route that were there before stay"
inT ip rule add pref 1000 from 127.0.0.0/8 iif lo lookup $TABLE
inT ip route add local 0.0.0.0/0 dev lo table $TABLE
state
before_own=$state
got=$(inT "$tool" 203.0.113.7:40006 127.0.0.1:7001 2>>"$work/tool.log")
expect_eq "the service sees the visitor" "$(reply 203.0.113.7 40006 127.0.0.1:7001 203.0.113.7)" "$got"
state
expect_eq "the admin's rule and route stay" "$before_own" "$state"
inT ip rule del pref 1000 from 127.0.0.0/8 iif lo lookup $TABLE
inT ip route del local 0.0.0.0/0 dev lo table $TABLE

section "refusals"
state
if setpriv --bounding-set=-net_admin,-net_raw true 2>/dev/null; then
	got=$(inT setpriv --bounding-set=-net_admin,-net_raw "$tool" 203.0.113.7:40007 127.0.0.1:7001 2>&1)
	check "without CAP_NET_ADMIN: fails" [ $? -eq 1 ]
	check "without CAP_NET_ADMIN: says so ($got)" grep -q "no CAP_NET_ADMIN" <<<"$got"
else
	fail "setpriv cannot drop capabilities here"
fi
got=$(inT "$tool" 203.0.113.7:40008 192.168.79.1:7001 2>&1)
check "a service on this machine's own LAN address: refused ($got)" \
	grep -q "an address of this machine" <<<"$got"
got=$(inT "$tool" '[2001:db8:7::7]:40009' 127.0.0.1:7001 2>&1)
check "an IPv6 visitor to an IPv4 service: fails ($got)" [ $? -eq 1 ]
state
expect_eq "nothing left after the refusals" "$before" "$state"
netns_new "$D" || die "netns $D"
ip netns exec "$D" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1
got=$(ip netns exec "$D" "$tool" '[2001:db8:7::7]:40010' '[::1]:7001' 2>&1)
check "IPv6 disabled: says so ($got)" grep -q "IPv6 disabled" <<<"$got"
expect_eq "IPv6 disabled: no rule left" "0:	from all lookup local
32766:	from all lookup main" "$(ip -n "$D" -6 rule)"

finish
