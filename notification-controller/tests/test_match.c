/* Alert event matching: sources, labels, severity, inclusion and exclusion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "match.h"
#include "stk/api/api.h"
#include "stk/json.h"

/* Decodes an Alert spec from JSON with the API codec (defaults applied). */
static void spec_of(struct stk_alert_spec *spec, const char *json)
{
	yajl_val v = NULL;
	stk_err err = STK_ERR_INIT;

	memset(spec, 0, sizeof(*spec));
	assert_int_equal(stk_json_parse(&v, json, strlen(json), 1 << 20, &err), 0);
	assert_int_equal(stk_api_decode(&stk_api_alert_spec_type, spec, v, "spec", &err), 0);
	stk_api_default(&stk_api_alert_spec_type, spec);
	yajl_tree_free(v);
}

static bool match(const struct notifctl_rules *r, const char *kind, const char *ns,
		  const char *name, const char *labels_json, bool error, const char *message)
{
	yajl_val labels = NULL;
	stk_err err = STK_ERR_INIT;
	struct notifctl_match_in in = {kind, ns, name, NULL, error, message};
	bool ok;

	if (labels_json) {
		assert_int_equal(
			stk_json_parse(&labels, labels_json, strlen(labels_json), 4096, &err), 0);
		in.labels = labels;
	}
	ok = notifctl_rules_match(r, &in);
	yajl_tree_free(labels);
	return ok;
}

static void test_match__sources_names_and_namespaces(void **state)
{
	struct stk_alert_spec spec;
	struct notifctl_rules *r = NULL;
	stk_err err = STK_ERR_INIT;
	(void)state;

	spec_of(&spec, "{\"provider\":{\"type\":\"generic\",\"address\":\"http://x\"},"
		       "\"eventSources\":[{\"kind\":\"Stoker\",\"name\":\"plant\"},"
		       "{\"kind\":\"GitSource\",\"name\":\"*\",\"namespace\":\"other\"}]}");
	assert_int_equal(notifctl_rules_compile(&r, "site1", &spec, &err), 0);
	assert_true(match(r, "Stoker", "site1", "plant", NULL, false, "synced"));
	assert_false(match(r, "Stoker", "site1", "other", NULL, false, "synced"));
	assert_false(match(r, "Stoker", "site2", "plant", NULL, false, "synced"));
	assert_false(match(r, "SyncProfile", "site1", "plant", NULL, false, "x"));
	assert_true(match(r, "GitSource", "other", "anything", NULL, false, "x"));
	assert_false(match(r, "GitSource", "site1", "anything", NULL, false, "x"));
	notifctl_rules_free(r);
	stk_api_release(&stk_api_alert_spec_type, &spec);
}

static void test_match__labels_severity_and_lists(void **state)
{
	struct stk_alert_spec spec;
	struct notifctl_rules *r = NULL;
	stk_err err = STK_ERR_INIT;
	(void)state;

	spec_of(&spec, "{\"provider\":{\"type\":\"generic\",\"address\":\"http://x\"},"
		       "\"eventSeverity\":\"error\","
		       "\"eventSources\":[{\"kind\":\"Stoker\",\"name\":\"*\","
		       "\"matchLabels\":{\"site\":\"one\"}}],"
		       "\"inclusionList\":[\"area[0-9]+\"],\"exclusionList\":[\"area9\"]}");
	assert_int_equal(notifctl_rules_compile(&r, "ns", &spec, &err), 0);
	assert_true(notifctl_rules_need_labels(r, "Stoker", "ns"));
	assert_false(notifctl_rules_need_labels(r, "GitSource", "ns"));
	assert_true(match(r, "Stoker", "ns", "a", "{\"site\":\"one\",\"x\":\"y\"}", true,
			  "sync failed on gateway area2"));
	/* Severity: info events are not sent by an error Alert. */
	assert_false(match(r, "Stoker", "ns", "a", "{\"site\":\"one\"}", false, "area2 synced"));
	/* Labels must all match. */
	assert_false(match(r, "Stoker", "ns", "a", "{\"site\":\"two\"}", true, "area2"));
	assert_false(match(r, "Stoker", "ns", "a", NULL, true, "area2"));
	/* Inclusion: the message must match one; exclusion wins. */
	assert_false(match(r, "Stoker", "ns", "a", "{\"site\":\"one\"}", true, "site gateway"));
	assert_false(match(r, "Stoker", "ns", "a", "{\"site\":\"one\"}", true, "area9 failed"));
	notifctl_rules_free(r);
	stk_api_release(&stk_api_alert_spec_type, &spec);
}

static void test_match__bad_rules_are_named(void **state)
{
	struct stk_alert_spec spec;
	struct notifctl_rules *r = NULL;
	stk_err err = STK_ERR_INIT;
	(void)state;

	spec_of(&spec, "{\"provider\":{\"type\":\"generic\"},"
		       "\"eventSources\":[{\"kind\":\"Stoker\",\"name\":\"*\"}],"
		       "\"exclusionList\":[\"ok\",\"(unclosed\"]}");
	assert_int_equal(notifctl_rules_compile(&r, "ns", &spec, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "spec.exclusionList[1]"));
	assert_non_null(strstr(err.message, "(unclosed"));
	assert_null(r);
	stk_api_release(&stk_api_alert_spec_type, &spec);
	spec_of(&spec, "{\"provider\":{\"type\":\"generic\"},"
		       "\"eventSources\":[{\"kind\":\"Stoker\",\"name\":\"plant\","
		       "\"matchLabels\":{\"a\":\"b\"}}]}");
	assert_int_equal(notifctl_rules_compile(&r, "ns", &spec, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "matchLabels needs name"));
	stk_api_release(&stk_api_alert_spec_type, &spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match__sources_names_and_namespaces),
		cmocka_unit_test(test_match__labels_severity_and_lists),
		cmocka_unit_test(test_match__bad_rules_are_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
