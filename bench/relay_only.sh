#!/bin/bash
# Relay-only benchmark: no tunnel, so that the relay rather than wireguard-go
# is the bottleneck. Three namespaces in a chain, the relay in the middle:
#
#   netns IN (load)            netns RLY (relay)                          netns SVC (service)
#   iperf3 -c, wrk, ab         198.51.100.1:8080 -> 192.0.2.2:80            nginx  0.0.0.0:80
#                              198.51.100.1:5201 -> 192.0.2.2:5201          iperf3 0.0.0.0:5201
#   198.51.100.2/24 <-veth-> 198.51.100.1/24   192.0.2.1/24 <-veth-> 192.0.2.2/24
#
# Systems, for each N in --counts (default 1,2): wgrp-Nw, wg-rp's relay
# engine as the standalone tool build/test/wgrp-relay with -w N (one
# process per listener, as each daemon has one listener per mapping), and
# haproxy-Nt, HAProxy with nbthread N and splice forced. Interleaved rounds,
# medians, same-round ratios to haproxy-2t and to wgrp-1w (bench/report.py).
# It asserts nothing about speed.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
COUNTS=1,2

usage() {
	echo "usage: sudo $0 [options]"
	common_usage test/wgrp-relay
	cat <<EOF
  --quick          a short run: --time 2 --requests 1000 (still $ROUNDS rounds)
  --counts LIST    worker / thread counts to compare (default $COUNTS)
EOF
}

while [ $# -gt 0 ]; do
	common_option "$@"
	if [ "$SHIFT" = 0 ]; then
		case $1 in
		--quick) TIME=2 REQUESTS=1000 SHIFT=1 ;;
		--counts) COUNTS=${2-} SHIFT=2 ;;
		*) usage >&2; exit 2 ;;
		esac
	fi
	shift "$SHIFT"
done
IFS=, read -ra counts <<<"$COUNTS"
check_numbers "${counts[@]}"
need_cmds ip iperf3 nginx haproxy wrk ab perl ss timeout
RELAY=$(realpath -m "$BUILD/test/wgrp-relay")
OUT_DIR=${OUT_DIR:-$BENCH_DIR/results/relay-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT_DIR"
OUT_DIR=$(realpath "$OUT_DIR")
: >"$OUT_DIR/raw.tsv"

NS_IN=bn$TAG-in NS_RLY=bn$TAG-rly NS_SVC=bn$TAG-svc
NAMESPACES=("$NS_IN" "$NS_RLY" "$NS_SVC")
WG_IFS=()
IF_IR=bnir$TAG IF_RI=bnri$TAG IF_RS=bnrs$TAG IF_SR=bnsr$TAG
PUB=198.51.100.1 SVC=192.0.2.2
WORK=$(mktemp -d "/tmp/bn$TAG.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"

# start_system SYSTEM: the relay (group relay-SYSTEM) in RLY.
start_system() {
	local sys=$1 g=relay-$1 n=${1##*-}
	n=${n%[wt]}
	group_new "$g"
	case $sys in
	wgrp-*)
		[ -x "$RELAY" ] || { note "$sys skipped: $RELAY not built"; return 1; }
		spawn "$g" "$NS_RLY" "$sys-http-$ROUND" "$RELAY" -w "$n" $PUB:8080 $SVC:80
		spawn "$g" "$NS_RLY" "$sys-iperf-$ROUND" "$RELAY" -w "$n" $PUB:5201 $SVC:5201
		;;
	haproxy-*)
		haproxy_conf "$WORK/$sys.cfg" splice "$n"
		haproxy_listen "$WORK/$sys.cfg" http $PUB:8080 $SVC:80
		haproxy_listen "$WORK/$sys.cfg" iperf $PUB:5201 $SVC:5201
		spawn "$g" "$NS_RLY" "$sys-$ROUND" haproxy -db -f "$WORK/$sys.cfg"
		;;
	esac
	if ! wait_for 10 listening "$NS_RLY" 8080 || ! wait_for 10 listening "$NS_RLY" 5201; then
		note "$sys (round $ROUND) skipped: the relay did not start listening"
		tail -n 5 "$WORK/$sys"-*.err >&2 || true
		return 1
	fi
}

run_system() {
	local sys=$1
	log "round $ROUND: $sys"
	RELAY_GROUP=relay-$sys
	if start_system "$sys" && path_answers "$sys"; then
		run_ab "$sys"
		run_wrk "$sys"
		warm_up "$sys"
	TOT_BYTES=0 TOT_RCPU=0 TOT_TCPU=0 TOT_PKTS=0 TOT_TBYTES=0
		run_iperf "$sys" t1_up 1
		run_iperf "$sys" t1_down 1 -R
		run_iperf "$sys" t4_up 4
		iperf_totals "$sys"
	fi
	stop_group "relay-$sys"
}

cg_setup
group_new load
systems=()
for n in "${counts[@]}"; do systems+=("wgrp-${n}w"); done
for n in "${counts[@]}"; do systems+=("haproxy-${n}t"); done
log "namespaces ${NAMESPACES[*]}; CPU accounting: ${CG:-/proc (no cgroup v2)}; results in $OUT_DIR"
new_namespaces
veth "$NS_IN" "$IF_IR" 198.51.100.2/24 "$NS_RLY" "$IF_RI" $PUB/24
veth "$NS_RLY" "$IF_RS" 192.0.2.1/24 "$NS_SVC" "$IF_SR" $SVC/24
start_service "$NS_SVC"
LOAD_NS=$NS_IN HOST=$PUB HTTP_PORT=8080 IPERF_PORT=5201 SVC_NS=$NS_SVC TUN_GROUP='' TUN_IFS=''
for ROUND in $(seq "$ROUNDS"); do
	for s in $(rotated $((ROUND - 1)) "${systems[@]}"); do run_system "$s"; done
done
cat >"$OUT_DIR/meta.json" <<EOF
{"bench": "relay", "date": "$(date -u '+%Y-%m-%d %H:%M UTC')", "kernel": "$(uname -r)", "cores": $CORES,
 "rounds": $ROUNDS, "time_s": $TIME, "ab_requests": $REQUESTS,
 "commit": "$(git -C "$BENCH_DIR" rev-parse --short HEAD 2>/dev/null || echo -)",
 "cpu_accounting": "${CG:+cgroup v2}${CG:-/proc}", "systems": "$(IFS=,; echo "${systems[*]}")"}
EOF
finish_report "relay only (veth, no tunnel): $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $CORES cores,\
 $ROUNDS rounds; iperf3/wrk ${TIME}s, ab -n $REQUESTS -c 16; HAProxy splice forced" relay
log finished
