#!/bin/bash
# wg-rp relay benchmark: builds the product's traffic path in three network
# namespaces and measures our relay pair against HAProxy and socat, and
# against the bare tunnel (the "ceiling"). It prints numbers; it asserts
# nothing about speed (exit status 0 means the benchmark ran, not that a
# target was met).
#
#   netns OUT (outside host)     netns SRV (server host)                 netns CLI (client host, behind NAT)
#   load generators:             relay S (one per variant):              relay C (one per variant):
#   iperf3 -c, wrk, ab,            198.51.100.1:8080 -> 10.99.0.2:18080    10.99.0.2:18080 -> 127.0.0.1:80   (nginx)
#   idle-connection holder         198.51.100.1:5201 -> 10.99.0.2:15201    10.99.0.2:15201 -> 127.0.0.1:5201 (iperf3 -s)
#
#   198.51.100.2/24 <-- veth --> 198.51.100.1/24
#                                192.0.2.1/24    <------ veth ("internet") ------>  192.0.2.2/24
#                                wg 10.99.0.1/24 ====== WireGuard (wireguard-go) ====== wg 10.99.0.2/24
#                                                                                    nginx   0.0.0.0:80
#                                                                                    iperf3  0.0.0.0:5201
#
# Variants: wgrp (two wgrp-relay processes per side, one per port, as rps and
# rpc would relay), haproxy (one process per side, mode tcp, splice forced),
# socat (fork per connection), and ceiling: no relay, the same load generated
# from SRV straight to 10.99.0.2:80 / :5201 over the tunnel. OUT has no route
# to the tunnel, so the ceiling cannot start from OUT; the hop it skips
# (OUT->SRV veth) costs next to nothing next to the tunnel.
#
# Nothing is linked to the root namespace; every address is a documentation
# range (198.51.100.0/24, 192.0.2.0/24) or the tunnel's 10.99.0.0/24, which
# exists only inside SRV and CLI. Every load is bounded in time and count.
#
# usage: sudo bench/run.sh [--build DIR] [--quick] [--time S] [--idle N]
#                          [--requests N] [--variants LIST] [--keep-logs DIR] [--no-cgroup]
#                          [--relay-opts "WGRP-RELAY OPTIONS"]
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$(dirname "$script_dir")/build
TIME=5          # seconds per iperf3 and wrk run
REQUESTS=5000   # ab requests (one new connection each)
IDLE=2000       # idle connections held open for the memory/fd figures
VARIANTS=ceiling,haproxy,wgrp,socat
KEEP_LOGS=
USE_CGROUP=1
RELAY_OPTS=

usage() {
	cat <<EOF
usage: sudo $0 [options]
  --build DIR      cmake build directory holding test/wgrp-relay (default: $BUILD)
  --quick          about 90 s: --time 2 --requests 1000 --idle 500
  --time S         seconds per iperf3 / wrk run (default $TIME)
  --requests N     ab requests, each on a new connection (default $REQUESTS)
  --idle N         idle connections held open (default $IDLE)
  --variants LIST  comma-separated subset of $VARIANTS
  --keep-logs DIR  copy every process's log there before cleaning up
  --no-cgroup      account CPU from /proc even where cgroup v2 is available
  --relay-opts STR extra wgrp-relay options, e.g. "-b 256"
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--quick) TIME=2 REQUESTS=1000 IDLE=500; shift ;;
	--time) TIME=$2; shift 2 ;;
	--requests) REQUESTS=$2; shift 2 ;;
	--idle) IDLE=$2; shift 2 ;;
	--variants) VARIANTS=$2; shift 2 ;;
	--keep-logs) KEEP_LOGS=$2; shift 2 ;;
	--no-cgroup) USE_CGROUP=; shift ;;
	--relay-opts) RELAY_OPTS=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
for n in "$TIME" "$REQUESTS" "$IDLE"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "not a positive number: $n" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
	echo "needs root (network namespaces, cgroups)" >&2
	exit 1
fi
for cmd in ip wg wireguard-go iperf3 nginx wrk ab perl ss timeout; do
	command -v "$cmd" >/dev/null || { echo "missing $cmd: see bench/README.md for the packages" >&2; exit 1; }
done
RELAY=$(realpath -m "$BUILD/test/wgrp-relay")

TAG=$$
NS_OUT=wgrpb-out-$TAG NS_SRV=wgrpb-srv-$TAG NS_CLI=wgrpb-cli-$TAG
# Interface names: at most 15 characters, and the WireGuard ones unique
# across namespaces, since wireguard-go's UAPI sockets share one directory.
IF_OS=wgbos$TAG IF_SO=wgbso$TAG IF_SC=wgbsc$TAG IF_CS=wgbcs$TAG
WG_S=wgbws$TAG WG_C=wgbwc$TAG
PUB=198.51.100.1 TUN_C=10.99.0.2
WORK=$(mktemp -d /tmp/wgrpb.XXXXXX)
START=$SECONDS
PIDS=()
NOTES=()
declare -A R=()

# 2,000 connections cost each relay 4,000+ descriptors; every process we
# start inherits this.
ulimit -n "$(ulimit -Hn)"

log() { printf '[%3ds] %s\n' $((SECONDS - START)) "$*" >&2; }
note() { NOTES+=("$*"); log "note: $*"; }

# --- process groups ------------------------------------------------------
# Each group of processes (wg, svc, relay-VARIANT) gets a cgroup v2 when one
# can be made: its cpu.stat counts the CPU of every process that ever ran in
# it, including socat's exited per-connection children, and cgroup.procs
# lists the live ones. Without cgroup v2 we fall back to /proc: the started
# processes and their children, utime+stime plus cutime+cstime (reaped
# children), which misses children that died unreaped between two samples.
CG=
cg_setup() {
	local root
	[ -n "$USE_CGROUP" ] || return 0
	root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[ -n "$root" ] || return 0
	mkdir "$root/wgrpb-$TAG" 2>/dev/null || return 0
	CG=$root/wgrpb-$TAG
	if ! mkdir "$CG/probe" 2>/dev/null || ! (echo "$BASHPID" >"$CG/probe/cgroup.procs") 2>/dev/null; then
		rmdir "$CG/probe" "$CG" 2>/dev/null || true
		CG=
		return 0
	fi
	rmdir "$CG/probe"
}
group_new() {
	: >"$WORK/group.$1"
	if [ -n "$CG" ]; then mkdir "$CG/$1"; fi
}
group_pids() {
	if [ -n "$CG" ]; then
		cat "$CG/$1/cgroup.procs"
	else
		local pid
		while read -r pid; do
			if [ -d "/proc/$pid" ]; then
				echo "$pid"
				ps -o pid= --ppid "$pid" || true
			fi
		done <"$WORK/group.$1"
	fi
}
# group_cpu GROUP: CPU microseconds (user + system) the group has used.
group_cpu() {
	if [ -n "$CG" ]; then
		awk '$1 == "usage_usec" { print $2 }' "$CG/$1/cpu.stat"
	else
		# shellcheck disable=SC2046
		perl -e 'my $t = 0; for my $p (@ARGV) { open(my $f, "<", "/proc/$p/stat") or next;
			my @f = split " ", (<$f> =~ s/.*\) //r); $t += $f[11] + $f[12] + $f[13] + $f[14] }
			printf "%.0f\n", $t * 1e6 / '"$(getconf CLK_TCK)"';' $(group_pids "$1")
	fi
}
# group_mem GROUP: "PSS_KB FDS" summed over the group's live processes. PSS
# splits shared pages among their sharers, so it adds up across socat's
# forked children; for a single process its growth is its RSS growth.
group_mem() {
	# shellcheck disable=SC2046
	perl -e 'my ($pss, $fds) = (0, 0); for my $p (@ARGV) {
			if (open(my $f, "<", "/proc/$p/smaps_rollup")) { while (<$f>) { $pss += $1 if /^Pss:\s+(\d+)/ } }
			if (opendir(my $d, "/proc/$p/fd")) { $fds += grep { !/^\./ } readdir $d } }
		print "$pss $fds\n"' $(group_pids "$1")
}
# group_kill GROUP: ends whatever is left in the group (our processes and
# their children only) and removes its cgroup.
group_kill() {
	local i pids
	for i in $(seq 50); do
		pids=$(group_pids "$1" 2>/dev/null || true)
		[ -z "$pids" ] && break
		# shellcheck disable=SC2086
		kill -s "$([ "$i" -lt 30 ] && echo TERM || echo KILL)" $pids 2>/dev/null || true
		sleep 0.1
	done
	if [ -n "$CG" ] && [ -d "$CG/$1" ]; then rmdir "$CG/$1" 2>/dev/null || true; fi
}

# spawn GROUP NETNS NAME CMD...: starts CMD in NETNS, in GROUP's cgroup from
# before its first instruction (so forked children land there too), with
# stdio only: descriptors leaked by whatever started us would count in the
# fd figures. Output goes to $WORK/NAME.{out,err}. Sets SPAWNED to its PID.
spawn() {
	local group=$1 ns=$2 name=$3
	shift 3
	(
		if [ -n "$CG" ]; then echo "$BASHPID" >"$CG/$group/cgroup.procs"; fi
		for fd in /proc/"$BASHPID"/fd/*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
		done
		exec ip netns exec "$ns" "$@"
	) </dev/null >"$WORK/$name.out" 2>"$WORK/$name.err" &
	SPAWNED=$!
	PIDS+=("$SPAWNED")
	echo "$SPAWNED" >>"$WORK/group.$group"
}
# stop PID...: SIGTERM, then SIGKILL after 5 s; sets STATUS to the first
# non-zero exit status among them, or 0.
stop() {
	local pid i alive s
	kill -TERM "$@" 2>/dev/null || true
	for i in $(seq 50); do
		alive=0
		for pid in "$@"; do
			if kill -0 "$pid" 2>/dev/null; then alive=1; fi
		done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	STATUS=0
	for pid in "$@"; do
		kill -KILL "$pid" 2>/dev/null || true
		s=0
		wait "$pid" 2>/dev/null || s=$?
		[ "$STATUS" != 0 ] || STATUS=$s
	done
}

cleanup() {
	set +e
	local g ns
	trap - EXIT INT TERM
	[ ${#PIDS[@]} -gt 0 ] && stop "${PIDS[@]}"
	for g in "$WORK"/group.*; do
		[ -e "$g" ] && group_kill "${g##*/group.}"
	done
	[ -n "$CG" ] && rmdir "$CG" 2>/dev/null
	for ns in "$NS_OUT" "$NS_SRV" "$NS_CLI"; do
		ip netns del "$ns" 2>/dev/null
	done
	rm -f "/var/run/wireguard/$WG_S.sock" "/var/run/wireguard/$WG_C.sock"
	if [ -n "$KEEP_LOGS" ]; then
		mkdir -p "$KEEP_LOGS" && cp "$WORK"/*.out "$WORK"/*.err "$WORK"/*.cfg "$WORK"/*.conf "$KEEP_LOGS"/ 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/../test/lib.sh"
listening() { [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ]; }
tcp_open() {
	# shellcheck disable=SC2016
	ip netns exec "$1" perl -MIO::Socket::INET -e \
		'IO::Socket::INET->new(PeerAddr => $ARGV[0], Timeout => 1) or exit 1' "$2"
}
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# --- the path ------------------------------------------------------------
setup_net() {
	local ns
	for ns in "$NS_OUT" "$NS_SRV" "$NS_CLI"; do
		netns_new "$ns" || exit 1
		# Thousands of short connections per variant through the same
		# addresses: let TIME_WAIT ports be reused rather than run out.
		in_ns "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 65000"
	done
	ip link add "$IF_OS" netns "$NS_OUT" type veth peer name "$IF_SO" netns "$NS_SRV"
	ip link add "$IF_SC" netns "$NS_SRV" type veth peer name "$IF_CS" netns "$NS_CLI"
	ip -n "$NS_OUT" addr add 198.51.100.2/24 dev "$IF_OS"
	ip -n "$NS_SRV" addr add $PUB/24 dev "$IF_SO"
	ip -n "$NS_SRV" addr add 192.0.2.1/24 dev "$IF_SC"
	ip -n "$NS_CLI" addr add 192.0.2.2/24 dev "$IF_CS"
	ip -n "$NS_OUT" link set "$IF_OS" up
	ip -n "$NS_SRV" link set "$IF_SO" up
	ip -n "$NS_SRV" link set "$IF_SC" up
	ip -n "$NS_CLI" link set "$IF_CS" up
}

setup_wg() {
	local ks kc
	ks=$(wg genkey) kc=$(wg genkey)
	umask 077
	echo "$ks" >"$WORK/s.key"
	echo "$kc" >"$WORK/c.key"
	umask 022
	group_new wg
	spawn wg "$NS_SRV" wg-srv env WG_PROCESS_FOREGROUND=1 wireguard-go "$WG_S"
	spawn wg "$NS_CLI" wg-cli env WG_PROCESS_FOREGROUND=1 wireguard-go "$WG_C"
	wait_for 10 test -S "/var/run/wireguard/$WG_S.sock" -a -S "/var/run/wireguard/$WG_C.sock" ||
		{ echo "wireguard-go did not start" >&2; cat "$WORK"/wg-*.err >&2; exit 1; }
	in_ns "$NS_SRV" wg set "$WG_S" private-key "$WORK/s.key" listen-port 51820 \
		peer "$(wg pubkey <<<"$kc")" allowed-ips 10.99.0.2/32
	in_ns "$NS_CLI" wg set "$WG_C" private-key "$WORK/c.key" listen-port 51821 \
		peer "$(wg pubkey <<<"$ks")" allowed-ips 10.99.0.1/32 endpoint 192.0.2.1:51820
	ip -n "$NS_SRV" addr add 10.99.0.1/24 dev "$WG_S"
	ip -n "$NS_CLI" addr add $TUN_C/24 dev "$WG_C"
	ip -n "$NS_SRV" link set "$WG_S" mtu 1420 up
	ip -n "$NS_CLI" link set "$WG_C" mtu 1420 up
	# As with rpc behind NAT, only the client knows the server's endpoint:
	# its keepalive opens the tunnel, and the server learns where it is.
	in_ns "$NS_CLI" wg set "$WG_C" peer "$(wg pubkey <<<"$ks")" persistent-keepalive 25
}

# The local service on the client host: nginx with a 1 KiB page, and an
# iperf3 server started per run (-1: one test, then exit, so that a failed
# run cannot leave it wedged for the next).
setup_services() {
	# nginx's workers run as an unprivileged user: they must be able to
	# read the page through the (otherwise private) work directory.
	chmod 755 "$WORK"
	mkdir -p "$WORK/www" "$WORK/nginx-tmp"
	head -c 1024 /dev/zero | tr '\0' x >"$WORK/www/index.html"
	cat >"$WORK/nginx.conf" <<EOF
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 10000; }
http {
	access_log off;
	client_body_temp_path $WORK/nginx-tmp/body;
	proxy_temp_path $WORK/nginx-tmp/proxy;
	fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
	uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
	scgi_temp_path $WORK/nginx-tmp/scgi;
	# No reconnects inside a keep-alive run; idle connections stay open.
	keepalive_requests 10000000;
	keepalive_timeout 600s;
	client_header_timeout 600s;
	server {
		listen 80 backlog=4096;
		root $WORK/www;
	}
}
EOF
	group_new svc
	spawn svc "$NS_CLI" nginx nginx -e "$WORK/nginx.err" -p "$WORK" -c "$WORK/nginx.conf"
	wait_for 10 listening "$NS_CLI" 80 || { echo "nginx did not start" >&2; cat "$WORK/nginx.err" >&2; exit 1; }
	# The first packet triggers the handshake; wait until the tunnel carries TCP.
	wait_for 20 tcp_open "$NS_SRV" $TUN_C:80 || { echo "no TCP over the tunnel" >&2; exit 1; }
}

# --- relays --------------------------------------------------------------
# start_relays VARIANT: both sides, same ports for every variant. Returns 1
# (with a note) if the variant cannot run here.
start_relays() {
	local v=$1 side
	group_new "relay-$v"
	case $v in
	ceiling) return 0 ;;
	wgrp)
		[ -x "$RELAY" ] || { note "wgrp skipped: $RELAY not built"; return 1; }
		# One process per listener, as in rps (public port -> tunnel) and
		# rpc (tunnel port -> local service).
		local opts
		read -ra opts <<<"$RELAY_OPTS"
		spawn "relay-$v" "$NS_SRV" wgrp-s-http "$RELAY" "${opts[@]}" $PUB:8080 $TUN_C:18080
		spawn "relay-$v" "$NS_SRV" wgrp-s-iperf "$RELAY" "${opts[@]}" $PUB:5201 $TUN_C:15201
		spawn "relay-$v" "$NS_CLI" wgrp-c-http "$RELAY" "${opts[@]}" $TUN_C:18080 127.0.0.1:80
		spawn "relay-$v" "$NS_CLI" wgrp-c-iperf "$RELAY" "${opts[@]}" $TUN_C:15201 127.0.0.1:5201
		;;
	haproxy)
		command -v haproxy >/dev/null || { note "haproxy skipped: not installed"; return 1; }
		# mode tcp, splice forced both ways (splice-auto hardly splices on
		# this path), no logging, connection limits well above the idle load
		# but within the 20,000-descriptor hard limit (HAProxy wants about
		# 2.5 descriptors per connection: two sockets and a share of pipes).
		for side in srv cli; do
			cat >"$WORK/haproxy-$side.cfg" <<EOF
global
	maxconn 6000
defaults
	mode tcp
	maxconn 6000
	option splice-request
	option splice-response
	timeout connect 5s
	timeout client 10m
	timeout server 10m
EOF
		done
		cat >>"$WORK/haproxy-srv.cfg" <<EOF
listen http
	bind $PUB:8080
	server s $TUN_C:18080
listen iperf
	bind $PUB:5201
	server s $TUN_C:15201
EOF
		cat >>"$WORK/haproxy-cli.cfg" <<EOF
listen http
	bind $TUN_C:18080
	server s 127.0.0.1:80
listen iperf
	bind $TUN_C:15201
	server s 127.0.0.1:5201
EOF
		spawn "relay-$v" "$NS_SRV" haproxy-srv haproxy -db -f "$WORK/haproxy-srv.cfg"
		spawn "relay-$v" "$NS_CLI" haproxy-cli haproxy -db -f "$WORK/haproxy-cli.cfg"
		;;
	socat)
		command -v socat >/dev/null || { note "socat skipped: not installed"; return 1; }
		# backlog: socat's default of 5 would drop the idle test's bursts.
		local o=fork,reuseaddr,backlog=4096
		spawn "relay-$v" "$NS_SRV" socat-s-http socat TCP4-LISTEN:8080,bind=$PUB,$o TCP4:$TUN_C:18080
		spawn "relay-$v" "$NS_SRV" socat-s-iperf socat TCP4-LISTEN:5201,bind=$PUB,$o TCP4:$TUN_C:15201
		spawn "relay-$v" "$NS_CLI" socat-c-http socat TCP4-LISTEN:18080,bind=$TUN_C,$o TCP4:127.0.0.1:80
		spawn "relay-$v" "$NS_CLI" socat-c-iperf socat TCP4-LISTEN:15201,bind=$TUN_C,$o TCP4:127.0.0.1:5201
		;;
	esac
	if ! wait_for 10 listening "$NS_SRV" 8080 || ! wait_for 10 listening "$NS_SRV" 5201 ||
		! wait_for 10 listening "$NS_CLI" 18080 || ! wait_for 10 listening "$NS_CLI" 15201; then
		note "$v skipped: relays did not start listening"
		tail -n 5 "$WORK/$v"-*.err >&2 || true
		stop_relays "$v"
		return 1
	fi
	if [ "$v" = wgrp ]; then
		local name
		for name in s-http s-iperf c-http c-iperf; do
			wait_for 5 grep -q '^listening on ' "$WORK/wgrp-$name.out" ||
				note "wgrp-$name printed no 'listening on' line"
		done
	fi
}
stop_relays() {
	local v=$1 pids
	pids=$(cat "$WORK/group.relay-$v")
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		stop $pids
		if [ "$v" = wgrp ] && [ "$STATUS" -ne 0 ]; then note "wgrp-relay exited $STATUS on SIGTERM"; fi
	fi
	group_kill "relay-$v"
}

# --- measurements --------------------------------------------------------
# Where the load comes from and goes to: OUT -> the server's public address,
# or for the ceiling SRV -> the client's tunnel address with no relay.
target() {
	if [ "$1" = ceiling ]; then
		LOAD_NS=$NS_SRV HOST=$TUN_C HTTP_PORT=80
	else
		LOAD_NS=$NS_OUT HOST=$PUB HTTP_PORT=8080
	fi
}

# iperf VARIANT KEY STREAMS [-R]: one iperf3 run; records Gbit/s and adds
# the bytes moved and the relays' and wireguard-go's CPU to the totals.
iperf() {
	local v=$1 key=$2 streams=$3 dir=${4:-} cpu0 wg0 cpu1 wg1 out bytes bps
	spawn svc "$NS_CLI" "iperf3-s-$v-$key" iperf3 -s -1 -p 5201
	local server=$SPAWNED
	if ! wait_for 5 listening "$NS_CLI" 5201; then
		note "$v: iperf3 server did not start"
		stop "$server"
		return 0
	fi
	cpu0=$(group_cpu "relay-$v") wg0=$(group_cpu wg)
	out=$(in_ns "$LOAD_NS" timeout -k 5 $((TIME + 20)) iperf3 -c "$HOST" -p 5201 -t "$TIME" \
		-P "$streams" ${dir:+"$dir"} --connect-timeout 5000 -J 2>&1) || true
	cpu1=$(group_cpu "relay-$v") wg1=$(group_cpu wg)
	stop "$server"
	read -r bytes bps <<<"$(perl -MJSON::PP -e 'my $j = eval { decode_json(join "", <STDIN>) };
		my $s = $j && $j->{end}{sum_received};
		print $s && $s->{bytes} ? "$s->{bytes} $s->{bits_per_second}" : "0 0"' <<<"$out")"
	if [ "$bytes" = 0 ]; then
		note "$v: iperf3 $key failed: $(grep -o '"error":.*' <<<"$out" | head -c 200)"
		return 0
	fi
	R[$v.$key]=$(awk -v b="$bps" 'BEGIN { print b / 1e9 }')
	TOT_BYTES=$((TOT_BYTES + bytes))
	TOT_CPU=$((TOT_CPU + cpu1 - cpu0)) TOT_WG=$((TOT_WG + wg1 - wg0))
	log "$v: iperf3 $key ${R[$v.$key]} Gbit/s"
}

# run_wrk VARIANT KEY THREADS CONNECTIONS: keep-alive requests/s and latency
# percentiles (ms). 32 connections saturate this machine, so their latency
# is mostly queueing (connections / rate); 1 connection shows what one
# request costs on an otherwise idle path.
run_wrk() {
	local v=$1 key=$2 threads=$3 conns=$4 out rps p50 p99
	out=$(in_ns "$LOAD_NS" timeout -k 5 $((TIME + 20)) wrk -t"$threads" -c"$conns" -d"${TIME}s" \
		--timeout 5s --latency "http://$HOST:$HTTP_PORT/" 2>&1) || true
	read -r rps p50 p99 <<<"$(awk '
		function ms(s) { if (s ~ /us$/) return s / 1000; if (s ~ /ms$/) return s + 0; if (s ~ /s$/) return s * 1000; return s }
		$1 == "Requests/sec:" { rps = $2 }
		$1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
		END { print (rps ? rps : "-"), (p50 ? p50 : "-"), (p99 ? p99 : "-") }' <<<"$out")"
	R[$v.${key}_rps]=$rps R[$v.${key}_p50]=$p50 R[$v.${key}_p99]=$p99
	local line
	while read -r line; do
		note "$v: wrk: $line"
	done < <(grep -E 'Socket errors|Non-2xx' <<<"$out" || true)
	[ "$rps" = - ] && note "$v: wrk failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
	log "$v: wrk -c$conns $rps req/s, p50 $p50 ms, p99 $p99 ms"
}

# ab VARIANT: requests/s with a new connection per request.
run_ab() {
	local v=$1 out failed non2xx completed
	# -t bounds the run in time as well as in count (-n must come after it):
	# socat forks per connection and manages only a few hundred a second.
	out=$(in_ns "$LOAD_NS" timeout -k 5 $((4 * TIME + 30)) ab -q -r -s 10 -t $((4 * TIME)) \
		-n "$REQUESTS" -c 16 "http://$HOST:$HTTP_PORT/" 2>&1) || true
	R[$v.ab_rps]=$(awk '/^Requests per second:/ { print $4 }' <<<"$out")
	failed=$(awk '/^Failed requests:/ { print $3 }' <<<"$out")
	non2xx=$(awk '/^Non-2xx responses:/ { print $3 }' <<<"$out")
	[ -z "$non2xx" ] || note "$v: ab: $non2xx non-2xx responses"
	completed=$(awk '/^Complete requests:/ { print $3 }' <<<"$out")
	[ "${completed:-0}" -ge "$REQUESTS" ] || note "$v: ab stopped at its time limit after ${completed:-0} requests"
	[ -n "${R[$v.ab_rps]}" ] || { R[$v.ab_rps]=-; note "$v: ab failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"; }
	[ "${failed:-0}" = 0 ] || note "$v: ab: $failed failed requests"
	log "$v: ab ${R[$v.ab_rps]} req/s"
}

# The idle holder: opens N connections, sends one HTTP request on each and
# reads its response (so every connection has carried data both ways, as a
# keep-alive client's would), then holds them all idle until killed, or 120 s.
write_idle_holder() {
	cat >"$WORK/idle.pl" <<'EOF'
use strict;
use IO::Socket::INET;
my ($host, $port, $n) = @ARGV;
$SIG{ALRM} = sub { exit 0 };
alarm 120;
$| = 1;
my @socks;
for (1 .. $n) {
	my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Timeout => 5) or last;
	push @socks, $s;
}
syswrite $_, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n" for @socks;
my $ok = 0;
for my $s (@socks) {
	my $buf = '';
	while (sysread $s, $buf, 65536, length $buf) {
		my $end = index $buf, "\r\n\r\n";
		next if $end < 0 or $buf !~ /Content-Length:\s*(\d+)/i;
		if (length($buf) >= $end + 4 + $1) { $ok++; last }
	}
}
print "ready $ok\n";
sleep 120;
EOF
}

# idle VARIANT: userspace memory and descriptors per idle connection, both
# relays together: the growth from before to while IDLE connections are open.
run_idle() {
	local v=$1 m0 m1 holder ok mem fds
	m0=$(group_mem "relay-$v")
	spawn load "$LOAD_NS" "idle-$v" perl "$WORK/idle.pl" "$HOST" "$HTTP_PORT" "$IDLE"
	holder=$SPAWNED
	if ! wait_for 90 grep -q '^ready' "$WORK/idle-$v.out"; then
		note "$v: idle connections not ready in 90 s"
		stop "$holder"
		return 0
	fi
	ok=$(awk '{ print $2 }' "$WORK/idle-$v.out")
	sleep 1 # let the relays finish whatever they do after the last response
	m1=$(group_mem "relay-$v")
	stop "$holder"
	[ "$ok" = "$IDLE" ] || note "$v: only $ok of $IDLE idle connections completed a request"
	if [ "${ok:-0}" -gt 0 ]; then
		read -r mem fds <<<"$(awk -v a="$m0" -v b="$m1" -v n="$ok" 'BEGIN {
			split(a, x, " "); split(b, y, " "); print (y[1] - x[1]) * 1024 / n, (y[2] - x[2]) / n }')"
		R[$v.idle_mem]=$mem R[$v.idle_fds]=$fds
		log "$v: idle $ok connections: ${R[$v.idle_mem]} B and ${R[$v.idle_fds]} fds each"
	fi
	sleep 1 # socat's children exit as their connections close
}

run_variant() {
	local v=$1 out
	log "$v: starting"
	start_relays "$v" || return 0
	target "$v"
	# A short check that the whole path answers before measuring anything.
	out=$(in_ns "$LOAD_NS" timeout -k 5 30 ab -s 5 -n 50 -c 2 "http://$HOST:$HTTP_PORT/" 2>&1) || true
	if ! grep -q '^Complete requests: *50$' <<<"$out" || ! grep -q '^Failed requests: *0$' <<<"$out" ||
		grep -q '^Non-2xx' <<<"$out"; then
		note "$v skipped: the path does not answer HTTP"
		stop_relays "$v"
		return 0
	fi
	# Idle cost first, on relays that have seen little traffic: memory freed
	# by earlier loads and kept for reuse would otherwise hide the real cost.
	[ "$v" != ceiling ] && run_idle "$v"
	TOT_BYTES=0 TOT_CPU=0 TOT_WG=0
	iperf "$v" t1_up 1
	iperf "$v" t1_down 1 -R
	iperf "$v" t8_up 8
	iperf "$v" t8_down 8 -R
	if [ "$TOT_BYTES" -gt 0 ]; then
		# CPU seconds per GB (10^9 bytes) received by iperf3 over all four runs.
		[ "$v" != ceiling ] && R[$v.cpu_relay]=$(awk -v c="$TOT_CPU" -v b="$TOT_BYTES" 'BEGIN { print c / 1e6 / (b / 1e9) }')
		R[$v.cpu_wg]=$(awk -v c="$TOT_WG" -v b="$TOT_BYTES" 'BEGIN { print c / 1e6 / (b / 1e9) }')
	fi
	run_wrk "$v" wrk 2 32
	run_wrk "$v" wrk1 1 1
	run_ab "$v"
	stop_relays "$v"
}

# --- the table -------------------------------------------------------------
# get VARIANT KEY: the figure, or "-".
get() { local k=$1.$2; echo "${R[$k]:--}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b }'; }

print_table() {
	# metric key | label | unit | printf format | target kind | target value
	local rows=(
		"t1_up|iperf3 1 stream, out->svc|Gbit/s|%.2f|ceil_ge|0.95"
		"t1_down|iperf3 1 stream, svc->out|Gbit/s|%.2f|ceil_ge|0.95"
		"t8_up|iperf3 8 streams, out->svc|Gbit/s|%.2f|ceil_ge|0.95"
		"t8_down|iperf3 8 streams, svc->out|Gbit/s|%.2f|ceil_ge|0.95"
		"cpu_relay|relay CPU per GB (both)|s/GB|%.2f|hap_le|0.8"
		"cpu_wg|wireguard-go CPU per GB|s/GB|%.2f||"
		"wrk_rps|keep-alive, 32 conns|req/s|%.0f||"
		"wrk_p50|  latency p50|ms|%.3f||"
		"wrk_p99|  latency p99|ms|%.3f|ceil_plus|0.2"
		"wrk1_rps|keep-alive, 1 conn|req/s|%.0f||"
		"wrk1_p50|  latency p50|ms|%.3f||"
		"wrk1_p99|  latency p99|ms|%.3f|ceil_plus|0.2"
		"ab_rps|new conn per request (ab)|req/s|%.0f|ceil_ge|0.85"
		"idle_mem|memory per idle conn|B|%.0f|abs_le|1024"
		"idle_fds|fds per idle conn|fds|%.2f|abs_le|4"
	)
	local fmt='%-27s %-6s %9s %9s %9s %9s %9s %9s %9s  %-15s %s\n'
	# shellcheck disable=SC2059
	printf "$fmt" figure unit ceiling haproxy wgrp socat wgrp/hap socat/hap wgrp/ceil target met
	local row key label unit f kind tv cells v x vs_ceil target met w c
	for row in "${rows[@]}"; do
		IFS='|' read -r key label unit f kind tv <<<"$row"
		cells=()
		for v in ceiling haproxy wgrp socat; do
			x=$(get $v "$key")
			# shellcheck disable=SC2059
			[ "$x" = - ] && cells+=(-) || cells+=("$(printf "$f" "$x")")
		done
		w=$(get wgrp "$key") c=$(get ceiling "$key")
		vs_ceil=- target=- met=-
		case $kind in
		ceil_ge)
			vs_ceil=$(ratio "$w" "$c") target=">=${tv}x ceiling"
			[ "$vs_ceil" != - ] && met=$(awk -v r="${vs_ceil%x}" -v t="$tv" 'BEGIN { print (r >= t ? "yes" : "NO") }')
			;;
		ceil_plus)
			target="<=ceiling+${tv}ms"
			if [ "$w" != - ] && [ "$c" != - ]; then
				vs_ceil=$(awk -v a="$w" -v b="$c" 'BEGIN { printf "%+.3fms", a - b }')
				met=$(awk -v a="$w" -v b="$c" -v t="$tv" 'BEGIN { print (a - b <= t ? "yes" : "NO") }')
			fi
			;;
		hap_le)
			target="<=${tv}x haproxy"
			x=$(ratio "$w" "$(get haproxy "$key")")
			[ "$x" != - ] && met=$(awk -v r="${x%x}" -v t="$tv" 'BEGIN { print (r <= t ? "yes" : "NO") }')
			;;
		abs_le)
			target="<=$tv $unit"
			[ "$w" != - ] && met=$(awk -v a="$w" -v t="$tv" 'BEGIN { print (a <= t ? "yes" : "NO") }')
			;;
		esac
		# Latencies compare by difference, everything else by ratio.
		if [ "$kind" != ceil_ge ] && [ "$kind" != ceil_plus ]; then
			if [ "$unit" = ms ] && [ "$w" != - ] && [ "$c" != - ]; then
				vs_ceil=$(awk -v a="$w" -v b="$c" 'BEGIN { printf "%+.3fms", a - b }')
			else
				vs_ceil=$(ratio "$w" "$c")
			fi
		fi
		# shellcheck disable=SC2059
		printf "$fmt" "$label" "$unit" "${cells[@]}" "$(ratio "$w" "$(get haproxy "$key")")" \
			"$(ratio "$(get socat "$key")" "$(get haproxy "$key")")" "$vs_ceil" "$target" "$met"
	done
}

# --- main ------------------------------------------------------------------
cg_setup
group_new load
log "namespaces $NS_OUT $NS_SRV $NS_CLI; CPU accounting: ${CG:-/proc (no cgroup v2)}"
setup_net
setup_wg
setup_services
write_idle_holder
IFS=, read -ra want <<<"$VARIANTS"
for v in "${want[@]}"; do
	case $v in
	ceiling | haproxy | wgrp | socat) run_variant "$v" ;;
	*) note "unknown variant $v" ;;
	esac
done

echo
echo "wg-rp relay benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) cores;" \
	"iperf3 ${TIME}s per run, wrk ${TIME}s, ab -n $REQUESTS -c 16 (at most $((4 * TIME))s), $IDLE idle connections"
echo "path: outside -> relay (server) -> wireguard-go tunnel -> relay (client) -> nginx / iperf3;" \
	"ceiling: server -> tunnel -> service, no relay"
echo
print_table
if [ ${#NOTES[@]} -gt 0 ]; then
	echo
	printf 'note: %s\n' "${NOTES[@]}"
fi
log "done"
