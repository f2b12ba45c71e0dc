#!/bin/bash
# wg-rp UDP benchmark over the tunnel: the same path as bench/run.sh (three
# network namespaces, wireguard-go), with UDP services behind it, comparing
# in interleaved rounds the real daemons (rps and rpc, /udp routes) with
# socat and nginx stream UDP relays on the bench's tunnel, and the bare
# tunnel. It prints numbers; it asserts nothing about speed (exit status 0
# means the benchmark ran).
#
#   netns OUT (outside)      netns SRV (server host)                    netns CLI (client host, behind NAT)
#   udp_load.py rr, send     relay S:                                   relay C:
#                              198.51.100.1:7007 -> 10.99.0.2:17007       10.99.0.2:17007 -> 127.0.0.1:7007 (echo)
#                              198.51.100.1:5201 -> 10.99.0.2:15201       10.99.0.2:15201 -> 127.0.0.1:5201 (sink)
#
#   198.51.100.2/24 <-veth-> 198.51.100.1/24
#                            192.0.2.1/24  <------------ veth ------------>  192.0.2.2/24
#                            wg 10.99.0.1/24 ===== wireguard-go (bench) ===== wg 10.99.0.2/24
#                            wg 10.98.0.1/24 ===== wireguard-go (rps/rpc) === wg 10.98.0.2/32 (system wgrp only)
#
# Systems: ceiling (no relay: the load from SRV straight to 10.99.0.2 over
# the bench's tunnel), socat (per flow, see start_socat), nginx (stream
# module, "listen ... udp", one per side), wgrp (rps in SRV, rpc in CLI with
# -r 127.0.0.1:7007-7007/udp -r 127.0.0.1:5201-5201/udp, each bringing up
# its own wireguard-go).
#
# Each system's turn: a probe (the echo answers through the path), the
# warm-up (unmeasured request/response), request/response as fast as the
# clients go, the head-of-line check (a paced request/response load without
# and then with 1 % loss each way on the veth that carries the tunnel:
# netem, or nftables where the kernel has no netem; see loss), one-way
# throughput to the sink.
#
# Nothing is linked to the root namespace; every address is a documentation
# range or a tunnel range that exists only inside SRV and CLI. Every load is
# bounded in time and count.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WORKERS=$CORES
WGRP_ARGS=
CLIENTS=64 RATE=0 LOSS=1 INTERVAL=20
ALL_SYSTEMS=ceiling,socat,nginx,wgrp
SYSTEMS=$ALL_SYSTEMS
PY=/usr/bin/python3
LOAD=$BENCH_DIR/udp_load.py
RR_PORT=7007 TP_PORT=5201

usage() {
	cat <<EOF
usage: sudo $0 [options]
  --build DIR      cmake build directory with cmd/rps/rps and cmd/rpc/rpc (default: $BUILD)
  --rounds N       interleaved rounds, each system once per round (default $ROUNDS)
  --time S         seconds per request/response and per throughput run (default $TIME)
  --warmup S       unmeasured request/response seconds at the start of each
                   system's turn, 0 for none (default $WARMUP)
  --quick          a short run: --time 2 (still $ROUNDS rounds)
  --clients N      request/response clients, each a flow of its own (default $CLIENTS)
  --interval MS    the paced request/response runs (head-of-line check): each
                   client sends at most one request per MS (default $INTERVAL)
  --rate MBIT      the throughput sender's pace in Mbit/s, 0 for as fast as it can (default $RATE)
  --no-loss        skip the head-of-line check (paced runs, induced loss)
  --workers N      rps/rpc --workers (default: cores, $CORES)
  --wgrp-args ARGS more options for both rps and rpc (default: none)
  --systems LIST   comma-separated, of $ALL_SYSTEMS (default: all)
  --out DIR        where the raw figures, JSON and chart go (default bench/results/udp-DATE)
  --keep-logs DIR  copy every process's output and the generated configs there
  --no-cgroup      account CPU from /proc even where cgroup v2 is available
EOF
}

while [ $# -gt 0 ]; do
	common_option "$@"
	[ "$SHIFT" != 0 ] || tunnel_option "$@"
	if [ "$SHIFT" = 0 ]; then
		case $1 in
		--quick) TIME=2 SHIFT=1 ;;
		--clients) CLIENTS=${2-} SHIFT=2 ;;
		--rate) RATE=${2-} SHIFT=2 ;;
		--interval) INTERVAL=${2-} SHIFT=2 ;;
		--no-loss) LOSS='' SHIFT=1 ;;
		*) usage >&2; exit 2 ;;
		esac
	fi
	shift "$SHIFT"
done
check_numbers "$CLIENTS" "$WORKERS" "$INTERVAL"
[[ $RATE =~ ^[0-9]+$ ]] || { echo "not a number: $RATE" >&2; exit 2; }
need_cmds ip wg wireguard-go tc nft socat nginx ss timeout $PY
tunnel_path_names
RPS=$(realpath -m "$BUILD/cmd/rps/rps") RPC=$(realpath -m "$BUILD/cmd/rpc/rpc")
OUT_DIR=${OUT_DIR:-$BENCH_DIR/results/udp-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT_DIR"
OUT_DIR=$(realpath "$OUT_DIR")
: >"$OUT_DIR/raw.tsv"
WORK=$(mktemp -d "/tmp/bn$TAG.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"

udp_listening() { [ -n "$(ip netns exec "$1" ss -Hlun "sport = :$2")" ]; }
# load SECONDS MODE ARGS...: a udp_load.py mode in LOAD_NS, bounded by
# timeout as well as by its own --time; its output line on stdout.
load() {
	local secs=$1
	shift
	in_ns "$LOAD_NS" timeout -k 5 $((secs + 20)) $PY "$LOAD" "$@" 2>&1 | tail -n 1 || true
}
# field LINE NAME: the value after NAME in udp_load.py's "name value ..." line.
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$1"; }

# The services: the echo for request/response, for the whole run; the sink
# is started per throughput run (see run_throughput).
start_udp_service() {
	group_new svc
	spawn svc "$NS_CLI" svc-echo $PY "$LOAD" echo 0.0.0.0:$RR_PORT
	wait_for 10 udp_listening "$NS_CLI" $RR_PORT || { echo "the echo service did not start" >&2; exit 1; }
}

# The tunnel carries UDP once the handshake is done: the echo answers
# straight over it.
tunnel_ready() {
	in_ns "$NS_SRV" $PY "$LOAD" probe --to "$TUN_C:$RR_PORT" --time 2 >/dev/null 2>&1
}

# The induced loss: 1 % of the packets leaving either end of the veth
# between SRV and CLI, which carries both tunnels (the bench's and wg-rp's),
# so 1 % of the tunnel's packets each way. With netem where the kernel has
# it (sch_netem, or built in); else with an nftables rule that drops one
# packet in 100 at random on the output hook, where wireguard-go's packets
# leave (numgen random); else none (the loss run is skipped, with a note).
# loss_rules IF: the nftables table for one side.
loss_rules() {
	printf 'table inet bnloss%s {\n\tchain out {\n\t\ttype filter hook output priority 0;\n' "$TAG"
	printf '\t\toifname "%s" numgen random mod 100 < 1 drop\n\t}\n}\n' "$1"
}
# loss on|off: with LOSS (netem or nft).
loss() {
	local spec ns dev
	for spec in "$NS_SRV $IF_SC" "$NS_CLI $IF_CS"; do
		read -r ns dev <<<"$spec"
		case $LOSS-$1 in
		netem-on) in_ns "$ns" tc qdisc add dev "$dev" root netem loss 1% || return 1 ;;
		netem-off) in_ns "$ns" tc qdisc del dev "$dev" root 2>/dev/null || true ;;
		nft-on) loss_rules "$dev" | in_ns "$ns" nft -f - || return 1 ;;
		nft-off) in_ns "$ns" nft delete table inet "bnloss$TAG" 2>/dev/null || true ;;
		esac
	done
}
# pick_loss: sets LOSS to what works here, tried on the veth and removed.
pick_loss() {
	modprobe sch_netem 2>/dev/null || true
	for LOSS in netem nft; do
		if loss on 2>/dev/null; then
			loss off
			[ $LOSS = netem ] ||
				note "no netem in this kernel (sch_netem): the 1 % loss is induced with nftables (numgen random) instead"
			return 0
		fi
		loss off
	done
	LOSS=
	note "neither netem nor nftables' numgen here: the run with 1 % induced loss is skipped"
}

# --- systems -----------------------------------------------------------------
# socat relays UDP per flow with UDP4-LISTEN,fork: the listening socket
# takes a flow's first datagram, "connects" to its sender and is handed to a
# child for that flow, which relays both ways between it and a connected
# socket of its own towards the target (UDP4:TARGET), so replies find their
# flow; the parent opens a new listening socket (reuseaddr) for the next
# flow. A child ends after -T seconds of silence. (UDP-RECVFROM,fork would
# fork a child per datagram, not per flow.) Datagrams of a new flow that
# arrive while the parent is between sockets are lost: socat's cost, not
# the bench's.
start_socat() {
	local g=$1 spec ns from to
	for spec in "$NS_SRV $PUB:$RR_PORT $TUN_C:1$RR_PORT" "$NS_SRV $PUB:$TP_PORT $TUN_C:1$TP_PORT" \
		"$NS_CLI $TUN_C:1$RR_PORT 127.0.0.1:$RR_PORT" "$NS_CLI $TUN_C:1$TP_PORT 127.0.0.1:$TP_PORT"; do
		read -r ns from to <<<"$spec"
		spawn "$g" "$ns" "socat-${from##*:}-$ROUND" socat -T 30 \
			"UDP4-LISTEN:${from##*:},bind=${from%:*},fork,reuseaddr" "UDP4:$to"
	done
}
# nginx stream UDP: "listen ... udp reuseport", so that with several workers
# each flow stays on one worker (the kernel hashes the 4-tuple) and nginx
# keeps one session per client address and port, with one upstream socket.
# proxy_responses is left unset (any number of replies): set to 1 it would
# end the session at the first reply and open a new upstream socket for
# each request; 0 would end it at once for the one-way load. proxy_timeout
# ends a session after 30 s of silence, as socat's -T.
nginx_udp() { printf '\tserver { listen %s udp reuseport; proxy_pass %s; proxy_timeout 30s; }\n' "$2" "$3" >>"$1"; }
start_nginx() {
	local g=$1 side
	for side in srv cli; do nginx_stream_conf "$WORK/nginx-$side.conf" "nginx-$side" "$CORES"; done
	nginx_udp "$WORK/nginx-srv.conf" $PUB:$RR_PORT $TUN_C:1$RR_PORT
	nginx_udp "$WORK/nginx-srv.conf" $PUB:$TP_PORT $TUN_C:1$TP_PORT
	nginx_udp "$WORK/nginx-cli.conf" $TUN_C:1$RR_PORT 127.0.0.1:$RR_PORT
	nginx_udp "$WORK/nginx-cli.conf" $TUN_C:1$TP_PORT 127.0.0.1:$TP_PORT
	for side in srv cli; do
		echo "}" >>"$WORK/nginx-$side.conf"
		spawn "$g" "$([ $side = srv ] && echo "$NS_SRV" || echo "$NS_CLI")" "nginx-$side-$ROUND" \
			nginx -e "$WORK/nginx-$side.err" -p "$WORK" -c "$WORK/nginx-$side.conf"
	done
}
# start_system SYSTEM: its relays (group relay-SYSTEM) and the targets
# (LOAD_NS HOST RELAY_GROUP TUN_GROUP TUN_IFS). Returns 1 (with a note) if it
# cannot run.
start_system() {
	local sys=$1 g=relay-$1
	LOAD_NS=$NS_OUT HOST=$PUB RELAY_GROUP=$g TUN_GROUP=wg TUN_IFS="$NS_SRV:$WG_S $NS_CLI:$WG_C"
	group_new "$g"
	case $sys in
	ceiling)
		LOAD_NS=$NS_SRV HOST=$TUN_C RELAY_GROUP=
		return 0
		;;
	socat) start_socat "$g" ;;
	nginx) start_nginx "$g" ;;
	# The request/response clients are flows from one source address.
	wgrp) start_wgrp $((CLIENTS + 1000)) 127.0.0.1:$RR_PORT-$RR_PORT/udp 127.0.0.1:$TP_PORT-$TP_PORT/udp || return 1 ;;
	esac
	if ! wait_for 10 udp_listening "$NS_SRV" $RR_PORT || ! wait_for 10 udp_listening "$NS_SRV" $TP_PORT; then
		note "$sys (round $ROUND) skipped: relays did not start listening"
		tail -n 5 "$WORK/$sys"-*.err >&2 || true
		return 1
	fi
}
stop_system() {
	[ "$1" != wgrp ] || stop_wgrp "$1"
	stop_group "relay-$1"
}

# run_rr SYSTEM PREFIX [ARGS...]: request/response for TIME seconds (ARGS:
# more udp_load.py rr options): answers/s, p50 and p99 latency (ms),
# requests lost (%). Sets P99.
run_rr() {
	local sys=$1 k=$2 out answers lost
	P99=
	out=$(load "$TIME" rr --to "$HOST:$RR_PORT" --clients "$CLIENTS" --size 200 --time "$TIME" \
		--max $((CLIENTS * TIME * 100000)) "${@:3}")
	answers=$(field "$out" answers) lost=$(field "$out" lost)
	if [ -z "$answers" ] || [ "$answers" = 0 ]; then
		note "$sys: request/response ($k) failed: $out"
		return 0
	fi
	record "$sys" "${k}_rate" "$(field "$out" rate)"
	record "$sys" "${k}_p50" "$(field "$out" p50_ms)"
	P99=$(field "$out" p99_ms)
	record "$sys" "${k}_p99" "$P99"
	record "$sys" "${k}_lost" "$(awk -v a="$answers" -v l="$lost" 'BEGIN { print 100 * l / (a + l) }')"
	log "$sys: request/response ($k): $out"
}

# run_throughput SYSTEM: one flow of 1200-byte datagrams for TIME seconds to
# a fresh sink: Mbit/s delivered (received bytes over the sending time),
# datagrams lost (%), and the relays' and the tunnel's CPU per GB received.
run_throughput() {
	local sys=$1 sink name="sink-$1-$ROUND" out sent secs bytes got rc0 tc0 rc1 tc1 gb
	spawn svc "$NS_CLI" "$name" $PY "$LOAD" sink 0.0.0.0:$TP_PORT --deadline $((TIME + 15))
	sink=$SPAWNED
	if ! wait_for 5 udp_listening "$NS_CLI" $TP_PORT; then
		note "$sys: the sink did not start"
		stop "$sink"
		return 0
	fi
	rc0=$(cpu_of "$RELAY_GROUP") tc0=$(cpu_of "$TUN_GROUP")
	out=$(load "$TIME" send --to "$HOST:$TP_PORT" --size 1200 --time "$TIME" --rate "$RATE" \
		--max $((TIME * 2000000)))
	# The sink stops 1 s after the last datagram; the CPU counts until then.
	wait_for $((TIME + 20)) test -s "$WORK/$name.out" || true
	rc1=$(cpu_of "$RELAY_GROUP") tc1=$(cpu_of "$TUN_GROUP")
	stop "$sink"
	sent=$(field "$out" sent) secs=$(field "$out" seconds)
	got=$(field "$(cat "$WORK/$name.out")" received) bytes=$(field "$(cat "$WORK/$name.out")" bytes)
	if [ -z "$sent" ] || [ -z "$got" ]; then
		note "$sys: throughput run failed: $out $(cat "$WORK/$name.out")"
		return 0
	fi
	record "$sys" udp_mbps "$(awk -v b="$bytes" -v s="$secs" 'BEGIN { print b * 8 / s / 1e6 }')"
	record "$sys" udp_loss "$(awk -v n="$sent" -v g="$got" 'BEGIN { print 100 * (n - g) / n }')"
	log "$sys: throughput: sent $sent received $got in ${secs}s"
	[ "$bytes" -gt 0 ] || return 0
	gb=$(awk -v b="$bytes" 'BEGIN { print b / 1e9 }')
	per_gb() { awk -v x="$1" -v gb="$gb" 'BEGIN { print x / 1e6 / gb }'; }
	[ -z "$RELAY_GROUP" ] || record "$sys" cpu_relay "$(per_gb $((rc1 - rc0)))"
	record "$sys" cpu_total "$(per_gb $((rc1 - rc0 + tc1 - tc0)))"
	record "$sys" cpu_tun "$(per_gb $((tc1 - tc0)))"
}

run_system() {
	local sys=$1 p99
	log "round $ROUND: $sys"
	if ! start_system "$sys"; then
		stop_system "$sys"
		return 0
	fi
	if ! in_ns "$LOAD_NS" timeout -k 5 20 $PY "$LOAD" probe --to "$HOST:$RR_PORT" --time 10; then
		note "$sys (round $ROUND) skipped: the echo does not answer through the path"
		stop_system "$sys"
		return 0
	fi
	[ "$WARMUP" = 0 ] || load "$WARMUP" rr --to "$HOST:$RR_PORT" --clients "$CLIENTS" --time "$WARMUP" >/dev/null
	run_rr "$sys" rr
	if [ -n "$LOSS" ]; then
		# Head of line: the same paced load without and with loss. Paced,
		# so that requests lost (each stalls its client for 0.5 s) do not
		# lighten the load and with it the queueing in the other flows.
		run_rr "$sys" pace --interval "$INTERVAL"
		p99=$P99
		loss on || note "$sys (round $ROUND): could not induce the loss"
		run_rr "$sys" hol --interval "$INTERVAL"
		loss off
		if [ -n "$p99" ] && [ -n "$P99" ]; then
			record "$sys" hol_p99_ratio "$(awk -v a="$P99" -v b="$p99" 'BEGIN { if (b > 0) print a / b }')"
		fi
	fi
	run_throughput "$sys"
	stop_system "$sys"
}

# --- main ------------------------------------------------------------------
begin_run
setup_net
start_udp_service
setup_wg
wait_for 20 tunnel_ready || { echo "no UDP over the tunnel" >&2; exit 1; }
[ -z "$LOSS" ] || pick_loss
run_rounds
pace="at $RATE Mbit/s"
[ "$RATE" != 0 ] || pace="as fast as it can"
cat >"$OUT_DIR/meta.json" <<EOF
{"bench": "udp", "date": "$(date -u '+%Y-%m-%d %H:%M UTC')", "kernel": "$(uname -r)", "cores": $CORES,
 "rounds": $ROUNDS, "time_s": $TIME, "clients": $CLIENTS, "interval_ms": $INTERVAL, "rate_mbit": $RATE, "induced_loss": "${LOSS:-none}",
 "wgrp_workers": $WORKERS, "commit": "$(git -C "$BENCH_DIR" rev-parse --short HEAD 2>/dev/null || echo -)",
 "cpu_accounting": "${CG:+cgroup v2}${CG:-/proc}", "systems": "$SYSTEMS"}
EOF
finish_report "wg-rp UDP over the tunnel: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $CORES cores, $ROUNDS rounds;\
 ${TIME}s per run, $CLIENTS request/response flows of 200 B (paced: 1 per ${INTERVAL} ms each), throughput 1200 B $pace,\
 ${LOSS:+1 % loss each way ($LOSS) for the loss run, }rps/rpc --workers $WORKERS" udp
log finished
