/* Proof of a client's WireGuard key on API requests. rpc and rps share a
 * static secret, X25519(client private, server public) = X25519(server
 * private, client public); HKDF-SHA256 turns it into a MAC key, and every
 * request carries an HMAC-SHA256 of its method, request target, body, a
 * timestamp and a random nonce, in three headers. Only the holder of one of
 * the two private keys can make one. Pure functions over libcrypto, plus a
 * bounded set of seen nonces against replays. The wire format is in
 * docs/api.md ("Signed requests"). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wgrp/diag.h"
#include "wgrp/key.h"

#define AUTH_HEADER_TIMESTAMP "X-WGRP-Timestamp"
#define AUTH_HEADER_NONCE "X-WGRP-Nonce"
#define AUTH_HEADER_SIGNATURE "X-WGRP-Signature"

/* The first line of the string signed, and the HKDF label of the MAC key:
 * both name the version of the scheme. */
#define AUTH_SCHEME "wg-rp-hmac-sha256-v1"
#define AUTH_HKDF_INFO "wg-rp api request mac v1"

#define AUTH_KEY_LEN 32
#define AUTH_NONCE_LEN 16
#define AUTH_NONCE_HEX_LEN (2 * AUTH_NONCE_LEN)
#define AUTH_MAC_LEN 32
#define AUTH_MAC_HEX_LEN (2 * AUTH_MAC_LEN)
/* A timestamp this far from the server's clock, either way, is refused. */
#define AUTH_MAX_SKEW_S 300
/* Nonces remembered per peer; a peer past it is refused until some expire
 * (an honest rpc sends a few per heartbeat: far fewer). */
#define AUTH_NONCES_MAX 4096

/* What the three headers say, parsed. */
struct auth_proof {
	int64_t timestamp; /* Unix seconds */
	uint8_t nonce[AUTH_NONCE_LEN];
	uint8_t mac[AUTH_MAC_LEN];
};

/* The X25519 shared secret of private and peer_public. Returns 0, or -EINVAL
 * when the result is all zero (a low-order public key) or libcrypto fails. */
int auth_shared_secret(uint8_t out[WG_KEY_LEN], const uint8_t private_key[WG_KEY_LEN],
		       const uint8_t peer_public[WG_KEY_LEN]);

/* The MAC key of the pair: HKDF-SHA256 of their shared secret, with no salt
 * and AUTH_HKDF_INFO. The secret is wiped. Returns 0 or -EINVAL. */
int auth_derive_key(uint8_t key[AUTH_KEY_LEN], const uint8_t private_key[WG_KEY_LEN],
		    const uint8_t peer_public[WG_KEY_LEN]);

/* The text before the body in the string signed:
 * AUTH_SCHEME "\n" METHOD "\n" TARGET "\n" TIMESTAMP "\n" NONCE-HEX "\n".
 * The body's bytes follow it. Returns its length, or -ENOSPC when it does
 * not fit in size bytes (with its NUL). */
int auth_canonical_head(char *out, size_t size, const char *method, const char *target,
			int64_t timestamp, const uint8_t nonce[AUTH_NONCE_LEN]);

/* HMAC-SHA256 with key over the string signed. Returns 0, -ENOSPC for an
 * absurdly long target, or -EIO when libcrypto fails. */
int auth_mac(uint8_t mac[AUTH_MAC_LEN], const uint8_t key[AUTH_KEY_LEN], const char *method,
	     const char *target, const char *body, size_t body_len, int64_t timestamp,
	     const uint8_t nonce[AUTH_NONCE_LEN]);

/* The three header values for a request, NUL-terminated: a fresh random
 * nonce, now as the timestamp and the MAC in lowercase hex. Returns 0 or a
 * negative errno. */
int auth_sign(char timestamp[24], char nonce[AUTH_NONCE_HEX_LEN + 1],
	      char signature[AUTH_MAC_HEX_LEN + 1], const uint8_t key[AUTH_KEY_LEN],
	      const char *method, const char *target, const char *body, size_t body_len,
	      int64_t now);

/* Parses the three header values (NULL: absent) strictly: decimal seconds
 * without sign or leading zeros, 32 and 64 hex digits. Returns 0, or -EINVAL
 * with a reason fit to send back in e; the values are never quoted. */
int auth_proof_parse(struct auth_proof *out, const char *timestamp, const char *nonce,
		     const char *signature, struct errbuf *e);

/* Whether proof is a MAC with key over the request (compared in constant
 * time) and its timestamp within AUTH_MAX_SKEW_S of now. Returns 0, or
 * -EACCES with the reason in e. Does not look at nonces. */
int auth_check(const struct auth_proof *proof, const uint8_t key[AUTH_KEY_LEN],
	       const char *method, const char *target, const char *body, size_t body_len,
	       int64_t now, struct errbuf *e);

/* The nonces one peer has used, each kept until its timestamp is too old to
 * pass auth_check() anyway. Zero-initialized is empty. */
struct auth_nonces {
	struct auth_nonce_entry *items;
	size_t n;
};

/* Records proof's nonce. Returns 0; -EALREADY if it was seen (a replay);
 * -EBUSY if AUTH_NONCES_MAX unexpired ones are kept; -ENOMEM. */
int auth_nonces_add(struct auth_nonces *set, const struct auth_proof *proof, int64_t now);
void auth_nonces_clear(struct auth_nonces *set);
