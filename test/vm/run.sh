#!/bin/bash
# run.sh — run one command inside a throw-away QEMU VM with Debian's stock
# kernel, for tests that need kernel features the host kernel lacks (here:
# the wireguard module).
#
# usage: run.sh [--systemd] [--timeout SECS] [--rw DIR]... [-e NAME=VALUE]... -- COMMAND [ARGS...]
#        run.sh --prepare          # only build the cache (kernel + initramfs)
#
# Inside the VM the host's / is visible at the same paths: the host's files
# over 9p (read-only) under a tmpfs overlay, so the VM may write anywhere and
# nothing it writes reaches the host, and it may have what the host lacks (a
# fresh machine has no /lib/modules at all). Fresh tmpfs on /tmp, /var/tmp,
# /run (/var/run -> /run) and /dev/shm, and fresh /proc, /sys, /dev. The
# VM's kernel finds its own module tree in /lib/modules. --rw DIR
# additionally shares a host directory writable at the same path (also one
# under /tmp, e.g. a test's mktemp -d). The command runs as root from the
# current directory (if the VM can see it), with a clean environment plus the
# -e variables; its stdout and stderr both arrive on this script's stdout.
#
# --systemd boots the host's systemd as PID 1 instead and runs the command as
# its service vm-run.service, once basic.target is reached (journald, dbus
# socket, tmpfiles, sysctl): the command may systemctl start/stop/kill
# units, systemd-run, journalctl (volatile journal) and dpkg -i, as on a
# real system. Only a minimal boot target runs: no udev, no gettys, none of
# the units the host has enabled (services, timers), no generators but
# sysv's (details in test/vm/init). The command's environment, cwd, output
# and exit status are as above. Boot takes longer: about 10-13 s to the
# command under TCG on an idle 2-CPU host, against 4-6 s (both 2-3 times
# that on a loaded one).
# Also slow: dpkg -i (10-20 s: it reads the host's whole package database),
# and what asks for many units' enablement state (about 0.4 s per unit the
# first time): systemctl list-unit-files, systemd-analyze blame (a minute
# or so).
#
# Exit status: the command's own status, or
#   124  the command started but ran past --timeout (the VM was killed)
#   125  infrastructure failure: cache build failed, or the VM did not reach
#        the command twice in a row (boot failure/timeout; one automatic
#        retry), or it died after starting without reporting a status
#        (kernel panic, qemu crash). The reason is printed on stderr.
#
# Environment:
#   VM_CACHE_DIR        cache of the kernel and initramfs (default: ./vm-cache; ctest
#                       passes one in the build tree)
#   VM_KERNEL_PKG       kernel package, e.g. linux-image-6.1.0-56-amd64
#                       (default: what linux-image-amd64 depends on, pinned at first build)
#   VM_PRELOAD_MODULES  modules to modprobe before the command (default: wireguard veth tun)
#   VM_MEM, VM_SMP      guest memory / CPUs (default: 1024M / 1: emulated CPUs
#                       spin on locks whose holder the host has descheduled, and
#                       the tests run VMs beside each other)
#   VM_BOOT_TIMEOUT     seconds allowed from qemu start to command start
#                       (default: 60; 120 with --systemd)
#   VM_VERBOSE=1        print timings and the guest's console log on stderr
#
# Networking: the VM has no network device at all (-nic none); anything the
# command does with the network stays inside the VM.

set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INIT_SRC=$SELF_DIR/init
CACHE=${VM_CACHE_DIR:-$PWD/vm-cache}
BUSYBOX=${VM_BUSYBOX:-/bin/busybox}
MEM=${VM_MEM:-1024M}
SMP=${VM_SMP:-1}
BOOT_TIMEOUT=${VM_BOOT_TIMEOUT:-}
PRELOAD=${VM_PRELOAD_MODULES-wireguard veth tun}
VERBOSE=${VM_VERBOSE:-0}
# Modules needed before the host root can be mounted (overlay only for the
# root of --systemd; test/vm/init loads it only then); everything else is
# loaded later from the full (9p-visible) module tree.
BOOT_MODULES="virtio_pci 9pnet_virtio 9p virtio_rng overlay"

die() { echo "vm-run: $*" >&2; exit 125; }
note() { if [[ $VERBOSE == 1 ]]; then echo "vm-run: $*" >&2; fi; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# Whole seconds since $1 (an EPOCHREALTIME value), without forking.
secs_since() { local n=${EPOCHREALTIME%.*}; echo $((n - ${1%.*})); }

usage() { sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 125; }

# ---------------------------------------------------------------- arguments
TIMEOUT=300
PREPARE_ONLY=0
MODE=plain
RW_DIRS=()
ENV_VARS=()
while (($#)); do
    case $1 in
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --timeout=*) TIMEOUT=${1#*=}; shift ;;
        --rw)
            d=$(realpath -e -- "${2:?}" 2>/dev/null) || d=
            [[ -n $d && -d $d ]] || die "--rw: no such directory: $2"
            # The list reaches test/vm/init as one space-separated shell word.
            [[ $d != *[[:space:]]* ]] || die "--rw: paths with whitespace are not supported: $d"
            # The VM mounts fresh ones over these, and a booting systemd
            # empties /tmp and /var/tmp: shared, the host's would be wiped.
            case $d in
                / | /tmp | /var/tmp | /run | /var/run | /dev | /dev/* | /proc | /proc/* | /sys | /sys/*)
                    die "--rw: $d cannot be shared (the VM has its own; share a directory below it)" ;;
            esac
            RW_DIRS+=("$d"); shift 2 ;;
        -e) [[ ${2:-} == [A-Za-z_]*=* ]] || die "-e wants NAME=VALUE"; ENV_VARS+=("$2"); shift 2 ;;
        --systemd) MODE=systemd; shift ;;
        --prepare) PREPARE_ONLY=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        *) usage ;;
    esac
done
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds"
if [[ -z $BOOT_TIMEOUT ]]; then
    # systemd boots slower, and much slower on a loaded machine.
    if [[ $MODE == systemd ]]; then BOOT_TIMEOUT=120; else BOOT_TIMEOUT=60; fi
fi
((PREPARE_ONLY || $#)) || usage

# ---------------------------------------------------------------- cache
# Resolve the kernel package once and pin it in the cache, so every run uses
# the same kernel even after the archive moves on to a newer ABI.
resolve_kpkg() {
    if [[ -n ${VM_KERNEL_PKG:-} ]]; then echo "$VM_KERNEL_PKG"; return; fi
    if [[ -f $CACHE/kernel-pkg ]]; then cat "$CACHE/kernel-pkg"; return; fi
    local p
    p=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
    if [[ -z $p ]]; then
        # Fresh machines may have no package lists yet.
        apt-get update -qq >&2 || true
        p=$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
    fi
    [[ -n $p ]] || die "cannot resolve linux-image-amd64's kernel package (set VM_KERNEL_PKG)"
    echo "$p"
}

# Download and unpack (never install) the kernel package, then generate
# modules.dep & co: the .deb does not ship them (its postinst runs depmod).
unpack_kernel() {
    local kpkg=$1 dst=$CACHE/$1 tmp
    [[ -f $dst/.complete ]] && return
    for t in apt-get dpkg-deb depmod; do command -v $t >/dev/null || die "missing tool: $t"; done
    echo "vm-run: downloading and unpacking $kpkg into $CACHE (once)" >&2
    tmp=$(mktemp -d "$CACHE/.unpack.XXXXXX")
    # apt downloads as its sandbox user _apt, which must be able to write here
    # (otherwise it falls back to root with a warning).
    chown _apt "$tmp" 2>/dev/null || true
    (cd "$tmp" && apt-get download -q "$kpkg" >&2) || { rm -rf "$tmp"; die "apt-get download $kpkg failed"; }
    dpkg-deb -x "$tmp"/*.deb "$tmp/root" || { rm -rf "$tmp"; die "dpkg-deb -x failed"; }
    local kver
    kver=$(basename "$tmp"/root/lib/modules/*)
    depmod -b "$tmp/root" "$kver" || { rm -rf "$tmp"; die "depmod failed"; }
    rm -rf "$dst"
    mv "$tmp/root" "$dst"
    rm -rf "$tmp"
    touch "$dst/.complete"
}

# Under TCG the bzImage's own xz decompressor takes ~3.5 s of every boot.
# Decompress once here: qemu boots the plain ELF vmlinux directly through its
# PVH entry point (needs CONFIG_PVH=y, as in Debian's kernels). Without it,
# or if extraction fails, run.sh keeps booting the bzImage, only slower.
extract_vmlinux() {
    local kroot=$1 kver=$2 magic dec off
    local z=$kroot/boot/vmlinuz-$kver out=$kroot/vmlinux
    touch "$kroot/vmlinux.tried"
    grep -qx 'CONFIG_PVH=y' "$kroot/boot/config-$kver" 2>/dev/null || return 0
    for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
        dec=${magic%%:*}
        for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$z" | cut -d: -f1); do
            # Trailing data after the stream makes the decompressor complain;
            # the ELF magic check below is what decides.
            tail -c +$((off + 1)) "$z" | $dec -dc >"$out.tmp" 2>/dev/null || true
            if [[ $(head -c 4 "$out.tmp" | od -An -c | tr -d ' ') == '177ELF' ]]; then
                mv "$out.tmp" "$out"
                return 0
            fi
        done
    done
    rm -f "$out.tmp"
    echo "vm-run: note: could not extract vmlinux; booting the bzImage (slower)" >&2
}

# The initramfs only needs busybox-static, the boot modules and test/vm/init. Its
# name carries a hash of its inputs (including this function's text), so
# editing test/vm/init or the build recipe rebuilds it.
build_initramfs() {
    local kroot=$1 kver=$2 out=$3 st m f
    ldd "$BUSYBOX" >/dev/null 2>&1 && die "$BUSYBOX is dynamically linked; install busybox-static"
    echo "vm-run: building initramfs $(basename "$out")" >&2
    st=$(mktemp -d)
    mkdir -p "$st"/{bin,dev,proc,sys,newroot,lib/modules}
    cp "$BUSYBOX" "$st/bin/busybox"
    for a in $("$BUSYBOX" --list); do
        [[ $a == busybox ]] || ln -s busybox "$st/bin/$a"
    done
    install -m 0755 "$INIT_SRC" "$st/init"
    # The kernel opens /dev/console before running /init; if it is missing,
    # init starts without stdin/out/err and its messages are lost.
    mknod -m 600 "$st/dev/console" c 5 1 2>/dev/null || true
    # modprobe --show-depends lists "insmod PATH" in load order (dependencies
    # first) and "builtin NAME" for what needs no loading.
    # shellcheck disable=SC2086 # a list of module names
    modprobe -d "$kroot" -S "$kver" --show-depends -a $BOOT_MODULES |
        awk '$1 == "insmod" && !seen[$2]++ { print $2 }' >"$st/order" ||
        { rm -rf "$st"; die "cannot resolve boot modules"; }
    : >"$st/modules.list"
    while read -r m; do
        f=$(basename "$m")
        # busybox insmod cannot read compressed modules (newer Debian kernels
        # ship .ko.xz/.ko.zst).
        case $m in
            *.xz) xz -dc "$m" >"$st/lib/modules/${f%.xz}"; f=${f%.xz} ;;
            *.zst) zstd -qdc "$m" >"$st/lib/modules/${f%.zst}"; f=${f%.zst} ;;
            *) cp "$m" "$st/lib/modules/$f" ;;
        esac
        echo "$f" >>"$st/modules.list"
    done <"$st/order"
    rm "$st/order"
    (cd "$st" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$out.tmp" ||
        { rm -rf "$st"; die "cpio failed"; }
    mv "$out.tmp" "$out"
    rm -rf "$st"
    # Drop initramfs images built from older inputs.
    find "$CACHE" -maxdepth 1 -name "initramfs-$kver-*.cpio.gz" ! -path "$out" -delete
}

# Sets KPKG KVER KROOT VMLINUZ (kernel to boot) INITRD. Cheap when all is
# cached; building runs under a lock so parallel test runs do not race.
prepare_cache() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock 9
    KPKG=$(resolve_kpkg)
    unpack_kernel "$KPKG"
    [[ -n ${VM_KERNEL_PKG:-} ]] || echo "$KPKG" >"$CACHE/kernel-pkg"
    KROOT=$CACHE/$KPKG
    KVER=$(basename "$KROOT"/lib/modules/*)
    VMLINUZ=$KROOT/boot/vmlinuz-$KVER
    [[ -f $VMLINUZ ]] || die "no $VMLINUZ"
    [[ -f $KROOT/vmlinux.tried ]] || extract_vmlinux "$KROOT" "$KVER"
    [[ -s $KROOT/vmlinux ]] && VMLINUZ=$KROOT/vmlinux
    local h
    h=$({ echo "$KPKG $BOOT_MODULES"; declare -f build_initramfs; cat "$INIT_SRC" "$BUSYBOX"; } |
        sha256sum | cut -c1-16)
    INITRD=$CACHE/initramfs-$KVER-$h.cpio.gz
    [[ -f $INITRD ]] || build_initramfs "$KROOT" "$KVER" "$INITRD"
    exec 9>&-
}

prepare_cache
if ((PREPARE_ONLY)); then
    echo "vm-run: cache ready: kernel $KVER, $INITRD" >&2
    exit 0
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"

# ---------------------------------------------------------------- one boot
WORK=$(mktemp -d /tmp/vm-run.XXXXXX)
QPID=
# shellcheck disable=SC2317 # reached through the trap
cleanup() {
    # Only the timeout(1) process we started; it passes the signal to qemu.
    [[ -n $QPID ]] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The guest mounts / over 9p, so /tmp and /run inside it are fresh tmpfs:
# a cwd there does not exist in the VM, unless it is inside a --rw dir.
RUN_CWD=$PWD
case $RUN_CWD/ in
    /tmp/*|/run/*|/var/tmp/*|/dev/*|/proc/*|/sys/*)
        visible=0
        for d in "${RW_DIRS[@]}"; do [[ $RUN_CWD/ == "$d"/* ]] && visible=1; done
        if ((!visible)); then
            echo "vm-run: warning: cwd $RUN_CWD is not visible in the VM; using /" >&2
            RUN_CWD=/
        fi ;;
esac

write_share() {
    local share=$1 i; shift
    mkdir -p "$share"
    {
        printf 'VM_MODE=%q\n' "$MODE"
        printf 'VM_KVER=%q\n' "$KVER"
        printf 'VM_RW=%q\n' "${RW_DIRS[*]:-}"
        printf 'VM_PRELOAD=%q\n' "$PRELOAD"
    } >"$share/config"
    {
        echo "cd -- $(printf '%q' "$RUN_CWD") || exit 125"
        for i in "${ENV_VARS[@]}"; do printf 'export %q\n' "$i"; done
        printf 'exec'; printf ' %q' "$@"; echo
    } >"$share/cmd"
}

# Runs qemu once. Sets RC (timeout(1)/qemu status), STARTED, BOOT_S.
boot_once() {
    local share=$WORK/share log=$WORK/console.log t0 i=0
    BOOT_S=
    rm -rf "$share" "$log"
    write_share "$share" "$@"
    local -a virtfs=(
        -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
        -virtfs "local,path=$share,mount_tag=vmrun,security_model=none,multidevs=remap"
        # The module tree gets its own share: the cache may live where the
        # guest cannot see it through hostroot (e.g. under /tmp).
        -virtfs "local,path=$KROOT/lib/modules/$KVER,mount_tag=modules,security_model=none,readonly=on"
    )
    for d in "${RW_DIRS[@]}"; do
        virtfs+=(-virtfs "local,path=$d,mount_tag=rw$i,security_model=none,multidevs=remap")
        i=$((i + 1))
    done
    t0=$(now)
    # ttyS0 = kernel console -> log file; ttyS1 = command output -> stdout.
    # stdin is /dev/null so qemu never puts a terminal into raw mode.
    timeout --kill-after=5 $((BOOT_TIMEOUT + TIMEOUT)) \
        qemu-system-x86_64 -accel tcg -cpu max -m "$MEM" -smp "$SMP" \
        -nodefaults -no-user-config -display none -vga none -monitor none \
        -nic none -no-reboot \
        -kernel "$VMLINUZ" -initrd "$INITRD" \
        -append "console=ttyS0 quiet loglevel=4 printk.time=1 panic=-1 mitigations=off" \
        "${virtfs[@]}" \
        -device virtio-rng-pci \
        -serial "file:$log" -serial stdio \
        </dev/null &
    QPID=$!
    STARTED=0 TIMED_OUT=0
    # Watch for the "started" marker: a VM that has not started the command
    # within BOOT_TIMEOUT is a boot failure (retried); once started, the
    # command gets TIMEOUT seconds. timeout(1) above is only the backstop.
    local ts=
    while kill -0 "$QPID" 2>/dev/null; do
        if [[ -z $ts && -f $share/started ]]; then
            ts=$(now); STARTED=1
            BOOT_S=$(elapsed "$t0" "$ts")
        fi
        if [[ -z $ts ]] && (($(secs_since "$t0") >= BOOT_TIMEOUT)); then
            echo "vm-run: command not started after ${BOOT_TIMEOUT}s; killing the VM" >&2
            kill "$QPID" 2>/dev/null || true
            break
        fi
        if [[ -n $ts ]] && (($(secs_since "$ts") >= TIMEOUT)); then
            TIMED_OUT=1
            kill "$QPID" 2>/dev/null || true
            break
        fi
        sleep 0.05
    done
    RC=0
    wait "$QPID" || RC=$?
    QPID=
    ((RC == 124 || RC == 137)) && [[ -n $ts ]] && TIMED_OUT=1
    if [[ -z $ts && -f $share/started ]]; then STARTED=1; BOOT_S=$(elapsed "$t0" "$(now)"); fi
    [[ -f $share/started ]] && STARTED=1
    note "qemu exit $RC; wall $(elapsed "$t0" "$(now)")s; command started after ${BOOT_S:--}s (guest uptime $(cat "$share/started" 2>/dev/null || echo -)s)"
    if [[ $VERBOSE == 1 ]]; then
        echo "----- guest console -----" >&2; cat "$log" >&2 2>/dev/null; echo "-------------------------" >&2
    fi
}

console_tail() {
    # Skip the register/stack-trace lines of a panic: the cause is above them.
    if [[ ! -s $WORK/console.log ]]; then
        echo "vm-run: guest console: (empty: the kernel never got to print; it boots with 'quiet')" >&2
        return
    fi
    echo "vm-run: guest console (last lines, traces elided):" >&2
    grep -avE '^\[ *[0-9.]+\] +( |RIP|RSP|RAX|RDX|RBP|R10|R13|Code:|Call Trace|</?TASK)' \
        "$WORK/console.log" 2>/dev/null | tail -n 25 | sed 's/^/  | /' >&2 || true
}

for attempt in 1 2; do
    boot_once "$@"
    if [[ -f $WORK/share/status ]]; then
        read -r status _ <"$WORK/share/status"
        exit "$status"
    fi
    if ((STARTED)); then
        if ((TIMED_OUT)); then
            echo "vm-run: command timed out after ${TIMEOUT}s (VM killed)" >&2
            exit 124
        fi
        echo "vm-run: VM died while the command was running (qemu exit $RC), no status" >&2
        console_tail
        exit 125
    fi
    echo "vm-run: BOOT FAILURE (attempt $attempt/2, qemu exit $RC): the command never started" >&2
    console_tail
done
echo "vm-run: giving up: VM failed to boot twice" >&2
exit 125
