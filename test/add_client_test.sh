#!/bin/bash
# rps add-client and remove-client as an admin uses them: a client added to
# a server config in one command, its printed config used as is by a real
# rpc, which publishes a port the outside host reaches; then removed, the
# file byte for byte as before. In namespaces joined by veth pairs, with
# nothing linked to the root namespace.
#
#   netns $O (outside host)      netns $S (server: rps)             netns $C (client: rpc)
#   $VO  198.51.100.2/24  <-veth-> $VSO 198.51.100.1/24
#                                 $VSC 192.0.2.1/24     <-veth->  $VC 192.0.2.2/24
#                                 $WS  10.99.0.1/24     <== wg ==> $WC (alice's printed config:
#                                      fd00:99::1/64                   10.99.0.3/32, fd00:99::2/128)
#   The server's config has a peer bob (10.99.0.2/32) already.
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   add      rps add-client alice --endpoint 192.0.2.1: the file 0600 with
#            alice's [Peer] at the next free addresses, FILE.bak the
#            original (0600), rps -t and wg-quick strip accept it; the
#            printed config: keys that pair, addresses, endpoint, keepalive
#   refused  a name or key already there, a low-order key, --address taken
#            or outside, a bad name, an unknown name to remove: exit 1 or 2,
#            the file unchanged
#   tunnel   rps on the edited file, rpc -c on the printed config: the
#            outside host fetches the page rpc publishes
#   remove   rps remove-client alice: the file is the original again (cmp)
#   live     with rps running, add-client erin has it apply the change (a
#            reload): erin's rpc publishes at once; remove-client erin drops
#            its mapping
#   pubkey   --pubkey: the printed config has no private key but says where
#            to put it
# At the end: no sanitizer report in any log. With `kernel` (in the test VM)
# the interfaces must be kernel WireGuard, with `userspace` wireguard-go's.
#
# usage: add_client_test.sh RPS RPC kernel|userspace
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
daemon_args "$@"
command -v wg >/dev/null || skip_test "needs wg (Debian: wireguard-tools)"

netns_names ac
work=$(mktemp -d) pids=()
. "$(dirname "$0")/checks.sh"
trap 'end_run "$O" "$S" "$C"' EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- namespaces
netns_three_hosts || die "cannot create and link the namespaces"

# ---------------------------------------------------------------- the server's config
# Named as its interface, for wg-quick strip.
conf=$work/$WS.conf
key_s=$(wg genkey)
pub_s=$(wg pubkey <<<"$key_s")
pub_bob=$(wg genkey | wg pubkey)
printf '[Interface]\nPrivateKey = %s\nAddress = 10.99.0.1/24, fd00:99::1/64\nListenPort = 51820\n\n' \
	"$key_s" >"$conf"
printf '[Peer]\n# bob\nPublicKey = %s\nAllowedIPs = 10.99.0.2/32\n' "$pub_bob" >>"$conf"
chmod 600 "$conf"
cp -p "$conf" "$work/original.conf"

# admin NAME WANT_STATUS COMMAND...: runs rps COMMAND on the config; its
# stdout in $work/out, stderr in $work/err.
admin() {
	local name=$1 want=$2 status
	shift 2
	"$rps" "$@" -c "$conf" -i "$WS" >"$work/out" 2>"$work/err"
	status=$?
	cat "$work/err" >>"$work/admin.log"
	expect_eq "$name: exit status" "$want" "$status"
}
mode_of() { stat -c %a "$1"; }
# value_of FILE KEY: the value of the first "KEY = value" line.
value_of() { sed -n "s/^$2 = //p" "$1" | head -1; }

# ================================================================ add
section "add: rps add-client alice"
admin "rps add-client alice --endpoint 192.0.2.1" 0 add-client alice --endpoint 192.0.2.1
cp "$work/out" "$work/alice.conf"
check "it says what it did" contains "$work/err" "added client alice (the [Peer] at line 11); the previous version is in"
expect_eq "the config is still mode 600" 600 "$(mode_of "$conf")"
expect_eq "the backup is mode 600" 600 "$(mode_of "$conf.bak")"
check "the backup is the original" cmp -s "$conf.bak" "$work/original.conf"
pub_alice=$(wg pubkey <<<"$(value_of "$work/alice.conf" PrivateKey)")
text_of "$work/original.conf"
want="$text"$'\n'"[Peer]"$'\n'"# alice"$'\n'"PublicKey = $pub_alice"$'\n'
want+="AllowedIPs = 10.99.0.3/32, fd00:99::2/128"$'\n'
text_of "$conf"
expect_eq "alice's [Peer] appended, at the next free addresses, her key's" "$want" "$text"
rps_t() { "$rps" -t -c "$conf" -i "$WS" >>"$work/admin.log" 2>&1; }
check "rps -t accepts the file" rps_t
if command -v wg-quick >/dev/null; then
	wg-quick strip "$conf" >"$work/stripped" 2>>"$work/admin.log"
	expect_eq "wg-quick strip accepts it" 0 "$?"
	check "and keeps alice's key" contains "$work/stripped" "PublicKey = $pub_alice"
fi
expect_eq "the printed Address" "10.99.0.3/32, fd00:99::2/128" "$(value_of "$work/alice.conf" Address)"
expect_eq "the printed PublicKey is the server's" "$pub_s" "$(value_of "$work/alice.conf" PublicKey)"
expect_eq "the printed Endpoint, with the ListenPort" 192.0.2.1:51820 "$(value_of "$work/alice.conf" Endpoint)"
expect_eq "the printed AllowedIPs: the server alone" "10.99.0.1/32, fd00:99::1/128" \
	"$(value_of "$work/alice.conf" AllowedIPs)"
expect_eq "the printed PersistentKeepalive" 25 "$(value_of "$work/alice.conf" PersistentKeepalive)"
cp -p "$conf" "$work/with-alice.conf"

# ================================================================ refused
section "refused: nothing changes"
# unchanged NAME: the config is still the one with alice.
unchanged() { check "$1: the file is unchanged" cmp -s "$conf" "$work/with-alice.conf"; }
admin "alice again" 1 add-client alice --endpoint 192.0.2.1
check "says she is there" contains "$work/err" "$conf:11: a client named alice is there already"
unchanged "alice again"
admin "bob's key again" 1 add-client carol --endpoint 192.0.2.1 --pubkey "$pub_bob"
check "says whose key it is" contains "$work/err" "$conf:6: --pubkey: that [Peer] has this key already"
unchanged "bob's key"
admin "a low-order public key" 1 add-client carol --endpoint 192.0.2.1 \
	--pubkey AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
check "says it is unusable" contains "$work/err" "--pubkey: not a usable X25519 public key"
admin "--address taken" 1 add-client carol --endpoint 192.0.2.1 --address 10.99.0.2
check "says by whom" contains "$work/err" \
	"--address: 10.99.0.2 is taken: it is in the AllowedIPs of the [Peer] at line 6"
admin "--address outside" 1 add-client carol --endpoint 192.0.2.1 --address 10.98.0.5
check "says why" contains "$work/err" "10.98.0.5 is in none of the server's subnets"
admin "a bad name" 2 add-client 'carol smith' --endpoint 192.0.2.1
check "says what a name is" contains "$work/err" "invalid NAME \"carol smith\": 1-32 letters"
admin "remove an unknown name" 1 remove-client carol
check "says there is none" contains "$work/err" "no client named carol"
unchanged "all these"
check "nothing went to stdout" test ! -s "$work/out"

# ================================================================ tunnel
section "tunnel: rpc on the printed config"
echo "hello from alice" >"$work/page"
serve "$C" 127.0.0.1 3000 "$work/page"
ip netns exec "$S" "$rps" -c "$conf" -i "$WS" -v 2>>"$work/rps.log" &
pid_rps=$!
pids+=("$pid_rps")
wait_for 30 contains "$work/rps.log" "ready" || die "rps did not get ready"
check "rps brought $WS up ($expect WireGuard)" contains "$work/rps.log" "interface $WS is up ($expect WireGuard)"
ip netns exec "$C" "$rpc" -c "$work/alice.conf" -i "$WC" --heartbeat-interval 1 -v \
	-r 127.0.0.1:3000-3000 2>>"$work/rpc.log" &
pid_rpc=$!
pids+=("$pid_rpc")
check "rpc registers its route" wait_for 30 contains "$work/rpc.log" "port 3000 on the server now reaches"
check "rpc brought $WC up ($expect WireGuard)" contains "$work/rpc.log" "interface $WC is up ($expect WireGuard)"
expect_page "the outside host fetches alice's page" "$O" http://198.51.100.1:3000/ "hello from alice"
stop rpc "$pid_rpc"
expect_eq "rpc exits 0" 0 "$stop_status"
stop rps "$pid_rps"
expect_eq "rps exits 0" 0 "$stop_status"

# ================================================================ remove
section "remove: rps remove-client alice"
admin "rps remove-client alice" 0 remove-client alice
check "it says what it did" contains "$work/err" "removed client alice (the [Peer] at line 11)"
check "the file is the original again, byte for byte" cmp "$conf" "$work/original.conf"
expect_eq "still mode 600" 600 "$(mode_of "$conf")"
check "the backup has alice" cmp -s "$conf.bak" "$work/with-alice.conf"

# ================================================================ live
section "live: add-client and remove-client with rps running"
ip netns exec "$S" "$rps" -c "$conf" -i "$WS" -v 2>>"$work/rps-live.log" &
pid_rps=$!
pids+=("$pid_rps")
wait_for 30 contains "$work/rps-live.log" "ready" || die "rps did not get ready"
check "with rps stopped, add-client said when the change applies" contains "$work/admin.log" \
	"no rps is running on $WS: it takes the change when it starts"
admin "rps add-client erin, rps running" 0 add-client erin --endpoint 192.0.2.1
cp "$work/out" "$work/erin.conf"
check "the running rps applied it" contains "$work/err" "the running rps on $WS applied it (reloaded $conf)"
check "rps logs erin's [Peer] added" contains "$work/rps-live.log" "[Peer] erin ($conf:11) added"
ip netns exec "$C" "$rpc" -c "$work/erin.conf" -i "$WC" --heartbeat-interval 1 -v \
	-r 127.0.0.1:3000-3000 2>>"$work/rpc-live.log" &
pid_rpc=$!
pids+=("$pid_rpc")
check "erin's rpc registers, no rps restart" wait_for 30 contains "$work/rpc-live.log" \
	"port 3000 on the server now reaches"
expect_page "the outside host fetches erin's page" "$O" http://198.51.100.1:3000/ "hello from alice"
admin "rps remove-client erin, rps running" 0 remove-client erin
check "the running rps applied it" contains "$work/err" "the running rps on $WS applied it"
check "rps drops erin's mapping" wait_for 10 contains "$work/rps-live.log" \
	"port 3000 of client 10.99.0.3 unmapped: its [Peer] was removed"
check "port 3000 refuses at once" refuses "$O" 198.51.100.1 3000
stop rpc "$pid_rpc"
stop rps "$pid_rps"
expect_eq "rps exits 0" 0 "$stop_status"

# ================================================================ pubkey
section "pubkey: the client's own key"
pub_dave=$(wg genkey | wg pubkey)
admin "rps add-client dave --pubkey" 0 add-client dave --endpoint vpn.example.com:443 --pubkey "$pub_dave" \
	--address fd00:99::99
check "no PrivateKey printed" test -z "$(value_of "$work/out" PrivateKey)"
check "but where the client's goes" contains "$work/out" \
	"# PrivateKey = the client's own private key, whose public key is $pub_dave"
expect_eq "the --address and the next free IPv4" "10.99.0.3/32, fd00:99::99/128" "$(value_of "$work/out" Address)"
expect_eq "the endpoint as given" vpn.example.com:443 "$(value_of "$work/out" Endpoint)"
check "dave's key in the file" contains "$conf" "# dave"$'\n'"PublicKey = $pub_dave"$'\n'

no_sanitizer_report
finish
