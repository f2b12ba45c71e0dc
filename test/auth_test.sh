#!/bin/bash
# wg-rp's API proof of the client's key, end to end: the real rps and rpc on
# userspace WireGuard in three network namespaces joined by veth pairs, with
# nothing linked to the root namespace.
#
#   netns $O (outside host)      netns $S (server: rps)             netns $C (client: rpc)
#   $VO  198.51.100.2/24  <-veth-> $VSO 198.51.100.1/24
#                                 $VSC 192.0.2.1/24     <-veth->  $VC 192.0.2.2/24
#                                 $WS  10.99.0.1/24  <== wg ==>   $WC 10.99.0.2/32
#                                      fd00:99::1/64                  fd00:99::2/128
#                                      UDP 51820, the client's        UDP 51821
#                                      endpoint and a keepalive
#                                                                 rpc's service: 127.0.0.1:3000
#                                                                 uid 65534 (another user of the
#                                                                 client host): 10.99.0.2:5555
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   twelve routes   rpc, with a dead proxy in http_proxy, HTTP_PROXY and
#                   ALL_PROXY, registers 12 routes at once, none refused
#   local user      uid 65534 on the client host re-posts rpc's port at its own
#                   listener, deletes it, heartbeats: 401, the port unchanged
#   signed by hand  with the client's key (wgrp-sign): accepted; replayed, old,
#                   tampered, another key's, malformed: 401
#   utf-8           GET /%ff and a long path of multibyte characters: JSON
#   stop            SIGTERM: the 12 removed together
#   stop early      SIGTERM while the 12 POSTs are in flight (nftables holds
#                   them back): no new ones, each DELETE after its POST
#   stale           kill -9 rpc, a new rpc with 2 routes removes the other 10
#   allow-unsigned  rps again with --allow-unsigned: unsigned accepted and
#                   logged once; one quota for the peer's IPv4 and IPv6; the
#                   local user's re-post repaired by rpc; signed still checked
#   slots           8 API connections held over IPv4: a 9th over IPv6 refused
#
# usage: auth_test.sh RPS RPC WGRP-SIGN
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
if [ $# -ne 3 ]; then
	echo "usage: $0 RPS RPC WGRP-SIGN" >&2
	exit 2
fi
rps=$(realpath "$1") rpc=$(realpath "$2") sign=$(realpath "$3")

tag=$$
O=wgrp-au-o-$tag S=wgrp-au-s-$tag C=wgrp-au-c-$tag
VO=auo$tag VSO=auso$tag VSC=ausc$tag VC=auc$tag
WS=auws$tag WC=auwc$tag
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"

# Daemons stopped with SIGTERM (they remove their interfaces), the rest
# killed, the namespaces deleted.
trap 'end_run "$O" "$S" "$C"' EXIT
trap 'exit 1' INT TERM

finish() {
	local f
	if [ "$failures" -gt 0 ]; then
		for f in "$work"/*.log; do
			echo "---- ${f##*/} (last 40 lines)"
			tail -n 40 "$f"
		done
	fi
	summary
}

# ---------------------------------------------------------------- namespaces
netns_new "$O" "$S" "$C" || die "cannot create the namespaces"
ip link add "$VO" netns "$O" type veth peer name "$VSO" netns "$S" &&
	ip link add "$VSC" netns "$S" type veth peer name "$VC" netns "$C" ||
	die "cannot create veth pairs"
ip -n "$O" addr add 198.51.100.2/24 dev "$VO" && ip -n "$O" link set "$VO" up &&
	ip -n "$S" addr add 198.51.100.1/24 dev "$VSO" && ip -n "$S" link set "$VSO" up &&
	ip -n "$S" addr add 192.0.2.1/24 dev "$VSC" && ip -n "$S" link set "$VSC" up &&
	ip -n "$C" addr add 192.0.2.2/24 dev "$VC" && ip -n "$C" link set "$VC" up ||
	die "cannot set addresses"

key_s=$(wg genkey) key_c=$(wg genkey) key_x=$(wg genkey)
pub_s=$(wg pubkey <<<"$key_s") pub_c=$(wg pubkey <<<"$key_c")
cat >"$work/server.conf" <<CONF
[Interface]
PrivateKey = $key_s
Address = 10.99.0.1/24, fd00:99::1/64
ListenPort = 51820

# The client's endpoint, with a keepalive: a new rps starts the handshake at
# once, where the client would wait 15 s for its stale session to time out
# (REKEY_TIMEOUT + KEEPALIVE_TIMEOUT) before the re-registration this test
# checks, as e2e does, could begin.
[Peer]
PublicKey = $pub_c
Endpoint = 192.0.2.2:51821
AllowedIPs = 10.99.0.2/32, fd00:99::2/128
PersistentKeepalive = 25
CONF
cat >"$work/client.conf" <<CONF
[Interface]
PrivateKey = $key_c
Address = 10.99.0.2/32, fd00:99::2/128
ListenPort = 51821

[Peer]
PublicKey = $pub_s
Endpoint = 192.0.2.1:51820
AllowedIPs = 10.99.0.0/24, fd00:99::/64
PersistentKeepalive = 25
CONF
echo "$key_c" >"$work/client.key"
echo "$key_x" >"$work/other.key"
chmod 600 "$work"/*.conf "$work"/*.key

# ---------------------------------------------------------------- helpers
# as_nobody CMD...: CMD in the client namespace as uid 65534, another user of
# the client host without any privilege.
as_nobody() {
	ip netns exec "$C" setpriv --reuid 65534 --regid 65534 --clear-groups "$@"
}
# call [-u] METHOD URL [CURL_ARGS...]: an API call from the client host (with
# -u as uid 65534); the status in $code, the body in $body, "message" in $msg.
call() {
	local run=(ip netns exec "$C") out re='"message":"(([^"\\]|\\.)*)"'
	if [ "$1" = -u ]; then
		run=(as_nobody)
		shift
	fi
	local method=$1 url=$2
	shift 2
	out=$("${run[@]}" curl -sS -g --noproxy '*' --max-time 10 -X "$method" -w '\n%{http_code}' "$@" "$url" 2>&1)
	code=${out##*$'\n'} body=${out%$'\n'*} msg=
	[[ $body =~ $re ]] && msg=${BASH_REMATCH[1]}
}
# signed KEYFILE METHOD TARGET BODY [TIMESTAMP]: the signature headers as
# curl arguments, in $hdr.
signed() {
	local line
	hdr=()
	while IFS= read -r line; do hdr+=(-H "$line"); done < <("$sign" "$1" "$pub_s" "$2" "$3" "$4" ${5:+"$5"})
}
# answer NAME STATUS MESSAGE: the last call's status and JSON envelope
# (MESSAGE a glob pattern).
answer() {
	local success=false
	[ "$2" -lt 300 ] && success=true
	# shellcheck disable=SC2053
	if [ "$code" == "$2" ] && [[ $msg == $3 ]] && [[ $body == '{"success":'"$success"',"message":'* ]] &&
		jq -e . >/dev/null 2>&1 <<<"$body"; then
		pass "$1: $code $msg"
	else
		fail "$1"$'\n'"  want: $2 {\"success\":$success,\"message\":\"$3\"...}"$'\n'"  got:  $code $body"
	fi
}
listening() { [ -n "$(ip netns exec "$1" ss -Htln "sport = :$2")" ]; }
count_of() {
	local rest
	text_of "$1"
	rest=${text//"$2"/}
	count=$(((${#text} - ${#rest}) / ${#2}))
}
registered() { contains "$work/$1" "port $2 on the server now reaches "; }
all_registered() {
	local p
	for p in "${@:2}"; do registered "$1" "$p" || return 1; done
}
# serves_rpc PORT: the outside host gets rpc's service through the server's PORT.
serves_rpc() {
	fetch "$O" "http://198.51.100.1:$1/"
	[ "$got" == "hello from rpc's service" ]
}
start_rps() {
	ip netns exec "$S" "$rps" -c "$work/server.conf" -i "$WS" --allow-ports 1024-65535 --max-mappings "$2" \
		--heartbeat-timeout 30 --check-interval 1 -v "${@:3}" 2>"$work/$1" &
	pid_rps=$!
	pids+=("$pid_rps")
	wait_for 30 contains "$work/$1" "ready" || die "rps did not get ready: $(cat "$work/$1")"
}
# start_rpc LOG PORT...: rpc with a route from 127.0.0.1:3000 to each PORT,
# a dead proxy in every variable curl reads.
start_rpc() {
	local log=$1 p args=()
	shift
	for p; do args+=(-r "127.0.0.1:3000-$p"); done
	ip netns exec "$C" env http_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 \
		https_proxy=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 all_proxy=http://127.0.0.1:9 \
		"$rpc" -c "$work/client.conf" -i "$WC" --heartbeat-interval 1 -v "${args[@]}" 2>"$work/$log" &
	pid_rpc=$!
	pids+=("$pid_rpc")
}

echo "hello from rpc's service" >"$work/page"
serve "$C" 127.0.0.1 3000 "$work/page"
# The other user's listener on the client's tunnel address, where it wants
# the server's public port to go.
as_nobody socat TCP-LISTEN:5555,bind=10.99.0.2,reuseaddr,fork,ip-freebind \
	SYSTEM:"printf 'HTTP/1.0 200 OK\\r\\n\\r\\nthe attacker\\n'" 2>>"$work/socat.log" &
pids+=("$!")
wait_for 10 listening "$C" 3000 && wait_for 10 listening "$C" 5555 || die "services did not start"
url=http://10.99.0.1/api/v1
twelve=(4000 4001 4002 4003 4004 4005 4006 4007 4008 4009 4010 4011)

# ================================================================ twelve routes
section "twelve routes, a dead proxy in rpc's environment"
start_rps rps.log 14
start_rpc rpc.log "${twelve[@]}"
wait_for 30 all_registered rpc.log "${twelve[@]}" && pass "rpc registered all 12 routes" ||
	fail "rpc did not register all 12 routes"
! contains "$work/rpc.log" "registering port" && ! contains "$work/rpc.log" "refused" &&
	pass "no registration failed or was refused" || fail "a registration failed: $(grep -e registering -e refused "$work/rpc.log")"
n=0
for p in "${twelve[@]}"; do serves_rpc "$p" && n=$((n + 1)); done
expect_eq "the outside host reaches rpc's service on all 12 ports" 12 "$n"
call GET "$url/port-mappings"
[[ $body == *'"target":"10.99.0.2:'* && $body == *'"signed":true'* ]] &&
	pass "rps lists them signed, with targets on rpc's own tunnel address" || fail "list: $body"

# ================================================================ local user
section "another user of the client host"
forged='{"local_addr":"127.0.0.1:3000","remote_port":4000,"client_ip":"10.99.0.2","client_port":5555}'
call -u POST "$url/port-mappings" -H "Content-Type: application/json" -d "$forged"
answer "uid 65534 re-posts port 4000 at its own listener" 401 "this request must be signed with the client's WireGuard key*"
call -u DELETE "$url/port-mappings?port=4000"
answer "uid 65534 deletes port 4000" 401 "this request must be signed*"
call -u POST "$url/heartbeat" -d '{}'
answer "uid 65534 heartbeats" 401 "this request must be signed*"
call -u GET "$url/port-mappings"
answer "uid 65534 may list (a GET changes nothing)" 200 "12 mappings"
nap 1.5 # a heartbeat of rpc's, and its check of the targets
serves_rpc 4000 && pass "port 4000 still serves rpc's service" || fail "port 4000 now gives: $got"

# ================================================================ signed by hand
section "requests signed by hand with the client's key"
hb='{"client_ip":"10.99.0.2"}'
signed "$work/client.key" POST /api/v1/heartbeat "$hb"
call POST "$url/heartbeat" "${hdr[@]}" -d "$hb"
answer "a signed heartbeat" 200 "Heartbeat received"
call POST "$url/heartbeat" "${hdr[@]}" -d "$hb"
answer "the same request again (a replay)" 401 "replayed request: nonce already used"
signed "$work/client.key" POST /api/v1/heartbeat "$hb" $(($(date +%s) - 400))
call POST "$url/heartbeat" "${hdr[@]}" -d "$hb"
answer "signed 400 s ago" 401 "timestamp * is more than 300 s from the server's clock*"
signed "$work/client.key" POST /api/v1/port-mappings "$forged"
call POST "$url/port-mappings" "${hdr[@]}" -d "${forged/5555/5556}"
answer "a body changed after signing" 401 "the signature does not match this request and the client's key"
signed "$work/client.key" POST /api/v1/heartbeat "$hb"
call POST "$url/heartbeat?x=1" "${hdr[@]}" -d "$hb"
answer "a query added after signing" 401 "the signature does not match*"
signed "$work/other.key" POST /api/v1/heartbeat "$hb"
call POST "$url/heartbeat" "${hdr[@]}" -d "$hb"
answer "signed with another key" 401 "the signature does not match*"
call POST "$url/heartbeat" -H "X-WGRP-Timestamp: 1" -H "X-WGRP-Nonce: x" -H "X-WGRP-Signature: y" -d "$hb"
answer "malformed signature headers" 401 "invalid signature headers: *"
call POST "$url/heartbeat" -H "X-WGRP-Signature: y" -d "$hb"
answer "one header alone" 401 "invalid signature headers: missing header X-WGRP-Timestamp"
signed "$work/client.key" DELETE "/api/v1/port-mappings?port=4999" ""
call DELETE "$url/port-mappings?port=4999" "${hdr[@]}"
answer "a signed DELETE gets past the check" 404 "no mapping for port 4999"

# ================================================================ utf-8
section "answers are JSON whatever the path"
call GET "http://10.99.0.1/%ff"
answer "GET /%ff" 404 "no such endpoint: /?"
call GET "http://10.99.0.1/x$(printf '%%c3%%a9%.0s' $(seq 200))"
answer "GET of 200 two-byte characters, cut short in the message" 404 "no such endpoint: /xé*é"
call POST "http://10.99.0.1/%ff%fe" -d '{}'
answer "POST /%ff%fe" 404 "no such endpoint: /??"

# ================================================================ stop
section "SIGTERM: the twelve removed together"
stop rpc "$pid_rpc"
expect_eq "rpc exits 0" 0 "$stop_status"
count_of "$work/rpc.log" " removed from the server"
expect_eq "rpc logs 12 ports removed" 12 "$count"
count_of "$work/rps.log" " unmapped"
expect_eq "rps logs 12 ports unmapped" 12 "$count"
n=0
for p in "${twelve[@]}"; do listening "$S" "$p" && n=$((n + 1)); done
expect_eq "rps listens on none of them" 0 "$n"

# ================================================================ stop early
section "SIGTERM while registrations are in flight"
# rps does not get the registrations for now: their first bytes are dropped
# ("POST /api/v1/por"), so TCP sends them again later. Heartbeats go through.
in_ns "$S" nft -f - <<NFT || fail "cannot add the nftables rule"
table inet wgrp-au-$tag {
	chain in {
		type filter hook input priority filter;
		iifname "$WS" tcp dport 80 @ih,0,128 0x504f5354202f6170692f76312f706f72 drop
	}
}
NFT
start_rpc rpc-early.log "${twelve[@]}"
wait_for 30 contains "$work/rpc-early.log" "is reachable" || fail "rpc did not reach the server"
nap 0.3
kill -TERM "$pid_rpc"
wait_for 5 contains "$work/rpc-early.log" "stopping on SIGTERM"
in_ns "$S" nft delete table inet "wgrp-au-$tag"
wait_for 15 dead "$pid_rpc" || fail "rpc did not exit within 15 s of SIGTERM"
wait "$pid_rpc"
expect_eq "rpc exits 0" 0 "$?"
text_of "$work/rpc-early.log"
after=${text#*stopping on SIGTERM}
[[ $after == *"port 4000 on the server now reaches"* ]] &&
	pass "a registration was answered after SIGTERM: it was in flight" ||
	fail "no registration was in flight at SIGTERM"
[[ $after != *"gave up waiting"* ]] && pass "rpc did not give up waiting" || fail "rpc gave up waiting"
count_of "$work/rpc-early.log" " removed from the server"
expect_eq "rpc removed the 12 once registered" 12 "$count"
n=0
for p in "${twelve[@]}"; do listening "$S" "$p" && n=$((n + 1)); done
expect_eq "no port is left on rps: every DELETE came after its POST" 0 "$n"

# ================================================================ stale
section "kill -9, then a new rpc with fewer routes"
start_rpc rpc2.log "${twelve[@]}"
wait_for 30 all_registered rpc2.log "${twelve[@]}" || fail "rpc did not register the 12 again"
kill -KILL "$pid_rpc"
wait "$pid_rpc" 2>/dev/null
listening "$S" 4011 && pass "after kill -9 rps still holds port 4011" || fail "rps dropped port 4011"
start_rpc rpc3.log 4000 4001
t0=$SECONDS
wait_for 15 contains "$work/rpc3.log" "port 4011 on the server is ours but no route wants it" &&
	pass "the new rpc removes what no route wants ($((SECONDS - t0)) s)" || fail "the new rpc left the stale mappings"
stale_gone() {
	call GET "$url/port-mappings"
	[ "$msg" == "2 mappings" ]
}
wait_for 10 stale_gone && pass "rps holds only 4000 and 4001" || fail "rps still holds: $body"
refuses "$O" 198.51.100.1 4005 && pass "port 4005 refuses" || fail "port 4005 still open"
wait_for 10 registered rpc3.log 4001 && serves_rpc 4001 && pass "port 4001 serves rpc's service" ||
	fail "port 4001: $got"

# ================================================================ allow-unsigned
section "rps --allow-unsigned"
stop rps "$pid_rps"
start_rps rps2.log 4 --allow-unsigned
wait_for 30 stale_gone && pass "rpc registered its 2 routes with the new rps" ||
	fail "rpc did not register again: $body"
for _ in 1 2 3; do
	call POST "$url/heartbeat" -d "$hb"
done
answer "an unsigned heartbeat" 200 "Heartbeat received"
count_of "$work/rps2.log" "sends unsigned requests: accepted (--allow-unsigned)"
expect_eq "rps logs it once for the client" 1 "$count"
call POST "$url/port-mappings" -d '{"local_addr":"127.0.0.1:3000","remote_port":4100,"client_port":5555}'
answer "third mapping of the peer, over IPv4" 200 "Port mapping created successfully for port 4100"
call POST "http://[fd00:99::1]/api/v1/port-mappings" -d '{"local_addr":"127.0.0.1:3000","remote_port":4101,"client_port":5555}'
answer "fourth, over IPv6" 200 "Port mapping created successfully for port 4101"
call POST "http://[fd00:99::1]/api/v1/port-mappings" -d '{"local_addr":"127.0.0.1:3000","remote_port":4102,"client_port":5555}'
answer "fifth, over IPv6: one quota for both addresses of the peer" 403 "this client already holds 4 mappings, the most allowed"
call POST "$url/port-mappings" -d '{"local_addr":"127.0.0.1:3000","remote_port":4102,"client_port":5555}'
answer "fifth, over IPv4" 403 "this client already holds 4 mappings, the most allowed"
nap 1.5
call GET "$url/port-mappings"
[[ $msg == "3 mappings" && $body == *'"remote_port":4100'*'"signed":false'* ]] &&
	pass "rpc leaves a mapping made by hand (unsigned) alone" || fail "list: $body"

count_of "$work/rpc3.log" "port 4000 on the server now reaches "
before=$count
call -u POST "$url/port-mappings" -d "$forged"
answer "uid 65534 re-posts port 4000 (unsigned, accepted)" 200 "Port mapping updated for port 4000"
wait_for 10 contains "$work/rpc3.log" "port 4000 on the server goes to 10.99.0.2:5555, not to this rpc: registering it again" &&
	pass "rpc sees port 4000 pointing elsewhere within a heartbeat" || fail "rpc did not notice the changed target"
count_above() {
	count_of "$1" "$2"
	[ "$count" -gt "$3" ]
}
wait_for 10 count_above "$work/rpc3.log" "port 4000 on the server now reaches " "$before" && serves_rpc 4000 &&
	pass "port 4000 serves rpc's service again" || fail "port 4000 gives: $got"

signed "$work/client.key" POST /api/v1/heartbeat "$hb"
call POST "$url/heartbeat" "${hdr[@]}" -d "$hb"
answer "a signed heartbeat" 200 "Heartbeat received"
call POST "$url/heartbeat" "${hdr[@]}" -d "$hb"
answer "its replay, even with --allow-unsigned" 401 "replayed request: nonce already used"
signed "$work/other.key" POST /api/v1/heartbeat "$hb"
call POST "$url/heartbeat" "${hdr[@]}" -d "$hb"
answer "another key's signature, even with --allow-unsigned" 401 "the signature does not match*"

# ================================================================ slots
section "API connections: 8 at a time per peer, whatever its address"
# Eight held over IPv4 (rpc's idle keep-alive connections count too).
ip netns exec "$C" bash -c 'for i in 1 2 3 4 5 6 7 8; do exec {fd}<>/dev/tcp/10.99.0.1/80; done; sleep 3' &
holder=$!
pids+=("$holder")
nap 1
call GET "http://[fd00:99::1]/api/v1/port-mappings"
[ "$code" = 000 ] && pass "a ninth, over the peer's IPv6 address, is closed at once: $body" ||
	fail "a ninth connection of the peer was served: $code $body"
wait "$holder"
slots_free() {
	call GET "http://[fd00:99::1]/api/v1/port-mappings"
	[ "$code" = 200 ]
}
wait_for 10 slots_free && pass "served again once they are closed" || fail "still refused: $code $body"
wait_for 15 serves_rpc 4000 && pass "rpc's port 4000 still serves" || fail "port 4000: $got"

stop rpc "$pid_rpc"
expect_eq "rpc exits 0" 0 "$stop_status"
stop rps "$pid_rps"
expect_eq "rps exits 0" 0 "$stop_status"
finish
