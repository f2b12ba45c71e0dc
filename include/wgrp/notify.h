/* Tells the service manager (systemd, Type=notify) how the daemon is doing:
 * ready, a one-line status for `systemctl status`, stopping, and watchdog
 * pings from the event loop. Without a manager (NOTIFY_SOCKET unset), or in a
 * build without libsystemd, every call does nothing. */
#pragma once

#include <stdint.h>

#include "wgrp/loop.h"

void notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notify_stopping(void);
/* Around a reload: RELOADING=1 before, READY=1 after (whether it worked or
 * not: the daemon runs either way). */
void notify_reloading(void);
void notify_reloaded(void);

/* Pings at half the manager's WatchdogSec, from the loop: a loop that hangs
 * stops the pings and the manager restarts the daemon. */
struct notify_watchdog {
	struct loop_timer timer;
	uint64_t interval_ms;
};

void notify_watchdog_start(struct notify_watchdog *w, struct loop *l);
void notify_watchdog_stop(struct notify_watchdog *w, struct loop *l);
