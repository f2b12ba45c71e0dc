#!/bin/bash
# The command lines of rps and rpc as a user types them: exit statuses,
# the -t summary, and that -t neither needs root nor prints key material.
# usage: cli_commands.sh RPS RPC EXAMPLES_DIR
set -u
. "$(dirname "$0")/lib.sh"
rps=$1 rpc=$2 examples=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0 checks=0

# check NAME EXPECTED_STATUS PATTERN COMMAND...: runs COMMAND, wants the status
# and PATTERN (grep -E) somewhere in its stdout+stderr.
check() {
	local name=$1 want=$2 pattern=$3 status
	shift 3
	"$@" >"$work/out" 2>&1
	status=$?
	checks=$((checks + 1))
	if [ "$status" -ne "$want" ] || ! grep -Eq -- "$pattern" "$work/out"; then
		failures=$((failures + 1))
		echo "FAIL: $name: status $status (want $want), output:"
		sed 's/^/    /' "$work/out"
	fi
}

# Fills an example config's placeholders with fresh keys, as a user would.
server_key=$(wg genkey 2>/dev/null || echo "YOYltDBmcdOlwCMqExR920sESriPJEmyZKQDANcMCFY=")
client_key="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
server_pub="IvJAx7sd/fhkrvIiqhKvbcL9tDgXPpe1ZVtF39BwZ3s="
client_pub="//////////////////////////////////////////8="
fill() {
	sed -e "s|<server_private_key>|$server_key|" -e "s|<client_private_key>|$client_key|" \
	    -e "s|<server_public_key>|$server_pub|" -e "s|<client_public_key>|$client_pub|" \
	    "$examples/$1" >"$work/$1"
	chmod 600 "$work/$1"
}
fill wg-server.conf
fill wg-client.conf

check "rps -V" 0 '^rps [0-9]+\.[0-9]+\.[0-9]+$' "$rps" -V
check "rpc --version" 0 '^rpc [0-9]+\.[0-9]+\.[0-9]+$' "$rpc" --version
check "rpc -h" 0 'Usage: rpc .*-r SPEC' "$rpc" -h
check "rps -h has no -r" 0 '^  -c, --config FILE' "$rps" --help
check "rpc -r bad" 2 'rpc: invalid route "bad": expected local_host:local_port-remote_port' "$rpc" -r bad
check "rpc -r bad prints usage" 2 '^Usage: rpc' "$rpc" -r bad
check "rpc without -r" 2 'no route given' "$rpc" -t -c "$work/wg-client.conf"
check "unknown flag" 2 'unknown option "--nope"' "$rps" --nope
check "-b 0" 2 '"0" is out of range' "$rps" -b 0
check "--metrics with a name" 2 'rps: --metrics: "localhost" is not an IP address' \
	"$rps" --metrics localhost:9586
check "--metrics without a port" 2 'rpc: --metrics: missing port in "127\.0\.0\.1"' "$rpc" --metrics 127.0.0.1
check "--metrics with port 0" 2 'rps: --metrics: invalid port in "127\.0\.0\.1:0"' "$rps" --metrics 127.0.0.1:0
check "--metrics with IPv6 unbracketed" 2 'rps: --metrics: IPv6 address "::1:9586" needs brackets' \
	"$rps" --metrics ::1:9586
check "rps -t shows --metrics" 0 '^rps: Prometheus metrics at http://\[::1\]:9586/metrics$' \
	"$rps" -t -c "$work/wg-server.conf" --metrics '[::1]:9586'
check "rps -h shows add-client" 0 '^       rps add-client NAME --endpoint HOST\[:PORT\]' "$rps" -h
check "rps add-client -h" 0 '^  --pubkey KEY' "$rps" add-client -h
check "rps add-client without --endpoint" 2 'rps add-client: no --endpoint given' "$rps" add-client alice
check "rps remove-client with --endpoint" 2 'remove-client takes NAME, -c and -i only' \
	"$rps" remove-client alice --endpoint x
check "rps add-client, a bad -i" 2 '-i: invalid interface name' "$rps" add-client a --endpoint x -i a/b
check "rps add-client, no such file" 1 'nope.conf: No such file or directory' \
	"$rps" add-client a --endpoint x -c "$work/nope.conf"

check "rps -t on the server example" 0 '^interface wg0: addresses 10\.0\.0\.1/24, fd00::1/64; listen port 51820$' \
	"$rps" -t -c "$work/wg-server.conf"
# no_warning NAME FILE: rps -t on FILE passes and warns of nothing.
no_warning() {
	checks=$((checks + 1))
	if ! "$rps" -t -c "$2" >"$work/out" 2>&1 || grep -q warning "$work/out"; then
		failures=$((failures + 1))
		echo "FAIL: $1:"
		sed 's/^/    /' "$work/out"
	fi
}
for f in wg-server.conf wg-client.conf; do
	check "$f sets no MTU" 1 '^0$' grep -c '^MTU' "$examples/$f"
	no_warning "rps -t on $f warns of nothing" "$work/$f"
done
# The original's MTU = 65280 parses, with a warning that says why it is too large.
sed -e 's|^ListenPort = 51820|&\nMTU = 65280|' "$work/wg-server.conf" >"$work/mtu.conf"
sed -e 's|^MTU = 65280|MTU = 1420|' "$work/mtu.conf" >"$work/mtu1420.conf"
chmod 600 "$work/mtu.conf" "$work/mtu1420.conf"
check "rps -t warns of MTU 65280 and why" 0 \
	'^rps: warning: .*/mtu\.conf:8: MTU: 65280 is more than a usual path carries: 1500 \(Ethernet\) minus 80 of WireGuard overhead over IPv6 is 1420; larger packets fragment or are dropped' \
	"$rps" -t -c "$work/mtu.conf"
no_warning "rps -t with MTU 1420 warns of nothing" "$work/mtu1420.conf"
check "rpc -t on the client example" 0 '^route 1: 127\.0\.0\.1:3000 published on the server.s port 3000$' \
	"$rpc" -t -c "$work/wg-client.conf" -r 127.0.0.1:3000-3000
check "rpc -t shows a UDP route" 0 '^route 2: 127\.0\.0\.1:53 published on the server.s port 5353/udp$' \
	"$rpc" -t -c "$work/wg-client.conf" -r 127.0.0.1:3000-3000 -r 127.0.0.1:53-5353/udp
check "rpc -t shows a TCP and a UDP route of one port" 0 '^route 2: \[::1\]:53 published on the server.s port 53/udp$' \
	"$rpc" -t -c "$work/wg-client.conf" -r 127.0.0.1:53-53/tcp,send-proxy-v2 -r '[::1]:53-53/udp'
check "rpc -t shows a UDP route with send-proxy-v2" 0 '^route 1: 127\.0\.0\.1:53 published on the server.s port 53/udp, send-proxy-v2$' \
	"$rpc" -t -c "$work/wg-client.conf" -r 127.0.0.1:53-53/udp,send-proxy-v2
check "rpc -t shows --udp-timeout" 0 '^rpc: relayed UDP flows silent for 30 s end$' \
	"$rpc" -t -c "$work/wg-client.conf" -r 127.0.0.1:53-53/udp --udp-timeout 30
check "rps -t shows the default --udp-timeout" 0 '^rps: relayed UDP flows silent for 60 s end$' \
	"$rps" -t -c "$work/wg-server.conf"
check "rpc -r /udp,send-proxy" 2 'rpc: invalid route "127\.0\.0\.1:53-53/udp,send-proxy": send-proxy \(PROXY v1\) has no UDP; use send-proxy-v2' \
	"$rpc" -r 127.0.0.1:53-53/udp,send-proxy
check "rpc -h tells of /udp and --udp-timeout" 0 '--udp-timeout SECS' "$rpc" -h
check "rpc -t shows the endpoint" 0 'endpoint server\.example\.com:51820; keepalive every 25 s' \
	"$rpc" -t -c "$work/wg-client.conf" --route localhost:8080-8080

# wg-rp's own lines: per-peer policy for rps, routes for rpc; wg-quick
# strip still takes the files (they are comments to it).
{
	cat "$work/wg-server.conf"
	printf '# wg-rp: AllowPorts = 8000-8100,9000\n# wg-rp: MaxMappings = 3\n'
	printf '\n[Peer]\n# bob\nPublicKey = %s\nAllowedIPs = 10.0.0.3/32\n' "$server_pub"
	printf '# wg-rp: MaxConnsPerSource = 20\n'
} >"$work/policy.conf"
chmod 600 "$work/policy.conf"
check "rps -t: a peer's own policy" 0 '^  ports 8000-8100,9000 \(AllowPorts\); at most 3 mappings \(MaxMappings\); at most 512 connections per source address$' \
	"$rps" -t -c "$work/policy.conf"
check "rps -t: the options for what a peer does not set" 0 '^  ports 1024-65535; at most 64 mappings; at most 20 connections per source address \(MaxConnsPerSource\)$' \
	"$rps" -t -c "$work/policy.conf" --allow-ports 1024-65535
check "rps -t: the peer's name" 0 '^peer 2 \(line 18, bob\): allowed IPs 10\.0\.0\.3/32$' \
	"$rps" -t -c "$work/policy.conf"
check "wg-quick strip takes wg-rp lines" 0 '^AllowedIPs = 10\.0\.0\.3/32$' wg-quick strip "$work/policy.conf"
check "rpc: policy lines are rps's" 0 'policy\.conf:12: \[Peer\]: its AllowPorts, MaxMappings and MaxConnsPerSource are rps settings; rpc ignores them' \
	"$rpc" -t -c "$work/policy.conf" -r 127.0.0.1:3000-3000
sed -e 's|^\[Interface\]|&\n# wg-rp: Route = 127.0.0.1:3000-3000\n# wg-rp: Route = 127.0.0.1:53-5353/udp|' \
	"$work/wg-client.conf" >"$work/routes.conf"
chmod 600 "$work/routes.conf"
check "rpc -t: routes from the config" 0 '^route 2: 127\.0\.0\.1:53 published on the server.s port 5353/udp$' \
	"$rpc" -t -c "$work/routes.conf"
check "rpc -t: -r routes first" 0 '^route 3: 127\.0\.0\.1:53 published on the server.s port 5353/udp$' \
	"$rpc" -t -c "$work/routes.conf" -r 127.0.0.1:22-2222
check "rpc: a config route clashing with -r" 2 'routes\.conf:[0-9]+: Route: invalid route "127\.0\.0\.1:3000-3000": remote port 3000 is already used by another route' \
	"$rpc" -t -c "$work/routes.conf" -r 127.0.0.1:4000-3000
check "rps: Route lines are rpc's" 0 'routes\.conf:[0-9]+: Route: an rpc setting; rps ignores it' \
	"$rps" -t -c "$work/routes.conf"
check "wg-quick strip takes Route lines" 0 '^PrivateKey = ' wg-quick strip "$work/routes.conf"

# -t must never show a key, even one it rejects.
for f in wg-server.conf wg-client.conf; do
	"$rps" -t -c "$work/$f" >"$work/summary" 2>&1
	checks=$((checks + 1))
	if grep -Fq -e "$server_key" -e "$client_key" -e "$server_pub" -e "$client_pub" "$work/summary"; then
		failures=$((failures + 1))
		echo "FAIL: -t output of $f shows key material"
	fi
done

sed -e 's|^AllowedIPs = 10.0.0.2/32.*|AllowedIPs = 10.0.0.300/32|' "$work/wg-server.conf" >"$work/bad.conf"
echo "PrivateKey = $server_key" >>"$work/bad.conf"
chmod 600 "$work/bad.conf"
check "rps -t names file, line and value" 1 'bad\.conf:14: AllowedIPs: invalid address "10\.0\.0\.300/32"' \
	"$rps" -t -c "$work/bad.conf"
check "rps -t counts the errors" 1 'configuration test failed \(2 errors\)' "$rps" -t -c "$work/bad.conf"
"$rps" -t -c "$work/bad.conf" >"$work/summary" 2>&1
checks=$((checks + 1))
if grep -Fq "$server_key" "$work/summary"; then
	failures=$((failures + 1))
	echo "FAIL: an error message shows the private key"
fi

# Keys given wrong: the messages say what is wrong without the value.
cat >"$work/keys.conf" <<CONF
[Interface]
PrivateKey = ${server_key%?}
Address = $server_key
[Peer]
PublicKey = ${client_pub}x
PresharedKey = ${server_key:0:20}*${server_key:21}
AllowedIPs = $server_key
Endpoint = $server_key
CONF
chmod 600 "$work/keys.conf"
check "bad PrivateKey: what is wrong" 1 'keys\.conf:2: PrivateKey: invalid key: expected 44 characters of base64 ending in .=. \(as printed by wg genkey\), got 43 characters' \
	"$rps" -t -c "$work/keys.conf"
check "bad PublicKey: what is wrong" 1 'keys\.conf:5: PublicKey: invalid key: expected 44 characters .*got 45 characters' \
	"$rps" -t -c "$work/keys.conf"
check "bad PresharedKey: which character" 1 'keys\.conf:6: PresharedKey: invalid key: character 21 is not base64' \
	"$rps" -t -c "$work/keys.conf"
check "key as Address: not shown" 1 'keys\.conf:3: Address: invalid address \(not shown: it may hold a key\)' \
	"$rps" -t -c "$work/keys.conf"
check "key as AllowedIPs: not shown" 1 'keys\.conf:7: AllowedIPs: invalid address \(not shown: it may hold a key\)' \
	"$rps" -t -c "$work/keys.conf"
check "key as Endpoint: not shown" 1 'keys\.conf:8: Endpoint: invalid host \(not shown: it may hold a key\)' \
	"$rps" -t -c "$work/keys.conf"
"$rps" -t -c "$work/keys.conf" >"$work/summary" 2>&1
checks=$((checks + 1))
if grep -Fq -e "${server_key:0:12}" -e "${server_key:20:12}" -e "${client_pub:0:12}" "$work/summary"; then
	failures=$((failures + 1))
	echo "FAIL: a message about a bad key shows a piece of it:"
	sed 's/^/    /' "$work/summary"
fi

chmod 644 "$work/wg-server.conf"
check "world-readable config warns" 0 'readable by group or others \(mode 0644\)' \
	"$rps" -t -c "$work/wg-server.conf"
check "missing config" 1 'nonexistent\.conf: cannot open: No such file or directory' \
	"$rps" -t -c "$work/nonexistent.conf"

# -t is for anyone: it must work without root and touch nothing. Checking
# that takes root (to drop it) and setpriv; without them the test ends as
# skipped (77), or failed under CI=true, once the rest has run.
missing=
if [ "$(id -u)" -ne 0 ]; then
	missing="not root: cannot check -t without root"
elif ! command -v setpriv >/dev/null; then
	missing="no setpriv (util-linux): cannot check -t without root"
else
	chmod 755 "$work"
	chmod 644 "$work/wg-server.conf"
	check "-t without root" 0 'configuration is valid' \
		setpriv --reuid=65534 --regid=65534 --clear-groups "$rps" -t -c "$work/wg-server.conf"
fi

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ] || exit 1
[ -z "$missing" ] || skip_test "$missing"
