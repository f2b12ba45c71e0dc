# shellcheck shell=bash
# Machinery shared by bench/run.sh (over the tunnel) and bench/relay_only.sh
# (veth only): process groups with CPU accounting, spawning and stopping our
# own processes, the load generators, and the raw result file that
# bench/report.py turns into the table, the JSON file and the chart.
#
# Source it first: it sets the defaults of the common options and TAG (unique
# to the run, in every name we create). The script then sets WORK (a temp
# dir), NAMESPACES and WG_IFS (what cleanup removes), OUT_DIR, and before
# measuring: ROUND, LOAD_NS, HOST, HTTP_PORT, IPERF_PORT, SVC_NS,
# RELAY_GROUP and TUN_GROUP (process groups, empty for none) and TUN_IFS
# ("NETNS:IF ...", the WireGuard interfaces).
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$BENCH_DIR/../test/lib.sh"

# Defaults of the options both benches take (see common_usage).
BUILD=$(dirname "$BENCH_DIR")/build
TIME=5 REQUESTS=5000 ROUNDS=3 WARMUP=1
OUT_DIR='' KEEP_LOGS='' USE_CGROUP=1
CORES=$(nproc)
TAG=$$

PIDS=()
NOTES=()
START=$SECONDS
ROUND=0
CG=

# common_usage WHAT_BUILD_HOLDS: the usage lines of the options both take.
common_usage() {
	cat <<EOF
  --build DIR      cmake build directory with $1 (default: $BUILD)
  --rounds N       interleaved rounds, each system once per round (default $ROUNDS)
  --time S         seconds per iperf3 / wrk run (default $TIME)
  --warmup S       unmeasured iperf3 seconds each way before each system's
                   measured ones, 0 for none (default $WARMUP)
  --requests N     ab requests, each on a new connection (default $REQUESTS)
  --out DIR        where the raw figures, JSON and chart go (default bench/results/KIND-DATE)
  --keep-logs DIR  copy every process's output and the generated configs there
  --no-cgroup      account CPU from /proc even where cgroup v2 is available
EOF
}
# common_option ARGS...: an option both benches take (their usage() says
# what each means); SHIFT is the number of arguments it took, 0 if ARGS
# does not start with one of them.
common_option() {
	SHIFT=2
	case $1 in
	--build) BUILD=${2-} ;;
	--rounds) ROUNDS=${2-} ;;
	--time) TIME=${2-} ;;
	--warmup) WARMUP=${2-} ;;
	--requests) REQUESTS=${2-} ;;
	--out) OUT_DIR=${2-} ;;
	--keep-logs) KEEP_LOGS=${2-} ;;
	--no-cgroup) USE_CGROUP='' SHIFT=1 ;;
	-h | --help) usage; exit 0 ;;
	*) SHIFT=0 ;;
	esac
	[ "$SHIFT" != 2 ] || [ $# -ge 2 ] || { usage >&2; exit 2; }
}

log() { printf '[%4ds] %s\n' $((SECONDS - START)) "$*" >&2; }
note() { NOTES+=("$*"); log "note: $*"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
listening() { [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ]; }
tcp_open() {
	# shellcheck disable=SC2016
	ip netns exec "$1" perl -MIO::Socket::INET -e \
		'IO::Socket::INET->new(PeerAddr => $ARGV[0], Timeout => 1) or exit 1' "$2"
}
# check_numbers N...: the common options' numbers and the script's own.
check_numbers() {
	local n
	[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "not a number: $WARMUP" >&2; exit 2; }
	for n in "$TIME" "$REQUESTS" "$ROUNDS" "$@"; do positive "$n"; done
}
positive() { [[ $1 =~ ^[1-9][0-9]*$ ]] || { echo "not a positive number: $1" >&2; exit 2; }; }
need_cmds() {
	local cmd
	[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, cgroups)" >&2; exit 1; }
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null || { echo "missing $cmd: see bench/README.md for the packages" >&2; exit 1; }
	done
}

# record SYSTEM KEY VALUE: one figure of this round, for report.py.
record() { printf '%s\t%s\t%s\t%s\n' "$ROUND" "$1" "$2" "$3" >>"$OUT_DIR/raw.tsv"; }
# setting SYSTEM SIDE KEY VALUE: how a system's tunnel is set up.
setting() { printf '%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$1" "$2" "$3" "$4" >>"$OUT_DIR/settings.tsv"; }

# --- process groups ------------------------------------------------------
# Each group of processes gets a cgroup v2 when one can be made: cpu.stat
# counts every process that ever ran in it, cgroup.procs lists the live
# ones. Without one, /proc: the started processes and their children
# (utime+stime+cutime+cstime), minus the processes moved to another group.
cg_setup() {
	local root
	[ -n "${USE_CGROUP:-1}" ] || return 0
	root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[ -n "$root" ] || return 0
	mkdir "$root/bn$TAG" 2>/dev/null || return 0
	CG=$root/bn$TAG
	if ! mkdir "$CG/probe" 2>/dev/null || ! (echo "$BASHPID" >"$CG/probe/cgroup.procs") 2>/dev/null; then
		rmdir "$CG/probe" "$CG" 2>/dev/null || true
		CG=
		return 0
	fi
	rmdir "$CG/probe"
}
group_new() {
	: >"$WORK/group.$1"
	if [ -n "$CG" ]; then mkdir -p "$CG/$1"; fi
}
group_pids() {
	if [ -n "$CG" ]; then
		cat "$CG/$1/cgroup.procs"
		return
	fi
	local pid
	while read -r pid; do
		if [ -d "/proc/$pid" ]; then
			echo "$pid"
			ps -o pid= --ppid "$pid" || true
		fi
	done <"$WORK/group.$1" | grep -vxF -f <(cat "$WORK"/moved.* 2>/dev/null; echo x)
}
# group_move GROUP PID: PID (a child our relay started: wg-rp's wireguard-go)
# is accounted in GROUP from now on.
group_move() {
	echo "$2" >>"$WORK/group.$1"
	echo "$2" >>"$WORK/moved.$1"
	if [ -n "$CG" ]; then echo "$2" >"$CG/$1/cgroup.procs"; fi
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
# group_mem GROUP: "KB FDS": private memory (Private_Clean + Private_Dirty,
# what an idle connection adds to a process's RSS, without the pages nginx's
# processes share, or libc's, whose share moves with other processes) and
# open descriptors, summed over the group's live processes.
group_mem() {
	# shellcheck disable=SC2046
	perl -e 'my ($kb, $fds) = (0, 0); for my $p (@ARGV) {
			if (open(my $f, "<", "/proc/$p/smaps_rollup")) { while (<$f>) { $kb += $1 if /^Private_(?:Clean|Dirty):\s+(\d+)/ } }
			if (opendir(my $d, "/proc/$p/fd")) { $fds += grep { !/^\./ } readdir $d } }
		print "$kb $fds\n"' $(group_pids "$1")
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
# before its first instruction, with stdio only (descriptors leaked by our
# caller would count in the fd figures). Output in $WORK/NAME.{out,err}.
# Sets SPAWNED to its PID.
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
# stop PID...: SIGTERM, then SIGKILL after 5 s; STATUS is the first non-zero
# exit status among them, or 0.
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
# stop_group GROUP: the processes we started in it (SIGTERM first, so that
# rps and rpc remove their interfaces), then anything left.
stop_group() {
	local pids
	pids=$(cat "$WORK/group.$1")
	# shellcheck disable=SC2086
	[ -z "$pids" ] || stop $pids
	group_kill "$1"
	: >"$WORK/group.$1"
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
	for ns in "${NAMESPACES[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	for g in "${WG_IFS[@]}"; do
		rm -f "/var/run/wireguard/$g.sock"
	done
	if [ -n "${KEEP_LOGS:-}" ]; then
		mkdir -p "$KEEP_LOGS" && cp "$WORK"/*.out "$WORK"/*.err "$WORK"/*.cfg "$WORK"/*.conf "$KEEP_LOGS"/ 2>/dev/null
	fi
	rm -rf "$WORK"
}

# new_namespaces: creates NAMESPACES, with TIME_WAIT reuse and a wide port
# range (thousands of short connections per system through the same addresses).
new_namespaces() {
	local ns
	for ns in "${NAMESPACES[@]}"; do
		netns_new "$ns" || exit 1
		in_ns "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 65000"
	done
}
# veth NETNS_A IF_A ADDR_A NETNS_B IF_B ADDR_B: a veth pair between two namespaces.
veth() {
	ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$4" addr add "$6" dev "$5"
	ip -n "$1" link set "$2" up
	ip -n "$4" link set "$5" up
}

# --- the service -----------------------------------------------------------
# start_service NETNS: nginx with a 1 KiB page on port 80 (workers = cores),
# in group svc. The iperf3 server is started per run (see run_iperf).
start_service() {
	# nginx's workers run unprivileged: they must read the page.
	chmod 755 "$WORK"
	mkdir -p "$WORK/www" "$WORK/nginx-tmp"
	head -c 1024 /dev/zero | tr '\0' x >"$WORK/www/index.html"
	cat >"$WORK/svc-nginx.conf" <<EOF
daemon off;
worker_processes $CORES;
worker_rlimit_nofile 20000;
pid $WORK/svc-nginx.pid;
error_log $WORK/svc-nginx.err warn;
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
	spawn svc "$1" svc-nginx nginx -e "$WORK/svc-nginx.err" -p "$WORK" -c "$WORK/svc-nginx.conf"
	wait_for 10 listening "$1" 80 || { echo "nginx did not start" >&2; cat "$WORK/svc-nginx.err" >&2; exit 1; }
}

# --- relays other than wg-rp ----------------------------------------------
# haproxy_conf FILE MODE THREADS: the global part; MODE auto (splice-auto) or
# splice (forced both ways). The caller appends its listen sections. No
# logging; maxconn well above the idle load but within the 20,000-descriptor
# hard limit (about 2.5 descriptors per connection).
haproxy_conf() {
	local opts
	case $2 in
	auto) opts="	option splice-auto" ;;
	splice) opts="	option splice-request
	option splice-response" ;;
	esac
	cat >"$1" <<EOF
global
	nbthread $3
	maxconn 6000
defaults
	mode tcp
	maxconn 6000
$opts
	timeout connect 5s
	timeout client 10m
	timeout server 10m
EOF
}
# haproxy_listen FILE NAME BIND TARGET
haproxy_listen() { printf 'listen %s\n\tbind %s\n\tserver s %s\n' "$2" "$3" "$4" >>"$1"; }
# nginx_stream_conf FILE NAME WORKERS: the global part of an nginx stream
# relay; the caller appends "server" blocks with nginx_stream_server, then
# closes the stream block with "}".
nginx_stream_conf() {
	cat >"$1" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes $3;
worker_rlimit_nofile 20000;
pid $WORK/$2.pid;
error_log $WORK/$2.err warn;
events { worker_connections 10000; }
stream {
EOF
}
nginx_stream_server() {
	printf '\tserver { listen %s backlog=4096; proxy_pass %s; proxy_timeout 10m; }\n' "$2" "$3" >>"$1"
}

# --- the tunnel path (run.sh and udp.sh) -----------------------------------
# See run.sh for the picture: OUT -veth- SRV -veth- CLI, the bench's tunnel
# (wireguard-go) between SRV and CLI on 10.99.0.0/24, wg-rp's on 10.98.0.0/24.
# tunnel_option ARGS...: an option of both tunnel benches (run.sh and
# udp.sh); SHIFT as for common_option.
tunnel_option() {
	SHIFT=2
	case $1 in
	--workers) WORKERS=${2-} ;;
	--wgrp-args) WGRP_ARGS=${2-} ;;
	--systems) SYSTEMS=${2-} ;;
	*) SHIFT=0 ;;
	esac
	[ "$SHIFT" = 0 ] || [ $# -ge 2 ] || { usage >&2; exit 2; }
}
# tunnel_path_names: the names of the namespaces and interfaces of the
# tunnel benches. Interface names: at most 15 characters, the WireGuard ones
# unique across namespaces (wireguard-go's UAPI sockets share one directory).
tunnel_path_names() {
	NS_OUT=bn$TAG-out NS_SRV=bn$TAG-srv NS_CLI=bn$TAG-cli
	NAMESPACES=("$NS_OUT" "$NS_SRV" "$NS_CLI")
	IF_OS=bnos$TAG IF_SO=bnso$TAG IF_SC=bnsc$TAG IF_CS=bncs$TAG
	WG_S=bnws$TAG WG_C=bnwc$TAG WGRP_S=bnrs$TAG WGRP_C=bnrc$TAG
	WG_IFS=("$WG_S" "$WG_C" "$WGRP_S" "$WGRP_C")
	PUB=198.51.100.1 TUN_C=10.99.0.2 SVC_NS=$NS_CLI
}
setup_net() {
	new_namespaces
	veth "$NS_OUT" "$IF_OS" 198.51.100.2/24 "$NS_SRV" "$IF_SO" "$PUB/24"
	veth "$NS_SRV" "$IF_SC" 192.0.2.1/24 "$NS_CLI" "$IF_CS" 192.0.2.2/24
}

# The bench's own tunnel, for every system but wgrp: wireguard-go started
# as wg-quick would, set up with wg and ip, MTU left at wireguard-go's
# default (as rps and rpc leave it without an MTU line).
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
		peer "$(wg pubkey <<<"$ks")" allowed-ips 10.99.0.1/32 endpoint 192.0.2.1:51820 \
		persistent-keepalive 25
	ip -n "$NS_SRV" addr add 10.99.0.1/24 dev "$WG_S"
	ip -n "$NS_CLI" addr add "$TUN_C/24" dev "$WG_C"
	ip -n "$NS_SRV" link set "$WG_S" up
	ip -n "$NS_CLI" link set "$WG_C" up
}

# wgrp_configs: wg-quick style configs for rps and rpc, as a user writes them.
wgrp_configs() {
	local ks kc
	ks=$(wg genkey) kc=$(wg genkey)
	umask 077
	cat >"$WORK/rps.conf" <<EOF
[Interface]
PrivateKey = $ks
Address = 10.98.0.1/24
ListenPort = 51830

[Peer]
PublicKey = $(wg pubkey <<<"$kc")
AllowedIPs = 10.98.0.2/32
EOF
	cat >"$WORK/rpc.conf" <<EOF
[Interface]
PrivateKey = $kc
Address = 10.98.0.2/32

[Peer]
PublicKey = $(wg pubkey <<<"$ks")
Endpoint = 192.0.2.1:51830
AllowedIPs = 10.98.0.0/24
PersistentKeepalive = 25
EOF
	umask 022
}

# wgrp_tunnel_group RPS_PID RPC_PID: the wireguard-go children of rps and rpc
# (no WireGuard module in this kernel: each starts its own) are accounted in
# group tun-wgrp from now on, so that the relay figures count rps and rpc
# only, the tunnel figures the tunnel only.
wgrp_tunnel_group() {
	local parent pid
	for parent in "$@"; do
		for pid in $(ps -o pid= --ppid "$parent" 2>/dev/null || true); do
			[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = wireguard-go ] && group_move tun-wgrp "$pid"
		done
	done
	[ -n "$(group_pids tun-wgrp)" ] || note "wgrp: no wireguard-go child found (kernel WireGuard?)"
}
# start_wgrp MAX_CONNS_PER_SOURCE ROUTE...: the real daemons in RELAY_GROUP,
# each with its own wireguard-go: rps in SRV, rpc in CLI with these -r
# routes. Returns 1 (with a note) unless rpc registered them all.
start_wgrp() {
	local rps rpc extra route routes=() port
	read -r -a extra <<<"$WGRP_ARGS"
	if [ ! -x "$RPS" ] || [ ! -x "$RPC" ]; then
		note "wgrp skipped: $RPS or $RPC not built"
		return 1
	fi
	[ -e "$WORK/rps.conf" ] || wgrp_configs
	TUN_GROUP=tun-wgrp TUN_IFS="$NS_SRV:$WGRP_S $NS_CLI:$WGRP_C"
	group_new tun-wgrp
	for route in "${@:2}"; do routes+=(-r "$route"); done
	spawn "$RELAY_GROUP" "$NS_SRV" "rps-$ROUND" "$RPS" -c "$WORK/rps.conf" -i "$WGRP_S" --bind "$PUB" \
		--workers "$WORKERS" --max-conns-per-source "$1" "${extra[@]}"
	rps=$SPAWNED
	spawn "$RELAY_GROUP" "$NS_CLI" "rpc-$ROUND" "$RPC" -c "$WORK/rpc.conf" -i "$WGRP_C" \
		"${routes[@]}" --workers "$WORKERS" "${extra[@]}"
	rpc=$SPAWNED
	for route in "${@:2}"; do
		# rpc names a route by its remote port and protocol ("8080", "7007/udp").
		port=${route##*-} port=${port%%,*}
		if ! wait_for 60 grep -qF "port $port on the server now reaches" "$WORK/rpc-$ROUND.err"; then
			note "wgrp (round $ROUND) skipped: rpc did not register $route"
			tail -n 5 "$WORK/rps-$ROUND.err" "$WORK/rpc-$ROUND.err" >&2 || true
			return 1
		fi
	done
	wgrp_tunnel_group "$rps" "$rpc"
}
# stop_wgrp SYSTEM: rpc first (it would otherwise keep registering), then
# rps; each stops its wireguard-go, which removes the interface.
stop_wgrp() {
	local pids
	pids=$(cat "$WORK/group.relay-$1") STATUS=0
	# shellcheck disable=SC2046
	[ -z "$pids" ] || stop $(tac <<<"$pids")
	[ "$STATUS" = 0 ] || note "$1 (round $ROUND): a daemon exited $STATUS on SIGTERM"
	stop_group tun-wgrp
}

# --- measurements --------------------------------------------------------
# tun_counters: "TX_PACKETS TX_BYTES" summed over TUN_IFS: each packet
# through the tunnel leaves one of the two interfaces once.
tun_counters() {
	local spec p=0 b=0 ns dev x y
	for spec in $TUN_IFS; do
		ns=${spec%%:*} dev=${spec#*:}
		x=$(in_ns "$ns" cat "/sys/class/net/$dev/statistics/tx_packets")
		y=$(in_ns "$ns" cat "/sys/class/net/$dev/statistics/tx_bytes")
		p=$((p + x)) b=$((b + y))
	done
	echo "$p $b"
}
cpu_of() { if [ -n "$1" ]; then group_cpu "$1"; else echo 0; fi; }

# run_iperf SYSTEM KEY STREAMS [-R]: one iperf3 run: Mbit/s received, and
# adds the bytes, the relays' and the tunnel's CPU and the tunnel's packets
# to the TOT_* sums of this system's round. KEY warmup: WARMUP seconds,
# nothing recorded (a fresh wireguard-go, as rps and rpc start one per
# round, and fresh relays reach their steady state first).
run_iperf() {
	local sys=$1 key=$2 streams=$3 dir=${4:-} rc0 tc0 rc1 tc1 k0 k1 out bytes bps server secs=$TIME
	[ "$key" != warmup ] || secs=$WARMUP
	spawn svc "$SVC_NS" "iperf3-s-$sys-$key-$ROUND" iperf3 -s -1 -p 5201
	server=$SPAWNED
	if ! wait_for 5 listening "$SVC_NS" 5201; then
		note "$sys: iperf3 server did not start"
		stop "$server"
		return 0
	fi
	rc0=$(cpu_of "$RELAY_GROUP") tc0=$(cpu_of "$TUN_GROUP") k0=$(tun_counters)
	out=$(in_ns "$LOAD_NS" timeout -k 5 $((secs + 20)) iperf3 -c "$HOST" -p "$IPERF_PORT" -t "$secs" \
		-P "$streams" ${dir:+"$dir"} --connect-timeout 5000 -J 2>&1) || true
	rc1=$(cpu_of "$RELAY_GROUP") tc1=$(cpu_of "$TUN_GROUP") k1=$(tun_counters)
	stop "$server"
	read -r bytes bps <<<"$(perl -MJSON::PP -e 'my $j = eval { decode_json(join "", <STDIN>) };
		my $s = $j && $j->{end}{sum_received};
		print $s && $s->{bytes} ? "$s->{bytes} $s->{bits_per_second}" : "0 0"' <<<"$out")"
	if [ "$bytes" = 0 ]; then
		note "$sys: iperf3 $key failed: $(grep -o '"error":.*' <<<"$out" | head -c 200)"
		return 0
	fi
	[ "$key" != warmup ] || return 0
	record "$sys" "$key" "$(awk -v b="$bps" 'BEGIN { print b / 1e6 }')"
	read -r -a k0 <<<"$k0"
	read -r -a k1 <<<"$k1"
	TOT_BYTES=$((TOT_BYTES + bytes)) TOT_RCPU=$((TOT_RCPU + rc1 - rc0)) TOT_TCPU=$((TOT_TCPU + tc1 - tc0))
	TOT_PKTS=$((TOT_PKTS + k1[0] - k0[0])) TOT_TBYTES=$((TOT_TBYTES + k1[1] - k0[1]))
	log "$sys: iperf3 $key $(awk -v b="$bps" 'BEGIN { printf "%.0f", b / 1e6 }') Mbit/s"
}
# warm_up SYSTEM: the unmeasured iperf3 runs, both ways.
warm_up() {
	[ "$WARMUP" = 0 ] && return 0
	run_iperf "$1" warmup 1
	run_iperf "$1" warmup 1 -R
}
# iperf_totals SYSTEM: per-GB figures over this round's iperf3 runs.
iperf_totals() {
	local sys=$1 gb
	[ "$TOT_BYTES" -gt 0 ] || return 0
	gb=$(awk -v b="$TOT_BYTES" 'BEGIN { print b / 1e9 }')
	per_gb() { awk -v x="$1" -v gb="$gb" -v d="$2" 'BEGIN { print x / d / gb }'; }
	if [ -n "$RELAY_GROUP" ]; then
		record "$sys" cpu_relay "$(per_gb "$TOT_RCPU" 1e6)"
		record "$sys" gb_per_cpu "$(awk -v c="$TOT_RCPU" -v gb="$gb" 'BEGIN { if (c > 0) print gb / (c / 1e6) }')"
	fi
	if [ -n "$TUN_GROUP" ]; then
		record "$sys" cpu_total "$(per_gb $((TOT_RCPU + TOT_TCPU)) 1e6)"
		record "$sys" cpu_tun "$(per_gb "$TOT_TCPU" 1e6)"
	fi
	if [ -n "$TUN_IFS" ] && [ "$TOT_PKTS" -gt 0 ]; then
		record "$sys" tun_kpkts "$(per_gb "$TOT_PKTS" 1e3)"
		record "$sys" tun_pktsize "$(awk -v b="$TOT_TBYTES" -v p="$TOT_PKTS" 'BEGIN { print b / p }')"
	fi
}

# run_wrk SYSTEM: keep-alive requests/s and p99 latency (ms), 32 connections.
run_wrk() {
	local sys=$1 out rps p99 line
	out=$(in_ns "$LOAD_NS" timeout -k 5 $((TIME + 20)) wrk -t2 -c32 -d"${TIME}s" \
		--timeout 5s --latency "http://$HOST:$HTTP_PORT/" 2>&1) || true
	read -r rps p99 <<<"$(awk '
		function ms(s) { if (s ~ /us$/) return s / 1000; if (s ~ /ms$/) return s + 0; if (s ~ /s$/) return s * 1000; return s }
		$1 == "Requests/sec:" { rps = $2 } $1 == "99%" { p99 = ms($2) }
		END { print (rps ? rps : "-"), (p99 ? p99 : "-") }' <<<"$out")"
	while read -r line; do
		note "$sys: wrk: $line"
	done < <(grep -E 'Socket errors|Non-2xx' <<<"$out" || true)
	if [ "$rps" = - ]; then
		note "$sys: wrk failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
		return 0
	fi
	record "$sys" wrk_rps "$rps"
	record "$sys" wrk_p99 "$p99"
	log "$sys: wrk $rps req/s, p99 $p99 ms"
}

# run_ab SYSTEM: requests/s with a new connection per request.
run_ab() {
	local sys=$1 out rps failed non2xx completed
	# -t bounds the run in time as well as in count (-n must come after it).
	out=$(in_ns "$LOAD_NS" timeout -k 5 $((4 * TIME + 30)) ab -q -r -s 10 -t $((4 * TIME)) \
		-n "$REQUESTS" -c 16 "http://$HOST:$HTTP_PORT/" 2>&1) || true
	rps=$(awk '/^Requests per second:/ { print $4 }' <<<"$out")
	failed=$(awk '/^Failed requests:/ { print $3 }' <<<"$out")
	non2xx=$(awk '/^Non-2xx responses:/ { print $3 }' <<<"$out")
	completed=$(awk '/^Complete requests:/ { print $3 }' <<<"$out")
	[ -z "$non2xx" ] || note "$sys: ab: $non2xx non-2xx responses"
	[ "${failed:-0}" = 0 ] || note "$sys: ab: $failed failed requests"
	[ "${completed:-0}" -ge "$REQUESTS" ] || note "$sys: ab stopped at its time limit after ${completed:-0} requests"
	if [ -z "$rps" ]; then
		note "$sys: ab failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
		return 0
	fi
	record "$sys" ab_rps "$rps"
	log "$sys: ab $rps req/s"
}

# The idle holder: opens N connections, sends one HTTP request on each and
# reads its response (each connection has carried data both ways, as a
# keep-alive client's would), then holds them idle until killed, or 120 s.
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

# run_idle SYSTEM: userspace memory (KiB) and descriptors per idle
# connection, both relay sides together: the growth from before to while
# IDLE connections are open; and the descriptors still held above the
# baseline once they are closed (waiting up to 25 s, past two of wg-rp's
# pipe trims).
run_idle() {
	local sys=$1 name="idle-$1-$ROUND" m0 m1 m2 holder ok
	m0=$(group_mem "$RELAY_GROUP")
	spawn load "$LOAD_NS" "$name" perl "$WORK/idle.pl" "$HOST" "$HTTP_PORT" "$IDLE"
	holder=$SPAWNED
	if ! wait_for 90 grep -q '^ready' "$WORK/$name.out"; then
		note "$sys: idle connections not ready in 90 s"
		stop "$holder"
		return 0
	fi
	ok=$(awk '{ print $2 }' "$WORK/$name.out")
	sleep 1 # let the relays finish whatever they do after the last response
	m1=$(group_mem "$RELAY_GROUP")
	stop "$holder"
	[ "$ok" = "$IDLE" ] || note "$sys: only $ok of $IDLE idle connections completed a request"
	[ "${ok:-0}" -gt 0 ] || return 0
	read -r -a m0 <<<"$m0"
	read -r -a m1 <<<"$m1"
	for _ in $(seq 125); do
		read -r -a m2 <<<"$(group_mem "$RELAY_GROUP")"
		[ "${m2[1]}" -le "${m0[1]}" ] && break
		sleep 0.2
	done
	record "$sys" idle_fds_left "$((m2[1] - m0[1]))"
	[ "${m2[1]}" -le "${m0[1]}" ] ||
		note "$sys: $((m2[1] - m0[1])) fds above the baseline 25 s after the idle connections closed"
	record "$sys" idle_kib "$(awk -v a="${m0[0]}" -v b="${m1[0]}" -v n="$ok" 'BEGIN { print (b - a) / n }')"
	record "$sys" idle_fds "$(awk -v a="${m0[1]}" -v b="${m1[1]}" -v n="$ok" 'BEGIN { print (b - a) / n }')"
	log "$sys: $ok idle connections: $(( (m1[0] - m0[0]) * 1024 / ok )) B and $(( (m1[1] - m0[1]) / ok )) fds each"
	sleep 1
}

# path_answers SYSTEM: a short check that the whole path serves HTTP.
path_answers() {
	local out
	out=$(in_ns "$LOAD_NS" timeout -k 5 30 ab -s 5 -n 50 -c 2 "http://$HOST:$HTTP_PORT/" 2>&1) || true
	if ! grep -q '^Complete requests: *50$' <<<"$out" || ! grep -q '^Failed requests: *0$' <<<"$out" ||
		grep -q '^Non-2xx' <<<"$out"; then
		note "$1 (round $ROUND) skipped: the path does not answer HTTP"
		return 1
	fi
}

# rotated N LIST...: LIST rotated left by N.
rotated() {
	local n=$1
	shift
	local a=("$@")
	n=$((n % ${#a[@]}))
	echo "${a[@]:n}" "${a[@]:0:n}"
}

# begin_run: CPU accounting, the load group, and the systems asked for
# (SYSTEMS, each one of ALL_SYSTEMS) in the array SYSTEM_LIST.
begin_run() {
	local s
	cg_setup
	group_new load
	IFS=, read -ra SYSTEM_LIST <<<"$SYSTEMS"
	for s in "${SYSTEM_LIST[@]}"; do
		[[ ,$ALL_SYSTEMS, == *,$s,* ]] || { echo "unknown system $s" >&2; exit 2; }
	done
	log "namespaces ${NAMESPACES[*]}; CPU accounting: ${CG:-/proc (no cgroup v2)}; results in $OUT_DIR"
}
# run_rounds: run_system for each system once per round, in an order
# rotated by one each round.
run_rounds() {
	local s
	for ROUND in $(seq "$ROUNDS"); do
		for s in $(rotated $((ROUND - 1)) "${SYSTEM_LIST[@]}"); do run_system "$s"; done
	done
}

# finish_report TITLE KIND: the table, the JSON file and the chart from the
# raw figures, and the notes.
finish_report() {
	local py=/usr/bin/python3
	[ -x $py ] || py=python3
	echo
	"$py" "$BENCH_DIR/report.py" --kind "$2" --title "$1" --dir "$OUT_DIR" ||
		note "report.py failed; the raw figures are in $OUT_DIR/raw.tsv"
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		printf 'note: %s\n' "${NOTES[@]}" | awk '!seen[$0]++' | tee "$OUT_DIR/notes.txt"
	fi
	echo
	echo "raw figures: $OUT_DIR/raw.tsv"
	[ ! -e "$OUT_DIR/results.json" ] || echo "JSON:        $OUT_DIR/results.json"
	[ ! -e "$OUT_DIR/ratios.png" ] || echo "chart:       $OUT_DIR/ratios.png"
	return 0
}
