#!/bin/bash
# rps reloads its config on SIGHUP without dropping anything it keeps: the
# real rps and rpc, in namespaces joined by veth pairs with nothing linked to
# the root namespace.
#
#   netns $O (outside host)      netns $S (server: rps)          clients (rpc each)
#   $VO  198.51.100.2/24  <-veth-> $VSO 198.51.100.1/24
#                                 $VSA 192.0.2.1/24    <-veth->  $A: $VA 192.0.2.2/24
#                                 $VSB 203.0.113.1/24  <-veth->  $B: $VB 203.0.113.2/24
#                                 $VSD 100.64.0.1/24   <-veth->  $D: $VD 100.64.0.2/24
#                                 $WS  10.99.0.1/24  <== wg ==>  A 10.99.0.2, B 10.99.0.3,
#                                                                D 10.99.0.5; C (10.99.0.4) is a
#                                                                [Peer] with no rpc behind it
#   rpc A: -r 127.0.0.1:3000-3000 (a large file) -r 127.0.0.1:3001-3001 (a page)
#   rpc B: -r 127.0.0.1:3100-3100 (says hello, then holds the connection open)
#   rpc D: "# wg-rp: Route = 127.0.0.1:3000-3200" (a page) in its config,
#          started once its [Peer] is added; then its routes reloaded
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   start     rps, rpc A and B; every port reachable from outside
#   reload    while the outside host downloads the large file through A and
#             holds a connection through B: B's [Peer] removed, D's added,
#             C's AllowedIPs changed, SIGHUP. A's handshake is unchanged, B's
#             mapping is gone and its connection reset, C's new network is
#             routed, the download ends byte-exact (sha256); rpc D registers
#   broken    a config with errors: every one logged with file:line, nothing
#             changed, A still serves
#   refused   Address changed: refused with the reason, nothing changed
#   policy    A named, its AllowPorts narrowed: its port 3001 goes, nothing is
#             sent to the device (A's handshake unchanged)
#   rpc       D's Route lines: one added (registered, reachable), one
#             retargeted to another service (not registered again), one
#             removed (gone from rps); a bad one refused with file:line; its
#             server's PersistentKeepalive changed on its device
#   live      ListenPort, FwMark and MTU changed live
# At the end: rps exits 0 on SIGTERM, and no sanitizer report in any log.
#
# usage: reload_test.sh RPS RPC kernel|userspace
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
daemon_args "$@"
command -v wg >/dev/null || skip_test "needs wg (Debian: wireguard-tools)"

tag=$$
O=wgrp-rl-o-$tag S=wgrp-rl-s-$tag A=wgrp-rl-a-$tag B=wgrp-rl-b-$tag D=wgrp-rl-d-$tag
VO=rlo$tag VSO=rlso$tag VSA=rlsa$tag VA=rla$tag VSB=rlsb$tag VB=rlb$tag VSD=rlsd$tag VD=rld$tag
# UAPI sockets share /var/run/wireguard: a name of its own for each.
WS=rlws$tag WA=rlwa$tag WB=rlwb$tag WD=rlwd$tag
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"
trap 'end_run "$O" "$S" "$A" "$B" "$D"' EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- namespaces
netns_new "$O" "$S" "$A" "$B" "$D" || die "cannot create the namespaces"
ip link add "$VO" netns "$O" type veth peer name "$VSO" netns "$S" &&
	ip link add "$VSA" netns "$S" type veth peer name "$VA" netns "$A" &&
	ip link add "$VSB" netns "$S" type veth peer name "$VB" netns "$B" &&
	ip link add "$VSD" netns "$S" type veth peer name "$VD" netns "$D" ||
	die "cannot create veth pairs"
netns_addr "$O" "$VO" 198.51.100.2/24 && netns_addr "$S" "$VSO" 198.51.100.1/24 &&
	netns_addr "$S" "$VSA" 192.0.2.1/24 && netns_addr "$A" "$VA" 192.0.2.2/24 &&
	netns_addr "$S" "$VSB" 203.0.113.1/24 && netns_addr "$B" "$VB" 203.0.113.2/24 &&
	netns_addr "$S" "$VSD" 100.64.0.1/24 && netns_addr "$D" "$VD" 100.64.0.2/24 ||
	die "cannot set addresses"

# ---------------------------------------------------------------- configs
key_s=$(wg genkey)
pub_s=$(wg pubkey <<<"$key_s")
for c in a b c d; do
	declare "key_$c=$(wg genkey)"
	k=key_$c
	declare "pub_$c=$(wg pubkey <<<"${!k}")"
done
# server_conf [INTERFACE_EXTRA]: the server's config with the peers in
# $peers, and what INTERFACE_EXTRA adds to [Interface] (ListenPort etc.).
server_conf() {
	printf '[Interface]\nPrivateKey = %s\nAddress = %s\n%s\n' "$key_s" "${address:-10.99.0.1/24}" \
		"${1:-ListenPort = 51820}" >"$work/server.conf.new"
	printf '%s' "$peers" >>"$work/server.conf.new"
	chmod 600 "$work/server.conf.new"
	mv "$work/server.conf.new" "$work/server.conf"
}
peer_a=$'\n[Peer]\nPublicKey = '$pub_a$'\nAllowedIPs = 10.99.0.2/32\n'
peer_b=$'\n[Peer]\nPublicKey = '$pub_b$'\nAllowedIPs = 10.99.0.3/32\n'
peer_c=$'\n[Peer]\nPublicKey = '$pub_c$'\nAllowedIPs = 10.99.0.4/32\n'
peer_c2=$'\n[Peer]\nPublicKey = '$pub_c$'\nAllowedIPs = 10.99.0.4/32, 10.99.4.0/24\n'
peer_d=$'\n[Peer]\nPublicKey = '$pub_d$'\nAllowedIPs = 10.99.0.5/32\n'
peers=$peer_a$peer_b$peer_c
server_conf
# client_conf NAME KEY ADDRESS ENDPOINT
client_conf() {
	printf '[Interface]\nPrivateKey = %s\nAddress = %s/32\n\n[Peer]\nPublicKey = %s\n' \
		"$2" "$3" "$pub_s" >"$work/$1.conf"
	printf 'Endpoint = %s:51820\nAllowedIPs = 10.99.0.0/24\nPersistentKeepalive = %s\n' "$4" \
		"${keepalive:-25}" >>"$work/$1.conf"
	chmod 600 "$work/$1.conf"
}
client_conf a "$key_a" 10.99.0.2 192.0.2.1
client_conf b "$key_b" 10.99.0.3 203.0.113.1
client_conf d "$key_d" 10.99.0.5 100.64.0.1
# d_conf ROUTE...: D's config with its routes in it, as "# wg-rp: Route" lines.
d_conf() {
	local route
	client_conf d "$key_d" 10.99.0.5 100.64.0.1
	for route; do
		sed -i "3a # wg-rp: Route = $route" "$work/d.conf"
	done
}
d_conf 127.0.0.1:3000-3200

# ---------------------------------------------------------------- services
listening() { [ -n "$(ip netns exec "$1" ss -Htln "sport = :$2")" ]; }
# The download spans the reloads: 40 MB at 4 MB/s; emulated (kernel), 8 MB
# at 1 MB/s.
size_mb=40 rate=4M
[ "$expect" = kernel ] && size_mb=8 rate=1M
head -c $((size_mb * 1024 * 1024)) /dev/urandom >"$work/big"
echo "hello from A" >"$work/page-a"
echo "hello from D" >"$work/page-d"
echo "hello again from D" >"$work/page-d2"
echo "hello from D's second service" >"$work/page-d3"
serve "$A" 127.0.0.1 3000 "$work/big"
serve "$A" 127.0.0.1 3001 "$work/page-a"
serve "$D" 127.0.0.1 3000 "$work/page-d"
serve "$D" 127.0.0.1 3002 "$work/page-d2"
serve "$D" 127.0.0.1 3003 "$work/page-d3"
# B's service greets, then holds the connection until the other side goes.
ip netns exec "$B" socat "TCP-LISTEN:3100,bind=127.0.0.1,reuseaddr,fork" \
	SYSTEM:'echo hello from B; exec cat >/dev/null' 2>>"$work/socat.log" &
pids+=("$!")
wait_for 10 listening "$A" 3001 && wait_for 10 listening "$B" 3100 &&
	wait_for 10 listening "$D" 3000 || die "services did not start"

# ---------------------------------------------------------------- daemons
ip netns exec "$S" "$rps" -c "$work/server.conf" -i "$WS" -v 2>"$work/rps.log" &
pid_rps=$!
pids+=("$pid_rps")
# start_rpc NAME NETNS IFNAME ROUTE...: rpc NAME, logging to NAME.log.
start_rpc() {
	ip netns exec "$2" "$rpc" -c "$work/$1.conf" -i "$3" --heartbeat-interval 1 -v "${@:4}" \
		2>"$work/rpc-$1.log" &
	pids+=("$!")
}
registered() { contains "$work/rpc-$1.log" "port $2 on the server now reaches "; }
count_above() {
	count_of "$1" "$2"
	[ "$count" -gt "$3" ]
}
# reloads NAME LOG PID [WHAT]: SIGHUP to PID, then LOG has one more line
# saying it reloaded (or WHAT: "reload failed").
reloads() {
	local what=${4:-"reloaded $work/"} before
	count_of "$2" "$what"
	before=$count
	kill -HUP "$3"
	check "$1" wait_for 30 count_above "$2" "$what" "$before"
}
# reload_command NAME NETNS PROGRAM IFNAME STATUS TEXT: `PROGRAM reload -i
# IFNAME` (as systemd's ExecReload runs it) exits STATUS, its output has TEXT.
reload_command() {
	local out status
	out=$(ip netns exec "$2" "$3" reload -i "$4" 2>&1)
	status=$?
	expect_eq "$1: exit status" "$5" "$status"
	[[ $out == *"$6"* ]] && pass "$1: says $6" || fail "$1: says $6"$'\n'"  got: $out"
}

# ================================================================ start
section "start: rps, rpc A and B"
wait_for 30 contains "$work/rps.log" "ready" || die "rps did not get ready: $(cat "$work/rps.log")"
check "rps brought $WS up ($expect WireGuard)" \
	contains "$work/rps.log" "interface $WS is up ($expect WireGuard)"
start_rpc a "$A" "$WA" -r 127.0.0.1:3000-3000 -r 127.0.0.1:3001-3001
start_rpc b "$B" "$WB" -r 127.0.0.1:3100-3100
wait_for 60 registered a 3001 && wait_for 30 registered a 3000 && wait_for 60 registered b 3100 ||
	die "the clients did not register: $(tail -n 5 "$work/rpc-a.log" "$work/rpc-b.log")"
expect_page "outside fetches A's page (port 3001)" "$O" http://198.51.100.1:3001/ "hello from A"

# wg_show FIELD: `wg show $WS FIELD` in $S.
wg_show() { ip netns exec "$S" wg show "$WS" "$1"; }
# handshake_of KEY: the peer's latest handshake (Unix seconds, 0: none).
handshake_of() { wg_show latest-handshakes | awk -v k="$1" '$1 == k { print $2 }'; }
has_handshake() { [ "$(handshake_of "$1")" -gt 0 ]; }
wait_for 10 has_handshake "$pub_a" || fail "A has no handshake with rps"
hs_a=$(handshake_of "$pub_a")

# ================================================================ reload
section "reload: B removed, D added, C changed, during a download through A"
want=$(sha256sum <"$work/big")
in_ns "$O" curl -sS --max-time 120 --limit-rate $rate -o "$work/download" http://198.51.100.1:3000/ \
	2>>"$work/curl.log" &
pid_download=$!
pids+=("$pid_download")
in_ns "$O" socat -u TCP:198.51.100.1:3100 "OPEN:$work/held,creat,trunc" 2>>"$work/held.log" &
pid_held=$!
pids+=("$pid_held")
started() { [ -s "$work/download" ] && contains "$work/held" "hello from B"; }
wait_for 20 started || fail "the download and the held connection did not start"

peers=$peer_a$peer_c2$peer_d
server_conf
reloads "rps reloads" "$work/rps.log" "$pid_rps"
check "the download was still going on after the reload" running "$pid_download"
# Lines: [Interface] 1-4, then a [Peer] every 4 lines from 6.
check "rps logs B's [Peer] removed" contains "$work/rps.log" "[Peer] $pub_b ($work/server.conf:10) removed"
check "rps logs D's [Peer] added" contains "$work/rps.log" "[Peer] $pub_d ($work/server.conf:14) added"
check "rps logs C's [Peer] changed" \
	contains "$work/rps.log" "[Peer] $pub_c ($work/server.conf:10) changed: AllowedIPs"
check "rps logs B's mapping dropped" \
	contains "$work/rps.log" "port 3100 of client 10.99.0.3 unmapped: its [Peer] was removed"
held_ended() { ! running "$pid_held"; }
check "the connection held through B was reset" wait_for 15 held_ended
check "B's port 3100 refuses connections" refuses "$O" 198.51.100.1 3100
peers_now=$(wg_show peers | sort | tr '\n' ' ')
expect_eq "the device's peers: A, C, D" "$(printf '%s\n' "$pub_a" "$pub_c" "$pub_d" | sort | tr '\n' ' ')" \
	"$peers_now"
expect_eq "C's allowed IPs on the device" "$pub_c	10.99.0.4/32 10.99.4.0/24" \
	"$(wg_show allowed-ips | grep "^$pub_c")"
check "a route to C's new network" \
	test -n "$(ip -n "$S" route show 10.99.4.0/24 dev "$WS")"
expect_eq "A's latest handshake unchanged (no new handshake)" "$hs_a" "$(handshake_of "$pub_a")"
download_done() { ! running "$pid_download"; }
wait_for 60 download_done
expect_eq "the download through A, across the reload: sha256" "$want" "$(sha256sum <"$work/download")"
expect_eq "A's latest handshake still unchanged" "$hs_a" "$(handshake_of "$pub_a")"
start_rpc d "$D" "$WD"
wait_for 60 registered d 3200 && pass "rpc D, added by the reload, registers port 3200" ||
	fail "rpc D did not register: $(tail -n 5 "$work/rpc-d.log")"
expect_page "outside fetches D's page (port 3200)" "$O" http://198.51.100.1:3200/ "hello from D"

# reload_fails NAME: SIGHUP, then the failure in rps.log and nothing changed.
reload_fails() {
	reloads "$1: the reload fails" "$work/rps.log" "$pid_rps" "reload failed"
	expect_eq "$1: the device's peers unchanged" "$peers_now" "$(wg_show peers | sort | tr '\n' ' ')"
	expect_page "$1: outside still fetches A's page" "$O" http://198.51.100.1:3001/ "hello from A"
	expect_page "$1: outside still fetches D's page" "$O" http://198.51.100.1:3200/ "hello from D"
}

# ================================================================ broken
section "broken: a config with errors changes nothing"
peers=$peer_a$peer_d$'\n[Peer]\nPublicKey = not-a-key\nAllowedIPs = 10.99.0.6/32\nColour = blue\n'
server_conf
reload_fails "broken config"
check "rps logs the bad key with file:line" \
	contains "$work/rps.log" "$work/server.conf:15: PublicKey: "
check "rps logs the unknown key with file:line" \
	contains "$work/rps.log" "$work/server.conf:17: unknown key \"Colour\""
reload_command "rps reload, the same" "$S" "$rps" "$WS" 1 "reload failed (2 errors): still running on the config loaded before"
reload_command "rps reload tells each error" "$S" "$rps" "$WS" 1 "error: $work/server.conf:17: unknown key \"Colour\""

# ================================================================ refused
section "refused: an Address change needs a restart"
peers=$peer_a$peer_c2$peer_d
address="10.99.0.1/24, 10.98.0.1/24" server_conf
reload_fails "Address changed"
check "rps says why" contains "$work/rps.log" \
	"$work/server.conf: Address changed: restart rps to apply it; nothing was reloaded"

# ================================================================ policy
section "policy: a peer's name and AllowPorts, rps's own"
peer_a2=$'\n[Peer]\n# alice\nPublicKey = '$pub_a$'\nAllowedIPs = 10.99.0.2/32\n# wg-rp: AllowPorts = 3000\n'
peers=$peer_a2$peer_c2$peer_d
server_conf
reloads "rps reloads" "$work/rps.log" "$pid_rps"
check "rps logs A's [Peer] changed by name" \
	contains "$work/rps.log" "[Peer] alice ($work/server.conf:6) changed: name, AllowPorts"
check "rps logs A's port 3001 dropped" contains "$work/rps.log" \
	"port 3001 of client 10.99.0.2 unmapped: not in its [Peer]'s AllowPorts any more"
check "A's port 3001 refuses connections" refuses "$O" 198.51.100.1 3001
expect_eq "A's latest handshake unchanged (nothing sent to the device)" "$hs_a" \
	"$(handshake_of "$pub_a")"

# ================================================================ rpc
section "rpc: D's routes in its config, reloaded"
pid_rpc_d=${pids[-1]}
count_of "$work/rps.log" "port 3200 "
mapped_3200=$count
keepalive=15 d_conf 127.0.0.1:3002-3200 127.0.0.1:3003-3201
reloads "rpc D reloads" "$work/rpc-d.log" "$pid_rpc_d"
check "rpc D logs one route added and one changed" \
	contains "$work/rpc-d.log" "1 route added, 0 removed, 1 changed"
check "rpc D logs the server's [Peer] changed" \
	contains "$work/rpc-d.log" "[Peer] $pub_s ($work/d.conf:7) changed: PersistentKeepalive"
expect_eq "rpc D's device keeps alive every 15 s" "$pub_s	15" \
	"$(ip netns exec "$D" wg show "$WD" persistent-keepalive)"
check "rpc D logs port 3200's new service" \
	contains "$work/rpc-d.log" "port 3200 now reaches 127.0.0.1:3002"
wait_for 30 registered d 3201 && pass "rpc D registers the added port 3201" ||
	fail "rpc D did not register 3201: $(tail -n 5 "$work/rpc-d.log")"
expect_page "outside fetches D's second service (port 3201)" "$O" http://198.51.100.1:3201/ \
	"hello from D's second service"
expect_page "outside fetches port 3200's new service" "$O" http://198.51.100.1:3200/ \
	"hello again from D"
count_of "$work/rps.log" "port 3200 "
expect_eq "port 3200 retargeted without registering it again" "$mapped_3200" "$count"
d_conf 127.0.0.1:3002-3200
reload_command "rpc reload -i (the command): D reloads again" "$D" "$rpc" "$WD" 0 "reloaded $work/d.conf"
check "rpc D logs one route removed" contains "$work/rpc-d.log" "0 routes added, 1 removed"
check "rps unmaps port 3201" wait_for 15 contains "$work/rps.log" "port 3201 unmapped"
check "port 3201 refuses connections" refuses "$O" 198.51.100.1 3201
d_conf 127.0.0.1:3002-3200 127.0.0.1:99999-3202
reloads "rpc D's reload with a bad Route line fails" "$work/rpc-d.log" "$pid_rpc_d" \
	"reload failed (1 error)"
check "rpc D names the bad Route line with file:line" \
	contains "$work/rpc-d.log" "$work/d.conf:4: Route: "
expect_page "outside still fetches port 3200" "$O" http://198.51.100.1:3200/ "hello again from D"

# ================================================================ live
section "live: ListenPort, FwMark and MTU"
server_conf $'ListenPort = 51821\nFwMark = 0x42\nMTU = 1380'
reload_command "rps reload (the command) applies it" "$S" "$rps" "$WS" 0 "reloaded $work/server.conf"
check "rps logs the new ListenPort" contains "$work/rps.log" "ListenPort changed from 51820 to 51821"
expect_eq "the device listens on 51821" 51821 "$(wg_show listen-port)"
expect_eq "the device's fwmark" 0x42 "$(wg_show fwmark)"
check "the interface's MTU is 1380" test -n "$(ip -n "$S" link show dev "$WS" | grep -w 'mtu 1380')"
expect_eq "the device's peers unchanged" "$peers_now" "$(wg_show peers | sort | tr '\n' ' ')"

# ================================================================ end
section "end"
stop rps "$pid_rps"
expect_eq "rps exits 0 on SIGTERM" 0 "$stop_status"
no_sanitizer_report
finish
