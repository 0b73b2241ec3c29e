/*
 * The sync-controller (DESIGN.md §3.3, §4, §5): reconciles each Stoker from the
 * informer caches of Stokers, GitSources, SyncProfiles, gateway Pods and the Stoker
 * ConfigMaps into its owned GitSource (inline git), the metadata ConfigMap the agents
 * follow, the status ConfigMap they report into, and Stoker.status.
 */
#ifndef SYNCCTL_H
#define SYNCCTL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "stk/flags.h"
#include "stk/manager.h"
#include "stk/map.h"

struct syncctl_options {
	const struct stk_daemon_opts *daemon;
	const char *identity; /* leader-election identity; NULL: hostname_pid */
};

struct syncctl {
	const struct syncctl_options *o;
	stk_manager *mgr;
	stk_kube *kube;
	stk_recorder *recorder;
	stk_cache *stokers, *sources, *profiles, *pods, *cms;
	stk_metrics_family *m_gateways; /* stoker_gateways{name,namespace,state} */
	stk_metrics_family
		*m_gateway_state; /* stoker_gateway_status{name,namespace,gateway,status} */
	/*
	 * "ns/name" -> requested ref (heap) of Stokers whose referenced GitSource's spec.ref
	 * changed while they held that request: their next reconcile drops it, unless the
	 * request changed meanwhile (superseded_mu).
	 */
	pthread_mutex_t superseded_mu;
	stk_map superseded;
	/*
	 * "ns/name" -> resourceVersion (heap) of a Stoker as read before its request was
	 * dropped: until the cache holds a newer version, a reconcile still reads the request
	 * and must not pass it to the GitSource again (superseded_mu).
	 */
	stk_map dropped;
};

/* The bookkeeping of requested refs (superseded, dropped): set up and freed. */
void syncctl_requests_init(struct syncctl *c);
void syncctl_requests_release(struct syncctl *c);

/* Marks Stoker ns/name: its `request` is superseded by its GitSource's spec.ref. */
void syncctl_mark_superseded(struct syncctl *c, const char *ns, const char *name,
			     const char *request);

/*
 * Marks every Stoker of namespace ns that references GitSource `source` and requests
 * `request`. Worker threads (reads the Stoker cache).
 */
void syncctl_mark_source_superseded(struct syncctl *c, const char *ns, const char *source,
				    const char *request);

/*
 * True (once) when Stoker ns/name was marked and still requests the ref it was marked
 * for (`request`, its current one); a mark for another request is dropped. Any thread.
 */
bool syncctl_take_superseded(struct syncctl *c, const char *ns, const char *name,
			     const char *request);

/* Notes that the request of Stoker ns/name, read at resourceVersion rv, was dropped. */
void syncctl_note_dropped(struct syncctl *c, const char *ns, const char *name, const char *rv);

/*
 * True while the cached Stoker ns/name is still the version noted by
 * syncctl_note_dropped; a newer version forgets the note. Any thread.
 */
bool syncctl_shows_dropped(struct syncctl *c, const char *ns, const char *name, const char *rv);

/* Reconciles Stoker ns/name (a stk_manager_reconcile_fn). Worker thread. */
int syncctl_reconcile(void *arg, const char *ns, const char *name, uint64_t *requeue_after_ms,
		      stk_err *err);

/*
 * The transform of the Stoker cache: replaces status.discoveredGateways by its digest and
 * pod list (see reconcile.c). Loop thread.
 */
void syncctl_stoker_slim(yajl_val root, void *arg);

/* Runs the daemon until SIGTERM; returns the exit code. Main thread. */
int syncctl_run(const struct syncctl_options *o);

#endif
