#include "wgrp/liveness.h"

bool liveness_tunnel_dead(const struct timespec *handshake, const struct timespec *now,
			  uint32_t grace_s)
{
	if (!handshake->tv_sec && !handshake->tv_nsec)
		return false;
	/* Whole seconds: a handshake a fraction past the limit waits a check more. */
	return now->tv_sec - handshake->tv_sec > (time_t)grace_s + LIVENESS_SESSION_S;
}
