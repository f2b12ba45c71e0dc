#!/bin/bash
# --metrics end to end: the real rps and rpc on WireGuard, scraped with curl
# and read with a real Prometheus text parser (prometheus_client's, in
# test/metrics_tool.py), against known traffic, in namespaces joined by veth
# pairs with nothing linked to the root namespace.
#
#   netns $O (outside host)      netns $S (server: rps)             netns $C (client: rpc)
#   $VO  198.51.100.2/24  <-veth-> $VSO 198.51.100.1/24
#                                 $VSC 192.0.2.1/24     <-veth->  $VC 192.0.2.2/24
#                                 $WS  10.99.0.1/24  <== wg ==>   $WC 10.99.0.2/32
#                                      fd00:99::1/64                  fd00:99::2/128
#   rps: --metrics 127.0.0.1:9586 (loopback), one worker, 3 connections per
#        source, ports 7007 and 8080 allowed, clients silent 6 s expire; its
#        [Peer] is named "alice"
#   rpc: --metrics [fd00:99::2]:9587 (its tunnel address), one worker, routes
#        127.0.0.1:3000-8080 (a TCP echo service), 127.0.0.1:7007-7007/udp
#        (a UDP echo service), 127.0.0.1:3000-9999 (refused: not allowed)
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   http      the parser reads both scrapes; the content type; POST is 405,
#             another path 404; the API's limits (8 connections from
#             loopback, closed after 10 s idle); no warning for loopback
#             nor a tunnel address
#   traffic   3 connections and 2 refused by the cap per source; a transfer
#             kept open whose byte counts grow between two scrapes, exact on
#             both daemons; 5 datagrams; registrations, API requests, the
#             peer's handshake and bytes, fds and pipes
#   lifetime  the connections closed: active 0, totals kept; a flow let
#             through; rpc paused: rps expires it (counted), its series go,
#             it registers again; rpc stopped: its mappings' series gone
#             from rps; rpc that cannot bind
#             --metrics exits 1 saying why; without --metrics no listener
# At the end: no sanitizer report in any log. With `kernel` (in the test
# VM) on kernel WireGuard; `userspace`: wireguard-go.
#
# usage: metrics_test.sh RPS RPC kernel|userspace
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
daemon_args "$@"
tool=(/usr/bin/python3 "$(cd "$(dirname "$0")" && pwd)/metrics_tool.py")
[ -x /usr/bin/python3 ] || skip_test "needs /usr/bin/python3"
/usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null ||
	skip_test "needs prometheus_client (Debian: python3-prometheus-client)"
command -v socat >/dev/null || skip_test "needs socat"

netns_names mt
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"
trap 'end_run "$O" "$S" "$C"' EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- namespaces
netns_new "$O" "$S" "$C" || die "cannot create the namespaces"
netns_veth "$O" "$VO" 198.51.100.2/24 "$S" "$VSO" 198.51.100.1/24 &&
	netns_veth "$S" "$VSC" 192.0.2.1/24 "$C" "$VC" 192.0.2.2/24 ||
	die "cannot create the veth pairs"

# ---------------------------------------------------------------- configs
pair_configs
sed -i 's/^\[Peer\]$/[Peer]\n# alice/' "$work/server.conf"
client_key=$(sed -n 's/^PublicKey = //p' "$work/server.conf")
server_key=$(sed -n 's/^PublicKey = //p' "$work/client.conf")

# ---------------------------------------------------------------- services
ip netns exec "$C" socat TCP-LISTEN:3000,bind=127.0.0.1,reuseaddr,fork PIPE 2>>"$work/socat.log" &
pids+=("$!")
ip netns exec "$C" socat UDP-RECVFROM:7007,bind=127.0.0.1,fork PIPE 2>>"$work/socat.log" &
pids+=("$!")

# ---------------------------------------------------------------- daemons
ip netns exec "$S" "$rps" -c "$work/server.conf" -i "$WS" --workers 1 --max-conns-per-source 3 \
	--allow-ports 7007,8080 --heartbeat-timeout 6 --check-interval 1 --metrics 127.0.0.1:9586 -v \
	2>>"$work/rps.log" &
pid_rps=$!
pids+=("$pid_rps")
wait_for 30 contains "$work/rps.log" "ready" || die "rps did not get ready: $(cat "$work/rps.log")"
routes=(-r 127.0.0.1:3000-8080 -r 127.0.0.1:7007-7007/udp -r 127.0.0.1:3000-9999)
# start_rpc LOG [OPTION...]: rpc in $C, pid in $pid_rpc.
start_rpc() {
	ip netns exec "$C" "$rpc" -c "$work/client.conf" -i "$WC" --workers 1 --heartbeat-interval 1 \
		"${routes[@]}" -v "${@:2}" 2>>"$work/$1" &
	pid_rpc=$!
	pids+=("$pid_rpc")
}
start_rpc rpc.log --metrics '[fd00:99::2]:9587'
registered() {
	contains "$work/$1" "port 8080 on the server now reaches" &&
		contains "$work/$1" "port 7007/udp on the server now reaches"
}
wait_for 30 registered rpc.log || die "rpc did not register its routes: $(tail -n 5 "$work/rpc.log")"
wait_for 10 contains "$work/rps.log" "refused port 9999" || die "rps did not refuse port 9999"
check "rps's interface is $expect WireGuard" contains "$work/rps.log" "interface $WS is up ($expect WireGuard)"

# scrape NAME NETNS URL [CURL_OPTION...]: the body in $work/NAME.prom, the
# status and content type in $got.
scrape() {
	got=$(in_ns "$2" curl -sS -g --max-time 10 -o "$work/$1.prom" -w '%{http_code} %{content_type}' \
		"${@:4}" "$3" 2>&1)
}
rps_url=http://127.0.0.1:9586/metrics rpc_url='http://[fd00:99::2]:9587/metrics'
# expect_metric NAME FILE WANT SAMPLE [LABEL=VALUE...]
expect_metric() {
	expect_eq "$1" "$3" "$("${tool[@]}" value "$work/$2.prom" "${@:4}" 2>&1)"
}
# at_least NAME FILE MIN SAMPLE [LABEL=VALUE...]
at_least() {
	local v
	v=$("${tool[@]}" value "$work/$2.prom" "${@:4}" 2>&1)
	if [[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge "$3" ]; then pass "$1 ($v)"; else fail "$1: want >= $3, got $v"; fi
}
# The visitor in $O, driven line by line.
coproc DRV { in_ns "$O" "${tool[@]}" driver 198.51.100.1 8080 2>>"$work/driver.log"; }
pids+=("$DRV_PID")
# drive COMMAND...: the driver's answer in $reply.
drive() {
	reply=timeout
	echo "$*" >&"${DRV[1]}"
	read -r -t 30 reply <&"${DRV[0]}"
}

# ================================================================ http
section "http: the format, methods and paths"
scrape rps0 "$S" "$rps_url"
expect_eq "rps answers GET /metrics in the text format 0.0.4" \
	"200 text/plain; version=0.0.4; charset=utf-8" "$got"
check "and the parser reads it: $("${tool[@]}" check "$work/rps0.prom" 2>&1)" \
	"${tool[@]}" check "$work/rps0.prom"
scrape rpc0 "$C" "$rpc_url"
expect_eq "rpc answers on its tunnel address" "200 text/plain; version=0.0.4; charset=utf-8" "$got"
check "and the parser reads it: $("${tool[@]}" check "$work/rpc0.prom" 2>&1)" \
	"${tool[@]}" check "$work/rpc0.prom"
scrape post "$S" "$rps_url" -X POST
expect_eq "POST /metrics: 405" 405 "${got%% *}"
scrape other "$S" http://127.0.0.1:9586/other
expect_eq "GET /other: 404" 404 "${got%% *}"
# The API's limits: 8 connections at a time from addresses of no peer
# (loopback here), closed after 10 s idle.
ip netns exec "$S" "${tool[@]}" hold 127.0.0.1 9586 8 >"$work/hold.out" 2>>"$work/driver.log" &
pids+=("$!")
wait_for 10 contains "$work/hold.out" "held 8" || fail "cannot hold 8 connections to rps's metrics"
scrape held "$S" "$rps_url"
check "a 9th connection is closed unanswered: ${got//$'\n'/ }" eval '[[ $got == *"000 " ]]'
check "the 8 idle ones are closed by rps" wait_for 30 contains "$work/hold.out" closed
scrape free "$S" "$rps_url"
expect_eq "then a scrape is answered again" 200 "${got%% *}"
check "rps logs where metrics are served" contains "$work/rps.log" "metrics on http://127.0.0.1:9586/metrics"
check "no warning for loopback (rps) nor a tunnel address (rpc)" \
	eval '! grep -q "neither a loopback" "$work/rps.log" "$work/rpc.log"'

# ================================================================ traffic
section "traffic: connections, refusals, bytes while open, datagrams"
for i in 0 1 2; do
	drive connect
	expect_eq "connection $i" "ok $i" "$reply"
done
drive echo 0 100000
expect_eq "100,000 bytes echoed on connection 0" ok "$reply"
drive echo 1 10
drive echo 2 10
expect_eq "10 bytes on connections 1 and 2" ok "$reply"
drive refused
expect_eq "a 4th connection from the same source is reset" refused "$reply"
drive refused
expect_eq "and a 5th" refused "$reply"
scrape rps1 "$S" "$rps_url"
scrape rpc1 "$C" "$rpc_url"
m=(port=8080 protocol=tcp)
p=(peer="$client_key" name=alice)
expect_metric "rps: 3 connections active" rps1 3 wgrp_mapping_connections_active "${m[@]}" "${p[@]}"
expect_metric "rps: 3 in total" rps1 3 wgrp_mapping_connections_total "${m[@]}"
expect_metric "rps: 2 refused for the source's share" rps1 2 \
	wgrp_mapping_connections_refused_total "${m[@]}" reason=source_cap
expect_metric "rps: none for fds" rps1 0 wgrp_mapping_connections_refused_total "${m[@]}" reason=no_fds
expect_metric "rps: 100,020 bytes received" rps1 100020 wgrp_mapping_received_bytes_total "${m[@]}"
expect_metric "rps: 100,020 bytes sent" rps1 100020 wgrp_mapping_sent_bytes_total "${m[@]}"
expect_metric "rpc: 3 connections, the refused ones never reached it" rpc1 3 \
	wgrp_mapping_connections_total "${m[@]}"
expect_metric "rpc: 100,020 bytes received" rpc1 100020 wgrp_mapping_received_bytes_total "${m[@]}"
# The same connection, still open, moves more: the counters follow.
drive echo 0 50000
expect_eq "50,000 more bytes on connection 0, still open" ok "$reply"
scrape rps2 "$S" "$rps_url"
scrape rpc2 "$C" "$rpc_url"
expect_metric "rps: 150,020 bytes received while it is open" rps2 150020 \
	wgrp_mapping_received_bytes_total "${m[@]}"
expect_metric "rps: 150,020 bytes sent" rps2 150020 wgrp_mapping_sent_bytes_total "${m[@]}"
expect_metric "rps: still 3 active" rps2 3 wgrp_mapping_connections_active "${m[@]}"
expect_metric "rpc: 150,020 bytes sent while it is open" rpc2 150020 \
	wgrp_mapping_sent_bytes_total "${m[@]}"

# A UDP flow from the same address counts against the same cap.
drive udp 7007 2 100
expect_eq "2 datagrams to port 7007/udp meanwhile: no echo" "ok 0" "$reply"
scrape rps3 "$S" "$rps_url"
u=(port=7007 protocol=udp)
expect_metric "rps: both dropped for the source's share" rps3 2 \
	wgrp_mapping_dropped_datagrams_total "${u[@]}" "${p[@]}" reason=source_cap
expect_metric "rps: no flow" rps3 0 wgrp_mapping_flows_total "${u[@]}"

in_ns "$C" curl -s -o /dev/null --max-time 10 http://10.99.0.1/api/v1/nope
scrape rps4 "$S" "$rps_url"
expect_metric "rps: 2 registrations created" rps4 2 wgrp_registrations_total result=created
at_least "rps: port 9999 refused with 403" rps4 1 wgrp_registrations_total result=refused status=403
expect_metric "rps: the one GET of no endpoint, 404" rps4 1 wgrp_api_requests_total method=GET status=404
at_least "rps: heartbeats and registrations answered 200" rps4 3 wgrp_api_requests_total method=POST status=200
at_least "rps: alice's latest handshake, Unix time" rps4 1700000000 wgrp_peer_last_handshake_seconds "${p[@]}"
at_least "rps: bytes from alice through the tunnel" rps4 150020 wgrp_peer_received_bytes_total "${p[@]}"
at_least "rps: fds open" rps4 10 wgrp_process_open_fds
at_least "rps: the open file limit" rps4 256 wgrp_process_max_fds
at_least "rps: the relays' fd budget" rps4 1 wgrp_relay_fd_budget
at_least "rps: the relays' fds" rps4 1 wgrp_relay_fds
at_least "rps: pipes pooled (idle pipes are trimmed: maybe none)" rps4 0 wgrp_relay_pipes state=idle
at_least "rps: pipes lent (none now)" rps4 0 wgrp_relay_pipes state=lent
expect_metric "rpc: port 8080 registered" rpc1 1 wgrp_route_registered "${m[@]}"
expect_metric "rpc: port 9999 not" rpc1 0 wgrp_route_registered port=9999 protocol=tcp
at_least "rpc: port 9999 refused" rpc1 1 wgrp_route_registration_refusals_total port=9999
at_least "rpc: heartbeats sent" rpc1 1 wgrp_heartbeats_sent_total
at_least "rpc: the server's latest handshake" rpc1 1700000000 wgrp_peer_last_handshake_seconds \
	peer="$server_key"

# ================================================================ lifetime
section "lifetime: closed, removed, no listener"
for i in 0 1 2; do drive close $i; done
no_active() {
	scrape rps5 "$S" "$rps_url"
	[ "$("${tool[@]}" value "$work/rps5.prom" wgrp_mapping_connections_active "${m[@]}")" = 0 ]
}
check "rps: no connection active once they close" wait_for 10 no_active
expect_metric "rps: the total stays 3" rps5 3 wgrp_mapping_connections_total "${m[@]}"
expect_metric "rps: the bytes stay" rps5 150020 wgrp_mapping_received_bytes_total "${m[@]}"

# The connections gone, a flow from that address is let through.
drive udp 7007 5 100
expect_eq "5 datagrams to port 7007/udp" "ok 5" "$reply"
scrape rps7 "$S" "$rps_url"
scrape rpc7 "$C" "$rpc_url"
expect_metric "rps: 5 datagrams received" rps7 5 wgrp_mapping_received_datagrams_total "${u[@]}" "${p[@]}"
expect_metric "rps: 500 bytes received" rps7 500 wgrp_mapping_received_bytes_total "${u[@]}"
expect_metric "rps: 5 sent back" rps7 5 wgrp_mapping_sent_datagrams_total "${u[@]}"
expect_metric "rps: one flow" rps7 1 wgrp_mapping_flows_total "${u[@]}"
expect_metric "rps: none dropped as too big" rps7 0 wgrp_mapping_dropped_datagrams_total "${u[@]}" reason=too_big
expect_metric "rpc: 5 datagrams relayed to the service" rpc7 5 wgrp_mapping_received_datagrams_total "${u[@]}"

# rpc stopped (SIGSTOP): rps expires it and its 2 mappings; let go, it
# registers them again.
kill -STOP "$pid_rpc"
check "rps expires the silent rpc" wait_for 30 contains "$work/rps.log" "silent for 6 s: removing its 2 mappings"
scrape rps8 "$S" "$rps_url"
kill -CONT "$pid_rpc"
expect_metric "rps: 1 client expired" rps8 1 wgrp_expired_clients_total
expect_metric "rps: with 2 mappings" rps8 2 wgrp_expired_mappings_total
check "rps: their series are gone" "${tool[@]}" absent "$work/rps8.prom" wgrp_mapping_connections_total port=8080
again() { count_of "$work/rpc.log" "port 8080 on the server now reaches"; [ "$count" -ge 2 ]; }
check "rpc registers again" wait_for 30 again
scrape rps9 "$S" "$rps_url"
at_least "rps: 2 more registrations created" rps9 4 wgrp_registrations_total result=created
expect_metric "rps: the new mapping's counters start at 0" rps9 0 wgrp_mapping_connections_total "${m[@]}"
scrape rpc9 "$C" "$rpc_url"
at_least "rpc: 8080 registered twice" rpc9 2 wgrp_route_registration_attempts_total "${m[@]}"

stop_cleanly rpc "$pid_rpc"
wait_for 10 contains "$work/rps.log" "port 8080 unmapped"
scrape rps6 "$S" "$rps_url"
check "rps: the removed mapping's series are gone" \
	"${tool[@]}" absent "$work/rps6.prom" wgrp_mapping_connections_total port=8080

start_rpc rpc-bad.log --metrics 192.0.2.99:9587
check "rpc with --metrics on an address it does not have exits" wait_for 30 dead "$pid_rpc"
wait "$pid_rpc"
expect_eq "with status 1" 1 "$?"
check "saying why" contains "$work/rpc-bad.log" "--metrics 192.0.2.99:9587: cannot listen on 192.0.2.99:9587:"

start_rpc rpc-none.log --metrics 0.0.0.0:9587
wait_for 30 registered rpc-none.log || fail "rpc on 0.0.0.0 did not register"
check "rpc warns that 0.0.0.0 is not private" contains "$work/rpc-none.log" \
	"--metrics 0.0.0.0:9587 is neither a loopback nor a tunnel address"
stop rpc "$pid_rpc"
start_rpc rpc-plain.log
wait_for 30 registered rpc-plain.log || fail "rpc without --metrics did not register"
# rpc's TCP listeners: its two TCP routes', on its tunnel address, and no other.
listeners=$(in_ns "$C" ss -Htlnp | grep -c "pid=$pid_rpc,")
expect_eq "rpc without --metrics: no listener but its 2 TCP routes'" 2 "$listeners"
stop_cleanly rpc "$pid_rpc"
stop_cleanly rps "$pid_rps"

no_sanitizer_report
finish
