#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine.h"
#include "gateway.h"
#include "source.h"
#include "stk/alloc.h"
#include "stk/api/api.h"
#include "stk/api/kinds.h"
#include "stk/api/pod.h"
#include "stk/health.h"
#include "stk/json.h"
#include "stk/log.h"
#include "stk/manager.h"
#include "stk/version.h"

#define AGENT_HISTORY		 10
#define AGENT_DEFAULT_PERIOD_S	 30
#define AGENT_RETRY_MS		 10000	/* after a failed sync, unless the period is shorter */
#define AGENT_COMMISSION_POLL_MS 2000	/* gwinfo polling until the gateway runs */
#define AGENT_DESIGNER_POLL_MS	 10000	/* designer policy "wait" */
#define AGENT_RETRY_MAX_MS	 300000 /* the same failure retried at most every 5 min */
#define AGENT_DRIFT_FILES	 20	/* drift paths reported */

struct agent_history {
	char time[32], commit[41], result[16], duration[32];
	uint64_t files_changed;
};

/* The report this agent keeps in stoker-status-<cr> (CONTRACTS.md), worker state. */
struct agent_report {
	const char *status; /* Pending|Syncing|Synced|Error|Blocked */
	char commit[41];
	char ref[256];
	char time[32], duration[32];
	uint64_t added, modified, deleted;
	stk_buf projects; /* JSON array */
	char scan[128];
	char error[1024];
	bool dry_run;
	stk_buf dry_diff; /* JSON object, or empty */
	bool designers_blocked;
	bool drift;
	stk_buf drift_files; /* JSON array */
	struct agent_history history[AGENT_HISTORY];
	size_t nhistory;
};

struct agent {
	const struct agent_config *cfg;
	stk_manager *m;
	stk_cache *metas;
	stk_kube *kube;
	stk_recorder *rec;
	struct agent_gateway gw;
	char meta_name[300], status_name[300];
	char state_path[4200];
	volatile sig_atomic_t stop;
	atomic_bool ready;
	stk_metrics_family *m_duration, *m_total, *m_files, *m_fetch, *m_scan, *m_last, *m_drift;

	/* Worker-thread state (one worker). */
	bool initial_done; /* the first sync of this process succeeded */
	bool gw_running;   /* /system/gwinfo said RUNNING once */
	bool unscanned;	   /* files changed with no successful scan since */
	bool restored;	   /* the previous report was read back */
	bool paused_logged;
	bool pod_warned;
	unsigned fail_count; /* the same error in a row: retries back off */
	char fail_msg[1024];
	char synced_commit[41];
	char tree[4200];    /* the tree of synced_commit */
	char *last_written; /* the report last patched in, to skip identical writes */
	struct agent_report rep;
};

/* ---- small helpers --------------------------------------------------------------- */

static void now_rfc3339(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void put_kv_str(stk_buf *b, const char *key, const char *v)
{
	stk_buf_printf(b, "\"%s\":", key);
	stk_buf_put_json_string(b, v ? v : "", v ? strlen(v) : 0);
	stk_buf_putc(b, ',');
}

static void paths_json(stk_buf *b, const struct agent_paths *p)
{
	stk_buf_putc(b, '[');
	for (size_t i = 0; i < p->len; i++) {
		if (i)
			stk_buf_putc(b, ',');
		stk_buf_put_json_string(b, p->items[i], strlen(p->items[i]));
	}
	stk_buf_putc(b, ']');
}

static const char *const *no_labels = NULL;

static void metric_result(struct agent *a, const char *result)
{
	const char *v[] = {result};
	stk_metrics_inc(a->m_total, v);
}

/* ---- the report ------------------------------------------------------------------- */

static void report_json(const struct agent *a, stk_buf *b)
{
	const struct agent_report *r = &a->rep;

	stk_buf_putc(b, '{');
	put_kv_str(b, "syncStatus", r->status);
	put_kv_str(b, "syncedCommit", r->commit);
	put_kv_str(b, "syncedRef", r->ref);
	put_kv_str(b, "syncProfile", a->cfg->sync_profile);
	put_kv_str(b, "lastSyncTime", r->time);
	put_kv_str(b, "lastSyncDuration", r->duration);
	stk_buf_printf(b,
		       "\"filesAdded\":%llu,\"filesModified\":%llu,\"filesDeleted\":%llu,"
		       "\"filesChanged\":%llu,",
		       (unsigned long long)r->added, (unsigned long long)r->modified,
		       (unsigned long long)r->deleted,
		       (unsigned long long)(r->added + r->modified + r->deleted));
	stk_buf_printf(b, "\"projectsSynced\":%s,", r->projects.len ? r->projects.ptr : "[]");
	put_kv_str(b, "agentVersion", STK_VERSION);
	put_kv_str(b, "lastScanResult", r->scan);
	put_kv_str(b, "errorMessage", r->error);
	stk_buf_printf(b, "\"dryRun\":%s,", r->dry_run ? "true" : "false");
	if (r->dry_run && r->dry_diff.len)
		stk_buf_printf(b, "\"dryRunDiff\":%s,", r->dry_diff.ptr);
	stk_buf_printf(b, "\"designerSessionsBlocked\":%s,",
		       r->designers_blocked ? "true" : "false");
	stk_buf_printf(b, "\"drift\":{\"detected\":%s,\"files\":%s},", r->drift ? "true" : "false",
		       r->drift_files.len ? r->drift_files.ptr : "[]");
	stk_buf_puts(b, "\"history\":[");
	for (size_t i = 0; i < r->nhistory; i++) {
		const struct agent_history *h = &r->history[i];
		stk_buf_printf(b,
			       "%s{\"time\":\"%s\",\"commit\":\"%s\",\"result\":\"%s\","
			       "\"filesChanged\":%llu,\"duration\":\"%s\"}",
			       i ? "," : "", h->time, h->commit, h->result,
			       (unsigned long long)h->files_changed, h->duration);
	}
	stk_buf_puts(b, "]}");
}

/*
 * Merge-patches this gateway's key of stoker-status-<cr>, only when the report changed
 * (so a fallback-timer sync that changed nothing writes nothing). Worker thread.
 */
static int report_write(struct agent *a)
{
	stk_buf val = STK_BUF_INIT(1 << 20), body = STK_BUF_INIT(2 << 20);
	struct stk_patch_opts po = STK_PATCH_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	int rc;

	report_json(a, &val);
	if (a->last_written && !strcmp(val.ptr, a->last_written)) {
		stk_buf_release(&val);
		return 0;
	}
	stk_buf_puts(&body, "{\"data\":{");
	stk_buf_put_json_string(&body, a->cfg->gateway_name, strlen(a->cfg->gateway_name));
	stk_buf_putc(&body, ':');
	stk_buf_put_json_string(&body, val.ptr, val.len);
	stk_buf_puts(&body, "}}");
	rc = stk_kube_patch(a->kube, &STK_GVR_CONFIGMAPS, a->cfg->pod_namespace, a->status_name,
			    STK_PATCH_MERGE, body.ptr, body.len, &po, NULL, &err);
	if (rc)
		stk_log_warn("cannot write the status report", "configmap", a->status_name, "error",
			     err.message, NULL);
	else {
		free(a->last_written);
		a->last_written = stk_buf_detach(&val, NULL);
	}
	stk_buf_release(&val);
	stk_buf_release(&body);
	return rc;
}

static void history_push(struct agent *a, const char *commit, const char *result, uint64_t changed,
			 const char *duration)
{
	struct agent_report *r = &a->rep;
	struct agent_history *h;

	if (r->nhistory == AGENT_HISTORY) {
		memmove(&r->history[0], &r->history[1],
			sizeof(r->history[0]) * (AGENT_HISTORY - 1));
		r->nhistory--;
	}
	h = &r->history[r->nhistory++];
	memset(h, 0, sizeof(*h));
	now_rfc3339(h->time);
	snprintf(h->commit, sizeof(h->commit), "%s", commit ? commit : "");
	snprintf(h->result, sizeof(h->result), "%s", result);
	snprintf(h->duration, sizeof(h->duration), "%s", duration);
	h->files_changed = changed;
}

/* Reads this gateway's previous report back (history, synced commit) after a restart. */
static void report_restore(struct agent *a)
{
	yajl_val cm = NULL;
	stk_err err = STK_ERR_INIT;
	struct stk_gateway_report rep;
	const char *text;

	a->restored = true;
	if (stk_kube_get(a->kube, &STK_GVR_CONFIGMAPS, a->cfg->pod_namespace, a->status_name, &cm,
			 &err))
		return;
	text = stk_json_str(cm, "data", a->cfg->gateway_name, NULL);
	memset(&rep, 0, sizeof(rep));
	if (text &&
	    !stk_api_decode_payload(&stk_api_gateway_report_type, &rep, text, strlen(text), NULL)) {
		const struct stk_history_entry *h = rep.history.items;
		for (size_t i = 0; i < rep.history.len && a->rep.nhistory < AGENT_HISTORY; i++) {
			struct agent_history *d = &a->rep.history[a->rep.nhistory++];
			snprintf(d->time, sizeof(d->time), "%s", h[i].time ? h[i].time : "");
			snprintf(d->commit, sizeof(d->commit), "%s",
				 h[i].commit ? h[i].commit : "");
			snprintf(d->result, sizeof(d->result), "%s",
				 h[i].result ? h[i].result : "");
			snprintf(d->duration, sizeof(d->duration), "%s",
				 h[i].duration ? h[i].duration : "");
			d->files_changed =
				h[i].files_changed.set ? (uint64_t)h[i].files_changed.v : 0;
		}
		if (rep.synced_commit)
			snprintf(a->rep.commit, sizeof(a->rep.commit), "%s", rep.synced_commit);
		if (rep.synced_ref)
			snprintf(a->rep.ref, sizeof(a->rep.ref), "%s", rep.synced_ref);
		if (rep.last_sync_time)
			snprintf(a->rep.time, sizeof(a->rep.time), "%s", rep.last_sync_time);
		stk_api_release(&stk_api_gateway_report_type, &rep);
	}
	yajl_tree_free(cm);
}

/* Records an event on the Stoker (best effort; the recorder folds repeats). */
static void agent_event(struct agent *a, enum stk_event_type type, const char *reason,
			const char *what, const char *detail)
{
	struct stk_event_ref ref = {"stoker.io/v1alpha1", "Stoker", a->cfg->pod_namespace,
				    a->cfg->cr_name,	  NULL,	    NULL};
	stk_err err = STK_ERR_INIT;

	if (stk_recorder_event(a->rec, &ref, type, reason, &err, "%s on gateway %s: %s", what,
			       a->cfg->gateway_name, detail ? detail : ""))
		stk_log_warn("cannot record event", "reason", reason, "error", err.message, NULL);
}

/* Sets the report to a failure, writes it, and records the event. */
static void report_failure(struct agent *a, const char *status, const char *reason,
			   const char *message, const char *commit)
{
	bool changed =
		strcmp(a->rep.status ? a->rep.status : "", status) || strcmp(a->rep.error, message);

	a->rep.status = status;
	snprintf(a->rep.error, sizeof(a->rep.error), "%s", message);
	if (changed && reason) {
		history_push(a, commit, "failure", 0, "0s");
		agent_event(a, STK_EVENT_WARNING, reason, "Sync failed", message);
	}
	if (changed)
		stk_log_error("sync failed", "gateway", a->cfg->gateway_name, "status", status,
			      "error", message, NULL);
	report_write(a);
}

/* ---- the metadata ------------------------------------------------------------------ */

struct agent_meta {
	const char *ref, *commit, *artifact_url, *artifact_digest, *git_url;
	bool paused;
	yajl_val excludes; /* JSON list, owned */
	struct stk_profile_entry entry;
	bool has_entry;
	int64_t gw_port;
	bool gw_tls, gw_set;
};

static void meta_release(struct agent_meta *m)
{
	yajl_tree_free(m->excludes);
	if (m->has_entry)
		stk_api_release(&stk_api_profile_entry_type, &m->entry);
}

static int meta_parse(struct agent *a, yajl_val cm, struct agent_meta *m, stk_err *err)
{
	yajl_val data = stk_json_obj(cm, "data", NULL), prof = NULL;
	const char *s;
	int rc = 0;

	memset(m, 0, sizeof(*m));
	if (!data)
		return stk_err_set(err, STK_EINVAL, "%s has no data", a->meta_name);
	m->ref = stk_json_str(data, "ref", NULL);
	m->commit = stk_json_str(data, "commit", NULL);
	m->artifact_url = stk_json_str(data, "artifactURL", NULL);
	m->artifact_digest = stk_json_str(data, "artifactDigest", NULL);
	m->git_url = stk_json_str(data, "gitURL", NULL);
	s = stk_json_str(data, "paused", NULL);
	m->paused = s && !strcmp(s, "true");
	s = stk_json_str(data, "excludePatterns", NULL);
	if (s && *s && (rc = stk_json_parse(&m->excludes, s, strlen(s), 1 << 20, err)))
		return stk_err_wrap(err, "%s excludePatterns", a->meta_name);
	if (a->cfg->sync_profile) {
		yajl_val all = NULL;
		s = stk_json_str(data, "profiles", NULL);
		if (s && (rc = stk_json_parse(&all, s, strlen(s), 8 << 20, err)))
			return stk_err_wrap(err, "%s profiles", a->meta_name);
		prof = all ? stk_json_obj(all, a->cfg->sync_profile, NULL) : NULL;
		if (prof) {
			rc = stk_api_decode(&stk_api_profile_entry_type, &m->entry, prof,
					    "profiles", err);
			if (!rc) {
				m->has_entry = true;
				stk_api_default(&stk_api_syncprofile_spec_type, &m->entry.spec);
			}
		}
		yajl_tree_free(all);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the pod -------------------------------------------------------------------------- */

struct agent_pod {
	yajl_val root; /* owned, may be NULL */
	const char *ref_override;
};

static const char *pod_label(const char *key, void *arg)
{
	struct agent_pod *p = arg;
	return p->root ? stk_json_str(p->root, "metadata", "labels", key, NULL) : NULL;
}

struct tv_ctx {
	struct agent_pod *pod;
	const struct stk_syncprofile_spec *spec;
};

static const char *tv_label(const char *key, void *arg)
{
	return pod_label(key, ((struct tv_ctx *)arg)->pod);
}

static const char *tv_var(const char *name, void *arg)
{
	const struct stk_syncprofile_spec *s = ((struct tv_ctx *)arg)->spec;

	for (size_t i = 0; s && i < s->vars.len; i++)
		if (!strcmp(s->vars.keys[i], name))
			return s->vars.values[i];
	return NULL;
}

/* ---- one sync ----------------------------------------------------------------------- */

/* Splits EXCLUDE_PATTERNS (comma list) into `out` (pointers into `buf`). */
static size_t split_excludes(const char *list, char *buf, size_t cap, const char **out, size_t max)
{
	size_t n = 0;
	char *tok, *next;

	if (!list)
		return 0;
	snprintf(buf, cap, "%s", list);
	for (tok = buf; tok && n < max; tok = next) {
		size_t l;
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		while (*tok == ' ')
			tok++;
		l = strlen(tok);
		while (l && tok[l - 1] == ' ')
			tok[--l] = '\0';
		if (*tok)
			out[n++] = tok;
	}
	return n;
}

static void format_duration(double s, char out[32])
{
	snprintf(out, 32, "%.3fs", s);
}

static uint64_t period_ms(const struct agent_meta *m)
{
	int64_t p = m->has_entry && m->entry.spec.sync_period.set ? m->entry.spec.sync_period.v
								  : AGENT_DEFAULT_PERIOD_S;
	return (uint64_t)(p > 0 ? p : AGENT_DEFAULT_PERIOD_S) * 1000;
}

static uint64_t retry_ms(const struct agent_meta *m)
{
	uint64_t p = period_ms(m);
	return p < AGENT_RETRY_MS ? p : AGENT_RETRY_MS;
}

/* Checks Designer sessions against the profile's policy; true when the sync may go on. */
static bool designers_allow(struct agent *a, const char *policy, uint64_t *requeue,
			    const struct agent_meta *m, const char *commit)
{
	stk_buf who = STK_BUF_INIT(1024), msg = STK_BUF_INIT(1400);
	stk_err err = STK_ERR_INIT;
	size_t n = 0;
	bool ok = true;
	int rc;

	if (!policy || !strcmp(policy, "proceed"))
		return true;
	rc = agent_gateway_designers(&a->gw, &n, &who, &err);
	if (rc)
		stk_buf_printf(&msg, "cannot list Designer sessions: %s", err.message);
	else if (n)
		stk_buf_printf(&msg, "%zu Designer session%s open (%s); policy %s", n,
			       n == 1 ? "" : "s", who.ptr, policy);
	if (rc || n) {
		ok = false;
		a->rep.designers_blocked = true;
		if (!strcmp(policy, "wait")) {
			bool changed = strcmp(a->rep.status ? a->rep.status : "", "Blocked") ||
				       strcmp(a->rep.error, msg.ptr);
			a->rep.status = "Blocked";
			snprintf(a->rep.error, sizeof(a->rep.error), "%s", msg.ptr);
			if (changed)
				agent_event(a, STK_EVENT_WARNING, "DesignerSessionsBlocked",
					    "Sync held", msg.ptr);
			report_write(a);
			*requeue = AGENT_DESIGNER_POLL_MS;
		} else {
			if (strcmp(a->rep.error, msg.ptr))
				agent_event(a, STK_EVENT_WARNING, "DesignerSessionsBlocked",
					    "Sync refused", msg.ptr);
			report_failure(a, "Error", NULL, msg.ptr, commit);
			*requeue = period_ms(m);
		}
	} else {
		a->rep.designers_blocked = false;
	}
	stk_buf_release(&who);
	stk_buf_release(&msg);
	return ok;
}

static int read_creds(const struct agent_config *c, struct stk_git_creds *cr, stk_err *err)
{
	char *key = NULL, *kh = NULL, *user = NULL, *pass = NULL, *tok = NULL;
	int rc;

	memset(cr, 0, sizeof(*cr));
	if ((rc = agent_source_read_secret(c->git_ssh_key_file, &key, err)) ||
	    (rc = agent_source_read_secret(c->git_known_hosts_file, &kh, err)) ||
	    (rc = agent_source_read_secret(c->git_username_file, &user, err)) ||
	    (rc = agent_source_read_secret(c->git_password_file, &pass, err)) ||
	    (rc = agent_source_read_secret(c->git_token_file, &tok, err))) {
		free(key);
		free(kh);
		free(user);
		free(pass);
		free(tok);
		return rc;
	}
	cr->ssh_key = key;
	cr->known_hosts = kh;
	cr->username = user;
	cr->password = pass;
	cr->token = tok;
	return 0;
}

static void wipe(const char *s)
{
	if (s) {
		explicit_bzero((char *)s, strlen(s));
		free((char *)s);
	}
}

static void free_creds(struct stk_git_creds *cr)
{
	wipe(cr->ssh_key);
	wipe(cr->known_hosts);
	wipe(cr->username);
	wipe(cr->password);
	wipe(cr->token);
}

/* Drift: files changed behind the agent's back since the last sync it made. */
static void check_drift(struct agent *a)
{
	struct agent_result dr;
	stk_err err = STK_ERR_INIT;
	uint64_t n;

	memset(&dr, 0, sizeof(dr));
	if (agent_drift(a->cfg->data_path, a->state_path, &dr, &err)) {
		agent_result_release(&dr);
		return;
	}
	n = dr.added.count + dr.modified.count + dr.deleted.count;
	stk_metrics_set(a->m_drift, no_labels, (double)n);
	stk_buf_reset(&a->rep.drift_files);
	if (n) {
		stk_buf diff = STK_BUF_INIT(1 << 16);
		size_t shown = 0;
		stk_buf_putc(&a->rep.drift_files, '[');
		for (int k = 0; k < 3; k++) {
			const struct agent_paths *p = k == 0   ? &dr.modified
						      : k == 1 ? &dr.deleted
							       : &dr.added;
			for (size_t i = 0; i < p->len && shown < AGENT_DRIFT_FILES; i++, shown++) {
				if (shown)
					stk_buf_putc(&a->rep.drift_files, ',');
				stk_buf_put_json_string(&a->rep.drift_files, p->items[i],
							strlen(p->items[i]));
				stk_buf_printf(&diff, "%s%s", shown ? ", " : "", p->items[i]);
			}
		}
		stk_buf_putc(&a->rep.drift_files, ']');
		stk_buf_printf(&diff, " (%llu modified, %llu deleted, %llu added); restoring",
			       (unsigned long long)dr.modified.count,
			       (unsigned long long)dr.deleted.count,
			       (unsigned long long)dr.added.count);
		if (!a->rep.drift)
			agent_event(a, STK_EVENT_WARNING, "DriftDetected", "Drift detected",
				    diff.ptr);
		stk_log_warn("drift detected", "gateway", a->cfg->gateway_name, "files", diff.ptr,
			     NULL);
		stk_buf_release(&diff);
	}
	a->rep.drift = n > 0;
	agent_result_release(&dr);
}

/*
 * The same failure again (a broken artifact, a refused token) is retried with doubling
 * delays, 10 s up to 5 min, instead of downloading it again every 10 s; any change of
 * the metadata still triggers a sync at once through the watch.
 */
static void retry_backoff(struct agent *a, uint64_t *requeue)
{
	uint64_t d = AGENT_RETRY_MS;

	if (!a->rep.status || strcmp(a->rep.status, "Error")) {
		a->fail_count = 0;
		a->fail_msg[0] = '\0';
		return;
	}
	if (strcmp(a->fail_msg, a->rep.error)) {
		snprintf(a->fail_msg, sizeof(a->fail_msg), "%s", a->rep.error);
		a->fail_count = 0;
	}
	for (unsigned i = 0; i < a->fail_count && d < AGENT_RETRY_MAX_MS; i++)
		d *= 2;
	a->fail_count++;
	if (d > AGENT_RETRY_MAX_MS)
		d = AGENT_RETRY_MAX_MS;
	if (*requeue < d)
		*requeue = d;
}

static int agent_reconcile(void *arg, const char *ns, const char *name, uint64_t *requeue,
			   stk_err *rerr)
{
	struct agent *a = arg;
	const struct agent_config *cfg = a->cfg;
	stk_obj *meta_obj = NULL;
	struct agent_meta m;
	struct agent_pod pod = {NULL, NULL};
	struct agent_source_req rq;
	struct stk_git_creds creds;
	struct agent_plan plan;
	struct agent_sync_opts so;
	struct agent_result res;
	struct stk_template_vars tv;
	struct tv_ctx tvc;
	stk_buf tree = STK_BUF_INIT(8192), msg = STK_BUF_INIT(2048);
	stk_err err = STK_ERR_INIT;
	char commit[41] = "", ordinal[32], exbuf[4096], dur[32];
	const char *pod_ex[64], *stk_ex[256], *ref, *target;
	size_t npod_ex, nstk_ex = 0;
	bool initial = !a->initial_done, plan_built = false;
	bool dry_run, creds_read = false;
	uint64_t changed;
	int rc;

	(void)ns;
	(void)name;
	(void)rerr;
	memset(&res, 0, sizeof(res));
	memset(&creds, 0, sizeof(creds));
	if (a->stop)
		return 0;
	if (!a->restored)
		report_restore(a);
	meta_obj = stk_cache_get(a->metas, cfg->pod_namespace, a->meta_name);
	if (!meta_obj) {
		a->rep.status = "Pending";
		snprintf(a->rep.error, sizeof(a->rep.error), "waiting for ConfigMap %s",
			 a->meta_name);
		report_write(a);
		*requeue = AGENT_DEFAULT_PERIOD_S * 1000;
		return 0;
	}
	if ((rc = meta_parse(a, meta_obj->root, &m, &err))) {
		report_failure(a, "Error", "SyncFailed", err.message, NULL);
		*requeue = AGENT_RETRY_MS;
		goto out_meta;
	}
	if (cfg->sync_profile && !m.has_entry) {
		stk_buf_printf(&msg, "SyncProfile '%s' is not in %s (missing or not Accepted)",
			       cfg->sync_profile, a->meta_name);
		report_failure(a, "Error", "SyncFailed", msg.ptr, NULL);
		*requeue = period_ms(&m);
		goto out_meta;
	}
	*requeue = period_ms(&m);
	if (m.paused || (m.has_entry && m.entry.spec.paused.v)) {
		if (!a->paused_logged)
			stk_log_info("paused: not syncing", "gateway", cfg->gateway_name, NULL);
		a->paused_logged = true;
		/*
		 * An agent restarted in its pod during a pause cannot do an initial sync, and
		 * staying unready would take the gateway out of its Service for the whole
		 * pause. The data its predecessor synced, complete, stands in for it; data a
		 * sync left between two commits does not.
		 */
		if (!atomic_load(&a->ready) && agent_data_settled(a->state_path)) {
			atomic_store(&a->ready, true);
			stk_log_info("paused: the files of an earlier complete sync are in place; "
				     "ready without syncing",
				     "gateway", cfg->gateway_name, NULL);
		}
		goto out_meta;
	}
	a->paused_logged = false;

	/* The pod: labels for templates, and the agent-side ref-override. */
	if (stk_kube_get(a->kube, &STK_GVR_PODS, cfg->pod_namespace, cfg->pod_name, &pod.root,
			 &err)) {
		if (!a->pod_warned)
			stk_log_warn("cannot read own pod; templates see no labels and "
				     "ref-override is not honoured",
				     "error", err.message, NULL);
		a->pod_warned = true;
	} else
		pod.ref_override = stk_api_pod_annotation(pod.root, STK_ANN_REF_OVERRIDE);
	if (pod.ref_override && !*pod.ref_override)
		pod.ref_override = NULL;

	memset(&rq, 0, sizeof(rq));
	rq.repo_path = cfg->repo_path;
	rq.git = cfg->source_mode == AGENT_SOURCE_GIT;
	rq.stop = &a->stop;
	ref = m.ref;
	if (pod.ref_override) {
		if (!rq.git) {
			stk_buf_printf(&msg,
				       "annotation %s=%s needs spec.agent.sourceMode git "
				       "(the artifact server only holds the Stoker's ref)",
				       STK_ANN_REF_OVERRIDE, pod.ref_override);
			report_failure(a, "Error", "SyncFailed", msg.ptr, NULL);
			goto out;
		}
		ref = pod.ref_override;
		target = NULL; /* resolved by the fetch */
	} else {
		target = m.has_entry ? m.entry.gate : m.commit;
		if (!target || !*target) {
			a->rep.status =
				m.has_entry && m.commit && *m.commit ? "Blocked" : "Pending";
			snprintf(a->rep.error, sizeof(a->rep.error), "%s",
				 m.has_entry && m.commit && *m.commit
					 ? "waiting for the profiles this one dependsOn to sync"
					 : "no commit resolved yet");
			report_write(a);
			goto out;
		}
	}
	if (rq.git && (!m.git_url || !*m.git_url)) {
		report_failure(a, "Error", "SyncFailed",
			       "SOURCE_MODE is git but the metadata has no gitURL "
			       "(spec.agent.sourceMode is not git on the Stoker)",
			       NULL);
		goto out;
	}
	if (!rq.git && target && m.commit && strcmp(target, m.commit) && m.artifact_url) {
		/* A gated profile syncs an older commit: same server, that commit's artifact. */
		const char *slash = strrchr(m.artifact_url, '/');
		stk_buf_printf(&tree, "%.*s/%s.tar.gz", (int)(slash ? slash - m.artifact_url : 0),
			       m.artifact_url, target);
		rq.url = stk_strdup(tree.ptr);
		rq.digest = NULL; /* the metadata's digest is the target's; trust the ETag */
		stk_buf_reset(&tree);
	} else {
		rq.url = m.artifact_url ? stk_strdup(m.artifact_url) : NULL;
		rq.digest = m.artifact_digest;
	}
	rq.token_file = cfg->source_token_file;
	rq.git_url = m.git_url;
	rq.ref = ref;
	rq.commit = target;
	if (rq.git) {
		if ((rc = read_creds(cfg, &creds, &err))) {
			report_failure(a, "Error", "FetchFailed", err.message, target);
			*requeue = retry_ms(&m);
			goto out;
		}
		creds_read = true;
		rq.creds = &creds;
	}
	if (!rq.git && !rq.url) {
		report_failure(a, "Error", "FetchFailed", "the metadata has no artifactURL",
			       target);
		goto out;
	}

	/* Fetch. */
	{
		uint64_t f0 = stk_now_ms();
		rc = agent_source_fetch(&rq, &tree, commit, &err);
		stk_metrics_observe(a->m_fetch, no_labels, (double)(stk_now_ms() - f0) / 1000.0);
	}
	free((char *)rq.url);
	rq.url = NULL;
	if (rc == STK_ECANCELED)
		goto out;
	if (rc) {
		stk_buf_printf(&msg, "fetch failed: %s", err.message);
		report_failure(a, "Error", "FetchFailed", msg.ptr, target);
		metric_result(a, "failure");
		*requeue = retry_ms(&m);
		goto out;
	}

	/* The plan. */
	tvc.pod = &pod;
	tvc.spec = m.has_entry ? &m.entry.spec : NULL;
	memset(&tv, 0, sizeof(tv));
	tv.gateway_name = cfg->gateway_name;
	tv.pod_name = cfg->pod_name;
	{
		const char *dash = strrchr(cfg->pod_name, '-');
		if (dash && dash[1] && strspn(dash + 1, "0123456789") == strlen(dash + 1)) {
			snprintf(ordinal, sizeof(ordinal), "%s", dash + 1);
			tv.pod_ordinal = ordinal;
		}
	}
	tv.ns = cfg->pod_namespace;
	tv.cr_name = cfg->cr_name;
	tv.ref = ref;
	tv.commit = commit;
	tv.label = tv_label;
	tv.var = tv_var;
	tv.arg = &tvc;
	npod_ex = split_excludes(cfg->exclude_patterns, exbuf, sizeof(exbuf), pod_ex, 64);
	if (m.excludes && YAJL_IS_ARRAY(m.excludes))
		for (size_t i = 0; i < m.excludes->u.array.len && nstk_ex < 256; i++)
			if (YAJL_IS_STRING(m.excludes->u.array.values[i]))
				stk_ex[nstk_ex++] = m.excludes->u.array.values[i]->u.string;
	rc = agent_plan_build(&plan, m.has_entry ? &m.entry.spec : NULL, cfg->service_path, &tv,
			      stk_ex, nstk_ex, pod_ex, npod_ex, &err);
	if (rc) {
		report_failure(a, "Error", "SyncFailed", err.message, commit);
		metric_result(a, "failure");
		goto out;
	}
	plan_built = true;
	dry_run = m.has_entry && m.entry.spec.dry_run.v;

	/* Is the gateway up? Until it is, it will scan on boot; afterwards, once, sync again. */
	if (!a->gw_running) {
		bool running = false;
		if (!agent_gateway_running(&a->gw, &running, &err) && running) {
			a->gw_running = true;
			if (a->initial_done)
				stk_log_info("gateway is running: post-commissioning sync",
					     "gateway", cfg->gateway_name, NULL);
		}
	}

	memset(&so, 0, sizeof(so));
	so.repo = tree.ptr;
	so.data = cfg->data_path;
	so.state = a->state_path;
	so.plan = &plan;
	so.stop = &a->stop;

	if (!dry_run && a->initial_done && !strcmp(commit, a->synced_commit))
		check_drift(a);

	/* Designer sessions: only matters when this sync would change something. */
	if (!dry_run && !initial && m.has_entry && m.entry.spec.designer_session_policy &&
	    strcmp(m.entry.spec.designer_session_policy, "proceed")) {
		struct agent_result pre;
		memset(&pre, 0, sizeof(pre));
		so.dry_run = true;
		rc = agent_sync(&so, &pre, &err);
		so.dry_run = false;
		changed = pre.added.count + pre.modified.count + pre.deleted.count;
		agent_result_release(&pre);
		if (!rc && changed &&
		    !designers_allow(a, m.entry.spec.designer_session_policy, requeue, &m, commit))
			goto out;
	} else {
		a->rep.designers_blocked = false;
	}

	if (!dry_run && strcmp(commit, a->synced_commit)) {
		a->rep.status = "Syncing";
		a->rep.error[0] = '\0';
		report_write(a);
	}
	so.dry_run = dry_run;
	rc = agent_sync(&so, &res, &err);
	format_duration(res.seconds, dur);
	stk_metrics_observe(a->m_duration, no_labels, res.seconds);
	if (rc == STK_ECANCELED) {
		a->rep.status = "Pending";
		snprintf(a->rep.error, sizeof(a->rep.error),
			 "sync interrupted by shutdown; it resumes when the agent restarts");
		report_write(a);
		goto out;
	}
	if (rc) {
		stk_buf_printf(&msg, "sync of %.12s failed: %s", commit, err.message);
		report_failure(a, "Error", "SyncFailed", msg.ptr, commit);
		metric_result(a, "failure");
		*requeue = retry_ms(&m);
		goto out;
	}
	changed = res.added.count + res.modified.count + res.deleted.count;

	if (dry_run) {
		stk_buf *d = &a->rep.dry_diff;
		a->rep.dry_run = true;
		stk_buf_reset(d);
		stk_buf_puts(d, "{\"added\":");
		paths_json(d, &res.added);
		stk_buf_puts(d, ",\"modified\":");
		paths_json(d, &res.modified);
		stk_buf_puts(d, ",\"deleted\":");
		paths_json(d, &res.deleted);
		stk_buf_printf(
			d, ",\"addedCount\":%llu,\"modifiedCount\":%llu,\"deletedCount\":%llu}",
			(unsigned long long)res.added.count, (unsigned long long)res.modified.count,
			(unsigned long long)res.deleted.count);
		/* Synced only when the data already matches; otherwise it is waiting. */
		a->rep.status = changed ? "Pending" : "Synced";
		if (!changed) {
			snprintf(a->rep.commit, sizeof(a->rep.commit), "%s", commit);
			snprintf(a->rep.ref, sizeof(a->rep.ref), "%s", ref ? ref : "");
		}
		a->rep.error[0] = '\0';
		if (changed)
			snprintf(a->rep.error, sizeof(a->rep.error),
				 "dry run: %llu files would change", (unsigned long long)changed);
		report_write(a);
		metric_result(a, "dry_run");
		goto done;
	}
	a->rep.dry_run = false;
	stk_buf_reset(&a->rep.dry_diff);

	/*
	 * Scan: never on the initial sync, and not while the gateway is not running yet (it
	 * scans on boot). Files changed while it was already running (an agent restarted
	 * next to a live gateway) are scanned by the next sync, which follows at once.
	 */
	if (changed)
		a->unscanned = a->gw_running;
	if (!initial && a->gw_running && a->unscanned) {
		stk_buf summary = STK_BUF_INIT(128);
		const char *v[1];
		int src = agent_gateway_scan(&a->gw, &summary, &err);
		snprintf(a->rep.scan, sizeof(a->rep.scan), "%s", summary.ptr ? summary.ptr : "");
		v[0] = src ? "failure" : "success";
		stk_metrics_inc(a->m_scan, v);
		stk_buf_release(&summary);
		if (src == STK_ECANCELED)
			goto out;
		if (src) {
			stk_buf_printf(&msg,
				       "files synced at %.12s but the gateway scan failed: %s",
				       commit, err.message);
			snprintf(a->rep.commit, sizeof(a->rep.commit), "%s", commit);
			report_failure(a, "Error", "SyncFailed", msg.ptr, commit);
			metric_result(a, "failure");
			*requeue = retry_ms(&m);
			goto done;
		}
		a->unscanned = false;
	} else if (changed && initial) {
		snprintf(a->rep.scan, sizeof(a->rep.scan), "skipped (initial sync)");
	} else if (changed) {
		snprintf(a->rep.scan, sizeof(a->rep.scan), "pending (gateway not running yet)");
	}
	if (initial && a->gw_running && a->unscanned)
		*requeue = 1; /* the gateway was already up: the next sync scans */
	else if (!a->gw_running)
		*requeue = AGENT_COMMISSION_POLL_MS;

	if (changed || strcmp(commit, a->synced_commit) ||
	    strcmp(a->rep.status ? a->rep.status : "", "Synced")) {
		stk_buf_reset(&a->rep.projects);
		paths_json(&a->rep.projects, &res.projects);
		a->rep.added = res.added.count;
		a->rep.modified = res.modified.count;
		a->rep.deleted = res.deleted.count;
		now_rfc3339(a->rep.time);
		snprintf(a->rep.duration, sizeof(a->rep.duration), "%s", dur);
		history_push(a, commit, "success", changed, dur);
		stk_buf_printf(&msg, "%.12s (%llu added, %llu modified, %llu deleted) in %s",
			       commit, (unsigned long long)res.added.count,
			       (unsigned long long)res.modified.count,
			       (unsigned long long)res.deleted.count, dur);
		agent_event(a, STK_EVENT_NORMAL, "SyncCompleted", "Sync completed", msg.ptr);
		stk_log_info("synced", "gateway", cfg->gateway_name, "commit", commit, "summary",
			     msg.ptr, NULL);
		stk_metrics_add(a->m_files, no_labels, (double)changed);
	}
	a->rep.status = "Synced";
	a->rep.error[0] = '\0';
	snprintf(a->rep.commit, sizeof(a->rep.commit), "%s", commit);
	snprintf(a->rep.ref, sizeof(a->rep.ref), "%s", ref ? ref : "");
	if (a->rep.drift && !changed)
		a->rep.drift = false; /* a sync that had to change nothing saw no drift */
	report_write(a);
	metric_result(a, changed ? "success" : "noop");
	stk_metrics_set(a->m_last, no_labels, (double)time(NULL));
	snprintf(a->synced_commit, sizeof(a->synced_commit), "%s", commit);
	snprintf(a->tree, sizeof(a->tree), "%s", tree.ptr);
	agent_source_prune(cfg->repo_path, a->tree, NULL);
done:
	if (!a->initial_done) {
		a->initial_done = true;
		atomic_store(&a->ready, true);
		stk_log_info("initial sync done", "gateway", cfg->gateway_name, "commit", commit,
			     NULL);
	}
out:
	if (plan_built)
		agent_plan_release(&plan);
	agent_result_release(&res);
	free((char *)rq.url);
	if (creds_read)
		free_creds(&creds);
	yajl_tree_free(pod.root);
out_meta:
	meta_release(&m);
	stk_obj_unref(meta_obj);
	stk_buf_release(&tree);
	stk_buf_release(&msg);
	retry_backoff(a, requeue);
	return 0;
}

/* ---- wiring ------------------------------------------------------------------------ */

static void on_meta(stk_obj *obj, void *arg)
{
	struct agent *a = arg;
	stk_manager_enqueue(a->m, stk_json_str(obj->root, "metadata", "namespace", NULL),
			    stk_json_str(obj->root, "metadata", "name", NULL));
}

static void on_meta_update(stk_obj *old, stk_obj *cur, void *arg)
{
	(void)old;
	on_meta(cur, arg);
}

static bool check_synced_once(void *arg, stk_buf *msg)
{
	struct agent *a = arg;

	if (atomic_load(&a->ready))
		return true;
	stk_buf_puts(msg, "initial sync not done yet");
	return false;
}

static void on_shutdown(void *arg)
{
	struct agent *a = arg;

	/* The sync in progress finishes the file it is writing, reports, and returns. */
	a->stop = 1;
	stk_loop_shutdown_done(stk_manager_loop(a->m));
}

int agent_run(const struct agent_options *o)
{
	const struct agent_config *cfg = o->cfg;
	struct agent *a = stk_calloc(1, sizeof(*a));
	struct stk_daemon_opts d;
	struct stk_manager_opts mo = {0};
	struct stk_informer_opts io = STK_INFORMER_OPTS_INIT;
	struct stk_informer_handler h = {on_meta, on_meta_update, NULL, NULL};
	char field[400], *nsl[1];
	stk_err err = STK_ERR_INIT;
	static const double dur_buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,
					     2.5,  5,	 10,  30,   60,	 300};
	static const char *const result_label[] = {"result", NULL};
	stk_metrics *mx;
	int rc;

	a->cfg = cfg;
	snprintf(a->meta_name, sizeof(a->meta_name), "%s%s", STK_CM_METADATA_PREFIX, cfg->cr_name);
	snprintf(a->status_name, sizeof(a->status_name), "%s%s", STK_CM_STATUS_PREFIX,
		 cfg->cr_name);
	if (cfg->state_path)
		snprintf(a->state_path, sizeof(a->state_path), "%s", cfg->state_path);
	else
		snprintf(a->state_path, sizeof(a->state_path), "%s/.stoker-state", cfg->repo_path);
	stk_buf_init(&a->rep.projects, 1 << 16);
	stk_buf_init(&a->rep.dry_diff, 1 << 20);
	stk_buf_init(&a->rep.drift_files, 1 << 16);
	a->rep.status = "Pending";
	agent_gateway_init(&a->gw, cfg->gateway_host, cfg->gateway_port, cfg->gateway_tls,
			   cfg->gateway_ca_file, cfg->api_key_file);
	a->gw.stop = &a->stop;
	stk_git_init();

	memset(&d, 0, sizeof(d));
	d.kubeconfig = cfg->kubeconfig;
	d.leader_elect = false;
	d.metrics_addr = o->metrics_addr;
	d.health_addr = o->health_addr;
	nsl[0] = (char *)cfg->pod_namespace;
	d.watch_namespaces.items = nsl;
	d.watch_namespaces.len = 1;
	d.concurrent = 1; /* one sync at a time; the queue keeps at most one more waiting */
	d.log_level = o->log_level;
	mo.name = "stoker-agent";
	mo.kind = "Gateway";
	mo.daemon = &d;
	mo.identity = cfg->pod_name;
	mo.reconcile = agent_reconcile;
	mo.arg = a;
	if ((rc = stk_manager_new(&a->m, &mo, &err)))
		goto fail;
	a->kube = stk_manager_kube(a->m);
	{
		/* Events come from the agent, named after the pod (CONTRACTS.md). */
		struct stk_recorder_opts ro = STK_RECORDER_OPTS_INIT;
		ro.component = "stoker-agent";
		ro.instance = cfg->pod_name;
		if ((rc = stk_recorder_new(&a->rec, a->kube, &ro, &err)))
			goto fail;
	}
	snprintf(field, sizeof(field), "metadata.name=%s", a->meta_name);
	io.gvr = &STK_GVR_CONFIGMAPS;
	io.field_selector = field;
	h.arg = a;
	if ((rc = stk_manager_cache(a->m, &io, &h, &a->metas, &err)))
		goto fail;
	/* One sync once the cache is synced, so a missing metadata ConfigMap is reported. */
	stk_manager_enqueue(a->m, cfg->pod_namespace, a->meta_name);
	if ((rc = stk_health_add(stk_manager_health(a->m), "initial-sync",
				 STK_HEALTH_READY | STK_HEALTH_STARTUP, check_synced_once, a,
				 &err)))
		goto fail;
	mx = stk_manager_metrics(a->m);
	a->m_duration = stk_metrics_histogram(mx, "stoker_agent_sync_duration_seconds",
					      "Duration of sync engine runs.", NULL, dur_buckets,
					      sizeof(dur_buckets) / sizeof(dur_buckets[0]));
	a->m_fetch = stk_metrics_histogram(mx, "stoker_agent_fetch_duration_seconds",
					   "Duration of content fetches (download and unpack, or "
					   "git fetch and export).",
					   NULL, dur_buckets,
					   sizeof(dur_buckets) / sizeof(dur_buckets[0]));
	a->m_total = stk_metrics_counter(mx, "stoker_agent_sync_total",
					 "Syncs by result: success, noop, dry_run, failure.",
					 result_label);
	a->m_files = stk_metrics_counter(mx, "stoker_agent_files_changed",
					 "Files added, modified or deleted on the gateway.", NULL);
	a->m_scan = stk_metrics_counter(mx, "stoker_agent_scan_total",
					"Gateway scan requests by result.", result_label);
	a->m_last = stk_metrics_gauge(mx, "stoker_agent_last_sync_timestamp_seconds",
				      "Unix time of the last successful sync.", NULL);
	a->m_drift = stk_metrics_gauge(mx, "stoker_agent_drift_files",
				       "Files that differed from the last sync when last checked.",
				       NULL);
	stk_loop_on_shutdown(stk_manager_loop(a->m), on_shutdown, a);
	stk_log_info("agent starting", "gateway", cfg->gateway_name, "cr", cfg->cr_name, "profile",
		     cfg->sync_profile ? cfg->sync_profile : "", "mode",
		     cfg->source_mode == AGENT_SOURCE_GIT ? "git" : "artifact", NULL);
	rc = stk_manager_run(a->m);
	goto out;
fail:
	stk_log_error("cannot start", "error", err.message, NULL);
	rc = 1;
out:
	stk_recorder_free(a->rec);
	stk_manager_free(a->m);
	stk_buf_release(&a->rep.projects);
	stk_buf_release(&a->rep.dry_diff);
	stk_buf_release(&a->rep.drift_files);
	free(a->last_written);
	free(a);
	return rc;
}
