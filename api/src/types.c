/* Field tables of the four kinds: the C mirror of config/crd (held equal by a test). */
#include "stk/api/types.h"

#include "table.h"

#include <stddef.h>

#define DURATION_PATTERN "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
#define URL_PATTERN	 "^(ssh://|https://|http://|git://|file://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:).+"
#define REASON_PATTERN	 "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

/* ---- shared ------------------------------------------------------------------------ */

static const struct stk_api_field secret_key_ref_fields[] = {
	FLD("name", STK_API_STRING, struct stk_secret_key_ref, name, .flags = STK_API_REQUIRED),
	FLD("key", STK_API_STRING, struct stk_secret_key_ref, key, .flags = STK_API_REQUIRED),
};
static const struct stk_api_type secret_key_ref_type =
	TYPE("SecretKeyRef", struct stk_secret_key_ref, secret_key_ref_fields);

static const struct stk_api_field secret_ref_fields[] = {
	FLD("name", STK_API_STRING, struct stk_secret_ref, name, .flags = STK_API_REQUIRED),
};
static const struct stk_api_type secret_ref_type =
	TYPE("SecretRef", struct stk_secret_ref, secret_ref_fields);

static const struct stk_api_field git_auth_key_fields[] = {
	FLD("secretRef", STK_API_OBJECT, struct stk_git_auth_key, secret_ref,
	    .sub = &secret_key_ref_type, .flags = STK_API_REQUIRED),
};
static const struct stk_api_type git_auth_key_type =
	TYPE("GitAuthKey", struct stk_git_auth_key, git_auth_key_fields);

static const struct stk_api_field git_auth_basic_fields[] = {
	FLD("secretRef", STK_API_OBJECT, struct stk_git_auth_basic, secret_ref,
	    .sub = &secret_ref_type, .flags = STK_API_REQUIRED),
};
static const struct stk_api_type git_auth_basic_type =
	TYPE("GitAuthBasic", struct stk_git_auth_basic, git_auth_basic_fields);

static const struct stk_api_field git_auth_fields[] = {
	FLD("sshKey", STK_API_OBJECT, struct stk_git_auth, ssh_key, .sub = &git_auth_key_type),
	FLD("knownHosts", STK_API_OBJECT, struct stk_git_auth, known_hosts,
	    .sub = &git_auth_key_type),
	FLD("token", STK_API_OBJECT, struct stk_git_auth, token, .sub = &git_auth_key_type),
	FLD("basic", STK_API_OBJECT, struct stk_git_auth, basic, .sub = &git_auth_basic_type),
};
static const struct stk_api_type git_auth_type =
	TYPE("GitAuth", struct stk_git_auth, git_auth_fields);

/* ---- GitSource --------------------------------------------------------------------- */

static const struct stk_api_field gitsource_ref_fields[] = {
	FLD("branch", STK_API_STRING, struct stk_gitsource_ref, branch),
	FLD("tag", STK_API_STRING, struct stk_gitsource_ref, tag),
	FLD("semver", STK_API_STRING, struct stk_gitsource_ref, semver),
	FLD("commit", STK_API_STRING, struct stk_gitsource_ref, commit,
	    .pattern = "^[0-9a-f]{40}$"),
	FLD("name", STK_API_STRING, struct stk_gitsource_ref, name),
};
static const struct stk_api_type gitsource_ref_type =
	TYPE("GitSourceRef", struct stk_gitsource_ref, gitsource_ref_fields);

static const struct stk_api_field gitsource_spec_fields[] = {
	FLD("url", STK_API_STRING, struct stk_gitsource_spec, url, .flags = STK_API_REQUIRED,
	    .pattern = URL_PATTERN),
	FLD("ref", STK_API_OBJECT, struct stk_gitsource_spec, ref, .sub = &gitsource_ref_type,
	    .flags = STK_API_REQUIRED),
	FLD("interval", STK_API_STRING, struct stk_gitsource_spec, interval, .def = "\"60s\"",
	    .pattern = DURATION_PATTERN),
	FLD("timeout", STK_API_STRING, struct stk_gitsource_spec, timeout, .def = "\"30s\"",
	    .pattern = DURATION_PATTERN),
	FLD("auth", STK_API_OBJECT, struct stk_gitsource_spec, auth, .sub = &git_auth_type),
	FLD("ignore", STK_API_STRINGS, struct stk_gitsource_spec, ignore),
	FLD("suspend", STK_API_BOOL, struct stk_gitsource_spec, suspend, .def = "false"),
};
const struct stk_api_type stk_api_gitsource_spec_type =
	TYPE("GitSourceSpec", struct stk_gitsource_spec, gitsource_spec_fields);

static const struct stk_api_field artifact_fields[] = {
	FLD("revision", STK_API_STRING, struct stk_artifact, revision),
	FLD("commit", STK_API_STRING, struct stk_artifact, commit),
	FLD("ref", STK_API_STRING, struct stk_artifact, ref),
	FLD("url", STK_API_STRING, struct stk_artifact, url),
	FLD("digest", STK_API_STRING, struct stk_artifact, digest),
	FLD("size", STK_API_INT, struct stk_artifact, size, .format = "int64"),
	FLD("lastUpdateTime", STK_API_STRING, struct stk_artifact, last_update_time,
	    .format = "date-time"),
};
static const struct stk_api_type artifact_type =
	TYPE("Artifact", struct stk_artifact, artifact_fields);

static const struct stk_api_field gitsource_status_fields[] = {
	FLD("observedGeneration", STK_API_INT, struct stk_gitsource_status, observed_generation,
	    .def = "-1", .format = "int64"),
	FLD("lastHandledReconcileAt", STK_API_STRING, struct stk_gitsource_status,
	    last_handled_reconcile_at),
	FLD("artifact", STK_API_OBJECT, struct stk_gitsource_status, artifact,
	    .sub = &artifact_type),
	FLD("conditions", STK_API_CONDITIONS, struct stk_gitsource_status, conditions),
};
const struct stk_api_type stk_api_gitsource_status_type =
	TYPE("GitSourceStatus", struct stk_gitsource_status, gitsource_status_fields);

static const struct stk_api_field gitsource_fields[] = {
	FLD("apiVersion", STK_API_STRING, struct stk_gitsource, api_version),
	FLD("kind", STK_API_STRING, struct stk_gitsource, kind),
	FLD("metadata", STK_API_RAW, struct stk_gitsource, metadata),
	FLD("spec", STK_API_OBJECT, struct stk_gitsource, spec, .sub = &stk_api_gitsource_spec_type,
	    .flags = STK_API_REQUIRED),
	FLD("status", STK_API_OBJECT, struct stk_gitsource, status,
	    .sub = &stk_api_gitsource_status_type),
};
const struct stk_api_type stk_api_gitsource_type =
	TYPE("GitSource", struct stk_gitsource, gitsource_fields);

/* ---- SyncProfile ------------------------------------------------------------------- */

static const char *const mapping_types[] = {"dir", "file", NULL};
static const char *const dependency_conditions[] = {"Synced", NULL};
static const char *const designer_policies[] = {"proceed", "wait", "fail", NULL};

static const struct stk_api_field mapping_fields[] = {
	/* Bounded so the API server can cost the CEL path rule. */
	FLD("source", STK_API_STRING, struct stk_mapping, source,
	    .flags = STK_API_REQUIRED | STK_API_MAX, .max = 1024),
	FLD("destination", STK_API_STRING, struct stk_mapping, destination,
	    .flags = STK_API_REQUIRED | STK_API_MAX, .max = 1024),
	FLD("type", STK_API_STRING, struct stk_mapping, type, .def = "\"dir\"",
	    .enums = mapping_types),
	FLD("required", STK_API_BOOL, struct stk_mapping, required, .def = "false"),
};
static const struct stk_api_type mapping_type = TYPE("Mapping", struct stk_mapping, mapping_fields);

static const struct stk_api_field deployment_mode_fields[] = {
	FLD("name", STK_API_STRING, struct stk_deployment_mode, name, .flags = STK_API_REQUIRED),
	FLD("source", STK_API_STRING, struct stk_deployment_mode, source,
	    .flags = STK_API_REQUIRED | STK_API_MAX, .max = 1024),
};
static const struct stk_api_type deployment_mode_type =
	TYPE("DeploymentMode", struct stk_deployment_mode, deployment_mode_fields);

static const struct stk_api_field dependency_fields[] = {
	FLD("profileName", STK_API_STRING, struct stk_dependency, profile_name,
	    .flags = STK_API_REQUIRED),
	FLD("condition", STK_API_STRING, struct stk_dependency, condition, .def = "\"Synced\"",
	    .enums = dependency_conditions),
};
static const struct stk_api_type dependency_type =
	TYPE("Dependency", struct stk_dependency, dependency_fields);

static const struct stk_api_field syncprofile_spec_fields[] = {
	FLD("mappings", STK_API_OBJECTS, struct stk_syncprofile_spec, mappings,
	    .sub = &mapping_type, .flags = STK_API_REQUIRED | STK_API_MIN | STK_API_MAX, .min = 1,
	    .max = 100),
	FLD("deploymentMode", STK_API_OBJECT, struct stk_syncprofile_spec, deployment_mode,
	    .sub = &deployment_mode_type),
	FLD("excludePatterns", STK_API_STRINGS, struct stk_syncprofile_spec, exclude_patterns),
	FLD("dependsOn", STK_API_OBJECTS, struct stk_syncprofile_spec, depends_on,
	    .sub = &dependency_type),
	FLD("vars", STK_API_STRMAP, struct stk_syncprofile_spec, vars),
	FLD("syncPeriod", STK_API_INT, struct stk_syncprofile_spec, sync_period, .def = "30",
	    .flags = STK_API_MIN | STK_API_MAX, .min = 5, .max = 3600),
	FLD("dryRun", STK_API_BOOL, struct stk_syncprofile_spec, dry_run, .def = "false"),
	FLD("paused", STK_API_BOOL, struct stk_syncprofile_spec, paused, .def = "false"),
	FLD("designerSessionPolicy", STK_API_STRING, struct stk_syncprofile_spec,
	    designer_session_policy, .def = "\"proceed\"", .enums = designer_policies),
};
const struct stk_api_type stk_api_syncprofile_spec_type =
	TYPE("SyncProfileSpec", struct stk_syncprofile_spec, syncprofile_spec_fields);

static const struct stk_api_field dry_run_diff_fields[] = {
	FLD("added", STK_API_INT, struct stk_dry_run_diff, added),
	FLD("modified", STK_API_INT, struct stk_dry_run_diff, modified),
	FLD("deleted", STK_API_INT, struct stk_dry_run_diff, deleted),
	FLD("files", STK_API_STRINGS, struct stk_dry_run_diff, files, .flags = STK_API_MAX,
	    .max = 100),
};
static const struct stk_api_type dry_run_diff_type =
	TYPE("DryRunDiff", struct stk_dry_run_diff, dry_run_diff_fields);

static const struct stk_api_field syncprofile_status_fields[] = {
	FLD("observedGeneration", STK_API_INT, struct stk_syncprofile_status, observed_generation,
	    .def = "-1", .format = "int64"),
	FLD("lastHandledReconcileAt", STK_API_STRING, struct stk_syncprofile_status,
	    last_handled_reconcile_at),
	FLD("gatewayCount", STK_API_INT, struct stk_syncprofile_status, gateway_count),
	FLD("gateways", STK_API_STRINGS, struct stk_syncprofile_status, gateways),
	FLD("dryRunDiff", STK_API_OBJECT, struct stk_syncprofile_status, dry_run_diff,
	    .sub = &dry_run_diff_type),
	FLD("conditions", STK_API_CONDITIONS, struct stk_syncprofile_status, conditions),
};
const struct stk_api_type stk_api_syncprofile_status_type =
	TYPE("SyncProfileStatus", struct stk_syncprofile_status, syncprofile_status_fields);

static const struct stk_api_field syncprofile_fields[] = {
	FLD("apiVersion", STK_API_STRING, struct stk_syncprofile, api_version),
	FLD("kind", STK_API_STRING, struct stk_syncprofile, kind),
	FLD("metadata", STK_API_RAW, struct stk_syncprofile, metadata),
	FLD("spec", STK_API_OBJECT, struct stk_syncprofile, spec,
	    .sub = &stk_api_syncprofile_spec_type, .flags = STK_API_REQUIRED),
	FLD("status", STK_API_OBJECT, struct stk_syncprofile, status,
	    .sub = &stk_api_syncprofile_status_type),
};
const struct stk_api_type stk_api_syncprofile_type =
	TYPE("SyncProfile", struct stk_syncprofile, syncprofile_fields);

/* ---- Stoker ------------------------------------------------------------------------ */

static const char *const source_kinds[] = {"GitSource", NULL};
static const char *const pull_policies[] = {"Always", "IfNotPresent", "Never", NULL};
static const char *const source_modes[] = {"artifact", "git", NULL};
static const char *const sync_statuses[] = {"Pending",	      "Syncing", "Synced", "Error",
					    "MissingSidecar", "Blocked", NULL};

static const struct stk_api_field source_ref_fields[] = {
	FLD("kind", STK_API_STRING, struct stk_source_ref, kind, .def = "\"GitSource\"",
	    .enums = source_kinds),
	FLD("name", STK_API_STRING, struct stk_source_ref, name, .flags = STK_API_REQUIRED),
};
static const struct stk_api_type source_ref_type =
	TYPE("SourceRef", struct stk_source_ref, source_ref_fields);

static const struct stk_api_field stoker_git_fields[] = {
	FLD("repo", STK_API_STRING, struct stk_stoker_git, repo, .flags = STK_API_REQUIRED,
	    .pattern = URL_PATTERN),
	FLD("ref", STK_API_STRING, struct stk_stoker_git, ref,
	    .flags = STK_API_REQUIRED | STK_API_MIN, .min = 1),
	FLD("auth", STK_API_OBJECT, struct stk_stoker_git, auth, .sub = &git_auth_type),
};
static const struct stk_api_type stoker_git_type =
	TYPE("StokerGit", struct stk_stoker_git, stoker_git_fields);

static const struct stk_api_field gateway_fields[] = {
	FLD("port", STK_API_INT, struct stk_gateway_spec, port, .def = "8088",
	    .flags = STK_API_MIN | STK_API_MAX, .min = 1, .max = 65535),
	FLD("tls", STK_API_BOOL, struct stk_gateway_spec, tls, .def = "false"),
	FLD("apiKeySecretRef", STK_API_OBJECT, struct stk_gateway_spec, api_key_secret_ref,
	    .sub = &secret_key_ref_type),
};
static const struct stk_api_type gateway_type =
	TYPE("Gateway", struct stk_gateway_spec, gateway_fields);

static const struct stk_api_field polling_fields[] = {
	FLD("enabled", STK_API_BOOL, struct stk_polling, enabled, .def = "true"),
	FLD("interval", STK_API_STRING, struct stk_polling, interval, .def = "\"60s\"",
	    .pattern = DURATION_PATTERN),
};
static const struct stk_api_type polling_type = TYPE("Polling", struct stk_polling, polling_fields);

static const struct stk_api_field webhook_fields[] = {
	FLD("secretRef", STK_API_OBJECT, struct stk_webhook, secret_ref,
	    .sub = &secret_key_ref_type, .flags = STK_API_REQUIRED),
};
static const struct stk_api_type webhook_type = TYPE("Webhook", struct stk_webhook, webhook_fields);

static const struct stk_api_field agent_image_fields[] = {
	FLD("repository", STK_API_STRING, struct stk_agent_image, repository),
	FLD("tag", STK_API_STRING, struct stk_agent_image, tag),
	FLD("pullPolicy", STK_API_STRING, struct stk_agent_image, pull_policy,
	    .enums = pull_policies),
	FLD("digest", STK_API_STRING, struct stk_agent_image, digest,
	    .pattern = "^sha256:[0-9a-f]{64}$"),
};
static const struct stk_api_type agent_image_type =
	TYPE("AgentImage", struct stk_agent_image, agent_image_fields);

static const struct stk_api_field resources_fields[] = {
	FLD("limits", STK_API_INTSTRMAP, struct stk_resources, limits),
	FLD("requests", STK_API_INTSTRMAP, struct stk_resources, requests),
};
static const struct stk_api_type resources_type =
	TYPE("Resources", struct stk_resources, resources_fields);

static const struct stk_api_field agent_fields[] = {
	FLD("image", STK_API_OBJECT, struct stk_agent_spec, image, .sub = &agent_image_type),
	FLD("resources", STK_API_OBJECT, struct stk_agent_spec, resources, .sub = &resources_type),
	FLD("sourceMode", STK_API_STRING, struct stk_agent_spec, source_mode, .def = "\"artifact\"",
	    .enums = source_modes),
};
static const struct stk_api_type agent_type = TYPE("Agent", struct stk_agent_spec, agent_fields);

static const struct stk_api_field stoker_spec_fields[] = {
	FLD("sourceRef", STK_API_OBJECT, struct stk_stoker_spec, source_ref,
	    .sub = &source_ref_type),
	FLD("git", STK_API_OBJECT, struct stk_stoker_spec, git, .sub = &stoker_git_type),
	FLD("gateway", STK_API_OBJECT, struct stk_stoker_spec, gateway, .sub = &gateway_type,
	    .def = "{}"),
	FLD("polling", STK_API_OBJECT, struct stk_stoker_spec, polling, .sub = &polling_type,
	    .def = "{}"),
	FLD("excludePatterns", STK_API_STRINGS, struct stk_stoker_spec, exclude_patterns,
	    .def = "[\"**/.git/\",\"**/.gitkeep\",\"**/.resources/**\"]"),
	FLD("webhook", STK_API_OBJECT, struct stk_stoker_spec, webhook, .sub = &webhook_type),
	FLD("agent", STK_API_OBJECT, struct stk_stoker_spec, agent, .sub = &agent_type,
	    .def = "{}"),
	FLD("paused", STK_API_BOOL, struct stk_stoker_spec, paused, .def = "false"),
};
const struct stk_api_type stk_api_stoker_spec_type =
	TYPE("StokerSpec", struct stk_stoker_spec, stoker_spec_fields);

static const struct stk_api_field drift_fields[] = {
	FLD("detected", STK_API_BOOL, struct stk_drift, detected),
	FLD("files", STK_API_STRINGS, struct stk_drift, files),
};
static const struct stk_api_type drift_type = TYPE("Drift", struct stk_drift, drift_fields);

static const struct stk_api_field discovered_gateway_fields[] = {
	FLD("name", STK_API_STRING, struct stk_discovered_gateway, name),
	FLD("namespace", STK_API_STRING, struct stk_discovered_gateway, ns),
	FLD("podName", STK_API_STRING, struct stk_discovered_gateway, pod_name),
	FLD("syncProfile", STK_API_STRING, struct stk_discovered_gateway, sync_profile),
	FLD("syncStatus", STK_API_STRING, struct stk_discovered_gateway, sync_status,
	    .enums = sync_statuses),
	FLD("syncedCommit", STK_API_STRING, struct stk_discovered_gateway, synced_commit),
	FLD("syncedRef", STK_API_STRING, struct stk_discovered_gateway, synced_ref),
	FLD("lastSyncTime", STK_API_STRING, struct stk_discovered_gateway, last_sync_time,
	    .format = "date-time"),
	FLD("lastSyncDuration", STK_API_STRING, struct stk_discovered_gateway, last_sync_duration),
	FLD("filesChanged", STK_API_INT, struct stk_discovered_gateway, files_changed),
	FLD("projectsSynced", STK_API_STRINGS, struct stk_discovered_gateway, projects_synced),
	FLD("agentVersion", STK_API_STRING, struct stk_discovered_gateway, agent_version),
	FLD("lastScanResult", STK_API_STRING, struct stk_discovered_gateway, last_scan_result),
	FLD("errorMessage", STK_API_STRING, struct stk_discovered_gateway, error_message),
	FLD("drift", STK_API_OBJECT, struct stk_discovered_gateway, drift, .sub = &drift_type),
};
static const struct stk_api_type discovered_gateway_type =
	TYPE("DiscoveredGateway", struct stk_discovered_gateway, discovered_gateway_fields);

static const struct stk_api_field stoker_status_fields[] = {
	FLD("observedGeneration", STK_API_INT, struct stk_stoker_status, observed_generation,
	    .def = "-1", .format = "int64"),
	FLD("lastHandledReconcileAt", STK_API_STRING, struct stk_stoker_status,
	    last_handled_reconcile_at),
	FLD("lastSyncRef", STK_API_STRING, struct stk_stoker_status, last_sync_ref),
	FLD("lastSyncCommit", STK_API_STRING, struct stk_stoker_status, last_sync_commit),
	FLD("lastSyncCommitShort", STK_API_STRING, struct stk_stoker_status,
	    last_sync_commit_short),
	FLD("lastSyncTime", STK_API_STRING, struct stk_stoker_status, last_sync_time,
	    .format = "date-time"),
	FLD("refResolutionStatus", STK_API_STRING, struct stk_stoker_status, ref_resolution_status),
	FLD("discoveredGateways", STK_API_OBJECTS, struct stk_stoker_status, discovered_gateways,
	    .sub = &discovered_gateway_type),
	FLD("conditions", STK_API_CONDITIONS, struct stk_stoker_status, conditions),
};
const struct stk_api_type stk_api_stoker_status_type =
	TYPE("StokerStatus", struct stk_stoker_status, stoker_status_fields);

static const struct stk_api_field stoker_fields[] = {
	FLD("apiVersion", STK_API_STRING, struct stk_stoker, api_version),
	FLD("kind", STK_API_STRING, struct stk_stoker, kind),
	FLD("metadata", STK_API_RAW, struct stk_stoker, metadata),
	FLD("spec", STK_API_OBJECT, struct stk_stoker, spec, .sub = &stk_api_stoker_spec_type,
	    .flags = STK_API_REQUIRED),
	FLD("status", STK_API_OBJECT, struct stk_stoker, status,
	    .sub = &stk_api_stoker_status_type),
};
const struct stk_api_type stk_api_stoker_type = TYPE("Stoker", struct stk_stoker, stoker_fields);

/* ---- Alert ------------------------------------------------------------------------- */

static const char *const provider_types[] = {"generic",	  "generic-hmac", "slack",
					     "msteams",	  "discord",	  "googlechat",
					     "pagerduty", "alertmanager", NULL};
static const char *const severities[] = {"info", "error", NULL};
static const char *const event_kinds[] = {"GitSource", "SyncProfile", "Stoker", "Alert", NULL};

static const struct stk_api_field provider_fields[] = {
	FLD("type", STK_API_STRING, struct stk_provider, type, .flags = STK_API_REQUIRED,
	    .enums = provider_types),
	FLD("address", STK_API_STRING, struct stk_provider, address),
	FLD("secretRef", STK_API_OBJECT, struct stk_provider, secret_ref, .sub = &secret_ref_type),
	FLD("channel", STK_API_STRING, struct stk_provider, channel),
	FLD("username", STK_API_STRING, struct stk_provider, username),
	FLD("timeout", STK_API_STRING, struct stk_provider, timeout, .def = "\"15s\"",
	    .pattern = DURATION_PATTERN),
};
static const struct stk_api_type provider_type =
	TYPE("Provider", struct stk_provider, provider_fields);

static const struct stk_api_field event_source_fields[] = {
	FLD("kind", STK_API_STRING, struct stk_event_source, kind, .flags = STK_API_REQUIRED,
	    .enums = event_kinds),
	FLD("name", STK_API_STRING, struct stk_event_source, name, .flags = STK_API_REQUIRED),
	FLD("namespace", STK_API_STRING, struct stk_event_source, ns),
	FLD("matchLabels", STK_API_STRMAP, struct stk_event_source, match_labels),
};
static const struct stk_api_type event_source_type =
	TYPE("EventSource", struct stk_event_source, event_source_fields);

static const struct stk_api_field alert_spec_fields[] = {
	FLD("provider", STK_API_OBJECT, struct stk_alert_spec, provider, .sub = &provider_type,
	    .flags = STK_API_REQUIRED),
	FLD("eventSeverity", STK_API_STRING, struct stk_alert_spec, event_severity,
	    .def = "\"info\"", .enums = severities),
	FLD("eventSources", STK_API_OBJECTS, struct stk_alert_spec, event_sources,
	    .sub = &event_source_type, .flags = STK_API_REQUIRED | STK_API_MIN, .min = 1),
	FLD("inclusionList", STK_API_STRINGS, struct stk_alert_spec, inclusion_list),
	FLD("exclusionList", STK_API_STRINGS, struct stk_alert_spec, exclusion_list),
	FLD("eventMetadata", STK_API_STRMAP, struct stk_alert_spec, event_metadata),
	FLD("summary", STK_API_STRING, struct stk_alert_spec, summary),
	FLD("suspend", STK_API_BOOL, struct stk_alert_spec, suspend, .def = "false"),
};
const struct stk_api_type stk_api_alert_spec_type =
	TYPE("AlertSpec", struct stk_alert_spec, alert_spec_fields);

static const struct stk_api_field last_sent_fields[] = {
	FLD("time", STK_API_STRING, struct stk_last_sent, time, .format = "date-time"),
	FLD("reason", STK_API_STRING, struct stk_last_sent, reason),
	FLD("result", STK_API_STRING, struct stk_last_sent, result),
	FLD("event", STK_API_STRING, struct stk_last_sent, event),
	FLD("count", STK_API_INT, struct stk_last_sent, count, .format = "int64"),
};
static const struct stk_api_type last_sent_type =
	TYPE("LastSent", struct stk_last_sent, last_sent_fields);

static const struct stk_api_field alert_status_fields[] = {
	FLD("observedGeneration", STK_API_INT, struct stk_alert_status, observed_generation,
	    .def = "-1", .format = "int64"),
	FLD("lastHandledReconcileAt", STK_API_STRING, struct stk_alert_status,
	    last_handled_reconcile_at),
	FLD("lastSent", STK_API_OBJECT, struct stk_alert_status, last_sent, .sub = &last_sent_type),
	FLD("conditions", STK_API_CONDITIONS, struct stk_alert_status, conditions),
};
const struct stk_api_type stk_api_alert_status_type =
	TYPE("AlertStatus", struct stk_alert_status, alert_status_fields);

static const struct stk_api_field alert_fields[] = {
	FLD("apiVersion", STK_API_STRING, struct stk_alert, api_version),
	FLD("kind", STK_API_STRING, struct stk_alert, kind),
	FLD("metadata", STK_API_RAW, struct stk_alert, metadata),
	FLD("spec", STK_API_OBJECT, struct stk_alert, spec, .sub = &stk_api_alert_spec_type,
	    .flags = STK_API_REQUIRED),
	FLD("status", STK_API_OBJECT, struct stk_alert, status, .sub = &stk_api_alert_status_type),
};
const struct stk_api_type stk_api_alert_type = TYPE("Alert", struct stk_alert, alert_fields);
