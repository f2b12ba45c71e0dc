/* A tunnel is dead once its latest handshake is older than the grace and a
 * whole WireGuard session; never before, and never for a peer that has not
 * made one. */
#include "test.h"
#include "wgrp/liveness.h"

static bool dead_at(time_t handshake, time_t now, uint32_t grace)
{
	struct timespec h = { .tv_sec = handshake }, n = { .tv_sec = now };

	return liveness_tunnel_dead(&h, &n, grace);
}

static void dead_only_past_the_grace_and_a_session(void **state)
{
	(void)state;
	assert_false(dead_at(1000, 1000, 60));
	assert_false(dead_at(1000, 1000 + 60 + LIVENESS_SESSION_S, 60));
	assert_true(dead_at(1000, 1000 + 60 + LIVENESS_SESSION_S + 1, 60));
	assert_true(dead_at(1000, 1000 + 86400, 60));
	/* A longer --heartbeat-timeout waits longer. */
	assert_false(dead_at(1000, 1000 + 300 + LIVENESS_SESSION_S, 300));
}

static void a_peer_without_a_handshake_is_not_judged(void **state)
{
	(void)state;
	assert_false(dead_at(0, 1000000, 60));
}

static void a_clock_set_back_kills_nothing(void **state)
{
	(void)state;
	assert_false(dead_at(5000, 1000, 60));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dead_only_past_the_grace_and_a_session),
		cmocka_unit_test(a_peer_without_a_handshake_is_not_judged),
		cmocka_unit_test(a_clock_set_back_kills_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
