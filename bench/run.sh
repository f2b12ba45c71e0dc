#!/bin/bash
# wg-rp benchmark over the tunnel: builds the product's traffic path in three
# network namespaces and compares, in interleaved rounds, the real daemons
# (rps and rpc) with the bare tunnel, kernel DNAT, HAProxy and nginx stream
# on the same kind of tunnel (wireguard-go). It prints numbers; it asserts
# nothing about speed (exit status 0 means the benchmark ran).
#
#   netns OUT (outside)        netns SRV (server host)                   netns CLI (client host, behind NAT)
#   load generators:           relay S:                                  relay C:
#   iperf3 -c, wrk, ab,          198.51.100.1:8080 -> 10.99.0.2:18080      10.99.0.2:18080 -> 127.0.0.1:80   (nginx)
#   idle-connection holder       198.51.100.1:5201 -> 10.99.0.2:15201      10.99.0.2:15201 -> 127.0.0.1:5201 (iperf3 -s)
#
#   198.51.100.2/24 <-veth-> 198.51.100.1/24
#                            192.0.2.1/24  <------------ veth ------------>  192.0.2.2/24
#                            wg 10.99.0.1/24 ===== wireguard-go (bench) ===== wg 10.99.0.2/24
#                            wg 10.98.0.1/24 ===== wireguard-go (rps/rpc) === wg 10.98.0.2/32 (system wgrp only)
#
# Systems: ceiling (no relay: the load from SRV straight to 10.99.0.2 over
# the tunnel), dnat (nftables DNAT in SRV to 10.99.0.2, masquerade into the
# tunnel: the kernel forwards, no relay on either side), haproxy-auto and
# haproxy-splice (one process per side, nbthread = cores), nginx (stream
# module, worker_processes = cores, one per side), wgrp (rps in SRV, rpc in
# CLI, each bringing up its own wireguard-go interface; rpc registers
# 127.0.0.1:80-8080 and 127.0.0.1:5201-5201), and, when asked for,
# wgrp-transparent (the same with ",transparent" routes: a PROXY v2 header
# per connection through the tunnel, and the services see the visitor).
#
# Nothing is linked to the root namespace; every address is a documentation
# range or a tunnel range that exists only inside SRV and CLI. Every load is
# bounded in time and count.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
IDLE=2000
WORKERS=$CORES
WGRP_ARGS=
ALL_SYSTEMS=ceiling,dnat,haproxy-auto,haproxy-splice,nginx,wgrp,wgrp-transparent
SYSTEMS=ceiling,dnat,haproxy-auto,haproxy-splice,nginx,wgrp

usage() {
	echo "usage: sudo $0 [options]"
	common_usage "cmd/rps/rps and cmd/rpc/rpc"
	cat <<EOF
  --quick          a short run: --time 2 --requests 1000 --idle 500 (still $ROUNDS rounds)
  --idle N         idle connections held open (default $IDLE)
  --workers N      rps/rpc --workers (default: cores, $CORES)
  --wgrp-args ARGS more options for both rps and rpc, e.g. "-b 256" (default: none)
  --systems LIST   comma-separated, of $ALL_SYSTEMS (default: $SYSTEMS)
EOF
}

while [ $# -gt 0 ]; do
	common_option "$@"
	[ "$SHIFT" != 0 ] || tunnel_option "$@"
	if [ "$SHIFT" = 0 ]; then
		case $1 in
		--quick) TIME=2 REQUESTS=1000 IDLE=500 SHIFT=1 ;;
		--idle) IDLE=${2-} SHIFT=2 ;;
		*) usage >&2; exit 2 ;;
		esac
	fi
	shift "$SHIFT"
done
check_numbers "$IDLE" "$WORKERS"
need_cmds ip wg wireguard-go nft iperf3 nginx haproxy wrk ab perl ss timeout
tunnel_path_names
RPS=$(realpath -m "$BUILD/cmd/rps/rps") RPC=$(realpath -m "$BUILD/cmd/rpc/rpc")
OUT_DIR=${OUT_DIR:-$BENCH_DIR/results/tunnel-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT_DIR"
OUT_DIR=$(realpath "$OUT_DIR")
: >"$OUT_DIR/raw.tsv"
: >"$OUT_DIR/settings.tsv"

WORK=$(mktemp -d "/tmp/bn$TAG.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM

# Thousands of idle connections cost each relay 4,000+ descriptors; every
# process we start inherits this.
ulimit -n "$(ulimit -Hn)"

# The DNAT rules live in a table of their own, present only while dnat runs.
dnat_rules() {
	cat <<EOF
table ip bn$TAG {
	chain pre {
		type nat hook prerouting priority dstnat;
		iifname "$IF_SO" ip daddr $PUB tcp dport 8080 dnat to $TUN_C:80
		iifname "$IF_SO" ip daddr $PUB tcp dport 5201 dnat to $TUN_C:5201
	}
	chain post {
		type nat hook postrouting priority srcnat;
		oifname "$WG_S" masquerade
	}
}
EOF
}

# --- systems -----------------------------------------------------------------
# start_system SYSTEM: its relays (group relay-SYSTEM) and the targets
# (LOAD_NS HOST HTTP_PORT IPERF_PORT RELAY_GROUP TUN_GROUP TUN_IFS). Returns
# 1 (with a note) if it cannot run.
start_system() {
	local sys=$1 g=relay-$1 side option
	LOAD_NS=$NS_OUT HOST=$PUB HTTP_PORT=8080 IPERF_PORT=5201
	RELAY_GROUP=$g TUN_GROUP=wg TUN_IFS="$NS_SRV:$WG_S $NS_CLI:$WG_C"
	group_new "$g"
	case $sys in
	ceiling)
		# OUT has no route to the tunnel: the load starts in SRV. The hop it
		# skips (OUT->SRV veth) costs next to nothing beside the tunnel.
		LOAD_NS=$NS_SRV HOST=$TUN_C HTTP_PORT=80 RELAY_GROUP=
		return 0
		;;
	dnat)
		in_ns "$NS_SRV" sysctl -qw net.ipv4.ip_forward=1
		dnat_rules | in_ns "$NS_SRV" nft -f - || { note "dnat: nft failed"; return 1; }
		RELAY_GROUP=
		return 0
		;;
	haproxy-auto | haproxy-splice)
		for side in srv cli; do haproxy_conf "$WORK/$sys-$side.cfg" "${sys#haproxy-}" "$CORES"; done
		haproxy_listen "$WORK/$sys-srv.cfg" http $PUB:8080 $TUN_C:18080
		haproxy_listen "$WORK/$sys-srv.cfg" iperf $PUB:5201 $TUN_C:15201
		haproxy_listen "$WORK/$sys-cli.cfg" http $TUN_C:18080 127.0.0.1:80
		haproxy_listen "$WORK/$sys-cli.cfg" iperf $TUN_C:15201 127.0.0.1:5201
		spawn "$g" "$NS_SRV" "$sys-srv-$ROUND" haproxy -db -f "$WORK/$sys-srv.cfg"
		spawn "$g" "$NS_CLI" "$sys-cli-$ROUND" haproxy -db -f "$WORK/$sys-cli.cfg"
		;;
	nginx)
		for side in srv cli; do nginx_stream_conf "$WORK/nginx-$side.conf" "nginx-$side" "$CORES"; done
		nginx_stream_server "$WORK/nginx-srv.conf" $PUB:8080 $TUN_C:18080
		nginx_stream_server "$WORK/nginx-srv.conf" $PUB:5201 $TUN_C:15201
		nginx_stream_server "$WORK/nginx-cli.conf" $TUN_C:18080 127.0.0.1:80
		nginx_stream_server "$WORK/nginx-cli.conf" $TUN_C:15201 127.0.0.1:5201
		for side in srv cli; do echo "}" >>"$WORK/nginx-$side.conf"; done
		spawn "$g" "$NS_SRV" "nginx-srv-$ROUND" nginx -e "$WORK/nginx-srv.err" -p "$WORK" -c "$WORK/nginx-srv.conf"
		spawn "$g" "$NS_CLI" "nginx-cli-$ROUND" nginx -e "$WORK/nginx-cli.err" -p "$WORK" -c "$WORK/nginx-cli.conf"
		;;
	wgrp | wgrp-transparent)
		# wgrp-transparent: the same with that route option (what the
		# visitor's address costs).
		option=${sys#wgrp} option=${option:+,${option#-}}
		start_wgrp $((IDLE + 1000)) "127.0.0.1:80-8080$option" "127.0.0.1:5201-5201$option" || return 1
		return 0
		;;
	esac
	if ! wait_for 10 listening "$NS_SRV" 8080 || ! wait_for 10 listening "$NS_SRV" 5201 ||
		! wait_for 10 listening "$NS_CLI" 18080 || ! wait_for 10 listening "$NS_CLI" 15201; then
		note "$sys (round $ROUND) skipped: relays did not start listening"
		tail -n 5 "$WORK/$sys"-*.err >&2 || true
		return 1
	fi
}

stop_system() {
	local sys=$1
	case $sys in
	dnat)
		in_ns "$NS_SRV" nft delete table ip "bn$TAG" || true
		in_ns "$NS_SRV" sysctl -qw net.ipv4.ip_forward=0
		;;
	wgrp | wgrp-transparent)
		stop_wgrp "$sys"
		;;
	esac
	stop_group "relay-$sys"
}

# record_settings SYSTEM: the tunnel interfaces' settings and what the
# wireguard-go processes run with, to compare wg-rp's children with the bench's.
record_settings() {
	local sys=$1 spec ns dev pid side k
	for spec in $TUN_IFS; do
		ns=${spec%%:*} dev=${spec#*:} side=${ns##*-}
		setting "$sys" "$side" mtu "$(in_ns "$ns" cat "/sys/class/net/$dev/mtu")"
		setting "$sys" "$side" txqueuelen "$(in_ns "$ns" cat "/sys/class/net/$dev/tx_queue_len")"
		setting "$sys" "$side" qdisc "$(ip -n "$ns" -o link show dev "$dev" | grep -o 'qdisc [^ ]*' | cut -d' ' -f2)"
		if command -v ethtool >/dev/null; then
			setting "$sys" "$side" offloads_on "$(in_ns "$ns" ethtool -k "$dev" 2>/dev/null |
				awk -F': ' '$2 ~ /^on/ { gsub(/[ \t]/, "", $1); printf "%s%s", s, $1; s = "," }')"
		fi
	done
	for pid in $(group_pids "$TUN_GROUP"); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = wireguard-go ] || continue
		side=$(ip netns identify "$pid" 2>/dev/null) side=${side##*-}
		setting "$sys" "$side" proc_env "$(tr '\0' '\n' <"/proc/$pid/environ" |
			grep -E '^(GOMAXPROCS|GOGC|GODEBUG|GOMEMLIMIT|LOG_LEVEL|WG_[A-Z_]*)=' | sort | paste -sd' ')"
		for k in Cpus_allowed_list SigBlk SigIgn; do
			# Per thread: the distinct values over all of them (the Go
			# runtime blocks signals in some of its threads for a while).
			setting "$sys" "$side" "proc_$k" "$(cat "/proc/$pid"/task/*/status 2>/dev/null |
				awk -v k="$k:" '$1 == k { print $2 }' | sort -u | paste -sd,)"
		done
		setting "$sys" "$side" proc_nice "$(awk '{ print $19 }' "/proc/$pid/stat")"
		setting "$sys" "$side" proc_timerslack_ns "$(cat "/proc/$pid/timerslack_ns" 2>/dev/null || echo -)"
		setting "$sys" "$side" proc_oom_score_adj "$(cat "/proc/$pid/oom_score_adj")"
		setting "$sys" "$side" proc_sched "$(chrt -p "$pid" 2>/dev/null | awk -F': ' 'NR == 1 { print $2 }')"
		setting "$sys" "$side" proc_nofile "$(awk '/^Max open files/ { print $4 "/" $5 }' "/proc/$pid/limits")"
		setting "$sys" "$side" proc_cgroup_weight "$([ -n "$CG" ] && cat "$CG/$TUN_GROUP/cpu.weight" 2>/dev/null || echo -)"
	done
}

run_system() {
	local sys=$1
	log "round $ROUND: $sys"
	if ! start_system "$sys" || ! path_answers "$sys"; then
		stop_system "$sys"
		return 0
	fi
	record_settings "$sys"
	# Idle cost first, on relays that have seen little traffic: memory freed
	# by heavier loads and kept for reuse would otherwise hide the real cost.
	[ -z "$RELAY_GROUP" ] || run_idle "$sys"
	warm_up "$sys"
	TOT_BYTES=0 TOT_RCPU=0 TOT_TCPU=0 TOT_PKTS=0 TOT_TBYTES=0
	run_iperf "$sys" t1_up 1
	run_iperf "$sys" t1_down 1 -R
	iperf_totals "$sys"
	run_wrk "$sys"
	run_ab "$sys"
	stop_system "$sys"
}

# --- main ------------------------------------------------------------------
begin_run
setup_net
start_service "$NS_CLI"
setup_wg
# The first packet triggers the handshake; wait until the tunnel carries TCP.
wait_for 20 tcp_open "$NS_SRV" $TUN_C:80 || { echo "no TCP over the tunnel" >&2; exit 1; }
write_idle_holder
run_rounds
cat >"$OUT_DIR/meta.json" <<EOF
{"bench": "tunnel", "date": "$(date -u '+%Y-%m-%d %H:%M UTC')", "kernel": "$(uname -r)", "cores": $CORES,
 "rounds": $ROUNDS, "time_s": $TIME, "ab_requests": $REQUESTS, "idle_conns": $IDLE, "wgrp_workers": $WORKERS,
 "commit": "$(git -C "$BENCH_DIR" rev-parse --short HEAD 2>/dev/null || echo -)",
 "cpu_accounting": "${CG:+cgroup v2}${CG:-/proc}", "systems": "$SYSTEMS"}
EOF
finish_report "wg-rp over the tunnel: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $CORES cores, $ROUNDS rounds;\
 iperf3/wrk ${TIME}s, ab -n $REQUESTS -c 16, $IDLE idle conns, rps/rpc --workers $WORKERS" tunnel
log finished
