/* WireGuard keys in the base64 form wg(8) prints. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "wgrp/diag.h"

#define WG_KEY_LEN 32
#define WG_KEY_B64_LEN 44 /* without NUL */

/* Decodes a key written as 44 characters of canonical base64 ending in '='.
 * Returns 0 or -EINVAL; the message never repeats the input, which may be a
 * private key. */
int key_from_base64(uint8_t key[WG_KEY_LEN], const char *s, struct errbuf *e);

/* Whether s may hold a key, in whole or most of it: it has a run of at least
 * KEY_LOOKALIKE_RUN base64 symbols. A message about s must not quote it then.
 * Host names and addresses have no such runs. */
#define KEY_LOOKALIKE_RUN 20
bool key_lookalike(const char *s);

/* Writes key as the 44 characters of base64 wg(8) prints, NUL-terminated. */
void key_to_base64(char out[WG_KEY_B64_LEN + 1], const uint8_t key[WG_KEY_LEN]);

/* Makes a new private key as wg genkey does: 32 bytes from the kernel's
 * random source by way of libcrypto, clamped for X25519. Returns 0 or -EIO. */
int key_generate(uint8_t private_key[WG_KEY_LEN]);

/* The public key of private_key, as wg pubkey prints it: X25519 of the base
 * point. Returns 0, or -EINVAL when libcrypto fails. */
int key_public(uint8_t public_key[WG_KEY_LEN], const uint8_t private_key[WG_KEY_LEN]);
