/* The wg-quick configuration file: [Interface] and [Peer] sections, read with
 * the rules wg(8) and wg-quick(8) apply. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgrp/addr.h"
#include "wgrp/diag.h"
#include "wgrp/key.h"
#include "wgrp/ports.h"

#define CONF_DEFAULT_ENDPOINT_PORT 51820
/* The largest MTU a usual path carries through the tunnel: 1500 (Ethernet)
 * minus WireGuard's 80 bytes over IPv6 (40 IPv6, 8 UDP, 32 WireGuard). */
#define CONF_PATH_MTU 1420
/* Far beyond any real config (300 peers take ~60 KiB); bounds memory use. */
#define CONF_MAX_FILE_SIZE (4u << 20)

struct conf_peer {
	uint8_t public_key[WG_KEY_LEN];
	uint8_t preshared_key[WG_KEY_LEN];
	bool has_preshared_key;
	bool has_endpoint;
	struct hostport endpoint;
	uint16_t persistent_keepalive; /* seconds; 0 = off */
	struct ip_prefix *allowed_ips;
	size_t n_allowed_ips;
	unsigned line; /* of the [Peer] header */
	/* The comment right under [Peer] when it is one word, as `rps
	 * add-client` writes it ("# alice"); NULL: none. */
	char *name;
	/* rps's policy for this peer, from its "# wg-rp:" lines; what is not
	 * given there is the daemon's option. */
	struct port_set *allow_ports; /* AllowPorts; NULL: --allow-ports */
	uint32_t max_mappings;        /* MaxMappings; 0: --max-mappings */
	uint32_t max_conns_per_source; /* MaxConnsPerSource; 0: --max-conns-per-source */
};

/* A "# wg-rp: Route = SPEC" line of rpc's [Interface]: a route as -r takes
 * it, checked by the parser. */
struct conf_route {
	char *spec;
	unsigned line;
};

struct conf {
	char *name; /* the file name, as messages show it */
	uint8_t private_key[WG_KEY_LEN];
	struct ip_prefix *addresses;
	size_t n_addresses;
	uint16_t listen_port; /* 0 = chosen by the kernel */
	uint32_t mtu;         /* 0 = the kernel's default */
	uint32_t fwmark;      /* 0 = off */
	struct conf_peer *peers;
	size_t n_peers;
	struct conf_route *routes;
	size_t n_routes;
};

/* wg-rp's own settings live on lines wg-quick reads as comments, so one file
 * serves both ("# wg-rp: Key = Value"; `wg-quick strip` drops them):
 *   [Interface]  Route = SPEC             (rpc; repeatable)
 *   [Peer]       AllowPorts = LIST        (rps; as --allow-ports)
 *                MaxMappings = N          (rps; as --max-mappings)
 *                MaxConnsPerSource = N    (rps; as --max-conns-per-source)
 * Their limits are the options' (CONF_MAX_*). */
#define CONF_MAX_MAPPINGS 65535
#define CONF_PEER_NAME_MAX 32
#define CONF_MAX_CONNS_PER_SOURCE 1000000

/* Parses a whole file's text (len bytes, NUL bytes refused). name prefixes every
 * message ("name:line: Key: what"). Every problem is added to diags; parsing
 * goes on past errors so that all of them are reported at once.
 * Returns 0 with *out set (caller frees with conf_free()), -EINVAL when any
 * error was found, or -ENOMEM. */
int conf_parse(struct conf **out, const char *name, const char *text, size_t len,
	       struct diag_list *diags);

/* Reads and parses the file at path, warning when group or others may read it.
 * Returns as conf_parse(), or -errno when the file cannot be read (the reason is
 * in diags too). */
int conf_load(struct conf **out, const char *path, struct diag_list *diags);

/* Resolves every peer endpoint given as a host name. Returns 0 or -EHOSTUNREACH
 * with one error per unresolvable name in diags. */
int conf_resolve_endpoints(struct conf *c, struct diag_list *diags);

/* Wipes the secrets of c: the private key and every preshared key, for a
 * daemon to call once the device holds them and whatever it derives from them
 * is derived. The rest of c stays usable. */
void conf_wipe_private_key(struct conf *c);

/* The index of the peer whose AllowedIPs hold addr, as WireGuard routes
 * (the longest prefix wins), or c->n_peers when none does. */
size_t conf_peer_of(const struct conf *c, const struct ip_addr *addr);

/* Wipes the secrets and frees c; accepts NULL. */
void conf_free(struct conf *c);
