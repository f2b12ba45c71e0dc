#!/bin/bash
# The tunnel under rps and rpc, and what they log: a daemon whose userspace
# WireGuard dies or whose interface is deleted says why and exits 1 (for
# systemd to restart it); neither daemon is dumpable; rps rate-limits its log
# of refused ports per client; rpc escapes what a server says. In three
# network namespaces joined by veth pairs, with nothing linked to the root
# namespace, on userspace WireGuard (wireguard-go).
#
#   netns $S (server: rps)                    netns $C (client: rpc)
#   $VSC 192.0.2.1/24      <----- veth ----->  $VC 192.0.2.2/24
#   $WS  10.98.0.1/24      <====== wg =====>   $WC 10.98.0.2/32
#        UDP 51820                                 service on 127.0.0.1:3000;
#                                                  a fake API on 127.0.0.1:80 at the end
#   $VSD 203.0.113.1/24    <----- veth ----->  netns $D (client2: rpc2)
#   $WS                    <====== wg =====>   $WD 10.98.0.3/32
#
#   rps  (S): --allow-ports 1024-65535
#   rpc  (C): -r 127.0.0.1:3000-3000 and 8 routes to ports 11-18, which rps forbids
#   rpc2 (D): -r 127.0.0.1:3000-19, forbidden too
# The daemons run as nobody with the capabilities they need (as a unit with
# User= and AmbientCapabilities= would), for their dumpability to show.
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   not dumpable         the daemons' /proc/PID files belong to root, as the
#                        kernel makes them for a process that is not
#                        dumpable; a control process's belong to its user
#   refused ports        rps answers every refusal, logs 3 for rpc's 8 (the
#                        burst), and still logs rpc2's
#   wireguard-go killed  kill -9 of rps's and of rpc2's wireguard-go: each
#                        daemon logs why and exits 1 within 5 s
#   interface deleted    ip link del of rpc's and (restarted) rps's interface:
#                        the same
#   server text escaped  rpc against a fake API whose refusal holds a newline
#                        and an escape sequence: logged on one line, escaped
#
# usage: tunnel_test.sh RPS RPC
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
if [ $# -ne 2 ]; then
	echo "usage: $0 RPS RPC" >&2
	exit 2
fi
rps=$(realpath "$1") rpc=$(realpath "$2")
command -v wireguard-go >/dev/null || skip_test "needs wireguard-go"
command -v setpriv >/dev/null || skip_test "needs setpriv (util-linux)"
nobody=65534
[ -x /usr/bin/python3 ] || skip_test "needs /usr/bin/python3 for the fake API"

tag=$$
S=wgrp-tun-s-$tag C=wgrp-tun-c-$tag D=wgrp-tun-d-$tag
VSC=tsc$tag VC=tc$tag VSD=tsd$tag VD=td$tag
# Unique WireGuard names: UAPI sockets share /var/run/wireguard.
WS=tuws$tag WC=tuwc$tag WD=tuwd$tag
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"

# Daemons stopped with SIGTERM (they remove their interfaces), the rest
# killed, the namespaces deleted.
trap 'end_run "$S" "$C" "$D"' EXIT
trap 'exit 1' INT TERM

dump_logs() {
	local f
	for f in "$work"/*.log; do
		echo "---- ${f##*/} (last 30 lines)"
		tail -n 30 "$f"
	done
}
finish() {
	[ "$failures" -gt 0 ] && dump_logs
	summary
}
# count_of FILE STRING: how many lines of FILE hold STRING, in $count.
count_of() {
	count=$(grep -cF -- "$2" "$1")
}

# ---------------------------------------------------------------- namespaces
netns_new "$S" "$C" "$D" || die "cannot create the namespaces"
ip link add "$VSC" netns "$S" type veth peer name "$VC" netns "$C" &&
	ip link add "$VSD" netns "$S" type veth peer name "$VD" netns "$D" ||
	die "cannot create veth pairs"
netns_addr "$S" "$VSC" 192.0.2.1/24 && netns_addr "$C" "$VC" 192.0.2.2/24 &&
	netns_addr "$S" "$VSD" 203.0.113.1/24 && netns_addr "$D" "$VD" 203.0.113.2/24 ||
	die "cannot set addresses"

key_s=$(wg genkey) key_c=$(wg genkey) key_d=$(wg genkey)
pub_s=$(wg pubkey <<<"$key_s") pub_c=$(wg pubkey <<<"$key_c") pub_d=$(wg pubkey <<<"$key_d")
cat >"$work/server.conf" <<CONF
[Interface]
PrivateKey = $key_s
Address = 10.98.0.1/24
ListenPort = 51820

[Peer]
PublicKey = $pub_c
AllowedIPs = 10.98.0.2/32

[Peer]
PublicKey = $pub_d
AllowedIPs = 10.98.0.3/32
CONF
# client_conf KEY ADDRESS ENDPOINT
client_conf() {
	cat <<CONF
[Interface]
PrivateKey = $1
Address = $2

[Peer]
PublicKey = $pub_s
Endpoint = $3
AllowedIPs = 10.98.0.0/24
PersistentKeepalive = 25
CONF
}
client_conf "$key_c" 10.98.0.2/32 192.0.2.1:51820 >"$work/client.conf"
client_conf "$key_d" 10.98.0.3/32 203.0.113.1:51820 >"$work/client2.conf"
chmod 600 "$work"/*.conf
chown "$nobody" "$work"/*.conf
chmod 755 "$work"

# ---------------------------------------------------------------- daemons
# As nobody, with what creating the interface, running wireguard-go (its UAPI
# socket in /var/run/wireguard) and the API on port 80 need.
caps=+net_admin,+net_raw,+net_bind_service,+dac_override
unprivileged=(setpriv --reuid "$nobody" --regid "$nobody" --clear-groups --inh-caps "$caps"
	--ambient-caps "$caps")
forbidden=()
for port in $(seq 11 18); do forbidden+=(-r "127.0.0.1:3000-$port"); done
# start NAME NETNS LOG PROGRAM ARGS...: in the background; the pid in $pid_NAME.
start() {
	local name=$1 ns=$2 log=$3
	shift 3
	ip netns exec "$ns" "${unprivileged[@]}" "$@" 2>"$work/$log" &
	printf -v "pid_$name" %s "$!"
	pids+=("$!")
}
start_rps() {
	start rps "$S" "$1" "$rps" -c "$work/server.conf" -i "$WS" --allow-ports 1024-65535 -v
}
# userspace_pid LOG: the pid of the wireguard-go the daemon of LOG started, in $wg_pid.
userspace_pid() {
	local re='runs on the userspace implementation \(pid ([0-9]+)\)'
	text_of "$work/$1"
	wg_pid=
	[[ $text =~ $re ]] && wg_pid=${BASH_REMATCH[1]}
}
# expect_exit NAME PID STATUS: PID exits with STATUS within 5 s.
expect_exit() {
	local deadline status
	deadline=$(awk -v t="$EPOCHREALTIME" 'BEGIN { printf "%.3f", t + 5 }')
	while running "$2" && awk -v t="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(t < d) }'; do
		nap 0.05
	done
	if running "$2"; then
		fail "$1: still running 5 s later"
		kill -KILL "$2"
		wait "$2"
		return
	fi
	wait "$2"
	status=$?
	expect_eq "$1: exit status" "$3" "$status"
}

echo "hello" >"$work/page"
serve "$C" 127.0.0.1 3000 "$work/page"
start_rps rps.log
wait_for 30 contains "$work/rps.log" "ready" || die "rps did not start: $(cat "$work/rps.log")"
start rpc "$C" rpc.log "$rpc" -c "$work/client.conf" -i "$WC" -r 127.0.0.1:3000-3000 \
	"${forbidden[@]}" --heartbeat-interval 1 -v
wait_for 60 contains "$work/rpc.log" "port 3000 on the server now reaches" ||
	die "rpc did not register port 3000"

# ================================================================ not dumpable
section "not dumpable"
ip netns exec "$S" "${unprivileged[@]}" sleep 60 &
pid_control=$!
pids+=("$pid_control")
sleeping() { [ "$(cat "/proc/$pid_control/comm" 2>/dev/null)" = sleep ]; }
wait_for 10 sleeping || fail "the control process did not start"
# owner PID: the owner of /proc/PID/environ, in $owner: root for a process
# that is not dumpable, whoever runs it otherwise.
owner() { owner=$(stat -c %u "/proc/$1/environ"); }
owner "$pid_control"
expect_eq "a control process started the same way owns its /proc files" "$nobody" "$owner"
owner "$pid_rps"
expect_eq "rps is not dumpable: root owns its /proc files" 0 "$owner"
owner "$pid_rpc"
expect_eq "rpc is not dumpable: root owns its /proc files" 0 "$owner"
kill "$pid_control"

# ================================================================ refused ports
section "refused ports: rate-limited per client"
# rpc logs every refusal of its own (one per mapping): all 8 answered.
all_refused() {
	count_of "$work/rpc.log" "server refused port "
	[ "$count" -ge 8 ]
}
wait_for 30 all_refused && pass "rps answered rpc's 8 forbidden ports with a refusal" ||
	fail "rpc logged $count refusals, want 8"
check "rpc logs the server's reason" contains "$work/rpc.log" \
	"server refused port 18: port 18 is not allowed on this server (see --allow-ports)"
start rpc2 "$D" rpc2.log "$rpc" -c "$work/client2.conf" -i "$WD" -r 127.0.0.1:3000-19 -v
wait_for 60 contains "$work/rpc2.log" "server refused port 19" || fail "rpc2 was not refused port 19"
wait_for 10 contains "$work/rps.log" "refused port 19 to client 10.98.0.3:" &&
	pass "rps logs rpc2's refusal after rpc's burst" || fail "rps did not log rpc2's refusal"
count_of "$work/rps.log" "to client 10.98.0.2:"
expect_eq "rps logs 3 of rpc's 8 refusals" 3 "$count"

# ================================================================ wireguard-go killed
section "wireguard-go killed"
userspace_pid rps.log
[ -n "$wg_pid" ] || die "rps did not log its wireguard-go's pid"
kill -KILL "$wg_pid"
expect_exit "rps after kill -9 of its wireguard-go" "$pid_rps" 1
check "rps logs why" contains "$work/rps.log" \
	"the userspace WireGuard of $WS (pid $wg_pid) was killed by signal 9 (Killed): exiting with status 1"
check "rps leaves no interface" eval '! ip -n "$S" link show dev "$WS" >/dev/null 2>&1'

userspace_pid rpc2.log
[ -n "$wg_pid" ] || die "rpc2 did not log its wireguard-go's pid"
kill -KILL "$wg_pid"
expect_exit "rpc2 after kill -9 of its wireguard-go" "$pid_rpc2" 1
check "rpc2 logs why" contains "$work/rpc2.log" \
	"the userspace WireGuard of $WD (pid $wg_pid) was killed by signal 9 (Killed): exiting with status 1"

# ================================================================ interface deleted
section "interface deleted"
userspace_pid rpc.log
ip -n "$C" link del "$WC"
expect_exit "rpc after ip link del $WC" "$pid_rpc" 1
check "rpc logs why" contains "$work/rpc.log" \
	"interface $WC is gone and its userspace WireGuard (pid $wg_pid) exited with status"
check "rpc leaves no wireguard-go" eval '! running "$wg_pid"'

start_rps rps2.log
wait_for 30 contains "$work/rps2.log" "ready" || die "rps did not start again: $(cat "$work/rps2.log")"
userspace_pid rps2.log
ip -n "$S" link del "$WS"
expect_exit "rps after ip link del $WS" "$pid_rps" 1
check "rps logs why" contains "$work/rps2.log" \
	"interface $WS is gone and its userspace WireGuard (pid $wg_pid) exited with status"
check "rps leaves no wireguard-go" eval '! running "$wg_pid"'

# ================================================================ server text escaped
section "server text escaped"
cat >"$work/fake_api.py" <<'PY'
import http.server, json

# A refusal whose message would forge a log line and color the terminal.
FORGED = "port 3000 is taken\nrps: info: port 3000 mapped for you \x1b[31mred\\x0a"

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, code, obj):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if self.path.startswith("/api/v1/heartbeat"):
            self.answer(200, {"success": True, "message": "Heartbeat received",
                              "server_startup_time": 1700000000, "mappings": []})
        else:
            self.answer(409, {"success": False, "message": FORGED})

    def do_GET(self):
        self.answer(200, {"success": True, "message": "0 mappings", "port_mappings": []})

    def do_DELETE(self):
        self.answer(200, {"success": True, "message": "deleted"})

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", 80), Handler).serve_forever()
PY
ip netns exec "$C" /usr/bin/python3 "$work/fake_api.py" 2>"$work/fake_api.log" &
pids+=("$!")
listening() { [ -n "$(ip netns exec "$C" ss -Htln "sport = :80")" ]; }
wait_for 10 listening || die "the fake API did not start"
start rpc "$C" rpc-fake.log "$rpc" -c "$work/client.conf" -i "$WC" --server 127.0.0.1 \
	-r 127.0.0.1:3000-3000 -v
wait_for 30 contains "$work/rpc-fake.log" "server refused port 3000" ||
	fail "rpc did not log the fake API's refusal"
check "rpc logs the message escaped, on one line" contains "$work/rpc-fake.log" \
	'server refused port 3000: port 3000 is taken\x0arps: info: port 3000 mapped for you \x1b[31mred\\x0a; retrying in 30 s'
check "no line of rpc's log is forged" eval '! grep -q "^rps: info: port 3000 mapped for you" "$work/rpc-fake.log"'
check "no escape character reaches rpc's log" eval '! grep -q $'"'"'\x1b'"'"' "$work/rpc-fake.log"'
kill -TERM "$pid_rpc"
expect_exit "rpc after SIGTERM" "$pid_rpc" 0

finish
