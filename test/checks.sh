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
