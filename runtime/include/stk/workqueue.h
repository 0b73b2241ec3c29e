/*
 * The controller work queue (client-go semantics) with its own pool of worker threads, so a
 * slow reconcile never blocks the daemon's event loop (DESIGN.md §6).
 *
 * Items are string keys ("namespace/name"). A key waiting in the queue is queued once no
 * matter how often it is added; a key is never reconciled by two workers at once: added
 * while it is being reconciled, it is marked dirty and queued again, exactly once, when the
 * reconcile returns. Keys can be added after a delay (the earliest pending time wins), and
 * a failed reconcile is requeued with per-key exponential backoff (base doubling up to a
 * cap) that a success resets.
 *
 * Threads: every function may be called from any thread, including from inside the
 * reconcile callback, except stk_workqueue_wait and stk_workqueue_free (not from a worker).
 */
#ifndef STK_WORKQUEUE_H
#define STK_WORKQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stk/err.h"

typedef struct stk_workqueue stk_workqueue;

/*
 * Reconciles `key`; runs on a worker thread with no queue lock held. `*requeue_after_ms`
 * is 0 on entry. Return:
 *  - 0, leaving *requeue_after_ms at 0: success; the key's backoff is forgotten.
 *  - 0 with *requeue_after_ms > 0: success (backoff forgotten) and the key is added again
 *    after that many milliseconds (periodic resync).
 *  - a negative STK_E code: failure; the key is added again after its backoff delay
 *    (base * 2^failures, capped), or after *requeue_after_ms if the callback set a longer
 *    one (e.g. a server's Retry-After).
 * `key` is valid only during the call. The callback may call any stk_workqueue function but
 * stk_workqueue_wait and stk_workqueue_free.
 */
typedef int (*stk_workqueue_fn)(const char *key, void *arg, uint64_t *requeue_after_ms);

/*
 * Options. `reconcile` is required; a zero numeric field means its default.
 *
 * Observer hooks (all optional) let a metrics module attach; they get `observer_arg`:
 *  - on_depth(obs, depth): the number of keys ready and waiting for a worker changed.
 *    Called WITH the queue lock held (so reports arrive in order): it must be quick (store
 *    a gauge) and must not call back into the queue.
 *  - on_reconcile(obs, key, rc, duration_us): a reconcile returned `rc` after
 *    `duration_us` microseconds. Worker thread, no lock held.
 *  - on_retry(obs, key, requeues, delay_ms): a failed key was requeued after `delay_ms`;
 *    `requeues` is its failure count so far. Worker thread, no lock held.
 *  - on_stopped(obs): the last worker exited after stk_workqueue_shutdown, so
 *    stk_workqueue_wait will not block. Called from that worker, no lock held; typically
 *    posts to the event loop, which then calls stk_workqueue_wait(wq, 0, ...) and frees.
 */
struct stk_workqueue_opts {
	const char *name;	    /* copied; for diagnostics and thread names ("workqueue") */
	unsigned workers;	    /* worker threads, 1..256 (4) */
	uint64_t base_delay_ms;	    /* backoff after the first failure (5 ms) */
	uint64_t max_delay_ms;	    /* backoff cap (300000 ms = 5 min) */
	stk_workqueue_fn reconcile; /* required */
	void *arg;		    /* passed to reconcile */
	void (*on_depth)(void *obs, size_t depth);
	void (*on_reconcile)(void *obs, const char *key, int rc, uint64_t duration_us);
	void (*on_retry)(void *obs, const char *key, unsigned requeues, uint64_t delay_ms);
	void (*on_stopped)(void *obs);
	void *observer_arg;
};

#define STK_WORKQUEUE_OPTS_INIT                                                     \
	{                                                                           \
		"workqueue", 4, 5, 300000, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
	}

#define STK_WORKQUEUE_DEFAULT_WORKERS	    4u
#define STK_WORKQUEUE_MAX_WORKERS	    256u
#define STK_WORKQUEUE_DEFAULT_BASE_DELAY_MS 5u
#define STK_WORKQUEUE_DEFAULT_MAX_DELAY_MS  300000u

/*
 * Creates a queue in the "not started" state: keys can be added (they wait) but nothing is
 * reconciled until stk_workqueue_start. `opts` is copied (the name too). Returns 0 and sets
 * *out, or STK_EINVAL (no reconcile callback, worker count out of range, base delay above
 * the cap). Any thread; the caller owns the queue and frees it with stk_workqueue_free.
 */
int stk_workqueue_new(stk_workqueue **out, const struct stk_workqueue_opts *opts, stk_err *err);

/*
 * Starts the worker threads (typically once leadership is acquired). Returns 0,
 * STK_EINVAL if already started or shut down, or STK_EIO if a thread cannot be created (the
 * threads already started are stopped and the queue is shut down). Any thread but a worker.
 */
int stk_workqueue_start(stk_workqueue *wq, stk_err *err);

/*
 * Queues `key` (copied) for reconciling now. A key already waiting is not queued twice; a
 * key being reconciled is queued again once when that reconcile returns. Returns 0,
 * STK_ECANCELED once shutdown started (the key is dropped), STK_EINVAL for an empty key or
 * STK_ETOOBIG past STK_LIMIT_QUEUE_KEY bytes. Any thread, including the reconcile callback.
 */
int stk_workqueue_add(stk_workqueue *wq, const char *key);

/*
 * Queues `key` after `delay_ms` milliseconds (0 = stk_workqueue_add). If the key is already
 * waiting for a delay, the earlier of the two times is kept. A key waiting for its delay
 * can also be added now; it then runs now and again when the delay expires. Same returns
 * and threads as stk_workqueue_add.
 */
int stk_workqueue_add_after(stk_workqueue *wq, const char *key, uint64_t delay_ms);

/*
 * Forgets the key's failure count, so its next failure backs off from the base delay
 * again (a successful reconcile does this itself). Unknown keys are ignored. Any thread.
 */
void stk_workqueue_forget(stk_workqueue *wq, const char *key);

/* Failures of `key` since it was last forgotten (0 for an unknown key). Any thread. */
unsigned stk_workqueue_num_requeues(stk_workqueue *wq, const char *key);

/* Keys ready and waiting for a worker (not counting delayed or in-flight ones). Any thread. */
size_t stk_workqueue_len(stk_workqueue *wq);

/* The queue's name (from the options). Owned by the queue. Any thread. */
const char *stk_workqueue_name(const stk_workqueue *wq);

/*
 * Starts shutting down and returns at once: adds are refused from now on, delayed keys are
 * dropped, idle workers exit and busy ones exit when their reconcile returns. With `drain`,
 * workers first reconcile every key already queued (requeues those reconciles ask for are
 * refused). Calling it again may cancel a drain (drain=false) but not start one. Any
 * thread, including the reconcile callback. A queue never started just refuses work.
 */
void stk_workqueue_shutdown(stk_workqueue *wq, bool drain);

/* True once stk_workqueue_shutdown was called; long reconciles may poll it. Any thread. */
bool stk_workqueue_shutting_down(stk_workqueue *wq);

/*
 * Waits up to `timeout_ms` (0: just check) for every worker to exit after
 * stk_workqueue_shutdown, then joins them. Returns 0 when they all exited (or none were
 * started), STK_ETIMEOUT if a reconcile is still running (call again later), or STK_EINVAL
 * if shutdown was not requested or the caller is a worker. Any thread but a worker; do not
 * call it on the event-loop thread with a long timeout if reconciles need the loop to
 * finish (use on_stopped instead).
 */
int stk_workqueue_wait(stk_workqueue *wq, uint64_t timeout_ms, stk_err *err);

/*
 * Frees the queue and every key it still holds. A queue still running is shut down without
 * draining first and this blocks until in-flight reconciles returned. NULL-safe. Any thread
 * but a worker (calling it from a worker aborts: it would free the queue under itself).
 */
void stk_workqueue_free(stk_workqueue *wq);

#endif
