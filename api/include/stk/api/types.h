/*
 * C types of the four Stoker kinds (DESIGN.md §3), described by field tables for the
 * generic codec (codec.h). Every nested struct starts with `bool present`.
 */
#ifndef STK_API_TYPES_H
#define STK_API_TYPES_H

#include "stk/api/codec.h"

/* ---- shared shapes ----------------------------------------------------------------- */

struct stk_secret_key_ref {
	bool present;
	char *name;
	char *key;
};

struct stk_secret_ref {
	bool present;
	char *name;
};

struct stk_git_auth_key {
	bool present;
	struct stk_secret_key_ref secret_ref;
};

struct stk_git_auth_basic {
	bool present;
	struct stk_secret_ref secret_ref;
};

struct stk_git_auth {
	bool present;
	struct stk_git_auth_key ssh_key;
	struct stk_git_auth_key known_hosts;
	struct stk_git_auth_key token;
	struct stk_git_auth_basic basic;
};

/* apiVersion, kind and metadata of every object; metadata is kept whole. */
#define STK_API_OBJECT_HEAD \
	bool present;       \
	char *api_version;  \
	char *kind;         \
	yajl_val metadata

/* ---- GitSource --------------------------------------------------------------------- */

struct stk_gitsource_ref {
	bool present;
	char *branch, *tag, *semver, *commit, *name;
};

struct stk_gitsource_spec {
	bool present;
	char *url;
	struct stk_gitsource_ref ref;
	char *interval;
	char *timeout;
	struct stk_git_auth auth;
	struct stk_api_strings ignore;
	struct stk_opt_bool suspend;
};

struct stk_artifact {
	bool present;
	char *revision, *commit, *ref, *url, *digest;
	struct stk_opt_i64 size;
	char *last_update_time;
};

struct stk_gitsource_status {
	bool present;
	struct stk_opt_i64 observed_generation;
	char *last_handled_reconcile_at;
	struct stk_artifact artifact;
	struct stk_api_conditions conditions;
};

struct stk_gitsource {
	STK_API_OBJECT_HEAD;
	struct stk_gitsource_spec spec;
	struct stk_gitsource_status status;
};

/* ---- SyncProfile ------------------------------------------------------------------- */

struct stk_mapping {
	bool present;
	char *source;
	char *destination;
	char *type;
	struct stk_opt_bool required;
};

struct stk_deployment_mode {
	bool present;
	char *name;
	char *source;
};

struct stk_dependency {
	bool present;
	char *profile_name;
	char *condition;
};

struct stk_syncprofile_spec {
	bool present;
	struct stk_api_objects mappings; /* struct stk_mapping */
	struct stk_deployment_mode deployment_mode;
	struct stk_api_strings exclude_patterns;
	struct stk_api_objects depends_on; /* struct stk_dependency */
	struct stk_api_strmap vars;
	struct stk_opt_i64 sync_period;
	struct stk_opt_bool dry_run;
	struct stk_opt_bool paused;
	char *designer_session_policy;
};

struct stk_dry_run_diff {
	bool present;
	struct stk_opt_i64 added, modified, deleted;
	struct stk_api_strings files;
};

struct stk_syncprofile_status {
	bool present;
	struct stk_opt_i64 observed_generation;
	char *last_handled_reconcile_at;
	struct stk_opt_i64 gateway_count;
	struct stk_api_strings gateways;
	struct stk_dry_run_diff dry_run_diff;
	struct stk_api_conditions conditions;
};

struct stk_syncprofile {
	STK_API_OBJECT_HEAD;
	struct stk_syncprofile_spec spec;
	struct stk_syncprofile_status status;
};

/* ---- Stoker ------------------------------------------------------------------------ */

struct stk_source_ref {
	bool present;
	char *kind;
	char *name;
};

struct stk_stoker_git {
	bool present;
	char *repo;
	char *ref;
	struct stk_git_auth auth;
};

struct stk_gateway_spec {
	bool present;
	struct stk_opt_i64 port;
	struct stk_opt_bool tls;
	struct stk_secret_key_ref api_key_secret_ref;
};

struct stk_polling {
	bool present;
	struct stk_opt_bool enabled;
	char *interval;
};

struct stk_webhook {
	bool present;
	struct stk_secret_key_ref secret_ref;
};

struct stk_agent_image {
	bool present;
	char *repository, *tag, *pull_policy, *digest;
};

struct stk_resources {
	bool present;
	struct stk_api_strmap limits; /* values are JSON: "100m" or 1 */
	struct stk_api_strmap requests;
};

struct stk_agent_spec {
	bool present;
	struct stk_agent_image image;
	struct stk_resources resources;
	char *source_mode;
};

struct stk_stoker_spec {
	bool present;
	struct stk_source_ref source_ref;
	struct stk_stoker_git git;
	struct stk_gateway_spec gateway;
	struct stk_polling polling;
	struct stk_api_strings exclude_patterns;
	struct stk_webhook webhook;
	struct stk_agent_spec agent;
	struct stk_opt_bool paused;
};

struct stk_drift {
	bool present;
	struct stk_opt_bool detected;
	struct stk_api_strings files;
};

struct stk_discovered_gateway {
	bool present;
	char *name, *ns, *pod_name, *sync_profile, *sync_status, *synced_commit, *synced_ref;
	char *last_sync_time, *last_sync_duration;
	struct stk_opt_i64 files_changed;
	struct stk_api_strings projects_synced;
	char *agent_version, *last_scan_result, *error_message;
	struct stk_drift drift;
};

struct stk_stoker_status {
	bool present;
	struct stk_opt_i64 observed_generation;
	char *last_handled_reconcile_at;
	char *last_sync_ref, *last_sync_commit, *last_sync_commit_short, *last_sync_time;
	char *ref_resolution_status;
	struct stk_api_objects discovered_gateways; /* struct stk_discovered_gateway */
	struct stk_api_conditions conditions;
};

struct stk_stoker {
	STK_API_OBJECT_HEAD;
	struct stk_stoker_spec spec;
	struct stk_stoker_status status;
};

/* ---- Alert ------------------------------------------------------------------------- */

struct stk_provider {
	bool present;
	char *type;
	char *address;
	struct stk_secret_ref secret_ref;
	char *channel, *username, *timeout;
};

struct stk_event_source {
	bool present;
	char *kind, *name, *ns;
	struct stk_api_strmap match_labels;
};

struct stk_alert_spec {
	bool present;
	struct stk_provider provider;
	char *event_severity;
	struct stk_api_objects event_sources; /* struct stk_event_source */
	struct stk_api_strings inclusion_list, exclusion_list;
	struct stk_api_strmap event_metadata;
	char *summary;
	struct stk_opt_bool suspend;
};

struct stk_last_sent {
	bool present;
	char *time, *reason, *result;
	char *event;		  /* "namespace/name" of the core/v1 Event it carried */
	struct stk_opt_i64 count; /* that Event's count then */
};

struct stk_alert_status {
	bool present;
	struct stk_opt_i64 observed_generation;
	char *last_handled_reconcile_at;
	struct stk_last_sent last_sent;
	struct stk_api_conditions conditions;
};

struct stk_alert {
	STK_API_OBJECT_HEAD;
	struct stk_alert_spec spec;
	struct stk_alert_status status;
};

/* The tables of the four top-level objects and their specs/statuses. */
extern const struct stk_api_type stk_api_gitsource_type, stk_api_gitsource_spec_type,
	stk_api_gitsource_status_type;
extern const struct stk_api_type stk_api_syncprofile_type, stk_api_syncprofile_spec_type,
	stk_api_syncprofile_status_type;
extern const struct stk_api_type stk_api_stoker_type, stk_api_stoker_spec_type,
	stk_api_stoker_status_type;
extern const struct stk_api_type stk_api_alert_type, stk_api_alert_spec_type,
	stk_api_alert_status_type;

#endif
