#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stk/err.h"
#include "stk/lines.h"

/* Feeds `text` in chunks of `chunk` bytes and joins every line handed out with '|'. */
static void split(const char *text, size_t chunk, char *out, size_t cap)
{
	stk_lines l;
	size_t len = strlen(text), off = 0;
	const char *line;
	size_t n;

	out[0] = '\0';
	stk_lines_init(&l, 64);
	while (off < len) {
		size_t c = len - off < chunk ? len - off : chunk;
		assert_int_equal(stk_lines_feed(&l, text + off, c), 0);
		off += c;
		while (stk_lines_next(&l, &line, &n) == 1) {
			size_t used = strlen(out);
			assert_true(used + n + 2 < cap);
			memcpy(out + used, line, n);
			out[used + n] = '|';
			out[used + n + 1] = '\0';
		}
	}
	stk_lines_release(&l);
}

static void test_lines__any_chunking_gives_the_same_lines(void **state)
{
	const char text[] = "{\"type\":\"ADDED\"}\n\n{\"type\":\"MODIFIED\"}\r\n{\"a\":1}\npartial";
	char want[256], got[256];
	(void)state;
	split(text, sizeof(text), want, sizeof(want));
	assert_string_equal(want, "{\"type\":\"ADDED\"}|{\"type\":\"MODIFIED\"}|{\"a\":1}|");
	for (size_t chunk = 1; chunk < sizeof(text); chunk++) {
		split(text, chunk, got, sizeof(got));
		assert_string_equal(got, want);
	}
}

static void test_lines__partial_line_waits_for_its_newline(void **state)
{
	stk_lines l;
	const char *line;
	size_t n;
	(void)state;
	stk_lines_init(&l, 64);
	assert_int_equal(stk_lines_feed(&l, "{\"half\":", 8), 0);
	assert_int_equal(stk_lines_next(&l, &line, &n), 0);
	assert_int_equal(stk_lines_pending(&l), 8);
	assert_int_equal(stk_lines_feed(&l, "1}\n", 3), 0);
	assert_int_equal(stk_lines_next(&l, &line, &n), 1);
	assert_int_equal(n, 10);
	assert_memory_equal(line, "{\"half\":1}", 10);
	assert_int_equal(stk_lines_next(&l, &line, &n), 0);
	assert_int_equal(stk_lines_pending(&l), 0);
	stk_lines_release(&l);
}

static void test_lines__over_long_line_is_an_error(void **state)
{
	stk_lines l;
	char big[100];
	const char *line;
	size_t n;
	(void)state;
	memset(big, 'x', sizeof(big));
	/* Still arriving. */
	stk_lines_init(&l, 64);
	assert_int_equal(stk_lines_feed(&l, big, 65), 0);
	assert_int_equal(stk_lines_next(&l, &line, &n), STK_ETOOBIG);
	assert_int_equal(stk_lines_feed(&l, "\n", 1), STK_ETOOBIG);
	stk_lines_reset(&l);
	/* Complete inside one chunk, after a good line. */
	assert_int_equal(stk_lines_feed(&l, "ok\n", 3), 0);
	assert_int_equal(stk_lines_next(&l, &line, &n), 1);
	big[70] = '\n';
	assert_int_equal(stk_lines_feed(&l, big, 71), 0);
	assert_int_equal(stk_lines_next(&l, &line, &n), STK_ETOOBIG);
	big[70] = 'x';
	/* Exactly at the cap is fine. */
	stk_lines_reset(&l);
	assert_int_equal(stk_lines_feed(&l, big, 64), 0);
	assert_int_equal(stk_lines_feed(&l, "\r\n", 2), 0);
	assert_int_equal(stk_lines_next(&l, &line, &n), 1);
	assert_int_equal(n, 64);
	stk_lines_release(&l);
}

static void test_lines__memory_stays_bounded_on_a_long_stream(void **state)
{
	stk_lines l;
	const char *line;
	size_t n, count = 0;
	char chunk[4096];
	(void)state;
	/* 40-byte lines, chunks cut at 4096 so lines straddle chunk boundaries. */
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (i % 40 == 39) ? '\n' : 'a';
	stk_lines_init(&l, 1024);
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(stk_lines_feed(&l, chunk, sizeof(chunk)), 0);
		while (stk_lines_next(&l, &line, &n) == 1)
			count++;
		assert_true(l.buf.cap <= 4 * sizeof(chunk));
	}
	assert_true(count >= 2000 * (sizeof(chunk) / 40) - 1);
	stk_lines_release(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines__any_chunking_gives_the_same_lines),
		cmocka_unit_test(test_lines__partial_line_waits_for_its_newline),
		cmocka_unit_test(test_lines__over_long_line_is_an_error),
		cmocka_unit_test(test_lines__memory_stays_bounded_on_a_long_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
