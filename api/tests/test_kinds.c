#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "stk/api/kinds.h"

static void test_kinds__lookup_by_kind_plural_and_short_name(void **state)
{
	(void)state;
	assert_int_equal(stk_api_kind_lookup("Stoker")->kind, STK_KIND_STOKER);
	assert_int_equal(stk_api_kind_lookup("stk")->kind, STK_KIND_STOKER);
	assert_int_equal(stk_api_kind_lookup("gitsources")->kind, STK_KIND_GITSOURCE);
	assert_int_equal(stk_api_kind_lookup("gitsrc")->kind, STK_KIND_GITSOURCE);
	assert_int_equal(stk_api_kind_lookup("sp")->kind, STK_KIND_SYNCPROFILE);
	assert_int_equal(stk_api_kind_lookup("Alert")->kind, STK_KIND_ALERT);
	assert_null(stk_api_kind_lookup("stoker"));
	assert_null(stk_api_kind_lookup("Pod"));
	assert_null(stk_api_kind_lookup(""));
}

static void test_kinds__groups_and_versions_match_design(void **state)
{
	(void)state;
	assert_string_equal(stk_api_version_of(STK_KIND_GITSOURCE), "source.stoker.io/v1alpha1");
	assert_string_equal(stk_api_version_of(STK_KIND_SYNCPROFILE), "stoker.io/v1alpha1");
	assert_string_equal(stk_api_version_of(STK_KIND_STOKER), "stoker.io/v1alpha1");
	assert_string_equal(stk_api_version_of(STK_KIND_ALERT), "notification.stoker.io/v1alpha1");
	assert_null(stk_api_kind(STK_KIND_COUNT));
	assert_null(stk_api_version_of(STK_KIND_COUNT));
	for (int k = 0; k < STK_KIND_COUNT; k++)
		assert_int_equal(stk_api_kind((enum stk_api_kind)k)->kind, k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds__lookup_by_kind_plural_and_short_name),
		cmocka_unit_test(test_kinds__groups_and_versions_match_design),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
