/* The WireGuard interface a daemon runs on: created from a parsed config,
 * configured, addressed, routed and brought up; read back for status; torn
 * down on exit. Kernel WireGuard over netlink is the default; when the kernel
 * has no WireGuard, the userspace implementation wg-quick would use
 * ($WG_QUICK_USERSPACE_IMPLEMENTATION, default wireguard-go) runs instead.
 * Callers see one interface either way. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "wgrp/addr.h"
#include "wgrp/conf.h"
#include "wgrp/conf_diff.h"
#include "wgrp/diag.h"
#include "wgrp/key.h"
#include "wgrp/loop.h"

#define DEVICE_DEFAULT_IFNAME "wg0"

enum device_backend {
	DEVICE_KERNEL,
	DEVICE_USERSPACE,
};

struct wg_peer_info {
	uint8_t public_key[WG_KEY_LEN];
	bool has_preshared_key;
	bool has_endpoint;
	union sockaddr_inet endpoint;
	uint16_t persistent_keepalive; /* seconds; 0 = off */
	struct timespec last_handshake; /* zero: never */
	uint64_t rx_bytes;
	uint64_t tx_bytes;
	struct ip_prefix *allowed_ips;
	size_t n_allowed_ips;
};

/* What the device holds now, without its secrets. */
struct wg_device_info {
	uint16_t listen_port;
	uint32_t fwmark;
	struct wg_peer_info *peers;
	size_t n_peers;
};

void wg_device_info_free(struct wg_device_info *info);

struct device;

/* Brings up interface ifname for program (e.g. "rps"), marking it as ours so
 * that a later start can tell a leftover from a crash (deleted and recreated)
 * from an interface of someone else's (refused, never touched). Endpoints in c
 * must be resolved. notes receives what the caller should log (backend chosen,
 * leftovers removed, routes skipped). Returns 0 with *out set, or a negative
 * errno with the reason in e; on failure nothing is left behind. */
int device_up(struct device **out, const struct conf *c, const char *ifname,
	      const char *program, struct diag_list *notes, struct errbuf *e);

/* Applies a reload: diff, from old (what d runs on) to c, resolved. Only
 * what changed is sent: peers removed, peers added, and of a changed peer
 * only its changed fields (AllowedIPs replacing the old ones), so that the
 * peers left out keep their sessions; then ListenPort, FwMark, the MTU, and
 * the routes of peer networks gone or new. notes receives what the caller
 * should log. Returns 0, or a negative errno with the reason in e: the
 * device may then hold part of the change. */
int device_update(struct device *d, const struct conf *old, const struct conf *c,
		  const struct conf_diff *diff, struct diag_list *notes, struct errbuf *e);

enum device_backend device_backend(const struct device *d);
const char *device_ifname(const struct device *d);

/* Reads the device's state. Returns 0 with *out set (free it with
 * wg_device_info_free()), or a negative errno with the reason in e. */
int device_get(struct device *d, struct wg_device_info **out, struct errbuf *e);

/* Called once, from the loop, when the device is lost; why says what
 * happened, in a phrase for the log. */
typedef void device_lost_fn(void *data, const char *why);

/* Watches d from loop l until device_down(): when its userspace
 * implementation exits or its interface is deleted (or moved to another
 * network namespace), lost is called, at once from the kernel's notification
 * (rtnetlink link events, a pidfd), after at most 3 s spent telling which
 * of the two went first. Returns 0 or a negative errno with the reason in e. */
int device_watch(struct device *d, struct loop *l, device_lost_fn *lost, void *data,
		 struct errbuf *e);

/* Deletes the interface (its addresses and routes go with it) and stops a
 * userspace implementation we started. Accepts NULL. */
void device_down(struct device *d);
