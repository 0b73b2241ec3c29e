/*
 * The notification-controller (DESIGN.md §3.4, §5): reconciles Alerts (Ready, lastSent),
 * forwards the core/v1 Events about Stoker kinds that match an Alert to its provider, and
 * serves the webhook receiver (receiver.h) on its own port.
 *
 * Events are watched through an informer; one that is new (its lastTimestamp not older
 * than the controller's start, so a restart does not replay history) is matched against
 * every Alert on the loop thread, and each match becomes a delivery job for the
 * dispatcher thread: read the provider Secret, render (providers.h), POST with the
 * provider's timeout, retry connection errors and 5xx (3 attempts, 1 s then 2 s apart),
 * then write status.lastSent, or record a Warning NotificationDispatchFailed on the Alert.
 * The same object, reason and message is sent at most once per Alert in 5 minutes.
 */
#ifndef NOTIFCTL_H
#define NOTIFCTL_H

#include <stdint.h>

#include "stk/flags.h"

struct notifctl_options {
	const struct stk_daemon_opts *daemon;
	const char *receiver_addr; /* --receiver-bind-address */
	int64_t receiver_rate;	   /* --receiver-rate: requests/s per client (0: default 10) */
	int64_t receiver_burst;	   /* --receiver-burst (0: default 20) */
};

/* Runs until SIGTERM/SIGINT; returns the exit code. Main thread. */
int notifctl_run(const struct notifctl_options *o);

#endif
