#!/bin/bash
# The packages: builds the .deb and the .rpm from the build tree (cpack),
# checks their metadata and contents and renders the manuals. Nothing here
# looks at or changes what the host has installed: the .deb is left in the
# build tree, and the systemd test installs, upgrades and purges it in the
# test VM, on a root of its own.
#
# usage: package_test.sh BUILD_DIR
set -u
build=$(realpath "$1")
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/checks.sh"
trap 'rm -rf "$work"' EXIT
finish() { summary; }

version=$(sed -n 's/^#define WGRP_VERSION "\(.*\)"$/\1/p' "$build/include/wgrp/version.h")
[ -n "$version" ] || die "no WGRP_VERSION in $build/include/wgrp/version.h"
deb=$build/wg-rp_${version}_amd64.deb
rpm=$build/wg-rp-${version}-1.x86_64.rpm

section build
rm -f "$deb" "$rpm"
(cd "$build" && cpack -G "DEB;RPM") >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; die "cpack failed"; }
check "built $(basename "$deb")" test -f "$deb"
check "built $(basename "$rpm")" test -f "$rpm"

section "deb metadata"
field() { dpkg-deb -f "$deb" "$1"; }
expect_eq "Package" wg-rp "$(field Package)"
expect_eq "Version (the one -V prints)" "$version" "$(field Version)"
depends=$(field Depends)
for lib in libc6 libcurl4 libjansson4 libssl3 libmicrohttpd12 libmnl0 libnl-3-200 libnl-route-3-200 libsystemd0; do
	check "Depends on $lib" grep -q "\b$lib\b" <<<"$depends"
done
check "no -dev package in Depends ($depends)" bash -c "! grep -q -- '-dev\b' <<<'$depends'"
expect_eq "Recommends" wireguard-tools "$(field Recommends)"
check "has a Description" test -n "$(field Description)"

section "deb contents"
dpkg-deb -c "$deb" | awk '{ print $1, $2, $NF }' | sed 's| \./| /|' >"$work/deb.list"
want=(
	"-rwxr-xr-x root/root /usr/sbin/rps"
	"-rwxr-xr-x root/root /usr/sbin/rpc"
	"-rw-r--r-- root/root /usr/share/man/man8/rps.8.gz"
	"-rw-r--r-- root/root /usr/share/man/man8/rpc.8.gz"
	"-rw-r--r-- root/root /usr/lib/systemd/system/rps.service"
	"-rw-r--r-- root/root /usr/lib/systemd/system/rpc@.service"
	"-rw-r--r-- root/root /usr/share/doc/wg-rp/examples/wg-server.conf"
	"-rw-r--r-- root/root /usr/share/doc/wg-rp/examples/wg-client.conf"
	"-rw-r--r-- root/root /usr/share/doc/wg-rp/examples/rps.args"
	"-rw-r--r-- root/root /usr/share/doc/wg-rp/examples/wg-client.args"
	"-rw-r--r-- root/root /usr/share/doc/wg-rp/copyright"
	"drwx------ root/root /etc/wg-rp/"
)
for w in "${want[@]}"; do
	check "deb has $w" grep -qxF -- "$w" "$work/deb.list"
done
check "nothing in /etc but the empty /etc/wg-rp" bash -c \
	"! grep ' /etc/' '$work/deb.list' | grep -v ' /etc/\$' | grep -qv ' /etc/wg-rp/\$'"
for s in postinst prerm postrm; do
	dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - "./$s" >"$work/$s" 2>/dev/null
	check "$s restarts/stops through the systemd helpers" grep -q 'deb-systemd-' "$work/$s"
done

section "rpm"
q() { rpm -qp --qf "$1" "$rpm" 2>/dev/null; }
expect_eq "rpm name-version" "wg-rp-$version" "$(q '%{NAME}-%{VERSION}')"
expect_eq "rpm license" MIT "$(q '%{LICENSE}')"
rpm -qp --requires "$rpm" 2>/dev/null >"$work/rpm.requires"
for lib in libcrypto.so.3 libcurl.so.4 libjansson.so.4 libmicrohttpd.so.12 libmnl.so.0 libnl-3.so.200 libnl-route-3.so.200 libsystemd.so.0; do
	check "rpm requires $lib" grep -q "^$lib()" "$work/rpm.requires"
done
expect_eq "rpm recommends" wireguard-tools "$(rpm -qp --recommends "$rpm" 2>/dev/null)"
rpm -qlvp "$rpm" 2>/dev/null | awk '{ print $1, $NF }' >"$work/rpm.list"
for w in "-rwxr-xr-x /usr/sbin/rps" "-rwxr-xr-x /usr/sbin/rpc" "-rw-r--r-- /usr/share/man/man8/rps.8.gz" \
	"-rw-r--r-- /usr/lib/systemd/system/rpc@.service" "-rw-r--r-- /usr/lib/systemd/system/rps.service" \
	"-rw-r--r-- /usr/share/doc/wg-rp/examples/wg-client.args" "drwx------ /etc/wg-rp"; do
	check "rpm has $w" grep -qxF -- "$w" "$work/rpm.list"
done
check "rpm owns no system directory" bash -c \
	"! grep -qE ' /(usr|usr/sbin|usr/lib|usr/lib/systemd(/system)?|usr/share(/man(/man8)?|/doc)?|etc)\$' '$work/rpm.list'"
rpm -qp --scripts "$rpm" 2>/dev/null >"$work/rpm.scripts"
check "rpm scriptlets use systemd-update-helper" grep -q systemd-update-helper "$work/rpm.scripts"

section manuals
for page in rps rpc; do
	err=$(MANWIDTH=80 man --warnings -l "$build/man/$page.8" 2>&1 >"$work/$page.txt")
	expect_eq "man -l $page.8 renders without warnings" "" "$err"
	check "$page.8 has its options" grep -q -- '--config' "$work/$page.txt"
done

finish
