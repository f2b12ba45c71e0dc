#!/bin/bash
# The visitor's real address reaches the service, end to end: the real rps
# and rpc on userspace WireGuard, a real nginx speaking the PROXY protocol,
# and services that report getpeername(), in namespaces joined by veth pairs
# with nothing linked to the root namespace.
#
#   netns $O (outside host)      netns $S (server: rps)             netns $C (client: rpc)
#   $VO  198.51.100.2/24  <-veth-> $VSO 198.51.100.1/24
#        2001:db8:1::2/64              2001:db8:1::1/64
#                                 $VSC 192.0.2.1/24     <-veth->  $VC 192.0.2.2/24
#                                 $WS  10.99.0.1/24, .9 <== wg ==> $WC 10.99.0.2/32
#                                      fd00:99::1/64                  fd00:99::2/128
#                                                                 $VCL 192.168.80.1/24 fd80::1/64
#                                                                   <-veth-> netns $L (LAN host)
#                                                                   $VL 192.168.80.2/24 fd80::2/64
#   rpc routes (C):
#     127.0.0.1:8081-8081,send-proxy-v2   nginx, listen proxy_protocol, logs $proxy_protocol_addr
#     127.0.0.1:8082-8082,send-proxy      the same nginx, v1
#     127.0.0.1:7001-7001,transparent     peer service (getpeername)
#     [::1]:7001-7002,transparent         peer service
#     192.168.80.2:7001-7003,transparent  peer service on the LAN host
#     [fd80::2]:7001-7004,transparent     peer service on the LAN host
#     127.0.0.1:7005-7005                 a service that records the first bytes
#   and with userspace only (the UDP visitor options are rpc's logic):
#     127.0.0.1:7101-7101/udp,send-proxy-v2   a UDP service that checks and reports each
#                                             datagram's PROXY v2 header
#     127.0.0.1:7102-7102/udp,transparent     a UDP service that reports recvfrom()'s address
#     [::1]:7102-7103/udp,transparent         the same on ::1
#     192.168.80.2:7101-7104/udp,transparent  the same on the LAN host
#     [fd80::2]:7101-7105/udp,transparent     the same on the LAN host
#
# Sections (each prints "== NAME", then "ok - CHECK" or "FAIL: CHECK"):
#   proxy        nginx logs the outside host's IPv4 and IPv6 addresses, v2 and v1
#   transparent  the services on 127.0.0.1 and ::1 see the outside host as
#                their peer
#   lan          so do the LAN host's; an IPv6 visitor on an IPv4 service (and
#                the reverse) is reset, logged
#   plain        a route without an option never gets a header; a mapping
#                made by hand without the field neither; a bad field is refused
#   forged       from the server's address a connection to rpc's tunnel port
#                without a valid header is reset and counted; from another
#                tunnel address it is refused
#   udp          the UDP services learn the outside host's IPv4 and IPv6
#                addresses from one header per datagram, or as the source of
#                each datagram, and answer it; an IPv6 visitor on an IPv4
#                service is dropped, logged; a datagram without a header from
#                the server is dropped, logged
#   rules        rpc's policy routing is exactly gone after it exits, and
#                after a SIGTERM while it still waits for the server
# At the end: no sanitizer report in any log. With `kernel` (in the test VM)
# the user flow only, on kernel WireGuard: proxy, transparent, rules; the
# rest is rpc's own logic, which the userspace run covers.
#
# usage: visitor_test.sh RPS RPC kernel|userspace
set -u
. "$(dirname "$0")/lib.sh"
need_root "network namespaces and policy routing"
daemon_args "$@"
tool=(/usr/bin/python3 "$(cd "$(dirname "$0")" && pwd)/visitor_tool.py")
command -v nginx >/dev/null || skip_test "needs nginx (Debian: nginx-light)"
[ -x /usr/bin/python3 ] || skip_test "needs /usr/bin/python3"

tag=$$
O=wgrp-vt-o-$tag S=wgrp-vt-s-$tag C=wgrp-vt-c-$tag L=wgrp-vt-l-$tag
VO=vto$tag VSO=vtso$tag VSC=vtsc$tag VC=vtc$tag VCL=vtcl$tag VL=vtl$tag
WS=vtws$tag WC=vtwc$tag
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"
trap 'end_run "$O" "$S" "$C" "$L"' EXIT
trap 'exit 1' INT TERM

lacks() { ! contains "$@"; }

# ---------------------------------------------------------------- namespaces
netns_new "$O" "$S" "$C" "$L" || die "cannot create the namespaces"
ip link add "$VO" netns "$O" type veth peer name "$VSO" netns "$S" &&
	ip link add "$VSC" netns "$S" type veth peer name "$VC" netns "$C" &&
	ip link add "$VCL" netns "$C" type veth peer name "$VL" netns "$L" ||
	die "cannot create veth pairs"
netns_addr "$O" "$VO" 198.51.100.2/24 2001:db8:1::2/64 &&
	netns_addr "$S" "$VSO" 198.51.100.1/24 2001:db8:1::1/64 &&
	netns_addr "$S" "$VSC" 192.0.2.1/24 && netns_addr "$C" "$VC" 192.0.2.2/24 &&
	netns_addr "$C" "$VCL" 192.168.80.1/24 fd80::1/64 && netns_addr "$L" "$VL" 192.168.80.2/24 fd80::2/64 ||
	die "cannot set addresses"
# The LAN host answers visitors through rpc's host, as it must for transparent mode.
ip -n "$L" route add default via 192.168.80.1 && ip -n "$L" -6 route add default via fd80::1 ||
	die "cannot route the LAN host"

# ---------------------------------------------------------------- configs
pair_configs
routes=(-r 127.0.0.1:8081-8081,send-proxy-v2 -r 127.0.0.1:8082-8082,send-proxy
	-r 127.0.0.1:7001-7001,transparent -r "[::1]:7001-7002,transparent"
	-r 192.168.80.2:7001-7003,transparent -r "[fd80::2]:7001-7004,transparent"
	-r 127.0.0.1:7005-7005)
udp_ports=()
if [ "$expect" = userspace ]; then
	routes+=(-r 127.0.0.1:7101-7101/udp,send-proxy-v2 -r 127.0.0.1:7102-7102/udp,transparent
		-r "[::1]:7102-7103/udp,transparent" -r 192.168.80.2:7101-7104/udp,transparent
		-r "[fd80::2]:7101-7105/udp,transparent")
	udp_ports=(7101/udp 7102/udp 7103/udp 7104/udp 7105/udp)
fi

# ---------------------------------------------------------------- services
bg() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@" 2>>"$work/tools.log" &
	pids+=("$!")
}
cat >"$work/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 64; }
http {
	log_format visitor '\$server_port \$proxy_protocol_addr \$remote_addr';
	access_log $work/nginx-access.log visitor;
	client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
	uwsgi_temp_path $work; scgi_temp_path $work;
	server { listen 127.0.0.1:8081 proxy_protocol; location / { return 200 "v2\n"; } }
	server { listen 127.0.0.1:8082 proxy_protocol; location / { return 200 "v1\n"; } }
}
EOF
bg "$C" nginx -c "$work/nginx.conf" -e "$work/nginx-error.log"
bg "$C" "${tool[@]}" peer 127.0.0.1 7001
bg "$C" "${tool[@]}" peer ::1 7001
bg "$L" "${tool[@]}" peer 192.168.80.2 7001
bg "$L" "${tool[@]}" peer fd80::2 7001
bg "$C" "${tool[@]}" first 127.0.0.1 7005 "$work/first.out"
listening() { [ -n "$(ip netns exec "$1" ss -Htln "src = $2")" ]; }
udp_listening() { [ -n "$(ip netns exec "$1" ss -Huln "src = $2")" ]; }
if [ "$expect" = userspace ]; then
	bg "$C" "${tool[@]}" udpproxy 127.0.0.1 7101
	bg "$C" "${tool[@]}" udppeer 127.0.0.1 7102
	bg "$C" "${tool[@]}" udppeer ::1 7102
	bg "$L" "${tool[@]}" udppeer 192.168.80.2 7101
	bg "$L" "${tool[@]}" udppeer fd80::2 7101
	for a in "$C 127.0.0.1:7101" "$C 127.0.0.1:7102" "$C [::1]:7102" "$L 192.168.80.2:7101" \
		"$L [fd80::2]:7101"; do
		# shellcheck disable=SC2086
		wait_for 10 udp_listening $a || die "no UDP service on ${a#* } in ${a%% *}"
	done
fi
# (30 s: nginx starts slowly in the test VM when the host is busy.)
for a in 127.0.0.1:8081 127.0.0.1:8082 127.0.0.1:7001 '[::1]:7001' 127.0.0.1:7005; do
	wait_for 30 listening "$C" "$a" || die "no service on $a in $C"
done
for a in 192.168.80.2:7001 '[fd80::2]:7001'; do
	wait_for 10 listening "$L" "$a" || die "no service on $a in $L"
done

# ---------------------------------------------------------------- daemons
rule_list() { ip -n "$C" rule list; ip -n "$C" -6 rule list; }
rule_list >"$work/rules.before"
ip netns exec "$S" "$rps" -c "$work/server.conf" -i "$WS" --allow-unsigned --check-interval 1 -v \
	2>"$work/rps.log" &
pid_rps=$!
pids+=("$pid_rps")
wait_for 30 contains "$work/rps.log" "ready" || die "rps did not get ready: $(cat "$work/rps.log")"
ip netns exec "$C" "$rpc" -c "$work/client.conf" -i "$WC" --heartbeat-interval 1 -v "${routes[@]}" \
	2>"$work/rpc.log" &
pid_rpc=$!
pids+=("$pid_rpc")
for p in 8081 8082 7001 7002 7003 7004 7005 "${udp_ports[@]}"; do
	wait_for 30 contains "$work/rpc.log" "port $p on the server now reaches" ||
		die "rpc did not register port $p: $(tail -n 5 "$work/rpc.log")"
done
check "rps's interface is $expect WireGuard" contains "$work/rps.log" "interface $WS is up ($expect WireGuard)"
check "rpc's interface is $expect WireGuard" contains "$work/rpc.log" "interface $WC is up ($expect WireGuard)"
check "rpc says how port 8081 tells the visitor" contains "$work/rpc.log" \
	"port 8081 on the server now reaches 127.0.0.1:8081 (tunnel port"
check "rps maps port 8081 with PROXY v2 headers" contains "$work/rps.log" "with PROXY v2 headers"

# ask PORT SERVER_ADDRESS: the outside host's "hello" through port PORT; the answer in $got.
ask() { got=$(in_ns "$O" "${tool[@]}" ask "$2" "$1" 2>&1); }
expect_peer() {
	ask "$2" "$3"
	if [[ $got == "peer $4 "*$'\n'"hello" ]]; then pass "$1"; else fail "$1"$'\n'"  got: $got"; fi
}
# post PORT [MORE_JSON]: the client maps PORT to 10.99.0.2:7005 by hand; the
# answer's status in $text, its body in $work/post.out.
post() {
	in_ns "$C" curl -sS --max-time 10 -o "$work/post.out" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' http://10.99.0.1/api/v1/port-mappings \
		-d '{"local_addr":"127.0.0.1:7005","remote_port":'"$1"',"client_ip":"10.99.0.2","client_port":7005'"${2:-}"'}' \
		>"$work/post.code" 2>&1
	text_of "$work/post.code"
}

# ================================================================ proxy
check_proxy() {
	section "proxy: nginx learns the visitor from PROXY headers"
	expect_page "v2 over the server's IPv4" "$O" http://198.51.100.1:8081/ v2
	expect_page "v2 over the server's IPv6" "$O" "http://[2001:db8:1::1]:8081/" v2
	expect_page "v1 over the server's IPv4" "$O" http://198.51.100.1:8082/ v1
	expect_page "v1 over the server's IPv6" "$O" "http://[2001:db8:1::1]:8082/" v1
	wait_for 5 contains "$work/nginx-access.log" "8082 2001:db8:1::2 127.0.0.1"
	for want in "8081 198.51.100.2 127.0.0.1" "8081 2001:db8:1::2 127.0.0.1" \
		"8082 198.51.100.2 127.0.0.1" "8082 2001:db8:1::2 127.0.0.1"; do
		check "nginx's access log: $want" contains "$work/nginx-access.log" "$want"$'\n'
	done
}

# ================================================================ transparent
check_transparent() {
	section "transparent: the service's peer is the visitor"
	expect_peer "127.0.0.1 service, IPv4 visitor" 7001 198.51.100.1 198.51.100.2
	expect_peer "::1 service, IPv6 visitor" 7002 2001:db8:1::1 2001:db8:1::2
}

# ================================================================ lan
check_lan() {
	section "lan: transparent to a LAN host, and the other family"
	expect_peer "LAN IPv4 service, IPv4 visitor" 7003 198.51.100.1 198.51.100.2
	expect_peer "LAN IPv6 service, IPv6 visitor" 7004 2001:db8:1::1 2001:db8:1::2
	ask 7001 2001:db8:1::1
	expect_eq "an IPv6 visitor on an IPv4 service is reset" reset "$got"
	check "and rpc says why" wait_for 5 contains "$work/rpc.log" \
		"cannot connect to 127.0.0.1:7001 as visitor [2001:db8:1::2]:"
	ask 7002 198.51.100.1
	expect_eq "an IPv4 visitor on an IPv6 service is reset" reset "$got"
}

# ================================================================ plain
check_plain() {
	section "plain: no header without the option"
	ask 7005 198.51.100.1
	expect_eq "a plain route answers" ok "$got"
	post 7006
	expect_eq "a mapping by hand without the field: 200" 200 "$text"
	check "whose answer has no proxy_protocol" lacks "$work/post.out" proxy_protocol
	bg "$C" "${tool[@]}" first 10.99.0.2 7005 "$work/first.out"
	wait_for 10 listening "$C" 10.99.0.2:7005 || fail "no service on 10.99.0.2:7005"
	ask 7006 198.51.100.1
	expect_eq "it answers" ok "$got"
	expect_eq "neither service got a header" "b'hello\n'"$'\n'"b'hello\n'" "$(cat "$work/first.out")"
	post 7007 ',"proxy_protocol":1'
	expect_eq "proxy_protocol 1: 400" 400 "$text"
	check "saying what it takes" contains "$work/post.out" \
		'field \"proxy_protocol\" must be 0 (none) or 2 (PROXY protocol v2)'
}

# ================================================================ forged
check_forged() {
	section "forged: only the server's valid headers"
	tport=$(grep -o 'port 7001 on the server now reaches 127.0.0.1:7001 (tunnel port [0-9]*' "$work/rpc.log" |
		grep -o '[0-9]*$')
	got=$(in_ns "$S" "${tool[@]}" ask 10.99.0.2 "$tport" 2>&1)
	expect_eq "no header, from the server: reset" reset "$got"
	check "logged and counted" wait_for 5 contains "$work/rpc.log" \
		"reset a connection to 10.99.0.2:$tport: PROXY v2 header: bad signature (1 so far)"
	# A LOCAL command (0x20): rps never sends one.
	got=$(in_ns "$S" "${tool[@]}" send 10.99.0.2 "$tport" 0d0a0d0a000d0a515549540a20000000 2>&1)
	expect_eq "a LOCAL header, from the server: reset" reset "$got"
	ip -n "$S" addr add 10.99.0.9/24 dev "$WS" || fail "cannot add 10.99.0.9 in $S"
	# A valid header from a tunnel address that is not the server's.
	hdr=0d0a0d0a000d0a515549540a211100$(printf %02x 12)cb00710702030405000100020a0a0a
	got=$(in_ns "$S" "${tool[@]}" send 10.99.0.2 "$tport" "$hdr" 10.99.0.9 2>&1)
	expect_eq "a valid header from 10.99.0.9: reset" reset "$got"
	check "logged" wait_for 5 contains "$work/rpc.log" "refused a connection from 10.99.0.9:"
}

# ================================================================ udp
# uask PORT SERVER_ADDRESS [N]: N datagrams (1) "hello I" from the outside
# host through the server's UDP port PORT; the answers in $got, a line each.
uask() { got=$(in_ns "$O" "${tool[@]}" uask "$2" "$1" "${3:-1}" 2>&1); }
# expect_udp NAME PORT SERVER_ADDRESS N WANT: N answers, each WANT (with P
# for the port of the outside host's socket), "|" and the datagram.
expect_udp() {
	local want=$5 port i expected=
	uask "$2" "$3" "$4"
	port=$(sed -n '1s/^[a-z]* [^ ]* \([0-9]*\).*/\1/p' <<<"$got")
	for i in $(seq "$4"); do
		expected+="${want/P/$port}|hello $i"$'\n'
	done
	expect_eq "$1" "${expected%$'\n'}" "$got"
}
check_udp() {
	section "udp: the visitor of each datagram"
	expect_udp "send-proxy-v2, IPv4 visitor: one header per datagram" 7101 198.51.100.1 2 \
		"proxy 198.51.100.2 P 198.51.100.1 7101"
	expect_udp "send-proxy-v2, IPv6 visitor" 7101 2001:db8:1::1 2 "proxy 2001:db8:1::2 P 2001:db8:1::1 7101"
	expect_udp "transparent, 127.0.0.1 service, IPv4 visitor" 7102 198.51.100.1 2 "peer 198.51.100.2 P"
	expect_udp "transparent, ::1 service, IPv6 visitor" 7103 2001:db8:1::1 2 "peer 2001:db8:1::2 P"
	expect_udp "transparent, LAN IPv4 service, IPv4 visitor" 7104 198.51.100.1 2 "peer 198.51.100.2 P"
	expect_udp "transparent, LAN IPv6 service, IPv6 visitor" 7105 2001:db8:1::1 2 "peer 2001:db8:1::2 P"
	check "rpc added the LAN services' UDP rules" grep -q "from 192.168.80.2 ipproto udp sport 7101 lookup 30100" \
		<<<"$(ip -n "$C" rule list)"
	check "for IPv6 too" grep -q "from fd80::2 ipproto udp sport 7101 lookup 30100" <<<"$(ip -n "$C" -6 rule list)"
	uask 7102 2001:db8:1::1
	expect_eq "an IPv6 visitor on an IPv4 UDP service: dropped" timeout "$got"
	check "and rpc says why" wait_for 5 contains "$work/rpc.log" \
		"cannot send to 127.0.0.1:7102 as the visitor: not of the service's address family"
	uport=$(grep -o 'port 7101/udp on the server now reaches 127.0.0.1:7101 (tunnel port [0-9]*' "$work/rpc.log" |
		grep -o '[0-9]*$')
	got=$(in_ns "$S" "${tool[@]}" uask 10.99.0.2 "$uport" 1 68656c6c6f 2>&1)
	expect_eq "a datagram without a header, from the server: dropped" timeout "$got"
	check "logged and counted" wait_for 5 contains "$work/rpc.log" \
		"and 10.99.0.2:$uport: PROXY v2 header: bad signature (1 so far)"
}

# ================================================================ rules
check_rules() {
	section "rules: rpc's policy routing goes with it"
	ip -n "$C" rule list | grep -q "lookup 30100" && pass "rpc added its IPv4 rules" ||
		fail "no IPv4 rule of rpc's: $(ip -n "$C" rule list)"
	stop rpc "$pid_rpc"
	expect_eq "rpc exits 0" 0 "$stop_status"
	expect_eq "the rules are as before" "$(cat "$work/rules.before")" "$(rule_list)"
	expect_eq "table 30100 is empty" "" "$(ip -n "$C" route show table 30100; ip -n "$C" -6 route show table 30100)"
	# rps is gone: rpc waits for it, rules in place; SIGTERM then.
	stop rps "$pid_rps"
	expect_eq "rps exits 0" 0 "$stop_status"
	ip netns exec "$C" "$rpc" -c "$work/client.conf" -i "$WC" --heartbeat-interval 1 -v "${routes[@]}" \
		2>"$work/rpc2.log" &
	pid_rpc=$!
	pids+=("$pid_rpc")
	wait_for 30 contains "$work/rpc2.log" "waiting for server" || fail "rpc did not start: $(tail -n 3 "$work/rpc2.log")"
	stop rpc "$pid_rpc"
	expect_eq "rpc stopped while waiting exits 0" 0 "$stop_status"
	expect_eq "the rules are as before" "$(cat "$work/rules.before")" "$(rule_list)"
}

check_proxy
check_transparent
if [ "$expect" = userspace ]; then
	check_lan
	check_plain
	check_forged
	check_udp
fi
check_rules
no_sanitizer_report
finish
