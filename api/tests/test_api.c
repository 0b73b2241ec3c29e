#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stk/api/api.h"
#include "stk/json.h"

/* Semantic JSON equality: objects compare as maps, numbers by their text. */
static bool json_equal(yajl_val a, yajl_val b)
{
	if (!a || !b)
		return a == b;
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case yajl_t_string:
		return !strcmp(a->u.string, b->u.string);
	case yajl_t_number:
		return !strcmp(a->u.number.r, b->u.number.r);
	case yajl_t_object:
		if (a->u.object.len != b->u.object.len)
			return false;
		for (size_t i = 0; i < a->u.object.len; i++)
			if (!json_equal(a->u.object.values[i],
					stk_json_get(b, a->u.object.keys[i], NULL)))
				return false;
		return true;
	case yajl_t_array:
		if (a->u.array.len != b->u.array.len)
			return false;
		for (size_t i = 0; i < a->u.array.len; i++)
			if (!json_equal(a->u.array.values[i], b->u.array.values[i]))
				return false;
		return true;
	default:
		return true;
	}
}

/* Decodes `json` as `kind` (optionally defaulted) and re-encodes it. */
static char *recode(enum stk_api_kind kind, const char *json, bool defaults, int *rc)
{
	const struct stk_api_type *t = stk_api_type_of(kind);
	void *obj = calloc(1, t->size);
	stk_buf b = STK_BUF_INIT(1 << 20);
	stk_err err = STK_ERR_INIT;

	*rc = stk_api_decode_json(kind, obj, json, strlen(json), &err);
	if (*rc == 0) {
		if (defaults)
			stk_api_default(t, obj);
		stk_api_encode(t, obj, &b);
	}
	stk_api_release(t, obj);
	free(obj);
	return stk_buf_detach(&b, NULL);
}

static void assert_json_equal(const char *a, const char *b)
{
	yajl_val va = NULL, vb = NULL;
	assert_int_equal(stk_json_parse(&va, a, strlen(a), 1 << 20, NULL), 0);
	assert_int_equal(stk_json_parse(&vb, b, strlen(b), 1 << 20, NULL), 0);
	if (!json_equal(va, vb))
		fail_msg("JSON differs:\n  %s\n  %s", a, b);
	yajl_tree_free(va);
	yajl_tree_free(vb);
}

static const char full_stoker[] =
	"{\"apiVersion\":\"stoker.io/v1alpha1\",\"kind\":\"Stoker\",\"metadata\":{\"name\":"
	"\"plant\",\"namespace\":\"site1\",\"generation\":2,\"labels\":{\"a\":\"b\"}},"
	"\"spec\":{\"git\":{\"repo\":\"git@github.com:o/r.git\",\"ref\":\"main\",\"auth\":"
	"{\"sshKey\":{\"secretRef\":{\"name\":\"k\",\"key\":\"id\"}}}},\"gateway\":{\"port\":0,"
	"\"tls\":false,\"apiKeySecretRef\":{\"name\":\"gw\",\"key\":\"apiKey\"}},\"polling\":"
	"{\"enabled\":false,\"interval\":\"5m\"},\"excludePatterns\":[],\"agent\":{\"image\":"
	"{\"repository\":\"ghcr.io/stoker/agent\",\"tag\":\"0.1.0\"},\"resources\":{\"limits\":"
	"{\"memory\":\"128Mi\",\"cpu\":1},\"requests\":{}},\"sourceMode\":\"git\"},\"paused\":"
	"false},\"status\":{\"observedGeneration\":-1,\"lastSyncCommit\":\"2c6a06\","
	"\"discoveredGateways\":[{\"name\":\"site\",\"syncStatus\":\"Synced\",\"filesChanged\":0,"
	"\"projectsSynced\":[\"Site\"],\"drift\":{\"detected\":false,\"files\":[]}}],"
	"\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":2,"
	"\"lastTransitionTime\":\"2026-11-22T10:30:05Z\",\"reason\":\"Succeeded\",\"message\":"
	"\"ok\"}]}}";

static void test_api__zero_values_and_empty_lists_round_trip(void **state)
{
	int rc;
	char *out;
	(void)state;
	/* port 0, tls false, enabled false, [] and {} survive decode + encode unchanged. */
	out = recode(STK_KIND_STOKER, full_stoker, false, &rc);
	assert_int_equal(rc, 0);
	assert_json_equal(full_stoker, out);
	free(out);
}

static void test_api__defaults_mirror_the_schema(void **state)
{
	int rc;
	char *out;
	(void)state;
	out = recode(STK_KIND_STOKER,
		     "{\"spec\":{\"sourceRef\":{\"name\":\"src\"},\"gateway\":{\"tls\":true}}}",
		     true, &rc);
	assert_int_equal(rc, 0);
	assert_json_equal("{\"spec\":{\"sourceRef\":{\"kind\":\"GitSource\",\"name\":\"src\"},"
			  "\"gateway\":{\"port\":8088,\"tls\":true},\"polling\":{\"enabled\":true,"
			  "\"interval\":\"60s\"},\"excludePatterns\":[\"**/.git/\",\"**/.gitkeep\","
			  "\"**/.resources/**\"],\"agent\":{\"sourceMode\":\"artifact\"},"
			  "\"paused\":false}}",
			  out);
	free(out);
	out = recode(STK_KIND_SYNCPROFILE,
		     "{\"spec\":{\"mappings\":[{\"source\":\"a\",\"destination\":\"b\"}],"
		     "\"dependsOn\":[{\"profileName\":\"site\"}]},\"status\":{}}",
		     true, &rc);
	assert_json_equal("{\"spec\":{\"mappings\":[{\"source\":\"a\",\"destination\":\"b\","
			  "\"type\":\"dir\",\"required\":false}],\"dependsOn\":[{\"profileName\":"
			  "\"site\",\"condition\":\"Synced\"}],\"syncPeriod\":30,\"dryRun\":false,"
			  "\"paused\":false,\"designerSessionPolicy\":\"proceed\"},"
			  "\"status\":{\"observedGeneration\":-1}}",
			  out);
	free(out);
}

static void test_api__decode_errors_name_the_field(void **state)
{
	const struct stk_api_type *t = stk_api_type_of(STK_KIND_SYNCPROFILE);
	struct stk_syncprofile sp;
	stk_err err = STK_ERR_INIT;
	const char *bad = "{\"spec\":{\"mappings\":[{\"source\":\"a\"},{\"source\":7}]}}";
	(void)state;
	memset(&sp, 0, sizeof(sp));
	assert_int_equal(stk_api_decode_json(STK_KIND_SYNCPROFILE, &sp, bad, strlen(bad), &err),
			 STK_EPARSE);
	assert_string_equal(err.message,
			    "spec.mappings[1].source: expected a string, got a number");
	stk_api_release(t, &sp);
	memset(&sp, 0, sizeof(sp));
	assert_int_equal(stk_api_decode_json(STK_KIND_SYNCPROFILE, &sp, "[1]", 3, &err),
			 STK_EPARSE);
	stk_api_release(t, &sp);
}

/* Validates `json` as `kind` after defaulting; returns the message ("" when valid). */
static const char *check(enum stk_api_kind kind, const char *json)
{
	static stk_err err;
	const struct stk_api_type *t = stk_api_type_of(kind);
	void *obj = calloc(1, t->size);
	int rc;

	stk_err_clear(&err);
	rc = stk_api_decode_json(kind, obj, json, strlen(json), &err);
	if (!rc) {
		stk_api_default(t, obj);
		rc = stk_api_validate_object(kind, obj, &err);
	}
	stk_api_release(t, obj);
	free(obj);
	return rc ? err.message : "";
}

static void expect_rule(enum stk_api_kind kind, const char *json, const char *needle)
{
	const char *msg = check(kind, json);
	if (!*needle && *msg)
		fail_msg("expected valid, got: %s", msg);
	if (*needle && !strstr(msg, needle))
		fail_msg("expected \"%s\", got \"%s\"", needle, msg);
}

static void test_api__validation_mirrors_schema_and_cel(void **state)
{
	(void)state;
	expect_rule(STK_KIND_GITSOURCE,
		    "{\"spec\":{\"url\":\"https://github.com/o/r\",\"ref\":{\"branch\":\"main\"}}}",
		    "");
	expect_rule(STK_KIND_GITSOURCE,
		    "{\"spec\":{\"url\":\"https://github.com/o/r\",\"ref\":{\"branch\":\"main\","
		    "\"tag\":\"v1\"}}}",
		    "exactly one of branch, tag, semver, commit or name must be set");
	expect_rule(
		STK_KIND_GITSOURCE,
		"{\"spec\":{\"url\":\"https://user:pw@github.com/o/r\",\"ref\":{\"tag\":\"v1\"}}}",
		"url must not embed credentials");
	expect_rule(
		STK_KIND_GITSOURCE,
		"{\"spec\":{\"url\":\"ssh://git@github.com/o/r\",\"ref\":{\"commit\":\"abc\"}}}",
		"spec.ref.commit");
	expect_rule(STK_KIND_GITSOURCE,
		    "{\"spec\":{\"url\":\"ssh://git@github.com/o/r\",\"ref\":{\"tag\":\"v1\"},"
		    "\"interval\":\"soon\"}}",
		    "spec.interval");
	expect_rule(STK_KIND_GITSOURCE,
		    "{\"spec\":{\"url\":\"ssh://git@h/o/r\",\"ref\":{\"tag\":\"v1\"},\"auth\":"
		    "{\"knownHosts\":{\"secretRef\":{\"name\":\"a\",\"key\":\"b\"}}}}}",
		    "knownHosts requires sshKey");
	expect_rule(STK_KIND_SYNCPROFILE,
		    "{\"spec\":{\"mappings\":[{\"source\":\"services/../etc\",\"destination\":"
		    "\"projects\"}]}}",
		    "spec.mappings[0]: source must be a relative path without '..' segments");
	expect_rule(STK_KIND_SYNCPROFILE,
		    "{\"spec\":{\"mappings\":[{\"source\":\"a\",\"destination\":\"/abs\"}]}}",
		    "destination must be a relative path");
	expect_rule(STK_KIND_SYNCPROFILE, "{\"spec\":{\"mappings\":[]}}",
		    "spec.mappings: must have at least 1 items");
	expect_rule(STK_KIND_SYNCPROFILE,
		    "{\"spec\":{\"mappings\":[{\"source\":\"a\",\"destination\":\"b\"}],"
		    "\"syncPeriod\":4}}",
		    "spec.syncPeriod: must be at least 5");
	expect_rule(STK_KIND_SYNCPROFILE,
		    "{\"spec\":{\"mappings\":[{\"source\":\"a\",\"destination\":\"b\",\"type\":"
		    "\"link\"}]}}",
		    "spec.mappings[0].type: \"link\" is not one of \"dir\", \"file\"");
	expect_rule(STK_KIND_SYNCPROFILE,
		    "{\"spec\":{\"mappings\":[{\"source\":\"a\",\"destination\":\"b\"}],\"vars\":"
		    "{\"1site\":\"x\"}}}",
		    "vars keys must be identifiers");
	expect_rule(STK_KIND_STOKER, "{\"spec\":{}}",
		    "exactly one of spec.sourceRef or spec.git must be set");
	expect_rule(STK_KIND_STOKER,
		    "{\"spec\":{\"sourceRef\":{\"name\":\"s\"},\"git\":{\"repo\":\"git@h:o/r\","
		    "\"ref\":\"main\"}}}",
		    "exactly one of spec.sourceRef or spec.git");
	expect_rule(STK_KIND_STOKER,
		    "{\"spec\":{\"git\":{\"repo\":\"https://tok@h/o/r\",\"ref\":\"main\"}}}",
		    "spec.git.repo: url must not embed credentials");
	expect_rule(STK_KIND_STOKER,
		    "{\"spec\":{\"sourceRef\":{\"name\":\"s\"},\"gateway\":{\"port\":70000}}}",
		    "spec.gateway.port: must be at most 65535");
	expect_rule(STK_KIND_ALERT,
		    "{\"spec\":{\"provider\":{\"type\":\"slack\"},\"eventSources\":[{\"kind\":"
		    "\"Stoker\",\"name\":\"plant\",\"matchLabels\":{\"a\":\"b\"}}]}}",
		    "spec.eventSources[0]: matchLabels may only be used with name '*'");
	expect_rule(STK_KIND_ALERT,
		    "{\"spec\":{\"provider\":{\"type\":\"sms\"},\"eventSources\":[{\"kind\":"
		    "\"Stoker\",\"name\":\"*\"}]}}",
		    "spec.provider.type");
	expect_rule(STK_KIND_ALERT,
		    "{\"spec\":{\"provider\":{\"type\":\"slack\"},\"eventSources\":[{\"kind\":"
		    "\"Stoker\",\"name\":\"*\",\"matchLabels\":{\"a\":\"b\"}}]}}",
		    "");
}

static void test_api__rules_shared_with_daemons(void **state)
{
	(void)state;
	assert_false(stk_api_url_has_credentials("git@github.com:o/r.git"));
	assert_false(stk_api_url_has_credentials("ssh://git@github.com/o/r"));
	assert_true(stk_api_url_has_credentials("ssh://git:pw@github.com/o/r"));
	assert_true(stk_api_url_has_credentials("https://x-token@github.com/o/r"));
	assert_false(stk_api_url_has_credentials("https://github.com/o/r?q=a@b"));
	assert_true(stk_api_path_is_safe("services/site/projects"));
	assert_true(stk_api_path_is_safe("a/..b/c.."));
	assert_false(stk_api_path_is_safe(".."));
	assert_false(stk_api_path_is_safe("a/../b"));
	assert_false(stk_api_path_is_safe("a/.."));
	assert_false(stk_api_path_is_safe("/etc"));
	assert_true(stk_api_is_identifier("SiteNumber"));
	assert_true(stk_api_is_identifier("_x1"));
	assert_false(stk_api_is_identifier("1x"));
	assert_false(stk_api_is_identifier("a-b"));
	assert_false(stk_api_is_identifier(""));
}

static void test_api__status_configmap_payload_round_trips(void **state)
{
	const char report[] =
		"{\"syncStatus\":\"Synced\",\"syncedCommit\":\"2c6a06\",\"syncedRef\":\"main\","
		"\"syncProfile\":\"site\",\"lastSyncTime\":\"2026-11-22T10:30:05Z\","
		"\"lastSyncDuration\":\"1.234s\",\"filesAdded\":3,\"filesModified\":1,"
		"\"filesDeleted\":0,\"filesChanged\":4,\"projectsSynced\":[\"Site\"],"
		"\"agentVersion\":\"0.1.0\",\"lastScanResult\":\"projects=200 config=200\","
		"\"errorMessage\":\"\",\"dryRun\":false,\"designerSessionsBlocked\":false,"
		"\"drift\":{\"detected\":false,\"files\":[]},\"history\":[{\"time\":\"t\","
		"\"commit\":\"2c6a06\",\"result\":\"success\",\"filesChanged\":4,\"duration\":"
		"\"1.234s\"}]}";
	struct stk_gateway_report r;
	stk_buf b = STK_BUF_INIT(1 << 16);
	stk_err err = STK_ERR_INIT;
	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(stk_api_decode_payload(&stk_api_gateway_report_type, &r, report,
						strlen(report), &err),
			 0);
	assert_string_equal(r.sync_status, "Synced");
	assert_true(r.files_deleted.set);
	assert_int_equal(r.files_deleted.v, 0);
	assert_int_equal(r.history.len, 1);
	assert_int_equal(stk_api_encode(&stk_api_gateway_report_type, &r, &b), 0);
	assert_json_equal(report, b.ptr);
	assert_int_equal(stk_api_validate(&stk_api_gateway_report_type, &r, "site", &err), 0);
	stk_api_release(&stk_api_gateway_report_type, &r);
	stk_buf_release(&b);
}

static void test_api__metadata_configmap_profile_entry(void **state)
{
	const char entry[] = "{\"gate\":\"\",\"spec\":{\"mappings\":[{\"source\":\"services/site\","
			     "\"destination\":\".\",\"type\":\"dir\",\"required\":true}],"
			     "\"syncPeriod\":30,\"vars\":{\"SiteNumber\":\"1\"}}}";
	struct stk_profile_entry e;
	stk_buf b = STK_BUF_INIT(1 << 16);
	(void)state;
	memset(&e, 0, sizeof(e));
	assert_int_equal(
		stk_api_decode_payload(&stk_api_profile_entry_type, &e, entry, strlen(entry), NULL),
		0);
	assert_string_equal(e.gate, "");
	assert_string_equal(e.spec.vars.values[0], "1");
	stk_api_encode(&stk_api_profile_entry_type, &e, &b);
	assert_json_equal(entry, b.ptr);
	stk_api_release(&stk_api_profile_entry_type, &e);
	stk_buf_release(&b);
}

static void test_api__report_synced_at(void **state)
{
	struct stk_gateway_report r = {0};
	char synced[] = "Synced", error[] = "Error", c1[] = "1111", c2[] = "2222";

	(void)state;
	assert_false(stk_api_report_synced_at(&r, c1)); /* no report fields */
	r.sync_status = synced;
	r.synced_commit = c1;
	assert_true(stk_api_report_synced_at(&r, c1));
	assert_false(stk_api_report_synced_at(&r, c2)); /* another commit */
	assert_false(stk_api_report_synced_at(&r, "")); /* no target yet */
	assert_false(stk_api_report_synced_at(&r, NULL));
	r.sync_status = error;
	assert_false(stk_api_report_synced_at(&r, c1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api__zero_values_and_empty_lists_round_trip),
		cmocka_unit_test(test_api__defaults_mirror_the_schema),
		cmocka_unit_test(test_api__decode_errors_name_the_field),
		cmocka_unit_test(test_api__validation_mirrors_schema_and_cel),
		cmocka_unit_test(test_api__rules_shared_with_daemons),
		cmocka_unit_test(test_api__status_configmap_payload_round_trips),
		cmocka_unit_test(test_api__metadata_configmap_profile_entry),
		cmocka_unit_test(test_api__report_synced_at),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
