#include "stk/api/api.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "stk/json.h"
#include "stk/limits.h"
#include "table.h"

const struct stk_api_type *stk_api_type_of(enum stk_api_kind kind)
{
	switch (kind) {
	case STK_KIND_GITSOURCE:
		return &stk_api_gitsource_type;
	case STK_KIND_SYNCPROFILE:
		return &stk_api_syncprofile_type;
	case STK_KIND_STOKER:
		return &stk_api_stoker_type;
	case STK_KIND_ALERT:
		return &stk_api_alert_type;
	case STK_KIND_COUNT:
		break;
	}
	return NULL;
}

int stk_api_decode_payload(const struct stk_api_type *t, void *out, const char *json, size_t len,
			   stk_err *err)
{
	yajl_val v = NULL;
	int rc = stk_json_parse(&v, json, len, STK_LIMIT_API_BODY, err);

	if (rc)
		return rc;
	rc = stk_api_decode(t, out, v, "", err);
	yajl_tree_free(v);
	return rc;
}

int stk_api_decode_json(enum stk_api_kind kind, void *out, const char *json, size_t len,
			stk_err *err)
{
	const struct stk_api_type *t = stk_api_type_of(kind);

	if (!t)
		return stk_err_set(err, STK_EINVAL, "unknown kind %d", (int)kind);
	return stk_api_decode_payload(t, out, json, len, err);
}

bool stk_api_url_has_credentials(const char *url)
{
	const char *scheme_end = strstr(url, "://");
	const char *auth, *end, *at, *colon;

	if (!scheme_end)
		return false; /* scp-like "git@host:path": a user name, not a credential */
	auth = scheme_end + 3;
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(end - auth));
	if (!at)
		return false;
	/* Any user@ on http(s)/git is a token in disguise; ssh may name a user, not a password. */
	if (!strncmp(url, "ssh://", 6)) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		return colon != NULL;
	}
	return true;
}

bool stk_api_path_is_safe(const char *path)
{
	const char *p = path;

	if (path[0] == '/')
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += n;
		if (*p == '/')
			p++;
	}
	return true;
}

bool stk_api_is_identifier(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static int api_check_auth(const struct stk_git_auth *a, const char *path, stk_err *err)
{
	if (a->present && a->known_hosts.present && !a->ssh_key.present)
		return stk_err_set(err, STK_EINVAL, "%s: knownHosts requires sshKey", path);
	return 0;
}

static int api_check_url(const char *url, const char *path, const char *auth, stk_err *err)
{
	if (url && stk_api_url_has_credentials(url))
		return stk_err_set(err, STK_EINVAL, "%s: url must not embed credentials; use %s",
				   path, auth);
	return 0;
}

static int api_check_path(const char *p, const char *field, const char *where, stk_err *err)
{
	if (p && !stk_api_path_is_safe(p))
		return stk_err_set(err, STK_EINVAL,
				   "%s: %s must be a relative path without '..' segments", where,
				   field);
	return 0;
}

static int api_validate_gitsource(const struct stk_gitsource *o, stk_err *err)
{
	const struct stk_gitsource_ref *r = &o->spec.ref;
	int n = !!r->branch + !!r->tag + !!r->semver + !!r->commit + !!r->name;

	if (n != 1)
		return stk_err_set(err, STK_EINVAL,
				   "spec.ref: exactly one of branch, tag, semver, commit or name "
				   "must be set");
	if (api_check_url(o->spec.url, "spec.url", "spec.auth", err) ||
	    api_check_auth(&o->spec.auth, "spec.auth", err))
		return STK_EINVAL;
	return 0;
}

static int api_validate_syncprofile(const struct stk_syncprofile *o, stk_err *err)
{
	const struct stk_syncprofile_spec *s = &o->spec;
	char where[64];

	for (size_t i = 0; i < s->mappings.len; i++) {
		const struct stk_mapping *m = (const struct stk_mapping *)s->mappings.items + i;
		snprintf(where, sizeof(where), "spec.mappings[%zu]", i);
		if (api_check_path(m->source, "source", where, err) ||
		    api_check_path(m->destination, "destination", where, err))
			return STK_EINVAL;
	}
	if (s->deployment_mode.present &&
	    api_check_path(s->deployment_mode.source, "source", "spec.deploymentMode", err))
		return STK_EINVAL;
	for (size_t i = 0; i < s->vars.len; i++)
		if (!stk_api_is_identifier(s->vars.keys[i]))
			return stk_err_set(
				err, STK_EINVAL,
				"spec.vars: vars keys must be identifiers (letters, "
				"digits, underscore; not starting with a digit): \"%.60s\"",
				s->vars.keys[i]);
	return 0;
}

static int api_validate_stoker(const struct stk_stoker *o, stk_err *err)
{
	const struct stk_stoker_spec *s = &o->spec;

	if (s->source_ref.present == s->git.present)
		return stk_err_set(err, STK_EINVAL,
				   "spec: exactly one of spec.sourceRef or spec.git must be set");
	if (s->git.present && (api_check_url(s->git.repo, "spec.git.repo", "spec.git.auth", err) ||
			       api_check_auth(&s->git.auth, "spec.git.auth", err)))
		return STK_EINVAL;
	return 0;
}

static int api_validate_alert(const struct stk_alert *o, stk_err *err)
{
	const struct stk_alert_spec *s = &o->spec;

	for (size_t i = 0; i < s->event_sources.len; i++) {
		const struct stk_event_source *e =
			(const struct stk_event_source *)s->event_sources.items + i;
		if (e->match_labels.present && (!e->name || strcmp(e->name, "*")))
			return stk_err_set(err, STK_EINVAL,
					   "spec.eventSources[%zu]: matchLabels may only be used "
					   "with name '*'",
					   i);
	}
	return 0;
}

int stk_api_validate_object(enum stk_api_kind kind, const void *obj, stk_err *err)
{
	const struct stk_api_type *t = stk_api_type_of(kind);
	int rc;

	if (!t)
		return stk_err_set(err, STK_EINVAL, "unknown kind %d", (int)kind);
	rc = stk_api_validate(t, obj, "", err);
	if (rc)
		return rc;
	switch (kind) {
	case STK_KIND_GITSOURCE:
		return api_validate_gitsource(obj, err);
	case STK_KIND_SYNCPROFILE:
		return api_validate_syncprofile(obj, err);
	case STK_KIND_STOKER:
		return api_validate_stoker(obj, err);
	case STK_KIND_ALERT:
		return api_validate_alert(obj, err);
	case STK_KIND_COUNT:
		break;
	}
	return 0;
}

/* ---- ConfigMap payloads ----------------------------------------------------------- */

static const struct stk_api_field profile_entry_fields[] = {
	FLD("gate", STK_API_STRING, struct stk_profile_entry, gate),
	FLD("spec", STK_API_OBJECT, struct stk_profile_entry, spec,
	    .sub = &stk_api_syncprofile_spec_type, .flags = STK_API_REQUIRED),
};
const struct stk_api_type stk_api_profile_entry_type =
	TYPE("ProfileEntry", struct stk_profile_entry, profile_entry_fields);

static const struct stk_api_field gateway_info_fields[] = {
	FLD("port", STK_API_INT, struct stk_gateway_info, port, .flags = STK_API_MIN | STK_API_MAX,
	    .min = 1, .max = 65535),
	FLD("tls", STK_API_BOOL, struct stk_gateway_info, tls),
};
const struct stk_api_type stk_api_gateway_info_type =
	TYPE("GatewayInfo", struct stk_gateway_info, gateway_info_fields);

static const struct stk_api_field diff_paths_fields[] = {
	FLD("added", STK_API_STRINGS, struct stk_diff_paths, added, .flags = STK_API_MAX,
	    .max = 100),
	FLD("modified", STK_API_STRINGS, struct stk_diff_paths, modified, .flags = STK_API_MAX,
	    .max = 100),
	FLD("deleted", STK_API_STRINGS, struct stk_diff_paths, deleted, .flags = STK_API_MAX,
	    .max = 100),
	FLD("addedCount", STK_API_INT, struct stk_diff_paths, added_count),
	FLD("modifiedCount", STK_API_INT, struct stk_diff_paths, modified_count),
	FLD("deletedCount", STK_API_INT, struct stk_diff_paths, deleted_count),
};
static const struct stk_api_type diff_paths_type =
	TYPE("DiffPaths", struct stk_diff_paths, diff_paths_fields);

static const struct stk_api_field history_fields[] = {
	FLD("time", STK_API_STRING, struct stk_history_entry, time),
	FLD("commit", STK_API_STRING, struct stk_history_entry, commit),
	FLD("result", STK_API_STRING, struct stk_history_entry, result),
	FLD("filesChanged", STK_API_INT, struct stk_history_entry, files_changed),
	FLD("duration", STK_API_STRING, struct stk_history_entry, duration),
};
static const struct stk_api_type history_type =
	TYPE("HistoryEntry", struct stk_history_entry, history_fields);

static const char *const report_statuses[] = {"Pending", "Syncing", "Synced",
					      "Error",	 "Blocked", NULL};

static const struct stk_api_field drift_report_fields[] = {
	FLD("detected", STK_API_BOOL, struct stk_drift, detected),
	FLD("files", STK_API_STRINGS, struct stk_drift, files),
};
static const struct stk_api_type drift_report_type =
	TYPE("Drift", struct stk_drift, drift_report_fields);

static const struct stk_api_field gateway_report_fields[] = {
	FLD("syncStatus", STK_API_STRING, struct stk_gateway_report, sync_status,
	    .enums = report_statuses),
	FLD("syncedCommit", STK_API_STRING, struct stk_gateway_report, synced_commit),
	FLD("syncedRef", STK_API_STRING, struct stk_gateway_report, synced_ref),
	FLD("syncProfile", STK_API_STRING, struct stk_gateway_report, sync_profile),
	FLD("lastSyncTime", STK_API_STRING, struct stk_gateway_report, last_sync_time),
	FLD("lastSyncDuration", STK_API_STRING, struct stk_gateway_report, last_sync_duration),
	FLD("filesAdded", STK_API_INT, struct stk_gateway_report, files_added),
	FLD("filesModified", STK_API_INT, struct stk_gateway_report, files_modified),
	FLD("filesDeleted", STK_API_INT, struct stk_gateway_report, files_deleted),
	FLD("filesChanged", STK_API_INT, struct stk_gateway_report, files_changed),
	FLD("projectsSynced", STK_API_STRINGS, struct stk_gateway_report, projects_synced),
	FLD("agentVersion", STK_API_STRING, struct stk_gateway_report, agent_version),
	FLD("lastScanResult", STK_API_STRING, struct stk_gateway_report, last_scan_result),
	FLD("errorMessage", STK_API_STRING, struct stk_gateway_report, error_message),
	FLD("dryRun", STK_API_BOOL, struct stk_gateway_report, dry_run),
	FLD("dryRunDiff", STK_API_OBJECT, struct stk_gateway_report, dry_run_diff,
	    .sub = &diff_paths_type),
	FLD("designerSessionsBlocked", STK_API_BOOL, struct stk_gateway_report,
	    designer_sessions_blocked),
	FLD("drift", STK_API_OBJECT, struct stk_gateway_report, drift, .sub = &drift_report_type),
	FLD("history", STK_API_OBJECTS, struct stk_gateway_report, history, .sub = &history_type,
	    .flags = STK_API_MAX, .max = 10),
};
const struct stk_api_type stk_api_gateway_report_type =
	TYPE("GatewayReport", struct stk_gateway_report, gateway_report_fields);

const char *stk_api_gitsource_ref(const struct stk_gitsource_ref *ref, const char **kind)
{
	static const char *const kinds[] = {"branch", "tag", "name", "commit", "semver"};
	const char *const vals[] = {ref->branch, ref->tag, ref->name, ref->commit, ref->semver};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (vals[i]) {
			if (kind)
				*kind = kinds[i];
			return vals[i];
		}
	}
	if (kind)
		*kind = "";
	return NULL;
}

bool stk_api_report_synced_at(const struct stk_gateway_report *rep, const char *commit)
{
	return commit && *commit && rep->sync_status && !strcmp(rep->sync_status, "Synced") &&
	       rep->synced_commit && !strcmp(rep->synced_commit, commit);
}
