#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "wgrp/key.h"

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int key_from_base64(uint8_t key[WG_KEY_LEN], const char *s, struct errbuf *e)
{
	uint8_t out[WG_KEY_LEN + 1];
	uint32_t acc = 0;
	size_t len = strlen(s), n = 0;
	int bits = 0, r = 0;

	if (len != WG_KEY_B64_LEN || s[WG_KEY_B64_LEN - 1] != '=') {
		r = errbuf_set(e, -EINVAL,
			       "invalid key: expected 44 characters of base64 ending in '=' "
			       "(as printed by wg genkey), got %zu characters",
			       len);
		goto out;
	}
	for (size_t i = 0; i < WG_KEY_B64_LEN - 1; i++) {
		int v = b64_value(s[i]);

		if (v < 0) {
			r = errbuf_set(e, -EINVAL, "invalid key: character %zu is not base64", i + 1);
			goto out;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* 43 symbols carry 258 bits; the last 2 must be zero in canonical base64. */
	if (acc & ((1u << bits) - 1)) {
		r = errbuf_set(e, -EINVAL, "invalid key: not canonical base64");
		goto out;
	}
	memcpy(key, out, WG_KEY_LEN);
out:
	explicit_bzero(out, sizeof(out));
	explicit_bzero(&acc, sizeof(acc));
	return r;
}

bool key_lookalike(const char *s)
{
	size_t run = 0;

	for (; *s; s++) {
		run = b64_value(*s) < 0 ? 0 : run + 1;
		if (run >= KEY_LOOKALIKE_RUN)
			return true;
	}
	return false;
}

void key_to_base64(char out[WG_KEY_B64_LEN + 1], const uint8_t key[WG_KEY_LEN])
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	for (size_t i = 0; i < WG_KEY_LEN; i++) {
		acc = (acc << 8) | key[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[n++] = alphabet[(acc >> bits) & 63];
		}
	}
	out[n++] = alphabet[(acc << (6 - bits)) & 63];
	out[n++] = '=';
	out[n] = '\0';
}

int key_generate(uint8_t private_key[WG_KEY_LEN])
{
	if (RAND_priv_bytes(private_key, WG_KEY_LEN) != 1)
		return -EIO;
	/* RFC 7748's clamping, which wg genkey stores in the key too. */
	private_key[0] &= 248;
	private_key[31] = (uint8_t)((private_key[31] & 127) | 64);
	return 0;
}

int key_public(uint8_t public_key[WG_KEY_LEN], const uint8_t private_key[WG_KEY_LEN])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, private_key, WG_KEY_LEN);
	size_t len = WG_KEY_LEN;
	int r = -EINVAL;

	if (k && EVP_PKEY_get_raw_public_key(k, public_key, &len) == 1 && len == WG_KEY_LEN)
		r = 0;
	EVP_PKEY_free(k);
	return r;
}
