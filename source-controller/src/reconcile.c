/* nftw(3) */
#define _XOPEN_SOURCE 700
#include "reconcile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "artifact.h"
#include "stk/git.h"
#include "stk/alloc.h"
#include "stk/api/api.h"
#include "stk/json.h"
#include "stk/loop.h"
#include "stk/objects.h"
#include "stk/parse.h"

/* Everything one reconcile holds; released at the end. */
struct rec {
	const struct srcctl_config *cfg;
	const char *ns, *name;
	yajl_val raw;
	struct stk_gitsource gs;
	struct stk_conditions conds;
	int64_t generation;
	char *orig_status; /* the status as read, encoded: an unchanged status is not written */
	char dir[1024];
	/* Secret values (wiped on release). */
	char *ssh_key, *known_hosts, *token, *username, *password;
};

static void rec_wipe(char **s)
{
	if (*s) {
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

static void rec_release(struct rec *r)
{
	stk_api_release(&stk_api_gitsource_type, &r->gs);
	stk_conditions_release(&r->conds);
	free(r->orig_status);
	if (r->raw)
		yajl_tree_free(r->raw);
	rec_wipe(&r->ssh_key);
	rec_wipe(&r->known_hosts);
	rec_wipe(&r->token);
	rec_wipe(&r->username);
	rec_wipe(&r->password);
}

/* ---- helpers ------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int srcctl_mkdir_p(const char *path)
{
	char tmp[1024];
	size_t len = strlen(path);

	if (len >= sizeof(tmp))
		return -1;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0750) && errno != EEXIST ? -1 : 0;
}

static int secret_value(struct rec *r, const char *secret, const char *key, char **out,
			stk_err *err)
{
	return stk_kube_secret_value(r->cfg->kube, r->ns, secret, key, out, err);
}

static void now_rfc3339(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The previous Ready condition's status and reason, to emit events on transitions only. */
static bool ready_was(const struct rec *r, const char *status, const char *reason)
{
	const struct stk_condition *c = stk_conditions_get(&r->conds, STK_COND_READY);

	return c && !strcmp(stk_conditions_status_name(c->status), status) &&
	       (!reason || !strcmp(c->reason, reason));
}

static void set_cond(struct rec *r, const char *type, enum stk_condition_status st,
		     const char *reason, const char *msg)
{
	stk_conditions_set(&r->conds, type, st, reason, msg, r->generation, NULL, NULL);
}

/* Writes status (the struct plus our conditions) with a merge patch on /status. */
static int patch_status(struct rec *r, stk_err *err)
{
	struct stk_gitsource_status *st = &r->gs.status;
	struct stk_patch_opts po = STK_PATCH_OPTS_INIT;
	stk_buf b = STK_BUF_INIT(1 << 20);
	const char *token = NULL;
	yajl_val ann = stk_json_obj(r->raw, "metadata", "annotations", NULL);
	int rc;

	if (r->cfg->mgr)
		stk_manager_publish_conditions(r->cfg->mgr, r->ns, r->name, &r->conds);
	st->present = true;
	st->observed_generation.set = true;
	st->observed_generation.v = r->generation;
	if (ann)
		token = stk_json_str(ann, STK_ANN_RECONCILE_REQUEST, NULL);
	if (token) {
		free(st->last_handled_reconcile_at);
		st->last_handled_reconcile_at = stk_strdup(token);
	}
	stk_conditions_release(&st->conditions.set);
	stk_conditions_copy(&st->conditions.set, &r->conds);
	st->conditions.present = true;
	stk_buf_puts(&b, "{\"status\":");
	stk_api_encode(&stk_api_gitsource_status_type, st, &b);
	stk_buf_putc(&b, '}');
	if (r->orig_status && !strcmp(r->orig_status, b.ptr)) {
		/* Nothing changed: no write, so no watch event and no reconcile loop. */
		stk_buf_release(&b);
		return 0;
	}
	po.subresource = "status";
	rc = stk_kube_patch(r->cfg->kube, &STK_GVR_GITSOURCES, r->ns, r->name, STK_PATCH_MERGE,
			    b.ptr, b.len, &po, NULL, err);
	stk_buf_release(&b);
	return rc;
}

static void event(struct rec *r, enum stk_event_type type, const char *reason, const char *msg)
{
	struct stk_event_ref ref = {
		stk_api_version_of(STK_KIND_GITSOURCE),	       "GitSource", r->ns, r->name,
		stk_json_str(r->raw, "metadata", "uid", NULL), NULL};

	if (r->cfg->recorder)
		stk_recorder_event(r->cfg->recorder, &ref, type, reason, NULL, "%s", msg);
}

/* Sets the finalizer list to `items` with a merge patch guarded by resourceVersion. */
static int patch_finalizers(struct rec *r, bool add, stk_err *err)
{
	return stk_kube_patch_finalizer(r->cfg->kube, &STK_GVR_GITSOURCES, r->raw,
					STK_FINALIZER_GITSOURCE, add, err);
}

static bool has_finalizer(const struct rec *r)
{
	return stk_obj_has_finalizer(r->raw, STK_FINALIZER_GITSOURCE);
}

/* Removes artifacts beyond the newest `keep` (by mtime), never `current`. */
static void gc_artifacts(const char *dir, const char *current, int keep)
{
	struct entry {
		char name[80];
		time_t mtime;
	} ents[64];
	int n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL && n < 64) {
		size_t len = strlen(e->d_name);
		struct stat st;
		char path[1200];
		if (len != 47 || strcmp(e->d_name + 40, ".tar.gz"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st))
			continue;
		memcpy(ents[n].name, e->d_name, len + 1); /* len == 47 < sizeof(name) */
		ents[n++].mtime = st.st_mtime;
	}
	closedir(d);
	/* Newest first. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && ents[j].mtime > ents[j - 1].mtime; j--) {
			struct entry t = ents[j];
			ents[j] = ents[j - 1];
			ents[j - 1] = t;
		}
	for (int i = keep; i < n; i++) {
		char path[1200];
		if (!strncmp(ents[i].name, current, 40))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i].name);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s.sha256", dir, ents[i].name);
		unlink(path);
	}
}

/* Ready=False with `reason`, plus Reconciling (retrying) or Stalled (needs a spec change). */
static void fail_conditions(struct rec *r, const char *reason, const char *msg, bool stalled)
{
	set_cond(r, STK_COND_READY, STK_CONDITION_FALSE, reason, msg);
	if (stalled)
		stk_conditions_mark_stalled(&r->conds, reason, msg, r->generation, NULL, NULL);
	else
		stk_conditions_mark_reconciling(&r->conds, STK_REASON_PROGRESSING_WITH_RETRY, msg,
						r->generation, NULL, NULL);
}

static const char *reason_for(const stk_err *e)
{
	if (!strcmp(e->reason, "HostKeyMismatch"))
		return STK_REASON_HOST_KEY_MISMATCH;
	if (e->code == STK_EAUTH)
		return STK_REASON_AUTHENTICATION_FAILED;
	if (e->code == STK_ENOTFOUND)
		return STK_REASON_REF_NOT_FOUND;
	return STK_REASON_FETCH_FAILED;
}

/* ---- reconcile ---------------------------------------------------------------------- */

static int load_secrets(struct rec *r, stk_err *err)
{
	const struct stk_git_auth *a = &r->gs.spec.auth;
	int rc = 0;

	if (!a->present)
		return 0;
	if (a->ssh_key.present)
		rc = secret_value(r, a->ssh_key.secret_ref.name, a->ssh_key.secret_ref.key,
				  &r->ssh_key, err);
	if (!rc && a->known_hosts.present)
		rc = secret_value(r, a->known_hosts.secret_ref.name, a->known_hosts.secret_ref.key,
				  &r->known_hosts, err);
	if (!rc && a->token.present)
		rc = secret_value(r, a->token.secret_ref.name, a->token.secret_ref.key, &r->token,
				  err);
	if (!rc && a->basic.present) {
		static const char *const keys[] = {"username", "password"};
		char *v[2];
		rc = stk_kube_secret_values(r->cfg->kube, r->ns, a->basic.secret_ref.name, keys, v,
					    2, err);
		if (!rc) {
			r->username = v[0];
			r->password = v[1];
		}
	}
	return rc;
}

/* The ref to resolve: spec.ref, unless the requested-ref annotation asks for another. */
static struct stk_git_ref_spec ref_spec(const struct rec *r, const char **requested)
{
	const struct stk_gitsource_ref *s = &r->gs.spec.ref;
	struct stk_git_ref_spec spec = {s->branch, s->tag, s->semver, s->commit, s->name};
	const char *req =
		stk_json_str(r->raw, "metadata", "annotations", STK_ANN_REQUESTED_REF, NULL);

	*requested = NULL;
	if (req && *req) {
		const char *cur = stk_api_gitsource_ref(s, NULL);
		if (!cur || strcmp(cur, req)) {
			struct stk_git_ref_spec o = {NULL, NULL, NULL, NULL, NULL};
			bool hex = strlen(req) == 40 && strspn(req, "0123456789abcdef") == 40;
			if (hex)
				o.commit = req;
			else
				o.name = req;
			*requested = req;
			return o;
		}
	}
	return spec;
}

/*
 * Clears the requested-ref annotation once spec.ref has caught up with it, with the
 * sync-controller's note of the spec.ref it came over.
 */
static void clear_requested_ref(struct rec *r)
{
	const char *req =
		stk_json_str(r->raw, "metadata", "annotations", STK_ANN_REQUESTED_REF, NULL);
	const char *body = "{\"metadata\":{\"annotations\":{\"" STK_ANN_REQUESTED_REF
			   "\":null,\"" STK_ANN_REQUESTED_OVER "\":null}}}";

	if (req)
		stk_kube_patch(r->cfg->kube, &STK_GVR_GITSOURCES, r->ns, r->name, STK_PATCH_MERGE,
			       body, strlen(body), NULL, NULL, NULL);
}

static int reconcile_source(struct rec *r, uint64_t *requeue, stk_err *err)
{
	const struct stk_gitsource_spec *spec = &r->gs.spec;
	struct stk_git_creds auth;
	struct stk_git_remote_opts ro;
	struct stk_git_resolved res;
	struct stk_git_ref_spec rs;
	const char *requested = NULL;
	stk_err e = STK_ERR_INIT;
	int64_t interval_ms = 60000, timeout_ms = 30000;
	char path[1200], digest[SRCCTL_DIGEST_SIZE] = "", revision[400], msg[700];
	git_repository *repo = NULL;
	struct srcctl_pack_result pr;
	bool new_artifact = false;
	int rc;

	if (spec->interval)
		stk_parse_duration_ms(spec->interval, strlen(spec->interval), &interval_ms, NULL);
	if (spec->timeout)
		stk_parse_duration_ms(spec->timeout, strlen(spec->timeout), &timeout_ms, NULL);
	*requeue = (uint64_t)interval_ms;

	rc = load_secrets(r, &e);
	if (rc) {
		fail_conditions(r, STK_REASON_SECRET_NOT_FOUND, e.message, true);
		if (!ready_was(r, "False", STK_REASON_SECRET_NOT_FOUND))
			event(r, STK_EVENT_WARNING, STK_EVENT_FETCH_FAILED, e.message);
		patch_status(r, err);
		return 0; /* requeued at the interval: a Secret may appear */
	}
	memset(&auth, 0, sizeof(auth));
	auth.ssh_key = r->ssh_key;
	auth.known_hosts = r->known_hosts;
	auth.token = r->token;
	auth.username = r->username;
	auth.password = r->password;
	ro.url = spec->url;
	ro.auth = &auth;
	ro.timeout_ms = (uint64_t)timeout_ms;
	rs = ref_spec(r, &requested);
	if (!requested)
		clear_requested_ref(r);

	uint64_t fetch_start = stk_now_ms();
	rc = stk_git_resolve(&ro, &rs, &res, &e);
	if (!rc) {
		snprintf(path, sizeof(path), "%s/repo.git", r->dir);
		rc = srcctl_mkdir_p(r->dir) ? stk_err_errno(&e, errno, "cannot create %s", r->dir)
					    : 0;
		if (!rc)
			rc = stk_git_fetch(&ro, path, res.refname, res.commit, &repo, &e);
	}
	if (r->cfg->fetch_duration)
		stk_metrics_observe(r->cfg->fetch_duration, (const char *const[]){r->name, r->ns},
				    (double)(stk_now_ms() - fetch_start) / 1000.0);
	if (spec->auth.ssh_key.present) {
		if (!r->known_hosts)
			set_cond(r, STK_COND_HOST_KEY_VERIFIED, STK_CONDITION_FALSE,
				 STK_REASON_NOT_VERIFIED,
				 "no knownHosts given: host key not checked");
		else if (!rc)
			set_cond(r, STK_COND_HOST_KEY_VERIFIED, STK_CONDITION_TRUE,
				 STK_REASON_VERIFIED, "host key matches knownHosts");
		else if (!strcmp(e.reason, "HostKeyMismatch"))
			set_cond(r, STK_COND_HOST_KEY_VERIFIED, STK_CONDITION_FALSE,
				 STK_REASON_HOST_KEY_MISMATCH, e.message);
	}
	if (rc) {
		const char *reason = reason_for(&e);
		set_cond(r, STK_COND_FETCH_FAILED, STK_CONDITION_TRUE, reason, e.message);
		fail_conditions(r, reason, e.message, false);
		if (!ready_was(r, "False", reason))
			event(r, STK_EVENT_WARNING, STK_EVENT_FETCH_FAILED, e.message);
		patch_status(r, err);
		git_repository_free(repo);
		stk_err_set(err, rc, "%s", e.message);
		return rc; /* retried with backoff; the last artifact stays published */
	}

	snprintf(revision, sizeof(revision), "%s@sha1:%s", res.ref, res.commit);
	snprintf(path, sizeof(path), "%s/%s.tar.gz", r->dir, res.commit);
	if (r->gs.status.artifact.commit && !strcmp(r->gs.status.artifact.commit, res.commit) &&
	    r->gs.status.artifact.digest && access(path, R_OK) == 0 &&
	    srcctl_artifact_digest_file(path, digest, NULL) == 0 &&
	    !strcmp(digest, r->gs.status.artifact.digest)) {
		/* Same commit, artifact intact: nothing to do. */
	} else {
		struct srcctl_pack_opts po = SRCCTL_PACK_OPTS_INIT;
		char sidecar[1300];
		FILE *f;

		po.repo = repo;
		po.commit = res.commit;
		po.ignore = (const char *const *)spec->ignore.items;
		po.ignore_count = spec->ignore.len;
		po.dest_path = path;
		if (r->cfg->max_artifact_size)
			po.max_size = r->cfg->max_artifact_size;
		rc = srcctl_artifact_pack(&po, &pr, &e);
		if (rc) {
			fail_conditions(r, STK_REASON_ARTIFACT_FAILED, e.message,
					rc == STK_ETOOBIG);
			if (!ready_was(r, "False", STK_REASON_ARTIFACT_FAILED))
				event(r, STK_EVENT_WARNING, STK_EVENT_FETCH_FAILED, e.message);
			patch_status(r, err);
			git_repository_free(repo);
			stk_err_set(err, rc, "%s", e.message);
			return rc == STK_ETOOBIG ? 0 : rc;
		}
		snprintf(digest, sizeof(digest), "%s", pr.digest);
		/* The artifact server's ETag, kept next to the artifact. */
		snprintf(sidecar, sizeof(sidecar), "%s.sha256", path);
		f = fopen(sidecar, "w");
		if (f) {
			fprintf(f, "%s\n", digest);
			fclose(f);
		}
		new_artifact = true;
		gc_artifacts(r->dir, res.commit,
			     r->cfg->keep_artifacts > 0 ? r->cfg->keep_artifacts : 2);
	}
	git_repository_free(repo);

	if (new_artifact || !r->gs.status.artifact.commit ||
	    strcmp(r->gs.status.artifact.commit, res.commit) || !r->gs.status.artifact.revision ||
	    strcmp(r->gs.status.artifact.revision, revision)) {
		struct stk_artifact *a = &r->gs.status.artifact;
		struct stat st;
		char now[32], url[1500];
		stk_api_release(&stk_api_gitsource_status_type, &r->gs.status);
		a->present = true;
		a->revision = stk_strdup(revision);
		a->commit = stk_strdup(res.commit);
		a->ref = stk_strdup(res.ref);
		snprintf(url, sizeof(url), "%s/gitsource/%s/%s/%s.tar.gz", r->cfg->base_url, r->ns,
			 r->name, res.commit);
		a->url = stk_strdup(url);
		a->digest = stk_strdup(digest);
		if (stat(path, &st) == 0) {
			a->size.set = true;
			a->size.v = (int64_t)st.st_size;
			if (r->cfg->artifact_bytes)
				stk_metrics_set(r->cfg->artifact_bytes,
						(const char *const[]){r->name, r->ns},
						(double)st.st_size);
		}
		now_rfc3339(now);
		a->last_update_time = stk_strdup(now);
	}
	snprintf(msg, sizeof(msg), "stored artifact for revision '%s'", revision);
	stk_conditions_remove(&r->conds, STK_COND_FETCH_FAILED);
	set_cond(r, STK_COND_ARTIFACT_IN_STORAGE, STK_CONDITION_TRUE, STK_REASON_SUCCEEDED, msg);
	set_cond(r, STK_COND_READY, STK_CONDITION_TRUE, STK_REASON_SUCCEEDED, msg);
	stk_conditions_mark_idle(&r->conds);
	if (new_artifact) {
		snprintf(msg, sizeof(msg), "%s stored, %zu files", revision, pr.files);
		event(r, STK_EVENT_NORMAL, STK_EVENT_NEW_REVISION, msg);
	}
	return patch_status(r, err);
}

int srcctl_reconcile(const struct srcctl_config *cfg, const char *ns, const char *name,
		     uint64_t *requeue_after_ms, stk_err *err)
{
	struct rec r;
	stk_err e = STK_ERR_INIT;
	int rc;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.ns = ns;
	r.name = name;
	*requeue_after_ms = 0;
	snprintf(r.dir, sizeof(r.dir), "%s/%s/%s", cfg->storage_path, ns, name);
	rc = stk_kube_get(cfg->kube, &STK_GVR_GITSOURCES, ns, name, &r.raw, err);
	if (rc == STK_ENOTFOUND)
		return 0; /* deleted: the finalizer already removed its artifacts */
	if (rc)
		return rc;
	rc = stk_api_decode(&stk_api_gitsource_type, &r.gs, r.raw, "", &e);
	stk_json_int(r.raw, &r.generation, "metadata", "generation", NULL);
	if (r.gs.status.conditions.present)
		stk_conditions_copy(&r.conds, &r.gs.status.conditions.set);
	{
		stk_buf b = STK_BUF_INIT(1 << 20);
		stk_buf_puts(&b, "{\"status\":");
		stk_api_encode(&stk_api_gitsource_status_type, &r.gs.status, &b);
		stk_buf_putc(&b, '}');
		r.orig_status = stk_buf_detach(&b, NULL);
	}

	if (stk_json_str(r.raw, "metadata", "deletionTimestamp", NULL)) {
		nftw(r.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		if (cfg->mgr) {
			stk_metrics_family *extra[] = {cfg->artifact_bytes, cfg->fetch_duration,
						       NULL};
			stk_manager_forget(cfg->mgr, ns, name, extra);
		}
		rc = has_finalizer(&r) ? patch_finalizers(&r, false, err) : 0;
		goto out;
	}
	if (!has_finalizer(&r)) {
		rc = patch_finalizers(&r, true, err);
		if (rc)
			goto out;
		/* The patch changed the object: the next reconcile sees the finalizer. */
		*requeue_after_ms = 1;
		goto out;
	}
	if (!rc) {
		stk_api_default(&stk_api_gitsource_type, &r.gs);
		rc = stk_api_validate_object(STK_KIND_GITSOURCE, &r.gs, &e);
	}
	if (rc) {
		fail_conditions(&r, STK_REASON_INVALID_SPEC, e.message, true);
		if (!ready_was(&r, "False", STK_REASON_INVALID_SPEC))
			event(&r, STK_EVENT_WARNING, STK_EVENT_VALIDATION_FAILED, e.message);
		rc = patch_status(&r, err);
		goto out;
	}
	if (r.gs.spec.suspend.set && r.gs.spec.suspend.v) {
		set_cond(&r, STK_COND_READY, STK_CONDITION_FALSE, STK_REASON_SUSPENDED,
			 "reconciliation is suspended (spec.suspend)");
		stk_conditions_mark_idle(&r.conds);
		rc = patch_status(&r, err);
		goto out;
	}
	rc = reconcile_source(&r, requeue_after_ms, err);
out:
	rec_release(&r);
	return rc;
}
