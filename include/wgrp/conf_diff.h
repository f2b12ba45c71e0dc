/* What a reload changes: the difference between the config a daemon runs on
 * and the one it read again, peer by peer (matched by public key), and the
 * interface settings that cannot change while it runs. Pure logic: the
 * daemons apply it (device_update(), their own bookkeeping). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgrp/conf.h"
#include "wgrp/diag.h"

/* A daemon wipes its secrets once the device holds them; it keeps their
 * digests (SHA-256) instead, to tell whether a new config changes them. */
struct conf_secrets {
	uint8_t private_key[32];
	uint8_t (*preshared_keys)[32]; /* per peer; all zero without one */
	size_t n_peers;
};

/* Digests c's secrets, before conf_wipe_private_key(). Returns 0 or -ENOMEM. */
int conf_secrets_take(struct conf_secrets *out, const struct conf *c);
void conf_secrets_clear(struct conf_secrets *s);

/* Ends a reload: c (with secrets, its digests) becomes the running config
 * *running (with *running_secrets). c's secrets are wiped, the device
 * holding them now; the old config and digests are freed. c and secrets are
 * *running's afterwards (secrets left empty). */
void conf_take_over(struct conf **running, struct conf_secrets *running_secrets, struct conf *c,
		    struct conf_secrets *secrets);

/* What changed in a peer kept across a reload: what WireGuard holds, then
 * what only wg-rp reads (its name, its "# wg-rp:" lines). */
enum {
	CONF_PEER_ALLOWED_IPS = 1 << 0,
	CONF_PEER_PRESHARED_KEY = 1 << 1,
	CONF_PEER_KEEPALIVE = 1 << 2,
	CONF_PEER_ENDPOINT = 1 << 3,
	CONF_PEER_NAME = 1 << 4,
	CONF_PEER_ALLOW_PORTS = 1 << 5,
	CONF_PEER_MAX_MAPPINGS = 1 << 6,
	CONF_PEER_MAX_CONNS_PER_SOURCE = 1 << 7,
};

#define CONF_PEER_WIREGUARD                                                                \
	(CONF_PEER_ALLOWED_IPS | CONF_PEER_PRESHARED_KEY | CONF_PEER_KEEPALIVE |           \
	 CONF_PEER_ENDPOINT)

#define CONF_DIFF_NONE SIZE_MAX

struct conf_diff {
	size_t *old_index; /* per new peer: its index in the old config, or CONF_DIFF_NONE (added) */
	unsigned *changes; /* per new peer: CONF_PEER_* (0 for an added or untouched one) */
	size_t *new_index; /* per old peer: its index in the new config, or CONF_DIFF_NONE (removed) */
	size_t n_added, n_removed, n_changed;
	bool listen_port, fwmark, mtu; /* changed, and can change live */
};

/* Compares new (read again, its secrets still there) with old (running,
 * its secrets wiped: old_secrets are their digests). An endpoint left out of
 * new is no change: WireGuard keeps the last one it saw. What cannot change
 * live (the private key, the addresses) is an error in diags, saying that
 * program must restart and that nothing was reloaded. Returns 0 with *out
 * set (free it with conf_diff_free()), -EPERM when something cannot change
 * live, or -ENOMEM. */
int conf_diff(struct conf_diff *out, const struct conf *old, const struct conf_secrets *old_secrets,
	      const struct conf *new, const char *program, struct diag_list *diags);

void conf_diff_free(struct conf_diff *d);

/* Whether applying d would change nothing. */
bool conf_diff_empty(const struct conf_diff *d);

/* Names the fields in changes as the config does, e.g. "AllowedIPs,
 * Endpoint", into buf. */
const char *conf_peer_changes_format(unsigned changes, char *buf, size_t len);
