#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "validate.h"

/* A namespace of profiles given as JSON objects. */
struct ns {
	const char *const *names;
	const char *const *json;
	struct stk_syncprofile sp[8];
	size_t n;
};

static void ns_load(struct ns *ns)
{
	for (ns->n = 0; ns->names[ns->n]; ns->n++) {
		const char *j = ns->json[ns->n];
		memset(&ns->sp[ns->n], 0, sizeof(ns->sp[ns->n]));
		assert_int_equal(stk_api_decode_json(STK_KIND_SYNCPROFILE, &ns->sp[ns->n], j,
						     strlen(j), NULL),
				 0);
		stk_api_default(&stk_api_syncprofile_type, &ns->sp[ns->n]);
	}
}

static void ns_release(struct ns *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		stk_api_release(&stk_api_syncprofile_type, &ns->sp[i]);
}

static const struct stk_syncprofile_spec *lookup(const char *name, void *arg)
{
	struct ns *ns = arg;

	for (size_t i = 0; i < ns->n; i++)
		if (!strcmp(ns->names[i], name))
			return &ns->sp[i].spec;
	return NULL;
}

#define SP(spec)                       \
	"{\"apiVersion\":\"stoker.io/" \
	"v1alpha1\",\"kind\":\"SyncProfile\",\"metadata\":{\"name\":\"x\"},\"spec\":" spec "}"
#define MAP "\"mappings\":[{\"source\":\"a\",\"destination\":\"b\"}]"

/* Validates profile names[0]; checks the reason (NULL = accepted) and message. */
static void expect(const char *const *names, const char *const *json, const char *reason,
		   const char *msg_part)
{
	struct ns ns = {names, json, {{0}}, 0};
	stk_buf msg = STK_BUF_INIT(4096);
	const char *got;

	ns_load(&ns);
	got = profctl_validate(names[0], &ns.sp[0], lookup, &ns, &msg);
	if (!reason) {
		if (got)
			fail_msg("expected accepted, got %s: %s", got, msg.ptr);
	} else {
		assert_non_null(got);
		assert_string_equal(got, reason);
		if (!strstr(msg.ptr, msg_part))
			fail_msg("message '%s' lacks '%s'", msg.ptr, msg_part);
	}
	stk_buf_release(&msg);
	ns_release(&ns);
}

static void test_validate__accepts_templates_vars_and_one_level(void **state)
{
	const char *const names[] = {"area", "site", NULL};
	const char *const json[] = {
		SP("{\"mappings\":[{\"source\":\"areas/{{.GatewayName}}/{{.Vars.zone}}\","
		   "\"destination\":\"projects/{{ .Labels.app.kubernetes.io/name }}\"}],"
		   "\"vars\":{\"zone\":\"z1\"},\"dependsOn\":[{\"profileName\":\"site\"}]}"),
		SP("{" MAP "}")};

	(void)state;
	expect(names, json, NULL, NULL);
}

static void test_validate__templates(void **state)
{
	const char *const names[] = {"p", NULL};
	const char *const unknown[] = {
		SP("{\"mappings\":[{\"source\":\"{{.Gateway}}\",\"destination\":\"b\"}]}")};
	const char *const novar[] = {
		SP("{\"mappings\":[{\"source\":\"a\",\"destination\":\"{{.Vars.zone}}\"}]}")};
	const char *const broken[] = {SP("{\"mappings\":[{\"source\":\"a\",\"destination\":\"b\"},{"
					 "\"source\":\"{{.PodName\","
					 "\"destination\":\"c\"}]}")};
	const char *const dm[] = {SP("{" MAP ",\"deploymentMode\":{\"name\":\"prod\","
				     "\"source\":\"modes/{{.Nope}}\"}}")};

	(void)state;
	expect(names, unknown, STK_REASON_VALIDATION_FAILED, "spec.mappings[0].source");
	expect(names, unknown, STK_REASON_VALIDATION_FAILED, ".Gateway");
	expect(names, novar, STK_REASON_VALIDATION_FAILED, "spec.mappings[0].destination");
	expect(names, broken, STK_REASON_VALIDATION_FAILED, "spec.mappings[1].source");
	expect(names, dm, STK_REASON_VALIDATION_FAILED, "spec.deploymentMode.source");
}

static void test_validate__paths(void **state)
{
	const char *const names[] = {"p", NULL};
	const char *const abs[] = {
		SP("{\"mappings\":[{\"source\":\"/etc\",\"destination\":\"b\"}]}")};
	const char *const dots[] = {
		SP("{\"mappings\":[{\"source\":\"a\",\"destination\":\"x/../../b\"}]}")};

	(void)state;
	expect(names, abs, STK_REASON_VALIDATION_FAILED, "spec.mappings[0]: source");
	expect(names, dots, STK_REASON_VALIDATION_FAILED, "spec.mappings[0]: destination");
}

static void test_validate__dependencies(void **state)
{
	const char *const missing_n[] = {"area", NULL};
	const char *const missing[] = {SP("{" MAP ",\"dependsOn\":[{\"profileName\":\"site\"}]}")};
	const char *const self_n[] = {"area", NULL};
	const char *const self[] = {SP("{" MAP ",\"dependsOn\":[{\"profileName\":\"area\"}]}")};
	const char *const cycle_n[] = {"a", "b", NULL};
	const char *const cycle[] = {SP("{" MAP ",\"dependsOn\":[{\"profileName\":\"b\"}]}"),
				     SP("{" MAP ",\"dependsOn\":[{\"profileName\":\"a\"}]}")};
	const char *const long_n[] = {"a", "b", "c", NULL};
	const char *const long_cycle[] = {SP("{" MAP ",\"dependsOn\":[{\"profileName\":\"b\"}]}"),
					  SP("{" MAP ",\"dependsOn\":[{\"profileName\":\"c\"}]}"),
					  SP("{" MAP ",\"dependsOn\":[{\"profileName\":\"a\"}]}")};
	const char *const trans_n[] = {"line", "area", "site", NULL};
	const char *const trans[] = {SP("{" MAP ",\"dependsOn\":[{\"profileName\":\"area\"}]}"),
				     SP("{" MAP ",\"dependsOn\":[{\"profileName\":\"site\"}]}"),
				     SP("{" MAP "}")};

	(void)state;
	expect(missing_n, missing, STK_REASON_DEPENDENCY_NOT_FOUND,
	       "spec.dependsOn[0].profileName: SyncProfile 'site' not found");
	expect(self_n, self, STK_REASON_CYCLE_DETECTED, "depends on itself");
	expect(cycle_n, cycle, STK_REASON_CYCLE_DETECTED, "cycle");
	expect(long_n, long_cycle, STK_REASON_CYCLE_DETECTED, "cycle");
	expect(trans_n, trans, STK_REASON_TRANSITIVE_DEPENDENCY, "only one level");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate__accepts_templates_vars_and_one_level),
		cmocka_unit_test(test_validate__templates),
		cmocka_unit_test(test_validate__paths),
		cmocka_unit_test(test_validate__dependencies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
