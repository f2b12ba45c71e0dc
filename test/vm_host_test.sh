#!/bin/bash
# The test VM boots whatever the host lacks or has. test/vm/run.sh shares
# the host's / into the VM, so the VM once failed on a fresh Debian machine,
# which has no /lib/modules at all, and passed on machines that had one.
# Each run here starts run.sh in a mount namespace of its own whose view of
# the host is changed by an overlay on /lib (nothing changes for the rest of
# the machine):
#
#   view      /lib/modules as run.sh and the VM see it     VM mode
#   none      absent (a fresh machine)                     plain
#   other     another kernel's tree too (0.0.0-other)      --systemd
#
# Both modes build their root the same way; the systemd test boots one on
# the host's own view (on a fresh machine, none).
#
# In each, the VM must start the command, and the command must find the
# VM's own kernel's modules: with no module preloaded, creating a WireGuard
# interface makes the kernel load the module by itself (request_module ->
# modprobe -> /lib/modules/$(uname -r)), as on a fresh server.
#
# usage: vm_host_test.sh RUN_SH (VM_CACHE_DIR as for run.sh)
set -u
. "$(dirname "$0")/lib.sh"
need_root "mount namespaces"
run_sh=$(realpath "$1")
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"
trap 'rm -rf "$work"' EXIT
finish() { summary; }

# What the VM checks, from a file: the command line stays short.
cat >"$work/probe.sh" <<'EOF'
kver=$(uname -r)
echo "kernel $kver; /lib/modules: $(ls /lib/modules | tr '\n' ' ')"
test -f "/lib/modules/$kver/modules.dep" || { echo "no modules.dep for $kver"; exit 3; }
lsmod | grep -qw '^wireguard' && { echo "wireguard was preloaded"; exit 4; }
ip link add wgvmprobe type wireguard || { echo "no WireGuard interface"; exit 5; }
lsmod | grep -qw '^wireguard' || { echo "wireguard not loaded"; exit 6; }
ip -d link show wgvmprobe | grep -qw wireguard || exit 7
echo "autoloaded wireguard"
EOF

libdir=$(realpath /lib) # /usr/lib on a merged-/usr system
# One overlay layer per view, laid over the host's /lib.
mkdir -p "$work/none" "$work/other/modules/0.0.0-other/kernel"
# An overlayfs whiteout: a 0/0 character device hides the lower entry.
mknod "$work/none/modules" c 0 0
: >"$work/other/modules/0.0.0-other/modules.dep"

# in_view VIEW COMMAND...: runs COMMAND in a mount namespace whose /lib
# shows /lib/modules as VIEW says.
in_view() {
	unshare -m --propagation private -- bash -c '
		mount -t overlay -o "lowerdir=$1:$2" "wgrp-vm-view-$0" "$2" || exit 126
		shift 2
		exec "$@"' "$1" "$work/$1" "$libdir" "${@:2}"
}

section "host views"
check "view none: /lib/modules is absent" in_view none test ! -e /lib/modules
check "view other: /lib/modules holds another kernel's tree" in_view other test -f /lib/modules/0.0.0-other/modules.dep
check "the root namespace still sees its own /lib" bash -c "! grep -q wgrp-vm-view /proc/self/mountinfo"

for run in "none plain" "other systemd"; do
	read -r view mode <<<"$run"
	section "view $view, $mode VM"
	opts=(--timeout 120 --rw "$work")
	[ "$mode" = systemd ] && opts+=(--systemd)
	VM_PRELOAD_MODULES='' in_view "$view" "$run_sh" "${opts[@]}" -- bash "$work/probe.sh" \
		>"$work/out" 2>&1
	status=$?
	sed 's/^/  | /' "$work/out"
	expect_eq "the VM ran the probe and it passed (view $view, $mode)" 0 "$status"
	check "the kernel loaded wireguard by itself (view $view, $mode)" grep -q '^autoloaded wireguard' "$work/out"
done
finish
