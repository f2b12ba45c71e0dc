#include <errno.h>

#include "test.h"
#include "wgrp/auth.h"

/* RFC 7748, section 6.1: Alice and Bob. */
static const uint8_t alice_private[WG_KEY_LEN] = {
	0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45,
	0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a,
};
static const uint8_t alice_public[WG_KEY_LEN] = {
	0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7, 0x5a,
	0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a,
};
static const uint8_t bob_private[WG_KEY_LEN] = {
	0x5d, 0xab, 0x08, 0x7e, 0x62, 0x4a, 0x8a, 0x4b, 0x79, 0xe1, 0x7f, 0x8b, 0x83, 0x80, 0x0e, 0xe6,
	0x6f, 0x3b, 0xb1, 0x29, 0x26, 0x18, 0xb6, 0xfd, 0x1c, 0x2f, 0x8b, 0x27, 0xff, 0x88, 0xe0, 0xeb,
};
static const uint8_t bob_public[WG_KEY_LEN] = {
	0xde, 0x9e, 0xdb, 0x7d, 0x7b, 0x7d, 0xc1, 0xb4, 0xd3, 0x5b, 0x61, 0xc2, 0xec, 0xe4, 0x35, 0x37,
	0x3f, 0x83, 0x43, 0xc8, 0x5b, 0x78, 0x67, 0x4d, 0xad, 0xfc, 0x7e, 0x14, 0x6f, 0x88, 0x2b, 0x4f,
};
static const uint8_t shared[WG_KEY_LEN] = {
	0x4a, 0x5d, 0x9d, 0x5b, 0xa4, 0xce, 0x2d, 0xe1, 0x72, 0x8e, 0x3b, 0xf4, 0x80, 0x35, 0x0f, 0x25,
	0xe0, 0x7e, 0x21, 0xc9, 0x47, 0xd1, 0x9e, 0x33, 0x76, 0xf0, 0x9b, 0x3c, 0x1e, 0x16, 0x17, 0x42,
};
/* From the openssl command line, independently of our code:
 * openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:SHARED
 *             -kdfopt info:"wg-rp api request mac v1" HKDF */
static const uint8_t mac_key[AUTH_KEY_LEN] = {
	0xfc, 0xd8, 0xfb, 0x36, 0xa6, 0x7e, 0xdc, 0xfe, 0xb4, 0x49, 0x00, 0x63, 0xcd, 0x96, 0xa3, 0x4f,
	0x52, 0x04, 0x79, 0x4b, 0x99, 0xc3, 0x81, 0xf4, 0x16, 0xda, 0x53, 0x49, 0xb5, 0x9e, 0xa7, 0xeb,
};
static const uint8_t nonce[AUTH_NONCE_LEN] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static const char body[] = "{\"local_addr\":\"127.0.0.1:3000\",\"remote_port\":3000,\"client_port\":41234}";
#define TARGET "/api/v1/port-mappings"
#define T0 1764100000
/* openssl mac -digest SHA256 -macopt hexkey:MAC_KEY -in CANONICAL HMAC */
#define MAC_HEX "f6da2257061e3a28725f359f5d858824992cc0eb1b1e7128454c38083bcb077f"
#define NONCE_HEX "000102030405060708090a0b0c0d0e0f"

static void shared_secret_is_the_same_from_either_side(void **state)
{
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN];

	(void)state;
	assert_int_equal(auth_shared_secret(a, alice_private, bob_public), 0);
	assert_int_equal(auth_shared_secret(b, bob_private, alice_public), 0);
	assert_memory_equal(a, shared, WG_KEY_LEN);
	assert_memory_equal(b, shared, WG_KEY_LEN);
}

static void refuses_a_low_order_public_key(void **state)
{
	static const uint8_t zero[WG_KEY_LEN];
	uint8_t out[WG_KEY_LEN], key[AUTH_KEY_LEN];

	(void)state;
	assert_int_equal(auth_shared_secret(out, alice_private, zero), -EINVAL);
	assert_int_equal(auth_derive_key(key, alice_private, zero), -EINVAL);
}

static void derives_the_mac_key_with_hkdf(void **state)
{
	uint8_t a[AUTH_KEY_LEN], b[AUTH_KEY_LEN];

	(void)state;
	assert_int_equal(auth_derive_key(a, alice_private, bob_public), 0);
	assert_int_equal(auth_derive_key(b, bob_private, alice_public), 0);
	assert_memory_equal(a, mac_key, AUTH_KEY_LEN);
	assert_memory_equal(b, mac_key, AUTH_KEY_LEN);
}

static void canonical_string_is_as_documented(void **state)
{
	char head[256];
	int n = auth_canonical_head(head, sizeof(head), "POST", TARGET "?x=1", T0, nonce);

	(void)state;
	assert_int_equal(n, (int)strlen(head));
	assert_string_equal(head, "wg-rp-hmac-sha256-v1\nPOST\n/api/v1/port-mappings?x=1\n1764100000\n"
				  "000102030405060708090a0b0c0d0e0f\n");
	assert_int_equal(auth_canonical_head(head, 20, "POST", TARGET, T0, nonce), -ENOSPC);
}

static void mac_matches_the_openssl_command_line(void **state)
{
	struct auth_proof p;

	(void)state;
	assert_int_equal(auth_proof_parse(&p, "1764100000", NONCE_HEX, MAC_HEX, NULL), 0);
	assert_int_equal(p.timestamp, T0);
	assert_memory_equal(p.nonce, nonce, AUTH_NONCE_LEN);
	assert_int_equal(auth_check(&p, mac_key, "POST", TARGET, body, strlen(body), T0, NULL), 0);
}

static void signature_round_trips(void **state)
{
	char ts[24], n[AUTH_NONCE_HEX_LEN + 1], sig[AUTH_MAC_HEX_LEN + 1], n2[AUTH_NONCE_HEX_LEN + 1];
	struct auth_proof p;

	(void)state;
	assert_int_equal(auth_sign(ts, n, sig, mac_key, "DELETE", TARGET "?port=3000", NULL, 0, T0), 0);
	assert_string_equal(ts, "1764100000");
	assert_int_equal(strlen(n), AUTH_NONCE_HEX_LEN);
	assert_int_equal(strlen(sig), AUTH_MAC_HEX_LEN);
	assert_int_equal(auth_proof_parse(&p, ts, n, sig, NULL), 0);
	assert_int_equal(auth_check(&p, mac_key, "DELETE", TARGET "?port=3000", "", 0, T0 + 10, NULL), 0);
	/* Every request a fresh nonce. */
	assert_int_equal(auth_sign(ts, n2, sig, mac_key, "DELETE", TARGET, NULL, 0, T0), 0);
	assert_string_not_equal(n, n2);
}

static void detects_every_kind_of_tampering(void **state)
{
	struct auth_proof p, q;
	struct errbuf e;
	char tampered[sizeof(body)];

	(void)state;
	assert_int_equal(auth_proof_parse(&p, "1764100000", NONCE_HEX, MAC_HEX, NULL), 0);
	assert_int_equal(auth_check(&p, mac_key, "DELETE", TARGET, body, strlen(body), T0, &e), -EACCES);
	assert_string_equal(e.msg, "the signature does not match this request and the client's key");
	assert_int_equal(auth_check(&p, mac_key, "POST", TARGET "?port=1", body, strlen(body), T0, &e),
			 -EACCES);
	memcpy(tampered, body, sizeof(body));
	tampered[sizeof(body) - 4] ^= 1; /* another client_port */
	assert_int_equal(auth_check(&p, mac_key, "POST", TARGET, tampered, strlen(body), T0, &e),
			 -EACCES);
	assert_int_equal(auth_check(&p, mac_key, "POST", TARGET, body, strlen(body) - 1, T0, &e),
			 -EACCES);
	q = p;
	q.timestamp++;
	assert_int_equal(auth_check(&q, mac_key, "POST", TARGET, body, strlen(body), T0, &e), -EACCES);
	q = p;
	q.nonce[0] ^= 1;
	assert_int_equal(auth_check(&q, mac_key, "POST", TARGET, body, strlen(body), T0, &e), -EACCES);
	q = p;
	q.mac[31] ^= 0x80;
	assert_int_equal(auth_check(&q, mac_key, "POST", TARGET, body, strlen(body), T0, &e), -EACCES);
	assert_int_equal(auth_check(&p, shared, "POST", TARGET, body, strlen(body), T0, &e), -EACCES);
}

static void refuses_a_timestamp_out_of_the_window(void **state)
{
	struct auth_proof p;
	struct errbuf e;

	(void)state;
	assert_int_equal(auth_proof_parse(&p, "1764100000", NONCE_HEX, MAC_HEX, NULL), 0);
	assert_int_equal(auth_check(&p, mac_key, "POST", TARGET, body, strlen(body), T0 + 300, &e), 0);
	assert_int_equal(auth_check(&p, mac_key, "POST", TARGET, body, strlen(body), T0 - 300, &e), 0);
	assert_int_equal(auth_check(&p, mac_key, "POST", TARGET, body, strlen(body), T0 + 301, &e),
			 -EACCES);
	assert_contains(e.msg, "more than 300 s from the server's clock");
	assert_int_equal(auth_check(&p, mac_key, "POST", TARGET, body, strlen(body), T0 - 301, &e),
			 -EACCES);
}

static void parses_headers_strictly(void **state)
{
	static const char *const bad_ts[] = { "", "-1", "+1", "01", "1.5", "1e9", " 1",
					      "1234567890123456789", "12a" };
	static const char *const bad_hex[] = { "", "000102030405060708090A0B0C0D0E0F",
					       "000102030405060708090a0b0c0d0e0", "000102030405060708090a0b0c0d0e0f0",
					       "000102030405060708090a0b0c0d0e0g" };
	struct auth_proof p;
	struct errbuf e;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(bad_ts); i++)
		assert_int_equal(auth_proof_parse(&p, bad_ts[i], NONCE_HEX, MAC_HEX, &e), -EINVAL);
	assert_contains(e.msg, AUTH_HEADER_TIMESTAMP);
	for (size_t i = 0; i < N_ELEMS(bad_hex); i++)
		assert_int_equal(auth_proof_parse(&p, "1", bad_hex[i], MAC_HEX, &e), -EINVAL);
	assert_contains(e.msg, AUTH_HEADER_NONCE);
	assert_int_equal(auth_proof_parse(&p, "1", NONCE_HEX, NONCE_HEX, &e), -EINVAL);
	assert_contains(e.msg, AUTH_HEADER_SIGNATURE);
	assert_int_equal(auth_proof_parse(&p, NULL, NONCE_HEX, MAC_HEX, &e), -EINVAL);
	assert_string_equal(e.msg, "missing header " AUTH_HEADER_TIMESTAMP);
	assert_int_equal(auth_proof_parse(&p, "0", NONCE_HEX, MAC_HEX, &e), 0);
}

static void nonces_refuse_replays_until_they_expire(void **state)
{
	struct auth_nonces set = { 0 };
	struct auth_proof p = { .timestamp = T0 };

	(void)state;
	assert_int_equal(auth_nonces_add(&set, &p, T0), 0);
	assert_int_equal(auth_nonces_add(&set, &p, T0 + 1), -EALREADY);
	assert_int_equal(auth_nonces_add(&set, &p, T0 + AUTH_MAX_SKEW_S), -EALREADY);
	/* Past the window the timestamp alone refuses it; the nonce is let go. */
	assert_int_equal(auth_nonces_add(&set, &p, T0 + AUTH_MAX_SKEW_S + 1), 0);
	auth_nonces_clear(&set);
}

static void nonces_are_bounded_and_expire(void **state)
{
	struct auth_nonces set = { 0 };
	struct auth_proof p = { .timestamp = T0 };
	uint32_t i;

	(void)state;
	for (i = 0; i < AUTH_NONCES_MAX; i++) {
		memcpy(p.nonce, &i, sizeof(i));
		assert_int_equal(auth_nonces_add(&set, &p, T0), 0);
	}
	memcpy(p.nonce, &i, sizeof(i));
	assert_int_equal(auth_nonces_add(&set, &p, T0), -EBUSY);
	assert_true(set.n <= AUTH_NONCES_MAX);
	/* Once their timestamps are old, they make room. */
	p.timestamp = T0 + 1000;
	assert_int_equal(auth_nonces_add(&set, &p, T0 + 1000), 0);
	assert_true(set.n < 8);
	auth_nonces_clear(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shared_secret_is_the_same_from_either_side),
		cmocka_unit_test(refuses_a_low_order_public_key),
		cmocka_unit_test(derives_the_mac_key_with_hkdf),
		cmocka_unit_test(canonical_string_is_as_documented),
		cmocka_unit_test(mac_matches_the_openssl_command_line),
		cmocka_unit_test(signature_round_trips),
		cmocka_unit_test(detects_every_kind_of_tampering),
		cmocka_unit_test(refuses_a_timestamp_out_of_the_window),
		cmocka_unit_test(parses_headers_strictly),
		cmocka_unit_test(nonces_refuse_replays_until_they_expire),
		cmocka_unit_test(nonces_are_bounded_and_expire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
