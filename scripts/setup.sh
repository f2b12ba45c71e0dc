#!/bin/bash
# Installs every Debian package that building wg-rp, its demo and its tests
# need. Idempotent: when all are present it changes nothing and needs no
# network. Run as root on Debian 12.
set -euo pipefail

packages=(
	# build
	build-essential cmake pkg-config
	libmnl-dev libnl-3-dev libnl-route-3-dev libmicrohttpd-dev libcurl4-openssl-dev
	libjansson-dev libssl-dev libsystemd-dev
	# manuals and packages (dpkg-shlibdeps is in dpkg-dev, rpmbuild in rpm)
	scdoc man-db dpkg-dev rpm
	# tests: unit tests, sanitizers and libFuzzer (clang's runtime), key generation
	libcmocka-dev clang libclang-rt-14-dev wireguard-tools util-linux
	# namespace tests: tunnels (userspace fallback), traffic, a fake API (python3),
	# sysctl (procps), a service that speaks the PROXY protocol (nginx), a DNS
	# server and client for the UDP tests (dnsmasq-base, bind9-dnsutils), a
	# Prometheus text parser for the metrics test (python3-prometheus-client)
	iproute2 wireguard-go socat nftables curl python3 procps nginx-light dnsmasq-base
	bind9-dnsutils python3-prometheus-client
	# kernel tests: Debian's kernel under qemu (TCG) with a busybox initramfs
	qemu-system-x86 busybox-static kmod cpio xz-utils
	# systemd tests in that VM: the units under a real systemd
	systemd
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: these packages are missing and only root can install them: ${missing[*]}" >&2
	exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian starts an installed daemon at once (nginx, on port 80): not here,
# where only the tests and the bench run it, in namespaces of their own.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
# No recommends: wireguard-tools would pull in a kernel image.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
