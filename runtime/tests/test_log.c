#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "stk/limits.h"
#include "stk/log.h"

/* Reads what was logged to a temporary file since the last call. */
static char *slurp(FILE *f)
{
	long n;
	char *s;
	fflush(f);
	n = ftell(f);
	s = calloc(1, (size_t)n + 1);
	rewind(f);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	rewind(f);
	assert_int_equal(ftruncate(fileno(f), 0), 0);
	return s;
}

static const char *field(yajl_val obj, const char *key)
{
	const char *path[] = {key, NULL};
	yajl_val v = yajl_tree_get(obj, path, yajl_t_string);
	return v ? YAJL_GET_STRING(v) : NULL;
}

static void test_log__line_is_valid_json_with_fields(void **state)
{
	FILE *f = tmpfile();
	char errbuf[256];
	char *out;
	yajl_val v;
	(void)state;
	stk_log_setup("source-controller", STK_LOG_INFO, fileno(f));
	stk_log_info("fetched \"repo\"", "object", "site1/plant", "commit", "2c6a06\n", NULL);
	out = slurp(f);
	assert_non_null(strchr(out, '\n'));
	assert_int_equal(strchr(out, '\n')[1], '\0');
	v = yajl_tree_parse(out, errbuf, sizeof(errbuf));
	assert_non_null(v);
	assert_string_equal(field(v, "level"), "info");
	assert_string_equal(field(v, "msg"), "fetched \"repo\"");
	assert_string_equal(field(v, "controller"), "source-controller");
	assert_string_equal(field(v, "object"), "site1/plant");
	assert_string_equal(field(v, "commit"), "2c6a06\n");
	assert_int_equal(strlen(field(v, "ts")), 24);
	assert_int_equal(field(v, "ts")[23], 'Z');
	yajl_tree_free(v);
	free(out);
	fclose(f);
}

static void test_log__level_filter(void **state)
{
	FILE *f = tmpfile();
	char *out;
	(void)state;
	stk_log_setup("x", STK_LOG_WARN, fileno(f));
	assert_false(stk_log_enabled(STK_LOG_INFO));
	stk_log_info("hidden", NULL);
	stk_log_debug("hidden", NULL);
	stk_log_error("shown", "k", NULL, NULL);
	out = slurp(f);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "\"k\":null"));
	free(out);
	fclose(f);
}

static void test_log__oversized_line_is_truncated_but_valid(void **state)
{
	FILE *f = tmpfile();
	char *big = malloc(STK_LIMIT_LOG_LINE * 2);
	char errbuf[256];
	char *out;
	yajl_val v;
	(void)state;
	memset(big, 'x', STK_LIMIT_LOG_LINE * 2 - 1);
	big[STK_LIMIT_LOG_LINE * 2 - 1] = '\0';
	stk_log_setup("x", STK_LOG_DEBUG, fileno(f));
	stk_log_info("m", "small", "kept", "big", big, NULL);
	out = slurp(f);
	assert_true(strlen(out) <= STK_LIMIT_LOG_LINE);
	v = yajl_tree_parse(out, errbuf, sizeof(errbuf));
	assert_non_null(v);
	assert_string_equal(field(v, "small"), "kept");
	assert_null(field(v, "big"));
	{
		const char *path[] = {"truncated", NULL};
		assert_true(YAJL_IS_TRUE(yajl_tree_get(v, path, yajl_t_true)));
	}
	yajl_tree_free(v);
	free(out);
	free(big);
	fclose(f);
}

static void test_log__parse_level(void **state)
{
	enum stk_log_level l = STK_LOG_INFO;
	stk_err err = STK_ERR_INIT;
	(void)state;
	assert_int_equal(stk_log_parse_level("debug", &l, NULL), 0);
	assert_int_equal(l, STK_LOG_DEBUG);
	assert_int_equal(stk_log_parse_level("warning", &l, NULL), 0);
	assert_int_equal(l, STK_LOG_WARN);
	assert_int_equal(stk_log_parse_level("verbose", &l, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "verbose"));
}

static void test_log__repeat_due_once_per_message(void **state)
{
	struct stk_log_repeat r;
	(void)state;

	memset(&r, 0, sizeof(r));
	assert_true(stk_log_repeat_due(&r, "list: forbidden", 60000));
	assert_false(stk_log_repeat_due(&r, "list: forbidden", 60000));
	assert_true(stk_log_repeat_due(&r, "watch: connection refused", 60000));
	assert_true(stk_log_repeat_due(&r, "list: forbidden", 60000));
	assert_true(stk_log_repeat_due(&r, "list: forbidden", 0)); /* the repeat interval passed */
	memset(&r, 0, sizeof(r));				   /* after a success */
	assert_true(stk_log_repeat_due(&r, "list: forbidden", 60000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log__line_is_valid_json_with_fields),
		cmocka_unit_test(test_log__level_filter),
		cmocka_unit_test(test_log__oversized_line_is_truncated_but_valid),
		cmocka_unit_test(test_log__parse_level),
		cmocka_unit_test(test_log__repeat_due_once_per_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
