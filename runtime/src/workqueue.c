/* pthread_setname_np (thread names for top -H and gdb) is a GNU extension. */
#define _GNU_SOURCE
#include "stk/workqueue.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stk/alloc.h"
#include "stk/limits.h"

#define WQ_NOT_WAITING SIZE_MAX
#define WQ_MIN_BUCKETS 64u
#define NS_PER_MS      1000000ull
#define NS_PER_SEC     1000000000ull

/*
 * One record per key the queue knows about. It lives while the key is queued (dirty), being
 * reconciled (processing), waiting for a delay (heap_idx) or has failures to remember; the
 * client-go "dirty", "processing", "waiting" and rate-limiter sets are these fields.
 */
struct wq_item {
	struct wq_item *hash_next;
	struct wq_item *fifo_next;
	uint64_t ready_at; /* monotonic ns, while waiting in the heap */
	uint64_t seq;	   /* orders equal ready_at values first come, first served */
	size_t heap_idx;   /* WQ_NOT_WAITING unless in the heap */
	uint32_t hash;
	unsigned failures;
	bool dirty;	 /* must be reconciled: in the FIFO, or re-queued when processing ends */
	bool processing; /* a worker holds it; its key stays valid without the lock */
	char key[];
};

struct stk_workqueue {
	pthread_mutex_t mu;
	pthread_cond_t work_cond; /* workers: FIFO, heap top or shutdown changed */
	pthread_cond_t exit_cond; /* waiters: a worker exited or the join finished */
	struct stk_workqueue_opts opts;
	char *name;

	struct wq_item **buckets; /* key table, chained; nbuckets is a power of two */
	size_t nbuckets;
	size_t nitems;

	struct wq_item *head, *tail; /* ready FIFO */
	size_t depth;

	struct wq_item **heap; /* delayed keys, min-heap on (ready_at, seq) */
	size_t heap_len, heap_cap;
	uint64_t seq;

	pthread_t *threads;
	unsigned nthreads; /* created */
	unsigned running;  /* created and not yet exited */
	bool started, shutting_down, drain, joining, joined;
};

static uint64_t wq_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* now + ms, saturating (a far-future deadline is as good as "never"). */
static uint64_t wq_deadline_ns(uint64_t now, uint64_t ms)
{
	if (ms > (UINT64_MAX - now) / NS_PER_MS)
		return UINT64_MAX;
	return now + ms * NS_PER_MS;
}

static struct timespec wq_timespec(uint64_t ns)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ns / NS_PER_SEC);
	ts.tv_nsec = (long)(ns % NS_PER_SEC);
	return ts;
}

static uint32_t wq_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

static bool wq_is_worker(const stk_workqueue *wq)
{
	pthread_t self = pthread_self();

	for (unsigned i = 0; i < wq->nthreads; i++)
		if (pthread_equal(self, wq->threads[i]))
			return true;
	return false;
}

/* ---- key table ---- */

static struct wq_item *wq_find(const stk_workqueue *wq, const char *key, uint32_t hash)
{
	struct wq_item *it = wq->buckets[hash & (wq->nbuckets - 1)];

	for (; it; it = it->hash_next)
		if (it->hash == hash && !strcmp(it->key, key))
			return it;
	return NULL;
}

static void wq_grow(stk_workqueue *wq)
{
	size_t n = wq->nbuckets * 2;
	struct wq_item **b = stk_calloc(n, sizeof(*b));

	for (size_t i = 0; i < wq->nbuckets; i++) {
		struct wq_item *it = wq->buckets[i], *next;
		for (; it; it = next) {
			next = it->hash_next;
			it->hash_next = b[it->hash & (n - 1)];
			b[it->hash & (n - 1)] = it;
		}
	}
	free(wq->buckets);
	wq->buckets = b;
	wq->nbuckets = n;
}

static struct wq_item *wq_get_or_create(stk_workqueue *wq, const char *key, size_t len)
{
	uint32_t hash = wq_hash(key);
	struct wq_item *it = wq_find(wq, key, hash);
	size_t size;

	if (it)
		return it;
	if (wq->nitems >= wq->nbuckets && wq->nbuckets <= SIZE_MAX / 2 / sizeof(*wq->buckets))
		wq_grow(wq);
	/* len <= STK_LIMIT_QUEUE_KEY, so the sum cannot overflow. */
	size = sizeof(*it) + len + 1;
	it = stk_calloc(1, size);
	memcpy(it->key, key, len + 1);
	it->hash = hash;
	it->heap_idx = WQ_NOT_WAITING;
	it->hash_next = wq->buckets[hash & (wq->nbuckets - 1)];
	wq->buckets[hash & (wq->nbuckets - 1)] = it;
	wq->nitems++;
	return it;
}

/* Frees the record once nothing refers to the key any more. */
static void wq_maybe_release(stk_workqueue *wq, struct wq_item *it)
{
	struct wq_item **pp;

	if (it->dirty || it->processing || it->heap_idx != WQ_NOT_WAITING || it->failures)
		return;
	pp = &wq->buckets[it->hash & (wq->nbuckets - 1)];
	while (*pp != it)
		pp = &(*pp)->hash_next;
	*pp = it->hash_next;
	wq->nitems--;
	free(it);
}

/* ---- ready FIFO ---- */

static void wq_depth_changed(stk_workqueue *wq)
{
	if (wq->opts.on_depth)
		wq->opts.on_depth(wq->opts.observer_arg, wq->depth);
}

static void wq_fifo_push(stk_workqueue *wq, struct wq_item *it)
{
	it->fifo_next = NULL;
	if (wq->tail)
		wq->tail->fifo_next = it;
	else
		wq->head = it;
	wq->tail = it;
	wq->depth++;
	pthread_cond_signal(&wq->work_cond);
	wq_depth_changed(wq);
}

static struct wq_item *wq_fifo_pop(stk_workqueue *wq)
{
	struct wq_item *it = wq->head;

	wq->head = it->fifo_next;
	if (!wq->head)
		wq->tail = NULL;
	it->fifo_next = NULL;
	wq->depth--;
	wq_depth_changed(wq);
	return it;
}

/* Drops every queued key (shutdown without drain). */
static void wq_fifo_clear(stk_workqueue *wq)
{
	bool had = wq->head != NULL;

	while (wq->head) {
		struct wq_item *it = wq->head;
		wq->head = it->fifo_next;
		it->fifo_next = NULL;
		it->dirty = false;
		wq_maybe_release(wq, it);
	}
	wq->tail = NULL;
	wq->depth = 0;
	if (had)
		wq_depth_changed(wq);
}

/* client-go Add: a dirty key is not queued twice; a key in flight is queued when it ends. */
static void wq_enqueue(stk_workqueue *wq, struct wq_item *it)
{
	if (it->dirty)
		return;
	it->dirty = true;
	if (it->processing)
		return;
	wq_fifo_push(wq, it);
}

/* ---- delay heap ---- */

static bool wq_before(const struct wq_item *a, const struct wq_item *b)
{
	return a->ready_at < b->ready_at || (a->ready_at == b->ready_at && a->seq < b->seq);
}

static void wq_heap_set(stk_workqueue *wq, size_t i, struct wq_item *it)
{
	wq->heap[i] = it;
	it->heap_idx = i;
}

static void wq_sift_up(stk_workqueue *wq, size_t i)
{
	struct wq_item *it = wq->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!wq_before(it, wq->heap[parent]))
			break;
		wq_heap_set(wq, i, wq->heap[parent]);
		i = parent;
	}
	wq_heap_set(wq, i, it);
}

static void wq_sift_down(stk_workqueue *wq, size_t i)
{
	struct wq_item *it = wq->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= wq->heap_len)
			break;
		if (child + 1 < wq->heap_len && wq_before(wq->heap[child + 1], wq->heap[child]))
			child++;
		if (!wq_before(wq->heap[child], it))
			break;
		wq_heap_set(wq, i, wq->heap[child]);
		i = child;
	}
	wq_heap_set(wq, i, it);
}

static struct wq_item *wq_heap_pop(stk_workqueue *wq)
{
	struct wq_item *top = wq->heap[0];

	wq->heap_len--;
	if (wq->heap_len > 0) {
		wq_heap_set(wq, 0, wq->heap[wq->heap_len]);
		wq_sift_down(wq, 0);
	}
	top->heap_idx = WQ_NOT_WAITING;
	return top;
}

/* client-go AddAfter: the earliest pending time wins. */
static void wq_delay(stk_workqueue *wq, struct wq_item *it, uint64_t delay_ms)
{
	uint64_t ready_at;

	if (delay_ms == 0) {
		wq_enqueue(wq, it);
		return;
	}
	ready_at = wq_deadline_ns(wq_now_ns(), delay_ms);
	if (it->heap_idx != WQ_NOT_WAITING) {
		if (ready_at >= it->ready_at)
			return;
		it->ready_at = ready_at;
		wq_sift_up(wq, it->heap_idx);
	} else {
		if (wq->heap_len == wq->heap_cap) {
			wq->heap_cap = wq->heap_cap ? wq->heap_cap * 2 : 16;
			wq->heap = stk_reallocarray(wq->heap, wq->heap_cap, sizeof(*wq->heap));
		}
		it->ready_at = ready_at;
		it->seq = wq->seq++;
		wq->heap_len++;
		wq_heap_set(wq, wq->heap_len - 1, it);
		wq_sift_up(wq, wq->heap_len - 1);
	}
	/* A new earliest deadline: idle workers must shorten their timed wait. */
	if (it->heap_idx == 0)
		pthread_cond_broadcast(&wq->work_cond);
}

/* Moves every key whose delay expired into the FIFO. */
static void wq_promote(stk_workqueue *wq, uint64_t now)
{
	while (wq->heap_len > 0 && wq->heap[0]->ready_at <= now)
		wq_enqueue(wq, wq_heap_pop(wq));
}

/* Drops every delayed key (shutdown). */
static void wq_heap_clear(stk_workqueue *wq)
{
	while (wq->heap_len > 0)
		wq_maybe_release(wq, wq_heap_pop(wq));
}

/* ---- workers ---- */

static uint64_t wq_backoff(const stk_workqueue *wq, unsigned failures)
{
	uint64_t d = wq->opts.base_delay_ms, max = wq->opts.max_delay_ms;

	for (unsigned i = 0; i < failures && d < max; i++)
		d = d > max / 2 ? max : d * 2;
	return d > max ? max : d;
}

/* Blocks until a key is ready (returned with processing set) or the worker must exit. */
static struct wq_item *wq_next(stk_workqueue *wq)
{
	for (;;) {
		if (!wq->shutting_down)
			wq_promote(wq, wq_now_ns());
		if (wq->shutting_down && !wq->drain)
			return NULL;
		if (wq->head) {
			struct wq_item *it = wq_fifo_pop(wq);
			it->processing = true;
			it->dirty = false;
			return it;
		}
		if (wq->shutting_down)
			return NULL;
		if (wq->heap_len > 0) {
			struct timespec ts = wq_timespec(wq->heap[0]->ready_at);
			pthread_cond_timedwait(&wq->work_cond, &wq->mu, &ts);
		} else {
			pthread_cond_wait(&wq->work_cond, &wq->mu);
		}
	}
}

static void wq_process(stk_workqueue *wq, struct wq_item *it)
{
	uint64_t requeue_after = 0, delay = 0, t0, dur_us;
	unsigned requeues = 0;
	bool retried = false;
	int rc;

	pthread_mutex_unlock(&wq->mu);
	t0 = wq_now_ns();
	rc = wq->opts.reconcile(it->key, wq->opts.arg, &requeue_after);
	dur_us = (wq_now_ns() - t0) / 1000;

	pthread_mutex_lock(&wq->mu);
	if (rc == 0) {
		it->failures = 0;
		if (requeue_after > 0 && !wq->shutting_down)
			wq_delay(wq, it, requeue_after);
	} else {
		delay = wq_backoff(wq, it->failures);
		if (it->failures < UINT_MAX)
			it->failures++;
		if (requeue_after > delay)
			delay = requeue_after;
		if (!wq->shutting_down) {
			wq_delay(wq, it, delay);
			retried = true;
			requeues = it->failures;
		}
	}
	if (wq->opts.on_reconcile || (retried && wq->opts.on_retry)) {
		/* Still marked processing: the record (and its key) stays alive for the hooks. */
		pthread_mutex_unlock(&wq->mu);
		if (wq->opts.on_reconcile)
			wq->opts.on_reconcile(wq->opts.observer_arg, it->key, rc, dur_us);
		if (retried && wq->opts.on_retry)
			wq->opts.on_retry(wq->opts.observer_arg, it->key, requeues, delay);
		pthread_mutex_lock(&wq->mu);
	}
	it->processing = false;
	/* client-go Done: a key added while in flight goes back in the FIFO now. */
	if (it->dirty) {
		if (wq->shutting_down && !wq->drain)
			it->dirty = false;
		else
			wq_fifo_push(wq, it);
	}
	wq_maybe_release(wq, it);
}

static void *wq_worker(void *arg)
{
	stk_workqueue *wq = arg;
	void (*on_stopped)(void *) = wq->opts.on_stopped;
	void *obs = wq->opts.observer_arg;
	struct wq_item *it;
	bool last;

	pthread_mutex_lock(&wq->mu);
	while ((it = wq_next(wq)) != NULL)
		wq_process(wq, it);
	wq->running--;
	last = wq->running == 0;
	pthread_cond_broadcast(&wq->exit_cond);
	pthread_mutex_unlock(&wq->mu);
	/* stk_workqueue_wait joins this thread before anything is freed, so this is safe. */
	if (last && on_stopped)
		on_stopped(obs);
	return NULL;
}

/* ---- public API ---- */

int stk_workqueue_new(stk_workqueue **out, const struct stk_workqueue_opts *opts, stk_err *err)
{
	stk_workqueue *wq = NULL;
	pthread_condattr_t ca;
	bool ca_init = false;
	int rc = 0;

	if (!opts || !opts->reconcile) {
		rc = stk_err_set(err, STK_EINVAL, "workqueue: no reconcile callback");
		goto out;
	}
	if (opts->workers > STK_WORKQUEUE_MAX_WORKERS) {
		rc = stk_err_set(err, STK_EINVAL, "workqueue: %u workers (at most %u)",
				 opts->workers, STK_WORKQUEUE_MAX_WORKERS);
		goto out;
	}

	wq = stk_calloc(1, sizeof(*wq));
	wq->opts = *opts;
	wq->name = stk_strdup(opts->name && opts->name[0] ? opts->name : "workqueue");
	wq->opts.name = wq->name;
	if (!wq->opts.workers)
		wq->opts.workers = STK_WORKQUEUE_DEFAULT_WORKERS;
	if (!wq->opts.base_delay_ms)
		wq->opts.base_delay_ms = STK_WORKQUEUE_DEFAULT_BASE_DELAY_MS;
	if (!wq->opts.max_delay_ms)
		wq->opts.max_delay_ms = STK_WORKQUEUE_DEFAULT_MAX_DELAY_MS;
	if (wq->opts.base_delay_ms > wq->opts.max_delay_ms) {
		rc = stk_err_set(err, STK_EINVAL,
				 "workqueue %s: base delay %llu ms exceeds the cap of %llu ms",
				 wq->name, (unsigned long long)wq->opts.base_delay_ms,
				 (unsigned long long)wq->opts.max_delay_ms);
		goto out;
	}
	wq->nbuckets = WQ_MIN_BUCKETS;
	wq->buckets = stk_calloc(wq->nbuckets, sizeof(*wq->buckets));
	wq->threads = stk_calloc(wq->opts.workers, sizeof(*wq->threads));

	/* Timed waits run on CLOCK_MONOTONIC, so wall-clock jumps do not fire or stall delays. */
	if (pthread_condattr_init(&ca) != 0) {
		rc = stk_err_set(err, STK_EIO, "workqueue %s: cannot initialise its locks",
				 wq->name);
		goto out;
	}
	ca_init = true;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0) {
		rc = stk_err_set(err, STK_EIO, "workqueue %s: no monotonic clock for waits",
				 wq->name);
		goto out;
	}
	if (pthread_mutex_init(&wq->mu, NULL) != 0) {
		rc = stk_err_set(err, STK_EIO, "workqueue %s: cannot initialise its locks",
				 wq->name);
		goto out;
	}
	if (pthread_cond_init(&wq->work_cond, &ca) != 0) {
		pthread_mutex_destroy(&wq->mu);
		rc = stk_err_set(err, STK_EIO, "workqueue %s: cannot initialise its locks",
				 wq->name);
		goto out;
	}
	if (pthread_cond_init(&wq->exit_cond, &ca) != 0) {
		pthread_cond_destroy(&wq->work_cond);
		pthread_mutex_destroy(&wq->mu);
		rc = stk_err_set(err, STK_EIO, "workqueue %s: cannot initialise its locks",
				 wq->name);
		goto out;
	}
	*out = wq;
	wq = NULL;
out:
	if (ca_init)
		pthread_condattr_destroy(&ca);
	if (wq) {
		free(wq->threads);
		free(wq->buckets);
		free(wq->name);
		free(wq);
	}
	return rc;
}

int stk_workqueue_start(stk_workqueue *wq, stk_err *err)
{
	sigset_t all, old;
	unsigned i;
	int rc = 0, prc = 0;

	pthread_mutex_lock(&wq->mu);
	if (wq->started || wq->shutting_down) {
		rc = stk_err_set(err, STK_EINVAL, "workqueue %s: already %s", wq->name,
				 wq->started ? "started" : "shut down");
		pthread_mutex_unlock(&wq->mu);
		return rc;
	}
	wq->started = true;
	/*
	 * Workers take no asynchronous signals: SIGTERM belongs to the event loop, and
	 * reconciles should not see EINTR. Faults stay deliverable.
	 */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGABRT);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < wq->opts.workers; i++) {
		char tname[16];
		prc = pthread_create(&wq->threads[i], NULL, wq_worker, wq);
		if (prc != 0)
			break;
		snprintf(tname, sizeof(tname), "%.11s-%u", wq->name, i % 1000);
		pthread_setname_np(wq->threads[i], tname);
		wq->nthreads++;
		wq->running++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (prc != 0) {
		/* Stop what started; the queue ends up shut down and joined. */
		wq->shutting_down = true;
		wq->drain = false;
		wq_fifo_clear(wq);
		wq_heap_clear(wq);
		pthread_cond_broadcast(&wq->work_cond);
		pthread_mutex_unlock(&wq->mu);
		for (i = 0; i < wq->nthreads; i++)
			pthread_join(wq->threads[i], NULL);
		pthread_mutex_lock(&wq->mu);
		wq->joined = true;
		pthread_mutex_unlock(&wq->mu);
		return stk_err_errno(err, prc, "workqueue %s: cannot start worker %u", wq->name, i);
	}
	pthread_mutex_unlock(&wq->mu);
	return 0;
}

/* Checks a key: 0, STK_EINVAL or STK_ETOOBIG; stores its length. */
static int wq_check_key(const char *key, size_t *len)
{
	size_t n;

	if (!key || !key[0])
		return STK_EINVAL;
	n = strnlen(key, STK_LIMIT_QUEUE_KEY + 1);
	if (n > STK_LIMIT_QUEUE_KEY)
		return STK_ETOOBIG;
	*len = n;
	return 0;
}

int stk_workqueue_add_after(stk_workqueue *wq, const char *key, uint64_t delay_ms)
{
	size_t len = 0;
	int rc = wq_check_key(key, &len);

	if (rc)
		return rc;
	pthread_mutex_lock(&wq->mu);
	if (wq->shutting_down) {
		rc = STK_ECANCELED;
		goto out;
	}
	wq_delay(wq, wq_get_or_create(wq, key, len), delay_ms);
out:
	pthread_mutex_unlock(&wq->mu);
	return rc;
}

int stk_workqueue_add(stk_workqueue *wq, const char *key)
{
	return stk_workqueue_add_after(wq, key, 0);
}

void stk_workqueue_forget(stk_workqueue *wq, const char *key)
{
	struct wq_item *it;

	if (!key)
		return;
	pthread_mutex_lock(&wq->mu);
	it = wq_find(wq, key, wq_hash(key));
	if (it) {
		it->failures = 0;
		wq_maybe_release(wq, it);
	}
	pthread_mutex_unlock(&wq->mu);
}

unsigned stk_workqueue_num_requeues(stk_workqueue *wq, const char *key)
{
	struct wq_item *it;
	unsigned n = 0;

	if (!key)
		return 0;
	pthread_mutex_lock(&wq->mu);
	it = wq_find(wq, key, wq_hash(key));
	if (it)
		n = it->failures;
	pthread_mutex_unlock(&wq->mu);
	return n;
}

size_t stk_workqueue_len(stk_workqueue *wq)
{
	size_t n;

	pthread_mutex_lock(&wq->mu);
	n = wq->depth;
	pthread_mutex_unlock(&wq->mu);
	return n;
}

const char *stk_workqueue_name(const stk_workqueue *wq)
{
	return wq->name;
}

void stk_workqueue_shutdown(stk_workqueue *wq, bool drain)
{
	pthread_mutex_lock(&wq->mu);
	wq->drain = wq->shutting_down ? wq->drain && drain : drain;
	wq->shutting_down = true;
	wq_heap_clear(wq);
	if (!wq->drain)
		wq_fifo_clear(wq);
	pthread_cond_broadcast(&wq->work_cond);
	pthread_mutex_unlock(&wq->mu);
}

bool stk_workqueue_shutting_down(stk_workqueue *wq)
{
	bool r;

	pthread_mutex_lock(&wq->mu);
	r = wq->shutting_down;
	pthread_mutex_unlock(&wq->mu);
	return r;
}

int stk_workqueue_wait(stk_workqueue *wq, uint64_t timeout_ms, stk_err *err)
{
	uint64_t deadline;
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&wq->mu);
	if (wq_is_worker(wq)) {
		rc = stk_err_set(err, STK_EINVAL, "workqueue %s: wait called from a worker",
				 wq->name);
		goto out;
	}
	if (!wq->shutting_down) {
		rc = stk_err_set(err, STK_EINVAL, "workqueue %s: wait before shutdown", wq->name);
		goto out;
	}
	deadline = wq_deadline_ns(wq_now_ns(), timeout_ms);
	/* Workers still running, or another caller joining them: wait for either to end. */
	while (wq->running > 0 || (wq->joining && !wq->joined)) {
		if (timeout_ms == UINT64_MAX) {
			pthread_cond_wait(&wq->exit_cond, &wq->mu);
			continue;
		}
		if (wq_now_ns() >= deadline) {
			rc = stk_err_set(err, STK_ETIMEOUT,
					 "workqueue %s: %u reconcile(s) still running", wq->name,
					 wq->running);
			goto out;
		}
		struct timespec ts = wq_timespec(deadline);
		pthread_cond_timedwait(&wq->exit_cond, &wq->mu, &ts);
	}
	if (wq->joined || wq->nthreads == 0)
		goto out;
	wq->joining = true;
	pthread_mutex_unlock(&wq->mu);
	/* Every worker has left its loop; each join returns as soon as its thread ends. */
	for (i = 0; i < wq->nthreads; i++)
		pthread_join(wq->threads[i], NULL);
	pthread_mutex_lock(&wq->mu);
	wq->joined = true;
	pthread_cond_broadcast(&wq->exit_cond);
out:
	pthread_mutex_unlock(&wq->mu);
	return rc;
}

void stk_workqueue_free(stk_workqueue *wq)
{
	if (!wq)
		return;
	stk_workqueue_shutdown(wq, false);
	if (stk_workqueue_wait(wq, UINT64_MAX, NULL) != 0)
		abort(); /* called from a worker: freeing now would pull the queue from under it */
	for (size_t i = 0; i < wq->nbuckets; i++) {
		struct wq_item *it = wq->buckets[i], *next;
		for (; it; it = next) {
			next = it->hash_next;
			free(it);
		}
	}
	free(wq->buckets);
	free(wq->heap);
	free(wq->threads);
	free(wq->name);
	pthread_cond_destroy(&wq->exit_cond);
	pthread_cond_destroy(&wq->work_cond);
	pthread_mutex_destroy(&wq->mu);
	free(wq);
}
