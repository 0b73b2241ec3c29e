#include "stk/lease.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stk/alloc.h"
#include "stk/buf.h"
#include "stk/json.h"
#include "stk/log.h"
#include "stk/loop.h"

struct stk_lease {
	stk_kube *kube;
	struct stk_lease_opts opts;
	char *ns, *name, *identity;

	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	atomic_bool leader;

	/* What we last saw of the record, and when (monotonic) it last changed. */
	char *observed_holder;
	char *observed_renew;
	char *observed_rv;
	uint64_t observed_ms;
	uint64_t last_renew_ms;	      /* our last successful acquire or renew */
	struct stk_log_repeat logged; /* lease thread */
};

#define LEASE_LOG_REPEAT_MS (5 * 60 * 1000)

/*
 * Logs a failed get, create or update of the Lease (a missing RBAC rule on leases, an
 * unreachable API server): the same message again only every LEASE_LOG_REPEAT_MS.
 */
static void lease_log_error(stk_lease *le, const stk_err *err)
{
	if (!err->message[0] || err->code == STK_ECONFLICT || err->code == STK_EEXIST)
		return; /* another replica got there first: the normal race */
	if (stk_log_repeat_due(&le->logged, err->message, LEASE_LOG_REPEAT_MS))
		stk_log_warn("cannot acquire or renew the leader lease; retrying", "lease",
			     le->name, "namespace", le->ns, "error", err->message, NULL);
}

int stk_lease_new(stk_lease **out, stk_kube *kube, const struct stk_lease_opts *opts, stk_err *err)
{
	stk_lease *le;

	if (!opts || !opts->ns || !*opts->ns || !opts->name || !*opts->name || !opts->identity ||
	    !*opts->identity)
		return stk_err_set(err, STK_EINVAL, "lease needs a namespace, name and identity");
	if (!(opts->retry_period_ms > 0 && opts->retry_period_ms < opts->renew_deadline_ms &&
	      opts->renew_deadline_ms < opts->lease_duration_ms))
		return stk_err_set(err, STK_EINVAL,
				   "lease durations must satisfy retry period (%llums) < renew "
				   "deadline (%llums) < lease duration (%llums)",
				   (unsigned long long)opts->retry_period_ms,
				   (unsigned long long)opts->renew_deadline_ms,
				   (unsigned long long)opts->lease_duration_ms);
	le = stk_calloc(1, sizeof(*le));
	le->kube = kube;
	le->opts = *opts;
	le->ns = stk_strdup(opts->ns);
	le->name = stk_strdup(opts->name);
	le->identity = stk_strdup(opts->identity);
	pthread_mutex_init(&le->lock, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&le->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	*out = le;
	return 0;
}

bool stk_lease_is_leader(stk_lease *le)
{
	return atomic_load(&le->leader);
}

/* Kubernetes MicroTime: RFC 3339 with microseconds, UTC. */
static void lease_now(char out[40])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static void lease_set(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? stk_strdup(src) : NULL;
}

static bool lease_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Writes the Lease body; `holder` "" releases it. */
static void lease_body(stk_lease *le, stk_buf *b, const char *rv, const char *holder,
		       const char *acquire, int64_t transitions, int64_t duration_s)
{
	char now[40];

	lease_now(now);
	stk_buf_puts(b, "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
			"\"metadata\":{\"name\":");
	stk_buf_put_json_string(b, le->name, strlen(le->name));
	stk_buf_puts(b, ",\"namespace\":");
	stk_buf_put_json_string(b, le->ns, strlen(le->ns));
	if (rv) {
		stk_buf_puts(b, ",\"resourceVersion\":");
		stk_buf_put_json_string(b, rv, strlen(rv));
	}
	stk_buf_puts(b, "},\"spec\":{\"holderIdentity\":");
	stk_buf_put_json_string(b, holder, strlen(holder));
	stk_buf_printf(b,
		       ",\"leaseDurationSeconds\":%lld,\"acquireTime\":\"%s\","
		       "\"renewTime\":\"%s\",\"leaseTransitions\":%lld}}",
		       (long long)duration_s, acquire ? acquire : now, now, (long long)transitions);
}

static int64_t lease_duration_s(const stk_lease *le)
{
	int64_t s = (int64_t)((le->opts.lease_duration_ms + 999) / 1000);
	return s < 1 ? 1 : s;
}

/* One attempt to acquire or renew. True when we hold the lease afterwards. */
static bool lease_try(stk_lease *le)
{
	stk_err err = STK_ERR_INIT;
	yajl_val cur = NULL;
	stk_buf body = STK_BUF_INIT(8192);
	const char *holder, *renew, *rv, *acquire;
	int64_t transitions = 0;
	uint64_t now = stk_now_ms();
	bool ok = false;
	int rc;

	rc = stk_kube_get(le->kube, &STK_GVR_LEASES, le->ns, le->name, &cur, &err);
	if (rc == STK_ENOTFOUND) {
		lease_body(le, &body, NULL, le->identity, NULL, 0, lease_duration_s(le));
		ok = stk_kube_create(le->kube, &STK_GVR_LEASES, le->ns, body.ptr, body.len, NULL,
				     &err) == 0;
		goto out;
	}
	if (rc)
		goto out;
	holder = stk_json_str(cur, "spec", "holderIdentity", NULL);
	renew = stk_json_str(cur, "spec", "renewTime", NULL);
	rv = stk_json_str(cur, "metadata", "resourceVersion", NULL);
	acquire = stk_json_str(cur, "spec", "acquireTime", NULL);
	stk_json_int(cur, &transitions, "spec", "leaseTransitions", NULL);
	/* A changed record restarts the expiry clock. */
	if (!lease_same(holder, le->observed_holder) || !lease_same(renew, le->observed_renew) ||
	    !le->observed_rv) {
		lease_set(&le->observed_holder, holder);
		lease_set(&le->observed_renew, renew);
		le->observed_ms = now;
	}
	lease_set(&le->observed_rv, rv);
	if (holder && *holder && strcmp(holder, le->identity) &&
	    now < le->observed_ms + le->opts.lease_duration_ms)
		goto out; /* held by someone else, not expired */
	if (!holder || strcmp(holder, le->identity)) {
		acquire = NULL; /* a new term */
		transitions++;
	}
	lease_body(le, &body, rv, le->identity, acquire, transitions, lease_duration_s(le));
	ok = stk_kube_update(le->kube, &STK_GVR_LEASES, le->ns, le->name, NULL, body.ptr, body.len,
			     NULL, &err) == 0;
out:
	if (ok) {
		le->last_renew_ms = stk_now_ms();
		lease_set(&le->observed_holder, le->identity);
		memset(&le->logged, 0, sizeof(le->logged));
	} else {
		lease_log_error(le, &err);
	}
	if (cur)
		yajl_tree_free(cur);
	stk_buf_release(&body);
	return ok;
}

/* Clears the holder so a follower can take over without waiting for expiry. */
static void lease_release(stk_lease *le)
{
	stk_err err = STK_ERR_INIT;
	yajl_val cur = NULL;
	stk_buf body = STK_BUF_INIT(8192);
	const char *holder, *rv;
	int64_t transitions = 0;

	if (stk_kube_get(le->kube, &STK_GVR_LEASES, le->ns, le->name, &cur, &err))
		return;
	holder = stk_json_str(cur, "spec", "holderIdentity", NULL);
	rv = stk_json_str(cur, "metadata", "resourceVersion", NULL);
	stk_json_int(cur, &transitions, "spec", "leaseTransitions", NULL);
	if (holder && !strcmp(holder, le->identity)) {
		lease_body(le, &body, rv, "", NULL, transitions, 1);
		stk_kube_update(le->kube, &STK_GVR_LEASES, le->ns, le->name, NULL, body.ptr,
				body.len, NULL, &err);
	}
	yajl_tree_free(cur);
	stk_buf_release(&body);
}

/* Sleeps up to `ms` or until stop; returns true if stopping. */
static bool lease_sleep(stk_lease *le, uint64_t ms)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&le->lock);
	while (!le->stop && pthread_cond_timedwait(&le->wake, &le->lock, &until) != ETIMEDOUT)
		;
	stop = le->stop;
	pthread_mutex_unlock(&le->lock);
	return stop;
}

static void *lease_main(void *arg)
{
	stk_lease *le = arg;
	/* Followers jitter their polls so candidates do not move in lockstep. */
	uint64_t jitter = le->opts.retry_period_ms / 5 + 1;

	for (;;) {
		bool held = lease_try(le);

		if (held && !atomic_load(&le->leader)) {
			atomic_store(&le->leader, true);
			if (le->opts.on_started)
				le->opts.on_started(le->opts.arg);
		} else if (!held && atomic_load(&le->leader) &&
			   stk_now_ms() - le->last_renew_ms >= le->opts.renew_deadline_ms) {
			/* Could not renew in time: someone else may lead now. */
			atomic_store(&le->leader, false);
			if (le->opts.on_stopped)
				le->opts.on_stopped(le->opts.arg);
		}
		if (lease_sleep(le, le->opts.retry_period_ms +
					    (atomic_load(&le->leader)
						     ? 0
						     : arc4random_uniform((uint32_t)jitter))))
			break;
	}
	if (atomic_exchange(&le->leader, false)) {
		lease_release(le);
		if (le->opts.on_stopped)
			le->opts.on_stopped(le->opts.arg);
	}
	return NULL;
}

int stk_lease_start(stk_lease *le, stk_err *err)
{
	int rc;

	if (le->running)
		return 0;
	le->stop = false;
	rc = pthread_create(&le->thread, NULL, lease_main, le);
	if (rc)
		return stk_err_errno(err, rc, "cannot start the lease thread");
	le->running = true;
	return 0;
}

void stk_lease_stop(stk_lease *le)
{
	if (!le || !le->running)
		return;
	pthread_mutex_lock(&le->lock);
	le->stop = true;
	pthread_cond_signal(&le->wake);
	pthread_mutex_unlock(&le->lock);
	pthread_join(le->thread, NULL);
	le->running = false;
}

void stk_lease_free(stk_lease *le)
{
	if (!le)
		return;
	stk_lease_stop(le);
	pthread_mutex_destroy(&le->lock);
	pthread_cond_destroy(&le->wake);
	free(le->ns);
	free(le->name);
	free(le->identity);
	free(le->observed_holder);
	free(le->observed_renew);
	free(le->observed_rv);
	free(le);
}
