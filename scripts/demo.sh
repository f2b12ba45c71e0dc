#!/bin/bash
# wg-rp in one command: installs what it needs, builds, and publishes a small
# web service of a client behind a server's public port, all in network
# namespaces on this machine:
#
#   netns wgrp-demo-outside    netns wgrp-demo-server         netns wgrp-demo-client
#   198.51.100.2   <-- veth -->  198.51.100.1 (public)
#   2001:db8:1::2                2001:db8:1::1
#                                192.0.2.1       <-- veth -->  192.0.2.2
#                                rps: wgrp-demo-s 10.0.0.1  <== WireGuard ==>  rpc: wgrp-demo-c 10.0.0.2
#                                     API on 10.0.0.1:80                        web service 127.0.0.1:8080
#
#   outside: curl http://198.51.100.1:8080/ --> rps --> tunnel --> rpc --> 127.0.0.1:8080
#
# The configs are packaging/examples/wg-*.conf with fresh keys. rps and rpc
# use kernel WireGuard when the kernel has it, wireguard-go otherwise; the
# demo says which. Nothing is linked to the root namespace, and everything is
# removed on exit.
#
# usage: scripts/demo.sh [--keep]
#   --keep   leave it running until Ctrl-C, to try more requests by hand
set -euo pipefail

keep=0
case ${1:-} in
"") ;;
--keep) keep=1 ;;
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [--keep]" >&2
	exit 2
	;;
esac
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (network namespaces, WireGuard interfaces): sudo $0 $*" >&2
	exit 1
fi
cd "$(dirname "$0")/.."
. test/lib.sh

# Names the demo owns: namespaces, veths, WireGuard interfaces.
OUT=wgrp-demo-outside SRV=wgrp-demo-server CLI=wgrp-demo-client
WG_SRV=wgrp-demo-s WG_CLI=wgrp-demo-c
PORT=8080
work=
pid_web='' pid_rps='' pid_rpc=''

# Step titles in bold on a terminal.
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '    %s\n' "$*"; }
die() {
	echo "demo: $*" >&2
	exit 1
}

# stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL.
stop_pid() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 50); do
		running "$1" || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

cleanup() {
	local ns
	# Cleaning up must get to the end: no stop on errors, nor when the
	# terminal or a pipe reading our output is gone.
	set +e
	trap - EXIT INT TERM
	trap '' PIPE HUP
	[ -n "$work" ] || return 0
	step "Cleaning up"
	# rpc first, so that it removes its mapping from the running rps; then
	# rps, which removes its interface; then the web service.
	stop_pid "$pid_rpc"
	stop_pid "$pid_rps"
	stop_pid "$pid_web"
	for ns in "$OUT" "$SRV" "$CLI"; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$work"
	say "namespaces, interfaces and processes removed"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

logged() { grep -q -- "$2" "$work/$1.log"; }
show_log() {
	echo "---- $1 log:" >&2
	cat "$work/$1.log" >&2
}

# ------------------------------------------------------------------ 1
step "Installing the Debian packages it needs (scripts/setup.sh)"
scripts/setup.sh
for tool in curl socat wg ip; do
	command -v "$tool" >/dev/null || die "$tool is missing after scripts/setup.sh"
done
say "all present"

# ------------------------------------------------------------------ 2
step "Building into build/ (cmake)"
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
rps=$PWD/build/cmd/rps/rps rpc=$PWD/build/cmd/rpc/rpc
say "$("$rps" -V), $("$rpc" -V)"

# ------------------------------------------------------------------ 3
step "Creating three network namespaces: outside host, server, client"
# A leftover of an interrupted demo is replaced; one in use is refused
# (before $work is set: the cleanup must not delete another demo's).
netns_new "$OUT" "$SRV" "$CLI" || die "cannot create the namespaces"
work=$(mktemp -d /tmp/wgrp-demo.XXXXXX)
ip link add wgrp-demo-o netns "$OUT" type veth peer name wgrp-demo-so netns "$SRV"
ip link add wgrp-demo-sc netns "$SRV" type veth peer name wgrp-demo-cs netns "$CLI"
# addr NETNS DEV IPV4 [IPV6]
addr() {
	ip -n "$1" addr add "$3" dev "$2"
	[ -z "${4:-}" ] || ip -n "$1" addr add "$4" dev "$2" nodad
	ip -n "$1" link set "$2" up
}
addr "$OUT" wgrp-demo-o 198.51.100.2/24 2001:db8:1::2/64
addr "$SRV" wgrp-demo-so 198.51.100.1/24 2001:db8:1::1/64
addr "$SRV" wgrp-demo-sc 192.0.2.1/24
addr "$CLI" wgrp-demo-cs 192.0.2.2/24
say "$OUT   198.51.100.2, 2001:db8:1::2   (someone on the internet)"
say "$SRV   198.51.100.1, 2001:db8:1::1   (the public server)"
say "$SRV   192.0.2.1  <->  $CLI 192.0.2.2   (the client's way out)"

# ------------------------------------------------------------------ 4
step "Writing configs from packaging/examples with fresh keys (wg genkey)"
key_srv=$(wg genkey) key_cli=$(wg genkey)
# The examples as a user fills them in: keys, and the server's address.
sed -e "s|<server_private_key>|$key_srv|" -e "s|<client_public_key>|$(wg pubkey <<<"$key_cli")|" \
	packaging/examples/wg-server.conf >"$work/wg-server.conf"
sed -e "s|<client_private_key>|$key_cli|" -e "s|<server_public_key>|$(wg pubkey <<<"$key_srv")|" \
	-e "s|server.example.com:51820|192.0.2.1:51820|" \
	packaging/examples/wg-client.conf >"$work/wg-client.conf"
chmod 600 "$work"/*.conf
say "$work/wg-server.conf: tunnel address 10.0.0.1/24, listens on UDP 51820"
say "$work/wg-client.conf: tunnel address 10.0.0.2/32, Endpoint 192.0.2.1:51820"

# ------------------------------------------------------------------ 5
step "Starting a small web service on the client: 127.0.0.1:$PORT"
cat >"$work/page.html" <<'HTML'
<!doctype html>
<title>wg-rp demo</title>
<p>Hello from the web service on the client, behind the tunnel.</p>
HTML
ip netns exec "$CLI" socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" \
	EXEC:"$PWD/test/respond.sh $work/page.html" 2>"$work/web.log" &
pid_web=$!
wait_for 10 sh -c "ip netns exec $CLI ss -Htln 'sport = :$PORT' | grep -q ." ||
	die "the web service did not start"
say "socat serving $work/page.html (reachable only inside $CLI)"

# ------------------------------------------------------------------ 6
step "Starting rps on the server"
# Kernel WireGuard if this kernel has the module; rps falls back otherwise.
modprobe wireguard 2>/dev/null || true
say "ip netns exec $SRV rps -c wg-server.conf -i $WG_SRV"
# setsid: Ctrl-C reaches this script only, which stops the daemons in order.
setsid ip netns exec "$SRV" "$rps" -c "$work/wg-server.conf" -i "$WG_SRV" 2>"$work/rps.log" &
pid_rps=$!
if ! wait_for 30 logged rps "ready"; then
	show_log rps
	die "rps did not start"
fi
if logged rps "is up (kernel WireGuard)"; then
	say "WireGuard path: kernel (the wireguard module)"
else
	say "WireGuard path: userspace (wireguard-go; this kernel has no WireGuard module)"
fi
say "API (reachable through the tunnel only): $(sed -n 's/.*info: API listening on //p' "$work/rps.log" | paste -sd ' ' -)"

# ------------------------------------------------------------------ 7
step "Starting rpc on the client: publish 127.0.0.1:$PORT as the server's port $PORT"
say "ip netns exec $CLI rpc -c wg-client.conf -i $WG_CLI -r 127.0.0.1:$PORT-$PORT"
setsid ip netns exec "$CLI" "$rpc" -c "$work/wg-client.conf" -i "$WG_CLI" -r "127.0.0.1:$PORT-$PORT" \
	2>"$work/rpc.log" &
pid_rpc=$!
if ! wait_for 60 logged rpc "port $PORT on the server now reaches"; then
	show_log rps
	show_log rpc
	die "rpc did not register its mapping"
fi
say "rpc: $(sed -n "s/.*info: \(port $PORT on the server now reaches .*\)/\1/p" "$work/rpc.log" | tail -1)"
say "rps: $(sed -n "s/.*info: \(port $PORT mapped to .*\)/\1/p" "$work/rps.log" | tail -1)"
say "the mapping as the API lists it to the client:"
ip netns exec "$CLI" curl -sS --max-time 10 http://10.0.0.1/api/v1/port-mappings | sed 's/^/      /'
echo

# ------------------------------------------------------------------ 8
step "Fetching the page from the outside host through the server's public port"
for url in "http://198.51.100.1:$PORT/" "http://[2001:db8:1::1]:$PORT/"; do
	say "ip netns exec $OUT curl -g '$url'"
	if ! answer=$(ip netns exec "$OUT" curl -sS -g --max-time 15 "$url"); then
		show_log rps
		show_log rpc
		die "the fetch failed"
	fi
	printf '%s\n' "$answer" | sed 's/^/      /'
	cmp -s <(printf '%s\n' "$answer") "$work/page.html" || die "the answer is not the client's page"
done
say "the outside host got the client's page: it works"

if [ $keep = 0 ]; then
	say "(run with --keep to leave it running and try more)"
	exit 0
fi

# ------------------------------------------------------------------ 9
step "Running until Ctrl-C. Try, in another terminal:"
cat <<EOF
    ip netns exec $OUT curl http://198.51.100.1:$PORT/
    ip netns exec $OUT curl -g 'http://[2001:db8:1::1]:$PORT/'
    ip netns exec $CLI curl http://10.0.0.1/api/v1/port-mappings
    ip netns exec $CLI curl -X POST http://10.0.0.1/api/v1/heartbeat \\
        -H 'Content-Type: application/json' -d '{"client_ip":"10.0.0.2"}'    # 401: only rpc can sign
    ip netns exec $SRV wg show $WG_SRV
    ip netns exec $OUT curl http://10.0.0.1/api/v1/port-mappings    # fails: the API is tunnel-only
    tail -f $work/rps.log $work/rpc.log
EOF
# Waits for Ctrl-C (then cleans up and exits 0), or for a daemon to stop;
# wait returns at once on the trapped signal.
trap 'exit 0' INT
while running "$pid_rps" && running "$pid_rpc"; do
	sleep 1 &
	wait $! || true
done
show_log rps
show_log rpc
die "a daemon stopped by itself"
