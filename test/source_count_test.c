#include <errno.h>

#include "test.h"
#include "wgrp/source_count.h"

static struct ip_addr addr(const char *s)
{
	struct ip_addr a;
	struct errbuf e;

	assert_int_equal(ip_addr_parse(&a, s, &e), 0);
	return a;
}

static void a_source_gets_max_connections_and_others_theirs(void **state)
{
	struct source_count *t;
	struct ip_addr a = addr("198.51.100.2"), b = addr("198.51.100.3");

	(void)state;
	assert_int_equal(source_count_new(&t), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(source_count_take(t, &a, 3), 0);
	assert_int_equal(source_count_take(t, &a, 3), -EBUSY);
	assert_int_equal(source_count_of(t, &a), 3);
	assert_int_equal(source_count_take(t, &b, 3), 0);
	assert_int_equal(source_count_of(t, &b), 1);

	/* A connection that ends makes room for one more. */
	source_count_release(t, &a);
	assert_int_equal(source_count_take(t, &a, 3), 0);
	assert_int_equal(source_count_take(t, &a, 3), -EBUSY);
	source_count_free(t);
}

static void ipv4_and_its_mapped_form_are_one_source(void **state)
{
	struct source_count *t;
	struct ip_addr v4 = addr("203.0.113.9"), mapped = addr("::ffff:203.0.113.9"),
		       v6 = addr("2001:db8::9");

	(void)state;
	assert_int_equal(source_count_new(&t), 0);
	assert_int_equal(source_count_take(t, &v4, 2), 0);
	assert_int_equal(source_count_take(t, &mapped, 2), 0);
	assert_int_equal(source_count_take(t, &v4, 2), -EBUSY);
	assert_int_equal(source_count_take(t, &v6, 2), 0);
	assert_int_equal(source_count_sources(t), 2);
	source_count_free(t);
}

static void sources_without_connections_are_forgotten(void **state)
{
	enum { N = 5000 };
	struct source_count *t;
	struct ip_addr a = addr("2001:db8::");

	(void)state;
	assert_int_equal(source_count_new(&t), 0);
	/* Enough sources to grow the table several times. */
	for (unsigned i = 0; i < N; i++) {
		a.v6.s6_addr[14] = (uint8_t)(i >> 8);
		a.v6.s6_addr[15] = (uint8_t)i;
		assert_int_equal(source_count_take(t, &a, 1), 0);
	}
	assert_int_equal(source_count_sources(t), N);
	for (unsigned i = 0; i < N; i++) {
		a.v6.s6_addr[14] = (uint8_t)(i >> 8);
		a.v6.s6_addr[15] = (uint8_t)i;
		assert_int_equal(source_count_of(t, &a), 1);
		source_count_release(t, &a);
		assert_int_equal(source_count_of(t, &a), 0);
	}
	assert_int_equal(source_count_sources(t), 0);
	source_count_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_source_gets_max_connections_and_others_theirs),
		cmocka_unit_test(ipv4_and_its_mapped_form_are_one_source),
		cmocka_unit_test(sources_without_connections_are_forgotten),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
