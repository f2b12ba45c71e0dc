#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wgrp/notify.h"

#ifdef WGRP_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

/* A status line longer than this is cut: it is one line in systemctl status. */
#define STATUS_MAX 256

/* Callers report whenever something may have changed; only changes are sent. */
static char last_status[STATUS_MAX];

static void __attribute__((format(printf, 2, 0))) send_state(const char *state, const char *fmt,
								va_list ap)
{
	char status[STATUS_MAX];

	vsnprintf(status, sizeof(status), fmt, ap);
	if (!*state && !strcmp(status, last_status))
		return;
	memcpy(last_status, status, sizeof(status));
	sd_notifyf(0, "%sSTATUS=%s", state, status);
}

void notify_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_state("READY=1\n", fmt, ap);
	va_end(ap);
}

void notify_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_state("", fmt, ap);
	va_end(ap);
}

void notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void notify_reloading(void)
{
	struct timespec now;

	/* Type=notify-reload wants the time with it; Type=notify takes it too. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)now.tv_sec * 1000000 + (unsigned long long)now.tv_nsec / 1000);
}

void notify_reloaded(void)
{
	sd_notify(0, "READY=1");
}

static void ping(struct loop *l, struct loop_timer *t)
{
	struct notify_watchdog *w = t->data;

	sd_notify(0, "WATCHDOG=1");
	loop_timer_start(l, t, w->interval_ms);
}

void notify_watchdog_start(struct notify_watchdog *w, struct loop *l)
{
	uint64_t usec;

	loop_timer_init(&w->timer, ping, w);
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return;
	w->interval_ms = usec / 2000 ? usec / 2000 : 1;
	loop_timer_start(l, &w->timer, w->interval_ms);
}

void notify_watchdog_stop(struct notify_watchdog *w, struct loop *l)
{
	loop_timer_stop(l, &w->timer);
}

#else

void notify_ready(const char *fmt, ...)
{
	(void)fmt;
}

void notify_status(const char *fmt, ...)
{
	(void)fmt;
}

void notify_stopping(void)
{
}

void notify_reloading(void)
{
}

void notify_reloaded(void)
{
}

void notify_watchdog_start(struct notify_watchdog *w, struct loop *l)
{
	(void)w;
	(void)l;
}

void notify_watchdog_stop(struct notify_watchdog *w, struct loop *l)
{
	(void)w;
	(void)l;
}

#endif
