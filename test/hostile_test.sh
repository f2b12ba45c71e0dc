#!/bin/bash
# wg-rp against a hostile outside host: rps and rpc relaying in three network
# namespaces joined by veth pairs, with nothing linked to the root namespace.
#
#   netns $O (outside host)          netns $S (server: rps)          netns $C (client: rpc)
#   $VO 198.51.100.2/24  <-veth->    $VSO 198.51.100.1/24
#       .3 (a second source)
#       .10-.17 (flood sources)
#                                    $VSC 192.0.2.1/24  <-veth->     $VC 192.0.2.2/24
#                                    $WS 10.99.0.1/24  <== wg ==>    $WC 10.99.0.2/32
#                                        UDP 51820                       Endpoint 192.0.2.1:51820
#                                                                    services on 127.0.0.1
#                                                                    (hostile_tool.py backend):
#                                                                    3000 urgent, 3001 echo, 3002 half
#
#   rps (S): under prlimit --nofile=300 (relays get 150 fds), --idle-timeout 4,
#            --max-conns-per-source 20 (10 on each of --workers 2),
#            --heartbeat-timeout 4 --check-interval 1
#   rpc (C): -r 127.0.0.1:3000-3000 -r 127.0.0.1:3001-3001 -r 127.0.0.1:3002-3002
#            --idle-timeout 4 --heartbeat-interval 1
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   urgent      the outsider sends "AB", urgent "X", "CD" and the service sends
#               "ab", urgent "x", "cd" back: every byte arrives both ways (the
#               urgent byte inline), and neither daemon spins (running or runnable < 50 % of 2 s)
#   idle, half-closed (at once) an echoed then silent connection is reset
#               after the idle timeout; so is one where the service's FIN
#               reaches the outsider, who stays silent; both daemons' relayed
#               sockets back to their count before
#   per source  50 connections from one address: 20 served (10 by each worker:
#               the kernel spreads them, each has a share of the cap), 30 reset;
#               a second address is served meanwhile; relayed sockets have TCP
#               keepalive
#   fd flood    160 connections from 8 addresses (20 each, about their share):
#               the relays' share of fds runs out and new connections are
#               reset, the API answers every request, rpc keeps its mappings,
#               rps does not spin; the port serves again within 2 s after
#   accept      (FAULTS is a preload making accept() and splice() fail on
#               demand) accept() on port 3001 fails with ENOBUFS: rps pauses
#               the listener instead of spinning, logs once, and serves the
#               waiting connection after
#   splice      1 MiB echoed through rps while every other
#               splice() fails with EINTR: all of it back, nothing reset; then
#               while splice() fails with EINVAL: rps copies instead, and all
#               of another 1 MiB comes back
#   stop        SIGTERM: both daemons exit 0
#
# usage: hostile_test.sh RPS RPC FAULTS
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
if [ $# -ne 3 ]; then
	echo "usage: $0 RPS RPC FAULTS" >&2
	exit 2
fi
command -v prlimit >/dev/null || skip_test "no prlimit (util-linux)"
command -v wireguard-go >/dev/null || skip_test "no wireguard-go"
[ -x /usr/bin/python3 ] || skip_test "no /usr/bin/python3 (Debian's python3)"
rps=$(realpath "$1") rpc=$(realpath "$2") faults=$(realpath "$3")
tool=$(realpath "$(dirname "$0")/hostile_tool.py")
py=/usr/bin/python3

tag=$$
O=wgrp-ho-o-$tag S=wgrp-ho-s-$tag C=wgrp-ho-c-$tag
VO=hoo$tag VSO=hoso$tag VSC=hosc$tag VC=hoc$tag
# WireGuard interface names differ across namespaces: UAPI sockets share
# /var/run/wireguard.
WS=hows$tag WC=howc$tag
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"

cleanup() { end_run "$O" "$S" "$C"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

# outside MODE ARGS...: hostile_tool.py on the outside host; its output in $out.
outside() {
	out=$(ip netns exec "$O" "$py" "$tool" "$@" 2>&1)
}
# busy_ns PID: how long PID's threads have been running or waiting to run,
# in $busy (ns, from schedstat). A spinning loop is never asleep, so this
# grows as fast as the clock however loaded the machine is, where its CPU
# time would not: other tests may run beside this one.
busy_ns() {
	local f run wait
	busy=0
	for f in /proc/"$1"/task/*/schedstat; do
		read -r run wait _ <"$f" || continue
		busy=$((busy + run + wait))
	done
}
# relayed_sockets NETNS PID: TCP sockets PID holds, leaving out the API's
# (port 80), in $sockets: its relay listeners and connections.
relayed_sockets() {
	sockets=$(ip netns exec "$1" ss -Htanp 2>/dev/null |
		awk -v p="pid=$2," 'index($0, p) && $4 !~ /:80$/ && $5 !~ /:80$/' | wc -l)
}
# sockets_back NAME NETNS PID WANT: the count falls back to WANT (bounded wait).
sockets_at() {
	relayed_sockets "$1" "$2"
	[ "$sockets" -eq "$3" ]
}
expect_sockets_back() {
	if wait_for 5 sockets_at "$2" "$3" "$4"; then
		pass "$1: back to $4 relayed sockets"
	else
		fail "$1: $sockets relayed sockets, want $4"
	fi
}

# ---------------------------------------------------------------- namespaces
netns_new "$O" "$S" "$C" || die "cannot create the namespaces"
ip link add "$VO" netns "$O" type veth peer name "$VSO" netns "$S" &&
	ip link add "$VSC" netns "$S" type veth peer name "$VC" netns "$C" ||
	die "cannot create veth pairs"
ip -n "$O" addr add 198.51.100.2/24 dev "$VO" &&
	ip -n "$O" addr add 198.51.100.3/24 dev "$VO" &&
	for i in $(seq 10 17); do ip -n "$O" addr add "198.51.100.$i/24" dev "$VO" || exit 1; done &&
	ip -n "$O" link set "$VO" up &&
	ip -n "$S" addr add 198.51.100.1/24 dev "$VSO" && ip -n "$S" link set "$VSO" up &&
	ip -n "$S" addr add 192.0.2.1/24 dev "$VSC" && ip -n "$S" link set "$VSC" up &&
	ip -n "$C" addr add 192.0.2.2/24 dev "$VC" && ip -n "$C" link set "$VC" up ||
	die "cannot set addresses"
flood_sources=()
for i in $(seq 10 17); do flood_sources+=("198.51.100.$i"); done

# ---------------------------------------------------------------- configs
key_s=$(wg genkey) key_c=$(wg genkey)
pub_s=$(wg pubkey <<<"$key_s") pub_c=$(wg pubkey <<<"$key_c")
cat >"$work/server.conf" <<CONF
[Interface]
PrivateKey = $key_s
Address = 10.99.0.1/24
ListenPort = 51820

[Peer]
PublicKey = $pub_c
AllowedIPs = 10.99.0.2/32
CONF
cat >"$work/client.conf" <<CONF
[Interface]
PrivateKey = $key_c
Address = 10.99.0.2/32

[Peer]
PublicKey = $pub_s
Endpoint = 192.0.2.1:51820
AllowedIPs = 10.99.0.0/24
PersistentKeepalive = 25
CONF
chmod 600 "$work"/*.conf

# ---------------------------------------------------------------- services, daemons
ip netns exec "$C" "$py" "$tool" backend "$work" 3000 3001 3002 >"$work/backend.log" 2>&1 &
pids+=("$!")
wait_for 10 contains "$work/backend.log" ready || die "the services did not start"

# The preload goes into rps alone (ASan: after its runtime, which is linked in).
rps_env=(LD_PRELOAD="$faults" WGRP_ACCEPT_FAIL_PORT=3001
	WGRP_ACCEPT_FAIL_FILE="$work/accept-fail" WGRP_SPLICE_FAIL_FILE="$work/splice-fail"
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
ip netns exec "$S" prlimit --nofile=300:300 env "${rps_env[@]}" "$rps" -c "$work/server.conf" -i "$WS" \
	--idle-timeout 4 --max-conns-per-source 20 --workers 2 --heartbeat-timeout 4 --check-interval 1 -v \
	2>"$work/rps.log" &
pid_rps=$!
pids+=("$pid_rps")
wait_for 30 contains "$work/rps.log" "ready" || die "rps did not get ready"
check "rps keeps 150 of its 300 fds from the relays" \
	contains "$work/rps.log" "open file limit 300: relays hold at most 150, keeping 150"
ip netns exec "$C" "$rpc" -c "$work/client.conf" -i "$WC" -r 127.0.0.1:3000-3000 \
	-r 127.0.0.1:3001-3001 -r 127.0.0.1:3002-3002 --idle-timeout 4 --heartbeat-interval 1 -v \
	2>"$work/rpc.log" &
pid_rpc=$!
pids+=("$pid_rpc")
registered() { contains "$work/rpc.log" "port $1 on the server now reaches "; }
wait_for 60 registered 3000 && wait_for 10 registered 3001 && wait_for 10 registered 3002 ||
	die "rpc did not register its routes"
outside echo 198.51.100.1 3001
[ "$out" = ok ] || die "no echo through the relays: $out"
relayed_sockets "$S" "$pid_rps"
base_rps=$sockets
relayed_sockets "$C" "$pid_rpc"
base_rpc=$sockets
echo "   (relayed sockets at rest: rps $base_rps, rpc $base_rpc)"

# ================================================================ urgent
section "urgent data mid-stream, both ways"
ip netns exec "$O" "$py" "$tool" urgent 198.51.100.1 3000 3 >"$work/urgent.txt" 2>&1 &
urgent_pid=$!
nap 0.5
busy_ns "$pid_rps"
rps0=$busy
busy_ns "$pid_rpc"
rpc0=$busy
t0=$EPOCHREALTIME
nap 2
busy_ns "$pid_rps"
rps1=$busy
busy_ns "$pid_rpc"
rpc1=$busy
t1=$EPOCHREALTIME
wait "$urgent_pid"
pct() { awk -v d="$1" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", 100 * d / 1e9 / (b - a) }'; }
rps_pct=$(pct $((rps1 - rps0)))
rpc_pct=$(pct $((rpc1 - rpc0)))
check "rps does not spin on urgent data (busy $rps_pct % of 2 s)" [ "$rps_pct" -lt 50 ]
check "rpc does not spin on urgent data (busy $rpc_pct % of 2 s)" [ "$rpc_pct" -lt 50 ]
text_of "$work/urgent.out"
expect_eq "the service got every byte, the urgent one inline" ABXCD "$text"
text_of "$work/urgent.txt"
expect_eq "the outsider got every byte, the urgent one inline" "got=abxcd" "${text%$'\n'}"

# expect_idle_closed NAME FILE: the connection whose hostile_tool.py wrote
# FILE fell silent and was closed by the 4 s idle timeout (3 to 8 s later).
expect_idle_closed() {
	text_of "$2"
	out=${text%$'\n'}
	if [[ $out =~ ^ended=(reset|eof)\ after=([0-9]+) ]] && [ "${BASH_REMATCH[2]}" -ge 3 ] &&
		[ "${BASH_REMATCH[2]}" -le 8 ]; then
		pass "$1 is closed after the 4 s idle timeout ($out)"
	else
		fail "$1 is closed after the 4 s idle timeout: $out"
	fi
}

# ================================================================ idle, half-closed
# Both at once, each on its own port: neither timeout waits for the other.
section "idle and half-closed connections (the service's FIN never answered), at once"
ip netns exec "$O" "$py" "$tool" idle 198.51.100.1 3001 15 >"$work/idle.txt" 2>&1 &
idle_pid=$!
ip netns exec "$O" "$py" "$tool" half 198.51.100.1 3002 15 >"$work/half.txt" 2>&1 &
half_pid=$!
wait "$idle_pid" "$half_pid"
expect_idle_closed "a silent connection" "$work/idle.txt"
expect_idle_closed "a half-closed connection" "$work/half.txt"
expect_sockets_back "idle and half-closed: rps" "$S" "$pid_rps" "$base_rps"
expect_sockets_back "idle and half-closed: rpc" "$C" "$pid_rpc" "$base_rpc"

# ================================================================ per source
section "connections per source"
# 50: that both workers get at least their 10 is as good as certain
# (fewer than 1 in 10^5 runs would not), whichever way the kernel spreads them.
ip netns exec "$O" "$py" "$tool" hold 198.51.100.1 3001 50 6 198.51.100.2 >"$work/hold.txt" 2>&1 &
hold_pid=$!
wait_for 15 contains "$work/hold.txt" "served=" || fail "the holder did not report"
text_of "$work/hold.txt"
line=${text%%$'\n'*}
expect_eq "50 connections from one address: 20 served, 30 reset" "served=20 refused=30 pending=0" \
	"${line% after=*}"
outside echo 198.51.100.1 3001 # from 198.51.100.2: its share is taken
expect_eq "one more from that address is reset" failed "$out"
out=$(ip netns exec "$O" "$py" -c "
import socket, sys
s = socket.socket(); s.bind(('198.51.100.3', 0)); s.settimeout(2)
s.connect(('198.51.100.1', 3001)); s.sendall(b'hello')
print('ok' if s.recv(5) == b'hello' else 'failed')" 2>&1)
expect_eq "a second address is served meanwhile" ok "$out"
# keepalive NETNS FILTER: every established socket matching FILTER has a
# keepalive timer.
keepalive() {
	local lines
	lines=$(ip netns exec "$1" ss -Htno state established "$2")
	[ -n "$lines" ] && ! grep -v -q 'timer:(keepalive' <<<"$lines"
}
check "rps's public sockets have TCP keepalive" keepalive "$S" "( sport = :3001 )"
check "rpc's sockets to the service have TCP keepalive" keepalive "$C" "( dport = :3001 )"
wait "$hold_pid"
check "rps logs the refusals" contains "$work/rps.log" \
	"refused a connection from 198.51.100.2 to [::]:3001: it has 10 already on this relay worker, its share of --max-conns-per-source 20 over 2 workers"
expect_sockets_back "per source: rps" "$S" "$pid_rps" "$base_rps"

# ================================================================ fd flood
section "fd flood: 160 connections from 8 addresses against 150 fds"
: >"$work/api.txt"
busy_ns "$pid_rps"
rps0=$busy
t0=$EPOCHREALTIME
ip netns exec "$O" "$py" "$tool" hold 198.51.100.1 3001 20 8 "${flood_sources[@]}" \
	>"$work/flood.txt" 2>&1 &
flood_pid=$!
api_ok=0 api_failed=0
# The API, every 0.5 s for the length of the flood.
while running "$flood_pid" && [ $((api_ok + api_failed)) -lt 40 ]; do
	code=$(ip netns exec "$C" curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
		http://10.99.0.1/api/v1/port-mappings)
	if [ "$code" = 200 ]; then api_ok=$((api_ok + 1)); else api_failed=$((api_failed + 1)); fi
	nap 0.5
done
wait "$flood_pid"
t_end=$EPOCHREALTIME
busy_ns "$pid_rps"
rps1=$busy
t1=$t_end
text_of "$work/flood.txt"
echo "   (flood: ${text%%$'\n'*})"
if [[ $text =~ served=([0-9]+)\ refused=([0-9]+)\ pending=0 ]] && [ "${BASH_REMATCH[2]}" -gt 0 ] &&
	[ "${BASH_REMATCH[1]}" -gt 0 ]; then
	pass "some connections served, the rest reset (${BASH_REMATCH[0]})"
else
	fail "the flood did not run out the relays' fds: $text"
fi
check "rps logs it is out of fds for relays" contains "$work/rps.log" \
	"out of file descriptors for relays: refusing new connections on [::]:3001"
check "the API answered all $((api_ok + api_failed)) requests during the flood" \
	[ "$api_failed" -eq 0 -a "$api_ok" -gt 5 ]
rps_pct=$(pct $((rps1 - rps0)))
check "rps does not spin during the flood (busy $rps_pct % of the time)" [ "$rps_pct" -lt 50 ]
check "rpc kept its mappings (none expired)" eval '! contains "$work/rps.log" "silent for"'
check "rpc never lost the server" eval '! contains "$work/rpc.log" "lost the server"'
t_ok=
while :; do
	outside echo 198.51.100.1 3001
	if [ "$out" = ok ]; then
		t_ok=$EPOCHREALTIME
		break
	fi
	awk -v a="$t_end" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a > 5) }' && break
	nap 0.1
done
if [ -n "$t_ok" ] && awk -v a="$t_end" -v b="$t_ok" 'BEGIN { exit !(b - a < 2) }'; then
	pass "the port serves again $(awk -v a="$t_end" -v b="$t_ok" 'BEGIN { printf "%.1f", b - a }') s after the flood"
else
	fail "the port does not serve within 2 s after the flood"
fi
expect_sockets_back "flood: rps" "$S" "$pid_rps" "$base_rps"
expect_sockets_back "flood: rpc" "$C" "$pid_rpc" "$base_rpc"

# ================================================================ accept errors
section "accept() fails with ENOBUFS for 1.5 s"
: >"$work/accept-fail"
ip netns exec "$O" "$py" "$tool" echo 198.51.100.1 3001 8 >"$work/waiting.txt" 2>&1 &
waiting_pid=$!
nap 1.5
# Each failed accept() appended a byte (faults.c). Paused 100 ms after each,
# the two workers' listeners try about 30 times; a loop that spun on the
# error would try thousands of times. A count, not a share of the CPU: load
# beside the test only lowers it.
attempts=$(stat -c %s "$work/accept-fail")
rm -f "$work/accept-fail"
wait "$waiting_pid"
check "rps does not spin on accept() errors ($attempts attempts in 1.5 s)" [ "$attempts" -lt 200 ]
text_of "$work/waiting.txt"
expect_eq "the connection waiting meanwhile is served after" ok "${text%$'\n'}"
count_of "$work/rps.log" "cannot accept connections on [::]:3001: No buffer space available; pausing for 100 ms"
expect_eq "rps logs the error once" 1 "$count"

section "splice() interrupted, then refused"
# bulk_echo WHAT: 1 MiB through the echo service and back, intact.
bulk_echo() {
	local got
	got=$(ip netns exec "$O" "$py" "$tool" bulk 198.51.100.1 3001 1048576 2>&1)
	expect_eq "1 MiB echoed intact through rps $1" ok "$got"
}
echo EINTR >"$work/splice-fail"
bulk_echo "while every other splice() fails with EINTR"
check "rps reset no connection for EINTR" bash -c "! grep -q 'relay connection reset: Interrupted' '$work/rps.log'"
echo EINVAL >"$work/splice-fail"
bulk_echo "while splice() fails with EINVAL"
check "rps says it copies instead" contains "$work/rps.log" "splice() refused (Invalid argument): relays copy"
rm -f "$work/splice-fail"

# ================================================================ stop
section "stop"
# stop_daemon NAME PID: SIGTERM; it must exit 0 within 15 s (sanitizers: no
# leak, no error on the way out).
stop_daemon() {
	kill -TERM "$2"
	if wait_for 15 eval '! running "$2"'; then
		wait "$2"
		expect_eq "$1 exits 0 on SIGTERM" 0 "$?"
	else
		fail "$1 did not exit within 15 s of SIGTERM"
	fi
}
stop_daemon rpc "$pid_rpc"
stop_daemon rps "$pid_rps"

finish
