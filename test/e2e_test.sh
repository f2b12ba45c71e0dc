#!/bin/bash
# wg-rp end to end: rps and rpc as a user runs them, in four network
# namespaces joined by veth pairs, with nothing linked to the root namespace.
#
#   netns $O (outside host)      netns $S (server: rps)             netns $C (client: rpc)
#   $VO  198.51.100.2/24  <-veth-> $VSO 198.51.100.1/24
#        2001:db8:1::2/64              2001:db8:1::1/64
#                                 $VSC 192.0.2.1/24     <-veth->  $VC 192.0.2.2/24
#                                      2001:db8:2::1/64               2001:db8:2::2/64
#                                 $WS  10.99.0.1/24  <== wg ==>   $WC 10.99.0.2/32
#                                      fd00:99::1/64                  fd00:99::2/128
#                                      UDP 51820                      Endpoint 192.0.2.1:51820
#                                                                     services on 127.0.0.1:
#                                                                     3000 page, 3001 50 MB file,
#                                                                     3002 sha256 of what it gets
#                                 $VSD 203.0.113.1/24   <-veth->  netns $D (client2: a 2nd peer)
#                                      2001:db8:3::1/64             $VD 203.0.113.2/24 2001:db8:3::2/64
#                                 $WS  <========= wg =========>     $WD 10.99.0.3/32 fd00:99::3/128
#                                                                     Endpoint [2001:db8:3::1]:51820
#                                                                     service on 127.0.0.1:3000
#
#   rpc  (C): -r 127.0.0.1:3000-3000 -r localhost:3001-4001 -r 127.0.0.1:3002-3002
#   rpc2 (D): -r 127.0.0.1:3000-5000 --server fd00:99::1 (the API over IPv6)
#   rps  (S): --allow-unsigned (curl calls by hand) --allow-ports 1024-65535 --max-mappings 4 --heartbeat-timeout 4 --check-interval 1
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   user flow   rpc2 starts before rps (it waits), then rps, then rpc; the
#               outside host fetches every mapped port over the server's
#               IPv4 and IPv6 outside addresses
#   big file    50 MB down and 50 MB up through the path, sha256 equal
#   wire API    curl from the client host, as the original documents it:
#               every answer's status and message
#   isolation   client2 cannot delete, replace or list the client's mappings;
#               spoofed client_ip refused; the API unreachable from outside,
#               even routed at; rpc's tunnel ports refuse anyone but the server
#   expiry      kill -9 rpc: the server frees its ports after the heartbeat
#               timeout; a fresh rpc takes them again
#   stop        SIGTERM to rpc2 and rps: mappings gone at once, interfaces gone, exit 0
#   recovery    rps starts again; the same rpc re-registers by itself, asking
#               at the new server's first handshake
#   final stop  SIGTERM to rpc and rps
# With --quick: only the user flow, the stops and the recovery. With `kernel`
# (in the test VM) everything but the big file (100 MB under emulation proves
# no more than the user flow) and the wire API's answers (rps's alone, the
# same over any WireGuard), and the interfaces must be kernel WireGuard
# (`userspace`: tun).
#
# usage: e2e_test.sh RPS RPC kernel|userspace [--quick]
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
if [ $# -lt 3 ] || { [ "$3" != kernel ] && [ "$3" != userspace ]; }; then
	echo "usage: $0 RPS RPC kernel|userspace [--quick]" >&2
	exit 2
fi
rps=$(realpath "$1") rpc=$(realpath "$2") expect=$3
full=1 big=1
[ "${4:-}" = --quick ] && full=0 big=0
[ "$expect" = kernel ] && big=0

tag=$$
O=wgrp-e2e-o-$tag S=wgrp-e2e-s-$tag C=wgrp-e2e-c-$tag D=wgrp-e2e-d-$tag
VO=e2o$tag VSO=e2so$tag VSC=e2sc$tag VC=e2c$tag VSD=e2sd$tag VD=e2d$tag
# WireGuard interface names differ across namespaces: UAPI sockets share
# /var/run/wireguard.
WS=e2ws$tag WC=e2wc$tag WD=e2wd$tag
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"

# Daemons stopped with SIGTERM (they remove their interfaces), the rest
# killed, the namespaces deleted.
trap 'end_run "$O" "$S" "$C" "$D"' EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- helpers
# Process starts are slow in the test VM (~0.1 s): the helpers polling in
# loops use builtins only (nap and wait_for from lib.sh).

# count_above FILE STRING N: more than N times STRING in FILE.
count_above() {
	count_of "$1" "$2"
	[ "$count" -gt "$3" ]
}
alive() { running "$1"; }

# api NETNS METHOD URL [CURL_ARGS...]: an API call; the answer's HTTP status
# in $code, its body in $body, its "message" in $msg.
api() {
	local ns=$1 method=$2 url=$3 out re='"message":"(([^"\\]|\\.)*)"'
	shift 3
	out=$(ip netns exec "$ns" curl -sS -g --max-time 10 -X "$method" -w '\n%{http_code}' "$@" "$url" 2>&1)
	code=${out##*$'\n'} body=${out%$'\n'*} msg=
	if [[ $body =~ $re ]]; then
		msg=${BASH_REMATCH[1]}
		msg=${msg//\\\"/\"}
	fi
}
# post NETNS URL JSON: a POST with a JSON body, as the original's docs show it.
post() {
	api "$1" POST "$2" -H "Content-Type: application/json" -d "$3"
}
# expect_answer NAME STATUS MESSAGE: the last api call's status, message
# (MESSAGE is a glob pattern when it holds '*') and success flag.
expect_answer() {
	local name=$1 want_code=$2 want_msg=$3 success=false
	[ "$want_code" -lt 300 ] && success=true
	# shellcheck disable=SC2053
	if [ "$code" == "$want_code" ] && [ -n "$msg" ] && [[ $msg == $want_msg ]] &&
		[[ $body == "{"*'"success":'"$success"[,\}]* ]]; then
		pass "$name: $code $msg"
	else
		fail "$name"$'\n'"  want: $want_code {\"success\":$success,\"message\":\"$want_msg\"...}"$'\n'"  got:  $code $body"
	fi
}
# mapping_of PORT: the port's object in the last GET's port_mappings, in $entry.
mapping_of() {
	local list=${body#*'"port_mappings":['} item
	entry=
	list=${list%]\}}
	while [ -n "$list" ]; do
		item=${list%%\}*}
		list=${list#"$item"}
		list=${list#\}}
		list=${list#,}
		if [[ $item == *'"remote_port":'"$1"[,\}]* || $item == *'"remote_port":'"$1" ]]; then
			entry="$item}"
			return 0
		fi
	done
	return 1
}

# The first log line saying rpc registered PORT gives its tunnel port, in $tunnel_port.
tunnel_port_of() {
	local re="port $2 on the server now reaches [^ ]* \\(tunnel port ([0-9]+)\\)"
	text_of "$1"
	tunnel_port=
	[[ $text =~ $re ]] && tunnel_port=${BASH_REMATCH[1]}
}

dump_logs() {
	local f
	for f in "$work"/*.log; do
		echo "---- ${f##*/} (last 40 lines)"
		tail -n 40 "$f"
	done
}
finish() {
	[ "$failures" -gt 0 ] && dump_logs
	summary
}

# ---------------------------------------------------------------- namespaces
netns_new "$O" "$S" "$C" "$D" || die "cannot create the namespaces"
ip link add "$VO" netns "$O" type veth peer name "$VSO" netns "$S" &&
	ip link add "$VSC" netns "$S" type veth peer name "$VC" netns "$C" &&
	ip link add "$VSD" netns "$S" type veth peer name "$VD" netns "$D" ||
	die "cannot create veth pairs"
netns_addr "$O" "$VO" 198.51.100.2/24 2001:db8:1::2/64 &&
	netns_addr "$S" "$VSO" 198.51.100.1/24 2001:db8:1::1/64 &&
	netns_addr "$S" "$VSC" 192.0.2.1/24 2001:db8:2::1/64 &&
	netns_addr "$C" "$VC" 192.0.2.2/24 2001:db8:2::2/64 &&
	netns_addr "$S" "$VSD" 203.0.113.1/24 2001:db8:3::1/64 &&
	netns_addr "$D" "$VD" 203.0.113.2/24 2001:db8:3::2/64 ||
	die "cannot set addresses"

# ---------------------------------------------------------------- configs
key_s=$(wg genkey) key_c=$(wg genkey) key_d=$(wg genkey)
pub_s=$(wg pubkey <<<"$key_s") pub_c=$(wg pubkey <<<"$key_c") pub_d=$(wg pubkey <<<"$key_d")
cat >"$work/server.conf" <<CONF
[Interface]
PrivateKey = $key_s
Address = 10.99.0.1/24, fd00:99::1/64
ListenPort = 51820

[Peer]
PublicKey = $pub_c
AllowedIPs = 10.99.0.2/32, fd00:99::2/128
# A restarted rps handshakes with rpc at once, rather than after rpc's old
# session has gone unanswered for 15 s (client2 stays behind "NAT").
Endpoint = 192.0.2.2:51822
PersistentKeepalive = 25

[Peer]
PublicKey = $pub_d
AllowedIPs = 10.99.0.3/32, fd00:99::3/128
CONF
cat >"$work/client.conf" <<CONF
[Interface]
PrivateKey = $key_c
Address = 10.99.0.2/32, fd00:99::2/128
ListenPort = 51822

[Peer]
PublicKey = $pub_s
Endpoint = 192.0.2.1:51820
AllowedIPs = 10.99.0.0/24, fd00:99::/64
PersistentKeepalive = 25
CONF
cat >"$work/client2.conf" <<CONF
[Interface]
PrivateKey = $key_d
Address = 10.99.0.3/32, fd00:99::3/128

[Peer]
PublicKey = $pub_s
Endpoint = [2001:db8:3::1]:51820
AllowedIPs = 10.99.0.0/24, fd00:99::/64
PersistentKeepalive = 25
CONF
chmod 600 "$work"/*.conf

# ---------------------------------------------------------------- services
# listening NETNS PORT: something listens on TCP PORT.
listening() {
	local out
	out=$(ip netns exec "$1" ss -Htln "sport = :$2")
	[ -n "$out" ]
}
echo "hello from the client" >"$work/page-c"
echo "hello from client2" >"$work/page-d"
echo "hello from a mapping made by hand" >"$work/page-manual"
serve "$C" 127.0.0.1 3000 "$work/page-c"
serve "$D" 127.0.0.1 3000 "$work/page-d"
if [ $big = 1 ]; then
	head -c $((50 * 1024 * 1024)) /dev/urandom >"$work/big"
	serve "$C" 127.0.0.1 3001 "$work/big"
	# 3002 answers with the sha256 of what it received.
	ip netns exec "$C" socat -t 10 "TCP-LISTEN:3002,bind=127.0.0.1,reuseaddr,fork" \
		EXEC:sha256sum 2>>"$work/socat.log" &
	pids+=("$!")
else
	serve "$C" 127.0.0.1 3001 "$work/page-c"
fi
wait_for 10 listening "$C" 3001 && wait_for 10 listening "$D" 3000 || die "services did not start"

# ---------------------------------------------------------------- daemons
rps_args=(-c "$work/server.conf" -i "$WS" --allow-unsigned --allow-ports 1024-65535 --max-mappings 4
	--heartbeat-timeout 4 --check-interval 1 -v)
rpc_args=(-c "$work/client.conf" -i "$WC" -r 127.0.0.1:3000-3000 -r localhost:3001-4001
	-r 127.0.0.1:3002-3002 --heartbeat-interval 1 --workers 3 -v)
rpc2_args=(-c "$work/client2.conf" -i "$WD" -r 127.0.0.1:3000-5000 --server fd00:99::1
	--heartbeat-interval 1 -v)
# start_rps LOG, start_rpc LOG, start_rpc2 LOG: in the background; the pid in $pid_rps etc.
start_rps() {
	ip netns exec "$S" "$rps" "${rps_args[@]}" 2>"$work/$1" &
	pid_rps=$!
	pids+=("$pid_rps")
}
start_rpc() {
	ip netns exec "$C" "$rpc" "${rpc_args[@]}" 2>"$work/$1" &
	pid_rpc=$!
	pids+=("$pid_rpc")
}
start_rpc2() {
	ip netns exec "$D" "$rpc" "${rpc2_args[@]}" 2>"$work/$1" &
	pid_rpc2=$!
	pids+=("$pid_rpc2")
}
# stop NAME PID [SIGNAL]: SIGTERM (or SIGNAL), waits (bounded), the exit status
# in $stop_status and the seconds it took in $stop_secs.
stop() {
	local t0=$EPOCHREALTIME
	kill -"${3:-TERM}" "$2"
	if ! wait_for 15 dead "$2"; then
		fail "$1 did not exit within 15 s of SIG${3:-TERM}"
		kill -KILL "$2"
	fi
	wait "$2"
	stop_status=$?
	stop_secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
}
# registered LOG PORT: rpc logged that PORT is registered.
registered() { contains "$work/$1" "port $2 on the server now reaches "; }
# link_kind NETNS IFNAME: "wireguard" or "tun".
link_kind() {
	ip -n "$1" -d -o link show dev "$2" 2>/dev/null | grep -o -w -e wireguard -e tun | head -1
}
gone() { ! ip -n "$1" link show dev "$2" >/dev/null 2>&1; }
want_kind=$([ "$expect" = kernel ] && echo wireguard || echo tun)

# ================================================================ user flow
section "user flow: rpc2 starts first and waits, then rps, then rpc"
start_rpc2 rpc2.log
wait_for 30 contains "$work/rpc2.log" "waiting for server at http://[fd00:99::1]:80" &&
	pass "rpc2 waits for the server at its --server address" ||
	fail "rpc2 did not start: $(cat "$work/rpc2.log")"
wait_for 30 contains "$work/rpc2.log" "no answer yet from the server at http://[fd00:99::1]:80" &&
	pass "rpc2 logs that the server does not answer yet" ||
	fail "rpc2 did not log the server's absence"
start_rps rps.log
wait_for 30 contains "$work/rps.log" "ready" || die "rps did not get ready: $(cat "$work/rps.log")"
check "rps brought $WS up ($expect WireGuard)" contains "$work/rps.log" "interface $WS is up ($expect WireGuard)"
check "rps API on 10.99.0.1:80" contains "$work/rps.log" "API listening on 10.99.0.1:80"
check "rps API on [fd00:99::1]:80" contains "$work/rps.log" "API listening on [fd00:99::1]:80"
start_rpc rpc.log
t0=$SECONDS
wait_for 60 registered rpc.log 3000 && wait_for 30 registered rpc.log 4001 &&
	wait_for 30 registered rpc.log 3002 ||
	fail "rpc did not register its three routes"
echo "   (rpc registered in $((SECONDS - t0)) s)"
check "rpc finds the API at the first host of the peer's first AllowedIPs" \
	contains "$work/rpc.log" "waiting for server at http://10.99.0.1:80"
check "rpc logs: port 3000 on the server now reaches 127.0.0.1:3000" \
	contains "$work/rpc.log" "port 3000 on the server now reaches 127.0.0.1:3000 (tunnel port "
check "rpc logs: port 4001 on the server now reaches localhost:3001" \
	contains "$work/rpc.log" "port 4001 on the server now reaches localhost:3001 (tunnel port "
wait_for 60 registered rpc2.log 5000 && pass "rpc2, started before rps, registered port 5000" ||
	fail "rpc2 did not register port 5000"
check "rpc2 logs the server reachable" contains "$work/rpc2.log" "server at http://[fd00:99::1]:80 is reachable"
expect_eq "link kind of rps's $WS is $want_kind" "$want_kind" "$(link_kind "$S" "$WS")"
expect_eq "link kind of rpc's $WC is $want_kind" "$want_kind" "$(link_kind "$C" "$WC")"
expect_eq "link kind of rpc2's $WD is $want_kind" "$want_kind" "$(link_kind "$D" "$WD")"
# relay_threads PID: the names of PID's relay worker threads, in $threads.
relay_threads() {
	local f name
	threads=
	for f in /proc/"$1"/task/*/comm; do
		read -r name <"$f" && [[ $name == relay-* ]] && threads+="${threads:+ }$name"
	done
}
relay_threads "$pid_rps"
expect_eq "rps relays with one worker per CPU ($(nproc))" \
	"$(seq -f 'relay-%g' -s ' ' 0 $(($(nproc) - 1)))" "$threads"
relay_threads "$pid_rpc"
expect_eq "rpc relays with --workers 3" "relay-0 relay-1 relay-2" "$threads"

expect_page "outside fetches 198.51.100.1:3000 (127.0.0.1:3000 on the client)" \
	"$O" http://198.51.100.1:3000/ "hello from the client"
expect_page "outside fetches [2001:db8:1::1]:3000 (IPv6)" \
	"$O" "http://[2001:db8:1::1]:3000/" "hello from the client"
expect_page "outside fetches [2001:db8:1::1]:5000 (client2's service)" \
	"$O" "http://[2001:db8:1::1]:5000/" "hello from client2"
expect_page "outside fetches 198.51.100.1:5000 (client2's service)" \
	"$O" http://198.51.100.1:5000/ "hello from client2"
if [ $big = 0 ]; then
	expect_page "outside fetches 198.51.100.1:4001 (localhost:3001 on the client)" \
		"$O" http://198.51.100.1:4001/ "hello from the client"
fi
tunnel_port_of "$work/rpc.log" 3000
tunnel_3000=$tunnel_port

if [ $big = 1 ]; then
	# ============================================================ big file
	section "big file: 50 MB each way"
	want=$(sha256sum <"$work/big")
	t0=$EPOCHREALTIME
	got=$(in_ns "$O" curl -sS --max-time 120 http://198.51.100.1:4001/ | sha256sum)
	secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	expect_eq "50 MB from the client's localhost:3001 via 198.51.100.1:4001: sha256 ($secs s)" "$want" "$got"
	t0=$EPOCHREALTIME
	got=$(in_ns "$O" socat -t 30 -T 120 - TCP:198.51.100.1:3002 <"$work/big")
	secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	expect_eq "50 MB from outside to the client via [::ffff:198.51.100.1]:3002: sha256 ($secs s)" "$want" "$got"
	rm -f "$work/big"
fi

if [ $full = 1 ]; then
	# ============================================================ wire API
	section "wire API, with curl from the client host"
	url=http://10.99.0.1:80/api/v1
	# A service on the client's tunnel address for a mapping made by hand.
	serve "$C" 10.99.0.2 12345 "$work/page-manual"
	wait_for 10 listening "$C" 12345 || fail "service on 10.99.0.2:12345 did not start"

	# The answers are rps's alone, whatever WireGuard carries them: the
	# userspace run checks them; in the VM they would only cost time.
	if [ "$expect" = userspace ]; then
		post "$C" "$url/port-mappings" \
			'{"local_addr":"127.0.0.1:8080","remote_port":8080,"client_ip":"10.99.0.2","client_port":12345}'
		expect_answer "POST a mapping" 200 "Port mapping created successfully for port 8080"
		expect_page "outside fetches 198.51.100.1:8080 (10.99.0.2:12345)" \
			"$O" http://198.51.100.1:8080/ "hello from a mapping made by hand"
		post "$C" "$url/port-mappings" \
			'{"local_addr":"127.0.0.1:8080","remote_port":8080,"client_ip":"10.99.0.2","client_port":12345}'
		expect_answer "POST it again" 200 "Port mapping updated for port 8080"
		expect_page "outside still fetches 198.51.100.1:8080" \
			"$O" http://198.51.100.1:8080/ "hello from a mapping made by hand"

		api "$C" GET "$url/port-mappings"
		expect_answer "GET the mappings" 200 "4 mappings"
		if mapping_of 8080; then
			[[ $entry == *'"target":"10.99.0.2:12345"'* && $entry == *'"local_addr":"127.0.0.1:8080"'* &&
				$entry =~ \"active\":[0-9] && $entry == *'"total":2'* &&
				$entry =~ \"bytes_in\":[1-9] && $entry =~ \"bytes_out\":[1-9] &&
				$entry =~ \"created\":[1-9][0-9]{9} && $entry == *'"protocol":"tcp"'* ]] &&
				pass "GET: port 8080 with its protocol, target, local_addr, counters, created" ||
				fail "GET: port 8080: $entry"
		else
			fail "GET: no port 8080 in $body"
		fi
		mapping_of 3000 && [[ $entry == *"\"target\":\"10.99.0.2:$tunnel_3000\""* &&
			$entry == *'"local_addr":"127.0.0.1:3000"'* ]] &&
			pass "GET: rpc's port 3000 goes to 10.99.0.2:$tunnel_3000" || fail "GET: port 3000: $body"
		mapping_of 4001 && [[ $entry == *'"local_addr":"localhost:3001"'* ]] &&
			pass "GET: rpc's port 4001 for localhost:3001" || fail "GET: port 4001: $body"
		mapping_of 5000 && fail "GET shows client2's port 5000: $body" || pass "GET: not client2's port 5000"

		post "$C" "$url/heartbeat" '{"client_ip":"10.99.0.2"}'
		expect_answer "POST a heartbeat" 200 "Heartbeat received"
		[[ $body =~ \"server_startup_time\":[1-9][0-9]{9}[,}] ]] &&
			pass "heartbeat: server_startup_time" || fail "heartbeat: server_startup_time: $body"
		[[ $body == *'"mappings":[3000,3002,4001,8080],"udp_mappings":[]'* ]] &&
			pass "heartbeat: mappings [3000,3002,4001,8080], udp_mappings []" || fail "heartbeat: mappings: $body"
		api "$C" POST "$url/heartbeat" -H "Content-Type: application/json" -d '{}'
		expect_answer "heartbeat without client_ip" 200 "Heartbeat received"
		api "$C" POST "http://[fd00:99::1]/api/v1/heartbeat" -d '{"client_ip":"fd00:99::2"}'
		expect_answer "heartbeat over IPv6" 200 "Heartbeat received"
		[[ $body == *'"mappings":[]'* ]] && pass "heartbeat over IPv6: the IPv6 identity holds no mappings" ||
			fail "heartbeat over IPv6: mappings: $body"

		# Refusals by policy: 403, with the reason.
		post "$C" "$url/port-mappings" \
			'{"local_addr":"127.0.0.1:22","remote_port":22,"client_ip":"10.99.0.2","client_port":12345}'
		expect_answer "POST port 22 (not in --allow-ports)" 403 "port 22 is not allowed on this server (see --allow-ports)"
		post "$C" "$url/port-mappings" \
			'{"local_addr":"127.0.0.1:80","remote_port":80,"client_ip":"10.99.0.2","client_port":12345}'
		expect_answer "POST port 80 (the API's)" 403 "port 80 is used by the server itself and cannot be mapped"
		post "$C" "$url/port-mappings" \
			'{"local_addr":"127.0.0.1:80","remote_port":51820,"client_ip":"10.99.0.2","client_port":12345}'
		expect_answer "POST port 51820 (WireGuard's)" 403 "port 51820 is used by the server itself and cannot be mapped"
		post "$C" "$url/port-mappings" \
			'{"local_addr":"127.0.0.1:8081","remote_port":8081,"client_ip":"10.99.0.2","client_port":12345}'
		expect_answer "POST a fifth mapping (--max-mappings 4)" 403 "this client already holds 4 mappings, the most allowed"
		post "$C" "$url/port-mappings" '{"local_addr":"127.0.0.1:53","remote_port":8081,"client_port":12345,"protocol":"udp"}'
		expect_answer "POST a fifth mapping, of UDP (--max-mappings counts both)" 403 \
			"this client already holds 4 mappings, the most allowed"
		post "$C" "$url/port-mappings" '{"local_addr":"127.0.0.1:53","remote_port":51820,"client_port":12345,"protocol":"udp"}'
		expect_answer "POST port 51820/udp (WireGuard's)" 403 "port 51820/udp is used by the server itself and cannot be mapped"
		post "$C" "$url/port-mappings" '{"local_addr":"127.0.0.1:53","remote_port":8081,"client_port":12345,"protocol":"sctp"}'
		expect_answer "POST protocol sctp" 400 'invalid request body: field "protocol" must be "tcp" or "udp"'
		# A port something else holds on the server: 409 with the reason.
		in_ns "$S" socat TCP4-LISTEN:7000,bind=0.0.0.0,reuseaddr,fork EXEC:true 2>>"$work/socat.log" &
		pids+=("$!")
		wait_for 10 listening "$S" 7000 || fail "listener on the server's port 7000 did not start"
		# Connections on every worker: 16 held open (all on one of two workers
		# would happen once in 30000 runs), then reset by the DELETE, all of
		# them before it is answered. (Sockets wait 30 s for the resets: the test
		# VM is slow when its host is busy.)
		expect_eq "rps listens on port 8080 with a socket per worker" "$(nproc)" \
			"$(in_ns "$S" ss -Hltn 'sport = :8080' | wc -l)"
		in_ns "$O" python3 -c '
import socket, sys, time
conns = [socket.create_connection(("198.51.100.1", 8080), timeout=30) for _ in range(16)]
print("held", flush=True)
ended = {"reset": 0, "eof": 0}
for c in conns:
	try:
		ended["eof" if c.recv(1) == b"" else "data"] += 1
	except ConnectionResetError:
		ended["reset"] += 1
	except OSError as e:
		ended[str(e)] = ended.get(str(e), 0) + 1
print(" ".join("%s=%d" % kv for kv in sorted(ended.items())), flush=True)
' >"$work/held.out" 2>&1 &
		held_pid=$!
		wait_for 15 contains "$work/held.out" held || fail "16 connections to port 8080 not held: $(cat "$work/held.out")"
		established_8080() { [ "$(in_ns "$S" ss -Htn state established 'sport = :8080' | wc -l)" = "$1" ]; }
		check "rps relays all 16" wait_for 10 established_8080 16
		api "$C" DELETE "$url/port-mappings?port=8080"
		expect_answer "DELETE port 8080" 200 "Port mapping deleted successfully for port 8080"
		check "rps holds none of them once it answered" established_8080 0
		wait "$held_pid"
		text_of "$work/held.out"
		expect_eq "the 16 held connections are reset" "held"$'\n'"eof=0 reset=16" "${text%$'\n'}"
		refuses "$O" 198.51.100.1 8080 && pass "port 8080 refuses once deleted" || fail "port 8080 still open after DELETE"
		post "$C" "$url/port-mappings" \
			'{"local_addr":"127.0.0.1:7000","remote_port":7000,"client_ip":"10.99.0.2","client_port":12345}'
		expect_answer "POST port 7000 (in use on the server)" 409 "cannot listen on *7000: Address already in use"
		api "$C" DELETE "$url/port-mappings?port=8080"
		expect_answer "DELETE port 8080 again" 404 "no mapping for port 8080"
		api "$C" DELETE "$url/port-mappings"
		expect_answer "DELETE without a port" 400 "port parameter is required*"
		for bad in abc 0 65536 -1 3000x; do
			api "$C" DELETE "$url/port-mappings?port=$bad"
			expect_answer "DELETE ?port=$bad" 400 "invalid port*"
		done
		api "$C" DELETE "$url/port-mappings?port=3000&protocol=udp"
		expect_answer "DELETE port 3000/udp (only TCP is mapped)" 404 "no mapping for port 3000/udp"
		api "$C" DELETE "$url/port-mappings?port=3000&protocol=UDP"
		expect_answer "DELETE ?protocol=UDP" 400 'invalid protocol: "UDP" (expected tcp or udp)'
		post "$C" "$url/port-mappings" '{"local_addr":"127.0.0.1:53","remote_port":3000,"client_port":12345,"protocol":"udp","proxy_protocol":2}'
		expect_answer "POST port 3000/udp with PROXY headers" 200 "Port mapping created successfully for port 3000/udp"
		[[ $body == *'"proxy_protocol":2'* && $body == *'"protocol":"udp"'* ]] &&
			pass "the answer repeats proxy_protocol 2 and protocol udp" ||
			fail "the answer does not repeat proxy_protocol and protocol: $body"
		api "$C" DELETE "$url/port-mappings?port=3000&protocol=udp"
		expect_answer "DELETE port 3000/udp" 200 "Port mapping deleted successfully for port 3000/udp"

		# The client deletes a mapping rpc holds: rpc's next heartbeat shows it
		# gone, and rpc registers it again.
		count_of "$work/rpc.log" "port 3000 on the server now reaches "
		before=$count
		api "$C" DELETE "$url/port-mappings?port=3000"
		expect_answer "DELETE rpc's port 3000 from the client host" 200 "Port mapping deleted successfully for port 3000"
		wait_for 15 count_above "$work/rpc.log" "port 3000 on the server now reaches " "$before" &&
			contains "$work/rpc.log" "server lost port 3000: registering it again" &&
			pass "rpc notices the lost port 3000 and registers it again" ||
			fail "rpc did not repair port 3000"
		expect_page "outside fetches 198.51.100.1:3000 again" "$O" http://198.51.100.1:3000/ "hello from the client"

		# Malformed requests.
		post "$C" "$url/port-mappings" '{"local_addr":"127.0.0.1:8080","remote_port":'
		expect_answer "POST malformed JSON" 400 "invalid request body: *"
		post "$C" "$url/port-mappings" '{"local_addr":"127.0.0.1:8080","client_ip":"10.99.0.2","client_port":12345}'
		expect_answer "POST without remote_port" 400 'invalid request body: missing field "remote_port"'
		post "$C" "$url/port-mappings" \
			'{"local_addr":"127.0.0.1:8080","remote_port":70000,"client_ip":"10.99.0.2","client_port":12345}'
		expect_answer "POST remote_port 70000" 400 "invalid request body: *remote_port*"
		post "$C" "$url/port-mappings" '[1,2]'
		expect_answer "POST a JSON array" 400 "invalid request body: *"
		post "$C" "$url/heartbeat" '{"client_ip":"not an address"}'
		expect_answer "heartbeat with a bad client_ip" 400 "invalid request body: *"
		printf '{"client_ip":"10.99.0.2","pad":"%17000s"}' "" >"$work/large.json"
		api "$C" POST "$url/heartbeat" -H "Content-Type: application/json" --data-binary "@$work/large.json"
		expect_answer "POST a 17 kB body" 413 "request body too large (at most 16384 bytes)"
		api "$C" POST "$url/heartbeat" -H "Content-Type: application/json" -H "Transfer-Encoding: chunked" \
			--data-binary "@$work/large.json"
		expect_answer "POST a 17 kB body, chunked (no length announced)" 413 "request body too large (at most 16384 bytes)"
		api "$C" PUT "$url/port-mappings" -d '{}'
		expect_answer "PUT /api/v1/port-mappings" 405 "*PUT*"
		api "$C" GET "$url/heartbeat"
		expect_answer "GET /api/v1/heartbeat" 405 "*GET*"
		api "$C" GET "$url/nothing"
		expect_answer "GET /api/v1/nothing" 404 "*/api/v1/nothing*"
		api "$C" GET "http://10.99.0.1/"
		expect_answer "GET /" 404 "*"
	fi

	# ============================================================ isolation
	section "isolation"
	post "$C" "$url/port-mappings" \
		'{"local_addr":"127.0.0.1:8080","remote_port":8080,"client_ip":"10.99.0.2","client_port":12345}'
	expect_answer "client maps port 8080 again" 200 "Port mapping created successfully for port 8080"
	post "$D" "$url/port-mappings" \
		'{"local_addr":"127.0.0.1:9","remote_port":8080,"client_ip":"10.99.0.3","client_port":9}'
	expect_answer "client2 POSTs the client's port 8080" 409 "port 8080 is already mapped by another client"
	check "rps logs the refusal" contains "$work/rps.log" \
		"refused port 8080 to client 10.99.0.3: port 8080 is already mapped by another client"
	post "$D" "$url/port-mappings" \
		'{"local_addr":"127.0.0.1:9","remote_port":8080,"client_ip":"10.99.0.2","client_port":9}'
	expect_answer "client2 POSTs port 8080 claiming the client's client_ip" 403 \
		"client_ip 10.99.0.2 does not match the tunnel address this request came from (10.99.0.3)"
	post "$D" "$url/port-mappings" \
		'{"local_addr":"127.0.0.1:9","remote_port":8090,"client_ip":"10.99.0.2","client_port":9}'
	expect_answer "client2 POSTs a free port claiming the client's client_ip" 403 \
		"client_ip 10.99.0.2 does not match the tunnel address this request came from (10.99.0.3)"
	post "$D" "$url/heartbeat" '{"client_ip":"10.99.0.2"}'
	expect_answer "client2 heartbeats as the client" 403 \
		"client_ip 10.99.0.2 does not match the tunnel address this request came from (10.99.0.3)"
	api "$D" DELETE "$url/port-mappings?port=8080"
	expect_answer "client2 DELETEs the client's port 8080" 403 "port 8080 is mapped by another client"
	api "$D" DELETE "$url/port-mappings?port=3000"
	expect_answer "client2 DELETEs rpc's port 3000" 403 "port 3000 is mapped by another client"
	api "$D" GET "$url/port-mappings"
	expect_answer "client2 GETs over IPv4" 200 "0 mappings"
	api "$D" GET "http://[fd00:99::1]/api/v1/port-mappings"
	expect_answer "client2 GETs over IPv6" 200 "1 mapping"
	mapping_of 5000 && ! mapping_of 8080 && ! mapping_of 3000 &&
		pass "client2 lists only its own port 5000" || fail "client2's list: $body"
	expect_page "port 8080 still reaches the client" \
		"$O" http://198.51.100.1:8080/ "hello from a mapping made by hand"
	post "$C" "$url/port-mappings" \
		'{"local_addr":"127.0.0.1:8080","remote_port":8080,"client_ip":"10.99.0.3","client_port":12345}'
	expect_answer "the client claims client2's client_ip" 403 \
		"client_ip 10.99.0.3 does not match the tunnel address this request came from (10.99.0.2)"
	api "$C" DELETE "$url/port-mappings?port=8080"
	expect_answer "the client DELETEs its port 8080" 200 "Port mapping deleted successfully for port 8080"

	# The API only for what comes through the tunnel, even when routed at.
	refuses "$O" 10.99.0.1 80 && pass "outside: no route to the API" || fail "outside reached 10.99.0.1:80"
	in_ns "$O" ip route add 10.99.0.1/32 via 198.51.100.1
	in_ns "$O" ip -6 route add fd00:99::1/128 via 2001:db8:1::1
	# Control: a plain listener on the server's tunnel address is reachable that way.
	serve "$S" 10.99.0.1 8998 "$work/page-c"
	wait_for 10 listening "$S" 8998
	expect_page "outside reaches 10.99.0.1:8998 (not the API) with a route via the server" \
		"$O" http://10.99.0.1:8998/ "hello from the client"
	refuses "$O" 10.99.0.1 80 && pass "outside routed at 10.99.0.1:80: refused" ||
		fail "outside routed at 10.99.0.1: the API answered"
	refuses "$O" "[fd00:99::1]" 80 && pass "outside routed at [fd00:99::1]:80: refused" ||
		fail "outside routed at [fd00:99::1]: the API answered"
	in_ns "$O" ip route del 10.99.0.1/32
	in_ns "$O" ip -6 route del fd00:99::1/128

	# rpc's tunnel ports: only the server may connect. client2 reaches the
	# client's tunnel address through the server when it forwards.
	in_ns "$S" sysctl -qw net.ipv4.ip_forward=1
	expect_page "control: client2 reaches 10.99.0.2:12345 through the server" \
		"$D" http://10.99.0.2:12345/ "hello from a mapping made by hand"
	fetch "$D" "http://10.99.0.2:$tunnel_3000/"
	[ $fetch_status -ne 0 ] && [ "$got" != "hello from the client" ] &&
		pass "client2 connecting to rpc's tunnel port $tunnel_3000: refused (curl status $fetch_status)" ||
		fail "client2 got through rpc's tunnel port: $got"
	wait_for 5 contains "$work/rpc.log" "refused a connection from 10.99.0.3:" &&
		pass "rpc logs the refusal of 10.99.0.3" || fail "rpc did not log refusing 10.99.0.3"
	in_ns "$S" sysctl -qw net.ipv4.ip_forward=0
	fetch "$C" "http://10.99.0.2:$tunnel_3000/"
	[ $fetch_status -ne 0 ] && [ "$got" != "hello from the client" ] &&
		pass "the client host itself (10.99.0.2) connecting to the tunnel port: refused" ||
		fail "the client host got through rpc's tunnel port: $got"
	got=$(in_ns "$C" curl -sS --max-time 10 --interface 127.0.0.1 "http://10.99.0.2:$tunnel_3000/" 2>&1)
	[ $? -ne 0 ] && [ "$got" != "hello from the client" ] &&
		pass "from 127.0.0.1 to the tunnel port: refused" ||
		fail "127.0.0.1 got through rpc's tunnel port: $got"
	expect_page "the server still gets through" "$O" http://198.51.100.1:3000/ "hello from the client"

	# ============================================================ expiry
	section "expiry: kill -9 rpc"
	kill -KILL "$pid_rpc"
	wait "$pid_rpc" 2>/dev/null
	t0=$SECONDS
	wait_for 20 contains "$work/rps.log" "client 10.99.0.2 silent for 4 s: removing its 3 mappings" &&
		pass "rps drops the silent client's 3 mappings after $((SECONDS - t0)) s" ||
		fail "rps did not drop the silent client's mappings"
	for port in 3000 3002 4001; do
		refuses "$O" 198.51.100.1 $port && pass "port $port refuses" || fail "port $port still open"
	done
	expect_page "client2's port 5000 stays" "$O" http://198.51.100.1:5000/ "hello from client2"
	start_rpc rpc-fresh.log
	wait_for 60 registered rpc-fresh.log 3000 && wait_for 30 registered rpc-fresh.log 4001 &&
		wait_for 30 registered rpc-fresh.log 3002 &&
		pass "a fresh rpc registers the three ports again" || fail "the fresh rpc did not register"
	expect_page "outside fetches 198.51.100.1:3000 again" "$O" http://198.51.100.1:3000/ "hello from the client"
	rpc_log='rpc-fresh.log'
else
	rpc_log='rpc.log'
fi

# ==================================================================== stop
section "graceful stop of rpc2 and of rps"
# SIGHUP (a closed terminal, or a reload by habit) reloads an unchanged
# config: nothing changes, nothing stops (reload_test.sh tests reloads).
kill -HUP "$pid_rps" "$pid_rpc2"
check "rps reloads its unchanged config on SIGHUP" \
	wait_for 5 contains "$work/rps.log" "reloaded $work/server.conf: no change"
check "rpc2 reloads its unchanged config on SIGHUP" \
	wait_for 5 contains "$work/rpc2.log" "reloaded $work/client2.conf: 0 peers added"
alive "$pid_rps" && alive "$pid_rpc2" && pass "both keep running after SIGHUP" || fail "SIGHUP killed a daemon"
stop rpc2 "$pid_rpc2"
expect_eq "rpc2 exits 0 on SIGTERM" 0 "$stop_status"
awk -v s="$stop_secs" 'BEGIN { exit !(s <= 3.5) }' && pass "rpc2 stopped in $stop_secs s" ||
	fail "rpc2 took $stop_secs s to stop"
check "rpc2 logs its port removed" contains "$work/rpc2.log" "port 5000 removed from the server"
refuses "$O" 198.51.100.1 5000 && pass "port 5000 refuses at once" || fail "port 5000 still open after rpc2 stopped"
check "rpc2's interface $WD is gone" gone "$D" "$WD"
[ "$expect" = userspace ] && check "rpc2's UAPI socket is gone" test ! -e "/var/run/wireguard/$WD.sock"
expect_page "port 3000 still works" "$O" http://198.51.100.1:3000/ "hello from the client"

stop rps "$pid_rps"
expect_eq "rps exits 0 on SIGTERM" 0 "$stop_status"
refuses "$O" 198.51.100.1 3000 && pass "port 3000 refuses at once" || fail "port 3000 open after rps stopped"
refuses "$O" "[2001:db8:1::1]" 4001 && pass "port 4001 refuses at once" || fail "port 4001 open after rps stopped"
check "rps's interface $WS is gone" gone "$S" "$WS"
[ "$expect" = userspace ] && check "rps's UAPI socket is gone" test ! -e "/var/run/wireguard/$WS.sock"
alive "$pid_rpc" && pass "rpc keeps running without the server" || fail "rpc exited when rps stopped"

# ================================================================ recovery
section "recovery: rps starts again, rpc re-registers by itself"
count_of "$work/$rpc_log" "port 3000 on the server now reaches "
before=$count
nap 2 # rpc notices
start_rps rps-again.log
t0=$SECONDS
wait_for 30 contains "$work/rps-again.log" "ready" || fail "rps did not start again: $(cat "$work/rps-again.log")"
if wait_for 90 count_above "$work/$rpc_log" "port 3000 on the server now reaches " "$before"; then
	pass "rpc registered port 3000 again, $((SECONDS - t0)) s after rps started"
	check "rpc asked at once, on the new server's handshake" wait_for 10 contains "$work/$rpc_log" \
		"a new handshake with the server: heartbeat now, in case it restarted"
	wait_for 30 count_above "$work/$rpc_log" "port 4001 on the server now reaches " 0
	expect_page "outside fetches 198.51.100.1:3000 again" "$O" http://198.51.100.1:3000/ "hello from the client"
	expect_page "outside fetches [2001:db8:1::1]:3000 again" "$O" "http://[2001:db8:1::1]:3000/" \
		"hello from the client"
else
	fail "rpc did not register again within 90 s"
fi
alive "$pid_rpc" && pass "the same rpc (pid $pid_rpc), not restarted" || fail "rpc died"
expect_eq "link kind of the new $WS" "$want_kind" "$(link_kind "$S" "$WS")"

# ============================================================== final stop
section "final stop"
stop rpc "$pid_rpc"
expect_eq "rpc exits 0 on SIGTERM" 0 "$stop_status"
awk -v s="$stop_secs" 'BEGIN { exit !(s <= 3.5) }' && pass "rpc stopped in $stop_secs s" ||
	fail "rpc took $stop_secs s to stop"
for port in 3000 3002 4001; do
	refuses "$O" 198.51.100.1 $port && pass "port $port refuses at once" || fail "port $port open after rpc stopped"
done
check "rpc's interface $WC is gone" gone "$C" "$WC"
check "rps logged the unmapping" contains "$work/rps-again.log" "port 3000 unmapped"
stop rps "$pid_rps" INT
expect_eq "rps exits 0 on SIGINT" 0 "$stop_status"
check "rps's interface $WS is gone" gone "$S" "$WS"
finish
