/*
 * The HTTP server against a real client: libcurl on 127.0.0.1, the server on a stk_loop
 * running in a background thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "stk/buf.h"
#include "stk/err.h"
#include "stk/http.h"
#include "stk/loop.h"
#include "stk/metrics.h"

/*
 * Checks made on the loop thread: cmocka's asserts must not longjmp across threads, so a
 * failed check there is counted and reported by fx_stop on the test thread.
 */
static atomic_int loop_failures;
#define LOOP_CHECK(cond)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "%s:%d: loop check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                       \
			atomic_fetch_add(&loop_failures, 1);                                  \
		}                                                                             \
	} while (0)

static void make_cert(char **cert_pem, char **key_pem);

/* --- fixture: a loop thread and one server --------------------------------------------- */

struct fx {
	stk_loop *loop;
	stk_http_server *srv;
	pthread_t thread;
	int baseline_handles;
	char base[64];
	const char *ca_pem; /* for https */

	atomic_int calls;
	atomic_int canceled;
	atomic_int late_completed;
	atomic_int deferred;
	stk_http_exchange *held;
	const char *file_path;
	int stream_fd;
};

static void count_handle(uv_handle_t *h, void *arg)
{
	(void)h;
	(*(int *)arg)++;
}

static int loop_handles(stk_loop *loop)
{
	int n = 0;
	uv_walk(stk_loop_uv(loop), count_handle, &n);
	return n;
}

static void fx_init(struct fx *f, stk_http_opts *opts)
{
	stk_err err = STK_ERR_INIT;
	stk_http_opts local = STK_HTTP_OPTS_INIT;

	memset(f, 0, sizeof(*f));
	assert_int_equal(stk_loop_new(&f->loop, NULL), 0);
	f->baseline_handles = loop_handles(f->loop);
	if (!opts) {
		local.bind_address = "127.0.0.1:0";
		opts = &local;
	}
	if (stk_http_server_new(&f->srv, f->loop, opts, &err) != 0)
		fail_msg("stk_http_server_new: %s", err.message);
	snprintf(f->base, sizeof(f->base), "%s://127.0.0.1:%d",
		 opts->tls_cert_pem || opts->tls_cert_file ? "https" : "http",
		 stk_http_server_port(f->srv));
}

static void *loop_main(void *arg)
{
	struct fx *f = arg;
	if (stk_loop_run(f->loop) != 0)
		fprintf(stderr, "loop: grace period expired\n");
	return NULL;
}

static void fx_run(struct fx *f)
{
	stk_loop_on_shutdown(f->loop, stk_http_server_shutdown_hook, f->srv);
	pthread_create(&f->thread, NULL, loop_main, f);
}

/* Stops through the shutdown hook, frees, and checks nothing was left on the loop. */
static void fx_stop(struct fx *f)
{
	stk_loop_shutdown(f->loop);
	pthread_join(f->thread, NULL);
	stk_http_server_free(f->srv);
	assert_int_equal(loop_handles(f->loop), f->baseline_handles);
	stk_loop_free(f->loop);
	assert_int_equal(atomic_load(&loop_failures), 0);
}

static void route(struct fx *f, const char *method, const char *path, stk_http_handler_fn fn,
		  void *arg)
{
	stk_err err = STK_ERR_INIT;
	if (stk_http_route(f->srv, method, path, fn, arg, &err) != 0)
		fail_msg("route: %s", err.message);
}

static bool wait_for(atomic_int *flag, int want, int timeout_ms)
{
	for (int i = 0; i < timeout_ms / 10; i++) {
		if (atomic_load(flag) >= want)
			return true;
		usleep(10000);
	}
	return atomic_load(flag) >= want;
}

/* --- client ---------------------------------------------------------------------------- */

struct reply {
	CURLcode rc;
	long status;
	stk_buf body;
	stk_buf headers;
	long connects;
	double seconds;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	return stk_buf_put(&r->body, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	return stk_buf_put(&r->headers, p, size * n) == 0 ? size * n : 0;
}

struct req {
	const char *method;
	const char *path;
	const char *body;
	size_t body_len;
	const char *const *headers;
	long timeout_ms;
	bool chunked;
	bool expect100; /* send "Expect: 100-continue" and wait up to 5 s for the go-ahead */
	CURL *reuse;
};

static void reply_release(struct reply *r)
{
	stk_buf_release(&r->body);
	stk_buf_release(&r->headers);
}

static struct reply request(struct fx *f, const struct req *q)
{
	struct reply r = {0};
	struct curl_slist *hl = NULL;
	char url[512];
	CURL *c = q->reuse ? q->reuse : curl_easy_init();

	stk_buf_init(&r.body, 64u << 20);
	stk_buf_init(&r.headers, 1 << 16);
	snprintf(url, sizeof(url), "%s%s", f->base, q->path);
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, q->timeout_ms ? q->timeout_ms : 20000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (q->method && strcmp(q->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (q->method)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	if (q->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
	}
	for (const char *const *h = q->headers; h && *h; h++)
		hl = curl_slist_append(hl, *h);
	if (q->chunked)
		hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
	if (q->expect100) {
		hl = curl_slist_append(hl, "Expect: 100-continue");
		curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 5000L);
	}
	if (hl)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	if (f->ca_pem) {
		struct curl_blob blob = {(void *)f->ca_pem, strlen(f->ca_pem), CURL_BLOB_COPY};
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	r.rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r.connects);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r.seconds);
	curl_slist_free_all(hl);
	if (!q->reuse)
		curl_easy_cleanup(c);
	return r;
}

static struct reply get(struct fx *f, const char *path)
{
	struct req q = {.path = path};
	return request(f, &q);
}

/* The value of response header `name` (case-insensitive), copied into dst. */
static bool header(const struct reply *r, const char *name, char *dst, size_t cap)
{
	size_t nlen = strlen(name);
	const char *p = r->headers.ptr;

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		if (!eol)
			break;
		if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			while (*v == ' ')
				v++;
			snprintf(dst, cap, "%.*s", (int)(eol - v), v);
			return true;
		}
		p = eol + 2;
	}
	return false;
}

/* --- handlers -------------------------------------------------------------------------- */

static int h_hello(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	struct fx *f = arg;
	(void)req;
	atomic_fetch_add(&f->calls, 1);
	stk_http_response_text(resp, 200, "hello\n");
	return STK_HTTP_DONE;
}

static int h_echo(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	struct fx *f = arg;
	stk_buf b = STK_BUF_INIT(1 << 20);
	const char *names[] = {"Authorization", "If-None-Match", "Content-Type",
			       "X-Hub-Signature-256", "X-Absent"};

	atomic_fetch_add(&f->calls, 1);
	stk_buf_printf(&b, "%s %s rest=%s query=%s\n", req->method, req->path, req->route_rest,
		       req->query);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = stk_http_request_header(req, names[i]);
		stk_buf_printf(&b, "%s=%s\n", names[i], v ? v : "(none)");
	}
	stk_buf_printf(&b, "a=%s verbose=%s missing=%s\n",
		       stk_http_request_query(req, "a") ? stk_http_request_query(req, "a") : "-",
		       stk_http_request_query(req, "verbose") ? "[set]" : "-",
		       stk_http_request_query(req, "missing") ? "[set]" : "-");
	stk_buf_printf(&b, "body=%zu:%.*s\n", req->body_len,
		       (int)(req->body_len > 32 ? 32 : req->body_len), req->body);
	stk_buf_printf(&b, "peer=%s\n", req->peer);
	LOOP_CHECK(stk_http_response_header(resp, "ETag", "\"sha256:abc\"", NULL) == 0);
	LOOP_CHECK(stk_http_response_header(resp, "Retry-After", "7", NULL) == 0);
	/* The server owns framing headers; bad names and values are refused. */
	LOOP_CHECK(stk_http_response_header(resp, "Content-Length", "1", NULL) == STK_EINVAL);
	LOOP_CHECK(stk_http_response_header(resp, "Bad Name", "x", NULL) == STK_EINVAL);
	LOOP_CHECK(stk_http_response_header(resp, "X-Split", "a\r\nInjected: 1", NULL) ==
		   STK_EINVAL);
	stk_http_response_body_take(resp, 201, "text/plain", &b);
	return STK_HTTP_DONE;
}

static int h_error(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	stk_http_response_text(resp, 200, "never sent\n");
	return STK_EAUTH;
}

static int h_size(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	struct fx *f = arg;
	char text[64];
	atomic_fetch_add(&f->calls, 1);
	snprintf(text, sizeof(text), "%zu\n", req->body_len);
	stk_http_response_text(resp, 200, text);
	return STK_HTTP_DONE;
}

/* --- tests: routing, headers, bodies --------------------------------------------------- */

static void test_http__routes_404_405_and_head(void **state)
{
	struct fx f;
	struct reply r;
	char allow[128];
	(void)state;

	fx_init(&f, NULL);
	route(&f, "GET", "/hello", h_hello, &f);
	route(&f, "PUT", "/hello", h_hello, &f);
	fx_run(&f);

	r = get(&f, "/hello");
	assert_int_equal(r.rc, CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.ptr, "hello\n");
	reply_release(&r);

	r = get(&f, "/nope");
	assert_int_equal(r.status, 404);
	reply_release(&r);

	r = request(&f, &(struct req){.method = "DELETE", .path = "/hello"});
	assert_int_equal(r.status, 405);
	assert_true(header(&r, "Allow", allow, sizeof(allow)));
	assert_string_equal(allow, "GET, PUT, HEAD");
	reply_release(&r);

	r = request(&f, &(struct req){.method = "HEAD", .path = "/hello"});
	assert_int_equal(r.rc, CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_true(header(&r, "Content-Length", allow, sizeof(allow)));
	assert_string_equal(allow, "6");
	assert_int_equal(r.body.len, 0);
	reply_release(&r);

	assert_int_equal(atomic_load(&f.calls), 2);
	fx_stop(&f);
}

static void test_http__prefix_routes_and_exact_precedence(void **state)
{
	struct fx f;
	struct reply r;
	(void)state;

	fx_init(&f, NULL);
	route(&f, "GET", "/gitsource/*", h_echo, &f);
	route(&f, "GET", "/gitsource/special", h_hello, &f);
	fx_run(&f);

	r = get(&f, "/gitsource/site1/repo/0123abcd.tar.gz");
	assert_int_equal(r.status, 201);
	assert_non_null(strstr(r.body.ptr, "GET /gitsource/site1/repo/0123abcd.tar.gz "
					   "rest=site1/repo/0123abcd.tar.gz"));
	reply_release(&r);

	r = get(&f, "/gitsource/special");
	assert_string_equal(r.body.ptr, "hello\n");
	reply_release(&r);

	r = get(&f, "/gitsource"); /* the prefix is "/gitsource/" */
	assert_int_equal(r.status, 404);
	reply_release(&r);
	fx_stop(&f);
}

static void test_http__request_headers_query_and_response_headers(void **state)
{
	const char *const hdrs[] = {"Authorization: Bearer s3cret", "If-None-Match: \"sha256:abc\"",
				    "Content-Type: application/json",
				    "X-Hub-Signature-256: sha256=deadbeef", NULL};
	struct fx f;
	struct reply r;
	char v[128];
	(void)state;

	fx_init(&f, NULL);
	route(&f, "POST", "/webhook/*", h_echo, &f);
	fx_run(&f);

	r = request(&f, &(struct req){.method = "POST",
				      .path = "/webhook/site1/plant?a=1&verbose",
				      .body = "{\"ref\":\"main\"}",
				      .body_len = 14,
				      .headers = hdrs});
	assert_int_equal(r.rc, CURLE_OK);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.body.ptr, "POST /webhook/site1/plant rest=site1/plant "
					"query=a=1&verbose\n"
					"Authorization=Bearer s3cret\n"
					"If-None-Match=\"sha256:abc\"\n"
					"Content-Type=application/json\n"
					"X-Hub-Signature-256=sha256=deadbeef\n"
					"X-Absent=(none)\n"
					"a=1 verbose=[set] missing=-\n"
					"body=14:{\"ref\":\"main\"}\n"
					"peer=127.0.0.1\n");
	assert_true(header(&r, "ETag", v, sizeof(v)));
	assert_string_equal(v, "\"sha256:abc\"");
	assert_true(header(&r, "Retry-After", v, sizeof(v)));
	assert_string_equal(v, "7");
	assert_true(header(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/plain");
	reply_release(&r);
	fx_stop(&f);
}

static void test_http__handler_error_codes_map_to_statuses(void **state)
{
	struct fx f;
	struct reply r;
	(void)state;

	fx_init(&f, NULL);
	route(&f, "GET", "/err", h_error, &f);
	fx_run(&f);
	r = get(&f, "/err");
	assert_int_equal(r.status, 401);
	assert_string_equal(r.body.ptr, "unauthorized\n");
	reply_release(&r);
	fx_stop(&f);
}

static void test_http__keep_alive_reuses_the_connection(void **state)
{
	struct fx f;
	struct reply r;
	CURL *c = curl_easy_init();
	(void)state;

	fx_init(&f, NULL);
	route(&f, "GET", "/hello", h_hello, &f);
	fx_run(&f);
	for (int i = 0; i < 3; i++) {
		r = request(&f, &(struct req){.path = "/hello", .reuse = c});
		assert_int_equal(r.status, 200);
		assert_int_equal(r.connects, i == 0 ? 1 : 0);
		reply_release(&r);
	}
	curl_easy_cleanup(c);
	fx_stop(&f);
}

static char *filled(size_t n, char c)
{
	char *p = malloc(n);
	memset(p, c, n);
	return p;
}

static void test_http__body_limit_413_without_calling_the_handler(void **state)
{
	stk_http_opts o = STK_HTTP_OPTS_INIT;
	size_t limit = 64 * 1024;
	char *big = filled(4 * limit, 'x');
	struct fx f;
	struct reply r;
	(void)state;

	o.bind_address = "127.0.0.1:0";
	o.max_body = limit;
	fx_init(&f, &o);
	route(&f, "POST", "/size", h_size, &f);
	route(&f, "GET", "/hello", h_hello, &f);
	fx_run(&f);

	/* Exactly the limit is accepted and delivered whole. */
	r = request(&f, &(struct req){
				.method = "POST", .path = "/size", .body = big, .body_len = limit});
	assert_int_equal(r.status, 200);
	assert_int_equal(strtoul(r.body.ptr, NULL, 10), limit);
	reply_release(&r);

	/* One byte more is refused from Content-Length alone. */
	r = request(&f,
		    &(struct req){
			    .method = "POST", .path = "/size", .body = big, .body_len = limit + 1});
	assert_int_equal(r.status, 413);
	reply_release(&r);

	/* Much more: still 413, the server does not wait for the whole body. */
	r = request(&f,
		    &(struct req){
			    .method = "POST", .path = "/size", .body = big, .body_len = 4 * limit});
	assert_int_equal(r.status, 413);
	reply_release(&r);

	/* A client that asks before sending gets "100 Continue" at once (not after its
	 * 5 s wait), or the final 413 without sending the body at all. */
	r = request(&f, &(struct req){.method = "POST",
				      .path = "/size",
				      .body = big,
				      .body_len = limit / 2,
				      .expect100 = true});
	assert_int_equal(r.status, 200);
	assert_int_equal(strtoul(r.body.ptr, NULL, 10), limit / 2);
	assert_true(r.seconds < 2.5);
	reply_release(&r);
	r = request(&f, &(struct req){.method = "POST",
				      .path = "/size",
				      .body = big,
				      .body_len = 2 * limit,
				      .expect100 = true});
	assert_int_equal(r.status, 413);
	assert_true(r.seconds < 2.5);
	reply_release(&r);

	/* A chunked body (no Content-Length) is refused with 411 before it is read. */
	r = request(&f, &(struct req){.method = "POST",
				      .path = "/size",
				      .body = big,
				      .body_len = limit / 2,
				      .chunked = true});
	assert_int_equal(r.status, 411);
	reply_release(&r);

	assert_int_equal(atomic_load(&f.calls), 2);
	r = get(&f, "/hello"); /* the server is fine afterwards */
	assert_int_equal(r.status, 200);
	reply_release(&r);
	fx_stop(&f);
	free(big);
}

static void test_http__default_body_limit_is_1mib(void **state)
{
	size_t mib = 1024 * 1024;
	char *big = filled(mib + 1, 'y');
	struct fx f;
	struct reply r;
	(void)state;

	fx_init(&f, NULL);
	route(&f, "POST", "/size", h_size, &f);
	fx_run(&f);
	r = request(&f,
		    &(struct req){.method = "POST", .path = "/size", .body = big, .body_len = mib});
	assert_int_equal(r.status, 200);
	assert_int_equal(strtoul(r.body.ptr, NULL, 10), mib);
	reply_release(&r);
	r = request(
		&f,
		&(struct req){.method = "POST", .path = "/size", .body = big, .body_len = mib + 1});
	assert_int_equal(r.status, 413);
	reply_release(&r);
	fx_stop(&f);
	free(big);
}

/* --- tests: deferred responses --------------------------------------------------------- */

struct later {
	struct fx *f;
	stk_http_exchange *ex;
	int delay_ms;
};

static void complete_on_loop(void *arg)
{
	struct later *l = arg;
	stk_http_response *resp = stk_http_exchange_response(l->ex);
	const stk_http_request *req = stk_http_exchange_request(l->ex);
	char text[128];

	if (!stk_http_exchange_canceled(l->ex)) {
		/* The request stays readable until complete. */
		snprintf(text, sizeof(text), "later for %s (%zu bytes)\n", req->path,
			 req->body_len);
		stk_http_response_text(resp, 202, text);
		stk_http_response_header(resp, "X-Deferred", "yes", NULL);
	}
	stk_http_exchange_complete(l->ex);
	atomic_fetch_add(&l->f->late_completed, 1);
	free(l);
}

static void *worker(void *arg)
{
	struct later *l = arg;
	usleep((useconds_t)l->delay_ms * 1000);
	stk_loop_post(l->f->loop, complete_on_loop, l);
	return NULL;
}

static int h_defer_worker(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	struct fx *f = arg;
	struct later *l = calloc(1, sizeof(*l));
	pthread_t t;

	(void)resp;
	l->f = f;
	l->ex = stk_http_defer(req);
	l->delay_ms = 150;
	pthread_create(&t, NULL, worker, l);
	pthread_detach(t);
	atomic_fetch_add(&f->deferred, 1);
	return STK_HTTP_DEFERRED;
}

static void test_http__deferred_response_completed_from_a_worker(void **state)
{
	struct fx f;
	struct reply r;
	char v[32];
	(void)state;

	fx_init(&f, NULL);
	route(&f, "POST", "/webhook/*", h_defer_worker, &f);
	fx_run(&f);
	r = request(&f, &(struct req){.method = "POST",
				      .path = "/webhook/ns/x",
				      .body = "{}",
				      .body_len = 2});
	assert_int_equal(r.rc, CURLE_OK);
	assert_int_equal(r.status, 202);
	assert_string_equal(r.body.ptr, "later for /webhook/ns/x (2 bytes)\n");
	assert_true(header(&r, "X-Deferred", v, sizeof(v)));
	reply_release(&r);
	assert_int_equal(atomic_load(&f.late_completed), 1);
	fx_stop(&f);
}

static void on_cancel(void *arg)
{
	struct fx *f = arg;
	atomic_fetch_add(&f->canceled, 1);
}

static int h_defer_hold(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	struct fx *f = arg;
	(void)resp;
	f->held = stk_http_defer(req);
	stk_http_exchange_on_cancel(f->held, on_cancel, f);
	atomic_fetch_add(&f->deferred, 1);
	return STK_HTTP_DEFERRED;
}

static void complete_held(void *arg)
{
	struct fx *f = arg;
	/* The client is gone: filling and completing must be harmless. */
	LOOP_CHECK(stk_http_exchange_canceled(f->held));
	stk_http_response_text(stk_http_exchange_response(f->held), 200, "too late\n");
	stk_http_exchange_complete(f->held);
	f->held = NULL;
	atomic_fetch_add(&f->late_completed, 1);
}

static void test_http__client_disconnect_before_deferred_answer(void **state)
{
	struct fx f;
	struct reply r;
	(void)state;

	fx_init(&f, NULL);
	route(&f, "GET", "/slow", h_defer_hold, &f);
	route(&f, "GET", "/hello", h_hello, &f);
	fx_run(&f);

	r = request(&f, &(struct req){.path = "/slow", .timeout_ms = 300});
	assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
	reply_release(&r);
	assert_int_equal(atomic_load(&f.deferred), 1);
	/* The server notices the closed connection and tells the holder. */
	assert_true(wait_for(&f.canceled, 1, 5000));
	/* The late answer arrives afterwards: no use-after-free, nothing sent, freed. */
	stk_loop_post(f.loop, complete_held, &f);
	assert_true(wait_for(&f.late_completed, 1, 5000));

	r = get(&f, "/hello");
	assert_int_equal(r.status, 200);
	reply_release(&r);
	assert_int_equal(atomic_load(&f.canceled), 1);
	fx_stop(&f);
}

static void *slow_client(void *arg)
{
	struct fx *f = arg;
	struct reply *r = malloc(sizeof(*r));
	*r = request(f, &(struct req){.path = "/slow", .timeout_ms = 10000});
	return r;
}

static void complete_in_cancel(void *arg)
{
	struct fx *f = arg;
	atomic_fetch_add(&f->canceled, 1);
	stk_http_exchange_complete(f->held); /* allowed from the cancel callback */
	f->held = NULL;
}

static int h_defer_until_shutdown(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	struct fx *f = arg;
	(void)resp;
	f->held = stk_http_defer(req);
	stk_http_exchange_on_cancel(f->held, complete_in_cancel, f);
	atomic_fetch_add(&f->deferred, 1);
	return STK_HTTP_DEFERRED;
}

static void test_http__shutdown_cancels_pending_deferred_exchanges(void **state)
{
	struct fx f;
	struct reply *r;
	pthread_t client;
	(void)state;

	fx_init(&f, NULL);
	route(&f, "GET", "/slow", h_defer_until_shutdown, &f);
	fx_run(&f);
	pthread_create(&client, NULL, slow_client, &f);
	assert_true(wait_for(&f.deferred, 1, 5000));
	fx_stop(&f); /* SIGTERM path: the hook closes the connection, the holder is told */
	pthread_join(client, (void **)&r);
	assert_int_not_equal(r->rc, CURLE_OK);
	assert_int_equal(atomic_load(&f.canceled), 1);
	assert_null(f.held);
	reply_release(r);
	free(r);
}

static int h_defer_sync(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	stk_http_exchange *ex = stk_http_defer(req);
	(void)arg;
	/* Completing before returning is allowed too. */
	stk_http_response_text(resp, 200, "immediately\n");
	stk_http_exchange_complete(ex);
	return STK_HTTP_DEFERRED;
}

static void test_http__deferred_completed_inside_the_handler(void **state)
{
	struct fx f;
	struct reply r;
	(void)state;

	fx_init(&f, NULL);
	route(&f, "GET", "/now", h_defer_sync, &f);
	fx_run(&f);
	r = get(&f, "/now");
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.ptr, "immediately\n");
	reply_release(&r);
	fx_stop(&f);
}

/* --- tests: file streaming ------------------------------------------------------------- */

static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

static int h_file(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	struct fx *f = arg;
	stk_err err = STK_ERR_INIT;
	int fd = open(f->file_path, O_RDONLY | O_CLOEXEC);
	(void)req;

	if (fd < 0)
		return STK_ENOTFOUND;
	LOOP_CHECK(stk_http_response_header(resp, "ETag", "\"sha256:f00d\"", NULL) == 0);
	if (stk_http_response_file_take(resp, 200, "application/gzip", fd, &err) != 0)
		return err.code;
	return STK_HTTP_DONE;
}

static int h_not_regular(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	stk_err err = STK_ERR_INIT;
	int fd = open("/", O_RDONLY | O_CLOEXEC);
	(void)req;
	(void)arg;
	LOOP_CHECK(stk_http_response_file_take(resp, 200, NULL, fd, &err) == STK_EINVAL);
	return err.code;
}

static void test_http__streams_a_multi_megabyte_file(void **state)
{
	const size_t size = 12u * 1024 * 1024 + 12345; /* not a multiple of the chunk */
	char dir[] = "/tmp/stk-http-XXXXXX", path[64], v[64];
	unsigned char *data = malloc(size);
	struct fx f;
	struct reply r;
	FILE *fp;
	size_t i;
	(void)state;

	for (i = 0; i < size; i++)
		data[i] = pattern(i);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/artifact.tar.gz", dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, size, fp), size);
	fclose(fp);

	fx_init(&f, NULL);
	f.file_path = path;
	route(&f, "GET", "/gitsource/*", h_file, &f);
	route(&f, "GET", "/dir", h_not_regular, &f);
	fx_run(&f);

	r = get(&f, "/gitsource/ns/name/sha.tar.gz");
	assert_int_equal(r.rc, CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, size);
	assert_memory_equal(r.body.ptr, data, size);
	assert_true(header(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "application/gzip");
	assert_true(header(&r, "ETag", v, sizeof(v)));
	assert_string_equal(v, "\"sha256:f00d\"");
	reply_release(&r);

	r = request(&f, &(struct req){.method = "HEAD", .path = "/gitsource/a"});
	assert_int_equal(r.status, 200);
	assert_true(header(&r, "Content-Length", v, sizeof(v)));
	assert_int_equal(strtoull(v, NULL, 10), size);
	assert_int_equal(r.body.len, 0);
	reply_release(&r);

	r = get(&f, "/dir");
	assert_int_equal(r.status, 400);
	reply_release(&r);

	fx_stop(&f);
	unlink(path);
	rmdir(dir);
	free(data);
}

static int h_stream(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	struct fx *f = arg;
	stk_err err = STK_ERR_INIT;
	(void)req;
	if (stk_http_response_file_take(resp, 200, "application/gzip", f->stream_fd, &err) != 0)
		return err.code;
	f->stream_fd = -1;
	return STK_HTTP_DONE;
}

struct stream_probe {
	int fd; /* shares its file offset with the server's descriptor */
	size_t received;
	off_t offset_at_1mib;
};

static size_t on_stream(char *p, size_t size, size_t n, void *arg)
{
	struct stream_probe *s = arg;
	(void)p;
	if (s->received < (1u << 20) && s->received + size * n >= (1u << 20))
		s->offset_at_1mib = lseek(s->fd, 0, SEEK_CUR);
	s->received += size * n;
	return size * n;
}

static void test_http__file_is_read_as_the_client_consumes_it(void **state)
{
	const size_t size = 64u << 20;
	char dir[] = "/tmp/stk-http-XXXXXX", path[64], url[128];
	struct stream_probe probe = {-1, 0, -1};
	struct fx f;
	CURL *c;
	int fd;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/big.tar.gz", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0); /* sparse: cheap to create */

	fx_init(&f, NULL);
	f.stream_fd = dup(fd);
	probe.fd = fd;
	route(&f, "GET", "/big", h_stream, &f);
	fx_run(&f);

	c = curl_easy_init();
	snprintf(url, sizeof(url), "%s/big", f.base);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &probe);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);

	assert_int_equal(probe.received, size);
	/* When the client had 1 MiB, the server had read only what the socket buffers hold,
	 * not the file: a large artifact never sits in memory. */
	assert_true(probe.offset_at_1mib > 0);
	assert_true(probe.offset_at_1mib < (off_t)(size / 2));

	fx_stop(&f);
	close(fd);
	unlink(path);
	rmdir(dir);
}

struct cut_probe {
	struct fx *f;
	atomic_int got_1mib;
	size_t received;
	CURLcode rc;
};

static size_t on_cut(char *p, size_t size, size_t n, void *arg)
{
	struct cut_probe *c = arg;
	(void)p;
	c->received += size * n;
	if (c->received >= (1u << 20) && !atomic_load(&c->got_1mib)) {
		atomic_store(&c->got_1mib, 1);
		usleep(200000); /* hold the transfer while the server shuts down */
	}
	return size * n;
}

static void *cut_client(void *arg)
{
	struct cut_probe *c = arg;
	char url[128];
	CURL *h = curl_easy_init();

	snprintf(url, sizeof(url), "%s/big", c->f->base);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_cut);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	c->rc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	return NULL;
}

static void test_http__shutdown_cuts_a_streaming_response_cleanly(void **state)
{
	const size_t size = 64u << 20;
	char dir[] = "/tmp/stk-http-XXXXXX", path[64];
	struct cut_probe probe;
	pthread_t client;
	struct fx f;
	int fd;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/big.tar.gz", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);

	fx_init(&f, NULL);
	f.stream_fd = fd; /* the server takes it */
	route(&f, "GET", "/big", h_stream, &f);
	fx_run(&f);
	memset(&probe, 0, sizeof(probe));
	probe.f = &f;
	pthread_create(&client, NULL, cut_client, &probe);
	assert_true(wait_for(&probe.got_1mib, 1, 20000));
	fx_stop(&f); /* the file descriptor and the exchange are released (ASan, valgrind) */
	pthread_join(client, NULL);
	assert_int_not_equal(probe.rc, CURLE_OK);
	assert_true(probe.received < size);
	unlink(path);
	rmdir(dir);
}

static void test_http__tls_shutdown_with_a_connection_open(void **state)
{
	stk_http_opts o = STK_HTTP_OPTS_INIT;
	char *cert, *key;
	struct reply *r;
	pthread_t client;
	struct fx f;
	(void)state;

	make_cert(&cert, &key);
	o.bind_address = "127.0.0.1:0";
	o.tls_cert_pem = cert;
	o.tls_key_pem = key;
	fx_init(&f, &o);
	f.ca_pem = cert;
	route(&f, "GET", "/slow", h_defer_until_shutdown, &f);
	fx_run(&f);
	pthread_create(&client, NULL, slow_client, &f);
	assert_true(wait_for(&f.deferred, 1, 5000));
	fx_stop(&f);
	pthread_join(client, (void **)&r);
	assert_int_not_equal(r->rc, CURLE_OK);
	assert_int_equal(atomic_load(&f.canceled), 1);
	reply_release(r);
	free(r);
	free(cert);
	free(key);
}

static void test_http__deferred_answer_times_out(void **state)
{
	stk_http_opts o = STK_HTTP_OPTS_INIT;
	struct fx f;
	struct reply r;
	(void)state;

	o.bind_address = "127.0.0.1:0";
	o.timeout_s = 1;
	fx_init(&f, &o);
	route(&f, "GET", "/slow", h_defer_hold, &f);
	fx_run(&f);
	/* Nobody answers: after timeout_s the server closes the connection and cancels. */
	r = request(&f, &(struct req){.path = "/slow", .timeout_ms = 10000});
	assert_int_equal(r.rc, CURLE_GOT_NOTHING);
	reply_release(&r);
	assert_true(wait_for(&f.canceled, 1, 5000));
	stk_loop_post(f.loop, complete_held, &f);
	assert_true(wait_for(&f.late_completed, 1, 5000));
	fx_stop(&f);
}

/* --- tests: lifecycle ------------------------------------------------------------------ */

static void test_http__ephemeral_port_and_busy_port_error(void **state)
{
	stk_http_opts o = STK_HTTP_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	stk_http_server *second = NULL;
	char addr[64];
	struct fx f;
	(void)state;

	fx_init(&f, NULL);
	assert_true(stk_http_server_port(f.srv) > 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", stk_http_server_port(f.srv));
	o.bind_address = addr;
	o.name = "metrics";
	assert_int_equal(stk_http_server_new(&second, f.loop, &o, &err), STK_EIO);
	assert_null(second);
	assert_non_null(strstr(err.message, "metrics"));
	assert_non_null(strstr(err.message, "Address already in use"));

	o.bind_address = "127.0.0.1:notaport";
	assert_int_equal(stk_http_server_new(&second, f.loop, &o, &err), STK_EINVAL);
	fx_run(&f);
	fx_stop(&f); /* also checks the failed attempts left nothing on the loop */
}

static void test_http__ipv6_loopback(void **state)
{
	stk_http_opts o = STK_HTTP_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	struct fx f;
	struct reply r;
	(void)state;

	memset(&f, 0, sizeof(f));
	assert_int_equal(stk_loop_new(&f.loop, NULL), 0);
	f.baseline_handles = loop_handles(f.loop);
	o.bind_address = "[::1]:0";
	if (stk_http_server_new(&f.srv, f.loop, &o, &err) != 0) {
		stk_loop_free(f.loop);
		if (strstr(err.message, "Cannot assign") || strstr(err.message, "not supported"))
			skip(); /* no IPv6 on this host */
		fail_msg("stk_http_server_new: %s", err.message);
	}
	snprintf(f.base, sizeof(f.base), "http://[::1]:%d", stk_http_server_port(f.srv));
	route(&f, "GET", "/who", h_echo, &f);
	fx_run(&f);
	r = get(&f, "/who");
	assert_int_equal(r.status, 201);
	assert_non_null(strstr(r.body.ptr, "peer=::1\n"));
	reply_release(&r);
	fx_stop(&f);
}

static void test_http__free_without_shutdown_runs_the_teardown(void **state)
{
	struct fx f;
	struct reply r;
	(void)state;

	fx_init(&f, NULL);
	route(&f, "GET", "/hello", h_hello, &f);
	pthread_create(&f.thread, NULL, loop_main, &f); /* no shutdown hook */
	r = get(&f, "/hello");
	assert_int_equal(r.status, 200);
	reply_release(&r);
	stk_loop_shutdown(f.loop);
	pthread_join(f.thread, NULL);
	stk_http_server_free(f.srv); /* drives the loop until lws is gone */
	assert_int_equal(loop_handles(f.loop), f.baseline_handles);
	stk_loop_free(f.loop);
}

static void test_http__stopped_server_refuses_connections(void **state)
{
	struct fx f;
	struct reply r;
	int port;
	(void)state;

	fx_init(&f, NULL);
	route(&f, "GET", "/hello", h_hello, &f);
	fx_run(&f);
	port = stk_http_server_port(f.srv);
	fx_stop(&f);
	snprintf(f.base, sizeof(f.base), "http://127.0.0.1:%d", port);
	r = get(&f, "/hello");
	assert_int_equal(r.rc, CURLE_COULDNT_CONNECT);
	reply_release(&r);
}

static void test_http__route_registration_errors(void **state)
{
	struct fx f;
	stk_err err = STK_ERR_INIT;
	(void)state;

	fx_init(&f, NULL);
	route(&f, "GET", "/x", h_hello, &f);
	assert_int_equal(stk_http_route(f.srv, "GET", "/x", h_hello, &f, &err), STK_EEXIST);
	assert_int_equal(stk_http_route(f.srv, "BREW", "/x", h_hello, &f, &err), STK_EINVAL);
	assert_int_equal(stk_http_route(f.srv, "GET", "x", h_hello, &f, &err), STK_EINVAL);
	assert_int_equal(stk_http_route(f.srv, "GET", "/a*b", h_hello, &f, &err), STK_EINVAL);
	fx_run(&f);
	fx_stop(&f);
}

static void test_http__metrics_endpoint(void **state)
{
	stk_metrics *m = stk_metrics_new();
	stk_metrics_family *c =
		stk_metrics_counter(m, "stoker_artifact_requests_total", "Artifact requests.",
				    (const char *[]){"code", NULL});
	struct fx f;
	struct reply r;
	char v[128];
	(void)state;

	stk_metrics_inc(c, (const char *[]){"200"});
	fx_init(&f, NULL);
	assert_int_equal(stk_http_serve_metrics(f.srv, m, NULL), 0);
	fx_run(&f);
	r = get(&f, "/metrics");
	assert_int_equal(r.status, 200);
	assert_true(header(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(r.body.ptr, "stoker_artifact_requests_total{code=\"200\"} 1\n"));
	reply_release(&r);
	fx_stop(&f);
	stk_metrics_free(m);
}

/* --- tests: TLS ------------------------------------------------------------------------ */

static char *bio_string(BIO *b)
{
	char *data = NULL, *copy;
	long n = BIO_get_mem_data(b, &data);
	copy = malloc((size_t)n + 1);
	memcpy(copy, data, (size_t)n);
	copy[n] = '\0';
	return copy;
}

/*
 * A throwaway certificate for IP 127.0.0.1 with common name `cn`, as PEM text: a P-256 key,
 * or an RSA key of `rsa_bits` bits when that is not 0; self-signed, or issued by the pair
 * (issuer_cert, issuer_key) when given.
 */
static void make_cert_ex(const char *cn, unsigned rsa_bits, const char *issuer_cert,
			 const char *issuer_key, char **cert_pem, char **key_pem)
{
	EVP_PKEY *pkey = rsa_bits ? EVP_RSA_gen(rsa_bits) : EVP_EC_gen("P-256");
	EVP_PKEY *signer = pkey;
	X509 *x = X509_new(), *issuer = NULL;
	X509_NAME *name;
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	BIO *b;

	assert_non_null(pkey);
	if (issuer_cert) {
		b = BIO_new_mem_buf(issuer_cert, -1);
		issuer = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
		b = BIO_new_mem_buf(issuer_key, -1);
		signer = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
		assert_non_null(issuer);
		assert_non_null(signer);
	}
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, signer, EVP_sha256()) > 0);

	b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	*cert_pem = bio_string(b);
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL);
	*key_pem = bio_string(b);
	BIO_free(b);
	X509_free(x);
	X509_free(issuer);
	if (signer != pkey)
		EVP_PKEY_free(signer);
	EVP_PKEY_free(pkey);
}

/* A throwaway P-256 key and self-signed certificate for IP 127.0.0.1, as PEM text. */
static void make_cert(char **cert_pem, char **key_pem)
{
	make_cert_ex("stoker-test", 0, NULL, NULL, cert_pem, key_pem);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_http__tls_from_memory_and_from_files(void **state)
{
	char *cert, *key, *cert2, *key2;
	char dir[] = "/tmp/stk-tls-XXXXXX", cpath[64], kpath[64];
	stk_http_opts o = STK_HTTP_OPTS_INIT;
	struct fx f;
	struct reply r;
	(void)state;

	make_cert(&cert, &key);
	make_cert(&cert2, &key2);

	/* In-memory PEM: the key never touches the disk. */
	o.bind_address = "127.0.0.1:0";
	o.tls_cert_pem = cert;
	o.tls_key_pem = key;
	fx_init(&f, &o);
	f.ca_pem = cert;
	route(&f, "POST", "/mutate", h_size, &f);
	fx_run(&f);
	r = request(&f, &(struct req){.method = "POST",
				      .path = "/mutate",
				      .body = "{\"x\":1}",
				      .body_len = 7});
	assert_int_equal(r.rc, CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.ptr, "7\n");
	reply_release(&r);
	/* A client that trusts another CA refuses the server. */
	f.ca_pem = cert2;
	r = get(&f, "/mutate");
	assert_int_equal(r.rc, CURLE_PEER_FAILED_VERIFICATION);
	reply_release(&r);
	fx_stop(&f);

	/* PEM files. */
	assert_non_null(mkdtemp(dir));
	snprintf(cpath, sizeof(cpath), "%s/tls.crt", dir);
	snprintf(kpath, sizeof(kpath), "%s/tls.key", dir);
	write_file(cpath, cert2);
	write_file(kpath, key2);
	o = (stk_http_opts)STK_HTTP_OPTS_INIT;
	o.bind_address = "127.0.0.1:0";
	o.tls_cert_file = cpath;
	o.tls_key_file = kpath;
	fx_init(&f, &o);
	f.ca_pem = cert2;
	route(&f, "GET", "/hello", h_hello, &f);
	fx_run(&f);
	r = get(&f, "/hello");
	assert_int_equal(r.rc, CURLE_OK);
	assert_string_equal(r.body.ptr, "hello\n");
	reply_release(&r);
	fx_stop(&f);

	unlink(cpath);
	unlink(kpath);
	rmdir(dir);
	free(cert);
	free(key);
	free(cert2);
	free(key2);
}

static void test_http__bad_tls_material_is_rejected_up_front(void **state)
{
	char *cert, *key, *cert2, *key2;
	stk_http_opts o = STK_HTTP_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	stk_http_server *srv = NULL;
	stk_loop *loop;
	int before;
	(void)state;

	make_cert(&cert, &key);
	make_cert(&cert2, &key2);
	assert_int_equal(stk_loop_new(&loop, NULL), 0);
	before = loop_handles(loop);
	o.bind_address = "127.0.0.1:0";
	o.tls_cert_pem = cert;
	o.tls_key_pem = key2; /* another key */
	assert_int_equal(stk_http_server_new(&srv, loop, &o, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "does not match"));
	o.tls_key_pem = "not a key";
	assert_int_equal(stk_http_server_new(&srv, loop, &o, &err), STK_EINVAL);
	o.tls_cert_pem = NULL;
	o.tls_key_pem = NULL;
	o.tls_cert_file = "/nonexistent/tls.crt";
	o.tls_key_file = "/nonexistent/tls.key";
	assert_int_equal(stk_http_server_new(&srv, loop, &o, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "/nonexistent/tls.crt"));
	assert_null(srv);
	assert_int_equal(loop_handles(loop), before);
	stk_loop_free(loop);
	free(cert);
	free(key);
	free(cert2);
	free(key2);
}

/* --- tests: TLS certificate replacement ------------------------------------------------ */

/* What a client that trusts anything saw of the server's certificates. */
struct served {
	CURLcode rc;
	long status;
	long connects;
	int ncerts; /* certificates the server sent: the leaf and its chain */
	X509 *leaf;
};

static size_t on_discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/*
 * GET /hello without verification, collecting the served chain (CURLOPT_CERTINFO). The
 * client asks for a host name, as the API server does, so the handshake carries SNI.
 */
static struct served fetch_served(struct fx *f, CURL *reuse)
{
	struct served sv = {0};
	struct curl_certinfo *ci = NULL;
	struct curl_slist *l, *resolve;
	char url[128], pin[128];
	CURL *c = reuse ? reuse : curl_easy_init();
	BIO *b;

	snprintf(pin, sizeof(pin), "webhook.stoker.test:%d:127.0.0.1",
		 stk_http_server_port(f->srv));
	resolve = curl_slist_append(NULL, pin);
	snprintf(url, sizeof(url), "https://webhook.stoker.test:%d/hello",
		 stk_http_server_port(f->srv));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_discard);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	sv.rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &sv.status);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &sv.connects);
	if (sv.rc == CURLE_OK && sv.connects == 1 &&
	    curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) == CURLE_OK && ci &&
	    ci->num_of_certs > 0) {
		sv.ncerts = ci->num_of_certs;
		for (l = ci->certinfo[0]; l; l = l->next) {
			if (strncmp(l->data, "Cert:", 5) != 0)
				continue;
			b = BIO_new_mem_buf(l->data + 5, -1);
			sv.leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
			BIO_free(b);
		}
	}
	if (!reuse)
		curl_easy_cleanup(c);
	else
		curl_easy_setopt(c, CURLOPT_RESOLVE, NULL);
	curl_slist_free_all(resolve);
	return sv;
}

/* True when the server sent the first certificate of `pem` as its leaf. */
static bool served_is(const struct served *sv, const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *want = PEM_read_bio_X509(b, NULL, NULL, NULL);
	bool same;

	BIO_free(b);
	assert_non_null(want);
	same = sv->leaf && X509_cmp(sv->leaf, want) == 0;
	X509_free(want);
	return same;
}

static void served_release(struct served *sv)
{
	X509_free(sv->leaf);
	sv->leaf = NULL;
}

/* stk_http_server_set_tls_pem on the loop thread, waited for. */
struct set_pem {
	stk_http_server *srv;
	const char *cert, *key;
	stk_err *err;
	int rc;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void set_pem_on_loop(void *arg)
{
	struct set_pem *sp = arg;
	int rc = stk_http_server_set_tls_pem(sp->srv, sp->cert, sp->key, sp->err);

	pthread_mutex_lock(&sp->lock);
	sp->rc = rc;
	sp->done = true;
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
}

static int set_pem(struct fx *f, const char *cert, const char *key, stk_err *err)
{
	struct set_pem sp = {
		f->srv, cert, key, err, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
		false};

	stk_err_clear(err);
	stk_loop_post(f->loop, set_pem_on_loop, &sp);
	pthread_mutex_lock(&sp.lock);
	while (!sp.done)
		pthread_cond_wait(&sp.cond, &sp.lock);
	pthread_mutex_unlock(&sp.lock);
	return sp.rc;
}

static char *concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);

	assert_non_null(s);
	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	return s;
}

/*
 * Pair A (P-256, self-signed) is replaced by pair B (RSA, issued by a CA, sent with the CA
 * as chain): a new connection gets B and its chain, a connection opened before keeps
 * working. EC to RSA is the case where replacing the pair inside the SSL_CTX would go
 * wrong (OpenSSL keeps one certificate per key type there, and clients prefer ECDSA).
 */
static void test_http__tls_replaced_for_new_connections(void **state)
{
	char *cert_a, *key_a, *ca, *ca_key, *leaf_b, *key_b, *chain_b;
	stk_http_opts o = STK_HTTP_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	CURL *kept = curl_easy_init();
	struct served sv;
	struct fx f;
	(void)state;

	make_cert_ex("pair-a", 0, NULL, NULL, &cert_a, &key_a);
	make_cert_ex("test-ca", 0, NULL, NULL, &ca, &ca_key);
	make_cert_ex("pair-b", 2048, ca, ca_key, &leaf_b, &key_b);
	chain_b = concat(leaf_b, ca);
	o.bind_address = "127.0.0.1:0";
	o.tls_cert_pem = cert_a;
	o.tls_key_pem = key_a;
	fx_init(&f, &o);
	route(&f, "GET", "/hello", h_hello, &f);
	fx_run(&f);

	sv = fetch_served(&f, kept);
	assert_int_equal(sv.rc, CURLE_OK);
	assert_int_equal(sv.status, 200);
	assert_true(served_is(&sv, cert_a));
	assert_int_equal(sv.ncerts, 1);
	served_release(&sv);

	if (set_pem(&f, chain_b, key_b, &err) != 0)
		fail_msg("stk_http_server_set_tls_pem: %s", err.message);

	sv = fetch_served(&f, NULL);
	assert_int_equal(sv.rc, CURLE_OK);
	assert_int_equal(sv.status, 200);
	assert_true(served_is(&sv, leaf_b));
	assert_int_equal(sv.ncerts, 2);
	served_release(&sv);

	/* The keep-alive connection made with A is still served, without a new handshake. */
	sv = fetch_served(&f, kept);
	assert_int_equal(sv.rc, CURLE_OK);
	assert_int_equal(sv.status, 200);
	assert_int_equal(sv.connects, 0);
	served_release(&sv);
	curl_easy_cleanup(kept);

	/* And back to an EC pair: the RSA one is gone too. */
	if (set_pem(&f, cert_a, key_a, &err) != 0)
		fail_msg("stk_http_server_set_tls_pem: %s", err.message);
	sv = fetch_served(&f, NULL);
	assert_int_equal(sv.rc, CURLE_OK);
	assert_true(served_is(&sv, cert_a));
	assert_int_equal(sv.ncerts, 1);
	served_release(&sv);
	fx_stop(&f);
	assert_int_equal(atomic_load(&f.calls), 4);

	free(cert_a);
	free(key_a);
	free(ca);
	free(ca_key);
	free(leaf_b);
	free(key_b);
	free(chain_b);
}

/* Bad replacement material is refused and the server goes on with the pair it had. */
static void test_http__tls_bad_replacement_keeps_the_current_pair(void **state)
{
	char *cert_a, *key_a, *cert_b, *key_b, *weak_cert, *weak_key;
	stk_http_opts o = STK_HTTP_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	struct served sv;
	struct fx f;
	(void)state;

	make_cert_ex("pair-a", 0, NULL, NULL, &cert_a, &key_a);
	make_cert_ex("pair-b", 0, NULL, NULL, &cert_b, &key_b);
	make_cert_ex("weak", 512, NULL, NULL, &weak_cert, &weak_key);
	o.bind_address = "127.0.0.1:0";
	o.tls_cert_pem = cert_a;
	o.tls_key_pem = key_a;
	fx_init(&f, &o);
	route(&f, "GET", "/hello", h_hello, &f);
	fx_run(&f);
	assert_int_equal(set_pem(&f, cert_b, key_b, &err), 0);

	/* B's certificate with A's key. */
	assert_int_equal(set_pem(&f, cert_b, key_a, &err), STK_EINVAL);
	assert_int_equal(err.code, STK_EINVAL);
	assert_non_null(strstr(err.message, "does not match"));
	/* Not PEM at all. */
	assert_int_equal(set_pem(&f, "garbage", key_b, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "no PEM certificate"));
	assert_int_equal(set_pem(&f, cert_b, "garbage", &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "private key"));
	assert_int_equal(set_pem(&f, cert_b, NULL, &err), STK_EINVAL);
	/* A matching pair OpenSSL will not serve: a 512-bit RSA key. */
	assert_int_equal(set_pem(&f, weak_cert, weak_key, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "OpenSSL refuses"));

	sv = fetch_served(&f, NULL);
	assert_int_equal(sv.rc, CURLE_OK);
	assert_int_equal(sv.status, 200);
	assert_true(served_is(&sv, cert_b));
	served_release(&sv);
	fx_stop(&f);

	free(cert_a);
	free(key_a);
	free(cert_b);
	free(key_b);
	free(weak_cert);
	free(weak_key);
}

static void test_http__tls_replacement_refused_on_plain_http(void **state)
{
	stk_err err = STK_ERR_INIT;
	char *cert, *key;
	struct reply r;
	struct fx f;
	(void)state;

	make_cert(&cert, &key);
	fx_init(&f, NULL);
	route(&f, "GET", "/hello", h_hello, &f);
	/* Before the loop runs (main thread) and on the loop thread. */
	assert_int_equal(stk_http_server_set_tls_pem(f.srv, cert, key, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "plain HTTP"));
	fx_run(&f);
	assert_int_equal(set_pem(&f, cert, key, &err), STK_EINVAL);
	r = get(&f, "/hello");
	assert_int_equal(r.rc, CURLE_OK);
	assert_int_equal(r.status, 200);
	reply_release(&r);
	fx_stop(&f);
	free(cert);
	free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http__routes_404_405_and_head),
		cmocka_unit_test(test_http__prefix_routes_and_exact_precedence),
		cmocka_unit_test(test_http__request_headers_query_and_response_headers),
		cmocka_unit_test(test_http__handler_error_codes_map_to_statuses),
		cmocka_unit_test(test_http__keep_alive_reuses_the_connection),
		cmocka_unit_test(test_http__body_limit_413_without_calling_the_handler),
		cmocka_unit_test(test_http__default_body_limit_is_1mib),
		cmocka_unit_test(test_http__deferred_response_completed_from_a_worker),
		cmocka_unit_test(test_http__client_disconnect_before_deferred_answer),
		cmocka_unit_test(test_http__shutdown_cancels_pending_deferred_exchanges),
		cmocka_unit_test(test_http__deferred_completed_inside_the_handler),
		cmocka_unit_test(test_http__streams_a_multi_megabyte_file),
		cmocka_unit_test(test_http__file_is_read_as_the_client_consumes_it),
		cmocka_unit_test(test_http__deferred_answer_times_out),
		cmocka_unit_test(test_http__shutdown_cuts_a_streaming_response_cleanly),
		cmocka_unit_test(test_http__tls_shutdown_with_a_connection_open),
		cmocka_unit_test(test_http__ephemeral_port_and_busy_port_error),
		cmocka_unit_test(test_http__ipv6_loopback),
		cmocka_unit_test(test_http__free_without_shutdown_runs_the_teardown),
		cmocka_unit_test(test_http__stopped_server_refuses_connections),
		cmocka_unit_test(test_http__route_registration_errors),
		cmocka_unit_test(test_http__metrics_endpoint),
		cmocka_unit_test(test_http__tls_from_memory_and_from_files),
		cmocka_unit_test(test_http__bad_tls_material_is_rejected_up_front),
		cmocka_unit_test(test_http__tls_replaced_for_new_connections),
		cmocka_unit_test(test_http__tls_bad_replacement_keeps_the_current_pair),
		cmocka_unit_test(test_http__tls_replacement_refused_on_plain_http),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
