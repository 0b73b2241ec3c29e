#include "stk/kube.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>

#include "stk/alloc.h"
#include "stk/json.h"
#include "stk/limits.h"
#include "stk/loop.h"
#include "stk/parse.h"
#include "stk/version.h"

const struct stk_gvr STK_GVR_CONFIGMAPS = {"", "v1", "configmaps"};
const struct stk_gvr STK_GVR_SECRETS = {"", "v1", "secrets"};
const struct stk_gvr STK_GVR_PODS = {"", "v1", "pods"};
const struct stk_gvr STK_GVR_EVENTS = {"", "v1", "events"};
const struct stk_gvr STK_GVR_NAMESPACES = {"", "v1", "namespaces"};
const struct stk_gvr STK_GVR_SERVICEACCOUNTS = {"", "v1", "serviceaccounts"};
const struct stk_gvr STK_GVR_LEASES = {"coordination.k8s.io", "v1", "leases"};
const struct stk_gvr STK_GVR_TOKENREVIEWS = {"authentication.k8s.io", "v1", "tokenreviews"};
const struct stk_gvr STK_GVR_CRDS = {"apiextensions.k8s.io", "v1", "customresourcedefinitions"};
const struct stk_gvr STK_GVR_MUTATINGWEBHOOKCONFIGURATIONS = {"admissionregistration.k8s.io", "v1",
							      "mutatingwebhookconfigurations"};

#define KUBE_POOL_MAX 8

struct stk_kube {
	struct stk_kubeconfig *cfg;
	struct stk_kube_opts opts;
	char *user_agent;
	char *base_url; /* scheme://host:port used in URLs */
	/* CURLOPT_CONNECT_TO list when tls-server-name is set; read-only once built. */
	struct curl_slist *connect_to;

	pthread_mutex_t lock; /* guards token state and the handle pool */
	char *token;
	uint64_t token_read_ms;
	bool token_stale;
	CURL *pool[KUBE_POOL_MAX];
	size_t npool;
};

static pthread_once_t kube_curl_once = PTHREAD_ONCE_INIT;

static void kube_curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void kube_secret_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Rewrites the base URL to the TLS server name and routes connections to the real host. */
static int kube_setup_server_name(stk_kube *k, stk_err *err)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *scheme = NULL;
	stk_buf b = STK_BUF_INIT(4096);
	int rc = 0;

	if (curl_url_set(u, CURLUPART_URL, k->cfg->server, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)) {
		rc = stk_err_set(err, STK_EINVAL, "cannot parse server URL \"%.200s\"",
				 k->cfg->server);
		goto out;
	}
	stk_buf_printf(&b, "%s:%s:%s:%s", k->cfg->tls_server_name, port, host, port);
	k->connect_to = curl_slist_append(NULL, b.ptr);
	stk_buf_reset(&b);
	stk_buf_printf(&b, "%s://%s:%s", scheme, k->cfg->tls_server_name, port);
	free(k->base_url);
	k->base_url = stk_buf_detach(&b, NULL);
out:
	curl_free(host);
	curl_free(port);
	curl_free(scheme);
	curl_url_cleanup(u);
	stk_buf_release(&b);
	return rc;
}

int stk_kube_new_take(stk_kube **out, struct stk_kubeconfig *cfg, const struct stk_kube_opts *opts,
		      stk_err *err)
{
	struct stk_kube_opts defaults = STK_KUBE_OPTS_INIT;
	stk_kube *k = NULL;
	stk_buf ua = STK_BUF_INIT(256);
	int rc = 0;

	pthread_once(&kube_curl_once, kube_curl_init);
	if (!cfg || !cfg->server || !*cfg->server) {
		stk_kubeconfig_free(cfg);
		return stk_err_set(err, STK_EINVAL, "kubeconfig has no server");
	}
	k = stk_calloc(1, sizeof(*k));
	k->cfg = cfg;
	k->opts = opts ? *opts : defaults;
	if (!k->opts.timeout_ms)
		k->opts.timeout_ms = defaults.timeout_ms;
	if (!k->opts.connect_timeout_ms)
		k->opts.connect_timeout_ms = defaults.connect_timeout_ms;
	if (!k->opts.token_reread_ms)
		k->opts.token_reread_ms = defaults.token_reread_ms;
	if (!k->opts.max_body)
		k->opts.max_body = STK_LIMIT_API_BODY;
	if (k->opts.user_agent)
		stk_buf_puts(&ua, k->opts.user_agent);
	else
		stk_buf_printf(&ua, "stoker/%s", STK_VERSION);
	k->user_agent = stk_buf_detach(&ua, NULL);
	k->base_url = stk_strdup(cfg->server);
	pthread_mutex_init(&k->lock, NULL);
	if (cfg->tls_server_name && *cfg->tls_server_name) {
		rc = kube_setup_server_name(k, err);
		if (rc)
			goto out;
	}
	if (cfg->token_file) {
		rc = stk_kubeconfig_read_token(&k->token, cfg->token_file, err);
		if (rc)
			goto out;
		k->token_read_ms = stk_now_ms();
	}
	*out = k;
	k = NULL;
out:
	stk_kube_free(k);
	return rc;
}

void stk_kube_free(stk_kube *k)
{
	size_t i;

	if (!k)
		return;
	for (i = 0; i < k->npool; i++)
		curl_easy_cleanup(k->pool[i]);
	kube_secret_free(k->token);
	stk_kubeconfig_free(k->cfg);
	free(k->user_agent);
	free(k->base_url);
	curl_slist_free_all(k->connect_to);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

const char *stk_kube_namespace(const stk_kube *k)
{
	return k->cfg->namespace && *k->cfg->namespace ? k->cfg->namespace : "default";
}

const char *stk_kube_server(const stk_kube *k)
{
	return k->cfg->server;
}

/* A path segment must not change the URL's structure. */
static int kube_check_segment(const char *what, const char *s, stk_err *err)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, "..") || strpbrk(s, "/?#%") || strlen(s) > 253)
		return stk_err_set(err, STK_EINVAL, "invalid %s \"%.80s\"", what, s);
	return 0;
}

int stk_kube_path(stk_buf *b, const struct stk_gvr *gvr, const char *ns, const char *name,
		  const char *subresource, stk_err *err)
{
	int rc;

	if ((ns && *ns && kube_check_segment("namespace", ns, err)) ||
	    (name && kube_check_segment("name", name, err)) ||
	    (subresource && kube_check_segment("subresource", subresource, err)))
		return STK_EINVAL;
	if (!gvr->group || !*gvr->group)
		rc = stk_buf_printf(b, "/api/%s", gvr->version);
	else
		rc = stk_buf_printf(b, "/apis/%s/%s", gvr->group, gvr->version);
	if (!rc && ns && *ns)
		rc = stk_buf_printf(b, "/namespaces/%s", ns);
	if (!rc)
		rc = stk_buf_printf(b, "/%s", gvr->resource);
	if (!rc && name)
		rc = stk_buf_printf(b, "/%s", name);
	if (!rc && name && subresource)
		rc = stk_buf_printf(b, "/%s", subresource);
	return rc ? stk_err_set(err, rc, "request path too long") : 0;
}

int stk_kube_query_escape(stk_buf *b, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (const unsigned char *p = (const unsigned char *)value; *p && !rc; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			rc = stk_buf_putc(b, (char)*p);
		else
			rc = stk_buf_put(b, (char[]){'%', hex[*p >> 4], hex[*p & 15]}, 3);
	}
	return rc;
}

static int kube_query_param(stk_buf *b, const char *name, const char *value)
{
	int rc = 0;

	if (!value || !*value)
		return 0;
	if (b->len)
		rc = stk_buf_putc(b, '&');
	if (!rc)
		rc = stk_buf_printf(b, "%s=", name);
	return rc ? rc : stk_kube_query_escape(b, value);
}

int stk_kube_list_query(stk_buf *b, const struct stk_list_opts *opts)
{
	int rc = 0;

	if (!opts)
		return 0;
	rc = kube_query_param(b, "labelSelector", opts->label_selector);
	if (!rc)
		rc = kube_query_param(b, "fieldSelector", opts->field_selector);
	if (!rc)
		rc = kube_query_param(b, "resourceVersion", opts->resource_version);
	if (!rc)
		rc = kube_query_param(b, "resourceVersionMatch", opts->resource_version_match);
	if (!rc)
		rc = kube_query_param(b, "continue", opts->continue_token);
	if (!rc && opts->limit > 0)
		rc = stk_buf_printf(b, "%slimit=%lld", b->len ? "&" : "", (long long)opts->limit);
	return rc;
}

/* Returns the current token (a copy the caller frees), re-reading the file when due. */
static char *kube_token(stk_kube *k)
{
	char *copy = NULL;

	pthread_mutex_lock(&k->lock);
	if (k->cfg->token_file &&
	    (k->token_stale || stk_now_ms() - k->token_read_ms >= k->opts.token_reread_ms)) {
		char *fresh = NULL;
		/* A failed re-read keeps the previous token: it may still be valid. */
		if (stk_kubeconfig_read_token(&fresh, k->cfg->token_file, NULL) == 0) {
			kube_secret_free(k->token);
			k->token = fresh;
		}
		k->token_read_ms = stk_now_ms();
		k->token_stale = false;
	}
	if (k->token)
		copy = stk_strdup(k->token);
	else if (k->cfg->token)
		copy = stk_strdup(k->cfg->token);
	pthread_mutex_unlock(&k->lock);
	return copy;
}

void stk_kube_token_expired(stk_kube *k)
{
	pthread_mutex_lock(&k->lock);
	k->token_stale = true;
	pthread_mutex_unlock(&k->lock);
}

int stk_kube_curl_err(CURLcode rc, const char *errbuf, stk_err *err)
{
	const char *msg = errbuf && *errbuf ? errbuf : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return stk_err_set(err, STK_ETIMEOUT, "request timed out: %s", msg);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return stk_err_set(err, STK_EUNAVAIL, "cannot reach the API server: %s", msg);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return stk_err_set(err, STK_EAUTH, "TLS: %s", msg);
	default:
		return stk_err_set(err, STK_EUNAVAIL, "request failed: %s", msg);
	}
}

int stk_kube_setup_easy(stk_kube *k, CURL *easy, const struct stk_kube_request *req,
			struct curl_slist **headers, stk_err *err)
{
	stk_buf url = STK_BUF_INIT(16384);
	stk_buf h = STK_BUF_INIT(65536 + 64);
	struct curl_slist *hl = NULL;
	const struct stk_kubeconfig *c = k->cfg;
	uint64_t timeout = req->timeout_ms ? req->timeout_ms : k->opts.timeout_ms;
	char *token = NULL;
	int rc = 0;

	if (stk_buf_printf(&url, "%s%s%s%s", k->base_url, req->path, req->query ? "?" : "",
			   req->query ? req->query : "")) {
		rc = stk_err_set(err, STK_ETOOBIG, "request URL too long");
		goto out;
	}
	curl_easy_setopt(easy, CURLOPT_URL, url.ptr);
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
	if (!strcmp(req->method, "GET"))
		curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
	if (req->body) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, req->body);
		/* COPYPOSTFIELDS with a size copies exactly body_len bytes. */
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
	}
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, k->user_agent);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)k->opts.connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout == UINT64_MAX ? 0L : (long)timeout);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	if (k->connect_to)
		curl_easy_setopt(easy, CURLOPT_CONNECT_TO, k->connect_to);
	if (c->ca_pem) {
		struct curl_blob blob = {c->ca_pem, c->ca_pem_len, CURL_BLOB_COPY};
		curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (c->client_cert_pem && c->client_key_pem) {
		struct curl_blob cert = {c->client_cert_pem, c->client_cert_pem_len,
					 CURL_BLOB_COPY};
		struct curl_blob key = {c->client_key_pem, c->client_key_pem_len, CURL_BLOB_COPY};
		curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
		curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key);
	}
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, c->insecure_skip_tls_verify ? 0L : 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, c->insecure_skip_tls_verify ? 0L : 2L);

	hl = curl_slist_append(hl, "Accept: application/json");
	stk_buf_printf(&h, "Content-Type: %s",
		       req->content_type ? req->content_type : "application/json");
	hl = curl_slist_append(hl, h.ptr);
	stk_buf_reset(&h);
	token = kube_token(k);
	if (token) {
		stk_buf_printf(&h, "Authorization: Bearer %s", token);
		hl = curl_slist_append(hl, h.ptr);
		OPENSSL_cleanse(h.ptr, h.len);
	}
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hl);
	*headers = hl;
	hl = NULL;
out:
	kube_secret_free(token);
	curl_slist_free_all(hl);
	stk_buf_release(&url);
	stk_buf_release(&h);
	return rc;
}

/* --- Status decoding ---------------------------------------------------------------- */

static int kube_code_for(long status, const char *reason)
{
	switch (status) {
	case 400:
		return STK_EINVAL;
	case 401:
		return STK_EAUTH;
	case 403:
		return STK_EFORBIDDEN;
	case 404:
		return STK_ENOTFOUND;
	case 405:
	case 406:
	case 415:
		return STK_EUNSUPPORTED;
	case 409:
		return reason && !strcmp(reason, "AlreadyExists") ? STK_EEXIST : STK_ECONFLICT;
	case 410:
		return STK_EGONE;
	case 413:
		return STK_ETOOBIG;
	case 422:
		return STK_EINVALID;
	case 429:
		return STK_ETOOMANY;
	case 503:
		return STK_EUNAVAIL;
	case 504:
		return STK_ETIMEOUT;
	default:
		return STK_ESERVER;
	}
}

int stk_kube_status_to_err(long http_status, const char *body, size_t len, const char *retry_after,
			   stk_err *err)
{
	yajl_val v = NULL;
	const char *reason = NULL, *message = NULL;
	int64_t code = http_status, retry_s = -1;
	stk_buf msg = STK_BUF_INIT(STK_ERR_MESSAGE_MAX - 1);
	int rc;

	if (body && len && stk_json_parse(&v, body, len, STK_LIMIT_API_BODY, NULL) == 0 &&
	    stk_json_str(v, "kind", NULL) && !strcmp(stk_json_str(v, "kind", NULL), "Status")) {
		int64_t c;
		yajl_val causes;

		reason = stk_json_str(v, "reason", NULL);
		message = stk_json_str(v, "message", NULL);
		if (stk_json_int(v, &c, "code", NULL) && c >= 100 && c <= 599 &&
		    (http_status < 100 || http_status == 200))
			code = c;
		stk_json_int(v, &retry_s, "details", "retryAfterSeconds", NULL);
		stk_buf_puts(&msg, message && *message ? message : "");
		causes = stk_json_arr(v, "details", "causes", NULL);
		for (size_t i = 0; causes && i < causes->u.array.len; i++) {
			const char *f = stk_json_str(causes->u.array.values[i], "field", NULL);
			const char *m = stk_json_str(causes->u.array.values[i], "message", NULL);
			/* Kubernetes usually lists causes in the message; add the missing ones. */
			if (f && *f && message && strstr(message, f))
				continue;
			if (m && message && strstr(message, m))
				continue;
			stk_buf_printf(&msg, "%s%s%s%s", msg.len ? "; " : "", f ? f : "",
				       f && m ? ": " : "", m ? m : "");
		}
	}
	rc = kube_code_for(code, reason);
	if (msg.len == 0) {
		stk_buf_reset(&msg);
		stk_buf_printf(&msg, "the server answered HTTP %ld", code);
		if (body && len && !v) {
			/* Not a Status: show the start of the body, one line. */
			stk_buf_puts(&msg, ": ");
			for (size_t i = 0; i < len && i < 160; i++)
				stk_buf_putc(&msg,
					     (body[i] == '\n' || body[i] == '\r') ? ' ' : body[i]);
		}
	}
	/* Error messages are one line: control characters from the server become spaces. */
	for (size_t i = 0; i < msg.len; i++)
		if ((unsigned char)msg.ptr[i] < 0x20)
			msg.ptr[i] = ' ';
	stk_err_set(err, rc, "%s", msg.ptr ? msg.ptr : "");
	if (err) {
		err->http_status = (int)code;
		snprintf(err->reason, sizeof(err->reason), "%s", reason ? reason : "");
		if (rc == STK_ETOOMANY || rc == STK_EUNAVAIL) {
			int64_t s = -1;
			if (retry_after && stk_parse_i64(retry_after, strlen(retry_after), 0, 86400,
							 &s, NULL) == 0)
				retry_s = s;
			err->retry_after_ms = retry_s >= 0 ? (long)retry_s * 1000 : 1000;
		}
	}
	if (v)
		yajl_tree_free(v);
	stk_buf_release(&msg);
	return rc;
}

/* --- requests on the calling thread ------------------------------------------------- */

struct kube_sink {
	stk_buf body;
	bool overflow;
	char retry_after[32];
};

static size_t kube_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct kube_sink *s = arg;
	size_t n = size * nmemb;

	if (stk_buf_put(&s->body, data, n)) {
		s->overflow = true;
		return 0;
	}
	return n;
}

static size_t kube_on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct kube_sink *s = arg;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";

	if (n > sizeof(name) - 1 && !strncasecmp(data, name, sizeof(name) - 1)) {
		size_t i = sizeof(name) - 1, j = 0;
		while (i < n && (data[i] == ' ' || data[i] == '\t'))
			i++;
		while (i < n && j + 1 < sizeof(s->retry_after) && data[i] >= '0' && data[i] <= '9')
			s->retry_after[j++] = data[i++];
		s->retry_after[j] = '\0';
	}
	return n;
}

static CURL *kube_acquire(stk_kube *k)
{
	CURL *e = NULL;

	pthread_mutex_lock(&k->lock);
	if (k->npool)
		e = k->pool[--k->npool];
	pthread_mutex_unlock(&k->lock);
	if (!e) {
		e = curl_easy_init();
		if (!e) {
			fprintf(stderr, "fatal: curl_easy_init failed\n");
			abort();
		}
	}
	return e;
}

static void kube_release(stk_kube *k, CURL *e)
{
	/* Reset keeps the connection cache, so the next request reuses the connection. */
	curl_easy_reset(e);
	pthread_mutex_lock(&k->lock);
	if (k->npool < KUBE_POOL_MAX) {
		k->pool[k->npool++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&k->lock);
	if (e)
		curl_easy_cleanup(e);
}

static int kube_do_once(stk_kube *k, const struct stk_kube_request *req, yajl_val *out,
			long *status_out, stk_err *err)
{
	CURL *e = kube_acquire(k);
	struct curl_slist *headers = NULL;
	struct kube_sink sink;
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode cc;
	int rc;

	memset(&sink, 0, sizeof(sink));
	stk_buf_init(&sink.body, k->opts.max_body);
	rc = stk_kube_setup_easy(k, e, req, &headers, err);
	if (rc)
		goto out;
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, kube_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, kube_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &sink);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(e);
	if (sink.overflow) {
		rc = stk_err_set(err, STK_ETOOBIG, "%s %s: response larger than %zu bytes",
				 req->method, req->path, k->opts.max_body);
		goto out;
	}
	if (cc != CURLE_OK) {
		rc = stk_kube_curl_err(cc, errbuf, err);
		goto out;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	*status_out = status;
	if (status < 200 || status > 299) {
		rc = stk_kube_status_to_err(status, sink.body.ptr, sink.body.len,
					    sink.retry_after[0] ? sink.retry_after : NULL, err);
		goto out;
	}
	if (out) {
		yajl_val v = NULL;
		rc = stk_json_parse(&v, sink.body.ptr ? sink.body.ptr : "", sink.body.len,
				    k->opts.max_body, err);
		if (rc) {
			stk_err_wrap(err, "%s %s", req->method, req->path);
			goto out;
		}
		*out = v;
	}
out:
	curl_slist_free_all(headers);
	stk_buf_release(&sink.body);
	kube_release(k, e);
	return rc;
}

int stk_kube_do(stk_kube *k, const struct stk_kube_request *req, yajl_val *out, stk_err *err)
{
	long status = 0;
	int rc = kube_do_once(k, req, out, &status, err);

	if (rc == STK_EAUTH && status == 401 && k->cfg->token_file) {
		stk_kube_token_expired(k);
		rc = kube_do_once(k, req, out, &status, err);
	}
	return rc;
}

/* Builds a path, runs the request, and releases the temporaries. */
static int kube_simple(stk_kube *k, const char *method, const struct stk_gvr *gvr, const char *ns,
		       const char *name, const char *subresource, const char *query,
		       const char *content_type, const char *body, size_t len, yajl_val *out,
		       stk_err *err)
{
	stk_buf path = STK_BUF_INIT(4096);
	struct stk_kube_request req = {method, NULL, query, content_type, body, len, 0};
	int rc = stk_kube_path(&path, gvr, ns, name, subresource, err);

	if (!rc) {
		req.path = path.ptr;
		rc = stk_kube_do(k, &req, out, err);
	}
	stk_buf_release(&path);
	return rc;
}

int stk_kube_get(stk_kube *k, const struct stk_gvr *gvr, const char *ns, const char *name,
		 yajl_val *out, stk_err *err)
{
	return kube_simple(k, "GET", gvr, ns, name, NULL, NULL, NULL, NULL, 0, out, err);
}

int stk_kube_list(stk_kube *k, const struct stk_gvr *gvr, const char *ns,
		  const struct stk_list_opts *opts, yajl_val *out, stk_err *err)
{
	stk_buf q = STK_BUF_INIT(8192);
	int rc = stk_kube_list_query(&q, opts);

	if (rc)
		rc = stk_err_set(err, rc, "list query too long");
	else
		rc = kube_simple(k, "GET", gvr, ns, NULL, NULL, q.len ? q.ptr : NULL, NULL, NULL, 0,
				 out, err);
	stk_buf_release(&q);
	return rc;
}

int stk_kube_list_all(stk_kube *k, const struct stk_gvr *gvr, const char *ns,
		      const struct stk_list_opts *opts, stk_kube_item_fn fn, void *arg,
		      char **rv_out, stk_err *err)
{
	struct stk_list_opts o = STK_LIST_OPTS_INIT;
	char *cont = NULL, *rv = NULL;
	int rc = 0;

	if (opts)
		o = *opts;
	if (o.limit <= 0)
		o.limit = 500;
	do {
		yajl_val page = NULL, items;
		const char *next;

		o.continue_token = cont;
		rc = stk_kube_list(k, gvr, ns, &o, &page, err);
		if (rc)
			break;
		/* Only the first page may carry a resourceVersion constraint. */
		o.resource_version = NULL;
		o.resource_version_match = NULL;
		items = stk_json_arr(page, "items", NULL);
		for (size_t i = 0; !rc && items && i < items->u.array.len; i++)
			rc = fn(items->u.array.values[i], arg);
		free(cont);
		cont = NULL;
		next = stk_json_str(page, "metadata", "continue", NULL);
		if (next && *next)
			cont = stk_strdup(next);
		free(rv);
		rv = stk_json_str(page, "metadata", "resourceVersion", NULL)
			     ? stk_strdup(stk_json_str(page, "metadata", "resourceVersion", NULL))
			     : NULL;
		yajl_tree_free(page);
	} while (!rc && cont);
	free(cont);
	if (!rc && rv_out) {
		*rv_out = rv;
		rv = NULL;
	}
	free(rv);
	return rc;
}

int stk_kube_create(stk_kube *k, const struct stk_gvr *gvr, const char *ns, const char *json,
		    size_t len, yajl_val *out, stk_err *err)
{
	return kube_simple(k, "POST", gvr, ns, NULL, NULL, NULL, NULL, json, len, out, err);
}

int stk_kube_update(stk_kube *k, const struct stk_gvr *gvr, const char *ns, const char *name,
		    const char *subresource, const char *json, size_t len, yajl_val *out,
		    stk_err *err)
{
	return kube_simple(k, "PUT", gvr, ns, name, subresource, NULL, NULL, json, len, out, err);
}

int stk_kube_patch(stk_kube *k, const struct stk_gvr *gvr, const char *ns, const char *name,
		   enum stk_patch_type type, const char *body, size_t len,
		   const struct stk_patch_opts *opts, yajl_val *out, stk_err *err)
{
	static const char *const types[] = {
		"application/merge-patch+json", "application/json-patch+json",
		"application/strategic-merge-patch+json", "application/apply-patch+yaml"};
	stk_buf q = STK_BUF_INIT(1024);
	const char *sub = opts ? opts->subresource : NULL;
	int rc = 0;

	if ((unsigned)type > STK_PATCH_APPLY)
		return stk_err_set(err, STK_EINVAL, "unknown patch type %d", (int)type);
	if (type == STK_PATCH_APPLY && (!opts || !opts->field_manager || !*opts->field_manager))
		return stk_err_set(err, STK_EINVAL, "server-side apply needs a field manager");
	if (opts && opts->field_manager)
		rc = kube_query_param(&q, "fieldManager", opts->field_manager);
	if (!rc && opts && opts->force && type == STK_PATCH_APPLY)
		rc = stk_buf_printf(&q, "%sforce=true", q.len ? "&" : "");
	if (!rc)
		rc = kube_simple(k, "PATCH", gvr, ns, name, sub, q.len ? q.ptr : NULL, types[type],
				 body, len, out, err);
	stk_buf_release(&q);
	return rc;
}

int stk_kube_delete(stk_kube *k, const struct stk_gvr *gvr, const char *ns, const char *name,
		    const struct stk_delete_opts *opts, stk_err *err)
{
	stk_buf body = STK_BUF_INIT(4096);
	int rc = stk_buf_puts(&body, "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\"");

	if (!rc && opts && opts->propagation_policy) {
		rc = stk_buf_puts(&body, ",\"propagationPolicy\":");
		if (!rc)
			rc = stk_buf_put_json_string(&body, opts->propagation_policy,
						     strlen(opts->propagation_policy));
	}
	if (!rc && opts && (opts->precondition_uid || opts->precondition_rv)) {
		rc = stk_buf_puts(&body, ",\"preconditions\":{");
		if (!rc && opts->precondition_uid) {
			rc = stk_buf_puts(&body, "\"uid\":");
			if (!rc)
				rc = stk_buf_put_json_string(&body, opts->precondition_uid,
							     strlen(opts->precondition_uid));
		}
		if (!rc && opts->precondition_rv) {
			rc = stk_buf_puts(&body, opts->precondition_uid ? ",\"resourceVersion\":"
									: "\"resourceVersion\":");
			if (!rc)
				rc = stk_buf_put_json_string(&body, opts->precondition_rv,
							     strlen(opts->precondition_rv));
		}
		if (!rc)
			rc = stk_buf_putc(&body, '}');
	}
	if (!rc)
		rc = stk_buf_putc(&body, '}');
	if (rc)
		rc = stk_err_set(err, rc, "delete options too long");
	else
		rc = kube_simple(k, "DELETE", gvr, ns, name, NULL, NULL, NULL, body.ptr, body.len,
				 NULL, err);
	stk_buf_release(&body);
	return rc;
}
