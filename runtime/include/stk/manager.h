/*
 * The controller manager: the wiring every Stoker controller shares (controller-runtime's
 * Manager). One event loop, one API client, informer caches per watched namespace, one
 * work queue of "namespace/name" keys reconciled by worker threads, an event recorder,
 * the Prometheus registry with the metrics every daemon exports (CONTRACTS.md:
 * stoker_reconcile_duration_seconds, stoker_reconcile_total, stoker_condition,
 * stoker_leader, stoker_build_info), /healthz /readyz on --health-probe-bind-address,
 * /metrics on --metrics-bind-address, leader election on a Lease, and graceful shutdown.
 *
 * Use: stk_manager_new; stk_manager_cache for each kind the controller reads (their
 * handlers map changes to keys with stk_manager_enqueue); any extra servers; then
 * stk_manager_run, which blocks until SIGTERM/SIGINT or lost leadership. Workers start
 * only while this replica leads, so two replicas never reconcile at once.
 */
#ifndef STK_MANAGER_H
#define STK_MANAGER_H

#include <stdbool.h>
#include <stdint.h>

#include "stk/conditions.h"
#include "stk/err.h"
#include "stk/events.h"
#include "stk/flags.h"
#include "stk/informer.h"
#include "stk/kube.h"
#include "stk/loop.h"
#include "stk/metrics.h"

typedef struct stk_manager stk_manager;
typedef struct stk_cache stk_cache;

/*
 * Reconciles object ns/name of the manager's kind; worker thread, blocking. Returns as a
 * stk_workqueue_fn: 0 (with *requeue_after_ms > 0 to come back later) or a negative STK
 * code to retry with backoff; `err` says why (logged by the manager).
 */
typedef int (*stk_manager_reconcile_fn)(void *arg, const char *ns, const char *name,
					uint64_t *requeue_after_ms, stk_err *err);

struct stk_manager_opts {
	const char *name; /* daemon name: user agent, Lease "<name>-leader-election", events */
	const char *kind; /* the reconciled kind, for metric labels ("Stoker") */
	const struct stk_daemon_opts *daemon; /* kept, not copied: must outlive the manager */
	const char *identity; /* leader-election identity; NULL: "<hostname>_<pid>" */
	stk_manager_reconcile_fn reconcile;
	void *arg;
};

/* Sets up everything but starts nothing. 0 or the first failure. Main thread. */
int stk_manager_new(stk_manager **out, const struct stk_manager_opts *opts, stk_err *err);

/* Frees everything (after stk_manager_run returned, or instead of it). NULL-safe. */
void stk_manager_free(stk_manager *m);

stk_loop *stk_manager_loop(stk_manager *m);
stk_kube *stk_manager_kube(stk_manager *m);
stk_curlm *stk_manager_curlm(stk_manager *m);
stk_metrics *stk_manager_metrics(stk_manager *m);
stk_recorder *stk_manager_recorder(stk_manager *m);
/* The health registry served on --health-probe-bind-address, for the daemon's own checks
 * (stk_health_add before stk_manager_run). */
struct stk_health *stk_manager_health(stk_manager *m);
/* The --watch-namespaces list (empty: all namespaces). */
const struct stk_strlist *stk_manager_namespaces(stk_manager *m);

/*
 * Adds a cache of `io->gvr` (one informer per watched namespace; io->ns is ignored) with
 * handler `h` (may be NULL). The cache is readable from any thread once synced, and the
 * manager's readiness waits for it. Main thread, before stk_manager_run.
 */
int stk_manager_cache(stk_manager *m, const struct stk_informer_opts *io,
		      const struct stk_informer_handler *h, stk_cache **out, stk_err *err);

/* As stk_manager_cache for a cluster-scoped resource: one informer, whatever the watched
 * namespaces (read it with ns ""). */
int stk_manager_cluster_cache(stk_manager *m, const struct stk_informer_opts *io,
			      const struct stk_informer_handler *h, stk_cache **out, stk_err *err);

/* As stk_informer_get / stk_informer_each over the cache's informers. Any thread. */
stk_obj *stk_cache_get(stk_cache *c, const char *ns, const char *name);
int stk_cache_each(stk_cache *c, const char *ns, const char *selector,
		   int (*fn)(stk_obj *obj, void *arg), void *arg, stk_err *err);
bool stk_cache_synced(stk_cache *c);

/* Queues a reconcile of ns/name, now or after `delay_ms`. Any thread. */
void stk_manager_enqueue(stk_manager *m, const char *ns, const char *name);
void stk_manager_enqueue_after(stk_manager *m, const char *ns, const char *name, uint64_t delay_ms);

/*
 * Publishes stoker_condition{kind,name,namespace,type,status} = 1 for each condition of
 * the object (replacing its previous series); stk_manager_forget removes every series of
 * the object from the families the manager owns plus `extra` (NULL-terminated, may be
 * NULL; families whose first labels are name, namespace). Called from a reconcile, the
 * manager then records no duration or result for it either. Any thread.
 */
void stk_manager_publish_conditions(stk_manager *m, const char *ns, const char *name,
				    const struct stk_conditions *conds);
void stk_manager_forget(stk_manager *m, const char *ns, const char *name,
			stk_metrics_family *const *extra);

/* True while this replica leads (always, without --leader-elect). Any thread. */
bool stk_manager_leading(stk_manager *m);

/*
 * Runs until SIGTERM/SIGINT or lost leadership: starts the caches, elects, starts the
 * workers when leading, and on shutdown stops the workers (waiting up to 30 s for
 * running reconciles), the caches, then the HTTP servers. Hooks added with
 * stk_loop_on_shutdown before this call run after the controller stopped. Returns the
 * process exit code. Main thread, once.
 */
int stk_manager_run(stk_manager *m);

/*
 * True when cur differs from old in what a controller reacts to: generation (spec),
 * labels, annotations, finalizers or deletionTimestamp; false for status-only writes
 * (so a controller's own status patch does not retrigger it). A periodic resync
 * (old == cur) counts as a change. Any thread.
 */
bool stk_obj_changed_beyond_status(stk_obj *old, stk_obj *cur);

#endif
