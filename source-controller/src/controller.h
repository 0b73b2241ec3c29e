/* The source-controller daemon: wiring of the runtime around srcctl_reconcile. */
#ifndef SRCCTL_CONTROLLER_H
#define SRCCTL_CONTROLLER_H

#include "stk/flags.h"

struct srcctl_options {
	const struct stk_daemon_opts *daemon;
	const char *artifact_addr;
	const char *artifact_base_url; /* NULL: http://<artifact address> */
	const char *storage_path;
	const char *identity; /* leader-election identity; NULL: hostname_pid */
};

/*
 * Runs the controller until SIGTERM/SIGINT (or loss of leadership): an informer on
 * GitSources feeding a work queue of reconciles, the artifact server, /healthz /readyz
 * and /metrics, and leader election when asked for. Returns the process exit code.
 * Main thread.
 */
int srcctl_run(const struct srcctl_options *o);

#endif
