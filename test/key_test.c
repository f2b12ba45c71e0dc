#include <errno.h>

#include "test.h"
#include "wgrp/key.h"

/* Made by wg genkey; the bytes are what base64 -d gives. */
static const char key_text[] = "YOYltDBmcdOlwCMqExR920sESriPJEmyZKQDANcMCFY=";
static const uint8_t key_bytes[WG_KEY_LEN] = {
	0x60, 0xe6, 0x25, 0xb4, 0x30, 0x66, 0x71, 0xd3, 0xa5, 0xc0, 0x23,
	0x2a, 0x13, 0x14, 0x7d, 0xdb, 0x4b, 0x04, 0x4a, 0xb8, 0x8f, 0x24,
	0x49, 0xb2, 0x64, 0xa4, 0x03, 0x00, 0xd7, 0x0c, 0x08, 0x56,
};

static void decodes_a_key_from_wg_genkey(void **state)
{
	uint8_t key[WG_KEY_LEN];

	(void)state;
	assert_int_equal(key_from_base64(key, key_text, NULL), 0);
	assert_memory_equal(key, key_bytes, WG_KEY_LEN);
}

static void decodes_the_extremes(void **state)
{
	uint8_t key[WG_KEY_LEN], expect[WG_KEY_LEN];

	(void)state;
	memset(expect, 0, sizeof(expect));
	assert_int_equal(key_from_base64(key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL), 0);
	assert_memory_equal(key, expect, WG_KEY_LEN);
	memset(expect, 0xff, sizeof(expect));
	assert_int_equal(key_from_base64(key, "//////////////////////////////////////////8=", NULL), 0);
	assert_memory_equal(key, expect, WG_KEY_LEN);
}

static void refuses_wrong_length_and_padding(void **state)
{
	static const char *const bad[] = {
		"",
		"YOYltDBmcdOlwCMqExR920sESriPJEmyZKQDANcMCFY",   /* no padding */
		"YOYltDBmcdOlwCMqExR920sESriPJEmyZKQDANcMCFY==", /* too long */
		"YOYltDBmcdOlwCMqExR920sESriPJEmyZKQDANcMCFYA",  /* no '=' at the end */
		"YOYltDBmcdOlwCMqExR920sESriPJEmyZKQDANcMCF=",   /* 31 bytes */
	};
	struct errbuf e;
	uint8_t key[WG_KEY_LEN];

	(void)state;
	for (size_t i = 0; i < N_ELEMS(bad); i++)
		assert_int_equal(key_from_base64(key, bad[i], &e), -EINVAL);
	key_from_base64(key, "abc", &e);
	assert_contains(e.msg, "expected 44 characters of base64");
	assert_contains(e.msg, "got 3 characters");
}

static void refuses_characters_outside_base64(void **state)
{
	struct errbuf e;
	uint8_t key[WG_KEY_LEN];

	(void)state;
	assert_int_equal(key_from_base64(key, "YOYltDBmcdOlwCMqExR920sE-riPJEmyZKQDANcMCFY=", &e),
			 -EINVAL);
	assert_string_equal(e.msg, "invalid key: character 25 is not base64");
	assert_int_equal(key_from_base64(key, "YOYltDBmcdOlwCMqExR920sE riPJEmyZKQDANcMCFY=", &e),
			 -EINVAL);
}

/* wg(8) refuses a key whose unused last bits are set: it is not what any
 * encoder produces, so it is a typo. */
static void refuses_non_canonical_encodings(void **state)
{
	struct errbuf e;
	uint8_t key[WG_KEY_LEN];

	(void)state;
	assert_int_equal(key_from_base64(key, "YOYltDBmcdOlwCMqExR920sESriPJEmyZKQDANcMCFZ=", &e),
			 -EINVAL);
	assert_string_equal(e.msg, "invalid key: not canonical base64");
}

static void never_repeats_the_key_in_messages(void **state)
{
	static const char secret[] = "YOYltDBmcdOlwCMqExR920sESriPJEmyZKQDANcMCF!=";
	struct errbuf e;
	uint8_t key[WG_KEY_LEN];

	(void)state;
	assert_int_equal(key_from_base64(key, secret, &e), -EINVAL);
	assert_null(strstr(e.msg, "YOYlt"));
}

static void encodes_as_wg_prints(void **state)
{
	char text[WG_KEY_B64_LEN + 1];
	uint8_t key[WG_KEY_LEN];

	(void)state;
	key_to_base64(text, key_bytes);
	assert_string_equal(text, key_text);
	memset(key, 0xff, sizeof(key));
	key_to_base64(text, key);
	assert_string_equal(text, "//////////////////////////////////////////8=");
}

/* What a message about a value must not quote: a key, or most of one. */
static void key_lookalikes_are_runs_of_twenty_base64_symbols(void **state)
{
	(void)state;
	assert_true(key_lookalike(key_text));
	assert_true(key_lookalike("10.0.0.1/24, YOYltDBmcdOlwCMqExR920sE"));
	assert_true(key_lookalike("abcdefghij+/0123456789"));
	assert_false(key_lookalike("bcdefghij0123456789"));
	assert_false(key_lookalike("server.example.com:51820"));
	assert_false(key_lookalike("fd00:1234:5678:9abc::1/128"));
	assert_false(key_lookalike("YOYltDBmcdOlwCMqExR 920sESriPJEmyZKQDAN-cMCFY="));
	assert_false(key_lookalike(""));
}

/* RFC 7748, section 6.1: Alice's and Bob's private and public keys (77076d0a...
 * and 8520f009..., 5dab087e... and de9edb7d...) in base64; and a key of wg
 * genkey with what wg pubkey prints for it. */
static const char *const pairs[][2] = {
	{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=", "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=" },
	{ "XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os=", "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=" },
	{ key_text, "jGna1tTZdNd8oclS6pmFyL20tybzLmxpevibaBplzj0=" },
};

static void derives_public_keys_of_rfc7748(void **state)
{
	uint8_t private_key[WG_KEY_LEN], pub[WG_KEY_LEN];
	char text[WG_KEY_B64_LEN + 1];

	(void)state;
	for (size_t i = 0; i < N_ELEMS(pairs); i++) {
		assert_int_equal(key_from_base64(private_key, pairs[i][0], NULL), 0);
		assert_int_equal(key_public(pub, private_key), 0);
		key_to_base64(text, pub);
		assert_string_equal(text, pairs[i][1]);
	}
}

static void generates_clamped_keys(void **state)
{
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN], pub[WG_KEY_LEN];

	(void)state;
	assert_int_equal(key_generate(a), 0);
	assert_int_equal(key_generate(b), 0);
	assert_memory_not_equal(a, b, WG_KEY_LEN);
	assert_int_equal(a[0] & 7, 0);
	assert_int_equal(a[31] & 0xc0, 0x40);
	assert_int_equal(key_public(pub, a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decodes_a_key_from_wg_genkey),
		cmocka_unit_test(decodes_the_extremes),
		cmocka_unit_test(refuses_wrong_length_and_padding),
		cmocka_unit_test(refuses_characters_outside_base64),
		cmocka_unit_test(refuses_non_canonical_encodings),
		cmocka_unit_test(never_repeats_the_key_in_messages),
		cmocka_unit_test(encodes_as_wg_prints),
		cmocka_unit_test(key_lookalikes_are_runs_of_twenty_base64_symbols),
		cmocka_unit_test(derives_public_keys_of_rfc7748),
		cmocka_unit_test(generates_clamped_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
