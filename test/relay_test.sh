#!/bin/bash
# The relay tests: wgrp-relay instances on loopback, driven by relay-check
# (test/relay_check.c), which is both the client and the relay's backend.
#
#   relay_test.sh RELAY_BIN CHECK_BIN
#
# Checks every relay-check mode on 127.0.0.1 and those of one connection at a
# time also on [::1]; the relay's byte counts after the integrity runs; 5,000
# connections at once, holding no pipes while idle, after which the relay's
# fd count must come back to what it was; running out of fds (new connections
# refused, the others go on); and, as root, the connect timeout in a network
# namespace of our own. Prints one PASS, FAIL or
# SKIP line per check and "N passed, N failed, N skipped" last; exits 1 if
# any check failed, else 77 (skipped, for ctest) if a check could not run
# here (no ::1, no prlimit, not root, neither nft nor iptables), which under
# CI=true is a failure too.
#
# RELAY_BIN may be any program with wgrp-relay's contract ("listening on
# ADDR:PORT" on stdout, a "stats ..." line on SIGUSR1, exit 0 on SIGTERM),
# e.g. a wrapper around socat, to check the checks; then the stats checks
# fail, as socat has none.
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 RELAY_BIN CHECK_BIN" >&2
	exit 2
fi
RELAY=$(realpath "$1")
CHECK=$(realpath "$2")
# Integrity, each way, and backpressure: several times all the socket
# buffers and pipes on the way (about 10 MB), so that every buffer fills and
# drains over and over, and the backpressure check has them all full before
# the end; more bytes only repeat that.
BYTES=32M BYTES_N=$((32 << 20))
CONNS=5000                        # concurrent
FD_SETTLE=25                      # s: idle pooled pipes go within two 10 s trims

. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/wgrp-relay-test.XXXXXX)
netns=""
passed=0 failed=0 skipped=0 skip_reasons=()
relays=() # "NAME PID" of each relay started

# Kills what this script started, and only that: its background jobs (each
# a relay or relay-check itself, see exec_in_ns), not PIDs remembered from
# processes that may have ended and been reused since.
cleanup() {
	local jobs
	jobs=$(jobs -p)
	# shellcheck disable=SC2086 # one PID a word
	[ -n "$jobs" ] && kill $jobs 2>/dev/null
	wait
	# The namespace goes after its processes, whatever failed before.
	[ -n "$netns" ] && ip netns del "$netns"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

pass() { echo "PASS $1${2:+: $2}"; passed=$((passed + 1)); }
fail() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
skip() { echo "SKIP $1: $2"; skipped=$((skipped + 1)) skip_reasons+=("$1: $2"); }

# Becomes the command, in the test's namespace when NS is set (callers make
# it local). Only in a subshell: exec keeps $! the relay's own pid, which
# signals and /proc/PID/fd need (ip netns exec and prlimit exec too).
exec_in_ns() { if [ -n "${NS:-}" ]; then exec ip netns exec "$NS" "$@"; else exec "$@"; fi; }

# start_relay NAME RELAY_ARGS...: sets relay_pid and relay_addr (from the
# "listening on" line, as the listening port is the kernel's choice). With
# FDS set, the relay may have that many fds at most.
start_relay() {
	local name=$1 i
	shift
	exec_in_ns ${FDS:+prlimit --nofile=$FDS:$FDS} "$RELAY" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	relay_pid=$!
	relays+=("$name $relay_pid")
	for ((i = 0; i < 200; i++)); do
		relay_addr=$(sed -n 's/^listening on //p' "$tmp/$name.out")
		[ -n "$relay_addr" ] && return 0
		kill -0 "$relay_pid" 2>/dev/null || break
		sleep 0.05
	done
	fail "$name: start" "no 'listening on' line: $(cat "$tmp/$name.err")"
	return 1
}

# stats NAME PID: the line the relay prints on SIGUSR1, or nothing in 2 s.
stats() {
	local out=$tmp/$1.out n i
	n=$(grep -c '^stats ' "$out")
	kill -USR1 "$2" || return 1
	for ((i = 0; i < 40; i++)); do
		if [ "$(grep -c '^stats ' "$out")" -gt "$n" ]; then
			grep '^stats ' "$out" | tail -n 1
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# field LINE KEY: KEY's number in a stats line.
field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<" $1"; }

# A port below the ephemeral range that no socket uses, for a backend; one
# after the other, as the relay's target must be known before its backend
# (relay-check) starts.
next_port=$((20000 + $$ % 8000))
pick_port() {
	while [ -n "$(ss -Htan "sport = :$next_port" 2>/dev/null)" ]; do
		next_port=$((next_port + 1))
	done
	printf -v "$1" %s "$next_port"
	next_port=$((next_port + 1))
}

# check NAME RELAY-CHECK-ARGS...: one relay-check run; its last line says why.
check() {
	local name=$1 out
	shift
	if out=$(exec_in_ns "$CHECK" "$@" 2>&1); then
		pass "$name" "$(tail -n 1 <<<"$out")"
	else
		fail "$name" "$out"
	fi
}

# fd_count PID [TYPE]: its open fds (as ls /proc/PID/fd | wc -l), or those
# of a type: socket, pipe.
fd_count() { find "/proc/$1/fd" -mindepth 1 -lname "${2:-}*" 2>/dev/null | wc -l; }

# integrity_with_stats NAME PID RELAY BACKEND: what the relay counted must be
# exactly what went through it.
integrity_with_stats() {
	local name=$1 pid=$2 before after din dout
	before=$(stats "$name" "$pid")
	check "$name: integrity" integrity --bytes "$BYTES" --relay "$3" --backend "$4"
	after=$(stats "$name" "$pid")
	if [ -z "$before" ] || [ -z "$after" ]; then
		fail "$name: stats after integrity" "no stats line on SIGUSR1"
		return
	fi
	din=$(($(field "$after" bytes_in) - $(field "$before" bytes_in)))
	dout=$(($(field "$after" bytes_out) - $(field "$before" bytes_out)))
	if [ "$din" -eq "$BYTES_N" ] && [ "$dout" -eq "$BYTES_N" ]; then
		pass "$name: stats after integrity" "bytes_in and bytes_out grew by $BYTES_N"
	else
		fail "$name: stats after integrity" "bytes_in grew by $din, bytes_out by $dout, not $BYTES_N"
	fi
}

# expect_stat NAME PID KEY VALUE WHAT
expect_stat() {
	local line v
	line=$(stats "$1" "$2")
	v=$(field "$line" "$3")
	if [ "$v" = "$4" ]; then
		pass "$1: $5" "$3=$v"
	else
		fail "$1: $5" "expected $3=$4 in '${line:-no stats line}'"
	fi
}

# The pair modes, through one relay per address family.
pair_modes() {
	local name=$1 host=$2 port backend
	pick_port port
	backend=$host:$port
	start_relay "$name" "$host:0" "$backend" || return
	integrity_with_stats "$name" "$relay_pid" "$relay_addr" "$backend"
	check "$name: backpressure" backpressure --bytes "$BYTES" --relay "$relay_addr" --backend "$backend"
	check "$name: small-writes" small-writes --relay "$relay_addr" --backend "$backend"
	check "$name: half-close" half-close --relay "$relay_addr" --backend "$backend"
	check "$name: reset" reset --relay "$relay_addr" --backend "$backend"
	expect_stat "$name" "$relay_pid" active 0 "no connection left"
}

# A target where nothing listens: relay-check holds the port, bound but not
# listening, so connecting to it is refused.
refused() {
	local port
	pick_port port
	start_relay refused 127.0.0.1:0 "127.0.0.1:$port" || return
	check "refused" refused --relay "$relay_addr" --backend "127.0.0.1:$port"
	expect_stat refused "$relay_pid" connect_failures 1 "stats after refused"
}

# 5,000 connections at once on a fresh relay, whose fd count then must come
# back exactly (pipes it pools are closed by its periodic trim, hence the
# wait, which the checks after this one fill: see concurrent_settled). While
# relay-check holds them all open and idle, the relay must count them, and
# hold no pipe for them: a bounded few, kept for reuse, are fine.
concurrent() {
	local port backend cpid pipes
	pick_port port
	backend=127.0.0.1:$port
	start_relay conc 127.0.0.1:0 "$backend" || return
	conc_pid=$relay_pid
	conc_base=$(fd_count "$relay_pid")
	"$CHECK" concurrent --conns "$CONNS" --hold 2000 --relay "$relay_addr" --backend "$backend" \
		>"$tmp/conc-check.out" 2>&1 &
	cpid=$!
	while kill -0 "$cpid" 2>/dev/null && ! grep -q 'connections open' "$tmp/conc-check.out"; do
		sleep 0.1
	done
	if grep -q 'connections open' "$tmp/conc-check.out"; then
		expect_stat conc "$relay_pid" active "$CONNS" "all $CONNS active at once"
		pipes=$(fd_count "$relay_pid" pipe)
		if [ "$pipes" -lt $((CONNS / 10)) ]; then
			pass "conc: idle connections hold no pipes" "$pipes pipe fds for $CONNS connections"
		else
			fail "conc: idle connections hold no pipes" "$pipes pipe fds for $CONNS idle connections"
		fi
	fi
	if wait "$cpid"; then
		pass "concurrent" "$(tail -n 1 "$tmp/conc-check.out")"
	else
		fail "concurrent" "$(cat "$tmp/conc-check.out")"
	fi
	conc_end=$EPOCHSECONDS
}

# concurrent_settled: within FD_SETTLE s of the end of the 5,000, the
# relay's fd count is back where it started.
concurrent_settled() {
	local now waited
	[ -n "${conc_end:-}" ] || return
	while :; do
		now=$(fd_count "$conc_pid")
		waited=$((EPOCHSECONDS - conc_end))
		[ "$now" -eq "$conc_base" ] || [ "$waited" -ge "$FD_SETTLE" ] ||
			! kill -0 "$conc_pid" 2>/dev/null && break
		sleep 0.1
	done
	if [ "$now" -eq "$conc_base" ]; then
		pass "conc: fds back to baseline" "$conc_base fds, $waited s after"
	else
		fail "conc: fds back to baseline" "$now fds $waited s after, $conc_base before; now \
$(fd_count "$conc_pid" socket) sockets, $(fd_count "$conc_pid" pipe) pipes"
	fi
	expect_stat conc "$conc_pid" active 0 "no connection left"
}

# Out of fds: a relay allowed 64 fds holds a few dozen connections; the
# rest must be refused (closed at once), while those held work to the end,
# and once they are gone a new connection works again.
exhaustion() {
	local port backend line FDS=64
	if ! command -v prlimit >/dev/null; then
		skip "fd exhaustion" "no prlimit (util-linux)"
		return
	fi
	pick_port port
	backend=127.0.0.1:$port
	start_relay exh 127.0.0.1:0 "$backend" || return
	check "exh: 200 connections, 64 fds" concurrent --conns 200 --allow-refused \
		--relay "$relay_addr" --backend "$backend"
	check "exh: recovered" integrity --bytes 10M --relay "$relay_addr" --backend "$backend"
	line=$(stats exh "$relay_pid")
	if [ "$(field "$line" refused)" -gt 0 ] 2>/dev/null; then
		pass "exh: refusals counted" "refused=$(field "$line" refused)"
	else
		fail "exh: refusals counted" "expected refused>0 in '${line:-no stats line}'"
	fi
}

# The connect timeout needs a target that drops SYNs without an answer.
# Nothing on loopback does, so the relay and relay-check run in a network
# namespace of our own (only lo, up) where one nftables rule drops SYNs to
# port 9: the relay's connect then hangs until its -t 1000 timeout, and the
# client's connection must end after about a second, not at once and not
# never. (A blackhole route cannot do it: its connect fails at once with
# EINVAL or ENETUNREACH.) iptables, if that is what is there, does the same.
connect_timeout() {
	local NS stale
	if [ "$(id -u)" -ne 0 ]; then
		skip "connect timeout" "not root: needs a network namespace"
		return
	fi
	# A run killed outright (SIGKILL, as on a ctest timeout) cannot clean up:
	# its namespace is removed here once its script is gone.
	for stale in $(ip netns list | sed -n 's/^\(wgrp-rt-[0-9][0-9]*\)\( .*\)\?$/\1/p'); do
		kill -0 "${stale#wgrp-rt-}" 2>/dev/null || ip netns del "$stale"
	done
	netns=wgrp-rt-$$
	NS=$netns
	if ! netns_new "$netns"; then
		fail "connect timeout" "cannot set up namespace $netns"
		return
	fi
	if command -v nft >/dev/null; then
		(exec_in_ns nft -f -) <<-EOF
			table inet wgrp_rt {
				chain input {
					type filter hook input priority filter;
					tcp dport 9 tcp flags & (fin | syn | rst | ack) == syn drop
				}
			}
		EOF
	elif command -v iptables >/dev/null; then
		(exec_in_ns iptables -A INPUT -p tcp --dport 9 --syn -j DROP)
	else
		skip "connect timeout" "neither nft (nftables) nor iptables to drop SYNs with"
		return
	fi
	# shellcheck disable=SC2181 # the status of whichever rule was added
	if [ $? -ne 0 ]; then
		fail "connect timeout" "cannot add the SYN-dropping rule in $NS"
		return
	fi
	start_relay ns -t 1000 127.0.0.1:0 127.0.0.1:9 || return
	check "connect timeout" refused --after 800 --within 3000 --relay "$relay_addr" \
		--backend 127.0.0.1:9
	expect_stat ns "$relay_pid" connect_failures 1 "stats after connect timeout"
}

# The 5,000 first: their relay's pipes go on its timer while the rest runs.
concurrent
pair_modes v4 127.0.0.1
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then
	pair_modes v6 '[::1]'
else
	skip v6 "no ::1 on lo"
fi
refused
exhaustion
connect_timeout
concurrent_settled

# Every relay stops cleanly on SIGTERM, its workers joined, and none of them
# logged a sanitizer's report (a race or leak at any point, or at the end).
stopped_cleanly() {
	local name=${1% *} pid=${1#* } status=0
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" || status=$?
	if [ "$status" -ne 0 ]; then
		fail "$name: stop" "exit status $status after SIGTERM"
	elif grep -q -e 'Sanitizer' -e 'runtime error' "$tmp/$name.err"; then
		fail "$name: stop" "a sanitizer's report in its log"
	else
		return 0
	fi
	return 1
}
all_ok=1
for r in "${relays[@]}"; do stopped_cleanly "$r" || all_ok=0; done
[ "$all_ok" = 1 ] && pass "every relay (${#relays[@]}) exits 0 on SIGTERM, with no sanitizer report"

if [ "$failed" -gt 0 ]; then
	for log in "$tmp"/*.err; do
		echo "--- relay log $(basename "$log" .err) (last 20 lines)"
		tail -n 20 "$log"
	done
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
if [ "$skipped" -gt 0 ]; then
	printf -v reasons '%s; ' "${skip_reasons[@]}"
	skip_test "$skipped checks could not run here: ${reasons%; }"
fi
