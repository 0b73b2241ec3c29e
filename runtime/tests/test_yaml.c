#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stk/json.h"
#include "stk/yaml.h"

static char *to_json(const char *yaml, int *rc)
{
	yajl_val v = NULL;
	stk_buf b = STK_BUF_INIT(1 << 20);
	stk_err err = STK_ERR_INIT;

	*rc = stk_yaml_parse(&v, yaml, strlen(yaml), &err);
	if (*rc)
		return strdup(err.message);
	stk_json_write(&b, v);
	yajl_tree_free(v);
	return stk_buf_detach(&b, NULL);
}

static void expect(const char *yaml, const char *json)
{
	int rc;
	char *out = to_json(yaml, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(out, json);
	free(out);
}

static void expect_error(const char *yaml, int want, const char *part)
{
	int rc;
	char *out = to_json(yaml, &rc);

	assert_int_equal(rc, want);
	if (!strstr(out, part))
		fail_msg("'%s' lacks '%s'", out, part);
	free(out);
}

static void test_yaml__types_and_structure(void **state)
{
	(void)state;
	expect("a: 1\nb: true\nc: ~\nd: 'true'\ne: 1.5\nf: [x, \"2\", 3]\ng: {h: i}\n",
	       "{\"a\":1,\"b\":true,\"c\":null,\"d\":\"true\",\"e\":1.5,\"f\":[\"x\",\"2\",3],"
	       "\"g\":{\"h\":\"i\"}}");
	expect("spec:\n  mappings:\n  - {source: \"sites/{{.GatewayName}}\", destination: p}\n",
	       "{\"spec\":{\"mappings\":[{\"source\":\"sites/"
	       "{{.GatewayName}}\",\"destination\":\"p\"}]}}");
	expect("{\"json\": [1, {\"is\": \"yaml\"}]}", "{\"json\":[1,{\"is\":\"yaml\"}]}");
	expect("", "null");
	expect("a: &x {b: 1}\nc: *x\n", "{\"a\":{\"b\":1},\"c\":{\"b\":1}}");
	expect("first: 1\n---\nsecond: 2\n", "{\"first\":1}");
	expect("v: 1e999x\n", "{\"v\":\"1e999x\"}");
}

static void test_yaml__errors_and_bounds(void **state)
{
	char deep[1024];
	size_t n = 0;

	(void)state;
	expect_error("a: [1, 2\n", STK_EPARSE, "line");
	expect_error("a: *nope\n", STK_EPARSE, "nope");
	expect_error("? [a]\n: b\n", STK_EPARSE, "not a scalar");
	for (int i = 0; i < 100; i++)
		deep[n++] = '[';
	deep[n] = '\0';
	expect_error(deep, STK_ETOOBIG, "deeper");
	/* A "billion laughs" document is refused, not expanded. */
	expect_error("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		     "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
		     STK_ETOOBIG, "nodes");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml__types_and_structure),
		cmocka_unit_test(test_yaml__errors_and_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
