#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stk/json.h"

static void test_json__parse_and_lookup(void **state)
{
	const char doc[] = "{\"metadata\":{\"name\":\"a\",\"generation\":3,\"labels\":{}},"
			   "\"spec\":{\"suspend\":false,\"ref\":{\"branch\":\"main\"}},"
			   "\"items\":[1,2],\"big\":1e400}trailing";
	yajl_val v = NULL;
	int64_t i = 0;
	bool b = true;
	(void)state;
	/* Only the given slice is parsed: the bytes after the object are not seen. */
	assert_int_equal(stk_json_parse(&v, doc, strlen(doc) - 8, 4096, NULL), 0);
	assert_string_equal(stk_json_str(v, "metadata", "name", NULL), "a");
	assert_string_equal(stk_json_str(v, "spec", "ref", "branch", NULL), "main");
	assert_true(stk_json_int(v, &i, "metadata", "generation", NULL));
	assert_int_equal(i, 3);
	assert_true(stk_json_bool(v, &b, "spec", "suspend", NULL));
	assert_false(b);
	assert_non_null(stk_json_obj(v, "metadata", "labels", NULL));
	assert_non_null(stk_json_arr(v, "items", NULL));
	/* Missing steps and wrong types give NULL/false, never a crash. */
	assert_null(stk_json_str(v, "metadata", "generation", NULL));
	assert_null(stk_json_str(v, "items", "x", NULL));
	assert_null(stk_json_obj(v, "nope", "deeper", NULL));
	assert_false(stk_json_int(v, &i, "big", NULL));
	assert_false(stk_json_bool(v, &b, "metadata", NULL));
	assert_null(stk_json_get(NULL, "a", NULL));
	yajl_tree_free(v);
}

static void test_json__errors(void **state)
{
	yajl_val v = NULL;
	stk_err err = STK_ERR_INIT;
	(void)state;
	assert_int_equal(stk_json_parse(&v, "{\"a\":", 5, 100, &err), STK_EPARSE);
	assert_null(strchr(err.message, '\n'));
	assert_non_null(strstr(err.message, "invalid JSON"));
	assert_int_equal(stk_json_parse(&v, "{\"a\":1}", 7, 6, &err), STK_ETOOBIG);
	assert_int_equal(stk_json_parse(&v, "{\"a\":\0}", 7, 100, &err), STK_EPARSE);
	assert_null(v);
}

static void test_json__write_round_trips(void **state)
{
	const char doc[] = "{\"s\":\"q\\\"\\n\\u00e9\",\"n\":-1.50,\"i\":9007199254740993,"
			   "\"t\":true,\"f\":false,\"z\":null,\"a\":[{},[]],\"o\":{\"k\":1}}";
	yajl_val v = NULL;
	stk_buf b = STK_BUF_INIT(4096);
	(void)state;
	assert_int_equal(stk_json_parse(&v, doc, strlen(doc), 4096, NULL), 0);
	assert_int_equal(stk_json_write(&b, v), 0);
	/* Numbers keep their spelling; strings are re-escaped (é as UTF-8). */
	assert_string_equal(b.ptr,
			    "{\"s\":\"q\\\"\\n\xc3\xa9\",\"n\":-1.50,\"i\":9007199254740993,"
			    "\"t\":true,\"f\":false,\"z\":null,\"a\":[{},[]],\"o\":{\"k\":1}}");
	yajl_tree_free(v);
	stk_buf_release(&b);
}

static char *write_str(yajl_val v)
{
	stk_buf b = STK_BUF_INIT(1 << 16);

	assert_int_equal(stk_json_write(&b, v), 0);
	return stk_buf_detach(&b, NULL);
}

static void test_json__edit_in_place(void **state)
{
	static const char in[] = "{\"a\":1,\"b\":{\"x\":[1,2]},\"c\":\"s\",\"d\":null}";
	static const char *const keep[] = {"a", "c", "zz", NULL};
	yajl_val v;
	char *out;

	(void)state;
	assert_int_equal(stk_json_parse(&v, in, strlen(in), 1 << 16, NULL), 0);
	assert_true(stk_json_remove(v, "b"));
	assert_false(stk_json_remove(v, "b"));
	assert_false(stk_json_remove(NULL, "b"));
	stk_json_keep(v, keep);
	out = write_str(v);
	assert_string_equal(out, "{\"a\":1,\"c\":\"s\"}");
	free(out);
	assert_int_equal(stk_json_set_string(v, "a", "one"), 0);
	assert_int_equal(stk_json_set_string(v, "new", "v\"q"), 0);
	out = write_str(v);
	assert_string_equal(out, "{\"c\":\"s\",\"a\":\"one\",\"new\":\"v\\\"q\"}");
	free(out);
	assert_int_equal(stk_json_set_string(stk_json_get(v, "c", NULL), "k", "v"), STK_EINVAL);
	stk_json_keep(v, (const char *const[]){NULL});
	out = write_str(v);
	assert_string_equal(out, "{}");
	free(out);
	yajl_tree_free(v); /* valgrind twin: nothing leaks, nothing freed twice */
}

/* A hostile document nested 500,000 deep used to crash yajl's recursive free. */
static void test_json__nesting_is_capped(void **state)
{
	size_t n = 500000;
	char *deep = malloc(2 * n + 1);
	yajl_val v = NULL;
	stk_err err = STK_ERR_INIT;
	(void)state;

	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	assert_int_equal(stk_json_parse(&v, deep, 2 * n, 4 * n, &err), STK_EPARSE);
	assert_non_null(strstr(err.message, "deeper than"));
	/* The cap itself is accepted, and brackets inside strings do not count. */
	assert_int_equal(stk_json_parse(&v, deep + n - 512, 1024, 4 * n, &err), 0);
	yajl_tree_free(v);
	{
		const char *str = "{\"a\":\"[[[[[[[[[[[[\"}";
		assert_int_equal(stk_json_parse(&v, str, strlen(str), 100, &err), 0);
	}
	yajl_tree_free(v);
	free(deep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json__nesting_is_capped),
		cmocka_unit_test(test_json__parse_and_lookup),
		cmocka_unit_test(test_json__errors),
		cmocka_unit_test(test_json__write_round_trips),
		cmocka_unit_test(test_json__edit_in_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
