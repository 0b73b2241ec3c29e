/*
 * The artifact server against the real API server (TokenReview) and a real HTTP client
 * (libcurl on 127.0.0.1): downloads, ETags, 401/403/404, the review cache, a 30 MiB
 * artifact streamed in bounded memory, and a client leaving while its review is pending.
 * The API server that never answers (for 503 and the pending review) is a listening
 * socket nobody accepts on: a stalled transport, which a real API server cannot be made
 * to produce on demand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "artserver.h"
#include "stk/buf.h"
#include "stk/json.h"
#include "stk/kubeconfig.h"
#include "testloop.h"

extern char **environ;

#define SHA1	 "2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa"
#define SHA2	 "0123456789abcdef0123456789abcdef01234567"
#define SHA3	 "89abcdef0123456789abcdef0123456789abcdef"
#define BIG_SIZE (30u * 1024 * 1024)

/* --- group state: namespaces, service accounts, tokens, the storage directory ---------- */

static stk_kube *k; /* admin client (kubeconfig) */
static char ns_a[64], ns_b[64];
static char *tok_a, *tok_b, *tok_a_other_aud;
static char top[256], storage[300], outside[300];
static unsigned char *content1; /* ns_a/src1/SHA1, with a sidecar */
static size_t len1;
static char digest1[80];

static void digest_of(const void *p, size_t n, char out[80])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	assert_int_equal(EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL), 1);
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* Deterministic filler (xorshift64*); the content only has to be checkable. */
static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		p[i] = (unsigned char)((x * 2685821657736338717ull) >> 56);
	}
}

static void mkdirs(const char *path)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", tmp, strerror(errno));
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t off = 0;

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	while (off < len) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		if (n <= 0)
			fail_msg("write %s: %s", path, strerror(errno));
		off += (size_t)n;
	}
	close(fd);
}

/*
 * Stores <storage>/<ns>/<name>/<sha>.tar.gz (and its sidecar when `sidecar` is not NULL:
 * "" writes the right digest, anything else is written as given).
 */
static void put_artifact(const char *ns, const char *name, const char *sha, const void *data,
			 size_t len, const char *sidecar)
{
	char dir[512], path[600], dg[80];

	snprintf(dir, sizeof(dir), "%s/%s/%s", storage, ns, name);
	mkdirs(dir);
	snprintf(path, sizeof(path), "%s/%s.tar.gz", dir, sha);
	write_file(path, data, len);
	if (!sidecar)
		return;
	if (!*sidecar) {
		digest_of(data, len, dg);
		dg[71] = '\n'; /* the controller may end the line */
		dg[72] = '\0';
		sidecar = dg;
	}
	snprintf(path, sizeof(path), "%s/%s.tar.gz.sha256", dir, sha);
	write_file(path, sidecar, strlen(sidecar));
}

static void make_namespace(char out[64], const char *prefix)
{
	char body[256];
	stk_err err = STK_ERR_INIT;

	snprintf(out, 64, "%s-%06x", prefix, arc4random_uniform(0xffffff));
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}",
		 out);
	if (stk_kube_create(k, &STK_GVR_NAMESPACES, NULL, body, strlen(body), NULL, &err))
		fail_msg("create namespace %s: %s", out, err.message);
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":"
		 "\"agent\"}}");
	if (stk_kube_create(k, &STK_GVR_SERVICEACCOUNTS, out, body, strlen(body), NULL, &err))
		fail_msg("create serviceaccount %s/agent: %s", out, err.message);
}

/* A TokenRequest for <ns>/agent with one audience; the caller frees the token. */
static char *make_token(const char *ns, const char *audience)
{
	char path[256], body[256];
	stk_err err = STK_ERR_INIT;
	yajl_val obj = NULL;
	const char *t;
	char *tok;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/agent/token", ns);
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\","
		 "\"spec\":{\"audiences\":[\"%s\"],\"expirationSeconds\":3600}}",
		 audience);
	struct stk_kube_request req = {"POST", path, NULL, NULL, body, strlen(body), 0};
	if (stk_kube_do(k, &req, &obj, &err))
		fail_msg("token request %s: %s", ns, err.message);
	t = stk_json_str(obj, "status", "token", NULL);
	assert_non_null(t);
	tok = strdup(t);
	yajl_tree_free(obj);
	return tok;
}

static void rm_rf(const char *path)
{
	char *argv[] = {(char *)"rm", (char *)"-rf", (char *)path, NULL};
	pid_t pid;
	int st;

	if (posix_spawnp(&pid, "rm", NULL, NULL, argv, environ) == 0)
		waitpid(pid, &st, 0);
}

static int group_setup(void **state)
{
	struct stk_kubeconfig_opts o = STK_KUBECONFIG_OPTS_INIT;
	struct stk_kubeconfig *cfg = NULL;
	stk_err err = STK_ERR_INIT;
	char path[600];
	(void)state;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	o.path = getenv("KUBECONFIG");
	if (!o.path)
		fail_msg("KUBECONFIG is not set: run with the e2e cluster's environment");
	if (stk_kubeconfig_load(&cfg, &o, &err))
		fail_msg("kubeconfig: %s", err.message);
	if (stk_kube_new_take(&k, cfg, NULL, &err))
		fail_msg("client: %s", err.message);
	make_namespace(ns_a, "art-a");
	make_namespace(ns_b, "art-b");
	tok_a = make_token(ns_a, "stoker-source");
	tok_b = make_token(ns_b, "stoker-source");
	tok_a_other_aud = make_token(ns_a, "other-audience");

	/* <top>/storage is served; <top>/outside is what a traversal would reach. */
	snprintf(top, sizeof(top), "/tmp/test_artserver-XXXXXX");
	assert_non_null(mkdtemp(top));
	snprintf(storage, sizeof(storage), "%s/storage", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	mkdirs(storage);
	mkdirs(outside);

	len1 = 200 * 1024 + 17; /* several 32 KiB send chunks and a ragged end */
	content1 = malloc(len1);
	fill(content1, len1, 1);
	digest_of(content1, len1, digest1);
	put_artifact(ns_a, "src1", SHA1, content1, len1, "");
	put_artifact(ns_b, "src1", SHA1, content1, len1, "");

	/* Outside the storage: what a symbolic link would expose if it were followed. */
	snprintf(path, sizeof(path), "%s/%s.tar.gz", outside, SHA1);
	write_file(path, content1, len1);
	snprintf(path, sizeof(path), "%s/%s/escape", storage, ns_a);
	assert_int_equal(symlink(outside, path), 0);
	snprintf(path, sizeof(path), "%s/%s/src1/%s.tar.gz", storage, ns_a, SHA3);
	char target[600];
	snprintf(target, sizeof(target), "%s/%s.tar.gz", outside, SHA1);
	assert_int_equal(symlink(target, path), 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (k) {
		if (ns_a[0])
			stk_kube_delete(k, &STK_GVR_NAMESPACES, NULL, ns_a, NULL, NULL);
		if (ns_b[0])
			stk_kube_delete(k, &STK_GVR_NAMESPACES, NULL, ns_b, NULL, NULL);
	}
	stk_kube_free(k);
	free(tok_a);
	free(tok_b);
	free(tok_a_other_aud);
	free(content1);
	if (top[0])
		rm_rf(top);
	curl_global_cleanup();
	return 0;
}

/* --- per-test fixture: a loop thread and one artifact server --------------------------- */

struct fx {
	stk_loop *loop;
	stk_metrics *metrics;
	srcctl_artserver *srv;
	bool running;
	char base[64];
	stk_kube *own_kube; /* a client of the stalled API server, or NULL */
	int stall_fd;
};

static void fx_start(struct fx *f, const struct srcctl_artserver_opts *custom)
{
	struct srcctl_artserver_opts o = SRCCTL_ARTSERVER_OPTS_INIT;
	stk_err err = STK_ERR_INIT;

	if (custom)
		o = *custom;
	o.loop = NULL;
	assert_int_equal(stk_loop_new(&f->loop, NULL), 0);
	f->metrics = stk_metrics_new();
	o.loop = f->loop;
	o.kube = f->own_kube ? f->own_kube : k;
	o.metrics = f->metrics;
	o.bind_address = "127.0.0.1:0";
	o.storage_path = storage;
	if (srcctl_artserver_new(&f->srv, &o, &err) != 0)
		fail_msg("srcctl_artserver_new: %s", err.message);
	stk_loop_on_shutdown(f->loop, srcctl_artserver_shutdown_hook, f->srv);
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", srcctl_artserver_port(f->srv));
	testloop_start(f->loop);
	f->running = true;
}

static void fx_stop(struct fx *f)
{
	if (f->running) {
		testloop_stop(f->loop);
		f->running = false;
	}
	srcctl_artserver_free(f->srv);
	f->srv = NULL;
	stk_loop_free(f->loop);
	f->loop = NULL;
	stk_metrics_free(f->metrics);
	f->metrics = NULL;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->stall_fd = -1;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	fx_stop(f);
	stk_kube_free(f->own_kube);
	if (f->stall_fd >= 0)
		close(f->stall_fd);
	free(f);
	return 0;
}

static struct srcctl_artserver_stats stats(struct fx *f)
{
	struct srcctl_artserver_stats st;

	srcctl_artserver_stats(f->srv, &st);
	return st;
}

/* stoker_artifact_requests_total{code} as rendered for /metrics (0 when absent). */
static double requests_total(struct fx *f, const char *code)
{
	stk_buf b = STK_BUF_INIT(1 << 20);
	char needle[96];
	const char *p;
	double v = 0;

	assert_int_equal(stk_metrics_render(f->metrics, &b), 0);
	snprintf(needle, sizeof(needle), "stoker_artifact_requests_total{code=\"%s\"} ", code);
	p = b.ptr ? strstr(b.ptr, needle) : NULL;
	if (p)
		v = strtod(p + strlen(needle), NULL);
	stk_buf_release(&b);
	return v;
}

/* --- client ---------------------------------------------------------------------------- */

struct reply {
	CURLcode rc;
	long status;
	stk_buf body;
	stk_buf headers;
	EVP_MD_CTX *md; /* hash the body instead of keeping it */
	uint64_t nbytes;
	long rss_peak; /* with md: the process's largest RSS seen while receiving */
	uint64_t next_sample;
	char value[4096]; /* scratch for header() */
};

static long rss_bytes(void);

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;

	r->nbytes += size * n;
	if (r->md && r->nbytes >= r->next_sample) {
		long rss = rss_bytes();
		if (rss > r->rss_peak)
			r->rss_peak = rss;
		r->next_sample = r->nbytes + 256 * 1024;
	}
	if (r->md)
		return EVP_DigestUpdate(r->md, p, size * n) == 1 ? size * n : 0;
	return stk_buf_put(&r->body, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	return stk_buf_put(&r->headers, p, size * n) == 0 ? size * n : 0;
}

struct req {
	const char *method; /* "GET" (default) or "HEAD" */
	const char *path;
	const char *token;	   /* "Authorization: Bearer <token>" */
	const char *authorization; /* or the whole header value */
	const char *inm;	   /* If-None-Match */
	bool hash;		   /* keep only the body's digest */
};

static void reply_init(struct reply *r)
{
	memset(r, 0, sizeof(*r));
	stk_buf_init(&r->body, 4u << 20);
	stk_buf_init(&r->headers, 64u << 10);
}

static void reply_release(struct reply *r)
{
	stk_buf_release(&r->body);
	stk_buf_release(&r->headers);
	EVP_MD_CTX_free(r->md);
	r->md = NULL;
}

static void request_into(struct fx *f, const struct req *q, struct reply *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	stk_buf h = STK_BUF_INIT(16384);
	char url[1024];

	reply_init(r);
	if (q->hash) {
		r->md = EVP_MD_CTX_new();
		EVP_DigestInit_ex(r->md, EVP_sha256(), NULL);
	}
	snprintf(url, sizeof(url), "%s%s", f->base, q->path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* send ".." as written */
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (q->method && strcmp(q->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (q->token || q->authorization) {
		if (q->token)
			stk_buf_printf(&h, "Authorization: Bearer %s", q->token);
		else
			stk_buf_printf(&h, "Authorization: %s", q->authorization);
		hl = curl_slist_append(hl, h.ptr);
	}
	if (q->inm) {
		stk_buf_reset(&h);
		stk_buf_printf(&h, "If-None-Match: %s", q->inm);
		hl = curl_slist_append(hl, h.ptr);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	r->rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	stk_buf_release(&h);
	if (r->rc != CURLE_OK)
		fail_msg("%s %s: %s", q->method ? q->method : "GET", q->path,
			 curl_easy_strerror(r->rc));
}

/* Status of a GET, nothing else kept. */
static long status_of(struct fx *f, const char *path, const char *token)
{
	struct reply r;
	struct req q = {.path = path, .token = token};
	long st;

	request_into(f, &q, &r);
	st = r.status;
	reply_release(&r);
	return st;
}

/* The value of response header `name` (last one wins), or NULL. */
static const char *header(struct reply *r, const char *name)
{
	size_t nl = strlen(name);
	const char *p = r->headers.ptr, *found = NULL;

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		if (!eol)
			break;
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			snprintf(r->value, sizeof(r->value), "%.*s", (int)(eol - v), v);
			found = r->value;
		}
		p = eol + 2;
	}
	return found;
}

/* Copies `pattern` replacing each "{ns}" with `ns`. */
static void subst_ns(char *out, size_t n, const char *pattern, const char *ns)
{
	stk_buf b = STK_BUF_INIT(4096);
	const char *p = pattern, *hit;

	while ((hit = strstr(p, "{ns}")) != NULL) {
		stk_buf_put(&b, p, (size_t)(hit - p));
		stk_buf_puts(&b, ns);
		p = hit + 4;
	}
	stk_buf_puts(&b, p);
	snprintf(out, n, "%s", b.ptr);
	stk_buf_release(&b);
}

static void artifact_path(char *out, size_t n, const char *ns, const char *name, const char *sha)
{
	snprintf(out, n, "/gitsource/%s/%s/%s.tar.gz", ns, name, sha);
}

static bool stat_reached(struct fx *f, size_t offset, uint64_t want, uint64_t timeout_ms)
{
	for (uint64_t waited = 0;; waited += 20) {
		struct srcctl_artserver_stats st = stats(f);
		uint64_t v;
		memcpy(&v, (const char *)&st + offset, sizeof(v));
		if (v >= want)
			return true;
		if (waited >= timeout_ms)
			return false;
		usleep(20000);
	}
}

/* --- tests ----------------------------------------------------------------------------- */

static void test_artserver__download_with_token_of_the_namespace(void **state)
{
	struct fx *f = *state;
	char path[512], etag[96];
	struct reply r;
	struct req q = {0};

	fx_start(f, NULL);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA1);
	snprintf(etag, sizeof(etag), "\"%s\"", digest1);
	q.path = path;
	q.token = tok_a;
	request_into(f, &q, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, len1);
	assert_memory_equal(r.body.ptr, content1, len1);
	assert_non_null(header(&r, "ETag"));
	assert_string_equal(header(&r, "ETag"), etag);
	assert_non_null(header(&r, "Content-Type"));
	assert_string_equal(header(&r, "Content-Type"), "application/gzip");
	reply_release(&r);

	/* HEAD: the same headers, no body. */
	q.method = "HEAD";
	request_into(f, &q, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, 0);
	assert_string_equal(header(&r, "ETag"), etag);
	assert_non_null(header(&r, "Content-Length"));
	assert_int_equal(strtoull(header(&r, "Content-Length"), NULL, 10), len1);
	reply_release(&r);

	/* The other namespace's agent downloads its own source. */
	artifact_path(path, sizeof(path), ns_b, "src1", SHA1);
	assert_int_equal(status_of(f, path, tok_b), 200);
	assert_true(requests_total(f, "200") == 3);
}

static void test_artserver__if_none_match(void **state)
{
	struct fx *f = *state;
	char path[512], etag[96], weak[100], list[256];
	struct reply r;
	struct req q = {0};

	fx_start(f, NULL);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA1);
	snprintf(etag, sizeof(etag), "\"%s\"", digest1);
	q.path = path;
	q.token = tok_a;
	q.inm = etag;
	request_into(f, &q, &r);
	assert_int_equal(r.status, 304);
	assert_int_equal(r.body.len, 0);
	assert_string_equal(header(&r, "ETag"), etag);
	reply_release(&r);

	snprintf(weak, sizeof(weak), "W/%s", etag);
	snprintf(list, sizeof(list), "\"sha256:%064d\", %s", 0, etag);
	const char *match[] = {weak, list, "*"};
	for (size_t i = 0; i < sizeof(match) / sizeof(match[0]); i++) {
		q.inm = match[i];
		request_into(f, &q, &r);
		assert_int_equal(r.status, 304);
		reply_release(&r);
	}

	/* A stale digest gets the file. */
	snprintf(list, sizeof(list), "\"sha256:%064d\"", 0);
	q.inm = list;
	request_into(f, &q, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, len1);
	reply_release(&r);
	assert_true(requests_total(f, "304") == 4);
	assert_true(requests_total(f, "200") == 1);
}

static void test_artserver__missing_or_invalid_token_is_401(void **state)
{
	struct fx *f = *state;
	char path[512];
	struct reply r;
	struct req q = {0};

	fx_start(f, NULL);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA1);
	q.path = path;
	request_into(f, &q, &r); /* no Authorization at all */
	assert_int_equal(r.status, 401);
	assert_non_null(header(&r, "WWW-Authenticate"));
	assert_string_equal(header(&r, "WWW-Authenticate"), "Bearer");
	reply_release(&r);

	q.authorization = "Basic YWdlbnQ6c2VjcmV0";
	request_into(f, &q, &r);
	assert_int_equal(r.status, 401);
	reply_release(&r);
	q.authorization = "Bearer ";
	request_into(f, &q, &r);
	assert_int_equal(r.status, 401);
	reply_release(&r);
	/* None of those reached the API server. */
	assert_int_equal(stats(f).reviews, 0);

	assert_int_equal(status_of(f, path, "garbage-not-a-token"), 401);
	/* A real token of the right namespace, but minted for another audience. */
	assert_int_equal(status_of(f, path, tok_a_other_aud), 401);
	assert_int_equal(stats(f).reviews, 2);
	assert_int_equal(stats(f).review_failures, 0);
	assert_true(requests_total(f, "401") == 5);
	assert_true(requests_total(f, "200") == 0);
}

static void test_artserver__token_of_another_namespace_is_403(void **state)
{
	struct fx *f = *state;
	char path[512];

	fx_start(f, NULL);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA1);
	assert_int_equal(status_of(f, path, tok_b), 403);
	artifact_path(path, sizeof(path), ns_b, "src1", SHA1);
	assert_int_equal(status_of(f, path, tok_a), 403);
	/* Even for a source that does not exist: other namespaces learn nothing. */
	artifact_path(path, sizeof(path), ns_b, "nosuch", SHA1);
	assert_int_equal(status_of(f, path, tok_a), 403);
	assert_true(requests_total(f, "403") == 3);
}

static void test_artserver__unknown_or_malformed_paths_are_404(void **state)
{
	struct fx *f = *state;
	char path[768];
	uint64_t reviews;

	fx_start(f, NULL);
	/* Well-formed, authorized, but not on disk. */
	artifact_path(path, sizeof(path), ns_a, "nosuch", SHA1);
	assert_int_equal(status_of(f, path, tok_a), 404);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA2);
	assert_int_equal(status_of(f, path, tok_a), 404);
	/* Symbolic links inside the storage are never followed, wherever they point. */
	artifact_path(path, sizeof(path), ns_a, "escape", SHA1);
	assert_int_equal(status_of(f, path, tok_a), 404);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA3);
	assert_int_equal(status_of(f, path, tok_a), 404);

	/* Malformed: 404 before any token check (with or without a token). */
	reviews = stats(f).reviews;
	const char *bad[] = {
		"/gitsource/",
		"/gitsource/{ns}",
		"/gitsource/{ns}/src1",
		"/gitsource/{ns}/src1/",
		"/gitsource/{ns}/src1/" SHA1,
		"/gitsource/{ns}/src1/" SHA1 ".tar",
		"/gitsource/{ns}/src1/" SHA1 ".tar.gz.sha256", /* the sidecar is not served */
		"/gitsource/{ns}/src1/2C6A0646D007574BBB6D7A3EF0C7D4CE9BADFAFA.tar.gz",
		"/gitsource/{ns}/src1/2c6a0646d007574bbb6d7a3ef0c7d4ce9badfaf.tar.gz",
		"/gitsource/{ns}/src1/2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafaa.tar.gz",
		"/gitsource/{ns}/src1/" SHA1 ".tar.gz/x",
		"/gitsource/{ns}/src1/x/" SHA1 ".tar.gz",
		"/gitsource/{ns}/Src1/" SHA1 ".tar.gz",
		"/gitsource/{ns}/-src1/" SHA1 ".tar.gz",
		"/gitsource/{ns}/src1./" SHA1 ".tar.gz",
		"/gitsource/{ns}/src1..x/" SHA1 ".tar.gz",
		"/gitsource/Art-x/src1/" SHA1 ".tar.gz",
		"/gitsource/../../../../etc/passwd",
		"/gitsource/../outside/" SHA1 ".tar.gz",
		/* <storage>/../outside/<sha>.tar.gz exists: a naive join would serve it */
		"/gitsource/%2e%2e/outside/" SHA1 ".tar.gz",
		"/gitsource/%2E%2E/outside/" SHA1 ".tar.gz",
		"/gitsource/.%2e/outside/" SHA1 ".tar.gz",
		"/gitsource/{ns}/%2e%2e/" SHA1 ".tar.gz",
		"/gitsource/{ns}/src1/..%2f..%2f..%2foutside%2f" SHA1 ".tar.gz",
		"/gitsource/{ns}%2fsrc1/src1/" SHA1 ".tar.gz",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		subst_ns(path, sizeof(path), bad[i], ns_a);
		long with = status_of(f, path, tok_a), without = status_of(f, path, NULL);
		if (with != 404 || without != 404)
			fail_msg("%s: %ld with a token, %ld without; want 404", path, with,
				 without);
	}
	assert_int_equal(stats(f).reviews, reviews);
}

static void test_artserver__digest_computed_without_sidecar(void **state)
{
	struct fx *f = *state;
	unsigned char data[70000];
	char path[512], file[700], tmp[720], etag[96], dg[80];
	struct reply r;
	struct req q = {0};

	fill(data, sizeof(data), 7);
	digest_of(data, sizeof(data), dg);
	put_artifact(ns_a, "nosidecar", SHA1, data, sizeof(data), NULL);
	put_artifact(ns_a, "badsidecar", SHA1, data, sizeof(data), "sha256:not-hex\n");
	fx_start(f, NULL);

	snprintf(etag, sizeof(etag), "\"%s\"", dg);
	artifact_path(path, sizeof(path), ns_a, "nosidecar", SHA1);
	q.path = path;
	q.token = tok_a;
	for (int i = 0; i < 2; i++) {
		request_into(f, &q, &r);
		assert_int_equal(r.status, 200);
		assert_string_equal(header(&r, "ETag"), etag);
		assert_int_equal(r.body.len, sizeof(data));
		assert_memory_equal(r.body.ptr, data, sizeof(data));
		reply_release(&r);
	}
	/* Hashed once, then remembered. */
	assert_int_equal(stats(f).digests, 1);
	q.inm = etag;
	request_into(f, &q, &r);
	assert_int_equal(r.status, 304);
	reply_release(&r);
	assert_int_equal(stats(f).digests, 1);

	/* A malformed sidecar is not trusted. */
	artifact_path(path, sizeof(path), ns_a, "badsidecar", SHA1);
	q.path = path;
	q.inm = NULL;
	request_into(f, &q, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "ETag"), etag);
	reply_release(&r);
	assert_int_equal(stats(f).digests, 2);

	/* The controller replaces the artifact (new file renamed over it): hashed again. */
	fill(data, sizeof(data), 8);
	digest_of(data, sizeof(data), dg);
	snprintf(etag, sizeof(etag), "\"%s\"", dg);
	snprintf(file, sizeof(file), "%s/%s/nosidecar/%s.tar.gz", storage, ns_a, SHA1);
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	write_file(tmp, data, sizeof(data));
	assert_int_equal(rename(tmp, file), 0);
	artifact_path(path, sizeof(path), ns_a, "nosidecar", SHA1);
	q.path = path;
	request_into(f, &q, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "ETag"), etag);
	assert_memory_equal(r.body.ptr, data, sizeof(data));
	reply_release(&r);
	assert_int_equal(stats(f).digests, 3);
}

static void test_artserver__reviews_are_cached(void **state)
{
	struct fx *f = *state;
	char path[512];
	char *fresh = make_token(ns_a, "stoker-source");
	struct srcctl_artserver_stats st;

	fx_start(f, NULL);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA1);
	assert_int_equal(status_of(f, path, fresh), 200);
	assert_int_equal(status_of(f, path, fresh), 200);
	assert_int_equal(status_of(f, path, fresh), 200);
	st = stats(f);
	assert_int_equal(st.reviews, 1);
	assert_int_equal(st.cache_hits, 2);

	/* Negative reviews are cached too. */
	assert_int_equal(status_of(f, path, "garbage-cached"), 401);
	assert_int_equal(status_of(f, path, "garbage-cached"), 401);
	/* The same token for another namespace's path: cached verdict, still 403. */
	artifact_path(path, sizeof(path), ns_b, "src1", SHA1);
	assert_int_equal(status_of(f, path, fresh), 403);
	st = stats(f);
	assert_int_equal(st.reviews, 2);
	assert_int_equal(st.cache_hits, 4);
	free(fresh);
}

static void test_artserver__cache_expires_and_is_bounded(void **state)
{
	struct fx *f = *state;
	struct srcctl_artserver_opts o = SRCCTL_ARTSERVER_OPTS_INIT;
	char path[512];

	o.cache_ttl_ms = 1500;
	o.cache_max = 2;
	fx_start(f, &o);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA1);
	assert_int_equal(status_of(f, path, tok_a), 200);
	assert_int_equal(status_of(f, path, tok_a), 200);
	assert_int_equal(stats(f).reviews, 1);
	usleep(1700 * 1000);
	assert_int_equal(status_of(f, path, tok_a), 200); /* expired: reviewed again */
	assert_int_equal(stats(f).reviews, 2);

	/* Two more tokens push tok_a out of a two-entry cache. */
	assert_int_equal(status_of(f, path, "garbage-one"), 401);
	assert_int_equal(status_of(f, path, "garbage-two"), 401);
	assert_int_equal(stats(f).reviews, 4);
	assert_int_equal(status_of(f, path, "garbage-two"), 401);
	assert_int_equal(stats(f).reviews, 4);
	assert_int_equal(status_of(f, path, tok_a), 200);
	assert_int_equal(stats(f).reviews, 5);
}

static long rss_bytes(void)
{
	FILE *fp = fopen("/proc/self/statm", "r");
	long size = 0, resident = 0;

	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%ld %ld", &size, &resident), 2);
	fclose(fp);
	return resident * sysconf(_SC_PAGESIZE);
}

/*
 * Under ASan (quarantine) and valgrind (freed-block queue) freed memory stays resident,
 * so RSS there counts every allocation made while streaming, not what is held: the RSS
 * bound is checked in plain builds only (the bytes are checked everywhere).
 */
static bool rss_is_meaningful(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return false;
#else
	const char *preload = getenv("LD_PRELOAD");
	return !(preload && strstr(preload, "vgpreload"));
#endif
}

static void test_artserver__large_artifact_streams_in_bounded_memory(void **state)
{
	struct fx *f = *state;
	char path[512], file[700], dg[80], got[80];
	unsigned char chunk[64 * 1024], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct reply r;
	struct req q = {0};
	long before, after;
	int fd;

	/* Written in slices: the test itself never holds 30 MiB either. */
	snprintf(file, sizeof(file), "%s/%s/big", storage, ns_a);
	mkdirs(file);
	snprintf(file, sizeof(file), "%s/%s/big/%s.tar.gz", storage, ns_a, SHA1);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t off = 0; off < BIG_SIZE; off += sizeof(chunk)) {
		fill(chunk, sizeof(chunk), off + 3);
		EVP_DigestUpdate(ctx, chunk, sizeof(chunk));
		assert_int_equal(write(fd, chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
	}
	close(fd);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	memcpy(dg, "sha256:", 7);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(dg + 7 + 2 * i, 3, "%02x", md[i]);
	snprintf(file, sizeof(file), "%s/%s/big/%s.tar.gz.sha256", storage, ns_a, SHA1);
	write_file(file, dg, strlen(dg));

	fx_start(f, NULL);
	/* Warm up (token review, connection set-up, first allocations). */
	artifact_path(path, sizeof(path), ns_a, "src1", SHA1);
	assert_int_equal(status_of(f, path, tok_a), 200);

	before = rss_bytes();
	artifact_path(path, sizeof(path), ns_a, "big", SHA1);
	q.path = path;
	q.token = tok_a;
	q.hash = true;
	request_into(f, &q, &r);
	after = rss_bytes();
	if (r.rss_peak > after)
		after = r.rss_peak;
	assert_int_equal(r.status, 200);
	assert_int_equal(r.nbytes, BIG_SIZE);
	EVP_DigestFinal_ex(r.md, md, &mdlen);
	memcpy(got, "sha256:", 7);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(got + 7 + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(got, dg);
	reply_release(&r);
	print_message("peak RSS grew by %ld KiB while streaming 30 MiB%s\n",
		      (after - before) / 1024,
		      rss_is_meaningful() ? "" : " (not checked: sanitizer or valgrind)");
	/* Holding the artifact would add 30 MiB; allow 8 MiB of noise. */
	if (rss_is_meaningful() && after - before > 8L * 1024 * 1024)
		fail_msg("peak RSS grew by %ld KiB while streaming 30 MiB",
			 (after - before) / 1024);
}

/* A TCP listener nobody accepts on: TLS handshakes to it stall until the client's timeout. */
static int stalled_api_server(struct fx *f)
{
	struct sockaddr_in a = {0};
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	f->stall_fd = fd;
	return ntohs(a.sin_port);
}

static void use_stalled_api_server(struct fx *f)
{
	struct stk_kubeconfig_opts o = STK_KUBECONFIG_OPTS_INIT;
	struct stk_kubeconfig *cfg = NULL;
	stk_err err = STK_ERR_INIT;
	char url[64];

	snprintf(url, sizeof(url), "https://127.0.0.1:%d", stalled_api_server(f));
	o.path = getenv("KUBECONFIG");
	if (stk_kubeconfig_load(&cfg, &o, &err))
		fail_msg("kubeconfig: %s", err.message);
	free(cfg->server);
	cfg->server = strdup(url);
	if (stk_kube_new_take(&f->own_kube, cfg, NULL, &err))
		fail_msg("client: %s", err.message);
}

/* Sends a GET on a raw socket and returns the socket without reading the answer. */
static int raw_get(struct fx *f, const char *path, const char *token)
{
	struct sockaddr_in a = {0};
	char buf[4096];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n;

	assert_true(fd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)srcctl_artserver_port(f->srv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	n = snprintf(buf, sizeof(buf),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n", path,
		     token);
	assert_int_equal(write(fd, buf, (size_t)n), n);
	return fd;
}

static void test_artserver__api_failure_is_503_not_401(void **state)
{
	struct fx *f = *state;
	struct srcctl_artserver_opts o = SRCCTL_ARTSERVER_OPTS_INIT;
	char path[512];
	struct reply r;
	struct req q = {0};

	use_stalled_api_server(f);
	o.review_timeout_ms = 800;
	fx_start(f, &o);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA1);
	q.path = path;
	q.token = tok_a;
	request_into(f, &q, &r);
	assert_int_equal(r.status, 503);
	assert_non_null(header(&r, "Retry-After"));
	assert_true(strtol(header(&r, "Retry-After"), NULL, 10) >= 1);
	reply_release(&r);
	/* A failed call is not a verdict: the next request asks again. */
	request_into(f, &q, &r);
	assert_int_equal(r.status, 503);
	reply_release(&r);
	assert_int_equal(stats(f).reviews, 2);
	assert_int_equal(stats(f).review_failures, 2);
	assert_int_equal(stats(f).cache_hits, 0);
	assert_true(requests_total(f, "503") == 2);
	assert_true(requests_total(f, "401") == 0);
}

static void test_artserver__client_leaves_while_review_pending(void **state)
{
	struct fx *f = *state;
	struct srcctl_artserver_opts o = SRCCTL_ARTSERVER_OPTS_INIT;
	char path[512];
	int fd, fd2, fd3;

	use_stalled_api_server(f);
	o.review_timeout_ms = 1500;
	o.reviewers = 2; /* a second review, if one were started, would run at once */
	fx_start(f, &o);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA1);

	/* Two clients with the same token share the one pending review... */
	fd = raw_get(f, path, "token-of-a-client-that-leaves");
	fd2 = raw_get(f, path, "token-of-a-client-that-leaves");
	assert_true(stat_reached(f, offsetof(struct srcctl_artserver_stats, reviews), 1, 5000));
	usleep(300 * 1000); /* both requests are in (loopback) */
	/* ...and both leave before it returns. */
	close(fd);
	close(fd2);
	assert_true(stat_reached(f, offsetof(struct srcctl_artserver_stats, canceled), 2, 5000));
	assert_int_equal(stats(f).review_failures, 0); /* still pending */
	/* The review ends (timeout) with nobody to answer; the server carries on. */
	assert_true(
		stat_reached(f, offsetof(struct srcctl_artserver_stats, review_failures), 1, 5000));
	assert_int_equal(stats(f).reviews, 1);
	assert_int_equal(status_of(f, "/gitsource/nope", NULL), 404);

	/* A client that stays while the server stops: the stop waits for the review. */
	fd3 = raw_get(f, path, "token-of-a-client-that-stays");
	assert_true(stat_reached(f, offsetof(struct srcctl_artserver_stats, reviews), 2, 5000));
	fx_stop(f);
	/* Its connection was closed without an answer (or with a 503), never left hanging. */
	struct timeval tv = {5, 0};
	char buf[256];
	ssize_t n;
	setsockopt(fd3, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = read(fd3, buf, sizeof(buf) - 1);
	if (n < 0 && errno != ECONNRESET)
		fail_msg("read after stop: %s", strerror(errno));
	if (n > 0) {
		buf[n] = '\0';
		assert_non_null(strstr(buf, " 503 "));
	}
	close(fd3);
}

static void test_artserver__too_many_pending_reviews_is_503(void **state)
{
	struct fx *f = *state;
	struct srcctl_artserver_opts o = SRCCTL_ARTSERVER_OPTS_INIT;
	char path[512], token[64], buf[512];
	struct reply r;
	struct req q = {0};
	int fds[256];
	ssize_t n;

	use_stalled_api_server(f);
	o.review_timeout_ms = 1000;
	o.reviewers = 1;
	fx_start(f, &o);
	artifact_path(path, sizeof(path), ns_a, "src1", SHA1);
	/* 256 distinct tokens: one review running, the rest queued behind it. */
	for (int i = 0; i < 256; i++) {
		snprintf(token, sizeof(token), "pending-token-%d", i);
		fds[i] = raw_get(f, path, token);
	}
	assert_true(stat_reached(f, offsetof(struct srcctl_artserver_stats, pending), 256, 10000));
	/* The next distinct token is refused at once instead of queueing more work. */
	q.path = path;
	q.token = "one-token-too-many";
	request_into(f, &q, &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(header(&r, "Retry-After"), "1");
	reply_release(&r);
	assert_true(stats(f).reviews <= 2);

	/* Stopping drops the queued reviews: their clients get a 503 or a closed connection. */
	fx_stop(f);
	struct timeval tv = {5, 0};
	setsockopt(fds[255], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = read(fds[255], buf, sizeof(buf) - 1);
	if (n < 0 && errno != ECONNRESET)
		fail_msg("read after stop: %s", strerror(errno));
	if (n > 0) {
		buf[n] = '\0';
		assert_non_null(strstr(buf, " 503 "));
	}
	for (int i = 0; i < 256; i++)
		close(fds[i]);
}

static void test_artserver__new_checks_options(void **state)
{
	struct srcctl_artserver_opts o = SRCCTL_ARTSERVER_OPTS_INIT;
	srcctl_artserver *s = NULL, *busy = NULL;
	stk_err err = STK_ERR_INIT;
	stk_loop *loop = NULL;
	char addr[64];
	(void)state;

	assert_int_equal(stk_loop_new(&loop, NULL), 0);
	o.loop = loop;
	o.kube = k;
	o.bind_address = "127.0.0.1:0";
	o.storage_path = NULL;
	assert_int_equal(srcctl_artserver_new(&s, &o, &err), STK_EINVAL);
	o.storage_path = "/nonexistent/storage";
	assert_int_equal(srcctl_artserver_new(&s, &o, &err), STK_ENOTFOUND);
	o.storage_path = storage;
	o.reviewers = 65;
	assert_int_equal(srcctl_artserver_new(&s, &o, &err), STK_EINVAL);
	o.reviewers = 0;
	o.bind_address = "not an address";
	assert_int_equal(srcctl_artserver_new(&s, &o, &err), STK_EINVAL);
	assert_null(s);

	/* A port in use is reported at once; the first server is freed without ever running. */
	o.bind_address = "127.0.0.1:0";
	assert_int_equal(srcctl_artserver_new(&busy, &o, &err), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srcctl_artserver_port(busy));
	o.bind_address = addr;
	assert_int_equal(srcctl_artserver_new(&s, &o, &err), STK_EIO);
	assert_null(s);
	srcctl_artserver_free(busy);
	srcctl_artserver_free(NULL);
	stk_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_artserver__download_with_token_of_the_namespace, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_artserver__if_none_match, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_artserver__missing_or_invalid_token_is_401,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_artserver__token_of_another_namespace_is_403,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_artserver__unknown_or_malformed_paths_are_404,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_artserver__digest_computed_without_sidecar,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_artserver__reviews_are_cached, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_artserver__cache_expires_and_is_bounded,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_artserver__large_artifact_streams_in_bounded_memory, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(test_artserver__api_failure_is_503_not_401,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_artserver__client_leaves_while_review_pending,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_artserver__too_many_pending_reviews_is_503,
						fx_setup, fx_teardown),
		cmocka_unit_test(test_artserver__new_checks_options),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
