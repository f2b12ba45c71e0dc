/* The two ways to configure a WireGuard device and read it back: the
 * kernel's generic netlink family, and the UAPI text protocol a userspace
 * implementation serves on /var/run/wireguard/IFNAME.sock. A set sends what
 * a struct wg_set names: at start everything, replacing whatever peers the
 * device had; on a reload only what changed, so that the peers it leaves out
 * keep their sessions. Each returns 0 or a negative errno with the reason in
 * e. Private to device.c. */
#pragma once

#include "wgrp/conf.h"
#include "wgrp/conf_diff.h"
#include "wgrp/device.h"

/* Device settings of a set, from its config. */
enum {
	WG_SET_PRIVATE_KEY = 1 << 0,
	WG_SET_LISTEN_PORT = 1 << 1,
	WG_SET_FWMARK = 1 << 2,
	WG_SET_REPLACE_PEERS = 1 << 3,
};

struct wg_set_peer {
	const struct conf_peer *p;
	bool remove;      /* only p's public key is sent */
	bool update_only; /* a peer the device has: never created by this set */
	unsigned fields;  /* CONF_PEER_WIREGUARD bits: what of p is sent; AllowedIPs
			   * replace the old */
};

struct wg_set {
	const struct conf *c;
	unsigned device; /* WG_SET_* */
	const struct wg_set_peer *peers;
	size_t n_peers;
};

int wg_genl_set(const char *ifname, const struct wg_set *s, struct errbuf *e);
int wg_genl_get(const char *ifname, struct wg_device_info **out, struct errbuf *e);

/* The directory of UAPI sockets, as wg(8) and wireguard-go agree on it. */
#define WG_UAPI_DIR "/var/run/wireguard"

int wg_uapi_set(const char *ifname, const struct wg_set *s, struct errbuf *e);
int wg_uapi_get(const char *ifname, struct wg_device_info **out, struct errbuf *e);
