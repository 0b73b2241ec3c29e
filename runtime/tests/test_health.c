#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "stk/buf.h"
#include "stk/err.h"
#include "stk/health.h"
#include "stk/http.h"
#include "stk/loop.h"

struct flag {
	atomic_bool ok;
	const char *why;
};

static bool check_flag(void *arg, stk_buf *message)
{
	struct flag *f = arg;
	bool ok = atomic_load(&f->ok);
	if (!ok)
		stk_buf_puts(message, f->why);
	return ok;
}

static void test_health__evaluate_lists_checks_of_one_kind(void **state)
{
	stk_health *h = stk_health_new();
	struct flag informers = {true, "not synced"}, gitdir = {false, "disk\nfull"};
	stk_buf out = STK_BUF_INIT(4096);
	(void)state;

	assert_int_equal(
		stk_health_add(h, "informers", STK_HEALTH_READY, check_flag, &informers, NULL), 0);
	assert_int_equal(stk_health_add(h, "storage", STK_HEALTH_LIVE | STK_HEALTH_READY,
					check_flag, &gitdir, NULL),
			 0);

	assert_false(stk_health_evaluate(h, STK_HEALTH_LIVE, NULL, &out));
	assert_string_equal(out.ptr, "[-]storage failed: disk full\n");
	stk_buf_reset(&out);

	assert_false(stk_health_evaluate(h, STK_HEALTH_READY, NULL, &out));
	assert_string_equal(out.ptr, "[+]shutdown ok\n[+]informers ok\n"
				     "[-]storage failed: disk full\n");
	stk_buf_reset(&out);

	/* Excluding the failing check makes readiness pass. */
	assert_true(stk_health_evaluate(h, STK_HEALTH_READY, "storage", &out));
	stk_buf_reset(&out);

	/* No startup checks: passes. */
	assert_true(stk_health_evaluate(h, STK_HEALTH_STARTUP, NULL, &out));
	assert_int_equal(out.len, 0);

	stk_buf_release(&out);
	stk_health_free(h);
}

static void test_health__registration_errors(void **state)
{
	stk_health *h = stk_health_new();
	struct flag f = {true, ""};
	stk_err err = STK_ERR_INIT;
	(void)state;

	assert_int_equal(stk_health_add(h, "a", STK_HEALTH_LIVE, check_flag, &f, &err), 0);
	assert_int_equal(stk_health_add(h, "a", STK_HEALTH_READY, check_flag, &f, &err),
			 STK_EEXIST);
	assert_int_equal(stk_health_add(h, "Bad Name", STK_HEALTH_LIVE, check_flag, &f, &err),
			 STK_EINVAL);
	assert_int_equal(stk_health_add(h, "shutdown", STK_HEALTH_READY, check_flag, &f, &err),
			 STK_EINVAL);
	assert_int_equal(stk_health_add(h, "b", 0, check_flag, &f, &err), STK_EINVAL);
	assert_int_equal(stk_health_add(h, "b", 8, check_flag, &f, &err), STK_EINVAL);
	stk_health_free(h);
}

/* --- over HTTP ------------------------------------------------------------------------- */

struct served {
	stk_loop *loop;
	stk_http_server *srv;
	pthread_t thread;
	int port;
};

static void *run_loop(void *arg)
{
	stk_loop_run(arg);
	return NULL;
}

static void serve(struct served *s, stk_health *h)
{
	stk_http_opts o = STK_HTTP_OPTS_INIT;
	o.bind_address = "127.0.0.1:0";
	o.name = "health";
	assert_int_equal(stk_loop_new(&s->loop, NULL), 0);
	assert_int_equal(stk_http_server_new(&s->srv, s->loop, &o, NULL), 0);
	assert_int_equal(stk_health_serve(h, s->srv, NULL), 0);
	s->port = stk_http_server_port(s->srv);
	stk_loop_on_shutdown(s->loop, stk_http_server_shutdown_hook, s->srv);
	pthread_create(&s->thread, NULL, run_loop, s->loop);
}

static void unserve(struct served *s)
{
	stk_loop_shutdown(s->loop);
	pthread_join(s->thread, NULL);
	stk_http_server_free(s->srv);
	stk_loop_free(s->loop);
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	return stk_buf_put(arg, p, size * n) == 0 ? size * n : 0;
}

static long probe(const struct served *s, const char *path, stk_buf *body)
{
	char url[256];
	long status = 0;
	CURL *c = curl_easy_init();

	stk_buf_reset(body);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status;
}

static void test_health__endpoints_answer_like_kubernetes(void **state)
{
	stk_health *h = stk_health_new();
	struct flag synced = {false, "informer cache for Stoker not synced"};
	struct flag loop_alive = {true, ""};
	struct flag first_sync = {false, "initial sync pending"};
	stk_buf body = STK_BUF_INIT(1 << 16);
	struct served s;
	(void)state;

	assert_int_equal(
		stk_health_add(h, "informers", STK_HEALTH_READY, check_flag, &synced, NULL), 0);
	assert_int_equal(stk_health_add(h, "loop", STK_HEALTH_LIVE, check_flag, &loop_alive, NULL),
			 0);
	assert_int_equal(stk_health_add(h, "initial-sync", STK_HEALTH_STARTUP, check_flag,
					&first_sync, NULL),
			 0);
	serve(&s, h);

	assert_int_equal(probe(&s, "/healthz", &body), 200);
	assert_string_equal(body.ptr, "ok");
	assert_int_equal(probe(&s, "/livez?verbose", &body), 200);
	assert_string_equal(body.ptr, "[+]loop ok\nlivez check passed\n");

	assert_int_equal(probe(&s, "/readyz", &body), 503);
	assert_string_equal(body.ptr, "[+]shutdown ok\n"
				      "[-]informers failed: informer cache for Stoker not synced\n"
				      "readyz check failed\n");
	assert_int_equal(probe(&s, "/readyz?exclude=informers", &body), 200);
	assert_int_equal(probe(&s, "/startupz", &body), 503);

	atomic_store(&synced.ok, true);
	atomic_store(&first_sync.ok, true);
	assert_int_equal(probe(&s, "/readyz", &body), 200);
	assert_string_equal(body.ptr, "ok");
	assert_int_equal(probe(&s, "/startupz", &body), 200);

	/* Shutdown: readiness fails, liveness still passes. */
	stk_health_set_shutting_down(h);
	assert_int_equal(probe(&s, "/readyz?verbose", &body), 503);
	assert_string_equal(body.ptr, "[-]shutdown failed: shutting down\n"
				      "[+]informers ok\n"
				      "readyz check failed\n");
	assert_int_equal(probe(&s, "/healthz", &body), 200);

	/* A liveness failure. */
	atomic_store(&loop_alive.ok, false);
	assert_int_equal(probe(&s, "/healthz", &body), 503);
	assert_string_equal(body.ptr, "[-]loop failed\nhealthz check failed\n");

	unserve(&s);
	stk_buf_release(&body);
	stk_health_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health__evaluate_lists_checks_of_one_kind),
		cmocka_unit_test(test_health__registration_errors),
		cmocka_unit_test(test_health__endpoints_answer_like_kubernetes),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
