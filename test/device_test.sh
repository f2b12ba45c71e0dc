#!/bin/bash
# The device layer end to end: wgrp-devtool brings up WireGuard interfaces
# from configs in two namespaces; `wg show dump` and `ip` (independent
# readers) must find exactly the config, TCP must cross the tunnel, teardown
# must leave nothing, and interfaces not ours must be left alone.
#
#   netns $A                                netns $B
#   $VA 192.168.77.1/24  <--- veth --->     $VB 192.168.77.2/24
#   $IA 10.77.0.1/24 fd77::1/64             $IB 10.77.0.2/32 fd77::2/128
#       ListenPort 51820, FwMark 0x42,          Endpoint 192.168.77.1:51820,
#       MTU 1380, peer B + preshared key        keepalive 25, routes via $IB
#
# Nothing is linked to the root namespace. Runs on userspace WireGuard here,
# and on kernel WireGuard in the test VM; it fails when the backend it
# finds is not the one expected.
#
# usage: device_test.sh DEVTOOL RPS kernel|userspace
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
devtool=$(realpath "$1") rps=$(realpath "$2") expect=$3
tag=$$
A=wgrp-dev-a-$tag B=wgrp-dev-b-$tag
VA=veth-a-$tag VB=veth-b-$tag
# Interface names differ between namespaces: UAPI sockets share one directory.
IA=wgda$tag IB=wgdb$tag
work=$(mktemp -d)
failures=0 checks=0
pids=()

cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

pass() { checks=$((checks + 1)); }
fail() {
	checks=$((checks + 1)) failures=$((failures + 1))
	echo "FAIL: $*"
}
# expect_eq NAME WANT GOT
expect_eq() {
	if [ "$2" == "$3" ]; then pass; else fail "$1"$'\n'"  want: $2"$'\n'"  got:  $3"; fi
}
inA() { ip netns exec "$A" "$@"; }
inB() { ip netns exec "$B" "$@"; }

netns_new "$A" "$B" || exit 1
ip link add "$VA" netns "$A" type veth peer name "$VB" netns "$B"
inA ip addr add 192.168.77.1/24 dev "$VA"
inB ip addr add 192.168.77.2/24 dev "$VB"
inA ip link set "$VA" up
inB ip link set "$VB" up

keyA=$(wg genkey) keyB=$(wg genkey) psk=$(wg genpsk)
pubA=$(wg pubkey <<<"$keyA") pubB=$(wg pubkey <<<"$keyB")
cat >"$work/a.conf" <<CONF
[Interface]
PrivateKey = $keyA
Address = 10.77.0.1/24, fd77::1/64
ListenPort = 51820
FwMark = 0x42
MTU = 1380

[Peer]
PublicKey = $pubB
PresharedKey = $psk
AllowedIPs = 10.77.0.2/32, fd77::2/128
CONF
cat >"$work/b.conf" <<CONF
[Interface]
PrivateKey = $keyB
Address = 10.77.0.2/32, fd77::2/128

[Peer]
PublicKey = $pubA
PresharedKey = $psk
Endpoint = 192.168.77.1:51820
AllowedIPs = 10.77.0.0/24, fd77::/64, 10.78.0.0/16
PersistentKeepalive = 25
CONF
chmod 600 "$work"/*.conf

# start NAME NETNS CONF IFNAME: runs wgrp-devtool in the background; its
# read-back goes to $work/NAME.out, its log to $work/NAME.log.
start() {
	# Appending, so that truncating the file between reads leaves no hole.
	: >"$work/$1.out"
	ip netns exec "$2" "$devtool" "$3" "$4" >>"$work/$1.out" 2>"$work/$1.log" &
	pids+=($!)
	eval "pid_$1=$!"
}
ready() { grep -q '^end$' "$work/$1.out"; }

# Normal form of a device, for comparing readers: "device PORT FWMARK", then
# a line per peer, "peer KEY PSK(set|(none)) ENDPOINT ALLOWED_IPS KEEPALIVE",
# peers and allowed IPs sorted (their order is the implementation's).
normal_wg_show() {
	awk 'NR == 1 { print "device", $3, $4; next }
		{ print "peer", $1, ($2 == "(none)" ? "(none)" : "set"), $3, $4, $8 }' | normal_peers
}
normal_devtool() {
	awk '$1 == "device" { print $1, $2, $3 } $1 == "peer" { print $1, $2, $3, $4, $5, $9 }' |
		normal_peers
}
normal_peers() {
	# One awk for all lines: process starts are slow in the test VM.
	awk 'function sorted(list, n, a, i, j, t, out) {
			n = split(list, a, ",")
			for (i = 2; i <= n; i++) {
				t = a[i]
				for (j = i - 1; j >= 1 && a[j] > t; j--)
					a[j + 1] = a[j]
				a[j + 1] = t
			}
			out = a[1]
			for (i = 2; i <= n; i++)
				out = out "," a[i]
			return out
		}
		$1 == "peer" { $5 = sorted($5) } { print }' | sort
}

start a "$A" "$work/a.conf" "$IA"
start b "$B" "$work/b.conf" "$IB"
if ! wait_for 15 ready a || ! wait_for 15 ready b; then
	fail "interfaces did not come up"; cat "$work"/*.log
	echo "$((checks - failures)) passed, $failures failed"
	exit 1
fi

# The backend must be the one this environment is for.
expect_eq "backend of A" "backend $expect" "$(head -1 "$work/a.out")"
kind=$(inA ip -d -o link show dev "$IA" | grep -o -w -e wireguard -e tun | head -1)
expect_eq "link kind" "$([ "$expect" = kernel ] && echo wireguard || echo tun)" "$kind"

# wg(8) must see exactly the configs.
expect_eq "A: private key" "$keyA" "$(inA wg show "$IA" private-key)"
expect_eq "B: private key" "$keyB" "$(inB wg show "$IB" private-key)"
# A's peer has no Endpoint: it learns B's once B's keepalive arrives.
roaming() {
	awk -v key="$pubB" '$1 == "peer" && $2 == key && ($4 == "(none)" || $4 ~ /^192\.168\.77\.2:/) {
		$4 = "(roaming)" } { print }'
}
inA wg show "$IA" dump | normal_wg_show | roaming >"$work/a.wg"
expect_eq "A: as wg shows it" "device 51820 0x42
peer $pubB set (roaming) 10.77.0.2/32,fd77::2/128 off" "$(cat "$work/a.wg")"
inB wg show "$IB" dump | normal_wg_show >"$work/b.wg"
portB=$(inB wg show "$IB" listen-port)
expect_eq "B: as wg shows it" "device $portB off
peer $pubA set 192.168.77.1:51820 10.77.0.0/24,10.78.0.0/16,fd77::/64 25" "$(cat "$work/b.wg")"
[ "$portB" -gt 0 ] && pass || fail "B: no listen port chosen"

# The library's read-back must agree with wg(8).
expect_eq "A: read back" "$(cat "$work/a.wg")" "$(normal_devtool <"$work/a.out" | roaming)"
expect_eq "B: read back" "$(cat "$work/b.wg")" "$(normal_devtool <"$work/b.out")"

# Addresses, MTU, state, our mark.
expect_eq "A: addresses" "10.77.0.1/24 fd77::1/64" \
	"$(inA ip -o addr show dev "$IA" scope global | awk '{print $4}' | xargs)"
expect_eq "B: addresses" "10.77.0.2/32 fd77::2/128" \
	"$(inB ip -o addr show dev "$IB" scope global | awk '{print $4}' | xargs)"
inA ip -o link show dev "$IA" | grep -q "mtu 1380" && pass || fail "A: MTU 1380"
inA ip -o link show dev "$IA" | grep -q "[<,]UP[,>]" && pass || fail "A: interface up"
expect_eq "A: mark" "wg-rp wgrp-devtool pid $pid_a" \
	"$(inA ip -d -o link show dev "$IA" | sed -n 's/.* alias \(.*\)$/\1/p')"

# Routes: only for peer networks the interface prefixes do not cover.
expect_eq "A: no extra routes" "" "$(inA ip route show dev "$IA" proto static; inA ip -6 route show dev "$IA" proto static)"
expect_eq "B: routes" "10.77.0.0/24 10.78.0.0/16 fd77::/64" \
	"$(inB ip route show dev "$IB" proto static | awk '{print $1}' | xargs) $(inB ip -6 route show dev "$IB" proto static | awk '{print $1}' | xargs)"

# TCP crosses the tunnel, both families.
for addr in 10.77.0.1 "[fd77::1]"; do
	family=4
	[[ $addr == \[* ]] && family=6
	inA timeout 10 socat -u "TCP$family-LISTEN:7777,bind=$addr,reuseaddr" "OPEN:$work/received,creat,trunc" &
	listener=$!
	wait_for 5 inA sh -c "ss -ltn | grep -q ':7777 '"
	head -c 100000 /dev/urandom >"$work/sent"
	inB timeout 10 socat -u "OPEN:$work/sent" "TCP:$addr:7777"
	wait "$listener"
	cmp -s "$work/sent" "$work/received" && pass || fail "TCP over the tunnel to $addr"
done

# After traffic the read-back shows a handshake and bytes both ways.
: >"$work/b.out"
kill -USR1 "$pid_b"
wait_for 5 ready b
awk '$1 == "peer" && $6 > 0 && $7 > 0 && $8 > 200000 { ok = 1 } END { exit !ok }' "$work/b.out" &&
	pass || fail "B: handshake and transfer read back: $(grep ^peer "$work/b.out")"

# Teardown leaves nothing: no interface, no route, no userspace process.
userspace_pid=$(sed -n 's/.*userspace implementation (pid \([0-9]*\)).*/\1/p' "$work/a.log")
kill -TERM "$pid_a" "$pid_b"
wait "$pid_a"; status_a=$?
wait "$pid_b"; status_b=$?
expect_eq "devtool exit statuses" "0 0" "$status_a $status_b"
inA ip link show dev "$IA" >/dev/null 2>&1 && fail "A: interface left behind" || pass
inB ip link show dev "$IB" >/dev/null 2>&1 && fail "B: interface left behind" || pass
expect_eq "B: routes gone" "" "$(inB ip route show proto static; inB ip -6 route show proto static)"
# On userspace WireGuard the log names wireguard-go's pid: without it there
# is nothing to check the process against, which is a failure, not a pass.
if [ "$expect" = userspace ]; then
	if [ -n "$userspace_pid" ]; then
		kill -0 "$userspace_pid" 2>/dev/null && fail "userspace WireGuard still running" || pass
	else
		fail "A: no 'userspace implementation (pid N)' line in the log: $(cat "$work/a.log")"
	fi
	[ -e "/var/run/wireguard/$IA.sock" ] && fail "UAPI socket left behind" || pass
fi

# A leftover of ours (its program gone) is deleted and recreated.
inA ip tuntap add dev "$IA" mode tun
inA ip link set dev "$IA" alias "wg-rp wgrp-devtool pid 999999999"
start a "$A" "$work/a.conf" "$IA"
wait_for 15 ready a && pass || fail "leftover interface not recreated: $(cat "$work/a.log")"
grep -q "was left over by wgrp-devtool (pid 999999999), which is gone: recreating it" "$work/a.log" &&
	pass || fail "leftover not logged: $(cat "$work/a.log")"

# An interface in use by a running program is refused, and stays up.
ip netns exec "$A" "$devtool" "$work/a.conf" "$IA" >/dev/null 2>"$work/busy.log"
expect_eq "second user refused" 1 $?
grep -q "interface $IA is in use by wgrp-devtool (pid $pid_a); choose another name with -i" "$work/busy.log" &&
	pass || fail "in-use message: $(cat "$work/busy.log")"
inA wg show "$IA" private-key >/dev/null 2>&1 && pass || fail "refused start broke the running interface"
kill -TERM "$pid_a"; wait "$pid_a"

# Someone else's interface is refused and never touched.
inA ip tuntap add dev "$IA" mode tun
inA ip link set dev "$IA" alias "not ours"
ip netns exec "$A" "$devtool" "$work/a.conf" "$IA" >/dev/null 2>"$work/foreign.log"
expect_eq "foreign interface refused" 1 $?
grep -q "interface $IA already exists and was not created by wg-rp; leaving it alone: choose another name with -i" \
	"$work/foreign.log" && pass || fail "foreign message: $(cat "$work/foreign.log")"
expect_eq "foreign interface untouched" "not ours" \
	"$(inA ip -d -o link show dev "$IA" | sed -n 's/.* alias \(.*\)$/\1/p')"
inA ip link del "$IA"

# rps itself holds the interface until SIGTERM, then removes it and exits 0.
ip netns exec "$A" "$rps" -c "$work/a.conf" -i "$IA" 2>"$work/rps.log" &
pid_rps=$!
pids+=($pid_rps)
wait_for 15 grep -q "interface $IA is up ($expect WireGuard)" "$work/rps.log" &&
	pass || fail "rps did not bring $IA up: $(cat "$work/rps.log")"
kill -TERM "$pid_rps"
wait "$pid_rps"
expect_eq "rps exit status on SIGTERM" 0 $?
inA ip link show dev "$IA" >/dev/null 2>&1 && fail "rps left $IA behind" || pass

# Without CAP_NET_ADMIN: one clear line saying so.
chmod 755 "$work"
install -m 644 "$work/a.conf" "$work/public.conf"
ip netns exec "$A" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	"$rps" -c "$work/public.conf" -i "$IA" 2>"$work/noroot.log"
expect_eq "rps without root fails" 1 $?
# Its control socket comes first (a second daemon on the interface must not
# touch it), and says so as the interface would.
grep -qi "permission denied: rps needs root" "$work/noroot.log" &&
	pass || fail "no-root message: $(cat "$work/noroot.log")"

# Neither kernel WireGuard nor a userspace implementation: both remedies named.
if [ "$expect" = userspace ]; then
	WG_QUICK_USERSPACE_IMPLEMENTATION=/nonexistent/wireguard-go \
		ip netns exec "$A" "$rps" -c "$work/a.conf" -i "$IA" 2>"$work/none.log"
	expect_eq "rps without any WireGuard fails" 1 $?
	grep -q "the kernel has no WireGuard (load the wireguard module: modprobe wireguard) and /nonexistent/wireguard-go cannot run: No such file or directory (install wireguard-go, or set WG_QUICK_USERSPACE_IMPLEMENTATION)" \
		"$work/none.log" && pass || fail "no-WireGuard message: $(cat "$work/none.log")"
	inA ip link show dev "$IA" >/dev/null 2>&1 && fail "failed start left $IA behind" || pass
fi

# 300 peers of 4 allowed IPs each: more than one netlink message holds.
# Any 32 bytes are a public key. Their base64 is cut from one random stream
# (no process per key, which is slow in the VM): 42 characters, then one of
# the 16 whose low 2 bits are 0 (a 32-byte key's last character carries 4
# bits), then "=".
random=$(head -c 9600 /dev/urandom | base64 -w 0)
last=AEIMQUYcgkosw048
{
	printf '[Interface]\nPrivateKey = %s\nAddress = 10.77.0.1/24\nListenPort = 51821\n' "$keyA"
	for ((i = 0; i < 300; i++)); do
		printf '[Peer]\nPublicKey = %s%s=\n' "${random:i * 42:42}" "${last:i % 16:1}"
		printf 'AllowedIPs = 10.%d.%d.1/32, 10.%d.%d.2/32, fd77:%x::1/128, 172.%d.%d.0/30\n' \
			$((100 + i / 256)) $((i % 256)) $((100 + i / 256)) $((i % 256)) $((i + 1)) \
			$((16 + i / 64)) $((i % 64 * 4))
	done
} >"$work/big.conf"
chmod 600 "$work/big.conf"
start big "$A" "$work/big.conf" "$IA"
if wait_for 60 ready big; then
	inA wg show "$IA" dump | normal_wg_show >"$work/big.wg"
	expect_eq "300 peers" 300 "$(grep -c ^peer "$work/big.wg")"
	expect_eq "1200 allowed IPs" 1200 "$(awk '$1 == "peer" { n += split($5, a, ",") } END { print n }' "$work/big.wg")"
	awk '/^PublicKey/ { k = $3 } /^AllowedIPs/ { gsub(/AllowedIPs = | /, "");
		print "peer", k, "(none)", "(none)", $0, "off" }' "$work/big.conf" | normal_peers >"$work/big.want"
	expect_eq "300 peers as configured" "" "$(grep ^peer "$work/big.wg" | diff - "$work/big.want" | head -5)"
	expect_eq "300 peers read back" "$(cat "$work/big.wg")" "$(normal_devtool <"$work/big.out")"
	expect_eq "routes for 1200 networks" 1200 \
		"$(( $(inA ip route show dev "$IA" proto static | wc -l) + $(inA ip -6 route show dev "$IA" proto static | wc -l) ))"
else
	fail "300 peers did not come up: $(cat "$work/big.log")"
fi
kill -TERM "$pid_big"; wait "$pid_big"

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
