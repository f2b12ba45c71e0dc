#!/bin/bash
# wg-rp's mappings over their lifetime, end to end: the real rps and rpc on
# userspace WireGuard in four network namespaces joined by veth pairs, with
# nothing linked to the root namespace.
#
#   netns $O (outside host)      netns $S (server: rps)             netns $C (client: rpc)
#   $VO  198.51.100.2/24  <-veth-> $VSO 198.51.100.1/24, .3/24
#        2001:db8:1::2/64              2001:db8:1::1/64, ::3/64
#                                 $VSC 192.0.2.1/24     <-veth->  $VC 192.0.2.2/24
#                                 $WS  10.99.0.1/24  <== wg ==>   $WC 10.99.0.2/32
#                                      fd00:99::1/64                  fd00:99::2/128
#                                                                 echo "one" on 0.0.0.0:13001
#                                                                 and 127.0.0.1:3000, "two" on
#                                                                 0.0.0.0:13002; nothing on
#                                                                 127.0.0.1:3999; SYNs to
#                                                                 127.0.0.1:3998 dropped
#                                 $VSD 203.0.113.1/24   <-veth->  netns $D (client2: rpc2)
#                                 $WS  <========= wg =========>     $WD 10.99.0.3/32 fd00:99::3/128
#                                                                   echo "two" on 127.0.0.1:3000
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   api port    rps --api-port 8080 --bind 198.51.100.1, open files 40: the
#               API answers on 8080 only; a mapping made by hand answers on
#               198.51.100.1 only (not .3, not IPv6)
#   update      the same port posted again with a new target: the held
#               connection keeps its target, a new one reaches the new one
#   delete      DELETE: the held connections are reset
#   api limits  8 API connections of one peer: its 9th refused; 2 of another
#               peer reach the total (half the 20 fds kept from the relays):
#               its 3rd refused; all closed by the server's idle timeout,
#               then served again
#   addresses   rps --bind 2001:db8:1::1 with 17 Addresses: the warning, the
#               API on the first 16 only; mapped ports on that address only
#   expiry      rpc stopped (SIGSTOP): its mappings expire, the held
#               connection is reset; SIGCONT: it registers them again
#   refused     rpc2 wants rpc's port 3000: refused, logged, in its status
#               line (sd_notify, when built with systemd)
#   local down  nothing listens at rpc's local address: the outside
#               connection is reset; SYNs to the local address dropped, and
#               SYNs to rpc's tunnel port: reset after rpc's and rps's own
#               connect timeouts (10 s, both at once)
#   open files  rpc2 with 40 open files: connections beyond its relays' share
#               are reset, logged; served again once they close
#   rpc stop    SIGTERM to rpc: the held connection is reset; rpc2 takes
#               port 3000 on its slow retry timer (30 s), not before
#   policy      rpc2's peer with its own AllowPorts, MaxMappings and
#               MaxConnsPerSource lines in the server's config: each applies
#               to it instead of the options
# At the end: no sanitizer report in any log.
#
# usage: mapping_test.sh RPS RPC
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
if [ $# -ne 2 ]; then
	echo "usage: $0 RPS RPC" >&2
	exit 2
fi
rps=$(realpath "$1") rpc=$(realpath "$2")
tool=(/usr/bin/python3 "$(cd "$(dirname "$0")" && pwd)/mapping_tool.py")
command -v nft >/dev/null || skip_test "needs nft (nftables)"
[ -x /usr/bin/python3 ] || skip_test "needs /usr/bin/python3"

tag=$$
O=wgrp-mt-o-$tag S=wgrp-mt-s-$tag C=wgrp-mt-c-$tag D=wgrp-mt-d-$tag
VO=mto$tag VSO=mtso$tag VSC=mtsc$tag VC=mtc$tag VSD=mtsd$tag VD=mtd$tag
WS=mtws$tag WC=mtwc$tag WD=mtwd$tag
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"
trap 'end_run "$O" "$S" "$C" "$D"' EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- namespaces
netns_new "$O" "$S" "$C" "$D" || die "cannot create the namespaces"
ip link add "$VO" netns "$O" type veth peer name "$VSO" netns "$S" &&
	ip link add "$VSC" netns "$S" type veth peer name "$VC" netns "$C" &&
	ip link add "$VSD" netns "$S" type veth peer name "$VD" netns "$D" ||
	die "cannot create veth pairs"
netns_addr "$O" "$VO" 198.51.100.2/24 2001:db8:1::2/64 &&
	netns_addr "$S" "$VSO" 198.51.100.1/24 198.51.100.3/24 2001:db8:1::1/64 2001:db8:1::3/64 &&
	netns_addr "$S" "$VSC" 192.0.2.1/24 && netns_addr "$C" "$VC" 192.0.2.2/24 &&
	netns_addr "$S" "$VSD" 203.0.113.1/24 && netns_addr "$D" "$VD" 203.0.113.2/24 ||
	die "cannot set addresses"
# SYNs to 127.0.0.1:3998 in the client host vanish: rpc's connect times out.
ip netns exec "$C" nft -f - <<'NFT' || die "cannot set up nftables in $C"
table inet mapping_test {
	chain in {
		type filter hook input priority 0;
		tcp dport 3998 drop
	}
}
NFT

# ---------------------------------------------------------------- configs
key_s=$(wg genkey) key_c=$(wg genkey) key_d=$(wg genkey)
pub_s=$(wg pubkey <<<"$key_s") pub_c=$(wg pubkey <<<"$key_c") pub_d=$(wg pubkey <<<"$key_d")
peers="
[Peer]
PublicKey = $pub_c
AllowedIPs = 10.99.0.2/32, fd00:99::2/128

[Peer]
PublicKey = $pub_d
AllowedIPs = 10.99.0.3/32, fd00:99::3/128"
printf '[Interface]\nPrivateKey = %s\nAddress = 10.99.0.1/24, fd00:99::1/64\nListenPort = 51820\n%s\n' \
	"$key_s" "$peers" >"$work/server-a.conf"
# 17 Addresses: one more than the API serves.
many="10.99.0.1/24, fd00:99::1/64"
for i in $(seq 15); do many+=", 10.99.$i.1/32"; done
printf '[Interface]\nPrivateKey = %s\nAddress = %s\nListenPort = 51820\n%s\n' \
	"$key_s" "$many" "$peers" >"$work/server.conf"
client_conf() {
	printf '[Interface]\nPrivateKey = %s\nAddress = %s\n\n[Peer]\nPublicKey = %s\nEndpoint = %s:51820\n' \
		"$1" "$2" "$pub_s" "$3"
	printf 'AllowedIPs = 10.99.0.0/16, fd00:99::/64\nPersistentKeepalive = 25\n'
}
client_conf "$key_c" "10.99.0.2/32, fd00:99::2/128" 192.0.2.1 >"$work/client.conf"
client_conf "$key_d" "10.99.0.3/32, fd00:99::3/128" 203.0.113.1 >"$work/client2.conf"
chmod 600 "$work"/*.conf

# ---------------------------------------------------------------- helpers
listening() { [ -n "$(ip netns exec "$1" ss -Htln "sport = :$2")" ]; }
listening_at() { [ -n "$(ip netns exec "$1" ss -Htln "src = $2")" ]; }
not_listening_at() { ! listening_at "$@"; }
# bg NETNS CMD...: in the background, cleaned up at the end; pid in $bg_pid.
bg() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@" 2>>"$work/tools.log" &
	bg_pid=$!
	pids+=("$bg_pid")
}
# echo_service NETNS NAME ADDRESS PORT
echo_service() {
	bg "$1" "${tool[@]}" echo "$2" "$3" "$4"
}
# ask NETNS HOST PORT: one connection, one "ping": the answer (or how it
# ended, or connect-failed) in $answer.
ask() {
	local out="$work/ask.$RANDOM"
	ip netns exec "$1" "${tool[@]}" hold "$2" "$3" "$out" --max-time 0 2>>"$work/tools.log"
	text_of "$out"
	rm -f "$out"
	answer=${text%%$'\n'*}
	answer=${answer#reply 0 }
}
answers() {
	ask "$1" "$2" "$3"
	[ "$answer" == "$4" ]
}
refused_at() {
	ask "$1" "$2" "$3"
	[[ $answer == connect-failed* ]]
}
# hold NAME NETNS HOST PORT [OPTIONS...]: connections held in the background
# (mapping_tool.py hold); events in $work/NAME.hold, pid in $hold_pid.
hold() {
	local name=$1 ns=$2
	shift 2
	bg "$ns" "${tool[@]}" hold "$1" "$2" "$work/$name.hold" "${@:3}"
	hold_pid=$bg_pid
}
holding() { contains "$work/$1.hold" "held "; }
# ended NAME I HOW: connection I of the holder ended that way (reset or eof).
ended() {
	text_of "$work/$1.hold"
	[[ $text == *"$3 $2 "* ]]
}
# api NETNS METHOD URL [CURL_ARGS...]: the HTTP status in $code, the body in $body.
api() {
	local ns=$1 method=$2 url=$3 out
	shift 3
	out=$(ip netns exec "$ns" curl -sS -g --max-time 10 -X "$method" -w '\n%{http_code}' "$@" "$url" 2>&1)
	code=${out##*$'\n'} body=${out%$'\n'*}
}
# map PORT CLIENT_PORT: the client maps PORT to 10.99.0.2:CLIENT_PORT by hand.
map() {
	api "$C" POST "$api_url/port-mappings" -H "Content-Type: application/json" \
		-d '{"local_addr":"0.0.0.0:'"$2"'","remote_port":'"$1"',"client_ip":"10.99.0.2","client_port":'"$2"'}'
}
expect_answer() {
	if [ "$code" = "$2" ] && [[ $body == *"\"message\":\"$3\""* ]]; then
		pass "$1: $code $3"
	else
		fail "$1"$'\n'"  want: $2 $3"$'\n'"  got:  $code $body"
	fi
}
registered() { contains "$work/$1" "port $2 on the server now reaches "; }
count_above() {
	count_of "$1" "$2"
	[ "$count" -gt "$3" ]
}
# start_rps LOG NOFILE|- ARGS...: rps (with that open file limit, or -: the
# usual), pid in $pid_rps; waits until it is ready.
start_rps() {
	local log=$1 limit=()
	[ "$2" != - ] && limit=(prlimit --nofile="$2:$2")
	ip netns exec "$S" "${limit[@]}" "$rps" -i "$WS" --allow-unsigned --allow-ports 1024-65535 \
		--check-interval 1 -v "${@:3}" 2>"$work/$log" &
	pid_rps=$!
	pids+=("$pid_rps")
	wait_for 30 contains "$work/$log" "ready" || die "rps did not get ready: $(cat "$work/$log")"
}
# start_rpc NETNS LOG NOFILE|- ARGS...: likewise rpc, pid in $pid_rpc.
start_rpc() {
	local ns=$1 log=$2 limit=()
	[ "$3" != - ] && limit=(prlimit --nofile="$3:$3")
	ip netns exec "$ns" "${limit[@]}" "$rpc" -i "$([ "$ns" = "$C" ] && echo "$WC" || echo "$WD")" \
		--heartbeat-interval 1 -v "${@:4}" 2>"$work/$log" &
	pid_rpc=$!
	pids+=("$pid_rpc")
}

# ---------------------------------------------------------------- services
echo_service "$C" one 0.0.0.0 13001
echo_service "$C" two 0.0.0.0 13002
echo_service "$C" one 127.0.0.1 3000
echo_service "$D" two 127.0.0.1 3000
wait_for 10 listening "$C" 13001 && wait_for 10 listening "$C" 13002 &&
	wait_for 10 listening "$C" 3000 && wait_for 10 listening "$D" 3000 || die "services did not start"

# ================================================================ api port
section "api port: rps --api-port 8080 --bind 198.51.100.1"
# One relay worker (as for rpc2 below): a worker holds 6 fds of its own,
# which count in the relays' 20.
start_rps rps-a.log 40 -c "$work/server-a.conf" --bind 198.51.100.1 --api-port 8080 --heartbeat-timeout 30 --workers 1
check "rps API on 10.99.0.1:8080" contains "$work/rps-a.log" "API listening on 10.99.0.1:8080"
check "rps API on [fd00:99::1]:8080" contains "$work/rps-a.log" "API listening on [fd00:99::1]:8080"
check "rps logs its open file limit 40 and what it keeps" contains "$work/rps-a.log" \
	"open file limit 40: relays hold at most 20, keeping 20 for the API and the control plane"
# rpc only brings the tunnels up here: it looks for the API on port 80.
start_rpc "$C" rpc-a.log - -c "$work/client.conf" -r 127.0.0.1:3000-3000
pid_rpc_a=$pid_rpc
start_rpc "$D" rpc2-a.log - -c "$work/client2.conf" -r 127.0.0.1:3000-3000
pid_rpc2_a=$pid_rpc
api_url=http://10.99.0.1:8080/api/v1
api_up() {
	api "$1" GET "$api_url/port-mappings"
	[ "$code" = 200 ]
}
wait_for 30 api_up "$C" && pass "the client reaches the API at 10.99.0.1:8080" ||
	fail "the API at 10.99.0.1:8080: $code $body"
wait_for 30 api_up "$D" || fail "client2 does not reach the API at 10.99.0.1:8080: $code $body"
api "$C" GET "http://10.99.0.1/api/v1/port-mappings"
expect_eq "10.99.0.1:80 refuses (curl status 7)" "000 curl: (7)" "$code ${body:0:9}"
check "rpc keeps looking for the API on port 80" contains "$work/rpc-a.log" "waiting for server at http://10.99.0.1:80"
map 6000 13001
expect_answer "the client maps port 6000 to its 13001 by hand" 200 "Port mapping created successfully for port 6000"
ask "$O" 198.51.100.1 6000
expect_eq "198.51.100.1:6000 (the --bind address) reaches the service" "one: ping" "$answer"
check "198.51.100.3:6000 (the server's other IPv4 address) refuses" refused_at "$O" 198.51.100.3 6000
check "[2001:db8:1::1]:6000 (IPv6) refuses" refused_at "$O" 2001:db8:1::1 6000

# ================================================================ update
section "update: port 6000 posted again with a new target"
hold old "$O" 198.51.100.1 6000
wait_for 10 holding old && contains "$work/old.hold" "reply 0 one: ping" ||
	fail "the held connection did not get its answer: $(cat "$work/old.hold")"
map 6000 13002
expect_answer "port 6000 to 13002" 200 "Port mapping updated for port 6000"
check "rps logs the new target" contains "$work/rps-a.log" \
	"port 6000 of client 10.99.0.2 now goes to 10.99.0.2:13002 (0.0.0.0:13002)"
kill -USR1 "$hold_pid"
wait_for 10 count_above "$work/old.hold" "reply 0 " 1
count_of "$work/old.hold" "reply 0 one: ping"
expect_eq "the held connection still reaches the old target" 2 "$count"
ask "$O" 198.51.100.1 6000
expect_eq "a new connection reaches the new target" "two: ping" "$answer"
api "$C" GET "$api_url/port-mappings"
[[ $body == *'"remote_port":6000'* && $body == *'10.99.0.2:13002'* && $body != *13001* ]] &&
	pass "the list shows port 6000 once, to 13002" || fail "the list: $body"

# ================================================================ delete
section "delete: held connections are reset"
hold new "$O" 198.51.100.1 6000
wait_for 10 holding new && contains "$work/new.hold" "reply 0 two: ping" ||
	fail "the second held connection did not get its answer: $(cat "$work/new.hold")"
api "$C" DELETE "$api_url/port-mappings?port=6000"
expect_answer "DELETE port 6000" 200 "Port mapping deleted successfully for port 6000"
check "the connection to the new target is reset" wait_for 10 ended new 0 reset
check "the connection to the old target is reset" wait_for 10 ended old 0 reset
check "port 6000 refuses" refused_at "$O" 198.51.100.1 6000

# ================================================================ api limits
section "api limits: per peer, in all, idle timeout"
hold api-c "$C" 10.99.0.1 8080 --silent --count 8 --max-time 60
wait_for 10 contains "$work/api-c.hold" "held 8" || fail "the client could not open 8: $(cat "$work/api-c.hold")"
# api_held N: rps has accepted N API connections (a connected client's may
# still wait in the backlog, not counted yet, on a loaded machine).
api_held() {
	api_count=$(ip netns exec "$S" ss -Htnp state established 'sport = :8080' | grep -c '"rps"')
	[ "$api_count" = "$1" ]
}
wait_for 10 api_held 8 || fail "rps accepted $api_count of the client's 8 API connections"
api "$C" GET "http://[fd00:99::1]:8080/api/v1/port-mappings"
expect_eq "the client's 9th API connection (over IPv6) is closed at once" 000 "$code"
api "$D" GET "$api_url/port-mappings"
expect_eq "client2 is served meanwhile" 200 "$code"
hold api-d "$D" 10.99.0.1 8080 --silent --count 2 --max-time 60
wait_for 10 contains "$work/api-d.hold" "held 2" || fail "client2 could not open 2: $(cat "$work/api-d.hold")"
wait_for 10 api_held 10 || fail "rps accepted $api_count of the 10 API connections"
api "$D" GET "$api_url/port-mappings"
expect_eq "client2's 3rd: the 11th in all, past 10 (half of the 20 fds kept), is closed at once" 000 "$code"
all_ended() {
	local i
	for i in 0 1 2 3 4 5 6 7; do
		ended api-c $i eof || ended api-c $i reset || return 1
	done
	for i in 0 1; do
		ended api-d $i eof || ended api-d $i reset || return 1
	done
}
t0=$SECONDS
wait_for 30 all_ended && pass "the server closes the 10 idle API connections ($((SECONDS - t0)) s)" ||
	fail "idle API connections not closed: $(cat "$work/api-c.hold" "$work/api-d.hold")"
api "$D" GET "$api_url/port-mappings"
expect_eq "client2 is served again" 200 "$code"
api "$C" GET "http://[fd00:99::1]:8080/api/v1/port-mappings"
expect_eq "the client is served again over IPv6" 200 "$code"
stop rpc "$pid_rpc_a"
stop rpc2 "$pid_rpc2_a"
stop rps "$pid_rps"
expect_eq "rps exits 0" 0 "$stop_status"

# ================================================================ addresses
section "addresses: rps --bind 2001:db8:1::1 with 17 Addresses"
start_rps rps.log - -c "$work/server.conf" --bind 2001:db8:1::1 --heartbeat-timeout 3
check "rps warns that the API serves 16 of the 17 Addresses" contains "$work/rps.log" \
	"server.conf: the API listens on the first 16 of its 17 Addresses only"
count_of "$work/rps.log" "API listening on "
expect_eq "rps's API listens on 16 addresses" 16 "$count"
check "the API listens on the 16th, 10.99.14.1:80" listening_at "$S" 10.99.14.1:80
check "not on the 17th, 10.99.15.1:80" not_listening_at "$S" 10.99.15.1:80
api_url=http://10.99.0.1/api/v1
start_rpc "$C" rpc.log - -c "$work/client.conf" -r 127.0.0.1:3000-3000 -r 127.0.0.1:3999-4999 \
	-r 127.0.0.1:3998-4998 -r 127.0.0.1:3000-4997
pid_rpc_c=$pid_rpc
wait_for 30 registered rpc.log 3000 && wait_for 10 registered rpc.log 4999 &&
	wait_for 10 registered rpc.log 4998 && wait_for 10 registered rpc.log 4997 ||
	die "rpc did not register its 4 ports"
# rpc2 wants rpc's port 3000 too: refused now, retried every 30 s.
bg "$D" "${tool[@]}" notify "$work/notify.sock" "$work/notify.log"
wait_for 10 test -S "$work/notify.sock" || fail "no notify socket"
NOTIFY_SOCKET=$work/notify.sock start_rpc "$D" rpc2.log 40 -c "$work/client2.conf" \
	-r 127.0.0.1:3000-5000 -r 127.0.0.1:3000-3000 --workers 1
pid_rpc2=$pid_rpc
ask "$O" 2001:db8:1::1 3000
expect_eq "[2001:db8:1::1]:3000 (the --bind address) reaches rpc's service" "one: ping" "$answer"
check "[2001:db8:1::3]:3000 (the server's other IPv6 address) refuses" refused_at "$O" 2001:db8:1::3 3000
check "198.51.100.1:3000 (IPv4) refuses" refused_at "$O" 198.51.100.1 3000

# ================================================================ expiry
section "expiry: rpc stopped with SIGSTOP"
hold expire "$O" 2001:db8:1::1 3000
wait_for 10 holding expire && contains "$work/expire.hold" "reply 0 one: ping" ||
	fail "the held connection did not get its answer: $(cat "$work/expire.hold")"
count_of "$work/rpc.log" "port 3000 on the server now reaches "
before=$count
kill -STOP "$pid_rpc_c"
wait_for 20 contains "$work/rps.log" "client 10.99.0.2 silent for 3 s: removing its 4 mappings" &&
	pass "rps drops the silent client's 4 mappings" || fail "rps did not drop the silent client's mappings"
check "the held connection is reset" wait_for 10 ended expire 0 reset
kill -CONT "$pid_rpc_c"
wait_for 20 count_above "$work/rpc.log" "port 3000 on the server now reaches " "$before" &&
	pass "rpc, continued, registers port 3000 again" || fail "rpc did not register port 3000 again"
wait_for 10 answers "$O" 2001:db8:1::1 3000 "one: ping" && pass "port 3000 reaches rpc's service again" ||
	fail "port 3000: $answer"

# ================================================================ refused
section "refused: rpc2 wants rpc's port 3000"
wait_for 20 registered rpc2.log 5000 || fail "rpc2 did not register port 5000"
check "rpc2 logs the refusal and its slow retry" wait_for 10 contains "$work/rpc2.log" \
	"server refused port 3000: port 3000 is already mapped by another client; retrying in 30 s"
check "rps logs the refusal" contains "$work/rps.log" \
	"refused port 3000 to client 10.99.0.3: port 3000 is already mapped by another client"
text_of "$work/rpc2.log"
refused_line=${text%%"server refused port 3000"*}
refused_line=${refused_line##*$'\n'}
if ldd "$rpc" | grep -q libsystemd; then
	check "rpc2's status line: 1 refused" wait_for 10 contains "$work/notify.log" \
		"STATUS=1 of 2 mappings registered; 1 refused by the server (see the log)"
else
	echo "   (rpc built without systemd: no status line to check)"
fi

# ================================================================ local down
section "local down: nothing at rpc's local address; SYNs dropped"
# SYNs to rpc's tunnel port of port 4997 vanish too: rps's connect times out.
text_of "$work/rpc.log"
re="port 4997 on the server now reaches [^ ]* \\(tunnel port ([0-9]+)\\)"
[[ $text =~ $re ]] && tunnel_4997=${BASH_REMATCH[1]} || die "no tunnel port for 4997 in rpc's log"
in_ns "$C" nft add rule inet mapping_test in iifname "$WC" tcp dport "$tunnel_4997" drop ||
	die "cannot drop SYNs to the tunnel port $tunnel_4997"
hold timeout "$O" 2001:db8:1::1 4998 --silent
hold rps-timeout "$O" 2001:db8:1::1 4997 --silent
t_timeout=$SECONDS
wait_for 10 holding timeout && wait_for 10 holding rps-timeout ||
	fail "no connection to port 4998 or 4997: $(cat "$work/timeout.hold" "$work/rps-timeout.hold")"
ask "$O" 2001:db8:1::1 4999
expect_eq "port 4999 (nothing listens at 127.0.0.1:3999): the connection is reset" reset "$answer"
check "rpc logs why (debug)" wait_for 5 contains "$work/rpc.log" "connecting to 127.0.0.1:3999: Connection refused"

# ================================================================ open files
section "open files: rpc2 with 40"
check "rpc2 logs its open file limit 40" contains "$work/rpc2.log" \
	"open file limit 40: relays hold at most 20, keeping 20 for the API and the control plane"
# An idle relayed connection holds its 2 sockets; its pipes go back to the pool.
hold fds "$O" 2001:db8:1::1 5000 --count 16 --max-time 3
wait_for 30 contains "$work/fds.hold" "done" || fail "the 16 connections did not finish"
count_of "$work/fds.hold" "two: ping"
served=$count
count_of "$work/fds.hold" " reset"
[ "$served" -ge 1 ] && [ "$count" -ge 1 ] && [ $((served + count)) = 16 ] &&
	pass "of 16 connections, $served served, the other $count reset" ||
	fail "16 connections: $served served, $count reset"$'\n'"$(cat "$work/fds.hold")"
check "rpc2 logs that it is out of file descriptors for relays" contains "$work/rpc2.log" \
	"out of file descriptors for relays: refusing new connections on "
wait_for 10 answers "$O" 2001:db8:1::1 5000 "two: ping" && pass "served again once they are closed" ||
	fail "port 5000 after the connections closed: $answer"

section "local down: the daemons' connect timeouts"
wait_for 20 ended timeout 0 reset && pass "port 4998 (SYNs dropped): reset after $((SECONDS - t_timeout)) s" ||
	fail "port 4998: $(cat "$work/timeout.hold")"
check "rpc logs the timeout (debug)" contains "$work/rpc.log" "connecting to 127.0.0.1:3998: Connection timed out"
wait_for 20 ended rps-timeout 0 reset &&
	pass "port 4997 (SYNs to rpc's tunnel port dropped): reset after $((SECONDS - t_timeout)) s" ||
	fail "port 4997: $(cat "$work/rps-timeout.hold")"
check "rps logs the timeout (debug)" contains "$work/rps.log" \
	"connecting to 10.99.0.2:$tunnel_4997: Connection timed out"

# ================================================================ rpc stop
section "rpc stop: held connections reset; rpc2 takes port 3000"
hold stop "$O" 2001:db8:1::1 3000
wait_for 10 holding stop && contains "$work/stop.hold" "reply 0 one: ping" ||
	fail "the held connection did not get its answer: $(cat "$work/stop.hold")"
stop rpc "$pid_rpc_c"
expect_eq "rpc exits 0" 0 "$stop_status"
check "the held connection is reset" wait_for 10 ended stop 0 reset
check "rps logs port 3000 unmapped" contains "$work/rps.log" "port 3000 unmapped"
wait_for 40 registered rpc2.log 3000 && pass "rpc2 takes port 3000 on its retry" ||
	fail "rpc2 did not take port 3000"
text_of "$work/rpc2.log"
taken_line=${text%%"port 3000 on the server now reaches "*}
taken_line=${taken_line##*$'\n'}
secs() { date -d "${1:0:23}" +%s.%N; }
awk -v a="$(secs "$refused_line")" -v b="$(secs "$taken_line")" 'BEGIN { exit !(b - a >= 29) }' &&
	pass "on the slow timer: 30 s after the refusal, not before (${refused_line:11:12} to ${taken_line:11:12})" ||
	fail "rpc2 took port 3000 too early: refused at ${refused_line:11:12}, taken at ${taken_line:11:12}"
wait_for 10 answers "$O" 2001:db8:1::1 3000 "two: ping" && pass "port 3000 reaches rpc2's service" ||
	fail "port 3000: $answer"
if ldd "$rpc" | grep -q libsystemd; then
	check "rpc2's status line: 2 registered" wait_for 10 contains "$work/notify.log" \
		"STATUS=2 mappings registered"
fi
stop rpc2 "$pid_rpc2"
expect_eq "rpc2 exits 0" 0 "$stop_status"
stop rps "$pid_rps"
expect_eq "rps exits 0" 0 "$stop_status"

# ================================================================ policy
section "policy: rpc2's own lines in the server's config"
sed '/^AllowedIPs = 10.99.0.3\/32/a # wg-rp: AllowPorts = 3000,6000-6001\n# wg-rp: MaxMappings = 2\n# wg-rp: MaxConnsPerSource = 2' \
	"$work/server-a.conf" >"$work/server-policy.conf"
chmod 600 "$work/server-policy.conf"
# One worker: the cap per source is not split between workers.
start_rps rps-policy.log - -c "$work/server-policy.conf" --workers 1
start_rpc "$D" rpc2-policy.log - -c "$work/client2.conf" -r 127.0.0.1:3000-3000 \
	-r 127.0.0.1:3000-5000 -r 127.0.0.1:3000-6000 -r 127.0.0.1:3000-6001
pid_rpc2=$pid_rpc
check "rpc2 registers port 3000" wait_for 30 registered rpc2-policy.log 3000
check "port 5000 refused: not in its AllowPorts, though in --allow-ports" wait_for 30 \
	contains "$work/rpc2-policy.log" "server refused port 5000: port 5000 is not allowed for this client (its AllowPorts)"
check "port 6000 or 6001 refused: its MaxMappings" wait_for 30 \
	contains "$work/rps-policy.log" "this client already holds 2 mappings, the most allowed"
hold cap "$O" 198.51.100.1 3000 --count 3 --max-time 3
wait_for 30 contains "$work/cap.hold" "done" || fail "the 3 connections did not finish"
count_of "$work/cap.hold" "two: ping"
served=$count
count_of "$work/cap.hold" " reset"
[ "$served" = 2 ] && [ "$count" = 1 ] &&
	pass "of 3 connections from one source, 2 served, 1 reset (its MaxConnsPerSource 2, not 512)" ||
	fail "3 connections: $served served, $count reset"$'\n'"$(cat "$work/cap.hold")"
check "rps logs whose cap it was" contains "$work/rps-policy.log" \
	"refused a connection from 198.51.100.2 to [::]:3000: it has 2 already (its peer's MaxConnsPerSource)"
stop rpc2 "$pid_rpc2"
expect_eq "rpc2 exits 0" 0 "$stop_status"
stop rps "$pid_rps"
expect_eq "rps exits 0" 0 "$stop_status"
no_sanitizer_report
finish
