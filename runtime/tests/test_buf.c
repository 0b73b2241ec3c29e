#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stk/buf.h"
#include "stk/err.h"

static void test_buf__append_and_printf(void **state)
{
	stk_buf b = STK_BUF_INIT(1024);
	(void)state;
	assert_int_equal(stk_buf_puts(&b, "a="), 0);
	assert_int_equal(stk_buf_printf(&b, "%d/%s", 42, "x"), 0);
	assert_string_equal(b.ptr, "a=42/x");
	assert_int_equal(b.len, 6);
	stk_buf_release(&b);
	assert_null(b.ptr);
}

static void test_buf__cap_is_enforced_and_buffer_unchanged(void **state)
{
	stk_buf b = STK_BUF_INIT(8);
	(void)state;
	assert_int_equal(stk_buf_puts(&b, "12345678"), 0);
	assert_int_equal(stk_buf_putc(&b, '9'), STK_ETOOBIG);
	assert_int_equal(stk_buf_printf(&b, "%s", "x"), STK_ETOOBIG);
	assert_string_equal(b.ptr, "12345678");
	stk_buf_release(&b);
}

static void test_buf__grows_across_many_appends(void **state)
{
	stk_buf b = STK_BUF_INIT(1 << 20);
	(void)state;
	for (int i = 0; i < 10000; i++)
		assert_int_equal(stk_buf_put(&b, "abcdefgh", 8), 0);
	assert_int_equal(b.len, 80000);
	assert_memory_equal(b.ptr + 79992, "abcdefgh", 8);
	assert_int_equal(b.ptr[b.len], '\0');
	stk_buf_release(&b);
}

static void test_buf__json_string_escapes(void **state)
{
	stk_buf b = STK_BUF_INIT(1024);
	const char in[] = "q\"b\\n\n\t\x01\xc3\xa9\xff";
	(void)state;
	assert_int_equal(stk_buf_put_json_string(&b, in, sizeof(in) - 1), 0);
	/* é passes through; the stray 0xff becomes U+FFFD. */
	assert_string_equal(b.ptr, "\"q\\\"b\\\\n\\n\\t\\u0001\xc3\xa9\xef\xbf\xbd\"");
	stk_buf_release(&b);
}

static void test_buf__json_string_rejects_overlong_and_surrogates(void **state)
{
	stk_buf b = STK_BUF_INIT(1024);
	const char in[] = "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80";
	(void)state;
	assert_int_equal(stk_buf_put_json_string(&b, in, sizeof(in) - 1), 0);
	assert_null(strchr(b.ptr, '\xc0'));
	assert_null(strchr(b.ptr, '\xed'));
	assert_null(strchr(b.ptr, '\xf4'));
	stk_buf_release(&b);
}

static void test_buf__json_string_too_big_leaves_buffer(void **state)
{
	stk_buf b = STK_BUF_INIT(10);
	(void)state;
	stk_buf_puts(&b, "ab");
	assert_int_equal(stk_buf_put_json_string(&b, "0123456789", 10), STK_ETOOBIG);
	assert_string_equal(b.ptr, "ab");
	stk_buf_release(&b);
}

static void test_buf__json_pointer_token_escapes(void **state)
{
	stk_buf b = STK_BUF_INIT(64);
	(void)state;

	assert_int_equal(stk_buf_put_json_pointer_token(&b, "stoker.io/cr-name"), 0);
	assert_int_equal(stk_buf_put_json_pointer_token(&b, "|a~b/~1"), 0);
	assert_string_equal(b.ptr, "stoker.io~1cr-name|a~0b~1~01");
	stk_buf_release(&b);
}

static void test_buf__consume_and_detach(void **state)
{
	stk_buf b = STK_BUF_INIT(64);
	size_t len;
	char *p;
	(void)state;
	stk_buf_puts(&b, "line1\nline2");
	stk_buf_consume(&b, 6);
	assert_string_equal(b.ptr, "line2");
	p = stk_buf_detach(&b, &len);
	assert_string_equal(p, "line2");
	assert_int_equal(len, 5);
	assert_null(b.ptr);
	free(p);
	p = stk_buf_detach(&b, &len);
	assert_string_equal(p, "");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf__append_and_printf),
		cmocka_unit_test(test_buf__cap_is_enforced_and_buffer_unchanged),
		cmocka_unit_test(test_buf__grows_across_many_appends),
		cmocka_unit_test(test_buf__json_string_escapes),
		cmocka_unit_test(test_buf__json_string_rejects_overlong_and_surrogates),
		cmocka_unit_test(test_buf__json_string_too_big_leaves_buffer),
		cmocka_unit_test(test_buf__json_pointer_token_escapes),
		cmocka_unit_test(test_buf__consume_and_detach),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
