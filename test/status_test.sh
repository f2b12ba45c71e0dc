#!/bin/bash
# `rps status` and `rpc status` against known state, and the control socket
# under misuse: the real rps and rpc (on the WireGuard the third argument
# names), in namespaces joined by veth pairs with nothing linked to the root
# namespace (the control sockets are files: /run/wg-rp/IFNAME.sock, named
# after our interfaces).
#
#   netns $O (outside host)      netns $S (server: rps)             netns $C (client: rpc)
#   $VO  198.51.100.2/24  <-veth-> $VSO 198.51.100.1/24
#                                 $VSC 192.0.2.1/24     <-veth->  $VC 192.0.2.2/24
#                                 $WS  10.99.0.1/24  <== wg ==>   $WC 10.99.0.2/32
#                                      fd00:99::1/64                  fd00:99::2/128
#   rps --allow-ports 3000,7007; rpc routes:
#     127.0.0.1:3000-3000                 a TCP echo service (socat)
#     127.0.0.1:7007-7007/udp             a UDP echo service (test/udp_tool.py)
#     127.0.0.1:3001-22,send-proxy-v2     refused: port 22 is not allowed
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   waiting     rpc started before rps: its routes wait, the server is not
#               reachable, no handshake yet
#   rps         1000 bytes echoed over TCP, 3 datagrams of 100 bytes over
#               UDP: rps status and rps status --json show the interface,
#               the peer and each mapping with exact counters
#   rpc         rpc status and --json: the server peer, each route's state
#               (registered, refused with the server's message) and counters
#   errors      no daemon on an interface: message, exit 1; a stale socket
#               file: said so; not root: refused by the file's mode, and
#               by the daemon's check of SO_PEERCRED (a process of uid
#               nobody holding CAP_DAC_OVERRIDE); a bad command line: exit 2
#   misuse      6 clients that send nothing (more than the daemon serves
#               at once): the API still answers meanwhile, all are dropped,
#               then status answers; junk and 1 MiB get an error answer
#   sockets     a second rps on the same interface is refused and leaves the
#               first's socket alone; SIGTERM removes the socket file; after
#               SIGKILL the file stays, and the next rpc replaces it
# At the end: no sanitizer report in any log.
#
# usage: status_test.sh RPS RPC kernel|userspace (the WireGuard the daemons
# must find: the status says which)
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces"
daemon_args "$@"
dir=$(cd "$(dirname "$0")" && pwd)
tool=(/usr/bin/python3 "$dir/status_tool.py")
[ -x /usr/bin/python3 ] || skip_test "needs /usr/bin/python3"
command -v setpriv >/dev/null || skip_test "needs setpriv (util-linux)"

netns_names st
sock_s=/run/wg-rp/$WS.sock sock_c=/run/wg-rp/$WC.sock
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"
# A daemon killed by a failed check leaves its socket file: ours to remove.
trap 'end_run "$O" "$S" "$C"; rm -f "$sock_s" "$sock_c"' EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- namespaces
netns_three_hosts || die "cannot create and link the namespaces"

pair_configs
# The client's name, as rps add-client writes it.
sed -i 's/^\[Peer\]$/[Peer]\n# laptop/' "$work/server.conf"
pub_of() { sed -n 's/^PrivateKey = //p' "$1" | wg pubkey; }
pub_s=$(pub_of "$work/server.conf") pub_c=$(pub_of "$work/client.conf")

# ---------------------------------------------------------------- services
in_ns "$C" socat TCP-LISTEN:3000,bind=127.0.0.1,reuseaddr,fork PIPE 2>>"$work/socat.log" &
pids+=("$!")
in_ns "$C" /usr/bin/python3 "$dir/udp_tool.py" echo 127.0.0.1:7007 >/dev/null 2>>"$work/echo.log" &
pids+=("$!")
listening() { [ -n "$(ip netns exec "$1" ss -H"$2"lpn "src = $3")" ]; }
wait_for 10 listening "$C" t 127.0.0.1:3000 && wait_for 10 listening "$C" u 127.0.0.1:7007 ||
	die "services did not start"

start_rps() {
	ip netns exec "$S" "$rps" -c "$work/server.conf" -i "$WS" --allow-ports 3000,7007 -v \
		2>>"$work/rps.log" &
	pid_rps=$!
	pids+=("$pid_rps")
}
start_rpc() {
	ip netns exec "$C" "$rpc" -c "$work/client.conf" -i "$WC" --heartbeat-interval 1 -v \
		-r 127.0.0.1:3000-3000 -r 127.0.0.1:7007-7007/udp -r 127.0.0.1:3001-22,send-proxy-v2 \
		2>>"$work/rpc.log" &
	pid_rpc=$!
	pids+=("$pid_rpc")
}
# status PROGRAM ARGS...: its output in $work/out, its stderr in $work/err,
# its exit status in $st.
status() {
	local prog=$rps
	[ "$1" = rpc ] && prog=$rpc
	"$prog" status "${@:2}" >"$work/out" 2>"$work/err"
	st=$?
}
# json PROGRAM IFNAME: its status --json in $work/NAME.json.
json() {
	status "$1" -i "$2" --json
	cp "$work/out" "$work/$1.json"
}
# field PROGRAM PATH: a field of $work/PROGRAM.json in $got.
field() { got=$("${tool[@]}" field "$work/$1.json" "$2"); }
expect_field() {
	field "$2" "$3"
	expect_eq "$1" "$4" "$got"
}
matches() { [[ $1 =~ $2 ]]; }
# has NAME LINE: the text status in $work/out holds LINE, whole.
has() {
	if grep -qxF -- "$2" "$work/out"; then pass "$1"; else
		fail "$1: no line \"$2\" in:"$'\n'"$(cat "$work/out")"
	fi
}

# ================================================================ waiting
section "waiting: rpc before rps"
start_rpc
wait_for 30 contains "$work/rpc.log" "ready; waiting for server" ||
	die "rpc did not get ready: $(cat "$work/rpc.log")"
status rpc -i "$WC"
expect_eq "rpc status exits 0" 0 "$st"
has "the interface" "interface: $WC (rpc, $expect WireGuard)"
has "the server, not reachable" "  server API: http://10.99.0.1:80 (not reachable)"
has "the server's peer" "peer: $pub_s (the server)"
has "no handshake yet" "  latest handshake: never"
has "a route waits" "route 127.0.0.1:3000 -> server port 3000/tcp: waiting for the server"
json rpc "$WC"
expect_field "--json: the route's state" rpc routes.0.state waiting
expect_field "--json: no handshake" rpc peers.0.handshake_age null

# ================================================================ rps
section "rps: status against known traffic"
start_rps
wait_for 30 contains "$work/rps.log" "ready" || die "rps did not get ready: $(cat "$work/rps.log")"
registered() { contains "$work/rpc.log" "port 3000 on the server now reaches" &&
	contains "$work/rpc.log" "port 7007/udp on the server now reaches" &&
	contains "$work/rpc.log" "server refused port 22"; }
wait_for 30 registered || die "rpc did not register: $(tail -n 5 "$work/rpc.log")"
got=$(in_ns "$O" "${tool[@]}" tcp 198.51.100.1 3000 1000 2>&1)
expect_eq "1000 bytes echoed over TCP" ok "$got"
got=$(in_ns "$O" "${tool[@]}" udp 198.51.100.1 7007 3 100 2>&1)
expect_eq "3 datagrams echoed over UDP" ok "$got"
# The TCP connection's end reaches rps's counters once both sides closed.
closed() { json rps "$WS" && field rps peers.0.mappings.0.active && [ "$got" = 0 ]; }
wait_for 10 closed
status rps -i "$WS"
expect_eq "rps status exits 0" 0 "$st"
sed 's/^/   | /' "$work/out"
has "the interface and backend" "interface: $WS (rps, $expect WireGuard)"
has "the listening port" "  listening port: 51820"
has "the API's addresses" "  API: 10.99.0.1:80, [fd00:99::1]:80"
has "the peer, with its name" "peer: $pub_c (laptop)"
has "its addresses" "  allowed ips: 10.99.0.2/32, fd00:99::2/128"
check "its endpoint" grep -qx "  endpoint: 192\.0\.2\.2:[0-9]*" "$work/out"
check "its latest handshake" grep -qxE "  latest handshake: (now|([0-9]+ [a-z]+s?(, )?)+ ago)" "$work/out"
check "its transfer" grep -qxE "  transfer: [0-9.]+ [KMG]?i?B received, [0-9.]+ [KMG]?i?B sent" "$work/out"
check "the TCP mapping and its counters" grep -qxE "  port 3000/tcp -> 10\.99\.0\.2:[0-9]+ \(127\.0\.0\.1:3000\): 0 active, 1 total connections; 1000 B from visitors, 1000 B to them" "$work/out"
check "the UDP mapping and its counters" grep -qxE "  port 7007/udp -> 10\.99\.0\.2:[0-9]+ \(127\.0\.0\.1:7007\): 1 active, 1 total flows; 300 B from visitors, 300 B to them; 3 datagrams in, 3 out" "$work/out"
check "not the refused port" bash -c "! grep -q 'port 22' '$work/out'"

json rps "$WS"
expect_field "--json: success" rps success true
expect_field "--json: program" rps program rps
expect_field "--json: interface" rps interface "$WS"
expect_field "--json: backend" rps backend "$expect"
expect_field "--json: listen_port" rps listen_port 51820
expect_field "--json: api" rps api '["10.99.0.1:80", "[fd00:99::1]:80"]'
expect_field "--json: one peer" rps peers.1 "(missing)"
expect_field "--json: its key" rps peers.0.public_key "$pub_c"
expect_field "--json: its name" rps peers.0.name laptop
expect_field "--json: its allowed_ips" rps peers.0.allowed_ips '["10.99.0.2/32", "fd00:99::2/128"]'
field rps peers.0.endpoint
check "--json: its endpoint" matches "$got" '^192\.0\.2\.2:[0-9]+$'
field rps peers.0.handshake_age
check "--json: its handshake_age" matches "$got" '^[0-9]+$'
field rps peers.0.rx_bytes
check "--json: its rx_bytes" matches "$got" '^[1-9][0-9]*$'
m=peers.0.mappings
expect_field "--json: two mappings" rps $m.2 "(missing)"
expect_field "--json: TCP port" rps $m.0.remote_port 3000
expect_field "--json: TCP protocol" rps $m.0.protocol tcp
expect_field "--json: TCP local_addr" rps $m.0.local_addr 127.0.0.1:3000
expect_field "--json: TCP total" rps $m.0.total 1
expect_field "--json: TCP bytes_in" rps $m.0.bytes_in 1000
expect_field "--json: TCP bytes_out" rps $m.0.bytes_out 1000
expect_field "--json: TCP signed" rps $m.0.signed true
expect_field "--json: UDP port" rps $m.1.remote_port 7007
expect_field "--json: UDP protocol" rps $m.1.protocol udp
expect_field "--json: UDP flows" rps $m.1.active 1
expect_field "--json: UDP datagrams_in" rps $m.1.datagrams_in 3
expect_field "--json: UDP bytes_out" rps $m.1.bytes_out 300
expect_field "--json: UDP drops" rps $m.1.drops.too_big 0

# ================================================================ rpc
section "rpc: status of the routes"
status rpc -i "$WC"
expect_eq "rpc status exits 0" 0 "$st"
sed 's/^/   | /' "$work/out"
has "the server, reachable" "  server API: http://10.99.0.1:80 (reachable)"
check "a handshake now" grep -qxE "  latest handshake: (now|([0-9]+ [a-z]+s?(, )?)+ ago)" "$work/out"
has "the TCP route, registered" "route 127.0.0.1:3000 -> server port 3000/tcp: registered"
check "its counters" grep -qxE "  tunnel 10\.99\.0\.2:[0-9]+: 0 active, 1 total connections; 1000 B from visitors, 1000 B to them" "$work/out"
has "the UDP route, registered" "route 127.0.0.1:7007 -> server port 7007/udp: registered"
check "its counters" grep -qxE "  tunnel 10\.99\.0\.2:[0-9]+: 1 active, 1 total flows; 300 B from visitors, 300 B to them; 3 datagrams in, 3 out" "$work/out"
has "the refused route, with the server's message" "route 127.0.0.1:3001 -> server port 22/tcp, send-proxy-v2: refused: port 22 is not allowed on this server (see --allow-ports)"
json rpc "$WC"
expect_field "--json: program" rpc program rpc
expect_field "--json: server reachable" rpc server.reachable true
expect_field "--json: the server's peer" rpc peers.0.server true
expect_field "--json: three routes" rpc routes.3 "(missing)"
expect_field "--json: TCP state" rpc routes.0.state registered
expect_field "--json: TCP option" rpc routes.0.option null
expect_field "--json: TCP local_addr" rpc routes.0.local_addr 127.0.0.1:3000
expect_field "--json: TCP bytes_in" rpc routes.0.bytes_in 1000
expect_field "--json: TCP total" rpc routes.0.total 1
field rpc routes.0.created
check "--json: TCP created" matches "$got" '^[1-9][0-9]{9}$'
expect_field "--json: UDP datagrams_out" rpc routes.1.datagrams_out 3
expect_field "--json: refused state" rpc routes.2.state refused
expect_field "--json: refused option" rpc routes.2.option send-proxy-v2
expect_field "--json: refused message" rpc routes.2.message "port 22 is not allowed on this server (see --allow-ports)"
expect_field "--json: refused created" rpc routes.2.created 0

# ================================================================ errors
section "errors: no daemon, not root, bad usage"
status rps -i stno$$
expect_eq "no daemon: exit 1" 1 "$st"
expect_eq "no daemon: the message" "rps status: no rps is running on stno$$ (no /run/wg-rp/stno$$.sock)" "$(cat "$work/err")"
nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
"${nobody[@]}" "$rps" status -i "$WS" >"$work/out" 2>"$work/err"
expect_eq "not root: exit 1" 1 "$?"
expect_eq "not root: the message" "rps status: permission denied on $sock_s: only root may ask rps" "$(cat "$work/err")"
got=$("${nobody[@]}" --inh-caps=+dac_override --ambient-caps=+dac_override "${tool[@]}" ask "$sock_s" 2>&1)
expect_eq "uid nobody with CAP_DAC_OVERRIDE: refused by the daemon" \
	'{"success":false,"message":"permission denied: only root may use this socket"}' "$got"
check "and logged" contains "$work/rps.log" "refused a client of uid 65534"
status rps --json extra
expect_eq "an extra argument: exit 2" 2 "$st"
check "and said" grep -q 'unexpected argument "extra"' "$work/err"

# ================================================================ misuse
section "misuse: idle, junk and huge control clients"
for i in 1 2 3 4 5 6; do
	"${tool[@]}" idle "$sock_s" >"$work/idle.$i" 2>&1 &
	pids+=("$!")
done
# The daemon's slots are full of idle clients: its loop goes on.
api() { got=$(in_ns "$C" curl -sS --max-time 5 -o /dev/null -w '%{http_code}' http://10.99.0.1/api/v1/port-mappings 2>&1); }
nap 1
api
expect_eq "the API answers meanwhile" 200 "$got"
all_dropped() { [ "$(cat "$work"/idle.* | grep -c '^dropped')" -eq 6 ]; }
check "the 6 idle clients are dropped" wait_for 40 all_dropped
check "they were told nothing" bash -c "! grep -v '^dropped \$' $work/idle.*"
status rps -i "$WS"
expect_eq "then status answers" 0 "$st"
got=$("${tool[@]}" send "$sock_s" junk 2>&1)
check "junk: an error answer" matches "$got" '^\{"success":false,"message":"invalid request: not JSON: ' 
got=$("${tool[@]}" send "$sock_s" big 2>&1)
expect_eq "1 MiB: an error answer" '{"success":false,"message":"request longer than 4096 bytes"}' "$got"
echo '{"command":"reboot"}' | socat - "UNIX-CONNECT:$sock_s" >"$work/out" 2>&1
expect_eq "an unknown command: said so" '{"success":false,"message":"unknown command \"reboot\" (rps knows: status, reload)"}' "$(cat "$work/out")"
api
expect_eq "the API still answers" 200 "$got"
status rps -i "$WS"
expect_eq "status still answers" 0 "$st"

# ================================================================ sockets
section "sockets: a second daemon, SIGTERM, SIGKILL"
ip netns exec "$S" "$rps" -c "$work/server.conf" -i "$WS" 2>"$work/rps2.log"
expect_eq "a second rps on $WS: exit 1" 1 "$?"
check "it says why" contains "$work/rps2.log" "another rps or rpc is running on interface $WS: it answers on $sock_s"
status rps -i "$WS"
expect_eq "the first still answers" 0 "$st"
stop rps "$pid_rps"
expect_eq "rps exits 0 on SIGTERM" 0 "$stop_status"
check "its socket file is gone" test ! -e "$sock_s"
kill -KILL "$pid_rpc"
wait "$pid_rpc" 2>/dev/null
check "rpc killed: its socket file stays" test -S "$sock_c"
status rpc -i "$WC"
expect_eq "status of the killed rpc: exit 1" 1 "$st"
expect_eq "and the message" "rpc status: no rpc is running on $WC ($sock_c is left from one that was killed)" "$(cat "$work/err")"
gone() { ! ip -n "$C" link show "$WC" >/dev/null 2>&1; }
wait_for 10 gone
start_rpc
started() { count_of "$work/rpc.log" "ready; waiting for server"; [ "$count" -eq 2 ]; }
check "the next rpc starts" wait_for 30 started
check "and says it replaced the stale file" contains "$work/rpc.log" "removing $sock_c, left by an earlier rpc that did not remove it"
status rpc -i "$WC"
expect_eq "its status answers" 0 "$st"
stop rpc "$pid_rpc"
expect_eq "rpc exits 0 on SIGTERM" 0 "$stop_status"
check "its socket file is gone" test ! -e "$sock_c"

no_sanitizer_report
finish
