#!/bin/sh
# Runs one libFuzzer target for a bounded time from its kept inputs.
# usage: run_fuzzer.sh FUZZER SECONDS KEPT_DIR WORK_DIR
# New inputs go to WORK_DIR (in the build tree), never into the source tree.
# A crash leaves WORK_DIR/crash-*; once fixed, add it to KEPT_DIR so every
# build replays it.
set -eu
fuzzer=$1 seconds=$2 kept=$3 work=$4
mkdir -p "$work/corpus"
# -timeout: one input taking this long is a hang, reported as a failure.
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-max_len=65536 -print_final_stats=1 -artifact_prefix="$work/" \
	"$work/corpus" "$kept"
