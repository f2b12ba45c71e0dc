#include <errno.h>

#include "test.h"
#include "wgrp/num.h"

static void accepts_numbers_within_bounds(void **state)
{
	uint32_t v;

	(void)state;
	assert_int_equal(num_parse_u32("0", 0, 10, &v, NULL), 0);
	assert_int_equal(v, 0);
	assert_int_equal(num_parse_u32("4294967295", 0, UINT32_MAX, &v, NULL), 0);
	assert_int_equal(v, UINT32_MAX);
	assert_int_equal(num_parse_u32("007", 0, 10, &v, NULL), 0);
	assert_int_equal(v, 7);
}

static void refuses_what_is_not_a_plain_number(void **state)
{
	static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1x", "0x10", "1.0", "١" };
	struct errbuf e;
	uint32_t v;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(bad); i++)
		assert_int_equal(num_parse_u32(bad[i], 0, 100, &v, &e), -EINVAL);
	num_parse_u32("1x", 0, 100, &v, &e);
	assert_string_equal(e.msg, "\"1x\" is not a number");
}

static void refuses_out_of_range_without_overflowing(void **state)
{
	struct errbuf e;
	uint32_t v;

	(void)state;
	assert_int_equal(num_parse_u32("11", 0, 10, &v, &e), -ERANGE);
	assert_string_equal(e.msg, "\"11\" is out of range (0-10)");
	assert_int_equal(num_parse_u32("4294967296", 0, UINT32_MAX, &v, NULL), -ERANGE);
	assert_int_equal(num_parse_u32("99999999999999999999999", 0, UINT32_MAX, &v, NULL),
			 -ERANGE);
}

static void parses_ports(void **state)
{
	uint16_t port;

	(void)state;
	assert_int_equal(num_parse_port("1", &port, NULL), 0);
	assert_int_equal(port, 1);
	assert_int_equal(num_parse_port("65535", &port, NULL), 0);
	assert_int_equal(port, 65535);
	assert_int_equal(num_parse_port("0", &port, NULL), -ERANGE);
	assert_int_equal(num_parse_port("65536", &port, NULL), -ERANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_numbers_within_bounds),
		cmocka_unit_test(refuses_what_is_not_a_plain_number),
		cmocka_unit_test(refuses_out_of_range_without_overflowing),
		cmocka_unit_test(parses_ports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
