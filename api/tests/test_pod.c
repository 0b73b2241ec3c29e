#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stk/api/api.h"
#include "stk/json.h"

static yajl_val parse(const char *s)
{
	yajl_val v = NULL;

	assert_int_equal(stk_json_parse(&v, s, strlen(s), 1 << 16, NULL), 0);
	return v;
}

static void test_pod__slim_keeps_what_controllers_read(void **state)
{
	yajl_val v = parse(
		"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"gw-0\","
		"\"namespace\":\"site1\",\"uid\":\"u\",\"resourceVersion\":\"7\",\"generation\":1,"
		"\"labels\":{\"app.kubernetes.io/name\":\"site\",\"team\":\"x\"},"
		"\"annotations\":{\"stoker.io/cr-name\":\"plant\",\"other/ann\":\"big\"},"
		"\"ownerReferences\":[{\"kind\":\"StatefulSet\"}]},"
		"\"spec\":{\"initContainers\":[{\"name\":\"stoker-agent\",\"image\":\"a\",\"env\":["
		"]}],"
		"\"containers\":[{\"name\":\"gateway\",\"image\":\"ignition\"}],\"volumes\":[]},"
		"\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.1\",\"conditions\":[]}}");
	stk_buf b = STK_BUF_INIT(1 << 16);

	(void)state;
	stk_api_pod_slim(v, NULL);
	stk_json_write(&b, v);
	assert_string_equal(
		b.ptr,
		"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"gw-0\","
		"\"namespace\":\"site1\",\"uid\":\"u\",\"resourceVersion\":\"7\","
		"\"generation\":1,\"labels\":{\"app.kubernetes.io/name\":\"site\"},"
		"\"annotations\":{\"stoker.io/cr-name\":\"plant\"}},"
		"\"spec\":{\"initContainers\":[{\"name\":\"stoker-agent\"}],"
		"\"containers\":[{\"name\":\"gateway\"}]},\"status\":{\"phase\":\"Running\"}}");
	assert_true(stk_api_pod_has_agent(v));
	assert_true(stk_api_pod_running(v));
	assert_true(stk_api_pod_alive(v));
	assert_string_equal(stk_api_gateway_name(v), "site");
	stk_buf_release(&b);
	yajl_tree_free(v);
}

static void test_pod__gateway_name_precedence_and_phases(void **state)
{
	yajl_val a = parse("{\"metadata\":{\"name\":\"p\",\"labels\":{\"app.kubernetes.io/name\":"
			   "\"l\"},\"annotations\":{\"stoker.io/gateway-name\":\"g\"}}}");
	yajl_val b = parse("{\"metadata\":{\"name\":\"p\",\"annotations\":{\"stoker.io/"
			   "gateway-name\":\"\"}},\"status\":{\"phase\":\"Succeeded\"}}");
	yajl_val c = parse("{\"metadata\":{\"name\":\"p\",\"deletionTimestamp\":\"x\"},"
			   "\"spec\":{\"containers\":[{\"name\":\"stoker-agent\"}]},"
			   "\"status\":{\"phase\":\"Running\"}}");

	(void)state;
	assert_string_equal(stk_api_gateway_name(a), "g");
	assert_string_equal(stk_api_gateway_name(b), "p"); /* empty annotation: next rule */
	assert_false(stk_api_pod_has_agent(a));
	assert_false(stk_api_pod_running(a)); /* no phase */
	assert_true(stk_api_pod_alive(a));
	assert_false(stk_api_pod_alive(b)); /* finished */
	assert_true(stk_api_pod_has_agent(c));
	assert_false(stk_api_pod_running(c)); /* being deleted */
	assert_false(stk_api_pod_alive(c));
	yajl_tree_free(a);
	yajl_tree_free(b);
	yajl_tree_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pod__slim_keeps_what_controllers_read),
		cmocka_unit_test(test_pod__gateway_name_precedence_and_phases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
