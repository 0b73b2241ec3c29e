#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "stk/limits.h"
#include "stk/workqueue.h"

/*
 * Timing assertions only bound from below (a delay never fires early) and from above with
 * margins of hundreds of milliseconds, so the tests hold under valgrind and sanitizers.
 */
#define WAIT_MS	 10000u
#define SLACK_MS 1500u

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* A thread-safe log of reconcile calls that tests can wait on. */
#define LOG_MAX 512

struct call {
	char key[32];
	uint64_t at_ms;
	unsigned requeues; /* stk_workqueue_num_requeues at call time */
};

struct tlog {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct call calls[LOG_MAX];
	int n;
	stk_workqueue *wq;
	uint64_t t0;
	/* Per-test knobs and observations. */
	int fail_first;	     /* calls that return an error before succeeding */
	uint64_t requeue_ms; /* *requeue_after_ms set on each call ... */
	int requeue_calls;   /* ... for this many calls */
	int gate_open;	     /* slow keys wait for this */
	int fast_done;	     /* set when "fast" ran */
	int slow_saw_fast;   /* "slow" observed "fast" finishing while in flight */
	int slow_finished;
	int wait_rc_in_worker; /* stk_workqueue_wait called from a worker */
	unsigned slow_ms;
	atomic_int inflight[4];
	atomic_int inflight_all;
	atomic_int max_inflight_all;
	atomic_int overlaps;
	atomic_int ncalls;
	/* Observer hooks. */
	size_t depths[LOG_MAX];
	int ndepths;
	uint64_t retry_delays[LOG_MAX];
	unsigned retry_requeues[LOG_MAX];
	int nretries;
	uint64_t durations_us[LOG_MAX];
	int reconcile_rcs[LOG_MAX];
	int nreconciles;
	atomic_int stopped;
};

static void tlog_init(struct tlog *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->t0 = now_ms();
}

static void tlog_destroy(struct tlog *l)
{
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->mu);
}

/* Records a call and returns its index. */
static int tlog_record(struct tlog *l, const char *key)
{
	unsigned requeues = l->wq ? stk_workqueue_num_requeues(l->wq, key) : 0;
	int i;

	pthread_mutex_lock(&l->mu);
	i = l->n;
	if (l->n < LOG_MAX) {
		snprintf(l->calls[i].key, sizeof(l->calls[i].key), "%s", key);
		l->calls[i].at_ms = now_ms() - l->t0;
		l->calls[i].requeues = requeues;
		l->n++;
	}
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
	return i;
}

static bool tlog_wait(struct tlog *l, int n)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	bool ok;

	pthread_mutex_lock(&l->mu);
	while (l->n < n && now_ms() < deadline) {
		pthread_mutex_unlock(&l->mu);
		sleep_ms(2);
		pthread_mutex_lock(&l->mu);
	}
	ok = l->n >= n;
	pthread_mutex_unlock(&l->mu);
	return ok;
}

static int tlog_n(struct tlog *l)
{
	int n;

	pthread_mutex_lock(&l->mu);
	n = l->n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

static int tlog_count(struct tlog *l, const char *key)
{
	int c = 0;

	pthread_mutex_lock(&l->mu);
	for (int i = 0; i < l->n; i++)
		c += !strcmp(l->calls[i].key, key);
	pthread_mutex_unlock(&l->mu);
	return c;
}

/* Waits (bounded) until `flag` is set under the log's lock. */
static bool tlog_wait_flag(struct tlog *l, const int *flag)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	bool ok;

	pthread_mutex_lock(&l->mu);
	while (!*flag && now_ms() < deadline) {
		pthread_mutex_unlock(&l->mu);
		sleep_ms(1);
		pthread_mutex_lock(&l->mu);
	}
	ok = *flag != 0;
	pthread_mutex_unlock(&l->mu);
	return ok;
}

static void tlog_set(struct tlog *l, int *flag)
{
	pthread_mutex_lock(&l->mu);
	*flag = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
}

static stk_workqueue *new_queue(struct tlog *l, stk_workqueue_fn fn, unsigned workers,
				uint64_t base, uint64_t max)
{
	struct stk_workqueue_opts o = STK_WORKQUEUE_OPTS_INIT;
	stk_workqueue *wq = NULL;
	stk_err err = STK_ERR_INIT;

	o.name = "test";
	o.workers = workers;
	o.base_delay_ms = base;
	o.max_delay_ms = max;
	o.reconcile = fn;
	o.arg = l;
	assert_int_equal(stk_workqueue_new(&wq, &o, &err), 0);
	l->wq = wq;
	return wq;
}

static void stop_queue(stk_workqueue *wq, bool drain)
{
	stk_err err = STK_ERR_INIT;

	stk_workqueue_shutdown(wq, drain);
	assert_int_equal(stk_workqueue_wait(wq, WAIT_MS, &err), 0);
}

/* ---- reconcilers ---- */

static int rec_ok(const char *key, void *arg, uint64_t *requeue_after_ms)
{
	(void)requeue_after_ms;
	tlog_record(arg, key);
	return 0;
}

/* Fails the first l->fail_first calls, then succeeds. */
static int rec_flaky(const char *key, void *arg, uint64_t *requeue_after_ms)
{
	struct tlog *l = arg;
	int i = tlog_record(l, key), fail;

	pthread_mutex_lock(&l->mu);
	if (i < l->requeue_calls)
		*requeue_after_ms = l->requeue_ms;
	fail = i < l->fail_first;
	pthread_mutex_unlock(&l->mu);
	return fail ? STK_EUNAVAIL : 0;
}

/* Detects two workers holding one key, and counts parallelism across keys. */
static int rec_overlap(const char *key, void *arg, uint64_t *requeue_after_ms)
{
	struct tlog *l = arg;
	int k = key[1] - '0', all, max;

	(void)requeue_after_ms;
	/* cmocka asserts cannot run on a worker thread; a bad key poisons the counter. */
	if (k < 0 || k >= 4) {
		atomic_fetch_add(&l->overlaps, 1000);
		return 0;
	}
	atomic_fetch_add(&l->ncalls, 1);
	if (atomic_fetch_add(&l->inflight[k], 1) != 0)
		atomic_fetch_add(&l->overlaps, 1);
	all = atomic_fetch_add(&l->inflight_all, 1) + 1;
	max = atomic_load(&l->max_inflight_all);
	while (all > max && !atomic_compare_exchange_weak(&l->max_inflight_all, &max, all))
		;
	sleep_ms(2);
	atomic_fetch_sub(&l->inflight_all, 1);
	atomic_fetch_sub(&l->inflight[k], 1);
	return 0;
}

/* "a" waits for the gate on its first call; every call checks for overlap. */
static int rec_gated(const char *key, void *arg, uint64_t *requeue_after_ms)
{
	struct tlog *l = arg;
	int i;

	(void)requeue_after_ms;
	if (atomic_fetch_add(&l->inflight[0], 1) != 0)
		atomic_fetch_add(&l->overlaps, 1);
	i = tlog_record(l, key);
	if (i == 0)
		tlog_wait_flag(l, &l->gate_open);
	atomic_fetch_sub(&l->inflight[0], 1);
	return 0;
}

/* "slow" blocks until "fast" ran (or a long timeout); "fast" returns at once. */
static int rec_slow_fast(const char *key, void *arg, uint64_t *requeue_after_ms)
{
	struct tlog *l = arg;

	(void)requeue_after_ms;
	tlog_record(l, key);
	if (!strcmp(key, "fast")) {
		tlog_set(l, &l->fast_done);
	} else if (!strcmp(key, "slow")) {
		if (tlog_wait_flag(l, &l->fast_done))
			tlog_set(l, &l->slow_saw_fast);
	}
	return 0;
}

/* "slow" sleeps l->slow_ms; "a" fails (asking for a retry). Records finishing. */
static int rec_shutdown(const char *key, void *arg, uint64_t *requeue_after_ms)
{
	struct tlog *l = arg;

	tlog_record(l, key);
	if (!strcmp(key, "slow")) {
		sleep_ms(l->slow_ms);
		tlog_set(l, &l->slow_finished);
		return 0;
	}
	if (!strcmp(key, "a")) {
		*requeue_after_ms = 1;
		return STK_EUNAVAIL;
	}
	if (!strcmp(key, "w")) {
		/* Read by the test after the join, which orders it. */
		stk_workqueue_shutdown(l->wq, false);
		l->wait_rc_in_worker = stk_workqueue_wait(l->wq, 0, NULL);
	}
	return 0;
}

/* ---- tests ---- */

static void test_workqueue__rejects_bad_options_and_keys(void **state)
{
	struct stk_workqueue_opts o = STK_WORKQUEUE_OPTS_INIT;
	stk_workqueue *wq = NULL;
	stk_err err = STK_ERR_INIT;
	char big[STK_LIMIT_QUEUE_KEY + 2];
	struct tlog l;

	(void)state;
	tlog_init(&l);
	assert_int_equal(stk_workqueue_new(&wq, &o, &err), STK_EINVAL);
	assert_null(wq);
	o.reconcile = rec_ok;
	o.workers = STK_WORKQUEUE_MAX_WORKERS + 1;
	assert_int_equal(stk_workqueue_new(&wq, &o, &err), STK_EINVAL);
	o.workers = 1;
	o.base_delay_ms = 10;
	o.max_delay_ms = 5;
	assert_int_equal(stk_workqueue_new(&wq, &o, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "exceeds"));
	assert_null(wq);

	wq = new_queue(&l, rec_ok, 1, 0, 0);
	assert_string_equal(stk_workqueue_name(wq), "test");
	assert_int_equal(stk_workqueue_add(wq, NULL), STK_EINVAL);
	assert_int_equal(stk_workqueue_add(wq, ""), STK_EINVAL);
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(stk_workqueue_add(wq, big), STK_ETOOBIG);
	big[STK_LIMIT_QUEUE_KEY] = '\0';
	assert_int_equal(stk_workqueue_add(wq, big), 0);
	assert_int_equal(stk_workqueue_len(wq), 1);
	/* wait before shutdown is a misuse, reported rather than blocking forever. */
	assert_int_equal(stk_workqueue_wait(wq, 0, &err), STK_EINVAL);
	assert_int_equal(stk_workqueue_start(wq, &err), 0);
	assert_int_equal(stk_workqueue_start(wq, &err), STK_EINVAL);
	assert_true(tlog_wait(&l, 1));
	stop_queue(wq, false);
	assert_int_equal(stk_workqueue_start(wq, &err), STK_EINVAL);
	stk_workqueue_free(wq);
	stk_workqueue_free(NULL);
	tlog_destroy(&l);
}

static void test_workqueue__add_dedupes_waiting_keys(void **state)
{
	struct tlog l;
	stk_workqueue *wq;

	(void)state;
	tlog_init(&l);
	wq = new_queue(&l, rec_ok, 1, 0, 0);
	/* Not started: keys wait, and a waiting key is queued once. */
	assert_int_equal(stk_workqueue_add(wq, "ns/a"), 0);
	assert_int_equal(stk_workqueue_add(wq, "ns/b"), 0);
	assert_int_equal(stk_workqueue_add(wq, "ns/a"), 0);
	assert_int_equal(stk_workqueue_add(wq, "ns/a"), 0);
	assert_int_equal(stk_workqueue_len(wq), 2);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_true(tlog_wait(&l, 2));
	sleep_ms(100);
	stop_queue(wq, false);
	assert_int_equal(tlog_n(&l), 2);
	/* First in, first out. */
	assert_string_equal(l.calls[0].key, "ns/a");
	assert_string_equal(l.calls[1].key, "ns/b");
	assert_int_equal(stk_workqueue_len(wq), 0);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

struct adder {
	stk_workqueue *wq;
	int seed;
};

static void *adder_main(void *p)
{
	struct adder *a = p;
	char key[3] = {'k', '0', '\0'};

	for (int i = 0; i < 300; i++) {
		key[1] = (char)('0' + (i + a->seed) % 4);
		stk_workqueue_add(a->wq, key);
		if (i % 16 == 0)
			sleep_ms(1);
	}
	return NULL;
}

static void test_workqueue__one_key_never_runs_on_two_workers(void **state)
{
	struct tlog l;
	stk_workqueue *wq;
	pthread_t t[4];
	struct adder a[4];

	(void)state;
	tlog_init(&l);
	wq = new_queue(&l, rec_overlap, 4, 0, 0);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	for (int i = 0; i < 4; i++) {
		a[i].wq = wq;
		a[i].seed = i;
		pthread_create(&t[i], NULL, adder_main, &a[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	stop_queue(wq, true);
	assert_int_equal(atomic_load(&l.overlaps), 0);
	/* The workers did run in parallel, so the absence of overlap means something. */
	assert_true(atomic_load(&l.max_inflight_all) > 1);
	/* Every key ran, but adds were collapsed: fewer reconciles than the 1200 adds. */
	assert_true(atomic_load(&l.ncalls) >= 4);
	assert_true(atomic_load(&l.ncalls) < 1200);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static void test_workqueue__add_during_processing_requeues_once(void **state)
{
	struct tlog l;
	stk_workqueue *wq;

	(void)state;
	tlog_init(&l);
	wq = new_queue(&l, rec_gated, 2, 0, 0);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_int_equal(stk_workqueue_add(wq, "a"), 0);
	assert_true(tlog_wait(&l, 1));
	/* In flight: the adds mark it dirty but do not queue it for the idle worker. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(stk_workqueue_add(wq, "a"), 0);
	assert_int_equal(stk_workqueue_len(wq), 0);
	sleep_ms(50);
	assert_int_equal(tlog_n(&l), 1);
	tlog_set(&l, &l.gate_open);
	assert_true(tlog_wait(&l, 2));
	sleep_ms(150);
	assert_int_equal(tlog_count(&l, "a"), 2);
	assert_int_equal(atomic_load(&l.overlaps), 0);
	stop_queue(wq, false);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static void test_workqueue__add_after_runs_in_time_order(void **state)
{
	struct tlog l;
	stk_workqueue *wq;

	(void)state;
	tlog_init(&l);
	wq = new_queue(&l, rec_ok, 1, 0, 0);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	l.t0 = now_ms();
	assert_int_equal(stk_workqueue_add_after(wq, "a", 240), 0);
	assert_int_equal(stk_workqueue_add_after(wq, "b", 60), 0);
	assert_int_equal(stk_workqueue_add_after(wq, "c", 150), 0);
	/* Delayed keys are not "ready". */
	assert_int_equal(stk_workqueue_len(wq), 0);
	assert_true(tlog_wait(&l, 3));
	assert_string_equal(l.calls[0].key, "b");
	assert_string_equal(l.calls[1].key, "c");
	assert_string_equal(l.calls[2].key, "a");
	assert_true(l.calls[0].at_ms >= 60);
	assert_true(l.calls[1].at_ms >= 150);
	assert_true(l.calls[2].at_ms >= 240);
	assert_true(l.calls[2].at_ms < 240 + SLACK_MS);
	/* A zero delay is a plain add. */
	assert_int_equal(stk_workqueue_add_after(wq, "now", 0), 0);
	assert_true(tlog_wait(&l, 4));
	assert_string_equal(l.calls[3].key, "now");
	stop_queue(wq, false);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static void test_workqueue__add_after_earliest_time_wins(void **state)
{
	struct tlog l;
	stk_workqueue *wq;

	(void)state;
	tlog_init(&l);
	wq = new_queue(&l, rec_ok, 2, 0, 0);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	l.t0 = now_ms();
	assert_int_equal(stk_workqueue_add_after(wq, "x", 2000), 0);
	assert_int_equal(stk_workqueue_add_after(wq, "x", 50), 0);
	assert_int_equal(stk_workqueue_add_after(wq, "y", 50), 0);
	assert_int_equal(stk_workqueue_add_after(wq, "y", 2000), 0);
	assert_true(tlog_wait(&l, 2));
	for (int i = 0; i < 2; i++) {
		assert_true(l.calls[i].at_ms >= 50);
		assert_true(l.calls[i].at_ms < 1500);
	}
	/* The later times were dropped, not kept as a second entry. */
	while (now_ms() - l.t0 < 2300)
		sleep_ms(20);
	assert_int_equal(tlog_count(&l, "x"), 1);
	assert_int_equal(tlog_count(&l, "y"), 1);
	stop_queue(wq, false);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static void on_retry(void *obs, const char *key, unsigned requeues, uint64_t delay_ms)
{
	struct tlog *l = obs;

	(void)key;
	pthread_mutex_lock(&l->mu);
	if (l->nretries < LOG_MAX) {
		l->retry_requeues[l->nretries] = requeues;
		l->retry_delays[l->nretries++] = delay_ms;
	}
	pthread_mutex_unlock(&l->mu);
}

static void test_workqueue__failures_back_off_to_the_cap_and_reset(void **state)
{
	static const uint64_t expect[] = {16, 32, 64, 128, 128, 128};
	struct stk_workqueue_opts o = STK_WORKQUEUE_OPTS_INIT;
	stk_workqueue *wq = NULL;
	struct tlog l;
	int n = (int)(sizeof(expect) / sizeof(expect[0]));

	(void)state;
	tlog_init(&l);
	l.fail_first = n;
	/* One worker: each retry hook has run before the next call is recorded. */
	o.workers = 1;
	o.base_delay_ms = 16;
	o.max_delay_ms = 128;
	o.reconcile = rec_flaky;
	o.arg = &l;
	o.on_retry = on_retry;
	o.observer_arg = &l;
	assert_int_equal(stk_workqueue_new(&wq, &o, NULL), 0);
	l.wq = wq;
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_int_equal(stk_workqueue_add(wq, "f"), 0);
	/* n failures, then the success. */
	assert_true(tlog_wait(&l, n + 1));
	for (int i = 0; i < n; i++) {
		uint64_t gap = l.calls[i + 1].at_ms - l.calls[i].at_ms;
		/* Call i saw i earlier failures; its failure was retried after expect[i]. */
		assert_int_equal(l.calls[i].requeues, (unsigned)i);
		assert_int_equal(l.retry_delays[i], expect[i]);
		assert_int_equal(l.retry_requeues[i], (unsigned)i + 1);
		assert_true(gap >= expect[i] - 1);
		assert_true(gap < expect[i] + SLACK_MS);
	}
	assert_int_equal(l.calls[n].requeues, (unsigned)n);
	/* The success forgot the failures. */
	sleep_ms(20);
	assert_int_equal(stk_workqueue_num_requeues(wq, "f"), 0);

	/* The next failure starts from the base delay again. */
	pthread_mutex_lock(&l.mu);
	l.fail_first = n + 2;
	pthread_mutex_unlock(&l.mu);
	assert_int_equal(stk_workqueue_add(wq, "f"), 0);
	assert_true(tlog_wait(&l, n + 3));
	assert_int_equal(l.calls[n + 1].requeues, 0);
	assert_int_equal(l.calls[n + 2].requeues, 1);
	assert_int_equal(l.retry_delays[n], 16);
	assert_true(l.calls[n + 2].at_ms - l.calls[n + 1].at_ms >= 15);
	sleep_ms(50);
	assert_int_equal(tlog_n(&l), n + 3);
	stop_queue(wq, false);
	assert_int_equal(stk_workqueue_num_requeues(wq, "f"), 0);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static int rec_always_fail(const char *key, void *arg, uint64_t *requeue_after_ms)
{
	(void)requeue_after_ms;
	tlog_record(arg, key);
	return STK_EIO;
}

static void test_workqueue__forget_clears_failures(void **state)
{
	struct tlog l;
	stk_workqueue *wq;

	(void)state;
	tlog_init(&l);
	/* Retries after 200 ms then 400 ms: the count sits at 2 for a while. */
	wq = new_queue(&l, rec_always_fail, 1, 200, 60000);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_int_equal(stk_workqueue_add(wq, "k"), 0);
	assert_true(tlog_wait(&l, 2));
	for (int i = 0; i < 1000 && stk_workqueue_num_requeues(wq, "k") < 2; i++)
		sleep_ms(1);
	assert_int_equal(stk_workqueue_num_requeues(wq, "k"), 2);
	stk_workqueue_forget(wq, "k");
	assert_int_equal(stk_workqueue_num_requeues(wq, "k"), 0);
	assert_int_equal(stk_workqueue_num_requeues(wq, "unknown"), 0);
	stk_workqueue_forget(wq, "unknown");
	stop_queue(wq, false);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static void test_workqueue__requeue_after_resyncs_without_backoff(void **state)
{
	struct stk_workqueue_opts o = STK_WORKQUEUE_OPTS_INIT;
	stk_workqueue *wq = NULL;
	struct tlog l;

	(void)state;
	tlog_init(&l);
	l.requeue_calls = 3;
	l.requeue_ms = 40;
	o.workers = 1;
	o.reconcile = rec_flaky;
	o.arg = &l;
	o.on_retry = on_retry;
	o.observer_arg = &l;
	assert_int_equal(stk_workqueue_new(&wq, &o, NULL), 0);
	l.wq = wq;
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_int_equal(stk_workqueue_add(wq, "r"), 0);
	assert_true(tlog_wait(&l, 4));
	for (int i = 0; i < 3; i++) {
		assert_true(l.calls[i + 1].at_ms - l.calls[i].at_ms >= 39);
		assert_int_equal(l.calls[i + 1].requeues, 0);
	}
	sleep_ms(150);
	assert_int_equal(tlog_n(&l), 4);
	assert_int_equal(l.nretries, 0);

	/* A failure asking for a longer wait than its backoff (Retry-After) gets it. */
	pthread_mutex_lock(&l.mu);
	l.fail_first = 5;
	l.requeue_calls = 5;
	l.requeue_ms = 120;
	pthread_mutex_unlock(&l.mu);
	assert_int_equal(stk_workqueue_add(wq, "r"), 0);
	assert_true(tlog_wait(&l, 6));
	assert_int_equal(l.retry_delays[0], 120);
	assert_true(l.calls[5].at_ms - l.calls[4].at_ms >= 119);
	stop_queue(wq, false);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static void test_workqueue__slow_key_does_not_block_others(void **state)
{
	struct tlog l;
	stk_workqueue *wq;

	(void)state;
	tlog_init(&l);
	wq = new_queue(&l, rec_slow_fast, 2, 0, 0);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_int_equal(stk_workqueue_add(wq, "slow"), 0);
	assert_true(tlog_wait(&l, 1));
	assert_int_equal(stk_workqueue_add(wq, "fast"), 0);
	assert_true(tlog_wait(&l, 2));
	stop_queue(wq, false);
	/* "fast" finished while "slow" was still in its reconcile. */
	assert_true(l.slow_saw_fast);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static void on_stopped(void *obs)
{
	struct tlog *l = obs;

	atomic_fetch_add(&l->stopped, 1);
}

static void test_workqueue__shutdown_lets_in_flight_work_finish(void **state)
{
	struct stk_workqueue_opts o = STK_WORKQUEUE_OPTS_INIT;
	stk_workqueue *wq = NULL;
	stk_err err = STK_ERR_INIT;
	struct tlog l;
	uint64_t t;

	(void)state;
	tlog_init(&l);
	l.slow_ms = 300;
	o.workers = 1;
	o.reconcile = rec_shutdown;
	o.arg = &l;
	o.on_stopped = on_stopped;
	o.observer_arg = &l;
	assert_int_equal(stk_workqueue_new(&wq, &o, NULL), 0);
	l.wq = wq;
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_int_equal(stk_workqueue_add(wq, "slow"), 0);
	assert_true(tlog_wait(&l, 1));
	assert_int_equal(stk_workqueue_add(wq, "b"), 0);
	assert_int_equal(stk_workqueue_add(wq, "c"), 0);
	assert_int_equal(stk_workqueue_add_after(wq, "d", 10), 0);
	assert_false(stk_workqueue_shutting_down(wq));
	t = now_ms();
	stk_workqueue_shutdown(wq, false);
	assert_true(stk_workqueue_shutting_down(wq));
	assert_int_equal(stk_workqueue_len(wq), 0);
	assert_int_equal(stk_workqueue_add(wq, "e"), STK_ECANCELED);
	assert_int_equal(stk_workqueue_add_after(wq, "e", 5), STK_ECANCELED);
	/* Still running: a zero-timeout wait says so instead of blocking. */
	assert_int_equal(stk_workqueue_wait(wq, 0, &err), STK_ETIMEOUT);
	assert_non_null(strstr(err.message, "still running"));
	assert_int_equal(atomic_load(&l.stopped), 0);
	assert_int_equal(stk_workqueue_wait(wq, WAIT_MS, &err), 0);
	assert_true(now_ms() - t >= 200);
	assert_true(l.slow_finished);
	assert_int_equal(atomic_load(&l.stopped), 1);
	/* Queued and delayed keys were dropped. */
	sleep_ms(30);
	assert_int_equal(tlog_n(&l), 1);
	/* A second wait and shutdown are harmless. */
	stk_workqueue_shutdown(wq, true);
	assert_int_equal(stk_workqueue_wait(wq, 0, &err), 0);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static void test_workqueue__shutdown_with_drain_runs_queued_keys(void **state)
{
	struct tlog l;
	stk_workqueue *wq;

	(void)state;
	tlog_init(&l);
	l.slow_ms = 100;
	wq = new_queue(&l, rec_shutdown, 1, 0, 0);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_int_equal(stk_workqueue_add(wq, "slow"), 0);
	assert_true(tlog_wait(&l, 1));
	assert_int_equal(stk_workqueue_add(wq, "a"), 0);
	assert_int_equal(stk_workqueue_add(wq, "b"), 0);
	assert_int_equal(stk_workqueue_add_after(wq, "later", 20), 0);
	stk_workqueue_shutdown(wq, true);
	assert_int_equal(stk_workqueue_len(wq), 2);
	assert_int_equal(stk_workqueue_wait(wq, WAIT_MS, NULL), 0);
	assert_int_equal(tlog_n(&l), 3);
	assert_string_equal(l.calls[1].key, "a");
	assert_string_equal(l.calls[2].key, "b");
	/* "a" failed but its retry was refused; the delayed key was dropped. */
	sleep_ms(50);
	assert_int_equal(tlog_count(&l, "a"), 1);
	assert_int_equal(tlog_count(&l, "later"), 0);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static void test_workqueue__wait_from_a_worker_is_refused(void **state)
{
	struct tlog l;
	stk_workqueue *wq;

	(void)state;
	tlog_init(&l);
	wq = new_queue(&l, rec_shutdown, 2, 0, 0);
	/* The reconcile shuts the queue down itself, then tries to wait on it. */
	assert_int_equal(stk_workqueue_add(wq, "w"), 0);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_true(tlog_wait(&l, 1));
	stk_workqueue_shutdown(wq, false);
	assert_int_equal(stk_workqueue_wait(wq, WAIT_MS, NULL), 0);
	assert_int_equal(l.wait_rc_in_worker, STK_EINVAL);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

static void test_workqueue__free_stops_a_running_queue(void **state)
{
	struct tlog l;
	stk_workqueue *wq;
	char key[16];

	(void)state;
	tlog_init(&l);
	l.slow_ms = 50;
	wq = new_queue(&l, rec_shutdown, 3, 0, 0);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_int_equal(stk_workqueue_add(wq, "slow"), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "ns/k%d", i);
		assert_int_equal(stk_workqueue_add_after(wq, key, (uint64_t)(i % 5) * 1000), 0);
	}
	assert_true(tlog_wait(&l, 1));
	/* Frees queued, delayed and in-flight keys; waits for the in-flight reconcile. */
	stk_workqueue_free(wq);
	assert_true(l.slow_finished);
	tlog_destroy(&l);
}

static void on_depth(void *obs, size_t depth)
{
	struct tlog *l = obs;

	/* Called with the queue lock held; our own lock nests inside it. */
	pthread_mutex_lock(&l->mu);
	if (l->ndepths < LOG_MAX)
		l->depths[l->ndepths++] = depth;
	pthread_mutex_unlock(&l->mu);
}

static void on_reconcile(void *obs, const char *key, int rc, uint64_t duration_us)
{
	struct tlog *l = obs;

	(void)key;
	pthread_mutex_lock(&l->mu);
	if (l->nreconciles < LOG_MAX) {
		l->durations_us[l->nreconciles] = duration_us;
		l->reconcile_rcs[l->nreconciles++] = rc;
	}
	pthread_mutex_unlock(&l->mu);
}

static void test_workqueue__observer_hooks_report_depth_and_durations(void **state)
{
	struct stk_workqueue_opts o = STK_WORKQUEUE_OPTS_INIT;
	stk_workqueue *wq = NULL;
	struct tlog l;

	(void)state;
	tlog_init(&l);
	l.slow_ms = 30;
	o.workers = 1;
	o.reconcile = rec_shutdown;
	o.arg = &l;
	o.on_depth = on_depth;
	o.on_reconcile = on_reconcile;
	o.observer_arg = &l;
	assert_int_equal(stk_workqueue_new(&wq, &o, NULL), 0);
	l.wq = wq;
	assert_int_equal(stk_workqueue_add(wq, "slow"), 0);
	assert_int_equal(stk_workqueue_add(wq, "b"), 0);
	assert_int_equal(stk_workqueue_add(wq, "b"), 0);
	assert_int_equal(l.ndepths, 2);
	assert_int_equal(l.depths[0], 1);
	assert_int_equal(l.depths[1], 2);
	assert_int_equal(stk_workqueue_start(wq, NULL), 0);
	assert_true(tlog_wait(&l, 2));
	stop_queue(wq, false);
	assert_int_equal(l.ndepths, 4);
	assert_int_equal(l.depths[2], 1);
	assert_int_equal(l.depths[3], 0);
	assert_int_equal(l.nreconciles, 2);
	assert_int_equal(l.reconcile_rcs[0], 0);
	/* "slow" slept 30 ms: its measured duration covers that. */
	assert_true(l.durations_us[0] >= 30000);
	assert_true(l.durations_us[1] < l.durations_us[0]);
	stk_workqueue_free(wq);
	tlog_destroy(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workqueue__rejects_bad_options_and_keys),
		cmocka_unit_test(test_workqueue__add_dedupes_waiting_keys),
		cmocka_unit_test(test_workqueue__one_key_never_runs_on_two_workers),
		cmocka_unit_test(test_workqueue__add_during_processing_requeues_once),
		cmocka_unit_test(test_workqueue__add_after_runs_in_time_order),
		cmocka_unit_test(test_workqueue__add_after_earliest_time_wins),
		cmocka_unit_test(test_workqueue__failures_back_off_to_the_cap_and_reset),
		cmocka_unit_test(test_workqueue__forget_clears_failures),
		cmocka_unit_test(test_workqueue__requeue_after_resyncs_without_backoff),
		cmocka_unit_test(test_workqueue__slow_key_does_not_block_others),
		cmocka_unit_test(test_workqueue__shutdown_lets_in_flight_work_finish),
		cmocka_unit_test(test_workqueue__shutdown_with_drain_runs_queued_keys),
		cmocka_unit_test(test_workqueue__wait_from_a_worker_is_refused),
		cmocka_unit_test(test_workqueue__free_stops_a_running_queue),
		cmocka_unit_test(test_workqueue__observer_hooks_report_depth_and_durations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
