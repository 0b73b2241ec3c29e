#include "stk/manager.h"

#include <stdatomic.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stk/alloc.h"
#include "stk/daemon.h"
#include "stk/health.h"
#include "stk/http.h"
#include "stk/json.h"
#include "stk/kubeconfig.h"
#include "stk/lease.h"
#include "stk/log.h"
#include "stk/version.h"
#include "stk/workqueue.h"

#define MGR_MAX_NAMESPACES 64
#define MGR_MAX_CACHES	   8

struct stk_cache {
	const struct stk_gvr *gvr;
	stk_informer *inf[MGR_MAX_NAMESPACES];
	const char *ns[MGR_MAX_NAMESPACES]; /* NULL: all namespaces */
	size_t n;
};

struct stk_manager {
	struct stk_manager_opts o;
	char name[64], kind[64];
	stk_loop *loop;
	stk_kube *kube;
	stk_curlm *curlm;
	stk_cache caches[MGR_MAX_CACHES];
	size_t ncaches;
	stk_workqueue *wq;
	stk_recorder *recorder;
	stk_metrics *metrics;
	stk_metrics_family *m_duration, *m_total, *m_leader, *m_condition;
	stk_http_server *health_srv, *metrics_srv;
	stk_health *health;
	stk_lease *lease;
	uv_timer_t start_timer; /* waits for the caches before the workers start */
	bool timer_open, workers_started;
	char host[128];
	atomic_bool leading;
	atomic_bool lost;
	atomic_uint_fast64_t last_trim_ms;
	bool ran;
};

/* ---- accessors ------------------------------------------------------------------------ */

stk_loop *stk_manager_loop(stk_manager *m)
{
	return m->loop;
}

stk_kube *stk_manager_kube(stk_manager *m)
{
	return m->kube;
}

stk_curlm *stk_manager_curlm(stk_manager *m)
{
	return m->curlm;
}

stk_metrics *stk_manager_metrics(stk_manager *m)
{
	return m->metrics;
}

struct stk_health *stk_manager_health(stk_manager *m)
{
	return m->health;
}

stk_recorder *stk_manager_recorder(stk_manager *m)
{
	return m->recorder;
}

const struct stk_strlist *stk_manager_namespaces(stk_manager *m)
{
	return &m->o.daemon->watch_namespaces;
}

bool stk_manager_leading(stk_manager *m)
{
	return atomic_load(&m->leading);
}

/* ---- caches ------------------------------------------------------------------------ */

static stk_informer *cache_for(stk_cache *c, const char *ns)
{
	for (size_t i = 0; i < c->n; i++)
		if (!c->ns[i] || (ns && !strcmp(c->ns[i], ns)))
			return c->inf[i];
	return NULL;
}

stk_obj *stk_cache_get(stk_cache *c, const char *ns, const char *name)
{
	stk_informer *inf = cache_for(c, ns);

	return inf ? stk_informer_get(inf, ns, name) : NULL;
}

int stk_cache_each(stk_cache *c, const char *ns, const char *selector,
		   int (*fn)(stk_obj *obj, void *arg), void *arg, stk_err *err)
{
	int rc;

	if (ns) {
		stk_informer *inf = cache_for(c, ns);
		return inf ? stk_informer_each(inf, ns, selector, fn, arg, err) : 0;
	}
	for (size_t i = 0; i < c->n; i++) {
		rc = stk_informer_each(c->inf[i], NULL, selector, fn, arg, err);
		if (rc)
			return rc;
	}
	return 0;
}

bool stk_cache_synced(stk_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (!stk_informer_synced(c->inf[i]))
			return false;
	return true;
}

static int mgr_cache(stk_manager *m, const struct stk_informer_opts *io,
		     const struct stk_informer_handler *h, bool cluster, stk_cache **out,
		     stk_err *err)
{
	const struct stk_strlist *nss = &m->o.daemon->watch_namespaces;
	static const struct stk_strlist all = {NULL, 0};
	stk_cache *c;
	size_t n;

	if (cluster)
		nss = &all;
	n = nss->len ? nss->len : 1;
	int rc;

	if (m->ncaches == MGR_MAX_CACHES)
		return stk_err_set(err, STK_EINVAL, "at most %d caches", MGR_MAX_CACHES);
	if (n > MGR_MAX_NAMESPACES)
		return stk_err_set(err, STK_EINVAL, "at most %d watched namespaces",
				   MGR_MAX_NAMESPACES);
	c = &m->caches[m->ncaches++];
	c->gvr = io->gvr;
	for (size_t i = 0; i < n; i++) {
		struct stk_informer_opts o = *io;
		o.ns = nss->len ? nss->items[i] : NULL;
		if (!o.page_size)
			o.page_size = 100; /* smaller pages: a lower memory peak while listing */
		rc = stk_informer_new(&c->inf[c->n], m->loop, m->curlm, m->kube, &o, err);
		if (rc)
			return rc;
		c->ns[c->n] = o.ns;
		if (h)
			stk_informer_add_handler(c->inf[c->n], h);
		c->n++;
	}
	if (out)
		*out = c;
	return 0;
}

int stk_manager_cache(stk_manager *m, const struct stk_informer_opts *io,
		      const struct stk_informer_handler *h, stk_cache **out, stk_err *err)
{
	return mgr_cache(m, io, h, false, out, err);
}

int stk_manager_cluster_cache(stk_manager *m, const struct stk_informer_opts *io,
			      const struct stk_informer_handler *h, stk_cache **out, stk_err *err)
{
	return mgr_cache(m, io, h, true, out, err);
}

/* ---- work queue ---------------------------------------------------------------------- */

/* Set when a reconcile forgot its object (deleted): its series must not come back. */
static _Thread_local bool mgr_forgotten;

void stk_manager_enqueue(stk_manager *m, const char *ns, const char *name)
{
	stk_manager_enqueue_after(m, ns, name, 0);
}

void stk_manager_enqueue_after(stk_manager *m, const char *ns, const char *name, uint64_t delay_ms)
{
	char key[600];

	if ((size_t)snprintf(key, sizeof(key), "%s/%s", ns, name) >= sizeof(key))
		return;
	if (delay_ms)
		stk_workqueue_add_after(m->wq, key, delay_ms);
	else
		stk_workqueue_add(m->wq, key);
}

/*
 * Once a burst of reconciles is over (the queue ran empty), hands the memory the workers
 * freed back to the system, at most every 5 s: without it each worker's malloc arena
 * keeps its high-water mark for good.
 */
static void mgr_trim(stk_manager *m)
{
#ifdef __GLIBC__
	uint_fast64_t now = stk_now_ms(), last = atomic_load(&m->last_trim_ms);

	if (stk_workqueue_len(m->wq) || now - last < 5000 ||
	    !atomic_compare_exchange_strong(&m->last_trim_ms, &last, now))
		return;
	malloc_trim(0);
#else
	(void)m;
#endif
}

static int mgr_reconcile_key(const char *key, void *arg, uint64_t *requeue_after_ms)
{
	stk_manager *m = arg;
	char ns[256], name[256];
	const char *slash = strchr(key, '/');
	stk_err err = STK_ERR_INIT;
	uint64_t t0 = stk_now_ms();
	const char *labels[4];
	int rc;

	if (!slash || (size_t)(slash - key) >= sizeof(ns) || strlen(slash + 1) >= sizeof(name))
		return 0;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
	snprintf(name, sizeof(name), "%s", slash + 1);
	mgr_forgotten = false;
	rc = m->o.reconcile(m->o.arg, ns, name, requeue_after_ms, &err);
	if (mgr_forgotten && !rc)
		return 0;
	labels[0] = m->kind;
	labels[1] = name;
	labels[2] = ns;
	stk_metrics_observe(m->m_duration, labels, (double)(stk_now_ms() - t0) / 1000.0);
	labels[3] = rc ? "error" : "success";
	stk_metrics_inc(m->m_total, labels);
	if (rc)
		stk_log_warn("reconcile failed", "object", key, "error", err.message, NULL);
	mgr_trim(m);
	return rc;
}

/* ---- metrics helpers ----------------------------------------------------------------- */

void stk_manager_publish_conditions(stk_manager *m, const char *ns, const char *name,
				    const struct stk_conditions *conds)
{
	const char *any[] = {m->kind, name, ns, NULL, NULL};

	stk_metrics_remove_matching(m->m_condition, any);
	for (size_t i = 0; i < conds->len; i++) {
		const struct stk_condition *c = &conds->items[i];
		const char *v[] = {m->kind, name, ns, c->type,
				   stk_conditions_status_name(c->status)};
		stk_metrics_set(m->m_condition, v, 1);
	}
}

void stk_manager_forget(stk_manager *m, const char *ns, const char *name,
			stk_metrics_family *const *extra)
{
	const char *obj[] = {m->kind, name, ns, NULL, NULL};
	const char *nn[] = {name, ns, NULL, NULL, NULL};

	mgr_forgotten = true;
	stk_metrics_remove_matching(m->m_condition, obj);
	stk_metrics_remove_matching(m->m_duration, obj);
	stk_metrics_remove_matching(m->m_total, obj);
	for (; extra && *extra; extra++)
		stk_metrics_remove_matching(*extra, nn);
}

/* ---- health ------------------------------------------------------------------------- */

static bool check_synced(void *arg, stk_buf *msg)
{
	stk_manager *m = arg;

	char last[STK_ERR_MESSAGE_MAX + 64];

	for (size_t i = 0; i < m->ncaches; i++) {
		struct stk_cache *c = &m->caches[i];
		if (stk_cache_synced(c))
			continue;
		stk_buf_printf(msg, "%s cache not synced yet", c->gvr->resource);
		/* Say why: a 403 here is an RBAC rule missing for this resource. */
		for (size_t j = 0; j < c->n; j++) {
			if (stk_informer_synced(c->inf[j]))
				continue;
			stk_informer_last_error(c->inf[j], last, sizeof(last));
			if (last[0]) {
				stk_buf_printf(msg, " (%s)", last);
				break;
			}
		}
		return false;
	}
	return true;
}

static bool check_lease(void *arg, stk_buf *msg)
{
	stk_manager *m = arg;

	if (atomic_load(&m->lost)) {
		stk_buf_puts(msg, "lost leadership");
		return false;
	}
	return true;
}

/* ---- leadership ---------------------------------------------------------------------- */

static void on_start_timer(uv_timer_t *t);

static bool caches_synced(stk_manager *m)
{
	for (size_t i = 0; i < m->ncaches; i++)
		if (!stk_cache_synced(&m->caches[i]))
			return false;
	return true;
}

/*
 * Starts the workers once every cache holds its first list: a reconcile that ran
 * earlier would see a partial world (a Stoker without its GitSource or pods) and write
 * a wrong status or ConfigMap before correcting it. Loop thread.
 */
static void try_start_workers(stk_manager *m)
{
	stk_err err = STK_ERR_INIT;
	const char *labels[] = {m->name};

	if (m->workers_started || stk_loop_stopping(m->loop))
		return;
	if (!caches_synced(m)) {
		if (!uv_is_active((uv_handle_t *)&m->start_timer))
			uv_timer_start(&m->start_timer, on_start_timer, 10, 10);
		return;
	}
	uv_timer_stop(&m->start_timer);
	m->workers_started = true;
#ifdef __GLIBC__
	/* The initial lists' pages are freed by now; give their room back to the system. */
	malloc_trim(0);
#endif
	if (stk_workqueue_start(m->wq, &err))
		stk_log_error("cannot start workers", "error", err.message, NULL);
	stk_metrics_set(m->m_leader, labels, 1);
	stk_log_info("caches synced; reconciling", "kind", m->kind, NULL);
}

static void on_start_timer(uv_timer_t *t)
{
	try_start_workers(t->data);
}

static void start_workers(void *arg)
{
	try_start_workers(arg);
}

static void on_started(void *arg)
{
	stk_manager *m = arg;

	atomic_store(&m->leading, true);
	stk_log_info("became leader", NULL);
	stk_loop_post(m->loop, start_workers, m);
}

static void on_stopped(void *arg)
{
	stk_manager *m = arg;

	if (!atomic_load(&m->leading))
		return;
	atomic_store(&m->leading, false);
	if (!stk_loop_stopping(m->loop)) {
		/* Another replica may lead now: stop at once rather than race it. */
		stk_log_error("lost leadership; exiting", NULL);
		atomic_store(&m->lost, true);
		stk_loop_shutdown(m->loop);
	}
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void shutdown_controller(void *arg)
{
	stk_manager *m = arg;

	stk_health_set_shutting_down(m->health);
	if (m->timer_open) {
		uv_timer_stop(&m->start_timer);
		uv_close((uv_handle_t *)&m->start_timer, NULL);
		m->timer_open = false;
	}
	for (size_t i = 0; i < m->ncaches; i++)
		for (size_t j = 0; j < m->caches[i].n; j++)
			stk_informer_stop(m->caches[i].inf[j]);
	stk_workqueue_shutdown(m->wq, false);
	stk_loop_shutdown_done(m->loop);
}

static int mgr_setup(stk_manager **out, const struct stk_manager_opts *opts, stk_err *err)
{
	const struct stk_daemon_opts *d = opts->daemon;
	struct stk_kubeconfig_opts ko = STK_KUBECONFIG_OPTS_INIT;
	struct stk_kubeconfig *kc = NULL;
	struct stk_kube_opts kopts = STK_KUBE_OPTS_INIT;
	struct stk_recorder_opts ro = STK_RECORDER_OPTS_INIT;
	struct stk_workqueue_opts wo = STK_WORKQUEUE_OPTS_INIT;
	stk_http_opts ho = STK_HTTP_OPTS_INIT;
	static const char *const obj_labels[] = {"kind", "name", "namespace", NULL};
	static const char *const res_labels[] = {"kind", "name", "namespace", "result", NULL};
	static const char *const cond_labels[] = {"kind", "name",   "namespace",
						  "type", "status", NULL};
	static const char *const daemon_label[] = {"daemon", NULL};
	static const char *const version_label[] = {"version", NULL};
	char ua[128];
	stk_manager *m;
	int rc;

	*out = NULL;
	if (!opts->reconcile || !opts->name || !opts->kind)
		return stk_err_set(err, STK_EINVAL, "manager: name, kind and reconcile required");
	m = stk_calloc(1, sizeof(*m));
	*out = m;
	m->o = *opts;
	snprintf(m->name, sizeof(m->name), "%s", opts->name);
	snprintf(m->kind, sizeof(m->kind), "%s", opts->kind);
	snprintf(m->host, sizeof(m->host), "%s", opts->name);
	gethostname(m->host, sizeof(m->host) - 1);

	ko.path = d->kubeconfig;
	rc = stk_kubeconfig_load(&kc, &ko, err);
	if (rc)
		return rc;
	snprintf(ua, sizeof(ua), "%s/%s", m->name, STK_VERSION);
	kopts.user_agent = ua;
	rc = stk_kube_new_take(&m->kube, kc, &kopts, err);
	if (!rc)
		rc = stk_loop_new(&m->loop, err);
	if (!rc)
		rc = stk_loop_handle_signals(m->loop, err);
	if (!rc)
		rc = stk_curlm_new(&m->curlm, m->loop, err);
	if (rc)
		return rc;
	uv_timer_init(stk_loop_uv(m->loop), &m->start_timer);
	m->start_timer.data = m;
	m->timer_open = true;

	m->metrics = stk_metrics_new();
	m->m_duration = stk_metrics_histogram(m->metrics, "stoker_reconcile_duration_seconds",
					      "Duration of reconciles.", obj_labels, NULL, 0);
	m->m_total = stk_metrics_counter(m->metrics, "stoker_reconcile_total",
					 "Reconciles by result.", res_labels);
	m->m_condition =
		stk_metrics_gauge(m->metrics, "stoker_condition",
				  "1 for the current status of each condition.", cond_labels);
	m->m_leader = stk_metrics_gauge(m->metrics, "stoker_leader", "1 while this replica leads.",
					daemon_label);
	stk_metrics_set(stk_metrics_gauge(m->metrics, "stoker_build_info", "Build information.",
					  version_label),
			(const char *const[]){STK_VERSION}, 1);

	ro.component = m->name;
	ro.instance = m->host;
	rc = stk_recorder_new(&m->recorder, m->kube, &ro, err);
	if (rc)
		return rc;

	wo.name = m->name;
	wo.workers = (unsigned)d->concurrent;
	wo.reconcile = mgr_reconcile_key;
	wo.arg = m;
	rc = stk_workqueue_new(&m->wq, &wo, err);
	if (rc)
		return rc;

	m->health = stk_health_new();
	rc = stk_health_add(m->health, "informers", STK_HEALTH_READY, check_synced, m, err);
	if (!rc)
		rc = stk_health_add(m->health, "leadership", STK_HEALTH_LIVE, check_lease, m, err);
	ho.bind_address = d->health_addr;
	ho.name = "health";
	if (!rc)
		rc = stk_http_server_new(&m->health_srv, m->loop, &ho, err);
	if (!rc)
		rc = stk_health_serve(m->health, m->health_srv, err);
	ho.bind_address = d->metrics_addr;
	ho.name = "metrics";
	if (!rc)
		rc = stk_http_server_new(&m->metrics_srv, m->loop, &ho, err);
	if (!rc)
		rc = stk_http_serve_metrics(m->metrics_srv, m->metrics, err);
	if (rc)
		return rc;
	/* Hooks run in reverse: the controller stops first, the HTTP servers last. */
	stk_loop_on_shutdown(m->loop, stk_http_server_shutdown_hook, m->health_srv);
	stk_loop_on_shutdown(m->loop, stk_http_server_shutdown_hook, m->metrics_srv);
	return 0;
}

int stk_manager_new(stk_manager **out, const struct stk_manager_opts *opts, stk_err *err)
{
	int rc = mgr_setup(out, opts, err);

	if (rc) {
		stk_manager_free(*out);
		*out = NULL;
	}
	return rc;
}

static void start_informers(void *arg)
{
	stk_manager *m = arg;

	for (size_t i = 0; i < m->ncaches; i++)
		for (size_t j = 0; j < m->caches[i].n; j++)
			stk_informer_start(m->caches[i].inf[j]);
}

int stk_manager_run(stk_manager *m)
{
	const struct stk_daemon_opts *d = m->o.daemon;
	stk_err err = STK_ERR_INIT;
	char identity[256];
	int code = STK_EXIT_OK;

	m->ran = true;
	stk_loop_on_shutdown(m->loop, shutdown_controller, m);
	if (d->leader_elect) {
		struct stk_lease_opts lo = STK_LEASE_OPTS_INIT;
		char lease_name[128];
		snprintf(identity, sizeof(identity), "%s_%ld", m->host, (long)getpid());
		snprintf(lease_name, sizeof(lease_name), "%s-leader-election", m->name);
		lo.ns = d->lease_namespace ? d->lease_namespace : stk_kube_namespace(m->kube);
		lo.name = lease_name;
		lo.identity = m->o.identity ? m->o.identity : identity;
		lo.lease_duration_ms = (uint64_t)d->lease_duration_ms;
		lo.renew_deadline_ms = (uint64_t)d->renew_deadline_ms;
		lo.retry_period_ms = (uint64_t)d->retry_period_ms;
		lo.on_started = on_started;
		lo.on_stopped = on_stopped;
		lo.arg = m;
		if (stk_lease_new(&m->lease, m->kube, &lo, &err) ||
		    stk_lease_start(m->lease, &err)) {
			stk_log_error("cannot start leader election", "controller", m->name,
				      "error", err.message, NULL);
			return STK_EXIT_FAILURE;
		}
	} else {
		atomic_store(&m->leading, true);
		start_workers(m);
	}
	stk_loop_post(m->loop, start_informers, m);
	stk_log_info("running", NULL);
	if (stk_loop_run(m->loop) != 0)
		stk_log_warn("shutdown grace period ran out", NULL);
	/* Release the lease (if held) before the loop's handles go away. */
	stk_lease_stop(m->lease);
	stk_workqueue_wait(m->wq, 30000, NULL);
	if (atomic_load(&m->lost))
		code = STK_EXIT_FAILURE;
	return code;
}

void stk_manager_free(stk_manager *m)
{
	if (!m)
		return;
	stk_lease_free(m->lease);
	if (m->wq) {
		stk_workqueue_shutdown(m->wq, false);
		stk_workqueue_free(m->wq);
	}
	for (size_t i = 0; i < m->ncaches; i++)
		for (size_t j = 0; j < m->caches[i].n; j++)
			stk_informer_free(m->caches[i].inf[j]);
	stk_http_server_free(m->health_srv);
	stk_http_server_free(m->metrics_srv);
	stk_curlm_free(m->curlm);
	stk_loop_free(m->loop);
	stk_health_free(m->health);
	stk_recorder_free(m->recorder);
	stk_metrics_free(m->metrics);
	stk_kube_free(m->kube);
	free(m);
}

/* ---- change filter -------------------------------------------------------------------- */

static bool json_member_equal(yajl_val a, yajl_val b, const char *key)
{
	stk_buf x = STK_BUF_INIT(1 << 20), y = STK_BUF_INIT(1 << 20);
	bool same;

	stk_json_write(&x, stk_json_get(a, key, NULL));
	stk_json_write(&y, stk_json_get(b, key, NULL));
	same = x.len == y.len && !memcmp(x.ptr, y.ptr, x.len);
	stk_buf_release(&x);
	stk_buf_release(&y);
	return same;
}

bool stk_obj_changed_beyond_status(stk_obj *old, stk_obj *cur)
{
	static const char *const keys[] = {"labels", "annotations", "finalizers",
					   "deletionTimestamp"};
	yajl_val a, b;

	if (old == cur)
		return true; /* periodic resync */
	if (old->generation != cur->generation)
		return true;
	a = stk_json_obj(old->root, "metadata", NULL);
	b = stk_json_obj(cur->root, "metadata", NULL);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!json_member_equal(a, b, keys[i]))
			return true;
	return false;
}
