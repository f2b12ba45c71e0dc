#!/bin/bash
# The UDP relay engine under load, chained as rps -> rpc: relay A (the
# public listener) relays to relay B's listener, which takes datagrams only
# from A's address and relays to an echo service. The outside host, A and B
# are network namespaces of their own, joined by veth pairs, with no link to
# the root namespace.
#
#   udp_relay_test.sh RELAY_BIN [FLOWS COUNT]
#
# RELAY_BIN is wgrp-relay (test/relay_tool.c), run with -u and 2 workers. An
# echo client (test/udp_tool.py) sends 100,000 datagrams of 1..1400 bytes
# over 1,000 flows and checks every reply byte for byte: no loss is
# expected on veth; any is counted and printed, and the test fails only on
# corruption or more than 0.1 % lost. Then the flows expire (-T 3) and both
# relays' fd counts come back to their baseline. Needs root (skips, 77).
set -u

if [ $# -ne 1 ] && [ $# -ne 3 ]; then
	echo "usage: $0 RELAY_BIN [FLOWS COUNT]" >&2
	exit 2
fi
RELAY=$(realpath "$1")
TOOL=$(dirname "$(realpath "$0")")/udp_tool.py
FLOWS=${2:-1000} COUNT=${3:-100000}
# Longer than a flow waits for its next turn (1,000 flows, 128 datagrams
# in flight), so that no flow expires during the run.
TIMEOUT_S=3
MAX_DATAGRAM=1472 # veth's MTU 1500 less the IPv4 and UDP headers

. "$(dirname "$0")/lib.sh"
need_root "network namespaces"

tag=wu$$
O=$tag-o A=$tag-a B=$tag-b # the outside host, "rps", "rpc"
work=$(mktemp -d "/tmp/wgrp-udp-test.$$.XXXXXX")
pids=()

. "$(dirname "$0")/checks.sh"

trap 'end_run "$O" "$A" "$B"' EXIT
trap 'exit 1' INT TERM HUP

netns_new "$O" "$A" "$B" || die "cannot make the namespaces"
# Names of our own (15 characters at most), made inside the namespaces.
if ! { ip -n "$A" link add "${tag}a0" type veth peer name "${tag}o0" netns "$O" &&
	ip -n "$A" link add "${tag}a1" type veth peer name "${tag}b0" netns "$B" &&
	netns_addr "$O" "${tag}o0" 10.99.1.2/24 &&
	netns_addr "$A" "${tag}a0" 10.99.1.1/24 &&
	netns_addr "$A" "${tag}a1" 10.99.2.1/24 10.99.2.3/24 &&
	netns_addr "$B" "${tag}b0" 10.99.2.2/24; }; then
	die "cannot link the namespaces"
fi

# start NAME NETNS COMMAND...: sets $out to its first line (ready), in 10 s.
start() {
	local name=$1 ns=$2 i
	shift 2
	ip netns exec "$ns" "$@" >"$work/$name.out" 2>"$work/$name.log" &
	pids+=($!)
	pid=$!
	for ((i = 0; i < 100; i++)); do
		out=$(head -n 1 "$work/$name.out")
		[ -n "$out" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		nap 0.1
	done
	die "$name did not start: $(cat "$work/$name.log")"
}

# stats NAME PID: the stats line the relay prints on SIGUSR1, in $line
# (waiting up to 10 s: a sanitized relay under load is slow to answer).
stats() {
	local n i
	n=$(grep -c '^stats ' "$work/$1.out")
	kill -USR1 "$2"
	for ((i = 0; i < 200; i++)); do
		if [ "$(grep -c '^stats ' "$work/$1.out")" -gt "$n" ]; then
			line=$(grep '^stats ' "$work/$1.out" | tail -n 1)
			return 0
		fi
		nap 0.05
	done
	line=
	return 1
}
field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<" $1"; }
# stat_is NAME PID KEY VALUE: the relay's counter KEY is VALUE now.
stat_is() { stats "$1" "$2" && [ "$(field "$line" "$3")" = "$4" ]; }
fd_count() { find "/proc/$1/fd" -mindepth 1 2>/dev/null | wc -l; }

section "setup"
start echo "$B" /usr/bin/python3 "$TOOL" echo 127.0.0.1:0
echo_addr=${out#echo on }
start relay_b "$B" "$RELAY" -u -w 2 -T "$TIMEOUT_S" -M "$MAX_DATAGRAM" -f 10.99.2.1 \
	10.99.2.2:0 "$echo_addr"
b_pid=$pid b_addr=${out#listening on }
start relay_a "$A" "$RELAY" -u -w 2 -T "$TIMEOUT_S" -M "$MAX_DATAGRAM" 0.0.0.0:0 "$b_addr"
a_pid=$pid a_port=${out##*:}
a_base=$(fd_count "$a_pid") b_base=$(fd_count "$b_pid")
echo "relay A $a_pid on port $a_port ($a_base fds), relay B $b_pid on $b_addr ($b_base fds)"

section "$COUNT datagrams over $FLOWS flows, echoed through both relays"
if result=$(ip netns exec "$O" /usr/bin/python3 "$TOOL" client --relay "10.99.1.1:$a_port" \
	--flows "$FLOWS" --count "$COUNT" 2>"$work/client.log"); then
	pass "every reply byte for byte: $result"
else
	fail "echo client: $result $(head -c 2000 "$work/client.log")"
fi
lost=$(sed -n 's/.* lost \([0-9]*\) .*/\1/p' <<<"$result")
[ "${lost:-0}" -gt 0 ] && echo "note: $lost datagrams lost on veth (tolerated up to 0.1 %)"
for r in "relay_a $a_pid" "relay_b $b_pid"; do
	# shellcheck disable=SC2086 # name and pid
	stats $r || fail "${r% *}: no stats line"
	echo "${r% *}: $line"
	expect_eq "${r% *}: $FLOWS flows" "$FLOWS" "$(field "$line" flows_total)"
	expect_eq "${r% *}: nothing too big (up to 1400 bytes; -M $MAX_DATAGRAM)" 0 \
		"$(field "$line" too_big)"
done

section "a datagram over the maximum is dropped at relay A, not cut"
ip netns exec "$O" /usr/bin/python3 "$TOOL" send --to "10.99.1.1:$a_port" --bind 10.99.1.2 \
	--size $((MAX_DATAGRAM + 1))
wait_for 5 stat_is relay_a "$a_pid" too_big 1
expect_eq "relay A: one too big, counted" 1 "$(field "$line" too_big)"

section "only relay A's address opens flows at relay B"
ip netns exec "$A" /usr/bin/python3 "$TOOL" send --to "$b_addr" --bind 10.99.2.3
wait_for 5 stat_is relay_b "$b_pid" not_from_peer 1
expect_eq "relay B: a datagram from another address dropped and counted" 1 \
	"$(field "$line" not_from_peer)"

section "flows expire after ${TIMEOUT_S} s and the fds come back"
settled() {
	stat_is relay_a "$a_pid" flows_active 0 && stat_is relay_b "$b_pid" flows_active 0 &&
		[ "$(fd_count "$a_pid")" = "$a_base" ] && [ "$(fd_count "$b_pid")" = "$b_base" ]
}
if wait_for $((TIMEOUT_S * 5)) settled; then
	pass "no flow left and fds back to baseline ($a_base, $b_base)"
else
	fail "flows or fds left: A $(fd_count "$a_pid") fds (of $a_base), B $(fd_count "$b_pid") \
(of $b_base); B: $line"
fi
stats relay_a "$a_pid"
expect_eq "relay A: all $FLOWS flows expired" "$(field "$line" flows_total)" \
	"$(field "$line" flows_expired)"

section "the relays stop on SIGTERM"
for r in "relay_a $a_pid" "relay_b $b_pid"; do
	kill -TERM "${r#* }"
	if wait "${r#* }"; then
		pass "${r% *}: exit 0"
	else
		fail "${r% *}: exit status $?"
	fi
	grep -q -e Sanitizer -e 'runtime error' "$work/${r% *}.log" &&
		fail "${r% *}: a sanitizer's report in its log"
done
finish
