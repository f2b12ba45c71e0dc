# Checks and reports for the end-to-end shell tests: source this file after
# setting $work (a scratch directory) and pids=() (processes to clean up).
# Each check prints "ok - NAME" or "FAIL: NAME" with what differed.

checks=0 failures=0 started=$SECONDS
checks_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

pass() {
	checks=$((checks + 1))
	echo "ok - $1"
}
fail() {
	checks=$((checks + 1)) failures=$((failures + 1))
	echo "FAIL: $*"
}
# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}
# expect_eq NAME WANT GOT
expect_eq() {
	if [ "$2" == "$3" ]; then pass "$1"; else fail "$1"$'\n'"  want: $2"$'\n'"  got:  $3"; fi
}
section() { echo "== $* (at $((SECONDS - started)) s)"; }

# text_of FILE: the file's text in $text, without forking.
text_of() {
	text=
	[ -f "$1" ] && IFS= read -r -d '' text <"$1"
	true
}
# contains FILE STRING
contains() {
	text_of "$1"
	[[ $text == *"$2"* ]]
}

# summary: the counts; exits 0 only if nothing failed.
summary() {
	echo "run time $((SECONDS - started)) s"
	echo "$((checks - failures)) passed, $failures failed"
	[ "$failures" -eq 0 ] && exit 0
	exit 1
}
# die MESSAGE: a failed setup leaves nothing to test; ends with the test's finish.
die() {
	fail "$*"
	finish
}

# fetch NETNS URL: the body of an HTTP GET in $got, curl's status in $fetch_status.
fetch() {
	got=$(ip netns exec "$1" curl -sS -g --max-time 15 "$2" 2>&1)
	fetch_status=$?
}
# expect_page NAME NETNS URL WANT
expect_page() {
	fetch "$2" "$3"
	if [ $fetch_status -eq 0 ] && [ "$got" == "$4" ]; then
		pass "$1"
	else
		fail "$1: curl $3: status $fetch_status"$'\n'"  want: $4"$'\n'"  got:  $got"
	fi
}
# refuses NETNS HOST PORT: a TCP connection is refused (curl's status 7).
refuses() {
	ip netns exec "$1" curl -s -g --max-time 5 -o /dev/null "http://$2:$3/"
	[ $? -eq 7 ]
}

# serve NETNS ADDRESS PORT FILE: an HTTP server of FILE in the background.
serve() {
	local size
	size=$(stat -c %s "$4")
	ip netns exec "$1" socat "TCP-LISTEN:$3,bind=$2,reuseaddr,fork" \
		EXEC:"$checks_dir/respond.sh $4 $size" 2>>"$work/socat.log" &
	pids+=("$!")
}

# in_ns NETNS CMD...: CMD in the network namespace NETNS.
in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}
dead() { ! running "$1"; }
# stop NAME PID: SIGTERM, bounded wait; exit status in $stop_status.
stop() {
	kill -TERM "$2"
	wait_for 15 dead "$2" || { fail "$1 did not exit within 15 s of SIGTERM"; kill -KILL "$2"; }
	wait "$2"
	stop_status=$?
}
# stop_cleanly NAME PID: stop, and a check that it exits 0.
stop_cleanly() {
	stop "$1" "$2"
	expect_eq "$1 exits 0" 0 "$stop_status"
}
# no_sanitizer_report: checks that no log in $work holds an ASan or UBSan
# report (a sanitized daemon reports into its log, and UBSan goes on after).
no_sanitizer_report() {
	local f reports=
	for f in "$work"/*.log; do
		if contains "$f" "runtime error:" || contains "$f" "Sanitizer"; then reports+=" ${f##*/}"; fi
	done
	expect_eq "no sanitizer report in any log" "" "$reports"
}

# pair_configs: $work/server.conf and $work/client.conf for one server
# (10.99.0.1/24, fd00:99::1/64, UDP 51820) and one client (10.99.0.2,
# fd00:99::2) whose endpoint is 192.0.2.1, with fresh keys.
pair_configs() {
	local key_s key_c pub_s pub_c
	key_s=$(wg genkey) key_c=$(wg genkey)
	pub_s=$(wg pubkey <<<"$key_s") pub_c=$(wg pubkey <<<"$key_c")
	printf '[Interface]\nPrivateKey = %s\nAddress = 10.99.0.1/24, fd00:99::1/64\nListenPort = 51820\n' \
		"$key_s" >"$work/server.conf"
	printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.99.0.2/32, fd00:99::2/128\n' "$pub_c" >>"$work/server.conf"
	printf '[Interface]\nPrivateKey = %s\nAddress = 10.99.0.2/32, fd00:99::2/128\n\n[Peer]\nPublicKey = %s\n' \
		"$key_c" "$pub_s" >"$work/client.conf"
	printf 'Endpoint = 192.0.2.1:51820\nAllowedIPs = 10.99.0.0/16, fd00:99::/64\nPersistentKeepalive = 25\n' \
		>>"$work/client.conf"
	chmod 600 "$work/server.conf" "$work/client.conf"
}

# count_of FILE STRING: how many times STRING is in FILE, in $count.
count_of() {
	local rest
	text_of "$1"
	rest=${text//"$2"/}
	count=$(((${#text} - ${#rest}) / ${#2}))
}

# end_run NETNS...: what a test's EXIT trap does. Stops $pids with SIGTERM, so
# that the daemons remove their interfaces (SIGKILL after 6 s), kills what is
# left in the namespaces (forked children are ours too), deletes them and $work.
end_run() {
	local pid ns left
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for _ in $(seq 60); do
		left=0
		for pid in "${pids[@]}"; do running "$pid" && left=1; done
		[ "$left" = 0 ] && break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	for ns; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
	done
	wait 2>/dev/null
	for ns; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$work"
}

# dump_logs: the end of every log in $work; finish: the logs if anything
# failed, then the summary (a test may define its own finish).
dump_logs() {
	local f
	for f in "$work"/*.log; do
		echo "---- ${f##*/} (last 40 lines)"
		tail -n 40 "$f"
	done
}
finish() {
	[ "$failures" -gt 0 ] && dump_logs
	summary
}
