#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stk/base64.h"

static void round_trip(const char *plain, const char *encoded)
{
	char *e = stk_base64_encode(plain, strlen(plain)), *d = NULL;
	size_t n = 99;

	assert_string_equal(e, encoded);
	assert_int_equal(stk_base64_decode(e, strlen(e), &d, &n, NULL), 0);
	assert_int_equal(n, strlen(plain));
	assert_string_equal(d, plain);
	free(e);
	free(d);
}

static void test_base64__rfc4648_vectors(void **state)
{
	(void)state;
	round_trip("", "");
	round_trip("f", "Zg==");
	round_trip("fo", "Zm8=");
	round_trip("foo", "Zm9v");
	round_trip("foob", "Zm9vYg==");
	round_trip("fooba", "Zm9vYmE=");
	round_trip("foobar", "Zm9vYmFy");
}

static void test_base64__binary_and_refusals(void **state)
{
	static const unsigned char bin[] = {0, 0xff, 0x10, 0, 0x80};
	char *e = stk_base64_encode(bin, sizeof(bin)), *d = NULL;
	size_t n = 0;
	stk_err err = STK_ERR_INIT;
	static const char *const bad[] = {"Zg=",  "Zg",	  "Z===",     "Zm=v", "Zm9v\n",
					  "Zm 9", "=Zm9", "Zm9v*A==", NULL};

	(void)state;
	assert_int_equal(stk_base64_decode(e, strlen(e), &d, &n, NULL), 0);
	assert_int_equal(n, sizeof(bin));
	assert_memory_equal(d, bin, sizeof(bin));
	free(e);
	free(d);
	for (size_t i = 0; bad[i]; i++) {
		d = (char *)1;
		assert_int_equal(stk_base64_decode(bad[i], strlen(bad[i]), &d, NULL, &err),
				 STK_EPARSE);
		assert_null(d);
		assert_string_equal(err.message, "not base64");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64__rfc4648_vectors),
		cmocka_unit_test(test_base64__binary_and_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
