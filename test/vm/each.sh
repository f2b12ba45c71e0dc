#!/bin/bash
# each.sh — run several test commands one after the other, so that tests
# needing the VM share one boot (a boot under TCG costs 10-30 s).
#
# usage: each.sh COMMAND [ARGS...] [--next COMMAND [ARGS...]]...
#
# Every command runs, whatever the ones before returned; each gets a header
# and its exit status on the output. Exit status: 1 if any command failed
# (neither 0 nor 77), else 77 if any skipped (so the skip stays visible to
# ctest), else 0.
set -u
cmds=() n=0
run_one() {
	local rc t0=$SECONDS
	n=$((n + 1))
	echo "==== [$n] $*"
	"$@"
	rc=$?
	echo "==== [$n] exit status $rc after $((SECONDS - t0)) s: $*"
	case $rc in
		0) ;;
		77) skipped=1 ;;
		*) failed=1 ;;
	esac
}
failed=0 skipped=0
for a in "$@" --next; do
	if [ "$a" = --next ]; then
		[ ${#cmds[@]} -gt 0 ] && run_one "${cmds[@]}"
		cmds=()
	else
		cmds+=("$a")
	fi
done
[ $n -gt 0 ] || { echo "usage: each.sh COMMAND [ARGS...] [--next COMMAND [ARGS...]]..." >&2; exit 2; }
if [ $failed = 1 ]; then exit 1; fi
if [ $skipped = 1 ]; then exit 77; fi
exit 0
