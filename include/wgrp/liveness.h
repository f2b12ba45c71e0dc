/* Whether a peer's tunnel is alive, from what WireGuard itself knows: its
 * latest handshake. A peer that sends anything renews its session before
 * the old one's keys are dropped, so a handshake older than a whole session
 * means nothing has come through for that long, whatever the API heard
 * (heartbeats replayed by a stuck process, or not through this tunnel). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* WireGuard's REJECT_AFTER_TIME: no session's keys serve longer. */
#define LIVENESS_SESSION_S 180

/* True when handshake (zero: never, which says nothing) is older than
 * grace_s (rps: --heartbeat-timeout) and a whole session at now. */
bool liveness_tunnel_dead(const struct timespec *handshake, const struct timespec *now,
			  uint32_t grace_s);
