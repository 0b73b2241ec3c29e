#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "stk/err.h"

static void test_err__set_returns_code_and_formats(void **state)
{
	stk_err err = STK_ERR_INIT;
	(void)state;
	assert_int_equal(stk_err_set(&err, STK_ENOTFOUND, "gitsource %s/%s", "ns", "x"),
			 STK_ENOTFOUND);
	assert_int_equal(err.code, STK_ENOTFOUND);
	assert_string_equal(err.message, "gitsource ns/x");
	assert_string_equal(stk_err_name(err.code), "ENOTFOUND");
}

static void test_err__null_record_is_allowed(void **state)
{
	(void)state;
	assert_int_equal(stk_err_set(NULL, STK_EINVAL, "x"), STK_EINVAL);
	assert_int_equal(stk_err_wrap(NULL, "x"), STK_EINVAL);
	stk_err_clear(NULL);
}

static void test_err__long_message_is_truncated_with_marker(void **state)
{
	char big[2 * STK_ERR_MESSAGE_MAX];
	stk_err err = STK_ERR_INIT;
	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	stk_err_set(&err, STK_EINVAL, "%s", big);
	assert_int_equal(strlen(err.message), STK_ERR_MESSAGE_MAX - 1);
	assert_string_equal(err.message + STK_ERR_MESSAGE_MAX - 4, "...");
}

static void test_err__wrap_keeps_cause_and_status(void **state)
{
	stk_err err = STK_ERR_INIT;
	(void)state;
	stk_err_set(&err, STK_ECONFLICT, "the object has been modified");
	err.http_status = 409;
	assert_int_equal(stk_err_wrap(&err, "update %s", "cm/a"), STK_ECONFLICT);
	assert_string_equal(err.message, "update cm/a: the object has been modified");
	assert_int_equal(err.http_status, 409);
}

static void test_err__errno_message_names_cause(void **state)
{
	stk_err err = STK_ERR_INIT;
	(void)state;
	assert_int_equal(stk_err_errno(&err, 2, "open %s", "/x"), STK_EIO);
	assert_non_null(strstr(err.message, "open /x: "));
	assert_non_null(strstr(err.message, "No such file"));
}

static void test_err__every_code_has_a_distinct_name(void **state)
{
	(void)state;
	for (int a = STK_EUNSUPPORTED; a <= 0; a++) {
		assert_string_not_equal(stk_err_name(a), "EUNKNOWN");
		for (int b = a + 1; b <= 0; b++)
			assert_string_not_equal(stk_err_name(a), stk_err_name(b));
	}
	assert_string_equal(stk_err_name(-999), "EUNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err__set_returns_code_and_formats),
		cmocka_unit_test(test_err__null_record_is_allowed),
		cmocka_unit_test(test_err__long_message_is_truncated_with_marker),
		cmocka_unit_test(test_err__wrap_keeps_cause_and_status),
		cmocka_unit_test(test_err__errno_message_names_cause),
		cmocka_unit_test(test_err__every_code_has_a_distinct_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
