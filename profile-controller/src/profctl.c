#include "profctl.h"

#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"
#include "stk/api/api.h"
#include "stk/daemon.h"
#include "stk/json.h"
#include "stk/log.h"
#include "stk/manager.h"
#include "validate.h"

#define PROFCTL_MAX_DIFF_FILES 100

struct profctl {
	const struct profctl_options *o;
	stk_manager *mgr;
	stk_kube *kube;
	stk_recorder *recorder;
	stk_cache *profiles, *pods, *stokers, *cms;
};

/* ---- lookups of other profiles (decoded on demand, kept for one reconcile) ----------- */

struct lookup {
	struct profctl *c;
	const char *ns;
	struct stk_syncprofile *items;
	char **names;
	bool *found;
	size_t len, cap;
};

static const struct stk_syncprofile_spec *lookup_profile(const char *name, void *arg)
{
	struct lookup *l = arg;
	stk_obj *o;
	size_t i;

	for (i = 0; i < l->len; i++)
		if (!strcmp(l->names[i], name))
			return l->found[i] ? &l->items[i].spec : NULL;
	if (l->len == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->items = stk_reallocarray(l->items, l->cap, sizeof(*l->items));
		l->names = stk_reallocarray(l->names, l->cap, sizeof(*l->names));
		l->found = stk_reallocarray(l->found, l->cap, sizeof(*l->found));
	}
	i = l->len++;
	memset(&l->items[i], 0, sizeof(l->items[i]));
	l->names[i] = stk_strdup(name);
	l->found[i] = false;
	o = stk_cache_get(l->c->profiles, l->ns, name);
	if (o && !stk_json_get(o->root, "metadata", "deletionTimestamp", NULL) &&
	    stk_api_decode(&stk_api_syncprofile_type, &l->items[i], o->root, "", NULL) == 0)
		l->found[i] = true;
	stk_obj_unref(o);
	return l->found[i] ? &l->items[i].spec : NULL;
}

static void lookup_release(struct lookup *l)
{
	for (size_t i = 0; i < l->len; i++) {
		stk_api_release(&stk_api_syncprofile_type, &l->items[i]);
		free(l->names[i]);
	}
	free(l->items);
	free(l->names);
	free(l->found);
}

/* ---- gateways of a profile ------------------------------------------------------------ */

struct gw {
	char *pod, *name, *cr;
};

struct gw_walk {
	const char *profile;
	struct gw *items;
	size_t len, cap;
};

static int collect_gw(stk_obj *o, void *arg)
{
	struct gw_walk *w = arg;
	const char *p = stk_api_pod_annotation(o->root, STK_ANN_SYNC_PROFILE);
	const char *cr = stk_api_pod_annotation(o->root, STK_ANN_CR_NAME);

	if (!p || strcmp(p, w->profile) || !stk_api_pod_alive(o->root))
		return 0;
	if (w->len == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 8;
		w->items = stk_reallocarray(w->items, w->cap, sizeof(*w->items));
	}
	w->items[w->len].pod = stk_strdup(o->name);
	w->items[w->len].name = stk_strdup(stk_api_gateway_name(o->root));
	w->items[w->len].cr = cr && *cr ? stk_strdup(cr) : NULL;
	w->len++;
	return 0;
}

static int gw_cmp(const void *a, const void *b)
{
	const struct gw *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->pod, y->pod);
}

static void gateways_of(struct profctl *c, const char *ns, const char *profile, struct gw_walk *w)
{
	memset(w, 0, sizeof(*w));
	w->profile = profile;
	stk_cache_each(c->pods, ns, NULL, collect_gw, w, NULL);
	if (w->len > 1)
		qsort(w->items, w->len, sizeof(*w->items), gw_cmp);
}

static void gw_release(struct gw_walk *w)
{
	for (size_t i = 0; i < w->len; i++) {
		free(w->items[i].pod);
		free(w->items[i].name);
		free(w->items[i].cr);
	}
	free(w->items);
}

/*
 * The report of gateway `g` in its Stoker's status ConfigMap, decoded into `rep`, and the
 * Stoker's target commit in *commit (a new string, "" when unknown). False if none.
 */
static bool gateway_report(struct profctl *c, const char *ns, const struct gw *g,
			   struct stk_gateway_report *rep, char **commit)
{
	char name[300];
	stk_obj *cm, *stk;
	const char *text, *target = NULL;
	bool ok = false;

	*commit = stk_strdup("");
	if (!g->cr)
		return false;
	stk = stk_cache_get(c->stokers, ns, g->cr);
	if (stk)
		target = stk_json_str(stk->root, "status", "lastSyncCommit", NULL);
	if (target) {
		free(*commit);
		*commit = stk_strdup(target);
	}
	stk_obj_unref(stk);
	snprintf(name, sizeof(name), "%s%s", STK_CM_STATUS_PREFIX, g->cr);
	cm = stk_cache_get(c->cms, ns, name);
	text = cm ? stk_json_str(cm->root, "data", g->name, NULL) : NULL;
	if (text && stk_api_decode_payload(&stk_api_gateway_report_type, rep, text, strlen(text),
					   NULL) == 0)
		ok = true;
	stk_obj_unref(cm);
	return ok;
}

/* ---- reconcile -------------------------------------------------------------------------- */

struct rec {
	struct profctl *c;
	const char *ns, *name;
	stk_obj *obj;
	struct stk_syncprofile sp;
	struct stk_conditions conds, old_conds;
	char *orig_status;
	int64_t generation;
};

static void set_cond(struct rec *r, const char *type, enum stk_condition_status st,
		     const char *reason, const char *msg)
{
	stk_conditions_set(&r->conds, type, st, reason, msg, r->generation, NULL, NULL);
}

static void dependencies(struct rec *r, struct lookup *l)
{
	const struct stk_dependency *d = r->sp.spec.depends_on.items;
	stk_buf msg = STK_BUF_INIT(1 << 15);
	size_t pending = 0, total = 0;

	if (!r->sp.spec.depends_on.len) {
		set_cond(r, STK_COND_DEPENDENCIES_MET, STK_CONDITION_TRUE,
			 STK_REASON_NO_DEPENDENCIES, "no dependsOn");
		stk_buf_release(&msg);
		return;
	}
	for (size_t i = 0; i < r->sp.spec.depends_on.len; i++) {
		if (d[i].profile_name && !lookup_profile(d[i].profile_name, l)) {
			stk_buf_printf(&msg, "SyncProfile '%s' not found", d[i].profile_name);
			set_cond(r, STK_COND_DEPENDENCIES_MET, STK_CONDITION_FALSE,
				 STK_REASON_DEPENDENCY_NOT_FOUND, msg.ptr);
			stk_buf_release(&msg);
			return;
		}
	}
	for (size_t i = 0; i < r->sp.spec.depends_on.len; i++) {
		struct gw_walk w;
		if (!d[i].profile_name)
			continue;
		gateways_of(r->c, r->ns, d[i].profile_name, &w);
		for (size_t j = 0; j < w.len; j++) {
			struct stk_gateway_report rep;
			char *commit = NULL;
			bool synced;
			memset(&rep, 0, sizeof(rep));
			synced = gateway_report(r->c, r->ns, &w.items[j], &rep, &commit) &&
				 stk_api_report_synced_at(&rep, commit);
			total++;
			if (!synced) {
				if (pending < 10)
					stk_buf_printf(&msg, "%s%s/%s (%s)", pending ? ", " : "",
						       d[i].profile_name, w.items[j].name,
						       rep.sync_status ? rep.sync_status
								       : "no report");
				pending++;
			}
			stk_api_release(&stk_api_gateway_report_type, &rep);
			free(commit);
		}
		gw_release(&w);
	}
	if (pending) {
		stk_buf b = STK_BUF_INIT(1 << 15);
		stk_buf_printf(&b, "%zu of %zu dependency gateways not synced: ", pending, total);
		stk_buf_put(&b, msg.ptr, msg.len);
		if (pending > 10)
			stk_buf_printf(&b, ", and %zu more", pending - 10);
		set_cond(r, STK_COND_DEPENDENCIES_MET, STK_CONDITION_FALSE,
			 STK_REASON_DEPENDENCIES_PENDING, b.ptr);
		stk_buf_release(&b);
	} else {
		stk_buf_reset(&msg);
		stk_buf_printf(&msg, "all %zu dependency gateways synced at their target commit",
			       total);
		set_cond(r, STK_COND_DEPENDENCIES_MET, STK_CONDITION_TRUE,
			 STK_REASON_DEPENDENCIES_SYNCED, msg.ptr);
	}
	stk_buf_release(&msg);
}

static void add_files(struct stk_api_strings *files, const struct stk_api_strings *src)
{
	for (size_t i = 0; i < src->len && files->len < PROFCTL_MAX_DIFF_FILES; i++) {
		files->items[files->len++] = stk_strdup(src->items[i]);
	}
}

/* gatewayCount, gateways and dryRunDiff from this profile's pods and their reports. */
static void gateways_and_diff(struct rec *r)
{
	struct stk_syncprofile_status *st = &r->sp.status;
	struct stk_dry_run_diff *diff = &st->dry_run_diff;
	struct gw_walk w;
	size_t n = 0;

	gateways_of(r->c, r->ns, r->name, &w);
	stk_api_release(&stk_api_syncprofile_status_type, st);
	memset(st, 0, sizeof(*st));
	st->gateway_count.set = true;
	st->gateway_count.v = (int64_t)w.len;
	st->gateways.present = true;
	st->gateways.items = stk_calloc(w.len + 1, sizeof(char *));
	for (size_t i = 0; i < w.len; i++)
		if (!n || strcmp(st->gateways.items[n - 1], w.items[i].name))
			st->gateways.items[n++] = stk_strdup(w.items[i].name);
	st->gateways.len = n;
	for (size_t i = 0; i < w.len; i++) {
		struct stk_gateway_report rep;
		char *commit = NULL;
		memset(&rep, 0, sizeof(rep));
		if (gateway_report(r->c, r->ns, &w.items[i], &rep, &commit) && rep.dry_run.v &&
		    rep.dry_run_diff.present) {
			const struct stk_diff_paths *p = &rep.dry_run_diff;
			if (!diff->present) {
				diff->present = true;
				diff->added.set = diff->modified.set = diff->deleted.set = true;
				diff->files.present = true;
				diff->files.items =
					stk_calloc(PROFCTL_MAX_DIFF_FILES + 1, sizeof(char *));
			}
			diff->added.v +=
				p->added_count.set ? p->added_count.v : (int64_t)p->added.len;
			diff->modified.v += p->modified_count.set ? p->modified_count.v
								  : (int64_t)p->modified.len;
			diff->deleted.v +=
				p->deleted_count.set ? p->deleted_count.v : (int64_t)p->deleted.len;
			add_files(&diff->files, &p->added);
			add_files(&diff->files, &p->modified);
			add_files(&diff->files, &p->deleted);
		}
		stk_api_release(&stk_api_gateway_report_type, &rep);
		free(commit);
	}
	gw_release(&w);
}

static int patch_status(struct rec *r, stk_err *err)
{
	struct stk_syncprofile_status *st = &r->sp.status;
	struct stk_patch_opts po = STK_PATCH_OPTS_INIT;
	const char *token = stk_json_str(r->obj->root, "metadata", "annotations",
					 STK_ANN_RECONCILE_REQUEST, NULL);
	stk_buf b = STK_BUF_INIT(1 << 22);
	int rc;

	stk_manager_publish_conditions(r->c->mgr, r->ns, r->name, &r->conds);
	st->present = true;
	st->observed_generation.set = true;
	st->observed_generation.v = r->generation;
	if (token)
		st->last_handled_reconcile_at = stk_strdup(token);
	stk_conditions_release(&st->conditions.set);
	stk_conditions_copy(&st->conditions.set, &r->conds);
	st->conditions.present = true;
	stk_buf_puts(&b, "{\"status\":");
	stk_api_encode(&stk_api_syncprofile_status_type, st, &b);
	stk_buf_putc(&b, '}');
	if (r->orig_status && !strcmp(r->orig_status, b.ptr)) {
		stk_buf_release(&b);
		return 0;
	}
	if (!st->dry_run_diff.present) {
		/* A merge patch keeps absent members: remove a diff no longer reported. */
		stk_buf enc = STK_BUF_INIT(1 << 22);
		stk_api_encode(&stk_api_syncprofile_status_type, st, &enc); /* "{...}", not empty */
		stk_buf_reset(&b);
		stk_buf_puts(&b, "{\"status\":{\"dryRunDiff\":null,");
		stk_buf_put(&b, enc.ptr + 1, enc.len - 1);
		stk_buf_putc(&b, '}');
		stk_buf_release(&enc);
	}
	po.subresource = "status";
	rc = stk_kube_patch(r->c->kube, &STK_GVR_SYNCPROFILES, r->ns, r->name, STK_PATCH_MERGE,
			    b.ptr, b.len, &po, NULL, err);
	stk_buf_release(&b);
	return rc == STK_ENOTFOUND ? 0 : rc;
}

static int profctl_reconcile(void *arg, const char *ns, const char *name,
			     uint64_t *requeue_after_ms, stk_err *err)
{
	struct profctl *c = arg;
	struct rec r;
	struct lookup l;
	stk_buf msg = STK_BUF_INIT(1 << 15);
	stk_err e = STK_ERR_INIT;
	const char *reason;
	int rc = 0;

	(void)requeue_after_ms;
	memset(&r, 0, sizeof(r));
	memset(&l, 0, sizeof(l));
	r.c = c;
	r.ns = ns;
	r.name = name;
	l.c = c;
	l.ns = ns;
	r.obj = stk_cache_get(c->profiles, ns, name);
	if (!r.obj) {
		stk_manager_forget(c->mgr, ns, name, NULL);
		goto out;
	}
	r.generation = r.obj->generation;
	if (stk_api_decode(&stk_api_syncprofile_type, &r.sp, r.obj->root, "", &e)) {
		reason = STK_REASON_VALIDATION_FAILED;
		stk_buf_puts(&msg, e.message);
	} else {
		reason = NULL;
	}
	if (r.sp.status.conditions.present) {
		stk_conditions_copy(&r.conds, &r.sp.status.conditions.set);
		stk_conditions_copy(&r.old_conds, &r.sp.status.conditions.set);
	}
	{
		stk_buf b = STK_BUF_INIT(1 << 22);
		stk_buf_puts(&b, "{\"status\":");
		stk_api_encode(&stk_api_syncprofile_status_type, &r.sp.status, &b);
		stk_buf_putc(&b, '}');
		r.orig_status = stk_buf_detach(&b, NULL);
	}
	if (stk_json_get(r.obj->root, "metadata", "deletionTimestamp", NULL))
		goto out;
	if (!stk_conditions_get(&r.conds, STK_COND_READY))
		set_cond(&r, STK_COND_READY, STK_CONDITION_UNKNOWN, STK_REASON_PROGRESSING,
			 "reconciliation in progress");
	stk_api_default(&stk_api_syncprofile_spec_type, &r.sp.spec);
	if (!reason)
		reason = profctl_validate(name, &r.sp, lookup_profile, &l, &msg);
	if (reason) {
		const struct stk_condition *old =
			stk_conditions_get(&r.old_conds, STK_COND_ACCEPTED);
		set_cond(&r, STK_COND_ACCEPTED, STK_CONDITION_FALSE, reason, msg.ptr);
		if (!old || old->status != STK_CONDITION_FALSE || strcmp(old->message, msg.ptr)) {
			struct stk_event_ref ref = {"stoker.io/v1alpha1", "SyncProfile", ns, name,
						    r.obj->uid,		  r.obj->rv};
			stk_recorder_event(c->recorder, &ref, STK_EVENT_WARNING,
					   STK_EVENT_VALIDATION_FAILED, NULL, "%s", msg.ptr);
		}
	} else {
		set_cond(&r, STK_COND_ACCEPTED, STK_CONDITION_TRUE, STK_REASON_VALIDATION_PASSED,
			 "spec is valid");
	}
	gateways_and_diff(&r);
	if (reason)
		stk_conditions_remove(&r.conds, STK_COND_DEPENDENCIES_MET);
	else
		dependencies(&r, &l);
	{
		static const char *const positive[] = {STK_COND_ACCEPTED, STK_COND_DEPENDENCIES_MET,
						       NULL};
		struct stk_conditions_summary_opts so = STK_CONDITIONS_SUMMARY_OPTS_INIT;
		char ready_msg[96];
		snprintf(ready_msg, sizeof(ready_msg), "accepted; %lld gateway%s",
			 (long long)r.sp.status.gateway_count.v,
			 r.sp.status.gateway_count.v == 1 ? "" : "s");
		so.positive = reason ? (const char *const[]){STK_COND_ACCEPTED, NULL} : positive;
		so.success_message = ready_msg;
		stk_conditions_mark_idle(&r.conds);
		stk_conditions_summarize_ready(&r.conds, &so, r.generation, NULL, NULL);
	}
	rc = patch_status(&r, err);
out:
	stk_buf_release(&msg);
	lookup_release(&l);
	stk_api_release(&stk_api_syncprofile_type, &r.sp);
	stk_conditions_release(&r.conds);
	stk_conditions_release(&r.old_conds);
	free(r.orig_status);
	stk_obj_unref(r.obj);
	return rc;
}

/* ---- event mapping (loop thread) ---------------------------------------------------- */

static int enqueue_profile(stk_obj *o, void *arg)
{
	struct profctl *c = arg;

	stk_manager_enqueue(c->mgr, o->ns, o->name);
	return 0;
}

/* Every profile of the namespace: dependsOn targets, cycles and dependency state. */
static void enqueue_namespace(struct profctl *c, const char *ns)
{
	stk_cache_each(c->profiles, ns, NULL, enqueue_profile, c, NULL);
}

static void on_profile(stk_obj *o, void *arg)
{
	enqueue_namespace(arg, o->ns);
}

static void on_profile_update(stk_obj *old, stk_obj *cur, void *arg)
{
	if (old == cur || old->generation != cur->generation)
		enqueue_namespace(arg, cur->ns);
	else if (stk_obj_changed_beyond_status(old, cur))
		stk_manager_enqueue(((struct profctl *)arg)->mgr, cur->ns, cur->name);
}

static void on_pod(stk_obj *o, void *arg)
{
	struct profctl *c = arg;
	const char *p = stk_api_pod_annotation(o->root, STK_ANN_SYNC_PROFILE);

	if (!p || !*p)
		return;
	/* Its own count, and the DependenciesMet of profiles depending on it. */
	enqueue_namespace(c, o->ns);
}

static void on_pod_update(stk_obj *old, stk_obj *cur, void *arg)
{
	const char *a = stk_api_pod_annotation(old->root, STK_ANN_SYNC_PROFILE);
	const char *b = stk_api_pod_annotation(cur->root, STK_ANN_SYNC_PROFILE);

	on_pod(old, arg);
	if (!a || !b || strcmp(a, b))
		on_pod(cur, arg);
}

static void on_ns_change(stk_obj *o, void *arg)
{
	enqueue_namespace(arg, o->ns);
}

static void on_ns_update(stk_obj *old, stk_obj *cur, void *arg)
{
	(void)old;
	enqueue_namespace(arg, cur->ns);
}

static int setup(struct profctl *c, stk_err *err)
{
	struct stk_manager_opts mo = {"profile-controller", "SyncProfile",     c->o->daemon,
				      c->o->identity,	    profctl_reconcile, c};
	struct stk_informer_opts io = STK_INFORMER_OPTS_INIT;
	int rc;

	rc = stk_manager_new(&c->mgr, &mo, err);
	if (rc)
		return rc;
	c->kube = stk_manager_kube(c->mgr);
	c->recorder = stk_manager_recorder(c->mgr);
	io.gvr = &STK_GVR_SYNCPROFILES;
	io.resync_ms = 10 * 60 * 1000;
	rc = stk_manager_cache(
		c->mgr, &io,
		&(struct stk_informer_handler){on_profile, on_profile_update, on_profile, c},
		&c->profiles, err);
	io.resync_ms = 0;
	io.gvr = &STK_GVR_PODS;
	io.transform = stk_api_pod_slim;
	if (!rc)
		rc = stk_manager_cache(
			c->mgr, &io,
			&(struct stk_informer_handler){on_pod, on_pod_update, on_pod, c}, &c->pods,
			err);
	io.transform = NULL;
	io.gvr = &STK_GVR_STOKERS;
	if (!rc)
		rc = stk_manager_cache(
			c->mgr, &io,
			&(struct stk_informer_handler){on_ns_change, on_ns_update, on_ns_change, c},
			&c->stokers, err);
	io.gvr = &STK_GVR_CONFIGMAPS;
	io.label_selector = STK_LABEL_CR_NAME;
	if (!rc)
		rc = stk_manager_cache(
			c->mgr, &io,
			&(struct stk_informer_handler){on_ns_change, on_ns_update, on_ns_change, c},
			&c->cms, err);
	return rc;
}

int profctl_run(const struct profctl_options *o)
{
	struct profctl c;
	stk_err err = STK_ERR_INIT;
	int code;

	memset(&c, 0, sizeof(c));
	c.o = o;
	if (setup(&c, &err)) {
		stk_log_error("cannot start", "error", err.message, NULL);
		code = STK_EXIT_FAILURE;
	} else {
		code = stk_manager_run(c.mgr);
	}
	stk_manager_free(c.mgr);
	stk_log_info("stopped", NULL);
	return code;
}
