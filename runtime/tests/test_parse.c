#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "stk/parse.h"

static int64_t dur(const char *s, int *rc)
{
	int64_t ms = -1;
	*rc = stk_parse_duration_ms(s, strlen(s), &ms, NULL);
	return ms;
}

static void test_parse__i64_ranges(void **state)
{
	int64_t v = 7;
	stk_err err = STK_ERR_INIT;
	(void)state;
	assert_int_equal(stk_parse_i64("42", 2, 0, 100, &v, NULL), 0);
	assert_int_equal(v, 42);
	assert_int_equal(stk_parse_i64("-9223372036854775808", 20, INT64_MIN, 0, &v, NULL), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(stk_parse_i64("9223372036854775808", 19, INT64_MIN, INT64_MAX, &v, &err),
			 STK_EINVAL);
	v = 7;
	assert_int_equal(stk_parse_i64("101", 3, 0, 100, &v, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "out of range"));
	assert_int_equal(v, 7);
	assert_int_equal(stk_parse_i64("", 0, 0, 1, &v, NULL), STK_EPARSE);
	assert_int_equal(stk_parse_i64("-", 1, -1, 1, &v, NULL), STK_EPARSE);
	assert_int_equal(stk_parse_i64("1 ", 2, 0, 9, &v, NULL), STK_EPARSE);
	assert_int_equal(stk_parse_i64("0x1", 3, 0, 9, &v, NULL), STK_EPARSE);
	/* Parses only the given slice, not up to a NUL. */
	assert_int_equal(stk_parse_i64("12abc", 2, 0, 99, &v, NULL), 0);
	assert_int_equal(v, 12);
}

static void test_parse__bool(void **state)
{
	bool b = false;
	(void)state;
	assert_int_equal(stk_parse_bool("true", 4, &b, NULL), 0);
	assert_true(b);
	assert_int_equal(stk_parse_bool("0", 1, &b, NULL), 0);
	assert_false(b);
	assert_int_equal(stk_parse_bool("yes", 3, &b, NULL), STK_EPARSE);
	assert_int_equal(stk_parse_bool("True", 4, &b, NULL), STK_EPARSE);
}

static void test_parse__durations_like_go(void **state)
{
	int rc;
	(void)state;
	assert_int_equal(dur("60s", &rc), 60000);
	assert_int_equal(rc, 0);
	assert_int_equal(dur("1h2m3.5s", &rc), 3723500);
	assert_int_equal(dur("500ms", &rc), 500);
	assert_int_equal(dur("1.5h", &rc), 5400000);
	assert_int_equal(dur("0", &rc), 0);
	assert_int_equal(dur("1500us", &rc), 1);
	assert_int_equal(dur("\xc2\xb5s", &rc), -1);
	assert_int_equal(rc, STK_EPARSE);
	assert_int_equal(dur("2m500ms", &rc), 120500);
	assert_int_equal(dur(".5m", &rc), 30000);
	assert_int_equal(rc, 0);
}

static void test_parse__durations_rejected(void **state)
{
	int rc;
	stk_err err = STK_ERR_INIT;
	int64_t ms = 5;
	(void)state;
	const char *bad[] = {"", "s", "10", "-5s", "5x", "1h-", "1..5s", " 5s", "5s "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dur(bad[i], &rc);
		assert_int_equal(rc, STK_EPARSE);
	}
	assert_int_equal(stk_parse_duration_ms("99999999999h", 12, &ms, &err), STK_ETOOBIG);
	assert_int_equal(ms, 5);
	assert_non_null(strstr(err.message, "too large"));
}

static void test_parse__hostport(void **state)
{
	char host[64];
	int port = -1;
	(void)state;
	assert_int_equal(stk_parse_hostport(":8080", host, sizeof(host), &port, NULL), 0);
	assert_string_equal(host, "");
	assert_int_equal(port, 8080);
	assert_int_equal(stk_parse_hostport("127.0.0.1:0", host, sizeof(host), &port, NULL), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 0);
	assert_int_equal(stk_parse_hostport("[::1]:9443", host, sizeof(host), &port, NULL), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 9443);
	assert_int_equal(stk_parse_hostport("8080", host, sizeof(host), &port, NULL), STK_EPARSE);
	assert_int_equal(stk_parse_hostport(":70000", host, sizeof(host), &port, NULL), STK_EPARSE);
	assert_int_equal(stk_parse_hostport("::1:80", host, sizeof(host), &port, NULL), STK_EPARSE);
	assert_int_equal(stk_parse_hostport("[::1]80", host, sizeof(host), &port, NULL),
			 STK_EPARSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse__i64_ranges),
		cmocka_unit_test(test_parse__bool),
		cmocka_unit_test(test_parse__durations_like_go),
		cmocka_unit_test(test_parse__durations_rejected),
		cmocka_unit_test(test_parse__hostport),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
