#include "controller.h"

#include <errno.h>
#include <string.h>

#include "artserver.h"
#include "reconcile.h"
#include "stk/api/api.h"
#include "stk/daemon.h"
#include "stk/git.h"
#include "stk/log.h"
#include "stk/manager.h"

struct srcctl {
	const struct srcctl_options *o;
	struct srcctl_config cfg;
	stk_manager *mgr;
	srcctl_artserver *artsrv;
};

static int srcctl_reconcile_obj(void *arg, const char *ns, const char *name,
				uint64_t *requeue_after_ms, stk_err *err)
{
	struct srcctl *c = arg;

	return srcctl_reconcile(&c->cfg, ns, name, requeue_after_ms, err);
}

/* ---- informer handlers (loop thread) -------------------------------------------------- */

static void on_add(stk_obj *o, void *arg)
{
	struct srcctl *c = arg;

	stk_manager_enqueue(c->mgr, o->ns, o->name);
}

/* Our own status writes must not trigger reconciles: react to spec, metadata, deletion. */
static void on_update(stk_obj *old, stk_obj *cur, void *arg)
{
	if (stk_obj_changed_beyond_status(old, cur))
		on_add(cur, arg);
}

static void on_delete(stk_obj *o, void *arg)
{
	struct srcctl *c = arg;
	stk_metrics_family *extra[] = {c->cfg.fetch_duration, c->cfg.artifact_bytes, NULL};

	/* The finalizer's reconcile already cleaned up storage; drop the object's series. */
	stk_manager_forget(c->mgr, o->ns, o->name, extra);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int setup(struct srcctl *c, stk_err *err)
{
	struct stk_manager_opts mo = {"source-controller", "GitSource",		 c->o->daemon,
				      c->o->identity,	   srcctl_reconcile_obj, c};
	struct stk_informer_opts io = STK_INFORMER_OPTS_INIT;
	struct stk_informer_handler h = {on_add, on_update, on_delete, c};
	struct srcctl_artserver_opts ao = SRCCTL_ARTSERVER_OPTS_INIT;
	static const char *const nn[] = {"name", "namespace", NULL};
	stk_metrics *metrics;
	int rc;

	rc = stk_manager_new(&c->mgr, &mo, err);
	if (rc)
		return rc;
	metrics = stk_manager_metrics(c->mgr);
	c->cfg.kube = stk_manager_kube(c->mgr);
	c->cfg.recorder = stk_manager_recorder(c->mgr);
	c->cfg.mgr = c->mgr;
	c->cfg.storage_path = c->o->storage_path;
	c->cfg.base_url = c->o->artifact_base_url;
	c->cfg.keep_artifacts = 2;
	c->cfg.fetch_duration = stk_metrics_histogram(
		metrics, "stoker_source_fetch_duration_seconds",
		"Duration of ls-remote plus fetch for a GitSource.", nn, NULL, 0);
	c->cfg.artifact_bytes =
		stk_metrics_gauge(metrics, "stoker_source_artifact_bytes",
				  "Size of the current artifact of a GitSource.", nn);

	io.gvr = &STK_GVR_GITSOURCES;
	io.resync_ms = 10 * 60 * 1000;
	rc = stk_manager_cache(c->mgr, &io, &h, NULL, err);
	if (rc)
		return rc;
	if (srcctl_mkdir_p(c->o->storage_path))
		return stk_err_errno(err, errno, "cannot create --storage-path %s",
				     c->o->storage_path);
	ao.loop = stk_manager_loop(c->mgr);
	ao.kube = c->cfg.kube;
	ao.metrics = metrics;
	ao.bind_address = c->o->artifact_addr;
	ao.storage_path = c->o->storage_path;
	rc = srcctl_artserver_new(&c->artsrv, &ao, err);
	if (rc)
		return rc;
	/* The artifact server stops after the controller, before health and metrics. */
	stk_loop_on_shutdown(ao.loop, srcctl_artserver_shutdown_hook, c->artsrv);
	return 0;
}

int srcctl_run(const struct srcctl_options *o)
{
	struct srcctl c;
	stk_err err = STK_ERR_INIT;
	int code;

	memset(&c, 0, sizeof(c));
	c.o = o;
	stk_git_init(); /* before any thread: it may set HOME */
	if (setup(&c, &err)) {
		stk_log_error("cannot start", "error", err.message, NULL);
		code = STK_EXIT_FAILURE;
	} else {
		stk_log_info("serving artifacts", "storage", o->storage_path, "artifactBaseURL",
			     o->artifact_base_url, NULL);
		code = stk_manager_run(c.mgr);
	}
	srcctl_artserver_free(c.artsrv);
	stk_manager_free(c.mgr);
	stk_log_info("stopped", NULL);
	return code;
}
