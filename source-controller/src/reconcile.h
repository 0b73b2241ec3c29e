/*
 * Reconciling one GitSource: read it and its Secrets fresh from the API server, resolve
 * its ref, fetch the commit into the source's cached clone when it changed, pack the
 * artifact, and publish status.artifact and the conditions of CONTRACTS.md. Runs on a
 * work-queue thread; one reconcile per GitSource at a time (the queue guarantees it).
 */
#ifndef SRCCTL_RECONCILE_H
#define SRCCTL_RECONCILE_H

#include <stdint.h>

#include "stk/events.h"
#include "stk/kube.h"
#include "stk/manager.h"
#include "stk/metrics.h"

struct srcctl_config {
	stk_kube *kube;
	stk_recorder *recorder;	  /* may be NULL (no events) */
	const char *storage_path; /* <storage>/<ns>/<name>/{repo.git,<sha>.tar.gz} */
	const char *base_url;	  /* prefix of status.artifact.url */
	uint64_t max_artifact_size;
	int keep_artifacts; /* artifacts kept per source (default 2) */
	/* Metrics (CONTRACTS.md), or NULL: */
	stk_metrics_family
		*fetch_duration; /* stoker_source_fetch_duration_seconds{name,namespace} */
	stk_metrics_family *artifact_bytes; /* stoker_source_artifact_bytes{name,namespace} */
	stk_manager *mgr;		    /* publishes stoker_condition; may be NULL */
};

/*
 * Reconciles GitSource ns/name. Returns 0 with *requeue_after_ms set to the source's
 * interval (0: do not requeue, e.g. suspended or stalled), or a negative STK code for a
 * failure worth retrying with backoff (the status already says what failed). Worker
 * thread; blocking.
 */
int srcctl_reconcile(const struct srcctl_config *cfg, const char *ns, const char *name,
		     uint64_t *requeue_after_ms, stk_err *err);

/* mkdir -p with mode 0750. 0, or -1 with errno set. Any thread. */
int srcctl_mkdir_p(const char *path);

#endif
