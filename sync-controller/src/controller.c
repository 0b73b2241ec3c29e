#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"
#include "stk/api/api.h"
#include "stk/api/kinds.h"
#include "stk/daemon.h"
#include "stk/json.h"
#include "stk/log.h"
#include "syncctl.h"

/* ---- event mapping (loop thread): which Stokers a change concerns ------------------- */

static void on_stoker_add(stk_obj *o, void *arg)
{
	struct syncctl *c = arg;

	stk_manager_enqueue(c->mgr, o->ns, o->name);
}

static void on_stoker_update(stk_obj *old, stk_obj *cur, void *arg)
{
	/* Our own status writes do not retrigger; spec, metadata and deletion do. */
	if (stk_obj_changed_beyond_status(old, cur))
		on_stoker_add(cur, arg);
}

static void on_stoker_delete(stk_obj *o, void *arg)
{
	on_stoker_add(o, arg); /* the reconcile finds it gone and drops its metrics */
}

struct ns_walk {
	struct syncctl *c;
	const char *source;  /* GitSource name, or NULL: every Stoker of the namespace */
	const char *request; /* mark_superseded: the requested ref superseded */
};

static int enqueue_stoker(stk_obj *o, void *arg)
{
	struct ns_walk *w = arg;
	const char *ref;

	if (w->source) {
		ref = stk_json_str(o->root, "spec", "sourceRef", "name", NULL);
		if (!ref || strcmp(ref, w->source))
			return 0;
	}
	stk_manager_enqueue(w->c->mgr, o->ns, o->name);
	return 0;
}

static void enqueue_owner(struct syncctl *c, stk_obj *o)
{
	yajl_val refs = stk_json_arr(o->root, "metadata", "ownerReferences", NULL);

	for (size_t i = 0; refs && i < refs->u.array.len; i++) {
		const char *kind = stk_json_str(refs->u.array.values[i], "kind", NULL);
		const char *name = stk_json_str(refs->u.array.values[i], "name", NULL);
		if (kind && name && !strcmp(kind, "Stoker"))
			stk_manager_enqueue(c->mgr, o->ns, name);
	}
}

static void on_source(stk_obj *o, void *arg)
{
	struct syncctl *c = arg;
	struct ns_walk w = {c, o->name, NULL};

	enqueue_owner(c, o);
	stk_cache_each(c->stokers, o->ns, NULL, enqueue_stoker, &w, NULL);
}

void syncctl_requests_init(struct syncctl *c)
{
	pthread_mutex_init(&c->superseded_mu, NULL);
}

void syncctl_requests_release(struct syncctl *c)
{
	stk_map_release_free(&c->dropped);
	stk_map_release_free(&c->superseded);
	pthread_mutex_destroy(&c->superseded_mu);
}

/* Stores a copy of `value` under "ns/name" in one of the maps of superseded_mu. */
static void note_put(struct syncctl *c, stk_map *m, const char *ns, const char *name,
		     const char *value)
{
	char key[512];
	char *copy = stk_strdup(value);

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	pthread_mutex_lock(&c->superseded_mu);
	free(stk_map_put(m, key, copy));
	pthread_mutex_unlock(&c->superseded_mu);
}

void syncctl_mark_superseded(struct syncctl *c, const char *ns, const char *name,
			     const char *request)
{
	note_put(c, &c->superseded, ns, name, request);
}

static int mark_superseded(stk_obj *o, void *arg)
{
	struct ns_walk *w = arg;
	const char *ref = stk_json_str(o->root, "spec", "sourceRef", "name", NULL);
	const char *req =
		stk_json_str(o->root, "metadata", "annotations", STK_ANN_REQUESTED_REF, NULL);

	if (ref && !strcmp(ref, w->source) && req && !strcmp(req, w->request))
		syncctl_mark_superseded(w->c, o->ns, o->name, req);
	return 0;
}

void syncctl_mark_source_superseded(struct syncctl *c, const char *ns, const char *source,
				    const char *request)
{
	struct ns_walk w = {c, source, request};

	stk_cache_each(c->stokers, ns, NULL, mark_superseded, &w, NULL);
}

bool syncctl_take_superseded(struct syncctl *c, const char *ns, const char *name,
			     const char *request)
{
	char key[512];
	char *marked;
	bool same;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	pthread_mutex_lock(&c->superseded_mu);
	marked = stk_map_del(&c->superseded, key);
	pthread_mutex_unlock(&c->superseded_mu);
	same = marked && request && !strcmp(marked, request);
	free(marked);
	return same;
}

void syncctl_note_dropped(struct syncctl *c, const char *ns, const char *name, const char *rv)
{
	note_put(c, &c->dropped, ns, name, rv ? rv : "");
}

bool syncctl_shows_dropped(struct syncctl *c, const char *ns, const char *name, const char *rv)
{
	char key[512];
	char *noted;
	bool same = false;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	pthread_mutex_lock(&c->superseded_mu);
	noted = stk_map_get(&c->dropped, key);
	if (noted) {
		same = rv && !strcmp(noted, rv);
		if (!same)
			free(stk_map_del(&c->dropped, key));
	}
	pthread_mutex_unlock(&c->superseded_mu);
	return same;
}

static void on_source_update(stk_obj *old, stk_obj *cur, void *arg)
{
	(void)old;
	on_source(cur, arg); /* status (the artifact) matters here */
}

static void on_profile(stk_obj *o, void *arg)
{
	struct syncctl *c = arg;
	struct ns_walk w = {c, NULL, NULL};

	stk_cache_each(c->stokers, o->ns, NULL, enqueue_stoker, &w, NULL);
}

/* Serialises the Accepted condition of a SyncProfile (nothing when absent). */
static void accepted_json(stk_obj *o, stk_buf *b)
{
	yajl_val a = stk_json_arr(o->root, "status", "conditions", NULL);

	for (size_t i = 0; a && i < a->u.array.len; i++) {
		const char *type = stk_json_str(a->u.array.values[i], "type", NULL);
		if (type && !strcmp(type, STK_COND_ACCEPTED))
			stk_json_write(b, a->u.array.values[i]);
	}
}

/* A SyncProfile matters for its spec and its Accepted condition, not its counts. */
static void on_profile_update(stk_obj *old, stk_obj *cur, void *arg)
{
	stk_buf x = STK_BUF_INIT(1 << 20), y = STK_BUF_INIT(1 << 20);
	bool changed = old == cur || old->generation != cur->generation;

	if (!changed) {
		accepted_json(old, &x);
		accepted_json(cur, &y);
		changed = x.len != y.len || memcmp(x.ptr, y.ptr, x.len);
	}
	stk_buf_release(&x);
	stk_buf_release(&y);
	if (changed)
		on_profile(cur, arg);
}

static void on_pod(stk_obj *o, void *arg)
{
	struct syncctl *c = arg;
	const char *cr = stk_api_pod_annotation(o->root, STK_ANN_CR_NAME);
	const char *inject = stk_api_pod_annotation(o->root, STK_ANN_INJECT);
	struct ns_walk w = {c, NULL, NULL};

	if (cr && *cr)
		stk_manager_enqueue(c->mgr, o->ns, cr);
	else if (inject && !strcmp(inject, "true"))
		stk_cache_each(c->stokers, o->ns, NULL, enqueue_stoker, &w, NULL);
}

static void on_pod_update(stk_obj *old, stk_obj *cur, void *arg)
{
	on_pod(old, arg); /* the pod may have moved to another Stoker */
	on_pod(cur, arg);
}

static void on_cm(stk_obj *o, void *arg)
{
	struct syncctl *c = arg;
	const char *cr = stk_json_str(o->root, "metadata", "labels", STK_LABEL_CR_NAME, NULL);

	if (cr && *cr)
		stk_manager_enqueue(c->mgr, o->ns, cr);
}

static void on_cm_update(stk_obj *old, stk_obj *cur, void *arg)
{
	(void)old;
	on_cm(cur, arg);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int setup(struct syncctl *c, stk_err *err)
{
	struct stk_manager_opts mo = {"sync-controller", "Stoker",	    c->o->daemon,
				      c->o->identity,	 syncctl_reconcile, c};
	struct stk_informer_opts io = STK_INFORMER_OPTS_INIT;
	static const char *const gw[] = {"name", "namespace", "state", NULL};
	static const char *const gws[] = {"name", "namespace", "gateway", "status", NULL};
	stk_metrics *metrics;
	int rc;

	rc = stk_manager_new(&c->mgr, &mo, err);
	if (rc)
		return rc;
	c->kube = stk_manager_kube(c->mgr);
	c->recorder = stk_manager_recorder(c->mgr);
	metrics = stk_manager_metrics(c->mgr);
	c->m_gateways = stk_metrics_gauge(metrics, "stoker_gateways",
					  "Gateways of a Stoker by state (discovered, synced, "
					  "missing_sidecar, error, blocked).",
					  gw);
	c->m_gateway_state =
		stk_metrics_gauge(metrics, "stoker_gateway_status",
				  "1 for the current sync status of each discovered gateway.", gws);

	io.gvr = &STK_GVR_STOKERS;
	io.resync_ms = 10 * 60 * 1000;
	io.transform = syncctl_stoker_slim;
	rc = stk_manager_cache(c->mgr, &io,
			       &(struct stk_informer_handler){on_stoker_add, on_stoker_update,
							      on_stoker_delete, c},
			       &c->stokers, err);
	io.resync_ms = 0;
	io.transform = NULL;
	io.gvr = &STK_GVR_GITSOURCES;
	if (!rc)
		rc = stk_manager_cache(
			c->mgr, &io,
			&(struct stk_informer_handler){on_source, on_source_update, on_source, c},
			&c->sources, err);
	io.gvr = &STK_GVR_SYNCPROFILES;
	if (!rc)
		rc = stk_manager_cache(c->mgr, &io,
				       &(struct stk_informer_handler){on_profile, on_profile_update,
								      on_profile, c},
				       &c->profiles, err);
	/* Pods cannot be selected by annotation: cache all, slimmed to what we read. */
	io.gvr = &STK_GVR_PODS;
	io.transform = stk_api_pod_slim;
	if (!rc)
		rc = stk_manager_cache(
			c->mgr, &io,
			&(struct stk_informer_handler){on_pod, on_pod_update, on_pod, c}, &c->pods,
			err);
	io.transform = NULL;
	io.gvr = &STK_GVR_CONFIGMAPS;
	io.label_selector = STK_LABEL_CR_NAME;
	if (!rc)
		rc = stk_manager_cache(
			c->mgr, &io, &(struct stk_informer_handler){on_cm, on_cm_update, on_cm, c},
			&c->cms, err);
	return rc;
}

int syncctl_run(const struct syncctl_options *o)
{
	struct syncctl c;
	stk_err err = STK_ERR_INIT;
	int code;

	memset(&c, 0, sizeof(c));
	c.o = o;
	syncctl_requests_init(&c);
	if (setup(&c, &err)) {
		stk_log_error("cannot start", "error", err.message, NULL);
		code = STK_EXIT_FAILURE;
	} else {
		code = stk_manager_run(c.mgr);
	}
	stk_manager_free(c.mgr);
	syncctl_requests_release(&c);
	stk_log_info("stopped", NULL);
	return code;
}
