/* The two ways to configure a WireGuard device and read it back: the
 * kernel's generic netlink family, and the UAPI text protocol a userspace
 * implementation serves on /var/run/wireguard/IFNAME.sock. Each set makes the
 * device match c exactly: private key, listen port, fwmark, and all peers,
 * replacing whatever peers and allowed IPs it had. Each returns 0 or a
 * negative errno with the reason in e. Private to device.c. */
#pragma once

#include "wgrp/conf.h"
#include "wgrp/device.h"

int wg_genl_set(const char *ifname, const struct conf *c, struct errbuf *e);
int wg_genl_get(const char *ifname, struct wg_device_info **out, struct errbuf *e);

/* The directory of UAPI sockets, as wg(8) and wireguard-go agree on it. */
#define WG_UAPI_DIR "/var/run/wireguard"

int wg_uapi_set(const char *ifname, const struct conf *c, struct errbuf *e);
int wg_uapi_get(const char *ifname, struct wg_device_info **out, struct errbuf *e);
