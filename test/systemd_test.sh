#!/bin/bash
# The package and its units under a real systemd: run by test/vm/run.sh
# --systemd, as a service in the test VM (systemd as PID 1, a writable
# overlay root that vanishes with the VM). With the .deb, the daemons run
# first on the kernel's WireGuard, then with the module blocked, so that they
# fall back to wireguard-go, which then runs under the same hardening. The
# .rpm runs in a boot of its own, beside the .deb's.
#
#   netns $O (outside host)      netns $S (server)                  netns $C (client)
#   veth 198.51.100.2/24  <-veth-> 198.51.100.1/24
#                                 192.0.2.1/24          <-veth->  192.0.2.2/24
#                                 wg0 10.98.0.1/24   <== wg ==>   $INST 10.98.0.2/32
#                                 rps.service                     rpc@$INST.service
#                                                                 web page on 127.0.0.1:8080
#
# The units run in the namespaces through drop-ins (NetworkNamespacePath=,
# and WatchdogSec=4s, RestartSec=1s so that the watchdog and restarts act
# within seconds), otherwise exactly as packaged; the test configs heartbeat
# every second. A wg-rp the host has is purged first, in the VM only.
# Sections with PACKAGE.deb:
#   install     dpkg -i on a system without wg-rp: files, modes, -V, man,
#               systemd-analyze verify, the security exposure of both units
#               (at most $max_exposure)
# Then, on kernel WireGuard and again on wireguard-go:
#   start       rps: activating (running, not ready) until READY=1, then active
#               with its API listening; on the kernel, with the wireguard
#               module not loaded before, the unit's own interface creation
#               loads it (as on a fresh server). Both enabled; status lines;
#               the outside host fetches the page through the server's port 8080
#   status      (kernel only) rps status and rpc status ask the units over
#               their control sockets in /run/wg-rp
#   reload      (kernel only) systemctl reload of both units (ExecReload=,
#               through the control socket); a config with an error: the
#               reload fails, rps runs on with its mapping
#   upgrade     (wireguard-go only: rps then has a child to stop) dpkg -i
#               again (an upgrade): both restarted, the path recovers
#   hung        SIGSTOP to rps: the watchdog kills it, systemd restarts it
#   kill        SIGKILL to rps: systemd restarts it, rpc re-registers by itself
#   watchdog    both still active with the same pids after twice WatchdogSec
#   stop        systemctl stop: the mapping and both interfaces are gone
# Between the two, the module is blocked (modprobe.d) and unloaded. Then:
#   purge       removal stops a running rps; purge leaves nothing behind
# With PACKAGE.rpm, the .rpm and its scriptlets, run by rpm itself:
#   rpm install the files; the units start
#   rpm upgrade rpm -U of the same package: both restarted by the scriptlets
#   rpm erase   stops both; nothing left behind
#
# usage: systemd_test.sh PACKAGE.deb|PACKAGE.rpm
set -u
pkg=$(realpath "$1")
# systemd-analyze security's overall exposure (0 best, 10 worst) either
# unit may have; the packaged units are at about 2.2.
max_exposure=2.5
watchdog_s=4
# The VM should start without the module (run.sh with VM_PRELOAD_MODULES
# not naming it), so that rps.service has to load it.
autoload=0
[ ! -d /sys/module/wireguard ] && autoload=1
work=$(mktemp -d)
pids=()
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/checks.sh"

O=wgrp-sd-o S=wgrp-sd-s C=wgrp-sd-c
INST=wgsd-c

cleanup() {
	local pid ns
	systemctl stop rps.service "rpc@$INST.service" 2>/dev/null
	for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	wait 2>/dev/null
	for ns in "$O" "$S" "$C"; do ip netns del "$ns" 2>/dev/null; done
	rm -f /etc/modprobe.d/wgrp-test-no-wireguard.conf
	rm -rf "$work"
}
trap cleanup EXIT

# mark: later journal_has calls only look at what is logged from here on.
mark() { cursor=$(journalctl -q -n 0 --show-cursor | sed -n 's/^-- cursor: //p'); }
# journal_has UNIT TEXT: UNIT's journal since the last mark has TEXT.
journal_has() {
	journalctl -q --no-pager --after-cursor "$cursor" -u "$1" | grep -qF -- "$2"
}

logs() {
	local u
	for u in rps.service "rpc@$INST.service"; do
		echo "---- journal of $u (last 30 lines)"
		journalctl -q --no-pager -n 30 -u "$u"
	done
}
finish() {
	[ "$failures" -gt 0 ] && logs
	summary
}

prop() { systemctl show -P "$2" "$1"; }
# status_is UNIT GLOB: the unit's STATUS= line matches GLOB.
status_is() {
	# shellcheck disable=SC2053
	[[ $(prop "$1" StatusText) == $2 ]]
}
active() { [ "$(systemctl is-active "$1")" = active ]; }
link_gone() { ! ip -n "$1" link show "$2" >/dev/null 2>&1; }

# ---------------------------------------------------------------- before
section "before the install"
# The VM's root is the host's, so it has the host's packages: a wg-rp
# installed there would make this install an upgrade.
if dpkg-query -W -f '${Status}' wg-rp 2>/dev/null | grep -q .; then
	echo "# the host has wg-rp ($(dpkg-query -W -f '${Version} ${Status}' wg-rp)): purged in the VM first"
	dpkg --purge wg-rp >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; die "dpkg --purge of the host's wg-rp failed"; }
fi
check "wg-rp is not installed before the install" bash -c "! dpkg-query -W wg-rp >/dev/null 2>&1"
check "nothing of wg-rp on the system before the install" \
	test ! -e /usr/sbin/rps -a ! -e /etc/wg-rp -a ! -e /usr/lib/systemd/system/rps.service

# ---------------------------------------------------------------- install
# deb_install: dpkg -i, what it installed, the units as systemd sees them.
deb_install() {
	section install
	# (test/vm/init removed a container image's policy-rc.d, which would keep
	# the maintainer scripts from restarting and stopping the units.)
	dpkg -i "$pkg" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; die "dpkg -i $pkg failed"; }
	check "dpkg -i $(basename "$pkg") was a fresh install" grep -q 'Selecting previously unselected package wg-rp' "$work/dpkg.log"
	for f in /usr/sbin/rps /usr/sbin/rpc /usr/lib/systemd/system/rps.service \
		"/usr/lib/systemd/system/rpc@.service" /usr/share/doc/wg-rp/examples/wg-server.conf \
		/usr/share/man/man8/rps.8.gz /usr/share/man/man8/rpc.8.gz; do
		check "installed $f" test -e "$f"
	done
	expect_eq "/etc/wg-rp mode" "700 root" "$(stat -c '%a %U' /etc/wg-rp)"
	version=$(dpkg-query -W -f '${Version}' wg-rp)
	expect_eq "rps -V" "rps $version" "$(/usr/sbin/rps -V)"
	expect_eq "rpc -V" "rpc $version" "$(/usr/sbin/rpc -V)"
	check "man rps finds the installed page" bash -c "man -w rps | grep -q /usr/share/man/man8/rps.8"
	section "install: the units"
	out=$(systemd-analyze verify rps.service "rpc@$INST.service" 2>&1)
	expect_eq "systemd-analyze verify rps.service rpc@$INST.service" "" "$out"
	# One systemd-analyze for both: each start of it costs seconds under TCG.
	systemd-analyze security --no-pager rps.service "rpc@$INST.service" >"$work/security" 2>&1
	for u in rps.service "rpc@$INST.service"; do
		score=$(sed -n "s/.*Overall exposure level for $u: \([0-9.]*\).*/\1/p" "$work/security")
		echo "# systemd-analyze security $u: ${score:-?} (at most $max_exposure)"
		[ -n "$score" ] || cat "$work/security"
		check "$u exposure ${score:-?} <= $max_exposure" \
			awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s != "" && s + 0 <= m + 0) }'
	done
	expect_eq "packaged WatchdogSec" WatchdogSec=30s "$(grep -h '^WatchdogSec=' /usr/lib/systemd/system/rps.service)"

}

# ---------------------------------------------------------------- namespaces
section "namespaces and configs"
netns_new "$O" "$S" "$C" || die "cannot create the namespaces"
ip link add sdo netns "$O" type veth peer name sdso netns "$S" &&
	ip link add sdsc netns "$S" type veth peer name sdc netns "$C" || die "cannot create veth pairs"
ip -n "$O" addr add 198.51.100.2/24 dev sdo && ip -n "$S" addr add 198.51.100.1/24 dev sdso &&
	ip -n "$S" addr add 192.0.2.1/24 dev sdsc && ip -n "$C" addr add 192.0.2.2/24 dev sdc ||
	die "cannot address the veth pairs"
for dev in "$O sdo" "$S sdso" "$S sdsc" "$C sdc"; do
	# shellcheck disable=SC2086 # "NETNS DEV"
	set -- $dev
	ip -n "$1" link set "$2" up
done

# ---------------------------------------------------------------- configs
umask 077
skey=$(wg genkey) ckey=$(wg genkey)
# configure: the configs in /etc/wg-rp and the drop-ins (namespaces, a short
# watchdog), as an administrator would write them after installing.
configure() {
	cat >/etc/wg-rp/wg-server.conf <<-EOF
	[Interface]
	Address = 10.98.0.1/24
	ListenPort = 51820
	PrivateKey = $skey

	[Peer]
	PublicKey = $(wg pubkey <<<"$ckey")
	AllowedIPs = 10.98.0.2/32
	# A restarted rps handshakes at once, rather than after rpc's old
	# session has gone unanswered for 15 s.
	Endpoint = 192.0.2.2:51821
	PersistentKeepalive = 25
	EOF
	cat >"/etc/wg-rp/$INST.conf" <<-EOF
	[Interface]
	Address = 10.98.0.2/32
	ListenPort = 51821
	PrivateKey = $ckey

	[Peer]
	PublicKey = $(wg pubkey <<<"$skey")
	Endpoint = 192.0.2.1:51820
	AllowedIPs = 10.98.0.0/24
	PersistentKeepalive = 25
	EOF
	echo 'RPS_ARGS="--allow-ports 8000-9000 --heartbeat-timeout 10 --check-interval 1"' >/etc/wg-rp/rps.args
	echo 'RPC_ARGS="-r 127.0.0.1:8080-8080 --heartbeat-interval 1"' >"/etc/wg-rp/$INST.args"
	local u ns
	for u in rps.service "rpc@$INST.service"; do
		mkdir -p "/etc/systemd/system/$u.d"
		ns=$S
		[ "$u" = rps.service ] || ns=$C
		printf '[Service]\nNetworkNamespacePath=/run/netns/%s\nWatchdogSec=%ss\nRestartSec=1s\n' "$ns" "$watchdog_s" \
			>"/etc/systemd/system/$u.d/test.conf"
	done
	systemctl daemon-reload
}

page="hello through systemd"
echo "$page" >"$work/page"
serve "$C" 127.0.0.1 8080 "$work/page"

# restarted N: rps restarted since NRestarts was N, and is active again.
restarted() { [ "$(prop rps.service NRestarts)" -gt "$1" ] && active rps.service; }

# phase kernel|userspace: the daemons' life under systemd on one kind of WireGuard.
phase() {
	mode=$1 kind=wireguard
	[ "$mode" = userspace ] && kind=tun
	# ---------------------------------------------------------------- start
	section "start ($mode)"
	if [ "$mode" = kernel ]; then
		if [ $autoload = 1 ]; then
			echo "# the wireguard module is not loaded: rps.service's interface creation must load it"
		elif [ "${CI:-}" = true ]; then
			fail "the wireguard module was loaded before rps.service started (run.sh's VM_PRELOAD_MODULES)"
		else
			echo "# SKIP module autoload: wireguard was loaded before the test (VM_PRELOAD_MODULES)"
		fi
	fi
	expect_eq "rps.service Type" notify "$(prop rps.service Type)"
	systemctl enable rps.service >"$work/enable.log" 2>&1 || cat "$work/enable.log"
	# Type=notify: the unit is activating, with its main process running, until
	# the daemon sends READY=1 (once its interface and API are up); only then
	# active. The states seen while it starts, sampled as fast as systemctl goes.
	systemctl start --no-block rps.service
	states='' prev='' deadline=$((SECONDS + 60))
	while [ $SECONDS -lt $deadline ]; do
		st=$(systemctl show -P ActiveState -P SubState rps.service | paste -sd/)
		[ "$st" = "$prev" ] || states="$states $st"
		prev=$st
		case $st in active/* | failed/*) break ;; esac
	done
	listening=0
	ip netns exec "$S" ss -Hltn 'sport = :80' | grep -q '10.98.0.1%wg0:80' && listening=1
	echo "# rps.service states while starting:$states"
	check "rps.service was activating/start (running, not ready) before it was active" \
		bash -c "[[ '$states ' == *' activating/start '*'active/running ' ]]"
	expect_eq "rps's API listens as soon as the unit is active" 1 "$listening"
	check "rps.service status line names the API" status_is rps.service "API on 10.98.0.1:80; no mappings yet"
	expect_eq "rps.service WatchdogUSec (the test's drop-in)" "${watchdog_s}s" "$(prop rps.service WatchdogUSec)"
	check "wg0 in the server namespace is $mode WireGuard ($kind)" bash -c \
		"ip -n $S -d link show wg0 | grep -qw $kind"
	if [ "$mode" = kernel ] && [ $autoload = 1 ]; then
		check "rps.service's interface creation loaded the wireguard module" test -d /sys/module/wireguard
	fi
	systemctl enable --now "rpc@$INST.service" >"$work/enable.log" 2>&1 || cat "$work/enable.log"
	check "rpc@$INST.service active once systemctl start returns" active "rpc@$INST.service"
	check "rpc's interface is named after the instance" bash -c "ip -n $C link show $INST >/dev/null"
	if wait_for 60 status_is "rpc@$INST.service" "1 mapping registered"; then
		pass "rpc@$INST status: $(prop "rpc@$INST.service" StatusText)"
	else
		fail "rpc@$INST status: $(prop "rpc@$INST.service" StatusText)"
	fi
	check "rps status: 1 mapping from 1 client" wait_for 10 status_is rps.service "API on 10.98.0.1:80; 1 mapping from 1 client"
	expect_page "outside fetches 198.51.100.1:8080" "$O" http://198.51.100.1:8080/ "$page"
	# Since when each daemon has run as which pid, for "watchdog".
	rpc_pid=$(prop "rpc@$INST.service" MainPID) rpc_since=$SECONDS

	# ---------------------------------------------------------------- status
	if [ "$mode" = kernel ]; then
		section "status ($mode)"
		# The units' sandbox (ProtectSystem=strict) leaves them /run/wg-rp,
		# where root outside asks them.
		check "rps status answers from the unit" bash -c "rps status | grep -q '8080/tcp'"
		check "rpc status -i $INST answers from the unit" bash -c \
			"rpc status -i $INST --json | grep -q '\"state\": \"registered\"'"

		section "reload ($mode)"
		mark
		check "systemctl reload rps.service succeeds" systemctl reload rps.service
		check "journal: rps reloaded its config" journal_has rps.service \
			"reloaded /etc/wg-rp/wg-server.conf: no change"
		check "systemctl reload rpc@$INST.service succeeds" systemctl reload "rpc@$INST.service"
		cp /etc/wg-rp/wg-server.conf "$work/server.good"
		echo "Colour = blue" >>/etc/wg-rp/wg-server.conf
		check "systemctl reload fails on a config with an error" bash -c "! systemctl reload rps.service"
		check "journal: the error with its line" journal_has rps.service \
			"/etc/wg-rp/wg-server.conf:$(wc -l </etc/wg-rp/wg-server.conf): unknown key \"Colour\""
		check "rps.service still active, its mapping kept" status_is rps.service "*; 1 mapping from 1 client"
		expect_page "outside still fetches 198.51.100.1:8080" "$O" http://198.51.100.1:8080/ "$page"
		cp "$work/server.good" /etc/wg-rp/wg-server.conf
	fi

	# ---------------------------------------------------------------- upgrade
	if [ "$mode" = userspace ]; then
		section "upgrade ($mode)"
		old_s=$(prop rps.service MainPID) old_c=$(prop "rpc@$INST.service" MainPID)
		dpkg -i "$pkg" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i again (upgrade) failed"; }
		new_s=$(prop rps.service MainPID) new_c=$(prop "rpc@$INST.service" MainPID)
		check "upgrade restarted rps.service (pid $old_s -> $new_s)" test "$new_s" != "$old_s" -a "$new_s" != 0
		check "upgrade restarted rpc@$INST.service (pid $old_c -> $new_c)" test "$new_c" != "$old_c" -a "$new_c" != 0
		rpc_pid=$new_c rpc_since=$SECONDS
		check "rpc registered again after the upgrade" wait_for 90 status_is "rpc@$INST.service" "1 mapping registered"
		check "rps holds the mapping again" wait_for 10 status_is rps.service "*; 1 mapping from 1 client"
		expect_page "outside fetches 198.51.100.1:8080 after the upgrade" "$O" http://198.51.100.1:8080/ "$page"
	fi

	# ---------------------------------------------------------------- hung
	section "hung ($mode)"
	mark
	# A daemon whose loop stands still stops pinging the watchdog: systemd
	# aborts it and restarts it (Restart=on-failure covers the watchdog).
	# rpc's registering again is seen after the next restart, in "kill".
	old_s=$(prop rps.service MainPID) n0=$(prop rps.service NRestarts)
	kill -STOP "$old_s"
	check "systemd restarted the hung rps through the watchdog" wait_for 60 restarted "$n0"
	check "rps runs with a new pid" test "$(prop rps.service MainPID)" != "$old_s"
	check "journal: rps.service failed through the watchdog" \
		journal_has rps.service "Failed with result 'watchdog'"

	# ---------------------------------------------------------------- kill
	section "kill ($mode)"
	mark
	old_s=$(prop rps.service MainPID) n0=$(prop rps.service NRestarts)
	kill -KILL "$old_s"
	check "systemd restarted rps after SIGKILL" wait_for 30 restarted "$n0"
	rps_pid=$(prop rps.service MainPID) rps_since=$SECONDS
	check "rps runs with a new pid" test "$rps_pid" != "$old_s"
	# rps forgot its mappings; rpc notices the new startup time (rps
	# restarted twice since rpc's last registration, once by the watchdog).
	t0=$SECONDS
	if wait_for 90 status_is rps.service "*; 1 mapping from 1 client"; then
		pass "rpc registered again $((SECONDS - t0)) s after the restart"
	else
		fail "rpc did not register again: rps says $(prop rps.service StatusText)"
	fi
	expect_page "outside fetches 198.51.100.1:8080 after the restart" "$O" http://198.51.100.1:8080/ "$page"
	check "journal has rpc noticing the restart" \
		journal_has "rpc@$INST.service" 'server restarted: registering every mapping again'

	# ---------------------------------------------------------------- watchdog
	section "watchdog ($mode)"
	# Without pings systemd would have killed both by now: rps has run since
	# the restart above, rpc since it started (or the upgrade restarted it).
	nap $((2 * watchdog_s + 1 - (SECONDS - rps_since)))
	check "rps.service still runs as pid $rps_pid $((SECONDS - rps_since)) s later (WatchdogSec=${watchdog_s}s)" \
		test "$(active rps.service && prop rps.service MainPID)" = "$rps_pid"
	check "rpc@$INST.service still runs as pid $rpc_pid $((SECONDS - rpc_since)) s later" \
		test "$(active "rpc@$INST.service" && prop "rpc@$INST.service" MainPID)" = "$rpc_pid"

	# ---------------------------------------------------------------- stop
	section "stop ($mode)"
	mark
	systemctl stop "rpc@$INST.service"
	check "rpc@$INST.service inactive" test "$(systemctl is-active "rpc@$INST.service")" = inactive
	check "rps dropped the mapping" status_is rps.service "*; 0 mappings from 0 clients"
	check "port 8080 refuses at once" refuses "$O" 198.51.100.1 8080
	check "journal: rpc removed port 8080 from the server" \
		journal_has "rpc@$INST.service" 'port 8080 removed from the server'
	check "rpc's interface $INST is gone" link_gone "$C" "$INST"
	systemctl disable --now "rpc@$INST.service" 2>/dev/null
	systemctl stop rps.service
	check "rps.service inactive" test "$(systemctl is-active rps.service)" = inactive
	check "rps's interface wg0 is gone" link_gone "$S" wg0
}

# deb_purge: removal stops a running rps, purge leaves nothing behind.
deb_purge() {
	section purge
	systemctl start rps.service
	check "rps.service active again" active rps.service
	rm -rf /etc/wg-rp/* /etc/systemd/system/rps.service.d "/etc/systemd/system/rpc@$INST.service.d"
	dpkg --purge wg-rp >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg --purge failed"; }
	check "removal stopped rps.service" bash -c "! systemctl is-active -q rps.service"
	check "and its interface wg0 is gone" link_gone "$S" wg0
	for f in /usr/sbin/rps /usr/sbin/rpc /usr/lib/systemd/system/rps.service /etc/wg-rp \
		/usr/share/doc/wg-rp /usr/share/man/man8/rps.8.gz /etc/systemd/system/multi-user.target.wants/rps.service; do
		check "purge removed $f" test ! -e "$f" -a ! -L "$f"
	done
	left=$(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/dpkg/info -name '*wg-rp*' -o -name 'rps.service*' 2>/dev/null)
	expect_eq "no state left behind" "" "$left"
}

# ---------------------------------------------------------------- rpm
# The rpm's scriptlets call systemd-update-helper, which the distributions
# the rpm is for ship with systemd, and whose daemon-reload and restarts at
# the end of the transaction come from systemd's rpm file triggers. Debian
# has neither: the helper is stood in for here (in the VM only) by what
# systemd's src/rpm/systemd-update-helper.in does for the commands used, and
# the triggers by calls after each rpm transaction.
# rpm_run: the .rpm installed, upgraded and erased.
rpm_run() {
	local helper
	version=$(rpm -qp --qf '%{VERSION}' "$pkg" 2>/dev/null)
	section "rpm install"
	helper=/usr/lib/systemd/systemd-update-helper
	if [ ! -e "$helper" ]; then
		echo "# no $helper (not an rpm distribution): a stand-in, as systemd's"
		cat >"$helper" <<'HELPER'
#!/bin/bash
set -eu
command=${1:?}
shift
case $command in
	install-system-units) systemctl --no-reload preset "$@" ;;
	remove-system-units)
		if [ -d /run/systemd/system ]; then
			systemctl --no-reload disable --now "$@"
		else
			systemctl --no-reload disable "$@"
		fi ;;
	mark-restart-system-units)
		[ -d /run/systemd/system ] || exit 0
		for unit in "$@"; do systemctl set-property "$unit" Markers=+needs-restart || :; done ;;
	system-reload-restart | system-reload)
		systemctl daemon-reload
		[ "$command" = system-reload ] || systemctl reload-or-restart --marked ;;
	*) echo "systemd-update-helper stand-in: $command not supported" >&2; exit 1 ;;
esac
HELPER
		chmod 755 "$helper"
	fi
	# rpm_tx ARGS...: one rpm transaction, then what systemd's file triggers do
	# after it (%transfiletriggerin: reload and restart the marked units;
	# %transfiletriggerpostun: reload).
	rpm_opts=(--nodeps)
	# Debian's rpm installs nothing without this.
	rpm --help 2>/dev/null | grep -q -- --force-debian && rpm_opts+=(--force-debian)
	rpm_tx() {
		local r=0
		rpm "$@" >"$work/rpm.log" 2>&1 || r=$?
		cat "$work/rpm.log"
		[ $r = 0 ] || return $r
		case $1 in
			-e) "$helper" system-reload ;;
			*) "$helper" system-reload-restart ;;
		esac
	}
	rpm --initdb 2>/dev/null
	check "wg-rp is not in the rpm database" bash -c "! rpm -q wg-rp >/dev/null 2>&1"
	check "rpm -i $(basename "$pkg")" rpm_tx -i "${rpm_opts[@]}" "$pkg"
	for f in /usr/sbin/rps /usr/sbin/rpc /usr/lib/systemd/system/rps.service \
		"/usr/lib/systemd/system/rpc@.service" /usr/share/man/man8/rps.8.gz; do
		check "rpm installed $f" test -e "$f"
	done
	expect_eq "/etc/wg-rp mode (rpm)" "700 root" "$(stat -c '%a %U' /etc/wg-rp)"
	expect_eq "rps -V (rpm)" "rps $version" "$(/usr/sbin/rps -V)"
	expect_eq "systemd knows rps.service from the rpm" "loaded no" \
		"$(prop rps.service LoadState) $(prop rps.service NeedDaemonReload)"
	configure
	systemctl start rps.service "rpc@$INST.service"
	check "rps.service (rpm) active" active rps.service
	check "rpc@$INST.service (rpm) active" active "rpc@$INST.service"
	check "rps (rpm) holds the mapping" wait_for 60 status_is rps.service "*; 1 mapping from 1 client"
	expect_page "outside fetches 198.51.100.1:8080 (rpm)" "$O" http://198.51.100.1:8080/ "$page"

	section "rpm upgrade"
	old_s=$(prop rps.service MainPID) old_c=$(prop "rpc@$INST.service" MainPID)
	check "rpm -U --replacepkgs $(basename "$pkg")" rpm_tx -U --replacepkgs "${rpm_opts[@]}" "$pkg"
	new_s=$(prop rps.service MainPID) new_c=$(prop "rpc@$INST.service" MainPID)
	check "the rpm upgrade restarted rps.service (pid $old_s -> $new_s)" test "$new_s" != "$old_s" -a "$new_s" != 0
	check "the rpm upgrade restarted rpc@$INST.service (pid $old_c -> $new_c)" test "$new_c" != "$old_c" -a "$new_c" != 0
	check "rps holds the mapping again after the rpm upgrade" wait_for 60 status_is rps.service "*; 1 mapping from 1 client"
	expect_eq "one wg-rp in the rpm database" 1 "$(rpm -q wg-rp | wc -l)"

	section "rpm erase"
	rm -rf /etc/wg-rp/* /etc/systemd/system/rps.service.d "/etc/systemd/system/rpc@$INST.service.d"
	check "rpm -e wg-rp" rpm_tx -e wg-rp
	check "erase stopped rps.service" bash -c "! systemctl is-active -q rps.service"
	check "erase stopped rpc@$INST.service" bash -c "! systemctl is-active -q rpc@$INST.service"
	check "and rps's interface wg0 is gone" link_gone "$S" wg0
	for f in /usr/sbin/rps /usr/sbin/rpc /usr/lib/systemd/system/rps.service /etc/wg-rp \
		/usr/share/man/man8/rps.8.gz /etc/systemd/system/multi-user.target.wants/rps.service; do
		check "rpm -e removed $f" test ! -e "$f" -a ! -L "$f"
	done
	check "wg-rp is gone from the rpm database" bash -c "! rpm -q wg-rp >/dev/null 2>&1"
}

# ================================================================ run
case $pkg in
*.deb)
	deb_install
	configure
	phase kernel
	# The module cannot load any more (and the daemons fall back to wireguard-go)
	# once its interfaces are gone.
	echo "install wireguard /bin/false" >/etc/modprobe.d/wgrp-test-no-wireguard.conf
	check "the wireguard module unloads" rmmod wireguard
	phase userspace
	deb_purge
	;;
*.rpm) rpm_run ;;
*) die "$pkg: neither a .deb nor a .rpm" ;;
esac
finish
