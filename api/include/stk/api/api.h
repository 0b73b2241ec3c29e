/*
 * The Stoker API in C: decoding, encoding, defaulting and validation of the four kinds
 * (mirroring config/crd, including its CEL rules, since an older API server may not
 * enforce CEL), and the payloads of the metadata and status ConfigMaps (DESIGN.md §4).
 */
#ifndef STK_API_API_H
#define STK_API_API_H

#include "stk/api/codec.h"
#include "stk/api/conditions.h"
#include "stk/api/kinds.h"
#include "stk/api/pod.h"
#include "stk/api/types.h"

/* The field table of a kind's top-level object. */
const struct stk_api_type *stk_api_type_of(enum stk_api_kind kind);

/*
 * Parses JSON text and decodes it into `out` (a zeroed struct of the kind's type; use
 * stk_api_release(stk_api_type_of(kind), out) afterwards, also on failure). STK_EPARSE
 * with the path of the offending field, STK_ETOOBIG past STK_LIMIT_API_BODY. Any thread.
 */
int stk_api_decode_json(enum stk_api_kind kind, void *out, const char *json, size_t len,
			stk_err *err);

/*
 * Validates a decoded object the way the CRD schema does, CEL rules included:
 * required fields, enums, bounds, patterns, then the kind's own rules (exactly one ref
 * kind; sourceRef xor git; relative paths without "..", no credentials in URLs, vars
 * keys are identifiers, matchLabels only with name "*", knownHosts needs sshKey). The
 * message names the field. 0 or STK_EINVAL. Any thread.
 */
int stk_api_validate_object(enum stk_api_kind kind, const void *obj, stk_err *err);

/* Individual rules, shared with controllers and the agent. */
bool stk_api_url_has_credentials(const char *url);
/* A relative path without a ".." segment (the mapping path rule). */
bool stk_api_path_is_safe(const char *path);
bool stk_api_is_identifier(const char *s);

/* ---- ConfigMap payloads (DESIGN.md §4, CONTRACTS.md) ------------------------------- */

/* `profiles` of stoker-metadata-<cr>: one entry per profile name. */
struct stk_profile_entry {
	bool present;
	char *gate; /* the commit this profile's gateways may sync ("" none yet) */
	struct stk_syncprofile_spec spec;
};

/* `gateway` of stoker-metadata-<cr>. */
struct stk_gateway_info {
	bool present;
	struct stk_opt_i64 port;
	struct stk_opt_bool tls;
};

struct stk_diff_paths {
	bool present;
	struct stk_api_strings added, modified, deleted; /* at most 100 paths each */
	struct stk_opt_i64 added_count, modified_count, deleted_count;
};

struct stk_history_entry {
	bool present;
	char *time, *commit, *result;
	struct stk_opt_i64 files_changed;
	char *duration;
};

/* One gateway's value in stoker-status-<cr>. */
struct stk_gateway_report {
	bool present;
	char *sync_status, *synced_commit, *synced_ref, *sync_profile;
	char *last_sync_time, *last_sync_duration;
	struct stk_opt_i64 files_added, files_modified, files_deleted, files_changed;
	struct stk_api_strings projects_synced;
	char *agent_version, *last_scan_result, *error_message;
	struct stk_opt_bool dry_run;
	struct stk_diff_paths dry_run_diff;
	struct stk_opt_bool designer_sessions_blocked;
	struct stk_drift drift;
	struct stk_api_objects history; /* struct stk_history_entry, at most 10 */
};

extern const struct stk_api_type stk_api_profile_entry_type;
extern const struct stk_api_type stk_api_gateway_info_type;
extern const struct stk_api_type stk_api_gateway_report_type;

/*
 * True when a gateway's report says Synced at `commit` (a non-empty SHA): the one rule
 * for "synced" that the sync-controller's gates and the profile-controller's
 * DependenciesMet share. Any thread.
 */
bool stk_api_report_synced_at(const struct stk_gateway_report *rep, const char *commit);

/*
 * The ref a GitSource's spec.ref names (exactly one field is set; NULL when none is), and
 * in *kind (when not NULL) the field holding it: "branch", "tag", "name", "commit" or
 * "semver" ("" when none). Any thread.
 */
const char *stk_api_gitsource_ref(const struct stk_gitsource_ref *ref, const char **kind);

/* Parses one payload value (JSON text) with `t`. As stk_api_decode_json. */
int stk_api_decode_payload(const struct stk_api_type *t, void *out, const char *json, size_t len,
			   stk_err *err);

#endif
