/*
 * The profile-controller (DESIGN.md §3.2, §5): validates each SyncProfile into Accepted,
 * counts the gateway pods annotated with it (gatewayCount, gateways), evaluates
 * DependenciesMet from what the dependency profile's gateways report in the Stokers'
 * status ConfigMaps, and aggregates their dry-run diffs. Reads everything from informer
 * caches of SyncProfiles, Pods, Stokers and the Stoker ConfigMaps.
 */
#ifndef PROFCTL_H
#define PROFCTL_H

#include "stk/flags.h"

struct profctl_options {
	const struct stk_daemon_opts *daemon;
	const char *identity; /* leader-election identity; NULL: hostname_pid */
};

/* Runs the daemon until SIGTERM; returns the exit code. Main thread. */
int profctl_run(const struct profctl_options *o);

#endif
