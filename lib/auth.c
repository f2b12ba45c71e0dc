#include <errno.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "wgrp/auth.h"

struct auth_nonce_entry {
	uint8_t nonce[AUTH_NONCE_LEN];
	int64_t expires; /* when its timestamp falls out of the window */
};

int auth_shared_secret(uint8_t out[WG_KEY_LEN], const uint8_t private_key[WG_KEY_LEN],
		       const uint8_t peer_public[WG_KEY_LEN])
{
	static const uint8_t zero[WG_KEY_LEN];
	EVP_PKEY *priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, private_key, WG_KEY_LEN);
	EVP_PKEY *pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_public, WG_KEY_LEN);
	EVP_PKEY_CTX *ctx = priv ? EVP_PKEY_CTX_new(priv, NULL) : NULL;
	size_t len = WG_KEY_LEN;
	int r = -EINVAL;

	if (ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, pub) == 1 &&
	    EVP_PKEY_derive(ctx, out, &len) == 1 && len == WG_KEY_LEN &&
	    CRYPTO_memcmp(out, zero, WG_KEY_LEN))
		r = 0;
	if (r < 0)
		OPENSSL_cleanse(out, WG_KEY_LEN);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(priv);
	return r;
}

int auth_derive_key(uint8_t key[AUTH_KEY_LEN], const uint8_t private_key[WG_KEY_LEN],
		    const uint8_t peer_public[WG_KEY_LEN])
{
	uint8_t secret[WG_KEY_LEN];
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[4];
	int r = auth_shared_secret(secret, private_key, peer_public);

	if (r < 0)
		goto out;
	r = -EINVAL;
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (!ctx)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret, sizeof(secret));
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, AUTH_HKDF_INFO,
						      strlen(AUTH_HKDF_INFO));
	params[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, key, AUTH_KEY_LEN, params) == 1)
		r = 0;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return r;
}

static void to_hex(char *out, const uint8_t *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Lowercase only: one spelling per value, as the string signed holds it. */
static int from_hex(uint8_t *out, const char *s, size_t len)
{
	if (strlen(s) != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < 2 * len; i++) {
		const char *d = strchr("0123456789abcdef", s[i]);

		if (!s[i] || !d)
			return -EINVAL;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)((d - "0123456789abcdef") << 4);
		else
			out[i / 2] |= (uint8_t)(d - "0123456789abcdef");
	}
	return 0;
}

int auth_canonical_head(char *out, size_t size, const char *method, const char *target,
			int64_t timestamp, const uint8_t nonce[AUTH_NONCE_LEN])
{
	char hex[AUTH_NONCE_HEX_LEN + 1];
	int n;

	to_hex(hex, nonce, AUTH_NONCE_LEN);
	n = snprintf(out, size, "%s\n%s\n%s\n%" PRId64 "\n%s\n", AUTH_SCHEME, method, target,
		     timestamp, hex);
	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

int auth_mac(uint8_t mac[AUTH_MAC_LEN], const uint8_t key[AUTH_KEY_LEN], const char *method,
	     const char *target, const char *body, size_t body_len, int64_t timestamp,
	     const uint8_t nonce[AUTH_NONCE_LEN])
{
	char head[4096];
	EVP_MAC *hmac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t len = 0;
	int n = auth_canonical_head(head, sizeof(head), method, target, timestamp, nonce), r = -EIO;

	if (n < 0)
		return n;
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx && EVP_MAC_init(ctx, key, AUTH_KEY_LEN, params) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)head, (size_t)n) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)body, body_len) == 1 &&
	    EVP_MAC_final(ctx, mac, &len, AUTH_MAC_LEN) == 1 && len == AUTH_MAC_LEN)
		r = 0;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	return r;
}

int auth_sign(char timestamp[24], char nonce[AUTH_NONCE_HEX_LEN + 1],
	      char signature[AUTH_MAC_HEX_LEN + 1], const uint8_t key[AUTH_KEY_LEN],
	      const char *method, const char *target, const char *body, size_t body_len,
	      int64_t now)
{
	uint8_t raw[AUTH_NONCE_LEN], mac[AUTH_MAC_LEN];
	int r;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	r = auth_mac(mac, key, method, target, body ? body : "", body_len, now, raw);
	if (r < 0)
		return r;
	snprintf(timestamp, 24, "%" PRId64, now);
	to_hex(nonce, raw, sizeof(raw));
	to_hex(signature, mac, sizeof(mac));
	return 0;
}

int auth_proof_parse(struct auth_proof *out, const char *timestamp, const char *nonce,
		     const char *signature, struct errbuf *e)
{
	size_t len;
	int64_t t = 0;

	if (!timestamp || !nonce || !signature)
		return errbuf_set(e, -EINVAL, "missing header %s",
				  !timestamp ? AUTH_HEADER_TIMESTAMP
				  : !nonce   ? AUTH_HEADER_NONCE
					     : AUTH_HEADER_SIGNATURE);
	len = strlen(timestamp);
	if (len == 0 || len > 18 || (len > 1 && timestamp[0] == '0') ||
	    strspn(timestamp, "0123456789") != len)
		return errbuf_set(e, -EINVAL, "%s must be Unix seconds in decimal",
				  AUTH_HEADER_TIMESTAMP);
	for (size_t i = 0; i < len; i++)
		t = t * 10 + (timestamp[i] - '0');
	if (from_hex(out->nonce, nonce, AUTH_NONCE_LEN) < 0)
		return errbuf_set(e, -EINVAL, "%s must be %d lowercase hex digits", AUTH_HEADER_NONCE,
				  AUTH_NONCE_HEX_LEN);
	if (from_hex(out->mac, signature, AUTH_MAC_LEN) < 0)
		return errbuf_set(e, -EINVAL, "%s must be %d lowercase hex digits",
				  AUTH_HEADER_SIGNATURE, AUTH_MAC_HEX_LEN);
	out->timestamp = t;
	return 0;
}

int auth_check(const struct auth_proof *proof, const uint8_t key[AUTH_KEY_LEN],
	       const char *method, const char *target, const char *body, size_t body_len,
	       int64_t now, struct errbuf *e)
{
	uint8_t mac[AUTH_MAC_LEN];

	if (auth_mac(mac, key, method, target, body, body_len, proof->timestamp, proof->nonce) < 0 ||
	    CRYPTO_memcmp(mac, proof->mac, AUTH_MAC_LEN))
		return errbuf_set(e, -EACCES, "the signature does not match this request and the client's key");
	if (proof->timestamp < now - AUTH_MAX_SKEW_S || proof->timestamp > now + AUTH_MAX_SKEW_S)
		return errbuf_set(e, -EACCES,
				  "timestamp %" PRId64 " is more than %d s from the server's clock (%" PRId64 ")",
				  proof->timestamp, AUTH_MAX_SKEW_S, now);
	return 0;
}

int auth_nonces_add(struct auth_nonces *set, const struct auth_proof *proof, int64_t now)
{
	size_t kept = 0;

	for (size_t i = 0; i < set->n; i++)
		if (!CRYPTO_memcmp(set->items[i].nonce, proof->nonce, AUTH_NONCE_LEN) &&
		    set->items[i].expires >= now)
			return -EALREADY;
	/* Before the array would grow, the expired go: growth then means that
	 * many are live, and the purge costs O(1) per insertion over time. */
	if (set->n >= 4 && !(set->n & (set->n - 1))) {
		for (size_t i = 0; i < set->n; i++)
			if (set->items[i].expires >= now)
				set->items[kept++] = set->items[i];
		set->n = kept;
	}
	if (set->n >= AUTH_NONCES_MAX)
		return -EBUSY;
	if (array_reserve(&set->items, set->n, sizeof(*set->items)) < 0)
		return -ENOMEM;
	memcpy(set->items[set->n].nonce, proof->nonce, AUTH_NONCE_LEN);
	set->items[set->n].expires = proof->timestamp + AUTH_MAX_SKEW_S;
	set->n++;
	return 0;
}

void auth_nonces_clear(struct auth_nonces *set)
{
	free(set->items);
	memset(set, 0, sizeof(*set));
}
