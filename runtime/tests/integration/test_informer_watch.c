/*
 * Informers against a real API server: events reach handlers and the cache; the watch
 * resumes after the API server is stopped and restarted; changes made while it was away
 * (through a second API server on the same etcd) are not lost, including when the
 * resume point was compacted away (410 → relist).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "itest.h"
#include "stk/informer.h"
#include "stk/json.h"

struct world {
	stk_kube *k;
	const char *ns;
	stk_loop *loop;
	stk_curlm *curlm;
	stk_informer *inf;
	atomic_int adds, updates, deletes;
};

static void on_add(stk_obj *o, void *arg)
{
	struct world *w = arg;
	(void)o;
	atomic_fetch_add(&w->adds, 1);
}

static void on_update(stk_obj *old, stk_obj *cur, void *arg)
{
	struct world *w = arg;
	(void)old;
	(void)cur;
	atomic_fetch_add(&w->updates, 1);
}

static void on_delete(stk_obj *o, void *arg)
{
	struct world *w = arg;
	(void)o;
	atomic_fetch_add(&w->deletes, 1);
}

static void start_informer(void *arg)
{
	struct world *w = arg;
	struct stk_informer_opts o = STK_INFORMER_OPTS_INIT;
	struct stk_informer_handler h = {on_add, on_update, on_delete, w};

	assert_int_equal(stk_curlm_new(&w->curlm, w->loop, NULL), 0);
	o.gvr = &STK_GVR_CONFIGMAPS;
	o.ns = w->ns;
	o.backoff_min_ms = 200;
	o.backoff_max_ms = 1000;
	o.idle_timeout_ms = 20000;
	assert_int_equal(stk_informer_new(&w->inf, w->loop, w->curlm, w->k, &o, NULL), 0);
	stk_informer_add_handler(w->inf, &h);
	stk_informer_start(w->inf);
}

static void stop_informer(void *arg)
{
	struct world *w = arg;

	stk_informer_free(w->inf);
	stk_curlm_free(w->curlm);
	w->inf = NULL;
	w->curlm = NULL;
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	w->k = itest_client();
	w->ns = strdup(itest_namespace(w->k, "itest-inf"));
	assert_int_equal(stk_loop_new(&w->loop, NULL), 0);
	testloop_start(w->loop);
	testloop_call(w->loop, start_informer, w);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	testloop_call(w->loop, stop_informer, w);
	testloop_stop(w->loop);
	stk_loop_free(w->loop);
	itest_delete_namespace(w->k, w->ns);
	stk_kube_free(w->k);
	free((char *)w->ns);
	free(w);
	return 0;
}

static bool synced(void *arg)
{
	return stk_informer_synced(((struct world *)arg)->inf);
}

/* The cached value of data.k of ConfigMap `name`, or "" if absent. */
static void cached_value(struct world *w, const char *name, char *out, size_t cap)
{
	stk_obj *o = stk_informer_get(w->inf, w->ns, name);
	const char *v = o ? stk_json_str(o->root, "data", "k", NULL) : NULL;
	snprintf(out, cap, "%s", v ? v : "");
	stk_obj_unref(o);
}

struct expect {
	struct world *w;
	const char *name;
	const char *value; /* "" means absent */
};

static bool has_value(void *arg)
{
	struct expect *e = arg;
	char v[64];
	cached_value(e->w, e->name, v, sizeof(v));
	return !strcmp(v, e->value);
}

static void expect_cached(struct world *w, const char *name, const char *value, uint64_t timeout_ms)
{
	struct expect e = {w, name, value};
	char v[64];
	if (!testloop_wait(has_value, &e, timeout_ms)) {
		cached_value(w, name, v, sizeof(v));
		fail_msg("cache: %s/%s is \"%s\", expected \"%s\"", w->ns, name, v, value);
	}
}

static int count_selected(stk_obj *o, void *arg)
{
	(void)o;
	(*(int *)arg)++;
	return 0;
}

static void test_informer_watch__events_reach_cache_and_handlers(void **state)
{
	struct world *w = *state;
	stk_err err = STK_ERR_INIT;
	int n = 0;
	const char *patch = "{\"data\":{\"k\":\"two\"}}";

	assert_true(testloop_wait(synced, w, 30000));
	itest_create_cm(w->k, w->ns, "a", "one", "{\"tier\":\"x\"}");
	itest_create_cm(w->k, w->ns, "b", "one", "{\"tier\":\"y\"}");
	itest_create_cm(w->k, w->ns, "c", "one", NULL);
	expect_cached(w, "c", "one", 10000);
	assert_int_equal(stk_kube_patch(w->k, &STK_GVR_CONFIGMAPS, w->ns, "a", STK_PATCH_MERGE,
					patch, strlen(patch), NULL, NULL, &err),
			 0);
	expect_cached(w, "a", "two", 10000);
	assert_int_equal(stk_kube_delete(w->k, &STK_GVR_CONFIGMAPS, w->ns, "c", NULL, &err), 0);
	expect_cached(w, "c", "", 10000);
	assert_true(atomic_load(&w->adds) >= 3);
	assert_true(atomic_load(&w->updates) >= 1);
	assert_true(atomic_load(&w->deletes) >= 1);
	/*
	 * a, b, and possibly the kube-root-ca.crt the controller manager publishes into
	 * every namespace (asynchronously; slow right after an API server restart).
	 */
	size_t total = stk_informer_len(w->inf);
	assert_true(total == 2 || total == 3);

	/* Server-side apply bookkeeping is not kept in the cache. */
	stk_obj *a = stk_informer_get(w->inf, w->ns, "a");
	assert_non_null(a);
	assert_non_null(stk_json_str(a->root, "metadata", "uid", NULL));
	assert_null(stk_json_get(a->root, "metadata", "managedFields", NULL));
	stk_obj_unref(a);

	assert_int_equal(stk_informer_each(w->inf, w->ns, "tier=x", count_selected, &n, &err), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(stk_informer_each(w->inf, w->ns, "tier", count_selected, &n, &err), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(stk_informer_each(w->inf, w->ns, "!tier", count_selected, &n, &err), 0);
	assert_int_equal((size_t)n, total - 2);
	assert_int_equal(stk_informer_each(w->inf, w->ns, "a b", count_selected, &n, &err),
			 STK_EINVAL);
}

static void test_informer_watch__resumes_after_api_server_restart(void **state)
{
	struct world *w = *state;
	const char *stop[] = {"apiserver", "stop", NULL};
	const char *start[] = {"apiserver", "start", NULL};
	struct stk_informer_stats before, after;

	if (!itest_local_cluster()) {
		skip();
		return;
	}
	assert_true(testloop_wait(synced, w, 30000));
	stk_informer_stats(w->inf, &before);
	assert_int_equal(itest_cluster(stop), 0);
	usleep(1500 * 1000);
	assert_int_equal(itest_cluster(start), 0);
	itest_create_cm(w->k, w->ns, "after-restart", "fresh", NULL);
	expect_cached(w, "after-restart", "fresh", 30000);
	stk_informer_stats(w->inf, &after);
	assert_true(after.watches > before.watches);
	assert_true(after.errors > before.errors);
}

/* A client for the spare API server that the cluster script started. */
static stk_kube *spare_client(const char *path)
{
	struct stk_kubeconfig_opts o = STK_KUBECONFIG_OPTS_INIT;
	struct stk_kubeconfig *cfg = NULL;
	stk_kube *k = NULL;
	stk_err err = STK_ERR_INIT;

	o.path = path;
	if (stk_kubeconfig_load(&cfg, &o, &err) || stk_kube_new_take(&k, cfg, NULL, &err))
		fail_msg("spare client: %s", err.message);
	return k;
}

static void test_informer_watch__changes_while_down_are_not_lost(void **state)
{
	struct world *w = *state;
	const char *stop[] = {"apiserver", "stop", NULL};
	const char *start[] = {"apiserver", "start", NULL};
	const char *spare_start[] = {"apiserver", "spare-start", NULL};
	const char *spare_stop[] = {"apiserver", "spare-stop", NULL};
	struct stk_informer_stats before, after;
	char spare_path[4096];
	stk_err err = STK_ERR_INIT;
	stk_kube *spare;
	const char *patch = "{\"data\":{\"k\":\"changed-while-down\"}}";

	if (!itest_local_cluster()) {
		skip();
		return;
	}
	assert_true(testloop_wait(synced, w, 30000));
	itest_create_cm(w->k, w->ns, "keep", "v1", NULL);
	itest_create_cm(w->k, w->ns, "drop", "v1", NULL);
	expect_cached(w, "drop", "v1", 10000);
	stk_informer_stats(w->inf, &before);

	assert_int_equal(itest_cluster(stop), 0);
	assert_int_equal(itest_cluster(spare_start), 0);
	snprintf(spare_path, sizeof(spare_path), "%s/spare.kubeconfig", getenv("STOKER_E2E_DIR"));
	spare = spare_client(spare_path);
	itest_create_cm(spare, w->ns, "born-while-down", "hello", NULL);
	assert_int_equal(stk_kube_patch(spare, &STK_GVR_CONFIGMAPS, w->ns, "keep", STK_PATCH_MERGE,
					patch, strlen(patch), NULL, NULL, &err),
			 0);
	assert_int_equal(stk_kube_delete(spare, &STK_GVR_CONFIGMAPS, w->ns, "drop", NULL, &err), 0);
	for (int i = 0; i < 5; i++) {
		char name[32];
		snprintf(name, sizeof(name), "filler-%d", i);
		itest_create_cm(spare, w->ns, name, "f", NULL);
	}
	/* Compact etcd: the restarted server cannot resume the informer's old watch. */
	itest_compact_etcd();
	stk_kube_free(spare);
	assert_int_equal(itest_cluster(spare_stop), 0);
	assert_int_equal(itest_cluster(start), 0);

	expect_cached(w, "born-while-down", "hello", 30000);
	expect_cached(w, "keep", "changed-while-down", 30000);
	expect_cached(w, "drop", "", 30000);
	expect_cached(w, "filler-4", "f", 30000);
	stk_informer_stats(w->inf, &after);
	/* The old resume point was too old for the restarted server: it relisted. */
	assert_true(after.gone > before.gone);
	assert_true(after.relists > before.relists);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_informer_watch__events_reach_cache_and_handlers, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_informer_watch__resumes_after_api_server_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_informer_watch__changes_while_down_are_not_lost, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
