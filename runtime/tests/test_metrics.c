#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "stk/buf.h"
#include "stk/err.h"
#include "stk/metrics.h"

static char *render(stk_metrics *m)
{
	stk_buf b = STK_BUF_INIT(1 << 20);
	assert_int_equal(stk_metrics_render(m, &b), 0);
	return stk_buf_detach(&b, NULL);
}

static void test_metrics__counter_series_render_sorted_with_help_and_type(void **state)
{
	stk_metrics *m = stk_metrics_new();
	stk_metrics_family *c =
		stk_metrics_counter(m, "stoker_reconcile_total", "Reconciles by result.",
				    (const char *[]){"kind", "result", NULL});
	char *text;
	(void)state;

	stk_metrics_inc(c, (const char *[]){"Stoker", "success"});
	stk_metrics_inc(c, (const char *[]){"GitSource", "error"});
	stk_metrics_add(c, (const char *[]){"Stoker", "success"}, 2);
	text = render(m);
	assert_string_equal(text, "# HELP stoker_reconcile_total Reconciles by result.\n"
				  "# TYPE stoker_reconcile_total counter\n"
				  "stoker_reconcile_total{kind=\"GitSource\",result=\"error\"} 1\n"
				  "stoker_reconcile_total{kind=\"Stoker\",result=\"success\"} 3\n");
	free(text);
	stk_metrics_free(m);
}

static void test_metrics__families_sorted_and_unlabelled_start_at_zero(void **state)
{
	stk_metrics *m = stk_metrics_new();
	stk_metrics_family *g;
	char *text;
	(void)state;

	g = stk_metrics_gauge(m, "stoker_leader", "1 while leading.", NULL);
	stk_metrics_counter(m, "a_total", "First by name.", NULL);
	text = render(m);
	assert_string_equal(text, "# HELP a_total First by name.\n"
				  "# TYPE a_total counter\n"
				  "a_total 0\n"
				  "# HELP stoker_leader 1 while leading.\n"
				  "# TYPE stoker_leader gauge\n"
				  "stoker_leader 0\n");
	free(text);
	stk_metrics_set(g, NULL, 1);
	text = render(m);
	assert_non_null(strstr(text, "\nstoker_leader 1\n"));
	free(text);
	stk_metrics_free(m);
}

static void test_metrics__label_values_and_help_are_escaped(void **state)
{
	stk_metrics *m = stk_metrics_new();
	stk_metrics_family *g = stk_metrics_gauge(m, "x", "line1\nback\\slash \"q\"",
						  (const char *[]){"msg", NULL});
	char *text;
	(void)state;

	stk_metrics_set(g, (const char *[]){"a\"b\\c\nd"}, 1);
	text = render(m);
	assert_string_equal(text, "# HELP x line1\\nback\\\\slash \"q\"\n"
				  "# TYPE x gauge\n"
				  "x{msg=\"a\\\"b\\\\c\\nd\"} 1\n");
	free(text);
	stk_metrics_free(m);
}

static void test_metrics__invalid_utf8_label_value_is_replaced_and_stable(void **state)
{
	stk_metrics *m = stk_metrics_new();
	stk_metrics_family *c = stk_metrics_counter(m, "c_total", "h", (const char *[]){"v", NULL});
	double v = 0;
	char *text;
	(void)state;

	stk_metrics_inc(c, (const char *[]){"ok\xff"});
	stk_metrics_inc(c, (const char *[]){"ok\xff"});
	text = render(m);
	/* One series (the same bad input finds the sanitized series again), valid UTF-8. */
	assert_non_null(strstr(text, "c_total{v=\"ok\xef\xbf\xbd\"} 2\n"));
	free(text);
	assert_int_equal(stk_metrics_get(c, (const char *[]){"ok\xff"}, &v, NULL), 0);
	assert_true(v == 2);
	stk_metrics_free(m);
}

static void test_metrics__histogram_buckets_cumulative_with_sum_and_count(void **state)
{
	stk_metrics *m = stk_metrics_new();
	stk_metrics_family *h =
		stk_metrics_histogram(m, "d_seconds", "Durations.", (const char *[]){"kind", NULL},
				      (const double[]){0.1, 0.5, 2}, 3);
	double count = 0, sum = 0;
	char *text;
	(void)state;

	stk_metrics_observe(h, (const char *[]){"Stoker"}, 0.05);
	stk_metrics_observe(h, (const char *[]){"Stoker"}, 0.1); /* le is inclusive */
	stk_metrics_observe(h, (const char *[]){"Stoker"}, 0.3);
	stk_metrics_observe(h, (const char *[]){"Stoker"}, 7);
	text = render(m);
	assert_string_equal(text, "# HELP d_seconds Durations.\n"
				  "# TYPE d_seconds histogram\n"
				  "d_seconds_bucket{kind=\"Stoker\",le=\"0.1\"} 2\n"
				  "d_seconds_bucket{kind=\"Stoker\",le=\"0.5\"} 3\n"
				  "d_seconds_bucket{kind=\"Stoker\",le=\"2\"} 3\n"
				  "d_seconds_bucket{kind=\"Stoker\",le=\"+Inf\"} 4\n"
				  "d_seconds_sum{kind=\"Stoker\"} 7.45\n"
				  "d_seconds_count{kind=\"Stoker\"} 4\n");
	free(text);
	assert_int_equal(stk_metrics_get(h, (const char *[]){"Stoker"}, &count, &sum), 0);
	assert_true(count == 4);
	assert_true(sum > 7.45 - 1e-12 && sum < 7.45 + 1e-12);
	stk_metrics_free(m);
}

static void test_metrics__default_buckets_cover_5ms_to_60s(void **state)
{
	stk_metrics *m = stk_metrics_new();
	stk_metrics_family *h = stk_metrics_histogram(m, "r_seconds", "h", NULL, NULL, 0);
	char *text;
	(void)state;

	stk_metrics_observe(h, NULL, 0.004);
	text = render(m);
	assert_non_null(strstr(text, "r_seconds_bucket{le=\"0.005\"} 1\n"));
	assert_non_null(strstr(text, "r_seconds_bucket{le=\"60\"} 1\n"));
	assert_non_null(strstr(text, "r_seconds_bucket{le=\"+Inf\"} 1\n"));
	assert_int_equal(stk_metrics_default_buckets[0] == 0.005, 1);
	assert_int_equal(stk_metrics_default_buckets[STK_METRICS_DEFAULT_BUCKETS_LEN - 1] == 60, 1);
	free(text);
	stk_metrics_free(m);
}

static void test_metrics__removed_series_disappear(void **state)
{
	const char *const labels[] = {"kind", "name", "namespace", "type", "status", NULL};
	stk_metrics *m = stk_metrics_new();
	stk_metrics_family *cond = stk_metrics_gauge(m, "stoker_condition", "c", labels);
	double v;
	char *text;
	(void)state;

	stk_metrics_set(cond, (const char *[]){"Stoker", "plant", "site1", "Ready", "True"}, 1);
	stk_metrics_set(cond, (const char *[]){"Stoker", "plant", "site1", "Ready", "False"}, 0);
	stk_metrics_set(cond, (const char *[]){"Stoker", "plant", "site1", "Synced", "True"}, 1);
	stk_metrics_set(cond, (const char *[]){"Stoker", "other", "site1", "Ready", "True"}, 1);

	assert_int_equal(stk_metrics_remove(cond, (const char *[]){"Stoker", "plant", "site1",
								   "Ready", "False"}),
			 0);
	assert_int_equal(stk_metrics_remove(cond, (const char *[]){"Stoker", "plant", "site1",
								   "Ready", "False"}),
			 STK_ENOTFOUND);
	assert_int_equal(stk_metrics_remove_matching(
				 cond, (const char *[]){"Stoker", "plant", "site1", NULL, NULL}),
			 2);
	text = render(m);
	assert_null(strstr(text, "name=\"plant\""));
	assert_non_null(strstr(text, "name=\"other\""));
	free(text);
	assert_int_equal(
		stk_metrics_get(cond, (const char *[]){"Stoker", "plant", "site1", "Ready", "True"},
				&v, NULL),
		STK_ENOTFOUND);
	stk_metrics_free(m);
}

static void test_metrics__numbers_round_trip_and_integers_have_no_exponent(void **state)
{
	const double samples[] = {0.1, 1.0 / 3, 1e-9, 123456.789, 6.02214076e23, -2.5, 5e-324};
	char num[STK_METRICS_NUMBER_MAX];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		stk_metrics_format_number(samples[i], num);
		assert_true(strtod(num, NULL) == samples[i]);
	}
	stk_metrics_format_number(0.1, num);
	assert_string_equal(num, "0.1");
	stk_metrics_format_number(1234567890123.0, num);
	assert_string_equal(num, "1234567890123");
	stk_metrics_format_number(-0.0, num);
	assert_string_equal(num, "0");
	stk_metrics_format_number(INFINITY, num);
	assert_string_equal(num, "+Inf");
	stk_metrics_format_number(-INFINITY, num);
	assert_string_equal(num, "-Inf");
	stk_metrics_format_number(NAN, num);
	assert_string_equal(num, "NaN");
}

static void test_metrics__same_definition_returns_same_family(void **state)
{
	stk_metrics *m = stk_metrics_new();
	stk_metrics_family *a = stk_metrics_counter(m, "x_total", "h", (const char *[]){"l", NULL});
	stk_metrics_family *b = stk_metrics_counter(m, "x_total", "h", (const char *[]){"l", NULL});
	(void)state;
	assert_ptr_equal(a, b);
	stk_metrics_free(m);
}

struct worker {
	stk_metrics_family *c, *h;
	int id;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;
	const char *name = w->id % 2 ? "odd" : "even";
	for (int i = 0; i < 20000; i++) {
		stk_metrics_inc(w->c, (const char *[]){name});
		stk_metrics_observe(w->h, (const char *[]){name}, 0.01);
	}
	return NULL;
}

static void test_metrics__concurrent_updates_are_not_lost(void **state)
{
	stk_metrics *m = stk_metrics_new();
	struct worker w[4];
	pthread_t t[4];
	double v = 0, count = 0;
	(void)state;

	for (int i = 0; i < 4; i++) {
		w[i].c = stk_metrics_counter(m, "ops_total", "h", (const char *[]){"who", NULL});
		w[i].h = stk_metrics_histogram(m, "ops_seconds", "h", (const char *[]){"who", NULL},
					       NULL, 0);
		w[i].id = i;
		pthread_create(&t[i], NULL, hammer, &w[i]);
	}
	for (int i = 0; i < 50; i++) { /* render while the workers write */
		char *text = render(m);
		free(text);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(stk_metrics_get(w[0].c, (const char *[]){"odd"}, &v, NULL), 0);
	assert_true(v == 40000);
	assert_int_equal(stk_metrics_get(w[0].h, (const char *[]){"even"}, &count, NULL), 0);
	assert_true(count == 40000);
	stk_metrics_free(m);
}

static void test_metrics__render_respects_the_buffer_cap(void **state)
{
	stk_metrics *m = stk_metrics_new();
	stk_buf b = STK_BUF_INIT(40);
	(void)state;
	stk_metrics_counter(m, "a_rather_long_metric_name_total", "with some help text", NULL);
	assert_int_equal(stk_metrics_render(m, &b), STK_ETOOBIG);
	stk_buf_release(&b);
	stk_metrics_free(m);
}

/* Runs fn in a child and reports whether it died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
	int status = 0;
	pid_t pid = fork();
	if (pid == 0) {
		/* Keep the expected abort message out of the test output. */
		if (!freopen("/dev/null", "w", stderr))
			_exit(2);
		fn();
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

/* Registries of the aborting children stay reachable, so valgrind reports no leak there. */
static stk_metrics *volatile child_registry;

static void bad_name(void)
{
	stk_metrics *m = child_registry = stk_metrics_new();
	stk_metrics_counter(m, "9starts-with-digit", "h", NULL);
}

static void conflicting_definition(void)
{
	stk_metrics *m = child_registry = stk_metrics_new();
	stk_metrics_counter(m, "x_total", "h", NULL);
	stk_metrics_gauge(m, "x_total", "h", NULL);
}

static void counter_decrement(void)
{
	stk_metrics *m = child_registry = stk_metrics_new();
	stk_metrics_add(stk_metrics_counter(m, "x_total", "h", NULL), NULL, -1);
}

static void wrong_label_count(void)
{
	stk_metrics *m = child_registry = stk_metrics_new();
	stk_metrics_inc(stk_metrics_counter(m, "x_total", "h", (const char *[]){"a", NULL}), NULL);
}

static void reserved_le(void)
{
	stk_metrics *m = child_registry = stk_metrics_new();
	stk_metrics_histogram(m, "x_seconds", "h", (const char *[]){"le", NULL}, NULL, 0);
}

static void good_definitions(void)
{
	stk_metrics *m = stk_metrics_new();
	stk_metrics_counter(m, "ns:x_total", "h", (const char *[]){"_ok", "a1", NULL});
	stk_metrics_free(m);
}

static void test_metrics__programming_errors_abort(void **state)
{
	(void)state;
	assert_true(aborts(bad_name));
	assert_true(aborts(conflicting_definition));
	assert_true(aborts(counter_decrement));
	assert_true(aborts(wrong_label_count));
	assert_true(aborts(reserved_le));
	assert_false(aborts(good_definitions));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* First: forked children then inherit no thread state from other tests. */
		cmocka_unit_test(test_metrics__programming_errors_abort),
		cmocka_unit_test(test_metrics__counter_series_render_sorted_with_help_and_type),
		cmocka_unit_test(test_metrics__families_sorted_and_unlabelled_start_at_zero),
		cmocka_unit_test(test_metrics__label_values_and_help_are_escaped),
		cmocka_unit_test(test_metrics__invalid_utf8_label_value_is_replaced_and_stable),
		cmocka_unit_test(test_metrics__histogram_buckets_cumulative_with_sum_and_count),
		cmocka_unit_test(test_metrics__default_buckets_cover_5ms_to_60s),
		cmocka_unit_test(test_metrics__removed_series_disappear),
		cmocka_unit_test(test_metrics__numbers_round_trip_and_integers_have_no_exponent),
		cmocka_unit_test(test_metrics__same_definition_returns_same_family),
		cmocka_unit_test(test_metrics__concurrent_updates_are_not_lost),
		cmocka_unit_test(test_metrics__render_respects_the_buffer_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
