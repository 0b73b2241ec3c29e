/*
 * The agent daemon (DESIGN.md §5): learns what to sync from the metadata ConfigMap the
 * sync-controller writes, fetches the content, runs the sync engine, asks the gateway to
 * rescan, and reports in its own key of the status ConfigMap.
 *
 * Triggers: a watch on stoker-metadata-<cr> (one informer, field selector on the name),
 * a fallback timer at the profile's syncPeriod, and a work queue with one worker and one
 * key, so at most one sync runs and at most one more waits behind it (coalescing).
 */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include "config.h"
#include "stk/flags.h"

struct agent_options {
	const struct agent_config *cfg;
	const char *health_addr;  /* ":8082" */
	const char *metrics_addr; /* ":8083" */
	enum stk_log_level log_level;
};

/* Runs the daemon until SIGTERM/SIGINT; returns the exit code. Main thread. */
int agent_run(const struct agent_options *o);

#endif
