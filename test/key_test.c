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

/* RFC 7748, section 6.1: Alice's and Bob's key pairs (wg pubkey agrees). */
static const uint8_t rfc7748_private[2][WG_KEY_LEN] = {
	{ 0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1,
	  0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0,
	  0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a },
	{ 0x5d, 0xab, 0x08, 0x7e, 0x62, 0x4a, 0x8a, 0x4b, 0x79, 0xe1, 0x7f,
	  0x8b, 0x83, 0x80, 0x0e, 0xe6, 0x6f, 0x3b, 0xb1, 0x29, 0x26, 0x18,
	  0xb6, 0xfd, 0x1c, 0x2f, 0x8b, 0x27, 0xff, 0x88, 0xe0, 0xeb },
};
static const uint8_t rfc7748_public[2][WG_KEY_LEN] = {
	{ 0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d,
	  0xdc, 0xb4, 0x3e, 0xf7, 0x5a, 0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38,
	  0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a },
	{ 0xde, 0x9e, 0xdb, 0x7d, 0x7b, 0x7d, 0xc1, 0xb4, 0xd3, 0x5b, 0x61,
	  0xc2, 0xec, 0xe4, 0x35, 0x37, 0x3f, 0x83, 0x43, 0xc8, 0x5b, 0x78,
	  0x67, 0x4d, 0xad, 0xfc, 0x7e, 0x14, 0x6f, 0x88, 0x2b, 0x4f },
};

static void derives_public_keys_of_rfc7748(void **state)
{
	uint8_t pub[WG_KEY_LEN];
	char text[WG_KEY_B64_LEN + 1];

	(void)state;
	for (size_t i = 0; i < N_ELEMS(rfc7748_private); i++) {
		assert_int_equal(key_public(pub, rfc7748_private[i]), 0);
		assert_memory_equal(pub, rfc7748_public[i], WG_KEY_LEN);
	}
	/* And as wg pubkey prints it for the key of wg genkey above. */
	assert_int_equal(key_public(pub, key_bytes), 0);
	key_to_base64(text, pub);
	assert_string_equal(text, "jGna1tTZdNd8oclS6pmFyL20tybzLmxpevibaBplzj0=");
}

/* Clamped as wg genkey stores it, and different each time. */
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
