#include "injector.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "mutate.h"
#include "stk/alloc.h"
#include "stk/api/api.h"
#include "stk/base64.h"
#include "stk/daemon.h"
#include "stk/http.h"
#include "stk/json.h"
#include "stk/log.h"
#include "stk/manager.h"
#include "stk/objects.h"

#define INJ_RELOAD_MS	   10000	     /* mounted TLS files: how often to look */
#define INJ_RENEW_BEFORE_S (30L * 24 * 3600) /* regenerate a pair expiring this soon... */
/* ...or within a third of its validity, when that is shorter */
#define INJ_CONFIG_KEY "/webhook-config" /* the work queue's one key */

static const struct stk_gvr INJ_GVR_WEBHOOKS = {"admissionregistration.k8s.io", "v1",
						"mutatingwebhookconfigurations"};

struct injector {
	const struct injector_options *o;
	stk_manager *mgr;
	stk_kube *kube;
	stk_cache *stokers, *profiles, *sources, *configs;
	stk_http_server *https;
	stk_metrics_family *m_duration, *m_total;
	struct inj_config cfg;
	struct inj_lookup lookup;
	/* self-managed: */
	pthread_mutex_t bundle_mu;
	char *ca_bundle; /* base64 of the CA bundle PEM the caBundle must carry; bundle_mu */
	char tls_secret[300];
	const char *secret_ns;
	long renew_before_s;
	char *serving_cert;	       /* the certificate served now (loop thread) */
	struct injector_certs pending; /* a renewed pair waiting for its CA in caBundle */
	bool renew_running, may_renew;
	uv_work_t renew_work;
	struct injector_certs fetched; /* renew_work's result */
	int fetched_rc;
	stk_err fetched_err;
	/* mounted files: */
	struct timespec cert_mtime, key_mtime;
	/* either mode: looks at the mounted files, or at the Secret for a renewal */
	uv_timer_t tls_timer;
	bool tls_timer_open;
};

/* ---- cache lookups for inj_review ------------------------------------------------------ */

static stk_cache *cache_of(struct injector *in, enum stk_api_kind kind)
{
	switch (kind) {
	case STK_KIND_STOKER:
		return in->stokers;
	case STK_KIND_SYNCPROFILE:
		return in->profiles;
	case STK_KIND_GITSOURCE:
		return in->sources;
	default:
		return NULL;
	}
}

static yajl_val lk_get(void *arg, enum stk_api_kind kind, const char *ns, const char *name,
		       void **ref)
{
	stk_cache *c = cache_of(arg, kind);
	stk_obj *o = c ? stk_cache_get(c, ns, name) : NULL;

	*ref = o;
	return o ? o->root : NULL;
}

static void lk_put(void *arg, void *ref)
{
	(void)arg;
	stk_obj_unref(ref);
}

struct each_adapter {
	int (*fn)(yajl_val obj, void *arg);
	void *arg;
};

static int each_obj(stk_obj *o, void *arg)
{
	struct each_adapter *a = arg;

	return a->fn(o->root, a->arg);
}

static int lk_each(void *arg, enum stk_api_kind kind, const char *ns,
		   int (*fn)(yajl_val obj, void *fn_arg), void *fn_arg)
{
	stk_cache *c = cache_of(arg, kind);
	struct each_adapter a = {fn, fn_arg};

	return c ? stk_cache_each(c, ns, NULL, each_obj, &a, NULL) : 0;
}

/* ---- the admission endpoint ---------------------------------------------------------- */

static int on_mutate(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	struct injector *in = arg;
	stk_buf out = STK_BUF_INIT(1 << 21);
	enum inj_result res = INJ_SKIPPED;
	stk_err err = STK_ERR_INIT;
	uint64_t t0 = stk_now_ms();
	const char *result;
	int rc;

	rc = inj_review(&in->cfg, &in->lookup, req->body, req->body_len, &out, &res, &err);
	result = rc ? "error" : inj_result_name(res);
	stk_metrics_observe(in->m_duration, NULL, (double)(stk_now_ms() - t0) / 1000.0);
	stk_metrics_inc(in->m_total, (const char *const[]){result});
	if (rc) {
		stk_log_warn("bad admission review", "peer", req->peer, "error", err.message, NULL);
		stk_buf_release(&out);
		stk_http_response_text(resp, rc == STK_ETOOBIG ? 413 : 400, err.message);
		return STK_HTTP_DONE;
	}
	if (res == INJ_INJECTED || res == INJ_DENIED)
		stk_log_info(res == INJ_INJECTED ? "injected" : "denied", "peer", req->peer, NULL);
	stk_http_response_body_take(resp, 200, "application/json", &out);
	return STK_HTTP_DONE;
}

/* ---- self-managed TLS: the pair in a Secret, the CA in the caBundle ------------------- */

static int pem_field(yajl_val secret, const char *key, char **out)
{
	const char *b64 = stk_json_str(secret, "data", key, NULL);

	*out = NULL;
	return b64 && *b64 ? stk_base64_decode(b64, strlen(b64), out, NULL, NULL) : -1;
}

/* True when `cert_pem` is valid for another `renew_before_s` and names every one of `names`. */
static bool pair_usable(const char *cert_pem, const struct stk_strlist *names, long renew_before_s)
{
	BIO *bio = BIO_new_mem_buf(cert_pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	time_t soon = time(NULL) + renew_before_s;
	bool ok = x && X509_cmp_time(X509_get0_notAfter(x), &soon) > 0;

	for (size_t i = 0; ok && i < names->len; i++) {
		unsigned char ip[16];
		const char *n = names->items[i];
		if (inet_pton(AF_INET, n, ip) == 1 || inet_pton(AF_INET6, n, ip) == 1)
			ok = X509_check_ip_asc(x, n, 0) == 1;
		else
			ok = X509_check_host(x, n, strlen(n), 0, NULL) == 1;
	}
	X509_free(x);
	BIO_free(bio);
	return ok;
}

static void b64_member(stk_buf *b, const char *key, const char *pem)
{
	char *out = stk_base64_encode(pem, strlen(pem));

	stk_buf_printf(b, "\"%s\":\"%s\"", key, out ? out : "");
	if (out) {
		OPENSSL_cleanse(out, strlen(out));
		free(out);
	}
}

/*
 * The CA bundle of a renewed pair: its new CA, then the CA that signed the certificate
 * being replaced (the first certificate of the old bundle `old`) while that CA is
 * valid. The API server keeps trusting replicas that still serve the old certificate
 * until each has switched. Takes `new_ca`; returns the bundle (heap).
 */
static char *bundle_with_previous(char *new_ca, const char *old)
{
	char *out = new_ca;
	BIO *in = NULL, *mem = BIO_new(BIO_s_mem());
	X509 *x = NULL;
	char *data;
	long n;

	if (!old || !mem)
		goto done;
	in = BIO_new_mem_buf(old, -1);
	x = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
	if (!x || X509_cmp_time(X509_get0_notAfter(x), NULL) <= 0 ||
	    PEM_write_bio_X509(mem, x) != 1)
		goto done;
	n = BIO_get_mem_data(mem, &data);
	if (n <= 0 || strstr(new_ca, "-----BEGIN") == NULL)
		goto done;
	out = stk_malloc(strlen(new_ca) + (size_t)n + 1);
	memcpy(out, new_ca, strlen(new_ca));
	memcpy(out + strlen(new_ca), data, (size_t)n);
	out[strlen(new_ca) + (size_t)n] = '\0';
	free(new_ca);
done:
	X509_free(x);
	BIO_free(in);
	BIO_free(mem);
	return out;
}

/*
 * Loads the pair from the Secret, or generates one and stores it there. Every replica
 * ends up with the same pair: the first to create the Secret wins, the others read it.
 * A pair expiring within renew_before_s is replaced by a new one whose ca.crt also
 * carries the CA of the pair it replaces (bundle_with_previous) — unless `may_renew` is
 * false (a replica that does not lead): it then takes the Secret's pair as it is, and
 * fails with STK_ENOTFOUND when there is none. Any thread.
 */
static int ensure_pair(struct injector *in, struct injector_certs *pair, bool may_renew,
		       stk_err *err)
{
	const struct stk_strlist *names = in->o->dns_names;
	yajl_val s = NULL;
	stk_buf body = STK_BUF_INIT(1 << 16);
	const char **list;
	int rc;

	for (int attempt = 0; attempt < 3; attempt++) {
		rc = stk_kube_get(in->kube, &STK_GVR_SECRETS, in->secret_ns, in->tls_secret, &s,
				  err);
		if (rc && rc != STK_ENOTFOUND)
			return rc;
		if (!rc) {
			memset(pair, 0, sizeof(*pair));
			if (!pem_field(s, "ca.crt", &pair->ca_pem) &&
			    !pem_field(s, "tls.crt", &pair->cert_pem) &&
			    !pem_field(s, "tls.key", &pair->key_pem) &&
			    (!may_renew ||
			     pair_usable(pair->cert_pem, names, in->renew_before_s))) {
				yajl_tree_free(s);
				stk_log_info("serving certificate from Secret", "secret",
					     in->tls_secret, NULL);
				return 0;
			}
			injector_certs_release(pair);
		}
		if (!may_renew) {
			yajl_tree_free(s);
			return stk_err_set(err, STK_ENOTFOUND, "Secret %s holds no usable pair",
					   in->tls_secret);
		}
		list = stk_calloc(names->len + 1, sizeof(*list));
		for (size_t i = 0; i < names->len; i++)
			list[i] = names->items[i];
		rc = injector_certs_generate(pair, list, names->len, in->o->cert_validity_s, err);
		free(list);
		if (rc) {
			yajl_tree_free(s);
			return rc;
		}
		{
			/* The CA trusted now: the Secret's, else the one this replica serves. */
			char *prev = NULL;
			if (!s || pem_field(s, "ca.crt", &prev)) {
				free(prev);
				prev = NULL;
				pthread_mutex_lock(&in->bundle_mu);
				if (in->ca_bundle)
					stk_base64_decode(in->ca_bundle, strlen(in->ca_bundle),
							  &prev, NULL, NULL);
				pthread_mutex_unlock(&in->bundle_mu);
			}
			pair->ca_pem = bundle_with_previous(pair->ca_pem, prev);
			free(prev);
		}
		stk_buf_reset(&body);
		stk_buf_puts(&body, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":"
				    "\"kubernetes.io/tls\",\"metadata\":{\"name\":");
		stk_buf_put_json_string(&body, in->tls_secret, strlen(in->tls_secret));
		if (s) /* replace the unusable one, conditionally on what was read */
			stk_buf_printf(
				&body, ",\"resourceVersion\":\"%s\"",
				stk_json_str(s, "metadata", "resourceVersion", NULL)
					? stk_json_str(s, "metadata", "resourceVersion", NULL)
					: "");
		stk_buf_puts(&body, ",\"labels\":{\"" STK_LABEL_MANAGED_BY "\":\"injector\"}},"
				    "\"data\":{");
		b64_member(&body, "ca.crt", pair->ca_pem);
		stk_buf_putc(&body, ',');
		b64_member(&body, "tls.crt", pair->cert_pem);
		stk_buf_putc(&body, ',');
		b64_member(&body, "tls.key", pair->key_pem);
		stk_buf_puts(&body, "}}");
		if (s)
			rc = stk_kube_update(in->kube, &STK_GVR_SECRETS, in->secret_ns,
					     in->tls_secret, NULL, body.ptr, body.len, NULL, err);
		else
			rc = stk_kube_create(in->kube, &STK_GVR_SECRETS, in->secret_ns, body.ptr,
					     body.len, NULL, err);
		OPENSSL_cleanse(body.ptr, body.len);
		yajl_tree_free(s);
		s = NULL;
		if (!rc) {
			stk_buf_release(&body);
			stk_log_info("generated a serving certificate", "secret", in->tls_secret,
				     NULL);
			return 0;
		}
		injector_certs_release(pair);
		if (rc != STK_EEXIST && rc != STK_ECONFLICT)
			break; /* another replica raced us: read theirs */
	}
	stk_buf_release(&body);
	return rc ? rc
		  : stk_err_set(err, STK_ECONFLICT, "Secret %s keeps changing", in->tls_secret);
}

/*
 * The work queue's reconcile (leader only): makes every webhook of the configuration
 * carry our CA, patching clientConfig.caBundle alone so a GitOps tool that re-applies the
 * manifest without it never fights us over other fields.
 */
static int publish_ca(void *arg, const char *ns, const char *name, uint64_t *requeue_after_ms,
		      stk_err *err)
{
	struct injector *in = arg;
	stk_obj *o;
	yajl_val hooks;
	stk_buf b = STK_BUF_INIT(1 << 20);
	size_t changed = 0;
	char *bundle;
	int rc = 0;

	(void)ns;
	(void)name;
	(void)requeue_after_ms;
	pthread_mutex_lock(&in->bundle_mu);
	bundle = in->ca_bundle ? stk_strdup(in->ca_bundle) : NULL;
	pthread_mutex_unlock(&in->bundle_mu);
	if (!bundle)
		return 0;
	o = stk_cache_get(in->configs, "", in->o->webhook_config);
	if (!o) {
		stk_log_warn("webhook configuration not found; will publish the CA when it appears",
			     "name", in->o->webhook_config, NULL);
		free(bundle);
		return 0;
	}
	hooks = stk_json_arr(o->root, "webhooks", NULL);
	stk_buf_putc(&b, '[');
	stk_buf_printf(&b,
		       "{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"%s\"}",
		       o->rv);
	for (size_t i = 0; hooks && i < hooks->u.array.len; i++) {
		const char *cur =
			stk_json_str(hooks->u.array.values[i], "clientConfig", "caBundle", NULL);
		if (cur && !strcmp(cur, bundle))
			continue;
		stk_buf_printf(&b,
			       ",{\"op\":\"add\",\"path\":\"/webhooks/%zu/clientConfig/caBundle\","
			       "\"value\":\"%s\"}",
			       i, bundle);
		changed++;
	}
	stk_buf_putc(&b, ']');
	if (changed) {
		rc = stk_kube_patch(in->kube, &INJ_GVR_WEBHOOKS, "", in->o->webhook_config,
				    STK_PATCH_JSON, b.ptr, b.len, NULL, NULL, err);
		if (!rc)
			stk_log_info("published the CA", "webhookConfiguration",
				     in->o->webhook_config, NULL);
	}
	stk_buf_release(&b);
	stk_obj_unref(o);
	free(bundle);
	return rc;
}

/* ---- self-managed TLS: renewal while running ------------------------------------------ */

static void set_bundle(struct injector *in, char *bundle)
{
	pthread_mutex_lock(&in->bundle_mu);
	free(in->ca_bundle);
	in->ca_bundle = bundle;
	pthread_mutex_unlock(&in->bundle_mu);
}

/*
 * Serves the pending pair once every webhook of the configuration carries its CA bundle
 * (published by the leader, seen through the cache): before that, the API server would
 * refuse the new certificate and, with failurePolicy Ignore, admit pods without their
 * sidecar. No configuration (or no webhook in it) means nobody calls: switch at once.
 * Loop thread.
 */
static void try_switch(struct injector *in)
{
	stk_err err = STK_ERR_INIT;
	stk_obj *o;
	yajl_val hooks;
	char *want;
	bool ready = true;

	if (!in->pending.cert_pem)
		return;
	want = injector_certs_ca_bundle(&in->pending);
	o = stk_cache_get(in->configs, "", in->o->webhook_config);
	hooks = o ? stk_json_arr(o->root, "webhooks", NULL) : NULL;
	for (size_t i = 0; hooks && i < hooks->u.array.len; i++) {
		const char *cur =
			stk_json_str(hooks->u.array.values[i], "clientConfig", "caBundle", NULL);
		if (!cur || !want || strcmp(cur, want))
			ready = false;
	}
	stk_obj_unref(o);
	free(want);
	if (!ready)
		return;
	if (stk_http_server_set_tls_pem(in->https, in->pending.cert_pem, in->pending.key_pem,
					&err)) {
		stk_log_error("cannot serve the renewed certificate; keeping the current one",
			      "error", err.message, NULL);
		injector_certs_release(&in->pending);
		return;
	}
	free(in->serving_cert);
	in->serving_cert = stk_strdup(in->pending.cert_pem);
	injector_certs_release(&in->pending);
	stk_log_info("serving the renewed certificate", "secret", in->tls_secret, NULL);
}

/* Threadpool: reads the Secret, renewing the pair there when it is due. */
static void renew_work(uv_work_t *w)
{
	struct injector *in = w->data;

	memset(&in->fetched, 0, sizeof(in->fetched));
	stk_err_clear(&in->fetched_err);
	in->fetched_rc = ensure_pair(in, &in->fetched, in->may_renew, &in->fetched_err);
}

/* Loop thread: a pair other than the one served becomes pending. */
static void renew_done(uv_work_t *w, int status)
{
	struct injector *in = w->data;

	in->renew_running = false;
	if (stk_loop_stopping(stk_manager_loop(in->mgr))) {
		injector_certs_release(&in->fetched);
		return;
	}
	if (status || in->fetched_rc) {
		if (in->fetched_rc)
			stk_log_warn("cannot check the serving certificate's Secret; retrying",
				     "secret", in->tls_secret, "error", in->fetched_err.message,
				     NULL);
		injector_certs_release(&in->fetched);
		return;
	}
	if (!strcmp(in->fetched.cert_pem, in->serving_cert) ||
	    (in->pending.cert_pem && !strcmp(in->fetched.cert_pem, in->pending.cert_pem))) {
		injector_certs_release(&in->fetched);
		try_switch(in);
		return;
	}
	injector_certs_release(&in->pending);
	in->pending = in->fetched;
	memset(&in->fetched, 0, sizeof(in->fetched));
	set_bundle(in, injector_certs_ca_bundle(&in->pending));
	stk_log_info("renewed serving certificate: switching once the caBundle carries its CA",
		     "secret", in->tls_secret, NULL);
	stk_manager_enqueue(in->mgr, "", INJ_CONFIG_KEY + 1); /* the leader publishes */
	try_switch(in);
}

static void on_renew_timer(uv_timer_t *t)
{
	struct injector *in = t->data;

	if (in->renew_running || stk_loop_stopping(stk_manager_loop(in->mgr)))
		return;
	in->renew_running = true;
	/* The leader alone renews, and publishes the new CA at once. */
	in->may_renew = stk_manager_leading(in->mgr);
	in->renew_work.data = in;
	if (uv_queue_work(stk_loop_uv(stk_manager_loop(in->mgr)), &in->renew_work, renew_work,
			  renew_done))
		in->renew_running = false;
}

static void on_config(stk_obj *o, void *arg)
{
	struct injector *in = arg;

	(void)o;
	stk_manager_enqueue(in->mgr, "", INJ_CONFIG_KEY + 1);
	try_switch(in);
}

static void on_config_update(stk_obj *old, stk_obj *cur, void *arg)
{
	(void)old;
	on_config(cur, arg);
}

/* ---- mounted files: reload on change ------------------------------------------------- */

static char *read_file(const char *path, stk_err *err)
{
	FILE *f = fopen(path, "rb");
	stk_buf b = STK_BUF_INIT(1 << 20);
	char chunk[4096];
	size_t n;

	if (!f) {
		stk_err_errno(err, errno, "cannot open %s", path);
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (stk_buf_put(&b, chunk, n)) {
			fclose(f);
			stk_buf_release(&b);
			stk_err_set(err, STK_ETOOBIG, "%s is larger than 1 MiB", path);
			return NULL;
		}
	}
	fclose(f);
	return stk_buf_detach(&b, NULL);
}

static bool mtime_changed(const char *path, struct timespec *seen)
{
	struct stat st;

	if (stat(path, &st))
		return false;
	if (st.st_mtim.tv_sec == seen->tv_sec && st.st_mtim.tv_nsec == seen->tv_nsec)
		return false;
	*seen = st.st_mtim;
	return true;
}

static void on_reload(uv_timer_t *t)
{
	struct injector *in = t->data;
	stk_err err = STK_ERR_INIT;
	char *cert, *key;
	bool a = mtime_changed(in->o->cert_file, &in->cert_mtime);
	bool b = mtime_changed(in->o->key_file, &in->key_mtime);

	if (!a && !b)
		return;
	cert = read_file(in->o->cert_file, &err);
	key = cert ? read_file(in->o->key_file, &err) : NULL;
	if (key && !stk_http_server_set_tls_pem(in->https, cert, key, &err))
		stk_log_info("reloaded the serving certificate", "file", in->o->cert_file, NULL);
	else
		stk_log_warn("cannot reload the serving certificate; keeping the current one",
			     "error", err.message, NULL);
	free(cert);
	if (key) {
		OPENSSL_cleanse(key, strlen(key));
		free(key);
	}
}

static void stop_tls_timer(void *arg)
{
	struct injector *in = arg;

	if (in->tls_timer_open) {
		uv_timer_stop(&in->tls_timer);
		uv_close((uv_handle_t *)&in->tls_timer, NULL);
		in->tls_timer_open = false;
	}
	if (in->renew_running)
		uv_cancel((uv_req_t *)&in->renew_work);
	stk_loop_shutdown_done(stk_manager_loop(in->mgr));
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static int setup(struct injector *in, stk_err *err)
{
	/* The manager keeps a pointer to the daemon options: they must outlive this call. */
	struct stk_manager_opts mo = {"injector",    "MutatingWebhookConfiguration",
				      in->o->daemon, in->o->identity,
				      publish_ca,    in};
	struct stk_informer_opts io = STK_INFORMER_OPTS_INIT;
	static const char *const result[] = {"result", NULL};
	struct injector_certs pair;
	stk_http_opts ho = STK_HTTP_OPTS_INIT;
	stk_metrics *metrics;
	char selector[320];
	int rc;

	memset(&pair, 0, sizeof(pair));
	rc = stk_manager_new(&in->mgr, &mo, err);
	if (rc)
		return rc;
	in->kube = stk_manager_kube(in->mgr);
	metrics = stk_manager_metrics(in->mgr);
	in->m_duration =
		stk_metrics_histogram(metrics, "stoker_admission_duration_seconds",
				      "Time to answer an admission review.", NULL, NULL, 0);
	in->m_total = stk_metrics_counter(metrics, "stoker_admission_total",
					  "Admission reviews by result (skipped, already, "
					  "injected, denied, error).",
					  result);
	in->cfg.default_image = in->o->agent_image;
	in->lookup = (struct inj_lookup){lk_get, lk_put, lk_each, in};

	io.gvr = &STK_GVR_STOKERS;
	rc = stk_manager_cache(in->mgr, &io, NULL, &in->stokers, err);
	io.gvr = &STK_GVR_SYNCPROFILES;
	if (!rc)
		rc = stk_manager_cache(in->mgr, &io, NULL, &in->profiles, err);
	io.gvr = &STK_GVR_GITSOURCES;
	if (!rc)
		rc = stk_manager_cache(in->mgr, &io, NULL, &in->sources, err);
	if (rc)
		return rc;

	ho.bind_address = in->o->webhook_addr;
	ho.name = "webhook";
	ho.timeout_s = 10;
	if (in->o->cert_file) {
		ho.tls_cert_file = in->o->cert_file;
		ho.tls_key_file = in->o->key_file;
		mtime_changed(in->o->cert_file, &in->cert_mtime);
		mtime_changed(in->o->key_file, &in->key_mtime);
	} else {
		in->secret_ns = in->o->daemon->lease_namespace ? in->o->daemon->lease_namespace
							       : stk_kube_namespace(in->kube);
		snprintf(in->tls_secret, sizeof(in->tls_secret), "%s",
			 in->o->tls_secret ? in->o->tls_secret : "");
		if (!*in->tls_secret)
			snprintf(in->tls_secret, sizeof(in->tls_secret), "%s-tls",
				 in->o->webhook_config);
		rc = ensure_pair(in, &pair, true, err);
		if (rc)
			return rc;
		in->ca_bundle = injector_certs_ca_bundle(&pair);
		in->serving_cert = stk_strdup(pair.cert_pem);
		ho.tls_cert_pem = pair.cert_pem;
		ho.tls_key_pem = pair.key_pem;
		/* Cluster-scoped, selected by name: only our configuration is cached. */
		snprintf(selector, sizeof(selector), "metadata.name=%s", in->o->webhook_config);
		io.gvr = &INJ_GVR_WEBHOOKS;
		io.field_selector = selector;
		rc = stk_manager_cluster_cache(
			in->mgr, &io,
			&(struct stk_informer_handler){on_config, on_config_update, on_config, in},
			&in->configs, err);
		if (rc)
			goto out;
	}
	rc = stk_http_server_new(&in->https, stk_manager_loop(in->mgr), &ho, err);
	if (!rc)
		rc = stk_http_route(in->https, "POST", "/mutate-v1-pod", on_mutate, in, err);
	if (rc)
		goto out;
	/* Stopped after the manager's controller, before health and metrics. */
	stk_loop_on_shutdown(stk_manager_loop(in->mgr), stk_http_server_shutdown_hook, in->https);
	uv_timer_init(stk_loop_uv(stk_manager_loop(in->mgr)), &in->tls_timer);
	in->tls_timer.data = in;
	in->tls_timer_open = true;
	if (in->o->cert_file)
		uv_timer_start(&in->tls_timer, on_reload, INJ_RELOAD_MS, INJ_RELOAD_MS);
	else
		uv_timer_start(&in->tls_timer, on_renew_timer, in->o->cert_check_ms,
			       in->o->cert_check_ms);
	stk_loop_on_shutdown(stk_manager_loop(in->mgr), stop_tls_timer, in);
	stk_log_info("serving admission reviews", "address", in->o->webhook_addr, "tls",
		     in->o->cert_file ? in->o->cert_file : "self-managed", NULL);
out:
	injector_certs_release(&pair);
	return rc;
}

int injector_run(const struct injector_options *o)
{
	struct injector in;
	stk_err err = STK_ERR_INIT;
	int code;

	memset(&in, 0, sizeof(in));
	in.o = o;
	pthread_mutex_init(&in.bundle_mu, NULL);
	in.renew_before_s = o->cert_validity_s / 3;
	if (in.renew_before_s <= 0 || in.renew_before_s > INJ_RENEW_BEFORE_S)
		in.renew_before_s = INJ_RENEW_BEFORE_S;
	if (setup(&in, &err)) {
		stk_log_error("cannot start", "error", err.message, NULL);
		code = STK_EXIT_FAILURE;
	} else {
		code = stk_manager_run(in.mgr);
	}
	stk_http_server_free(in.https);
	stk_manager_free(in.mgr);
	free(in.ca_bundle);
	free(in.serving_cert);
	injector_certs_release(&in.pending);
	injector_certs_release(&in.fetched);
	pthread_mutex_destroy(&in.bundle_mu);
	stk_log_info("stopped", NULL);
	return code;
}
