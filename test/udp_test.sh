#!/bin/bash
# UDP services end to end: the real rps and rpc on WireGuard, a
# real DNS server (dnsmasq) and a UDP echo service behind rpc, in namespaces
# joined by veth pairs with nothing linked to the root namespace.
#
#   netns $O (outside host)      netns $S (server: rps)             netns $C (client: rpc)
#   $VO  198.51.100.2/24  <-veth-> $VSO 198.51.100.1/24
#        2001:db8:1::2/64              2001:db8:1::1/64
#                                 $VSC 192.0.2.1/24     <-veth->  $VC 192.0.2.2/24
#                                 $WS  10.99.0.1/24  <== wg ==>   $WC 10.99.0.2/32
#                                      fd00:99::1/64                  fd00:99::2/128
#   rpc routes (C), --udp-timeout 3:
#     127.0.0.1:5353-53/udp    dnsmasq (example.test: 192.0.2.77, 2001:db8::77)
#     127.0.0.1:5353-53        the same dnsmasq over TCP: one port, both protocols
#     127.0.0.1:7007-7007/udp  an echo service (test/udp_tool.py)
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   dns       dig from the outside host over IPv4 and IPv6, UDP and TCP, and
#             100 queries at once, all answered
#   echo      20,000 datagrams of 1 to the tunnel's largest size over 200
#             flows, every reply byte for byte (losses reported); the list
#             shows the flows
#   limits    a datagram larger than the tunnel carries is dropped (no
#             reply), the flows expire after --udp-timeout, and both
#             daemons' fds come back to their baseline
#   restart   rps restarted: rpc registers its UDP ports again by itself;
#             rpc restarted: likewise; DNS answers each time
# At the end: no sanitizer report in any log. With `kernel` (in the test VM)
# the same on kernel WireGuard, with 10 queries at once and the echo with
# 1,000 datagrams over 10 flows (emulated, more proves nothing more);
# `userspace`: wireguard-go.
#
# usage: udp_test.sh RPS RPC kernel|userspace
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
daemon_args "$@"
datagrams=20000 flows=200 queries=100
[ "$expect" = kernel ] && datagrams=1000 flows=10 queries=10
tool=(/usr/bin/python3 "$(cd "$(dirname "$0")" && pwd)/udp_tool.py")
command -v dnsmasq >/dev/null || skip_test "needs dnsmasq (Debian: dnsmasq-base)"
command -v dig >/dev/null || skip_test "needs dig (Debian: bind9-dnsutils)"
[ -x /usr/bin/python3 ] || skip_test "needs /usr/bin/python3"

tag=$$
O=wgrp-ut-o-$tag S=wgrp-ut-s-$tag C=wgrp-ut-c-$tag
VO=uto$tag VSO=utso$tag VSC=utsc$tag VC=utc$tag
WS=utws$tag WC=utwc$tag
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"
trap 'end_run "$O" "$S" "$C"' EXIT
trap 'exit 1' INT TERM

fds() { ls "/proc/$1/fd" | wc -l; }

# ---------------------------------------------------------------- namespaces
netns_new "$O" "$S" "$C" || die "cannot create the namespaces"
ip link add "$VO" netns "$O" type veth peer name "$VSO" netns "$S" &&
	ip link add "$VSC" netns "$S" type veth peer name "$VC" netns "$C" ||
	die "cannot create veth pairs"
netns_addr "$O" "$VO" 198.51.100.2/24 2001:db8:1::2/64 &&
	netns_addr "$S" "$VSO" 198.51.100.1/24 2001:db8:1::1/64 &&
	netns_addr "$S" "$VSC" 192.0.2.1/24 && netns_addr "$C" "$VC" 192.0.2.2/24 ||
	die "cannot set addresses"

# ---------------------------------------------------------------- configs
pair_configs
routes=(-r 127.0.0.1:5353-53/udp -r 127.0.0.1:5353-53 -r 127.0.0.1:7007-7007/udp)
# The largest datagram the tunnel carries whole: MTU 1420 less the UDP and
# IPv6 headers (the interfaces have IPv6 addresses).
max=$((1420 - 48))

# ---------------------------------------------------------------- services
in_ns "$C" dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null \
	--listen-address=127.0.0.1 --bind-interfaces --port=5353 --user=root --pid-file= \
	--address=/example.test/192.0.2.77 --address=/example.test/2001:db8::77 \
	--log-facility="$work/dnsmasq.log" 2>>"$work/dnsmasq.log" &
pids+=("$!")
in_ns "$C" "${tool[@]}" echo 127.0.0.1:7007 >"$work/echo.out" 2>>"$work/echo.log" &
pids+=("$!")
udp_listening() { [ -n "$(ip netns exec "$1" ss -Hulpn "src = $2")" ]; }
wait_for 10 udp_listening "$C" 127.0.0.1:5353 && wait_for 10 udp_listening "$C" 127.0.0.1:7007 ||
	die "services did not start"

# ---------------------------------------------------------------- daemons
# start_rps: rps in $S, pid in $pid_rps, log rps.log (appended).
start_rps() {
	ip netns exec "$S" "$rps" -c "$work/server.conf" -i "$WS" --udp-timeout 3 -v \
		2>>"$work/rps.log" &
	pid_rps=$!
	pids+=("$pid_rps")
}
start_rpc() {
	ip netns exec "$C" "$rpc" -c "$work/client.conf" -i "$WC" --heartbeat-interval 1 \
		--udp-timeout 3 -v "${routes[@]}" 2>>"$work/rpc.log" &
	pid_rpc=$!
	pids+=("$pid_rpc")
}
# registered N: port 53/udp, 53 and 7007/udp registered N times in rpc.log.
registered() {
	local p
	for p in "53/udp" "53" "7007/udp"; do
		count_of "$work/rpc.log" "port $p on the server now reaches "
		[ "$count" -ge "$1" ] || return 1
	done
}
start_rps
wait_for 30 contains "$work/rps.log" "ready" || die "rps did not get ready: $(cat "$work/rps.log")"
start_rpc
wait_for 30 registered 1 || die "rpc did not register its routes: $(tail -n 5 "$work/rpc.log")"
check "rps maps port 53/udp" contains "$work/rps.log" "port 53/udp mapped to 10.99.0.2:"
check "rps's interface is $expect WireGuard" contains "$work/rps.log" "interface $WS is up ($expect WireGuard)"
check "rpc's interface is $expect WireGuard" contains "$work/rpc.log" "interface $WC is up ($expect WireGuard)"

# ================================================================ dns
section "dns: dnsmasq behind rpc answers the outside host"
# ask SERVER TYPE [DIG_OPTIONS...]: the answer in $got.
ask() { got=$(in_ns "$O" dig +short +time=3 +tries=2 -p 53 "@$1" example.test "$2" "${@:3}" 2>&1); }
# expect_dns NAME SERVER TYPE [DIG_OPTIONS...]
expect_dns() {
	ask "${@:2}"
	expect_eq "$1" "$([ "$3" = A ] && echo 192.0.2.77 || echo 2001:db8::77)" "$got"
}
expect_dns "A over UDP to the server's IPv4" 198.51.100.1 A
expect_dns "AAAA over UDP to the server's IPv6" 2001:db8:1::1 AAAA
expect_dns "A over TCP, the same port" 198.51.100.1 A +tcp
expect_dns "AAAA over TCP to the server's IPv6" 2001:db8:1::1 AAAA +tcp
for i in $(seq $queries); do
	# Retries as a resolver makes them: a datagram may be lost on the way.
	in_ns "$O" dig +short +time=2 +tries=3 -p 53 @198.51.100.1 example.test A >"$work/par.$i" 2>&1 &
done
answered() { answers=$(cat "$work"/par.* | grep -c '^192\.0\.2\.77$'); [ "$answers" -eq $queries ]; }
wait_for 20 answered
expect_eq "$queries queries at once, all answered" $queries "$answers"

# list: the client's mappings as the API lists them, in $work/list.out; the
# status in $code.
list() {
	code=$(in_ns "$C" curl -sS --max-time 10 -o "$work/list.out" -w '%{http_code}' \
		http://10.99.0.1/api/v1/port-mappings)
}
# no_flows PORT: the UDP mapping of PORT has no flow left.
no_flows() {
	list
	grep -q '"remote_port":'"$1"',"protocol":"udp",[^}]*"active":0,' "$work/list.out"
}

# ================================================================ echo
section "echo: datagrams of every size, byte for byte"
# The fds of the daemons with no flow: the DNS queries' have expired.
check "the DNS flows expire after --udp-timeout" wait_for 15 no_flows 53
fd_rps=$(fds "$pid_rps") fd_rpc=$(fds "$pid_rpc")
in_ns "$O" timeout 120 "${tool[@]}" client --relay 198.51.100.1:7007 --flows $flows --count $datagrams \
	--window 32 --max-size "$max" >"$work/client.out" 2>&1
status=$?
# Through userspace WireGuard a few may be lost (the tool fails on any
# corruption, or on more than 0.1 % lost): reported, not failed.
expect_eq "$datagrams datagrams over $flows flows: every reply byte for byte" 0 "$status"
echo "   $(cat "$work/client.out")"
list
expect_eq "the list answers" 200 "$code"
# (Emulated, the first flows may be done and expired before the last ends.)
check "and shows port 7007/udp with its $flows flows" grep -q '"remote_port":7007,"protocol":"udp",[^}]*"active":'$([ "$expect" = kernel ] && echo '[0-9]*' || echo $flows)',"total":'$flows',' "$work/list.out"
check "its $datagrams datagrams each way, none dropped" grep -q \
	'"remote_port":7007,[^}]*"datagrams_in":'$datagrams',"datagrams_out":'$datagrams',"drops":{"too_big":0,' "$work/list.out"

# ================================================================ limits
section "limits: too big, expiry, fds"
got=$(in_ns "$O" timeout 10 /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for size in (int(sys.argv[1]), int(sys.argv[1]) + 1):
    s.sendto(b"y" * size, ("198.51.100.1", 7007))
    try:
        print(len(s.recv(65535)))
    except socket.timeout:
        print("none")
' "$max" 2>&1)
expect_eq "$max bytes come back, $((max + 1)) do not" "$max"$'\n'"none" "$got"
check "rps drops it and says so" wait_for 5 contains "$work/rps.log" "larger than the tunnel takes (1 so far)"
# The flows end 3 s after their last datagram; fds back to where they were
# before the echo run.
gone() { [ "$(fds "$pid_rps")" -le "$fd_rps" ] && [ "$(fds "$pid_rpc")" -le "$fd_rpc" ]; }
# (At or below it: idle pipes of the TCP queries may be trimmed meanwhile.)
if wait_for 20 gone; then
	pass "both daemons' fds back to their baseline after --udp-timeout ($fd_rps, $fd_rpc)"
else
	fail "fds not back to their baseline: rps $(fds "$pid_rps") (was $fd_rps), rpc $(fds "$pid_rpc") (was $fd_rpc)"
fi

# ================================================================ restart
section "restart: rps and rpc each come back with their UDP ports"
stop rps "$pid_rps"
expect_eq "rps exits 0" 0 "$stop_status"
start_rps
check "rpc registers again after rps restarts" wait_for 40 registered 2
expect_dns "DNS answers again" 198.51.100.1 A
stop rpc "$pid_rpc"
expect_eq "rpc exits 0" 0 "$stop_status"
check "its UDP port is gone from the server" wait_for 10 contains "$work/rps.log" "port 53/udp unmapped"
start_rpc
check "a new rpc registers its routes" wait_for 40 registered 3
expect_dns "DNS answers through the new rpc" 2001:db8:1::1 AAAA
stop rpc "$pid_rpc"
expect_eq "rpc exits 0" 0 "$stop_status"
stop rps "$pid_rps"
expect_eq "rps exits 0" 0 "$stop_status"

no_sanitizer_report
finish
