#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "stk/semver.h"

static bool matches(const char *range, const char *version)
{
	stk_semver_range *r = NULL;
	struct stk_semver v;
	bool m;

	if (stk_semver_range_parse(&r, range, NULL))
		fail_msg("range \"%s\" did not parse", range);
	if (stk_semver_parse(&v, version))
		fail_msg("version \"%s\" did not parse", version);
	m = stk_semver_range_match(r, &v);
	stk_semver_range_free(r);
	return m;
}

static void test_semver__parse_and_precedence(void **state)
{
	struct stk_semver a, b;
	(void)state;
	assert_int_equal(stk_semver_parse(&a, "v1.2.3-rc.1+build.5"), 0);
	assert_int_equal(a.major, 1);
	assert_string_equal(a.pre, "rc.1");
	assert_int_equal(stk_semver_parse(&b, "1.2.3"), 0);
	assert_true(stk_semver_cmp(&a, &b) < 0);
	const char *order[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
			       "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
			       "1.0.0-rc.1",  "1.0.0",	       "1.0.1",
			       "1.10.0",      "2.0.0"};
	for (size_t i = 0; i + 1 < sizeof(order) / sizeof(order[0]); i++) {
		assert_int_equal(stk_semver_parse(&a, order[i]), 0);
		assert_int_equal(stk_semver_parse(&b, order[i + 1]), 0);
		if (stk_semver_cmp(&a, &b) >= 0)
			fail_msg("%s should sort before %s", order[i], order[i + 1]);
	}
	const char *bad[] = {"1.2", "01.2.3", "1.2.3-", "1.2.3-a..b", "1.2.3+", "x.y.z", "1.2.3 "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(stk_semver_parse(&a, bad[i]), STK_EPARSE);
}

static void test_semver__ranges(void **state)
{
	(void)state;
	assert_true(matches(">=1.0.0 <2.0.0", "1.9.9"));
	assert_false(matches(">=1.0.0 <2.0.0", "2.0.0"));
	assert_false(matches(">=1.0.0 <2.0.0", "2.0.0-rc.1"));
	assert_true(matches(">=1.0.0, <2.0.0", "1.0.0"));
	assert_true(matches("^1.2.3", "1.9.0"));
	assert_false(matches("^1.2.3", "1.2.2"));
	assert_false(matches("^0.2.3", "0.3.0"));
	assert_true(matches("~1.2.3", "1.2.9"));
	assert_false(matches("~1.2.3", "1.3.0"));
	assert_true(matches("1.2.x", "1.2.7"));
	assert_false(matches("1.2.x", "1.3.0"));
	assert_true(matches("*", "3.1.4"));
	assert_false(matches("*", "3.1.4-rc.1"));
	assert_true(matches("1.2 - 1.4", "1.4.9"));
	assert_false(matches("1.2 - 1.4.0", "1.4.1"));
	assert_true(matches("<1.0.0 || >=2.0.0", "2.1.0"));
	assert_false(matches("<1.0.0 || >=2.0.0", "1.5.0"));
	assert_true(matches(">= 2.0.0-rc.1", "2.0.0-rc.2"));
	assert_false(matches(">= 2.0.0-rc.1", "2.1.0-rc.1"));
	assert_true(matches("!=1.1.0", "1.1.1"));
	assert_false(matches("!=1.1.0", "1.1.0"));
}

static void test_semver__bad_ranges_are_errors(void **state)
{
	stk_semver_range *r = NULL;
	stk_err err = STK_ERR_INIT;
	(void)state;
	assert_int_equal(stk_semver_range_parse(&r, ">=", &err), STK_EPARSE);
	assert_non_null(strstr(err.message, "is not a semver range"));
	assert_int_equal(stk_semver_range_parse(&r, "banana", &err), STK_EPARSE);
	assert_int_equal(stk_semver_range_parse(&r, "1.2 -", &err), STK_EPARSE);
	assert_int_equal(stk_semver_range_parse(&r, ">1.0.0 ||", &err), STK_EPARSE);
}

static void test_semver__best_tag(void **state)
{
	const char *tags[] = {"v1.0.0", "v1.1.0", "v2.0.0-rc.1", "v2.0.0", "latest", "v1.10.0"};
	stk_semver_range *r = NULL;
	(void)state;
	assert_int_equal(stk_semver_range_parse(&r, "<2.0.0", NULL), 0);
	assert_int_equal(stk_semver_range_best(r, tags, 6), 5);
	stk_semver_range_free(r);
	assert_int_equal(stk_semver_range_parse(&r, ">=2.0.0-rc.1", NULL), 0);
	assert_int_equal(stk_semver_range_best(r, tags, 6), 3);
	stk_semver_range_free(r);
	assert_int_equal(stk_semver_range_parse(&r, ">=3", NULL), 0);
	assert_int_equal(stk_semver_range_best(r, tags, 6), -1);
	stk_semver_range_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_semver__parse_and_precedence),
		cmocka_unit_test(test_semver__ranges),
		cmocka_unit_test(test_semver__bad_ranges_are_errors),
		cmocka_unit_test(test_semver__best_tag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
