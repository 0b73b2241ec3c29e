/*
 * Transport faults against a scripted loopback server (fault_server.py): watch events
 * cut mid-line, a stalled watch, a storm of 500s, a watch line too large to hold, 429
 * with Retry-After, non-Status error bodies and oversized responses.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "stk/informer.h"
#include "stk/json.h"
#include "stk/kubeconfig.h"
#include "testloop.h"

extern char **environ;

struct fx {
	pid_t server;
	int server_out; /* kept open: the server must never see a closed stdout */
	int port;
	stk_kube *k;
	stk_loop *loop;
	stk_curlm *curlm;
	stk_informer *inf;
	struct stk_informer_opts opts;
};

static void start_server(struct fx *f, const char *scenario, size_t max_body)
{
	const char *script = getenv("STOKER_FAULT_SERVER");
	char python[] = "python3";
	char *argv[] = {python, (char *)script, (char *)scenario, NULL};
	posix_spawn_file_actions_t fa;
	int fds[2];
	char line[32] = "";
	char yaml[512];
	struct stk_kubeconfig *cfg = NULL;
	struct stk_kube_opts ko = STK_KUBE_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	ssize_t n;

	assert_non_null(script);
	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	/* Not the test's stderr: ctest waits for every holder of its pipe to exit. */
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	assert_int_equal(posix_spawnp(&f->server, "python3", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	/* The port arrives as one line. */
	n = 0;
	while (n < (ssize_t)sizeof(line) - 1 && !strchr(line, '\n')) {
		ssize_t got = read(fds[0], line + n, sizeof(line) - 1 - (size_t)n);
		assert_true(got > 0);
		n += got;
		line[n] = '\0';
	}
	f->server_out = fds[0];
	f->port = (int)strtol(line, NULL, 10);
	assert_true(f->port > 0);
	snprintf(yaml, sizeof(yaml),
		 "apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n"
		 "    server: http://127.0.0.1:%d\nusers:\n- name: u\n  user: {}\n"
		 "contexts:\n- name: f\n  context: {cluster: f, user: u, namespace: ns}\n"
		 "current-context: f\n",
		 f->port);
	if (stk_kubeconfig_parse(&cfg, yaml, strlen(yaml), "/nonexistent", NULL, &err))
		fail_msg("kubeconfig: %s", err.message);
	ko.timeout_ms = 5000;
	ko.max_body = max_body;
	if (stk_kube_new_take(&f->k, cfg, &ko, &err))
		fail_msg("client: %s", err.message);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct stk_informer_opts o = STK_INFORMER_OPTS_INIT;

	o.gvr = &STK_GVR_CONFIGMAPS;
	o.ns = "ns";
	o.backoff_min_ms = 50;
	o.backoff_max_ms = 2000;
	o.idle_timeout_ms = 1000;
	f->opts = o;
	assert_int_equal(stk_loop_new(&f->loop, NULL), 0);
	*state = f;
	return 0;
}

static atomic_int resyncs;

/* Counts resync notifications: an update whose old and new object are the same. */
static void on_update(stk_obj *old, stk_obj *cur, void *arg)
{
	(void)arg;
	if (old == cur)
		atomic_fetch_add(&resyncs, 1);
}

static void inf_start(void *arg)
{
	struct fx *f = arg;
	struct stk_informer_handler h = {NULL, on_update, NULL, NULL};
	assert_int_equal(stk_curlm_new(&f->curlm, f->loop, NULL), 0);
	assert_int_equal(stk_informer_new(&f->inf, f->loop, f->curlm, f->k, &f->opts, NULL), 0);
	stk_informer_add_handler(f->inf, &h);
	stk_informer_start(f->inf);
}

static void inf_free(void *arg)
{
	struct fx *f = arg;
	stk_informer_free(f->inf);
	stk_curlm_free(f->curlm);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->inf) {
		testloop_call(f->loop, inf_free, f);
		testloop_stop(f->loop);
	}
	stk_loop_free(f->loop);
	stk_kube_free(f->k);
	if (f->server > 0) {
		kill(f->server, SIGKILL);
		waitpid(f->server, NULL, 0);
	}
	if (f->server_out > 0)
		close(f->server_out);
	free(f);
	return 0;
}

static void run_informer(struct fx *f)
{
	testloop_start(f->loop);
	testloop_call(f->loop, inf_start, f);
}

struct want {
	struct fx *f;
	const char *name;
	const char *value; /* NULL: absent */
};

static bool cached(void *arg)
{
	struct want *w = arg;
	stk_obj *o = stk_informer_get(w->f->inf, "ns", w->name);
	const char *v = o ? stk_json_str(o->root, "data", "k", NULL) : NULL;
	bool ok = w->value ? (v && !strcmp(v, w->value)) : !o;
	stk_obj_unref(o);
	return ok;
}

static void expect(struct fx *f, const char *name, const char *value, uint64_t ms)
{
	struct want w = {f, name, value};
	struct stk_informer_stats s;
	if (!testloop_wait(cached, &w, ms)) {
		char last[STK_ERR_MESSAGE_MAX + 64];
		stk_informer_stats(f->inf, &s);
		stk_informer_last_error(f->inf, last, sizeof(last));
		fail_msg("%s is not %s in the cache (last error: %s; lists %llu, watches %llu, "
			 "events %llu, errors %llu, idle resets %llu)",
			 name, value ? value : "absent", last, (unsigned long long)s.lists,
			 (unsigned long long)s.watches, (unsigned long long)s.events,
			 (unsigned long long)s.errors, (unsigned long long)s.idle_resets);
	}
}

/* The server's request log. */
static int count_requests(struct fx *f, const char *needle)
{
	stk_err err = STK_ERR_INIT;
	yajl_val log = NULL;
	struct stk_kube_request req = {"GET", "/_requests", NULL, NULL, NULL, 0, 0};
	int n = 0;

	assert_int_equal(stk_kube_do(f->k, &req, &log, &err), 0);
	for (size_t i = 0; i < log->u.array.len; i++)
		if (strstr(log->u.array.values[i]->u.string, needle))
			n++;
	yajl_tree_free(log);
	return n;
}

static void test_transport_faults__events_split_mid_line(void **state)
{
	struct fx *f = *state;
	struct stk_informer_stats s;

	start_server(f, "split", 0);
	run_informer(f);
	expect(f, "a", "changed", 10000);
	expect(f, "b", NULL, 10000);
	stk_informer_stats(f->inf, &s);
	assert_int_equal(s.events, 3);
	assert_int_equal(s.bookmarks, 1);
	assert_int_equal(s.errors, 0);
	assert_int_equal(s.lists, 1);
}

static bool has_c(void *arg)
{
	struct want w = {arg, "c", "v"};
	return cached(&w);
}

static void test_transport_faults__stalled_watch_is_dropped_and_resumed(void **state)
{
	struct fx *f = *state;
	struct stk_informer_stats s;

	start_server(f, "stall", 0);
	run_informer(f);
	expect(f, "b", "v", 5000);
	/* The first stream goes silent; after the idle timeout the informer resumes. */
	assert_true(testloop_wait(has_c, f, 10000));
	stk_informer_stats(f->inf, &s);
	assert_true(s.idle_resets >= 1);
	assert_int_equal(s.lists, 1);
	/* It resumed from the last event it saw, not from scratch. */
	assert_true(count_requests(f, "watch=true") >= 2);
	assert_int_equal(count_requests(f, "resourceVersion=11"), 1);
}

static void test_transport_faults__error_storm_backs_off(void **state)
{
	struct fx *f = *state;
	struct stk_informer_stats s;
	uint64_t t0;

	start_server(f, "storm", 0);
	t0 = stk_now_ms();
	run_informer(f);
	expect(f, "a", "v", 20000);
	stk_informer_stats(f->inf, &s);
	assert_int_equal(s.errors, 6);
	/* Six failed lists, exactly: retries are spaced by backoff, not a tight loop. */
	assert_int_equal(count_requests(f, "limit=500"), 7);
	/* Jittered doubling from 50 ms: at least 25+50+100+200+400+800 ms. */
	assert_true(stk_now_ms() - t0 >= 1575);
}

static void test_transport_faults__huge_line_relists(void **state)
{
	struct fx *f = *state;
	struct stk_informer_stats s;

	start_server(f, "hugeline", 0);
	run_informer(f);
	/* The 9 MiB event is refused; the informer relists and sees what it missed. */
	expect(f, "b", "v", 20000);
	expect(f, "huge", NULL, 100);
	stk_informer_stats(f->inf, &s);
	assert_true(s.relists >= 1);
	assert_true(s.errors >= 1);
}

static bool resynced_twice(void *arg)
{
	(void)arg;
	return atomic_load(&resyncs) >= 2; /* two periods over the one cached object */
}

static void test_transport_faults__periodic_resync_replays_the_cache(void **state)
{
	struct fx *f = *state;

	start_server(f, "split", 0);
	f->opts.resync_ms = 150;
	atomic_store(&resyncs, 0);
	run_informer(f);
	expect(f, "a", "changed", 10000);
	expect(f, "b", NULL, 10000);
	assert_int_equal(stk_informer_len(f->inf), 1);
	atomic_store(&resyncs, 0);
	/* Every resync period each cached object is handed to on_update(obj, obj). */
	assert_true(testloop_wait(resynced_twice, f, 2000));
}

static void test_transport_faults__rest_errors(void **state)
{
	struct fx *f = *state;
	stk_err err = STK_ERR_INIT;
	yajl_val v = NULL;

	start_server(f, "rest", 64 * 1024);
	assert_int_equal(stk_kube_get(f->k, &STK_GVR_CONFIGMAPS, "ns", "limited", &v, &err),
			 STK_ETOOMANY);
	assert_int_equal(err.retry_after_ms, 7000);
	assert_int_equal(err.http_status, 429);
	assert_int_equal(stk_kube_get(f->k, &STK_GVR_CONFIGMAPS, "ns", "broken", &v, &err),
			 STK_ESERVER);
	assert_string_equal(err.message, "etcd is unhappy");
	assert_int_equal(
		stk_kube_get(f->k, &STK_GVR_CONFIGMAPS, "ns", "plain-text-error", &v, &err),
		STK_ESERVER);
	assert_int_equal(err.http_status, 502);
	assert_non_null(strstr(err.message, "HTTP 502: upstream connect error or disconnect"));
	assert_int_equal(stk_kube_get(f->k, &STK_GVR_CONFIGMAPS, "ns", "big", &v, &err),
			 STK_ETOOBIG);
	assert_int_equal(stk_kube_get(f->k, &STK_GVR_CONFIGMAPS, "ns", "missing", &v, &err),
			 STK_ENOTFOUND);
	/* A server that is gone. */
	kill(f->server, SIGKILL);
	waitpid(f->server, NULL, 0);
	f->server = 0;
	assert_int_equal(stk_kube_get(f->k, &STK_GVR_CONFIGMAPS, "ns", "a", &v, &err),
			 STK_EUNAVAIL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_transport_faults__events_split_mid_line, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_transport_faults__stalled_watch_is_dropped_and_resumed, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_transport_faults__error_storm_backs_off, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_transport_faults__huge_line_relists, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_transport_faults__periodic_resync_replays_the_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transport_faults__rest_errors, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
