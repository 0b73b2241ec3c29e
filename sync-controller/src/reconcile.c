#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "fleet.h"
#include "stk/alloc.h"
#include "stk/api/api.h"
#include "stk/json.h"
#include "stk/log.h"
#include "stk/objects.h"
#include "stk/parse.h"
#include "syncctl.h"

#define SYNCCTL_MANAGER		"sync-controller"
#define SYNCCTL_SECRET_RETRY_MS 5000
#define SYNCCTL_DEFAULT_POLL_MS 60000
#define SYNCCTL_SOURCE_SUFFIX	"-git"
#define SYNCCTL_MAX_NAME	253

/* Everything one reconcile holds; released at the end. */
struct rec {
	struct syncctl *c;
	const char *ns, *name;
	stk_obj *obj;
	struct stk_stoker stk;
	struct stk_conditions conds, old_conds;
	int64_t generation;
	char *orig_status;
	char source_name[SYNCCTL_MAX_NAME + 8];
	stk_obj *source; /* cached GitSource, or NULL */
	struct stk_gitsource gs;
	bool gs_decoded;
	stk_buf secret_msg; /* "Secret 'x' not found ..." when a Secret is missing */
	struct syncctl_fleet fleet;
	bool paused;
	const char *commit; /* target: the source's artifact commit, or "" */
};

static void rec_release(struct rec *r)
{
	stk_api_release(&stk_api_stoker_type, &r->stk);
	if (r->gs_decoded)
		stk_api_release(&stk_api_gitsource_type, &r->gs);
	stk_conditions_release(&r->conds);
	stk_conditions_release(&r->old_conds);
	free(r->orig_status);
	stk_buf_release(&r->secret_msg);
	syncctl_fleet_release(&r->fleet);
	stk_obj_unref(r->source);
	stk_obj_unref(r->obj);
}

static void set_cond(struct rec *r, const char *type, enum stk_condition_status st,
		     const char *reason, const char *msg)
{
	stk_err e = STK_ERR_INIT;

	if (stk_conditions_set(&r->conds, type, st, reason, msg, r->generation, NULL, &e))
		stk_log_error("cannot set condition", "type", type, "error", e.message, NULL);
}

static bool str_eq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static void event(struct rec *r, enum stk_event_type type, const char *reason, const char *msg)
{
	struct stk_event_ref ref = {"stoker.io/v1alpha1", "Stoker",  r->ns, r->name,
				    r->obj->uid,	  r->obj->rv};
	stk_err e = STK_ERR_INIT;

	if (stk_recorder_event(r->c->recorder, &ref, type, reason, &e, "%s", msg))
		stk_log_warn("cannot record event", "object", r->name, "reason", reason, "error",
			     e.message, NULL);
}

/* Appends the ownerReferences member naming the Stoker as controller. */
static void put_owner(stk_buf *b, const struct rec *r)
{
	stk_buf_puts(b, "\"ownerReferences\":[{\"apiVersion\":\"stoker.io/v1alpha1\","
			"\"kind\":\"Stoker\",\"name\":");
	stk_buf_put_json_string(b, r->name, strlen(r->name));
	stk_buf_puts(b, ",\"uid\":");
	stk_buf_put_json_string(b, r->obj->uid, strlen(r->obj->uid));
	stk_buf_puts(b, ",\"controller\":true}]");
}

static void put_labels(stk_buf *b, const struct rec *r)
{
	stk_buf_puts(b, "\"labels\":{\"" STK_LABEL_CR_NAME "\":");
	stk_buf_put_json_string(b, r->name, strlen(r->name));
	stk_buf_puts(b, ",\"" STK_LABEL_MANAGED_BY "\":\"" SYNCCTL_MANAGER "\"}");
}

static void put_str(stk_buf *b, const char *s)
{
	s = s ? s : "";
	stk_buf_put_json_string(b, s, strlen(s));
}

static bool owned_by(yajl_val obj, const char *uid)
{
	yajl_val refs = stk_json_arr(obj, "metadata", "ownerReferences", NULL);

	for (size_t i = 0; refs && i < refs->u.array.len; i++) {
		bool ctl = false;
		stk_json_bool(refs->u.array.values[i], &ctl, "controller", NULL);
		if (ctl && str_eq(stk_json_str(refs->u.array.values[i], "uid", NULL), uid))
			return true;
	}
	return false;
}

/* ---- Secrets ------------------------------------------------------------------------- */

/* Notes a missing or unreadable Secret key in r->secret_msg. */
static int check_secret(struct rec *r, const char *name, const char *key, const char *what,
			stk_err *err)
{
	stk_err e = STK_ERR_INIT;
	char *v = NULL;
	int rc;

	if (!name || !*name)
		return 0;
	rc = stk_kube_secret_value(r->c->kube, r->ns, name, key ? key : "", &v, &e);
	if (v) {
		OPENSSL_cleanse(v, strlen(v));
		free(v);
	}
	if (rc == STK_ENOTFOUND || rc == STK_EPARSE) {
		stk_buf_printf(&r->secret_msg, "%s%s: %s", r->secret_msg.len ? "; " : "", what,
			       e.message);
		return 0;
	}
	if (rc)
		return stk_err_set(err, rc, "reading %s Secret '%s': %s", what, name, e.message);
	return 0;
}

static int check_secrets(struct rec *r, stk_err *err)
{
	const struct stk_stoker_spec *s = &r->stk.spec;
	const struct stk_git_auth *a = &s->git.auth;
	int rc = 0;

	if (s->gateway.api_key_secret_ref.present)
		rc = check_secret(r, s->gateway.api_key_secret_ref.name,
				  s->gateway.api_key_secret_ref.key, "gateway API key", err);
	if (!rc && s->git.present && a->ssh_key.present)
		rc = check_secret(r, a->ssh_key.secret_ref.name, a->ssh_key.secret_ref.key,
				  "git SSH key", err);
	if (!rc && s->git.present && a->known_hosts.present)
		rc = check_secret(r, a->known_hosts.secret_ref.name, a->known_hosts.secret_ref.key,
				  "git known_hosts", err);
	if (!rc && s->git.present && a->token.present)
		rc = check_secret(r, a->token.secret_ref.name, a->token.secret_ref.key, "git token",
				  err);
	if (!rc && s->git.present && a->basic.present) {
		rc = check_secret(r, a->basic.secret_ref.name, "username", "git basic auth", err);
		if (!rc)
			rc = check_secret(r, a->basic.secret_ref.name, "password", "git basic auth",
					  err);
	}
	return rc;
}

/* ---- the GitSource ------------------------------------------------------------------ */

static bool is_sha(const char *s)
{
	return s && strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

static void put_key_ref(stk_buf *b, const char *member, const struct stk_git_auth_key *k,
			bool *first)
{
	if (!k->present)
		return;
	stk_buf_printf(b, "%s\"%s\":{\"secretRef\":{\"name\":", *first ? "" : ",", member);
	put_str(b, k->secret_ref.name);
	stk_buf_puts(b, ",\"key\":");
	put_str(b, k->secret_ref.key);
	stk_buf_puts(b, "}}");
	*first = false;
}

/* The spec of the owned GitSource for an inline `git`, as JSON. */
static void owned_source_spec(const struct rec *r, stk_buf *b)
{
	const struct stk_stoker_spec *s = &r->stk.spec;
	const struct stk_git_auth *a = &s->git.auth;
	bool polling = !s->polling.enabled.set || s->polling.enabled.v;
	bool first = true;

	stk_buf_puts(b, "{\"url\":");
	put_str(b, s->git.repo);
	stk_buf_printf(b, ",\"ref\":{\"%s\":", is_sha(s->git.ref) ? "commit" : "name");
	put_str(b, s->git.ref);
	stk_buf_puts(b, "},\"interval\":");
	/* Without polling the source is still checked hourly; webhooks trigger it at once. */
	put_str(b, polling ? (s->polling.interval ? s->polling.interval : "60s") : "1h");
	if (a->present) {
		stk_buf_puts(b, ",\"auth\":{");
		put_key_ref(b, "sshKey", &a->ssh_key, &first);
		put_key_ref(b, "knownHosts", &a->known_hosts, &first);
		put_key_ref(b, "token", &a->token, &first);
		if (a->basic.present) {
			stk_buf_printf(b,
				       "%s\"basic\":{\"secretRef\":{\"name\":", first ? "" : ",");
			put_str(b, a->basic.secret_ref.name);
			stk_buf_puts(b, "}}");
		}
		stk_buf_putc(b, '}');
	}
	stk_buf_putc(b, '}');
}

/* Canonical JSON of a GitSource spec (decoded, defaulted, re-encoded) for comparison. */
static char *canonical_spec(yajl_val spec)
{
	struct stk_gitsource_spec s;
	stk_buf b = STK_BUF_INIT(1 << 20);
	stk_err e = STK_ERR_INIT;

	memset(&s, 0, sizeof(s));
	if (stk_api_decode(&stk_api_gitsource_spec_type, &s, spec, "spec", &e) == 0) {
		stk_api_default(&stk_api_gitsource_spec_type, &s);
		stk_api_encode(&stk_api_gitsource_spec_type, &s, &b);
	}
	stk_api_release(&stk_api_gitsource_spec_type, &s);
	return stk_buf_detach(&b, NULL);
}

/* "kind:name" of a GitSource's spec.ref (stoker.io/requested-over); heap. */
static char *ref_key(const struct stk_gitsource_ref *ref)
{
	stk_buf b = STK_BUF_INIT(4096);
	const char *kind, *name = stk_api_gitsource_ref(ref, &kind);

	stk_buf_printf(&b, "%s:%s", kind, name ? name : "");
	return stk_buf_detach(&b, NULL);
}

/* ref_key of an undecoded GitSource spec ("" when it does not decode); heap. */
static char *spec_ref(yajl_val spec)
{
	struct stk_gitsource_spec s;
	stk_err e = STK_ERR_INIT;
	char *key = NULL;

	memset(&s, 0, sizeof(s));
	if (spec && stk_api_decode(&stk_api_gitsource_spec_type, &s, spec, "spec", &e) == 0)
		key = ref_key(&s.ref);
	stk_api_release(&stk_api_gitsource_spec_type, &s);
	return key ? key : stk_strdup("");
}

/* The JSON pointer of an annotation. */
static void put_ann_pointer(stk_buf *b, const char *key)
{
	stk_buf_puts(b, "/metadata/annotations/");
	stk_buf_put_json_pointer_token(b, key);
}

/*
 * spec.git.ref (or the referenced GitSource's spec.ref) changed: a ref requested earlier
 * through the receiver (or by hand) would otherwise keep overriding the new spec for
 * good, so the request is dropped: from the GitSource first (once the Stoker's is gone,
 * nothing would lead back to it), then from the Stoker, only if it still holds the value
 * read (a JSON patch test), so a request arriving meanwhile stands. 0 also when that
 * test fails; otherwise the API error, for the caller to retry.
 */
static int supersede_request(struct rec *r, stk_err *err)
{
	static const char *const keys[] = {STK_ANN_REQUESTED_REF, STK_ANN_REQUESTED_AT,
					   STK_ANN_REQUESTED_BY};
	const char *want =
		stk_json_str(r->obj->root, "metadata", "annotations", STK_ANN_REQUESTED_REF, NULL);
	stk_buf b = STK_BUF_INIT(8192);
	int rc;

	if (!want)
		return 0;
	stk_buf_puts(&b, "{\"metadata\":{\"annotations\":{\"" STK_ANN_REQUESTED_REF
			 "\":null,\"" STK_ANN_REQUESTED_OVER "\":null}}}");
	rc = stk_kube_patch(r->c->kube, &STK_GVR_GITSOURCES, r->ns, r->source_name, STK_PATCH_MERGE,
			    b.ptr, b.len, NULL, NULL, err);
	if (rc && rc != STK_ENOTFOUND)
		goto out;
	stk_err_clear(err);
	stk_buf_reset(&b);
	stk_buf_puts(&b, "[{\"op\":\"test\",\"path\":\"");
	put_ann_pointer(&b, STK_ANN_REQUESTED_REF);
	stk_buf_puts(&b, "\",\"value\":");
	put_str(&b, want);
	stk_buf_putc(&b, '}');
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!stk_json_str(r->obj->root, "metadata", "annotations", keys[i], NULL))
			continue;
		stk_buf_puts(&b, ",{\"op\":\"remove\",\"path\":\"");
		put_ann_pointer(&b, keys[i]);
		stk_buf_puts(&b, "\"}");
	}
	stk_buf_putc(&b, ']');
	rc = stk_kube_patch(r->c->kube, &STK_GVR_STOKERS, r->ns, r->name, STK_PATCH_JSON, b.ptr,
			    b.len, NULL, NULL, err);
	if (rc == STK_EINVALID || rc == STK_EINVAL) {
		/* The test failed: a newer request is there; the next reconcile passes it on. */
		stk_log_info("requested ref kept: the Stoker's request changed meanwhile", "object",
			     r->name, "error", err->message, NULL);
		stk_err_clear(err);
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	syncctl_note_dropped(r->c, r->ns, r->name, r->obj->rv);
	stk_log_info("the source's ref changed: the earlier requested ref is dropped", "object",
		     r->name, "ref", want, NULL);
out:
	stk_buf_release(&b);
	return rc;
}

/*
 * A referenced GitSource whose spec.ref is no longer the one its requested ref came over
 * (stoker.io/requested-over, written with the request): someone changed spec.ref since,
 * perhaps while no sync-controller ran, and that change wins. Every Stoker referencing it
 * with that request is marked: once this reconcile (or another one's) has removed the
 * GitSource's annotations, nothing else would show that their requests are stale.
 */
static void source_request_superseded(struct rec *r)
{
	const char *req = stk_json_str(r->source->root, "metadata", "annotations",
				       STK_ANN_REQUESTED_REF, NULL);
	const char *over = stk_json_str(r->source->root, "metadata", "annotations",
					STK_ANN_REQUESTED_OVER, NULL);
	char *now;

	if (!req || !over || !stk_api_gitsource_ref(&r->gs.spec.ref, NULL))
		return;
	now = ref_key(&r->gs.spec.ref);
	if (strcmp(now, over)) {
		stk_log_info("the GitSource's ref changed after a request: dropping the request",
			     "object", r->name, "source", r->source_name, "ref", req, "was", over,
			     "now", now, NULL);
		syncctl_mark_source_superseded(r->c, r->ns, r->source_name, req);
	}
	free(now);
}

/* Creates or updates the GitSource <stoker>-git from spec.git. */
static int ensure_owned_source(struct rec *r, stk_err *err)
{
	stk_buf spec = STK_BUF_INIT(1 << 20), body = STK_BUF_INIT(1 << 20);
	yajl_val want = NULL;
	char *want_c = NULL, *have_c = NULL;
	int rc = 0;

	owned_source_spec(r, &spec);
	if (!r->source) {
		stk_buf_puts(&body, "{\"apiVersion\":\"source.stoker.io/v1alpha1\","
				    "\"kind\":\"GitSource\",\"metadata\":{\"name\":");
		put_str(&body, r->source_name);
		stk_buf_puts(&body, ",\"namespace\":");
		put_str(&body, r->ns);
		stk_buf_putc(&body, ',');
		put_labels(&body, r);
		stk_buf_putc(&body, ',');
		put_owner(&body, r);
		stk_buf_puts(&body, "},\"spec\":");
		stk_buf_put(&body, spec.ptr, spec.len);
		stk_buf_putc(&body, '}');
		rc = stk_kube_create(r->c->kube, &STK_GVR_GITSOURCES, r->ns, body.ptr, body.len,
				     NULL, err);
		if (rc == STK_EEXIST)
			rc = 0; /* the cache lags; the next reconcile compares */
		if (!rc)
			stk_log_info("created GitSource", "object", r->name, "source",
				     r->source_name, NULL);
		goto out;
	}
	if (!owned_by(r->source->root, r->obj->uid)) {
		rc = stk_err_set(err, STK_EEXIST,
				 "GitSource '%s' exists and is not owned by this Stoker",
				 r->source_name);
		goto out;
	}
	if (stk_json_parse(&want, spec.ptr, spec.len, 1 << 20, err))
		goto out;
	want_c = canonical_spec(want);
	have_c = canonical_spec(stk_json_obj(r->source->root, "spec", NULL));
	if (!strcmp(want_c, have_c))
		goto out;
	{
		/* Before the spec: should this fail, the retry still sees the ref change. */
		char *ref_want = spec_ref(want);
		char *ref_have = spec_ref(stk_json_obj(r->source->root, "spec", NULL));
		if (strcmp(ref_want, ref_have))
			rc = supersede_request(r, err);
		free(ref_want);
		free(ref_have);
		if (rc)
			goto out;
	}
	stk_buf_puts(&body, "[{\"op\":\"replace\",\"path\":\"/spec\",\"value\":");
	stk_buf_put(&body, spec.ptr, spec.len);
	stk_buf_puts(&body, "}]");
	rc = stk_kube_patch(r->c->kube, &STK_GVR_GITSOURCES, r->ns, r->source_name, STK_PATCH_JSON,
			    body.ptr, body.len, NULL, NULL, err);
	if (!rc)
		stk_log_info("updated GitSource", "object", r->name, "source", r->source_name,
			     NULL);
out:
	if (want)
		yajl_tree_free(want);
	free(want_c);
	free(have_c);
	stk_buf_release(&spec);
	stk_buf_release(&body);
	return rc;
}

/*
 * Copies the Stoker's stoker.io/requested-ref (written by the receiver) onto its
 * GitSource, which resolves it instead of spec.ref until spec.ref catches up. A request
 * equal to the source's own ref removes the GitSource's request instead.
 */
static int copy_requested_ref(struct rec *r, stk_err *err)
{
	const char *want =
		stk_json_str(r->obj->root, "metadata", "annotations", STK_ANN_REQUESTED_REF, NULL);
	const char *have = stk_json_str(r->source->root, "metadata", "annotations",
					STK_ANN_REQUESTED_REF, NULL);
	stk_buf b = STK_BUF_INIT(4096);
	int rc;

	/*
	 * Asking for the source's own ref means "back to spec.ref": the GitSource's earlier
	 * request (a tag, say) is removed, or it would stay on that tag for good (the
	 * source-controller drops the annotation only when it equals spec.ref).
	 */
	bool back_to_spec =
		want && *want && str_eq(want, stk_api_gitsource_ref(&r->gs.spec.ref, NULL));

	/* r->obj (this reconcile's, or a lagging cache's) may still show a dropped request */
	if (syncctl_shows_dropped(r->c, r->ns, r->name, r->obj->rv))
		return 0;
	if (back_to_spec && !have)
		return 0;
	if (!back_to_spec && (!want || !*want || str_eq(want, have)))
		return 0;
	/* With the spec.ref it overrides: a later change of that drops the request, even one
	 * made while no sync-controller ran (source_request_superseded). */
	stk_buf_puts(&b, "{\"metadata\":{\"annotations\":{\"" STK_ANN_REQUESTED_REF "\":");
	if (back_to_spec) {
		stk_buf_puts(&b, "null,\"" STK_ANN_REQUESTED_OVER "\":null");
	} else {
		char *over = ref_key(&r->gs.spec.ref);
		put_str(&b, want);
		stk_buf_puts(&b, ",\"" STK_ANN_REQUESTED_OVER "\":");
		put_str(&b, over);
		free(over);
	}
	stk_buf_puts(&b, "}}}");
	rc = stk_kube_patch(r->c->kube, &STK_GVR_GITSOURCES, r->ns, r->source_name, STK_PATCH_MERGE,
			    b.ptr, b.len, NULL, NULL, err);
	stk_buf_release(&b);
	if (!rc)
		stk_log_info(back_to_spec ? "GitSource back to its own ref"
					  : "requested ref passed to the GitSource",
			     "object", r->name, "ref", want, NULL);
	return rc;
}

/*
 * A new stoker.io/reconcile-requested-at on the Stoker (the receiver writes one for
 * every accepted webhook; `kubectl annotate` does too) is passed to its GitSource, so a
 * push to the branch already followed is fetched now rather than at the next interval.
 * Once per token: a token the Stoker has handled is not passed again.
 */
static int forward_reconcile_request(struct rec *r, stk_err *err)
{
	const char *token = stk_json_str(r->obj->root, "metadata", "annotations",
					 STK_ANN_RECONCILE_REQUEST, NULL);
	const char *have = stk_json_str(r->source->root, "metadata", "annotations",
					STK_ANN_RECONCILE_REQUEST, NULL);
	stk_buf b = STK_BUF_INIT(4096);
	int rc;

	if (!token || !*token || str_eq(token, r->stk.status.last_handled_reconcile_at) ||
	    str_eq(token, have))
		return 0;
	stk_buf_puts(&b, "{\"metadata\":{\"annotations\":{\"" STK_ANN_RECONCILE_REQUEST "\":");
	put_str(&b, token);
	stk_buf_puts(&b, "}}}");
	rc = stk_kube_patch(r->c->kube, &STK_GVR_GITSOURCES, r->ns, r->source_name, STK_PATCH_MERGE,
			    b.ptr, b.len, NULL, NULL, err);
	stk_buf_release(&b);
	if (!rc)
		stk_log_info("reconcile request passed to the GitSource", "object", r->name,
			     "source", r->source_name, "token", token, NULL);
	return rc;
}

/* SourceReady and RefResolved from the GitSource; sets r->commit. */
static void source_conditions(struct rec *r)
{
	const struct stk_condition *ready;
	const struct stk_artifact *art;
	stk_buf msg = STK_BUF_INIT(1 << 16);

	r->commit = "";
	if (!r->source) {
		stk_buf_printf(&msg, "GitSource '%s' not found in namespace '%s'", r->source_name,
			       r->ns);
		set_cond(r, STK_COND_SOURCE_READY, STK_CONDITION_FALSE, STK_REASON_SOURCE_NOT_FOUND,
			 msg.ptr);
		set_cond(r, STK_COND_REF_RESOLVED, STK_CONDITION_UNKNOWN, STK_REASON_PROGRESSING,
			 "waiting for the GitSource");
		stk_buf_release(&msg);
		return;
	}
	art = &r->gs.status.artifact;
	if (art->present && is_sha(art->commit))
		r->commit = art->commit;
	ready = stk_conditions_get(&r->gs.status.conditions.set, STK_COND_READY);
	if (ready && ready->status == STK_CONDITION_TRUE) {
		stk_buf_printf(&msg, "GitSource '%s' is ready at %s", r->source_name,
			       art->revision ? art->revision : r->commit);
		set_cond(r, STK_COND_SOURCE_READY, STK_CONDITION_TRUE, STK_REASON_SOURCE_READY,
			 msg.ptr);
	} else {
		stk_buf_printf(&msg, "GitSource '%s': %s", r->source_name,
			       ready ? ready->message : "not reconciled yet");
		set_cond(r, STK_COND_SOURCE_READY,
			 ready ? STK_CONDITION_FALSE : STK_CONDITION_UNKNOWN,
			 STK_REASON_SOURCE_NOT_READY, msg.ptr);
	}
	if (ready && ready->status == STK_CONDITION_FALSE &&
	    (str_eq(ready->reason, STK_REASON_REF_NOT_FOUND) ||
	     str_eq(ready->reason, STK_REASON_FETCH_FAILED) ||
	     str_eq(ready->reason, STK_REASON_AUTHENTICATION_FAILED) ||
	     str_eq(ready->reason, STK_REASON_HOST_KEY_MISMATCH) || !*r->commit)) {
		stk_buf_reset(&msg);
		stk_buf_printf(&msg, "%s%s", ready->message,
			       *r->commit ? " (agents keep the last resolved commit)" : "");
		set_cond(r, STK_COND_REF_RESOLVED, STK_CONDITION_FALSE,
			 STK_REASON_REF_RESOLUTION_FAILED, msg.ptr);
	} else if (*r->commit) {
		set_cond(r, STK_COND_REF_RESOLVED, STK_CONDITION_TRUE, STK_REASON_REF_RESOLVED,
			 r->commit);
	} else {
		set_cond(r, STK_COND_REF_RESOLVED, STK_CONDITION_UNKNOWN, STK_REASON_PROGRESSING,
			 "waiting for the GitSource's first artifact");
	}
	stk_buf_release(&msg);
}

/* ---- the fleet ---------------------------------------------------------------------- */

struct pod_walk {
	struct rec *r;
	bool only_stoker; /* this is the namespace's only Stoker: inject=true pods are ours */
};

static char *dup_or_null(const char *s)
{
	return s && *s ? stk_strdup(s) : NULL;
}

static int collect_pod(stk_obj *o, void *arg)
{
	struct pod_walk *w = arg;
	struct rec *r = w->r;
	const char *cr = stk_api_pod_annotation(o->root, STK_ANN_CR_NAME);
	const char *inject = stk_api_pod_annotation(o->root, STK_ANN_INJECT);
	const char *profile = stk_api_pod_annotation(o->root, STK_ANN_SYNC_PROFILE);
	struct syncctl_gateway *g;

	if (cr && *cr) {
		if (strcmp(cr, r->name))
			return 0;
	} else if (!w->only_stoker || !str_eq(inject, "true")) {
		return 0;
	}
	if (!stk_api_pod_alive(o->root))
		return 0;
	/* Profiles of pods that are starting are resolved already, so their agents find them. */
	if (profile && *profile)
		syncctl_fleet_add_profile(&r->fleet, profile);
	if (!stk_api_pod_running(o->root))
		return 0;
	g = syncctl_fleet_add_gateway(&r->fleet);
	g->pod = stk_strdup(o->name);
	g->name = stk_strdup(stk_api_gateway_name(o->root));
	g->profile = dup_or_null(profile);
	g->ref_override = dup_or_null(stk_api_pod_annotation(o->root, STK_ANN_REF_OVERRIDE));
	g->sidecar = stk_api_pod_has_agent(o->root);
	return 0;
}

static int count_stoker(stk_obj *o, void *arg)
{
	(void)o;
	(*(size_t *)arg)++;
	return 0;
}

static void load_profile(struct rec *r, struct syncctl_profile *p)
{
	stk_obj *o = stk_cache_get(r->c->profiles, r->ns, p->name);
	struct stk_syncprofile sp;
	stk_err e = STK_ERR_INIT;
	const struct stk_condition *acc;

	if (!o)
		return;
	memset(&sp, 0, sizeof(sp));
	if (stk_api_decode(&stk_api_syncprofile_type, &sp, o->root, "", &e) == 0) {
		p->found = true;
		stk_api_default(&stk_api_syncprofile_spec_type, &sp.spec);
		p->spec = sp.spec; /* moved */
		memset(&sp.spec, 0, sizeof(sp.spec));
		acc = stk_conditions_get(&sp.status.conditions.set, STK_COND_ACCEPTED);
		p->accepted = acc && acc->status == STK_CONDITION_TRUE;
		if (!acc)
			p->not_ready = stk_strdup("has not been validated yet");
		else if (!p->accepted)
			p->not_ready = stk_strdup(acc->message);
	}
	stk_api_release(&stk_api_syncprofile_type, &sp);
	stk_obj_unref(o);
}

/* Gates of the current metadata ConfigMap. */
static void load_prev_gates(struct rec *r, stk_obj *meta)
{
	const char *text = meta ? stk_json_str(meta->root, "data", "profiles", NULL) : NULL;
	yajl_val v = NULL;

	if (!text || stk_json_parse(&v, text, strlen(text), 1 << 22, NULL))
		return;
	for (size_t i = 0; i < r->fleet.nprofiles; i++) {
		struct syncctl_profile *p = &r->fleet.profiles[i];
		const char *gate = stk_json_str(v, p->name, "gate", NULL);
		if (gate)
			p->prev_gate = stk_strdup(gate);
	}
	yajl_tree_free(v);
}

static void load_reports(struct rec *r, stk_obj *status_cm)
{
	yajl_val data = status_cm ? stk_json_obj(status_cm->root, "data", NULL) : NULL;

	for (size_t i = 0; i < r->fleet.ngws; i++) {
		struct syncctl_gateway *g = &r->fleet.gws[i];
		const char *text = stk_json_str(data, g->name, NULL);
		stk_err e = STK_ERR_INIT;
		if (!text)
			continue;
		if (stk_api_decode_payload(&stk_api_gateway_report_type, &g->rep, text,
					   strlen(text), &e)) {
			stk_api_release(&stk_api_gateway_report_type, &g->rep);
			memset(&g->rep, 0, sizeof(g->rep));
			stk_log_warn("unreadable gateway report", "object", r->name, "gateway",
				     g->name, "error", e.message, NULL);
			continue;
		}
		g->has_report = true;
	}
}

static void build_fleet(struct rec *r, stk_obj *meta, stk_obj *status_cm)
{
	struct pod_walk w = {r, false};
	size_t nstokers = 0;
	size_t n;

	stk_cache_each(r->c->stokers, r->ns, NULL, count_stoker, &nstokers, NULL);
	w.only_stoker = nstokers == 1;
	stk_cache_each(r->c->pods, r->ns, NULL, collect_pod, &w, NULL);
	/* Profiles first, then their dependencies (single level: no deeper walk needed). */
	n = r->fleet.nprofiles;
	for (size_t i = 0; i < n; i++)
		load_profile(r, &r->fleet.profiles[i]);
	for (size_t i = 0; i < n; i++) {
		const struct stk_dependency *d = r->fleet.profiles[i].spec.depends_on.items;
		for (size_t j = 0; j < r->fleet.profiles[i].spec.depends_on.len; j++) {
			if (d[j].profile_name &&
			    !syncctl_fleet_profile(&r->fleet, d[j].profile_name)) {
				struct syncctl_profile *dp =
					syncctl_fleet_add_profile(&r->fleet, d[j].profile_name);
				dp->needed_by = stk_strdup(r->fleet.profiles[i].name);
				load_profile(r, dp);
			}
			d = r->fleet.profiles[i].spec.depends_on.items; /* the array may move */
		}
	}
	load_prev_gates(r, meta);
	load_reports(r, status_cm);
	r->fleet.commit = r->commit;
	syncctl_fleet_evaluate(&r->fleet);
}

static void fleet_conditions(struct rec *r)
{
	struct syncctl_fleet *f = &r->fleet;
	stk_buf msg = STK_BUF_INIT(1 << 16);
	enum stk_condition_status st;
	const char *reason;

	/* ProfilesReady */
	st = STK_CONDITION_TRUE;
	reason = STK_REASON_PROFILES_ACCEPTED;
	for (size_t i = 0; i < f->nprofiles; i++) {
		const struct syncctl_profile *p = &f->profiles[i];
		if (!p->found) {
			stk_buf_printf(&msg, "%sSyncProfile '%s' not found in namespace '%s'",
				       msg.len ? "; " : "", p->name, r->ns);
			if (p->needed_by)
				stk_buf_printf(&msg, " (dependsOn of '%s')", p->needed_by);
			st = STK_CONDITION_FALSE;
			reason = STK_REASON_PROFILE_NOT_FOUND;
		}
	}
	for (size_t i = 0; st == STK_CONDITION_TRUE && i < f->nprofiles; i++) {
		const struct syncctl_profile *p = &f->profiles[i];
		if (!p->accepted) {
			stk_buf_printf(
				&msg, "SyncProfile '%s' %s%s", p->name,
				p->not_ready && strcmp(p->not_ready, "has not been validated yet")
					? "is not accepted: "
					: "",
				p->not_ready ? p->not_ready : "");
			st = p->not_ready && !strcmp(p->not_ready, "has not been validated yet")
				     ? STK_CONDITION_UNKNOWN
				     : STK_CONDITION_FALSE;
			reason = STK_REASON_PROFILE_NOT_ACCEPTED;
		}
	}
	if (st == STK_CONDITION_TRUE) {
		stk_buf_reset(&msg);
		if (f->nprofiles)
			stk_buf_printf(&msg, "%zu profile%s accepted", f->nprofiles,
				       f->nprofiles == 1 ? "" : "s");
		else
			stk_buf_puts(&msg, "no profiles in use");
	}
	set_cond(r, STK_COND_PROFILES_READY, st, reason, msg.ptr);

	/* SidecarInjected */
	stk_buf_reset(&msg);
	if (f->missing_sidecar) {
		stk_buf_puts(&msg, "no stoker-agent sidecar in pod");
		stk_buf_puts(&msg, f->missing_sidecar > 1 ? "s" : "");
		for (size_t i = 0, n = 0; i < f->ngws; i++)
			if (!f->gws[i].sidecar)
				stk_buf_printf(&msg, "%s %s", n++ ? "," : "", f->gws[i].pod);
		stk_buf_puts(&msg, "; check that the namespace has label " STK_LABEL_INJECTION
				   "=enabled and the injector is running, then recreate the pod");
		set_cond(r, STK_COND_SIDECAR_INJECTED, STK_CONDITION_FALSE,
			 STK_REASON_SIDECAR_MISSING, msg.ptr);
	} else {
		stk_buf_printf(&msg, "%zu of %zu gateway pods have the agent sidecar", f->ngws,
			       f->ngws);
		set_cond(r, STK_COND_SIDECAR_INJECTED, STK_CONDITION_TRUE,
			 STK_REASON_SIDECAR_PRESENT, msg.ptr);
	}

	/* AllGatewaysSynced */
	stk_buf_reset(&msg);
	syncctl_fleet_synced_condition(f, r->name, &st, &reason, &msg);
	set_cond(r, STK_COND_ALL_GATEWAYS_SYNCED, st, reason, msg.ptr);

	/* RefSkew */
	stk_buf_reset(&msg);
	for (size_t i = 0; i < f->ngws; i++)
		if (f->gws[i].ref_override)
			stk_buf_printf(&msg, "%spod %s uses ref '%s'", msg.len ? ", " : "",
				       f->gws[i].pod, f->gws[i].ref_override);
	if (msg.len)
		set_cond(r, STK_COND_REF_SKEW, STK_CONDITION_TRUE, STK_REASON_REF_OVERRIDE,
			 msg.ptr);
	else
		stk_conditions_remove(&r->conds, STK_COND_REF_SKEW);
	stk_buf_release(&msg);
}

/* ---- ConfigMaps ---------------------------------------------------------------------- */

static void cm_name(char *out, size_t cap, const char *prefix, const char *cr)
{
	snprintf(out, cap, "%s%s", prefix, cr);
}

/* The data of stoker-metadata-<cr> (CONTRACTS.md), as a JSON object of strings. */
static void metadata_data(struct rec *r, stk_buf *b)
{
	const struct stk_stoker_spec *s = &r->stk.spec;
	const struct stk_artifact *art = &r->gs.status.artifact;
	bool have = *r->commit && art->present;
	bool git_mode = s->agent.source_mode && !strcmp(s->agent.source_mode, "git");
	stk_buf v = STK_BUF_INIT(1 << 22);
	struct stk_gateway_info gi;

	stk_buf_puts(b, "{\"ref\":");
	put_str(b, have ? art->ref : "");
	stk_buf_puts(b, ",\"commit\":");
	put_str(b, r->commit);
	stk_buf_puts(b, ",\"revision\":");
	put_str(b, have ? art->revision : "");
	stk_buf_puts(b, ",\"artifactURL\":");
	put_str(b, have ? art->url : "");
	stk_buf_puts(b, ",\"artifactDigest\":");
	put_str(b, have ? art->digest : "");
	stk_buf_puts(b, ",\"gitURL\":");
	put_str(b, git_mode && r->gs_decoded ? r->gs.spec.url : "");
	stk_buf_printf(b, ",\"paused\":\"%s\"", r->paused ? "true" : "false");

	stk_buf_puts(&v, "[");
	for (size_t i = 0; i < s->exclude_patterns.len; i++) {
		if (i)
			stk_buf_putc(&v, ',');
		put_str(&v, s->exclude_patterns.items[i]);
	}
	stk_buf_puts(&v, "]");
	stk_buf_puts(b, ",\"excludePatterns\":");
	stk_buf_put_json_string(b, v.ptr, v.len);

	memset(&gi, 0, sizeof(gi));
	gi.present = true;
	gi.port = s->gateway.port;
	gi.tls = s->gateway.tls;
	stk_buf_reset(&v);
	stk_api_encode(&stk_api_gateway_info_type, &gi, &v);
	stk_buf_puts(b, ",\"gateway\":");
	stk_buf_put_json_string(b, v.ptr, v.len);

	stk_buf_reset(&v);
	stk_buf_putc(&v, '{');
	for (size_t i = 0, n = 0; i < r->fleet.nprofiles; i++) {
		struct syncctl_profile *p = &r->fleet.profiles[i];
		struct stk_profile_entry pe;
		if (!p->found)
			continue;
		memset(&pe, 0, sizeof(pe));
		pe.present = true;
		pe.gate = p->gate;
		pe.spec = p->spec;
		if (n++)
			stk_buf_putc(&v, ',');
		put_str(&v, p->name);
		stk_buf_putc(&v, ':');
		stk_api_encode(&stk_api_profile_entry_type, &pe, &v);
	}
	stk_buf_putc(&v, '}');
	stk_buf_puts(b, ",\"profiles\":");
	stk_buf_put_json_string(b, v.ptr, v.len);
	stk_buf_putc(b, '}');
	stk_buf_release(&v);
}

/* True when every member of `want` (an object of strings) equals the CM's data. */
static bool data_equal(stk_obj *cm, yajl_val want)
{
	yajl_val have = cm ? stk_json_obj(cm->root, "data", NULL) : NULL;

	if (!have || have->u.object.len != want->u.object.len)
		return false;
	for (size_t i = 0; i < want->u.object.len; i++) {
		const char *h = stk_json_str(have, want->u.object.keys[i], NULL);
		if (!h || !YAJL_IS_STRING(want->u.object.values[i]) ||
		    strcmp(h, want->u.object.values[i]->u.string))
			return false;
	}
	return true;
}

static int create_cm(struct rec *r, const char *name, const char *data, size_t len, stk_err *err)
{
	stk_buf b = STK_BUF_INIT(1 << 23);
	int rc;

	stk_buf_puts(&b, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":");
	put_str(&b, name);
	stk_buf_puts(&b, ",\"namespace\":");
	put_str(&b, r->ns);
	stk_buf_putc(&b, ',');
	put_labels(&b, r);
	stk_buf_putc(&b, ',');
	put_owner(&b, r);
	stk_buf_puts(&b, "},\"data\":");
	stk_buf_put(&b, data, len);
	rc = stk_buf_putc(&b, '}');
	if (rc)
		rc = stk_err_set(err, rc, "ConfigMap %s is too large", name);
	else
		rc = stk_kube_create(r->c->kube, &STK_GVR_CONFIGMAPS, r->ns, b.ptr, b.len, NULL,
				     err);
	stk_buf_release(&b);
	return rc;
}

static int write_metadata(struct rec *r, stk_obj *meta, stk_err *err)
{
	char name[SYNCCTL_MAX_NAME + 32];
	stk_buf data = STK_BUF_INIT(1 << 23), b = STK_BUF_INIT(1 << 23);
	yajl_val want = NULL;
	int rc;

	cm_name(name, sizeof(name), STK_CM_METADATA_PREFIX, r->name);
	metadata_data(r, &data);
	rc = stk_json_parse(&want, data.ptr, data.len, 1 << 23, err);
	if (rc)
		goto out;
	if (data_equal(meta, want))
		goto out;
	if (!meta) {
		rc = create_cm(r, name, data.ptr, data.len, err);
		if (rc != STK_EEXIST)
			goto out;
	}
	stk_buf_puts(&b, "{\"data\":");
	stk_buf_put(&b, data.ptr, data.len);
	stk_buf_putc(&b, '}');
	rc = stk_kube_patch(r->c->kube, &STK_GVR_CONFIGMAPS, r->ns, name, STK_PATCH_MERGE, b.ptr,
			    b.len, NULL, NULL, err);
out:
	if (want)
		yajl_tree_free(want);
	stk_buf_release(&data);
	stk_buf_release(&b);
	return rc;
}

static int ensure_status_cm(struct rec *r, stk_obj *status_cm, stk_err *err)
{
	char name[SYNCCTL_MAX_NAME + 32];
	int rc;

	if (status_cm)
		return 0;
	cm_name(name, sizeof(name), STK_CM_STATUS_PREFIX, r->name);
	rc = create_cm(r, name, "{}", 2, err);
	return rc == STK_EEXIST ? 0 : rc;
}

/* ---- the cached Stoker ------------------------------------------------------------------ */

/*
 * Cached Stokers do not keep status.discoveredGateways (the bulk of a large fleet's
 * status): syncctl_stoker_slim replaces it with two members no API type has, the digest
 * of its canonical encoding and the list of its pods, which is all a reconcile needs to
 * skip an unchanged status and to notice a changed set of pods.
 */
#define SYNCCTL_DIGEST_MEMBER "stoker.io/gatewaysDigest"
#define SYNCCTL_PODS_MEMBER   "stoker.io/gatewayPods"

/* Digest (hex sha256) and comma-joined pod names of a discovered-gateway list. */
static void gateways_digest(const struct stk_api_objects *gws, char hex[65], stk_buf *pods)
{
	const struct stk_discovered_gateway *g = gws->items;
	struct stk_stoker_status shell;
	unsigned char md[32];
	unsigned int mdlen = 0;
	stk_buf b = STK_BUF_INIT(1 << 23);

	memset(&shell, 0, sizeof(shell));
	shell.present = true;
	shell.discovered_gateways = *gws;
	stk_api_encode(&stk_api_stoker_status_type, &shell, &b);
	EVP_Digest(b.ptr ? b.ptr : "", b.len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < mdlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = '\0';
	stk_buf_release(&b);
	for (size_t i = 0; pods && i < gws->len; i++)
		stk_buf_printf(pods, "%s%s", i ? "," : "", g[i].pod_name ? g[i].pod_name : "");
}

void syncctl_stoker_slim(yajl_val root, void *arg)
{
	yajl_val st = stk_json_obj(root, "status", NULL);
	struct stk_stoker_status status;
	stk_buf pods = STK_BUF_INIT(1 << 20);
	char hex[65];

	(void)arg;
	if (!stk_json_get(st, "discoveredGateways", NULL))
		return;
	memset(&status, 0, sizeof(status));
	if (stk_api_decode(&stk_api_stoker_status_type, &status, st, "status", NULL) == 0) {
		gateways_digest(&status.discovered_gateways, hex, &pods);
		stk_json_set_string(st, SYNCCTL_DIGEST_MEMBER, hex);
		stk_json_set_string(st, SYNCCTL_PODS_MEMBER, pods.ptr ? pods.ptr : "");
	}
	stk_api_release(&stk_api_stoker_status_type, &status);
	stk_buf_release(&pods);
	stk_json_remove(st, "discoveredGateways");
}

/* ---- status ------------------------------------------------------------------------- */

static void fill_status(struct rec *r)
{
	struct stk_stoker_status *st = &r->stk.status;
	const struct syncctl_fleet *f = &r->fleet;
	struct stk_discovered_gateway *dg;
	const char *token = stk_json_str(r->obj->root, "metadata", "annotations",
					 STK_ANN_RECONCILE_REQUEST, NULL);
	char now[STK_CONDITION_TIME_SIZE];

	st->present = true;
	st->observed_generation.set = true;
	st->observed_generation.v = r->generation;
	if (token) {
		free(st->last_handled_reconcile_at);
		st->last_handled_reconcile_at = stk_strdup(token);
	}
	if (*r->commit) {
		if (!str_eq(st->last_sync_commit, r->commit)) {
			stk_conditions_now(now);
			free(st->last_sync_time);
			st->last_sync_time = stk_strdup(now);
			free(st->last_sync_commit);
			st->last_sync_commit = stk_strdup(r->commit);
			free(st->last_sync_commit_short);
			st->last_sync_commit_short = stk_strndup(r->commit, 7);
		}
		free(st->last_sync_ref);
		st->last_sync_ref =
			stk_strdup(r->gs.status.artifact.ref ? r->gs.status.artifact.ref : "");
	}
	free(st->ref_resolution_status);
	{
		const struct stk_condition *rr =
			stk_conditions_get(&r->conds, STK_COND_REF_RESOLVED);
		st->ref_resolution_status =
			stk_strdup(!rr || rr->status == STK_CONDITION_UNKNOWN ? "Pending"
				   : rr->status == STK_CONDITION_TRUE	      ? "Resolved"
									      : "Failed");
	}
	st->discovered_gateways.present = true;
	st->discovered_gateways.len = f->ngws;
	st->discovered_gateways.items = dg = stk_calloc(f->ngws ? f->ngws : 1, sizeof(*dg));
	for (size_t i = 0; i < f->ngws; i++) {
		const struct syncctl_gateway *g = &f->gws[i];
		const struct stk_gateway_report *rep = &g->rep;
		dg[i].present = true;
		dg[i].name = stk_strdup(g->name);
		dg[i].ns = stk_strdup(r->ns);
		dg[i].pod_name = stk_strdup(g->pod);
		dg[i].sync_profile = dup_or_null(g->profile);
		dg[i].sync_status = stk_strdup(g->state);
		if (!g->has_report)
			continue;
		dg[i].synced_commit = dup_or_null(rep->synced_commit);
		dg[i].synced_ref = dup_or_null(rep->synced_ref);
		dg[i].last_sync_time = dup_or_null(rep->last_sync_time);
		dg[i].last_sync_duration = dup_or_null(rep->last_sync_duration);
		dg[i].files_changed = rep->files_changed;
		if (rep->projects_synced.present) {
			dg[i].projects_synced.present = true;
			dg[i].projects_synced.len = rep->projects_synced.len;
			dg[i].projects_synced.items =
				stk_calloc(rep->projects_synced.len + 1, sizeof(char *));
			for (size_t j = 0; j < rep->projects_synced.len; j++)
				dg[i].projects_synced.items[j] =
					stk_strdup(rep->projects_synced.items[j]);
		}
		dg[i].agent_version = dup_or_null(rep->agent_version);
		dg[i].last_scan_result = dup_or_null(rep->last_scan_result);
		dg[i].error_message = dup_or_null(rep->error_message);
		if (rep->drift.present) {
			dg[i].drift.present = true;
			dg[i].drift.detected = rep->drift.detected;
			if (rep->drift.files.present) {
				dg[i].drift.files.present = true;
				dg[i].drift.files.len = rep->drift.files.len;
				dg[i].drift.files.items =
					stk_calloc(rep->drift.files.len + 1, sizeof(char *));
				for (size_t j = 0; j < rep->drift.files.len; j++)
					dg[i].drift.files.items[j] =
						stk_strdup(rep->drift.files.items[j]);
			}
		}
	}
	stk_conditions_release(&st->conditions.set);
	stk_conditions_copy(&st->conditions.set, &r->conds);
	st->conditions.present = true;
}

static int patch_status(struct rec *r, stk_err *err)
{
	struct stk_patch_opts po = STK_PATCH_OPTS_INIT;
	stk_buf b = STK_BUF_INIT(1 << 23);
	int rc;

	struct stk_api_objects gws = r->stk.status.discovered_gateways;
	char hex[65];

	stk_manager_publish_conditions(r->c->mgr, r->ns, r->name, &r->conds);
	/* Unchanged: the rest of the status encodes the same and the gateways' digest too. */
	memset(&r->stk.status.discovered_gateways, 0, sizeof(gws));
	stk_buf_puts(&b, "{\"status\":");
	stk_api_encode(&stk_api_stoker_status_type, &r->stk.status, &b);
	r->stk.status.discovered_gateways = gws;
	gateways_digest(&gws, hex, NULL);
	stk_buf_printf(&b, "}%s", hex);
	if (r->orig_status && !strcmp(r->orig_status, b.ptr)) {
		stk_buf_release(&b);
		return 0;
	}
	stk_buf_reset(&b);
	stk_buf_puts(&b, "{\"status\":");
	stk_api_encode(&stk_api_stoker_status_type, &r->stk.status, &b);
	rc = stk_buf_putc(&b, '}');
	if (rc) {
		stk_buf_release(&b);
		return stk_err_set(err, rc, "status too large");
	}
	po.subresource = "status";
	rc = stk_kube_patch(r->c->kube, &STK_GVR_STOKERS, r->ns, r->name, STK_PATCH_MERGE, b.ptr,
			    b.len, &po, NULL, err);
	stk_buf_release(&b);
	return rc == STK_ENOTFOUND ? 0 : rc;
}

/* ---- events and metrics ----------------------------------------------------------- */

static bool had_reason(const struct stk_conditions *set, const char *type, const char *reason)
{
	const struct stk_condition *c = stk_conditions_get(set, type);

	return c && str_eq(c->reason, reason);
}

static bool gateways_changed(const struct rec *r, const char *old_pods)
{
	stk_buf now = STK_BUF_INIT(1 << 20);
	bool changed;

	for (size_t i = 0; i < r->fleet.ngws; i++)
		stk_buf_printf(&now, "%s%s", i ? "," : "", r->fleet.gws[i].pod);
	changed = strcmp(old_pods ? old_pods : "", now.ptr ? now.ptr : "");
	stk_buf_release(&now);
	return changed;
}

static void emit_events(struct rec *r, const char *old_pods)
{
	const struct syncctl_fleet *f = &r->fleet;
	bool was_paused = had_reason(&r->old_conds, STK_COND_READY, STK_REASON_PAUSED);
	stk_buf msg = STK_BUF_INIT(1 << 14);

	if (r->paused && !was_paused)
		event(r, STK_EVENT_NORMAL, STK_EVENT_PAUSED,
		      "Stoker paused: agents keep their files until it is resumed");
	else if (!r->paused && was_paused)
		event(r, STK_EVENT_NORMAL, STK_EVENT_RESUMED, "Stoker resumed");
	if (gateways_changed(r, old_pods) && f->ngws) {
		stk_buf_printf(&msg, "%zu gateway%s discovered:", f->ngws, f->ngws == 1 ? "" : "s");
		for (size_t i = 0; i < f->ngws && i < 20; i++)
			stk_buf_printf(&msg, "%s %s (pod %s)", i ? "," : "", f->gws[i].name,
				       f->gws[i].pod);
		event(r, STK_EVENT_NORMAL, STK_EVENT_GATEWAYS_DISCOVERED, msg.ptr);
	}
	if (f->missing_sidecar &&
	    !had_reason(&r->old_conds, STK_COND_SIDECAR_INJECTED, STK_REASON_SIDECAR_MISSING)) {
		const struct stk_condition *c =
			stk_conditions_get(&r->conds, STK_COND_SIDECAR_INJECTED);
		event(r, STK_EVENT_WARNING, STK_EVENT_MISSING_SIDECAR, c ? c->message : "");
	}
	stk_buf_release(&msg);
}

static void publish_metrics(struct rec *r)
{
	const struct syncctl_fleet *f = &r->fleet;
	struct {
		const char *state;
		size_t n;
	} counts[] = {{"discovered", f->ngws},
		      {"synced", f->synced},
		      {"missing_sidecar", f->missing_sidecar},
		      {"error", f->errors},
		      {"blocked", f->blocked}};
	const char *any[] = {r->name, r->ns, NULL, NULL};

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		const char *v[] = {r->name, r->ns, counts[i].state};
		stk_metrics_set(r->c->m_gateways, v, (double)counts[i].n);
	}
	stk_metrics_remove_matching(r->c->m_gateway_state, any);
	for (size_t i = 0; i < f->ngws; i++) {
		const char *v[] = {r->name, r->ns, f->gws[i].name, f->gws[i].state};
		stk_metrics_set(r->c->m_gateway_state, v, 1);
	}
}

static void forget(struct syncctl *c, const char *ns, const char *name)
{
	stk_metrics_family *extra[] = {c->m_gateways, c->m_gateway_state, NULL};

	stk_manager_forget(c->mgr, ns, name, extra);
}

/* ---- deletion ---------------------------------------------------------------------- */

static int delete_ignoring_missing(stk_kube *k, const struct stk_gvr *gvr, const char *ns,
				   const char *name, stk_err *err)
{
	int rc = stk_kube_delete(k, gvr, ns, name, NULL, err);

	return rc == STK_ENOTFOUND ? 0 : rc;
}

static int finalize(struct rec *r, stk_obj *meta, stk_err *err)
{
	char name[SYNCCTL_MAX_NAME + 32];
	int rc = 0;

	if (!stk_obj_has_finalizer(r->obj->root, STK_FINALIZER_STOKER))
		return 0;
	cm_name(name, sizeof(name), STK_CM_METADATA_PREFIX, r->name);
	if (meta) {
		/* Tell the agents first, so they stop before their instructions disappear. */
		static const char body[] = "{\"data\":{\"paused\":\"true\"}}";
		rc = stk_kube_patch(r->c->kube, &STK_GVR_CONFIGMAPS, r->ns, name, STK_PATCH_MERGE,
				    body, sizeof(body) - 1, NULL, NULL, err);
		if (rc == STK_ENOTFOUND)
			rc = 0;
	}
	if (!rc)
		rc = delete_ignoring_missing(r->c->kube, &STK_GVR_CONFIGMAPS, r->ns, name, err);
	cm_name(name, sizeof(name), STK_CM_STATUS_PREFIX, r->name);
	if (!rc)
		rc = delete_ignoring_missing(r->c->kube, &STK_GVR_CONFIGMAPS, r->ns, name, err);
	if (!rc && r->stk.spec.git.present && r->source && owned_by(r->source->root, r->obj->uid))
		rc = delete_ignoring_missing(r->c->kube, &STK_GVR_GITSOURCES, r->ns, r->source_name,
					     err);
	if (!rc)
		rc = stk_kube_patch_finalizer(r->c->kube, &STK_GVR_STOKERS, r->obj->root,
					      STK_FINALIZER_STOKER, false, err);
	if (!rc) {
		stk_log_info("finalized", "object", r->name, "namespace", r->ns, NULL);
		forget(r->c, r->ns, r->name);
	}
	return rc == STK_ENOTFOUND ? 0 : rc;
}

/* ---- reconcile -------------------------------------------------------------------- */

static uint64_t poll_interval_ms(const struct rec *r)
{
	const struct stk_polling *p = &r->stk.spec.polling;
	int64_t ms = SYNCCTL_DEFAULT_POLL_MS;

	if (p->interval && stk_parse_duration_ms(p->interval, strlen(p->interval), &ms, NULL))
		ms = SYNCCTL_DEFAULT_POLL_MS;
	return ms > 0 ? (uint64_t)ms : SYNCCTL_DEFAULT_POLL_MS;
}

static void summarize(struct rec *r)
{
	static const char *const positive[] = {
		STK_COND_SOURCE_READY,	   STK_COND_REF_RESOLVED,	 STK_COND_PROFILES_READY,
		STK_COND_SIDECAR_INJECTED, STK_COND_ALL_GATEWAYS_SYNCED, NULL};
	struct stk_conditions_summary_opts so = STK_CONDITIONS_SUMMARY_OPTS_INIT;
	const struct stk_condition *all =
		stk_conditions_get(&r->conds, STK_COND_ALL_GATEWAYS_SYNCED);

	if (all && str_eq(all->reason, STK_REASON_SYNC_IN_PROGRESS) && !r->paused)
		stk_conditions_mark_reconciling(&r->conds, STK_REASON_PROGRESSING, all->message,
						r->generation, NULL, NULL);
	else
		stk_conditions_mark_idle(&r->conds);
	if (r->paused) {
		set_cond(r, STK_COND_READY, STK_CONDITION_FALSE, STK_REASON_PAUSED,
			 "Stoker is paused: agents keep their current files until it is resumed");
		return;
	}
	if (r->secret_msg.len) {
		set_cond(r, STK_COND_READY, STK_CONDITION_FALSE, STK_REASON_SECRET_NOT_FOUND,
			 r->secret_msg.ptr);
		return;
	}
	so.positive = positive;
	if (all && all->status == STK_CONDITION_TRUE)
		so.success_message = all->message;
	stk_conditions_summarize_ready(&r->conds, &so, r->generation, NULL, NULL);
}

int syncctl_reconcile(void *arg, const char *ns, const char *name, uint64_t *requeue_after_ms,
		      stk_err *err)
{
	struct syncctl *c = arg;
	struct rec r;
	stk_obj *meta = NULL, *status_cm = NULL;
	char cmname[SYNCCTL_MAX_NAME + 32];
	const char *old_pods = NULL;
	stk_err e = STK_ERR_INIT;
	int rc = 0;

	memset(&r, 0, sizeof(r));
	r.c = c;
	r.ns = ns;
	r.name = name;
	stk_buf_init(&r.secret_msg, 1 << 14);
	r.obj = stk_cache_get(c->stokers, ns, name);
	if (!r.obj) {
		forget(c, ns, name);
		goto out;
	}
	rc = stk_api_decode(&stk_api_stoker_type, &r.stk, r.obj->root, "", &e);
	r.generation = r.obj->generation;
	if (r.stk.status.conditions.present) {
		stk_conditions_copy(&r.conds, &r.stk.status.conditions.set);
		stk_conditions_copy(&r.old_conds, &r.stk.status.conditions.set);
	}
	{
		/* The cached status has no discoveredGateways, only their digest. */
		const char *digest =
			stk_json_str(r.obj->root, "status", SYNCCTL_DIGEST_MEMBER, NULL);
		stk_buf b = STK_BUF_INIT(1 << 23);
		stk_buf_puts(&b, "{\"status\":");
		stk_api_encode(&stk_api_stoker_status_type, &r.stk.status, &b);
		stk_buf_printf(&b, "}%s", digest ? digest : "");
		r.orig_status = stk_buf_detach(&b, NULL);
		old_pods = stk_json_str(r.obj->root, "status", SYNCCTL_PODS_MEMBER, NULL);
	}
	if (!stk_conditions_get(&r.conds, STK_COND_READY))
		set_cond(&r, STK_COND_READY, STK_CONDITION_UNKNOWN, STK_REASON_PROGRESSING,
			 "reconciliation in progress");
	stk_api_default(&stk_api_stoker_spec_type, &r.stk.spec);
	if (r.stk.spec.git.present)
		snprintf(r.source_name, sizeof(r.source_name), "%s" SYNCCTL_SOURCE_SUFFIX, name);
	else if (r.stk.spec.source_ref.name)
		snprintf(r.source_name, sizeof(r.source_name), "%s", r.stk.spec.source_ref.name);
	if (*r.source_name)
		r.source = stk_cache_get(c->sources, ns, r.source_name);
	cm_name(cmname, sizeof(cmname), STK_CM_METADATA_PREFIX, name);
	meta = stk_cache_get(c->cms, ns, cmname);
	cm_name(cmname, sizeof(cmname), STK_CM_STATUS_PREFIX, name);
	status_cm = stk_cache_get(c->cms, ns, cmname);

	if (stk_json_get(r.obj->root, "metadata", "deletionTimestamp", NULL)) {
		rc = finalize(&r, meta, err);
		goto out;
	}
	if (!stk_obj_has_finalizer(r.obj->root, STK_FINALIZER_STOKER)) {
		rc = stk_kube_patch_finalizer(c->kube, &STK_GVR_STOKERS, r.obj->root,
					      STK_FINALIZER_STOKER, true, err);
		if (rc)
			goto out;
	}
	if (rc || stk_api_validate_object(STK_KIND_STOKER, &r.stk, &e)) {
		/* The API server's schema should have refused it: give up until it changes. */
		stk_conditions_mark_stalled(&r.conds, STK_REASON_INVALID_SPEC, e.message,
					    r.generation, NULL, NULL);
		stk_conditions_summarize_ready(&r.conds, NULL, r.generation, NULL, NULL);
		fill_status(&r);
		rc = patch_status(&r, err);
		goto out;
	}
	r.paused = r.stk.spec.paused.set && r.stk.spec.paused.v;

	if (r.stk.spec.git.present) {
		rc = ensure_owned_source(&r, err);
		if (rc)
			goto fail;
	}
	if (r.source) {
		rc = stk_api_decode(&stk_api_gitsource_type, &r.gs, r.source->root, "", &e);
		r.gs_decoded = true;
		if (rc) {
			rc = stk_err_set(err, rc, "GitSource '%s': %s", r.source_name, e.message);
			goto fail;
		}
		if (!r.stk.spec.git.present) {
			const char *req = stk_json_str(r.obj->root, "metadata", "annotations",
						       STK_ANN_REQUESTED_REF, NULL);
			source_request_superseded(&r);
			/* (without a request, a mark from a lagging cache is cleared) */
			if (syncctl_take_superseded(c, r.ns, r.name, req)) {
				rc = supersede_request(&r, err);
				if (rc) {
					/* for the retry */
					syncctl_mark_superseded(c, r.ns, r.name, req);
					goto fail;
				}
			}
		}
		rc = copy_requested_ref(&r, err);
		if (!rc)
			rc = forward_reconcile_request(&r, err);
		if (rc)
			goto fail;
	}
	rc = check_secrets(&r, err);
	if (rc)
		goto fail;
	source_conditions(&r);
	build_fleet(&r, meta, status_cm);
	fleet_conditions(&r);
	summarize(&r);

	rc = ensure_status_cm(&r, status_cm, err);
	if (!rc)
		rc = write_metadata(&r, meta, err);
	if (rc)
		goto fail;
	fill_status(&r);
	rc = patch_status(&r, err);
	if (rc)
		goto out;
	emit_events(&r, old_pods);
	publish_metrics(&r);
	*requeue_after_ms = r.secret_msg.len ? SYNCCTL_SECRET_RETRY_MS : poll_interval_ms(&r);
	goto out;

fail:
	/* Say what failed on the object too; the queue retries with backoff. */
	stk_conditions_mark_reconciling(&r.conds, STK_REASON_PROGRESSING_WITH_RETRY, err->message,
					r.generation, NULL, NULL);
	set_cond(&r, STK_COND_READY, STK_CONDITION_FALSE, STK_REASON_PROGRESSING_WITH_RETRY,
		 err->message);
	fill_status(&r);
	patch_status(&r, &e);
out:
	stk_obj_unref(meta);
	stk_obj_unref(status_cm);
	rec_release(&r);
	return rc;
}
