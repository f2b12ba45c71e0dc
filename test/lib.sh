# Helpers shared by the shell tests and the benchmark: source this file.

# nap SECONDS: sleeps without starting a process (process starts are slow in
# the test VM), by waiting to read from a FIFO nobody writes to.
nap() {
	if [ -z "${_nap_fd:-}" ]; then
		local d
		d=$(mktemp -d)
		mkfifo "$d/fifo"
		exec {_nap_fd}<>"$d/fifo"
		rm -rf "$d"
	fi
	read -r -t "$1" -u "$_nap_fd" || true
}

# wait_for SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds;
# returns 1 if it has not within SECONDS.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		nap 0.1
	done
}

# running PID: the process exists and is not a zombie waiting to be reaped.
running() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	read -r _ _ state _ <"/proc/$1/stat" 2>/dev/null || return 1
	[ "$state" != Z ]
}

# skip_test REASON: the test cannot run here. It exits 77, which ctest shows
# as skipped; under CI=true, where every test must run, it fails instead.
skip_test() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: cannot run: $1 (CI=true: nothing may skip)"
		exit 1
	fi
	echo "skipped: $1"
	exit 77
}
# need_root WHAT: skips unless root (WHAT says what needs it).
need_root() {
	[ "$(id -u)" -eq 0 ] || skip_test "needs root for $1"
}

# netns_new NAME...: new network namespaces with lo up. One of that name
# left by an earlier run that died before its cleanup is deleted first; one
# in which processes still run belongs to a run that is alive: fail.
netns_new() {
	local ns
	for ns; do
		if [ -e "/run/netns/$ns" ]; then
			if [ -n "$(ip netns pids "$ns" 2>/dev/null)" ]; then
				echo "network namespace $ns is in use: is another run going on?" >&2
				return 1
			fi
			ip netns del "$ns" || return 1
		fi
		ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
	done
}

# netns_addr NETNS DEV ADDRESS...: the addresses on DEV (IPv6 ones without
# duplicate address detection: no waiting), and the link up.
netns_addr() {
	local ns=$1 dev=$2 a
	shift 2
	for a; do
		if [[ $a == *:* ]]; then ip -n "$ns" addr add "$a" dev "$dev" nodad || return 1; else
			ip -n "$ns" addr add "$a" dev "$dev" || return 1
		fi
	done
	ip -n "$ns" link set "$dev" up
}
# netns_veth NETNS1 DEV1 ADDRESS1 NETNS2 DEV2 ADDRESS2: a veth pair between
# two namespaces, each end with its address and up.
netns_veth() {
	ip link add "$2" netns "$1" type veth peer name "$5" netns "$4" &&
		netns_addr "$1" "$2" "$3" && netns_addr "$4" "$5" "$6"
}
# netns_names TAG: names of this run's own (TAG and the PID) for the usual
# three hosts: namespaces $O (outside), $S (server), $C (client); veth ends
# $VO-$VSO (outside-server) and $VSC-$VC (server-client); WireGuard
# interfaces $WS and $WC (at most 15 characters: TAG of 2 or 3).
netns_names() {
	O=wgrp-$1-o-$$ S=wgrp-$1-s-$$ C=wgrp-$1-c-$$
	VO=$1o$$ VSO=$1so$$ VSC=$1sc$$ VC=$1c$$
	WS=$1ws$$ WC=$1wc$$
}
# netns_three_hosts: the namespaces of netns_names, linked as most tests
# draw them: $O's $VO 198.51.100.2/24 to $S's $VSO 198.51.100.1/24, $S's $VSC
# 192.0.2.1/24 to $C's $VC 192.0.2.2/24.
netns_three_hosts() {
	netns_new "$O" "$S" "$C" &&
		netns_veth "$O" "$VO" 198.51.100.2/24 "$S" "$VSO" 198.51.100.1/24 &&
		netns_veth "$S" "$VSC" 192.0.2.1/24 "$C" "$VC" 192.0.2.2/24
}
# daemon_args "$@": a test's arguments RPS RPC kernel|userspace, into $rps
# and $rpc (full paths) and $expect; else the usage, and exit 2.
daemon_args() {
	if [ $# -ne 3 ] || { [ "$3" != kernel ] && [ "$3" != userspace ]; }; then
		echo "usage: $0 RPS RPC kernel|userspace" >&2
		exit 2
	fi
	rps=$(realpath "$1") rpc=$(realpath "$2") expect=$3
}
