/* A clock the test moves by hand, for loop_set_clock(): one per test
 * program, which includes this once. */
#pragma once

#include <stdint.h>

static uint64_t fake_now;

static uint64_t fake_clock(void *data)
{
	(void)data;
	return fake_now;
}
