#!/bin/bash
# Runs the whole test suite on a fresh Debian 12 machine: installs what it
# needs, then builds and tests three times: as released (gcc, -Werror; its
# tests also build the packages and run them under systemd in the test VM),
# with ASan+UBSan (clang), where the fuzzers also run for a bounded time,
# and with TSan (clang), which runs the tests labelled `threads` (the relays
# and the daemons end to end). The README's first command, scripts/demo.sh,
# runs too, on the release build.
# Build trees: build/, build-asan/ and build-tsan/ (kept, so reruns are
# incremental). The release tree is built first (if it fails, nothing more
# runs) and its tests start; beside them, in one background lane, the ASan
# tree is built and its tests run one at a time, then the TSan tree's (a
# tree that does not build runs no test). The exit status is 1 if anything
# failed. At the end: the time of each step and, from ctest's own timing,
# the slowest tests of each tree.
#
# usage: scripts/test.sh [CTEST_ARGS...]
#   CTEST_ARGS go to both ctest runs, e.g. -LE 'kernel|systemd' for all but
#   the VM tests.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
ctest_args=("$@")
# No timing of an earlier run in the summary of this one.
rm -f build/Testing/timing.xml build-asan/Testing/timing.xml build-tsan/Testing/timing.xml
failed=()
steps=()

# step NAME COMMAND...: runs COMMAND, timed; a failure is noted and
# returned, for the caller to decide whether the run can go on.
step() {
	local name=$1 t0=$SECONDS status=0
	shift
	"$@" || status=$?
	steps+=("$(printf '%6d s  %s' $((SECONDS - t0)) "$name")")
	[ $status -eq 0 ] || failed+=("$name")
	return $status
}

# tests TREE JOBS [CTEST_ARGS...]: its ctest run, with ctest's timing of
# each test kept in TREE/Testing/timing.xml (JUnit) for the summary.
# shellcheck disable=SC2317 # run through step
tests() {
	local tree=$1 n=$2
	shift 2
	ctest --test-dir "$tree" -j"$n" --output-on-failure \
		--output-junit "$PWD/$tree/Testing/timing.xml" "$@" "${ctest_args[@]}"
}

# asan_tests, tsan_tests: a sanitized tree's tests, their output into
# TREE/Testing/ctest.log. ASan's two at a time: most of its end-to-end tests
# spend their time waiting on timers (retries, idle and expiry timeouts), not
# on the CPU. In build-tsan only those labelled threads, one at a time; a
# report there ends the process (exit 66), a test failure.
# shellcheck disable=SC2317 # run through step
asan_tests() {
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		tests build-asan 2 >build-asan/Testing/ctest.log 2>&1
}
# shellcheck disable=SC2317 # run through step
tsan_tests() {
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		tests build-tsan 1 -L threads >build-tsan/Testing/ctest.log 2>&1
}

# build_asan, build_tsan: the sanitized trees. ASan's is also the build
# without libsystemd: its daemons must run the same, only silent towards
# systemd (the packaged build's notifications are tested in the VM).
# shellcheck disable=SC2317 # run through step
build_asan() {
	cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DWGRP_WERROR=ON -DWGRP_SANITIZE=ON \
		-DWGRP_FUZZ=ON -DWGRP_SYSTEMD=OFF && cmake --build build-asan -j"$jobs"
}
# shellcheck disable=SC2317 # run through step
build_tsan() {
	cmake -S . -B build-tsan -DCMAKE_C_COMPILER=clang -DWGRP_WERROR=ON -DWGRP_TSAN=ON \
		-DWGRP_SYSTEMD=OFF && cmake --build build-tsan -j"$jobs"
}

# sanitized_lane FILE: each sanitized tree built, then tested (a tree that
# does not build runs no test), as steps whose lines and failures go into
# FILE as shell code, for the main shell to read after.
sanitized_lane() {
	local out=$1
	steps=() failed=()
	! step "build: asan" build_asan || step "tests: build-asan" asan_tests || true
	! step "build: tsan" build_tsan || step "tests: build-tsan" tsan_tests || true
	{
		printf 'steps+=(%q)\n' "${steps[@]}"
		[ ${#failed[@]} -eq 0 ] || printf 'failed+=(%q)\n' "${failed[@]}"
	} >"$out"
}

# slowest TREE: the 10 slowest of TREE's tests, from ctest's timing; tests
# that did not pass say so.
slowest() {
	local xml=$1/Testing/timing.xml
	[ -f "$xml" ] || return 0
	echo "slowest tests in $1 (of $(grep -c $'^\t<testcase name="' "$xml"), ctest's times):"
	# One line per test: <testcase name="N" classname="N" time="T" status="S">
	awk -F'"' '/^\t<testcase name="/ {
		status = $8 == "run" ? "" : "  (" $8 ")"
		printf "%8.1f s  %s%s\n", $6, $2, status
	}' "$xml" | sort -rn | head -n 10
}

# finish: the times, then the verdict.
finish() {
	echo
	echo "==== test.sh: $((SECONDS - started)) s in all"
	printf '%s\n' "${steps[@]}"
	slowest build
	slowest build-asan
	slowest build-tsan
	if [ ${#failed[@]} -gt 0 ]; then
		printf 'FAILED: %s\n' "${failed[@]}"
		exit 1
	fi
	echo "all passed"
	exit 0
}

scripts/setup.sh

jobs=$(nproc)
step "build: release" eval 'cmake -S . -B build -DWGRP_WERROR=ON && cmake --build build -j"$jobs"' ||
	finish
# Its build finds build/ up to date; the rest is what a user sees first.
step "scripts/demo.sh" scripts/demo.sh || true

# The release tree's tests are the longest (its VM tests): they start at
# once, while the sanitized trees are built and tested beside them, one test
# at a time; their output follows the release tree's.
mkdir -p build/Testing build-asan/Testing build-tsan/Testing
lane=build/Testing/sanitized-lane.sh
rm -f "$lane" build-asan/Testing/ctest.log build-tsan/Testing/ctest.log
sanitized_lane "$lane" >build/Testing/sanitized-builds.log 2>&1 &
sanitized=$!
step "tests: build" tests build $((jobs + 1)) || true
# Not written if the lane was killed, which the wait's failure tells.
step "sanitized trees (this long after build's tests)" wait "$sanitized" || true
# shellcheck source=/dev/null # written by sanitized_lane
[ ! -f "$lane" ] || . "$lane"
cat build/Testing/sanitized-builds.log build-asan/Testing/ctest.log build-tsan/Testing/ctest.log 2>/dev/null
finish
