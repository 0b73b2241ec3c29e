#include "controller.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artserver.h"
#include "reconcile.h"
#include "stk/api/api.h"
#include "stk/daemon.h"
#include "stk/health.h"
#include "stk/http.h"
#include "stk/informer.h"
#include "stk/json.h"
#include "stk/kubeconfig.h"
#include "stk/lease.h"
#include "stk/log.h"
#include "stk/metrics.h"
#include "stk/version.h"
#include "stk/workqueue.h"

#define SRCCTL_MAX_NAMESPACES 64

struct srcctl {
	const struct srcctl_options *o;
	struct srcctl_config cfg;
	stk_loop *loop;
	stk_kube *kube;
	stk_curlm *curlm;
	stk_informer *inf[SRCCTL_MAX_NAMESPACES];
	size_t ninf;
	stk_workqueue *wq;
	stk_recorder *recorder;
	stk_metrics *metrics;
	stk_metrics_family *m_duration, *m_total, *m_leader;
	stk_http_server *health_srv, *metrics_srv;
	stk_health *health;
	srcctl_artserver *artsrv;
	stk_lease *lease;
	atomic_bool leading;
	atomic_bool lost;
};

/* ---- work queue ------------------------------------------------------------------- */

static int srcctl_reconcile_key(const char *key, void *arg, uint64_t *requeue_after_ms)
{
	struct srcctl *c = arg;
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
	rc = srcctl_reconcile(&c->cfg, ns, name, requeue_after_ms, &err);
	labels[0] = "GitSource";
	labels[1] = name;
	labels[2] = ns;
	stk_metrics_observe(c->m_duration, labels, (double)(stk_now_ms() - t0) / 1000.0);
	labels[3] = rc ? "error" : "success";
	stk_metrics_inc(c->m_total, labels);
	if (rc)
		stk_log_warn("reconcile failed", "object", key, "error", err.message, NULL);
	return rc;
}

/* ---- informer handlers (loop thread) -------------------------------------------------- */

static void srcctl_enqueue(struct srcctl *c, stk_obj *o)
{
	char key[600];

	snprintf(key, sizeof(key), "%s/%s", o->ns, o->name);
	stk_workqueue_add(c->wq, key);
}

static void on_add(stk_obj *o, void *arg)
{
	srcctl_enqueue(arg, o);
}

/* Our own status writes must not trigger reconciles: react to spec, metadata, deletion. */
static bool srcctl_relevant_change(stk_obj *old, stk_obj *cur)
{
	yajl_val a, b;
	stk_buf x = STK_BUF_INIT(1 << 20), y = STK_BUF_INIT(1 << 20);
	bool changed;

	if (old == cur)
		return true; /* periodic resync */
	if (old->generation != cur->generation)
		return true;
	a = stk_json_obj(old->root, "metadata", NULL);
	b = stk_json_obj(cur->root, "metadata", NULL);
	stk_json_write(&x, stk_json_get(a, "annotations", NULL));
	stk_json_write(&x, stk_json_get(a, "finalizers", NULL));
	stk_json_write(&x, stk_json_get(a, "deletionTimestamp", NULL));
	stk_json_write(&y, stk_json_get(b, "annotations", NULL));
	stk_json_write(&y, stk_json_get(b, "finalizers", NULL));
	stk_json_write(&y, stk_json_get(b, "deletionTimestamp", NULL));
	changed = x.len != y.len || memcmp(x.ptr, y.ptr, x.len);
	stk_buf_release(&x);
	stk_buf_release(&y);
	return changed;
}

static void on_update(stk_obj *old, stk_obj *cur, void *arg)
{
	if (srcctl_relevant_change(old, cur))
		srcctl_enqueue(arg, cur);
}

static void on_delete(stk_obj *o, void *arg)
{
	(void)o;
	(void)arg; /* the finalizer's reconcile already cleaned up */
}

/* ---- health ------------------------------------------------------------------------- */

static bool check_synced(void *arg, stk_buf *msg)
{
	struct srcctl *c = arg;

	for (size_t i = 0; i < c->ninf; i++) {
		if (!stk_informer_synced(c->inf[i])) {
			stk_buf_puts(msg, "GitSource cache not synced yet");
			return false;
		}
	}
	return true;
}

static bool check_lease(void *arg, stk_buf *msg)
{
	struct srcctl *c = arg;

	if (atomic_load(&c->lost)) {
		stk_buf_puts(msg, "lost leadership");
		return false;
	}
	return true;
}

/* ---- leadership ---------------------------------------------------------------------- */

static void start_workers(void *arg)
{
	struct srcctl *c = arg;
	stk_err err = STK_ERR_INIT;
	const char *labels[] = {"source-controller"};

	if (stk_workqueue_start(c->wq, &err))
		stk_log_error("cannot start workers", "error", err.message, NULL);
	stk_metrics_set(c->m_leader, labels, 1);
	stk_log_info("reconciling GitSources", NULL);
}

static void on_started(void *arg)
{
	struct srcctl *c = arg;

	atomic_store(&c->leading, true);
	stk_log_info("became leader", NULL);
	stk_loop_post(c->loop, start_workers, c);
}

static void on_stopped(void *arg)
{
	struct srcctl *c = arg;

	if (!atomic_load(&c->leading))
		return;
	atomic_store(&c->leading, false);
	if (!stk_loop_stopping(c->loop)) {
		/* Another replica may lead now: stop at once rather than race it. */
		stk_log_error("lost leadership; exiting", NULL);
		atomic_store(&c->lost, true);
		stk_loop_shutdown(c->loop);
	}
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void shutdown_controller(void *arg)
{
	struct srcctl *c = arg;

	stk_health_set_shutting_down(c->health);
	for (size_t i = 0; i < c->ninf; i++)
		stk_informer_stop(c->inf[i]);
	stk_workqueue_shutdown(c->wq, false);
	stk_loop_shutdown_done(c->loop);
}

static int setup(struct srcctl *c, stk_err *err)
{
	const struct stk_daemon_opts *d = c->o->daemon;
	struct stk_kubeconfig_opts ko = STK_KUBECONFIG_OPTS_INIT;
	struct stk_kubeconfig *kc = NULL;
	struct stk_kube_opts kopts = STK_KUBE_OPTS_INIT;
	struct stk_recorder_opts ro = STK_RECORDER_OPTS_INIT;
	struct stk_workqueue_opts wo = STK_WORKQUEUE_OPTS_INIT;
	stk_http_opts ho = STK_HTTP_OPTS_INIT;
	struct srcctl_artserver_opts ao = SRCCTL_ARTSERVER_OPTS_INIT;
	static const char *const obj_labels[] = {"kind", "name", "namespace", NULL};
	static const char *const res_labels[] = {"kind", "name", "namespace", "result", NULL};
	static const char *const daemon_label[] = {"daemon", NULL};
	static const char *const version_label[] = {"version", NULL};
	char host[128] = "source-controller", identity[256];
	int rc;

	ko.path = d->kubeconfig;
	rc = stk_kubeconfig_load(&kc, &ko, err);
	if (rc)
		return rc;
	kopts.user_agent = "source-controller/" STK_VERSION;
	rc = stk_kube_new_take(&c->kube, kc, &kopts, err);
	if (rc)
		return rc;
	rc = stk_loop_new(&c->loop, err);
	if (!rc)
		rc = stk_loop_handle_signals(c->loop, err);
	if (!rc)
		rc = stk_curlm_new(&c->curlm, c->loop, err);
	if (rc)
		return rc;

	c->metrics = stk_metrics_new();
	c->m_duration = stk_metrics_histogram(c->metrics, "stoker_reconcile_duration_seconds",
					      "Duration of reconciles.", obj_labels, NULL, 0);
	c->m_total = stk_metrics_counter(c->metrics, "stoker_reconcile_total",
					 "Reconciles by result.", res_labels);
	c->m_leader = stk_metrics_gauge(c->metrics, "stoker_leader", "1 while this replica leads.",
					daemon_label);
	stk_metrics_set(stk_metrics_gauge(c->metrics, "stoker_build_info", "Build information.",
					  version_label),
			(const char *const[]){STK_VERSION}, 1);

	gethostname(host, sizeof(host) - 1);
	ro.component = "source-controller";
	ro.instance = host;
	rc = stk_recorder_new(&c->recorder, c->kube, &ro, err);
	if (rc)
		return rc;

	c->cfg.kube = c->kube;
	c->cfg.recorder = c->recorder;
	c->cfg.storage_path = c->o->storage_path;
	c->cfg.base_url = c->o->artifact_base_url;
	c->cfg.keep_artifacts = 2;
	{
		static const char *const nn[] = {"name", "namespace", NULL};
		static const char *const cond[] = {"kind", "name",   "namespace",
						   "type", "status", NULL};
		c->cfg.fetch_duration = stk_metrics_histogram(
			c->metrics, "stoker_source_fetch_duration_seconds",
			"Duration of ls-remote plus fetch for a GitSource.", nn, NULL, 0);
		c->cfg.artifact_bytes =
			stk_metrics_gauge(c->metrics, "stoker_source_artifact_bytes",
					  "Size of the current artifact of a GitSource.", nn);
		c->cfg.condition =
			stk_metrics_gauge(c->metrics, "stoker_condition",
					  "1 for the current status of each condition.", cond);
	}

	wo.name = "gitsource";
	wo.workers = (unsigned)d->concurrent;
	wo.reconcile = srcctl_reconcile_key;
	wo.arg = c;
	rc = stk_workqueue_new(&c->wq, &wo, err);
	if (rc)
		return rc;

	/* One informer per watched namespace, or one for all. */
	for (size_t i = 0; i < (d->watch_namespaces.len ? d->watch_namespaces.len : 1); i++) {
		struct stk_informer_opts io = STK_INFORMER_OPTS_INIT;
		struct stk_informer_handler h = {on_add, on_update, on_delete, c};
		if (c->ninf == SRCCTL_MAX_NAMESPACES)
			return stk_err_set(err, STK_EINVAL, "at most %d watched namespaces",
					   SRCCTL_MAX_NAMESPACES);
		io.gvr = &SRCCTL_GVR_GITSOURCES;
		io.ns = d->watch_namespaces.len ? d->watch_namespaces.items[i] : NULL;
		io.resync_ms = 10 * 60 * 1000;
		rc = stk_informer_new(&c->inf[c->ninf], c->loop, c->curlm, c->kube, &io, err);
		if (rc)
			return rc;
		stk_informer_add_handler(c->inf[c->ninf], &h);
		c->ninf++;
	}

	c->health = stk_health_new();
	rc = stk_health_add(c->health, "informers", STK_HEALTH_READY, check_synced, c, err);
	if (!rc)
		rc = stk_health_add(c->health, "leadership", STK_HEALTH_LIVE, check_lease, c, err);
	ho.bind_address = d->health_addr;
	ho.name = "health";
	if (!rc)
		rc = stk_http_server_new(&c->health_srv, c->loop, &ho, err);
	if (!rc)
		rc = stk_health_serve(c->health, c->health_srv, err);
	ho.bind_address = d->metrics_addr;
	ho.name = "metrics";
	if (!rc)
		rc = stk_http_server_new(&c->metrics_srv, c->loop, &ho, err);
	if (!rc)
		rc = stk_http_serve_metrics(c->metrics_srv, c->metrics, err);
	if (!rc && srcctl_mkdir_p(c->o->storage_path))
		rc = stk_err_errno(err, errno, "cannot create --storage-path %s",
				   c->o->storage_path);
	ao.loop = c->loop;
	ao.kube = c->kube;
	ao.metrics = c->metrics;
	ao.bind_address = c->o->artifact_addr;
	ao.storage_path = c->o->storage_path;
	if (!rc)
		rc = srcctl_artserver_new(&c->artsrv, &ao, err);
	if (rc)
		return rc;

	/* Hooks run in reverse: the controller stops first, the HTTP servers last. */
	stk_loop_on_shutdown(c->loop, stk_http_server_shutdown_hook, c->health_srv);
	stk_loop_on_shutdown(c->loop, stk_http_server_shutdown_hook, c->metrics_srv);
	stk_loop_on_shutdown(c->loop, srcctl_artserver_shutdown_hook, c->artsrv);
	stk_loop_on_shutdown(c->loop, shutdown_controller, c);

	if (d->leader_elect) {
		struct stk_lease_opts lo = STK_LEASE_OPTS_INIT;
		snprintf(identity, sizeof(identity), "%s_%ld", host, (long)getpid());
		lo.ns = c->o->lease_namespace ? c->o->lease_namespace : stk_kube_namespace(c->kube);
		lo.name = "source-controller-leader-election";
		lo.identity = c->o->identity ? c->o->identity : identity;
		lo.lease_duration_ms = (uint64_t)d->lease_duration_ms;
		lo.renew_deadline_ms = (uint64_t)d->renew_deadline_ms;
		lo.retry_period_ms = (uint64_t)d->retry_period_ms;
		lo.on_started = on_started;
		lo.on_stopped = on_stopped;
		lo.arg = c;
		rc = stk_lease_new(&c->lease, c->kube, &lo, err);
		if (!rc)
			rc = stk_lease_start(c->lease, err);
	} else {
		atomic_store(&c->leading, true);
		start_workers(c);
	}
	return rc;
}

static void teardown(struct srcctl *c)
{
	stk_lease_free(c->lease);
	if (c->wq) {
		stk_workqueue_shutdown(c->wq, false);
		stk_workqueue_free(c->wq);
	}
	for (size_t i = 0; i < c->ninf; i++)
		stk_informer_free(c->inf[i]);
	srcctl_artserver_free(c->artsrv);
	stk_http_server_free(c->health_srv);
	stk_http_server_free(c->metrics_srv);
	stk_curlm_free(c->curlm);
	stk_loop_free(c->loop);
	stk_health_free(c->health);
	stk_recorder_free(c->recorder);
	stk_metrics_free(c->metrics);
	stk_kube_free(c->kube);
}

static void start_informers(void *arg)
{
	struct srcctl *c = arg;

	for (size_t i = 0; i < c->ninf; i++)
		stk_informer_start(c->inf[i]);
}

int srcctl_run(const struct srcctl_options *o)
{
	struct srcctl c;
	stk_err err = STK_ERR_INIT;
	int rc, code = STK_EXIT_OK;

	memset(&c, 0, sizeof(c));
	c.o = o;
	rc = setup(&c, &err);
	if (rc) {
		stk_log_error("cannot start", "error", err.message, NULL);
		code = STK_EXIT_FAILURE;
		goto out;
	}
	stk_loop_post(c.loop, start_informers, &c);
	stk_log_info("running", "artifacts", o->storage_path, "artifactBaseURL",
		     o->artifact_base_url, NULL);
	if (stk_loop_run(c.loop) != 0)
		stk_log_warn("shutdown grace period ran out", NULL);
	/* Release the lease (if held) before the loop's handles go away. */
	stk_lease_stop(c.lease);
	stk_workqueue_wait(c.wq, 30000, NULL);
	if (atomic_load(&c.lost))
		code = STK_EXIT_FAILURE;
out:
	teardown(&c);
	stk_log_info("stopped", NULL);
	return code;
}
