/* Rate limits of repeated warnings: a burst per interval, a count of what
 * was held back, and one client's flood never silencing another's. */
#include "test.h"
#include "wgrp/ratelimit.h"

#define MIN 60000u

static void a_burst_passes_then_one_interval_is_silent(void **state)
{
	struct ratelimit r = RATELIMIT_INIT(5 * MIN, 3);
	unsigned held = 99;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_true(ratelimit_allow(&r, 1000 + (uint64_t)i, &held));
		assert_int_equal(held, 0);
	}
	for (int i = 0; i < 10; i++)
		assert_false(ratelimit_allow(&r, 2000 + (uint64_t)i * 1000, &held));
	/* Just before the interval ends, still silent. */
	assert_false(ratelimit_allow(&r, 1000 + 5 * MIN - 1, &held));
	/* A new interval: the next line says how many were held back. */
	assert_true(ratelimit_allow(&r, 1000 + 5 * MIN, &held));
	assert_int_equal(held, 11);
	assert_true(ratelimit_allow(&r, 1000 + 5 * MIN + 1, &held));
	assert_int_equal(held, 0);
}

static void a_clock_starting_at_zero_works(void **state)
{
	struct ratelimit r = RATELIMIT_INIT(1000, 1);
	unsigned held;

	(void)state;
	assert_true(ratelimit_allow(&r, 0, &held));
	assert_false(ratelimit_allow(&r, 999, &held));
	assert_true(ratelimit_allow(&r, 1000, &held));
	assert_int_equal(held, 1);
}

static struct ip_addr v4(uint8_t last)
{
	struct ip_addr a = { .family = AF_INET };

	a.v4.s_addr = htonl(0x0a630000u | last);
	return a;
}

static void each_client_has_its_own_limit(void **state)
{
	struct ratelimit_table *t;
	struct ip_addr greedy = v4(2), other = v4(3);
	unsigned held;

	(void)state;
	assert_int_equal(ratelimit_table_new(&t, 4, 5 * MIN, 3), 0);
	for (int i = 0; i < 3; i++)
		assert_true(ratelimit_table_allow(t, &greedy, 10, &held));
	for (int i = 0; i < 100; i++)
		assert_false(ratelimit_table_allow(t, &greedy, 20, &held));
	assert_true(ratelimit_table_allow(t, &other, 30, &held));
	assert_int_equal(held, 0);
	assert_true(ratelimit_table_allow(t, &greedy, 10 + 5 * MIN, &held));
	assert_int_equal(held, 100);
	ratelimit_table_free(t);
}

/* Past max_clients, the quietest client is forgotten: it starts afresh, and
 * a client seen recently keeps its count. */
static void many_clients_cost_a_bounded_table(void **state)
{
	struct ratelimit_table *t;
	struct ip_addr loud = v4(1), a;
	unsigned held;

	(void)state;
	assert_int_equal(ratelimit_table_new(&t, 2, 5 * MIN, 1), 0);
	assert_true(ratelimit_table_allow(t, &loud, 0, &held));
	for (uint8_t i = 10; i < 200; i++) {
		a = v4(i);
		assert_true(ratelimit_table_allow(t, &a, 2u * i, &held));
		/* The loud one speaks after each newcomer, and so is never the quietest. */
		assert_false(ratelimit_table_allow(t, &loud, 2u * i + 1, &held));
	}
	/* Client 10 was forgotten long ago: a fresh start. */
	a = v4(10);
	assert_true(ratelimit_table_allow(t, &a, 500, &held));
	assert_int_equal(held, 0);
	ratelimit_table_free(t);
	ratelimit_table_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_burst_passes_then_one_interval_is_silent),
		cmocka_unit_test(a_clock_starting_at_zero_works),
		cmocka_unit_test(each_client_has_its_own_limit),
		cmocka_unit_test(many_clients_cost_a_bounded_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
