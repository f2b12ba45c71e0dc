#!/bin/bash
# Runs the whole test suite on a fresh Debian 12 machine: installs what it
# needs, then builds and tests twice, once as released (gcc, -Werror; its
# tests also build the packages and run them under systemd in the test VM)
# and once with ASan+UBSan (clang), where the fuzzers also run for a bounded
# time.
# Build trees: build/ and build-asan/ (kept, so reruns are incremental).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
cmake -S . -B build -DWGRP_WERROR=ON
cmake --build build -j"$jobs"
ctest --test-dir build -j"$jobs" --output-on-failure

# One copy of the test VM's kernel serves both trees. This tree is also the
# build without libsystemd: its daemons must run the same, only silent
# towards systemd (the packaged build's notifications are tested in the VM).
cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DWGRP_WERROR=ON -DWGRP_SANITIZE=ON -DWGRP_FUZZ=ON \
	-DWGRP_SYSTEMD=OFF -DWGRP_VM_CACHE="$PWD/build/vm-cache"
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
ctest --test-dir build-asan -j"$jobs" --output-on-failure
