/*
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: a
 * candidate takes the lease when it is free or its holder has not renewed it for a lease
 * duration (measured on the local clock from when the record last changed, so clock skew
 * between machines does not matter); the leader renews it every retry period and gives
 * up if it could not renew within the renew deadline; on shutdown the leader releases
 * the lease so a follower takes over at once. Runs on its own thread.
 */
#ifndef STK_LEASE_H
#define STK_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "stk/err.h"
#include "stk/kube.h"

typedef struct stk_lease stk_lease;

struct stk_lease_opts {
	const char *ns;		    /* namespace of the Lease */
	const char *name;	    /* e.g. "source-controller-leader" */
	const char *identity;	    /* unique per process, e.g. "<pod>_<random>" */
	uint64_t lease_duration_ms; /* default 15 s */
	uint64_t renew_deadline_ms; /* default 10 s; < lease duration */
	uint64_t retry_period_ms;   /* default 2 s */
	/*
	 * Called on the lease thread when leadership starts, and when it ends (lost, or
	 * released at stop). A daemon posts to its loop from here; on loss it exits.
	 */
	void (*on_started)(void *arg);
	void (*on_stopped)(void *arg);
	void *arg;
};

#define STK_LEASE_OPTS_INIT                                            \
	{                                                              \
		NULL, NULL, NULL, 15000, 10000, 2000, NULL, NULL, NULL \
	}

/*
 * Validates the options (durations ordered: retry < renew deadline < lease duration)
 * and creates a stopped elector. The client must outlive it. 0 or STK_EINVAL. Any thread.
 */
int stk_lease_new(stk_lease **out, stk_kube *kube, const struct stk_lease_opts *opts, stk_err *err);

/* Starts the election thread. 0 or STK_EIO. */
int stk_lease_start(stk_lease *le, stk_err *err);

/* True while this process holds the lease. Any thread. */
bool stk_lease_is_leader(stk_lease *le);

/*
 * Stops the thread; if leading, releases the lease (holder cleared) and calls
 * on_stopped. Blocks until the thread has exited (at most one request timeout). Any
 * thread but the lease thread (i.e. not from the callbacks). Idempotent.
 */
void stk_lease_stop(stk_lease *le);

/* Stops if needed and frees. NULL-safe. */
void stk_lease_free(stk_lease *le);

#endif
