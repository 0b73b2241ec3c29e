#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stk/flags.h"
#include "stk/version.h"

struct fixture {
	struct stk_flagset fs;
	struct stk_daemon_opts o;
	const char *artifact_addr;
	FILE *out;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	stk_flagset_init(&fx->fs, "source-controller", "Reconciles GitSources.");
	stk_daemon_flags(&fx->fs, &fx->o);
	fx->artifact_addr = ":9090";
	stk_flagset_add(&fx->fs, &(struct stk_flag){"artifact-bind-address", STK_FLAG_ADDR,
						    &fx->artifact_addr, ":9090",
						    "artifact server address", 0, 0});
	fx->out = tmpfile();
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	stk_flagset_free(&fx->fs);
	fclose(fx->out);
	free(fx);
	return 0;
}

/* Parses the NULL-terminated argument list after a program name, as main would. */
static int parse_args(struct fixture *fx, stk_err *err, ...)
{
	char *argv[32];
	int argc = 0, rc;
	const char *a;
	va_list ap;

	argv[argc++] = strdup("prog");
	va_start(ap, err);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = strdup(a);
	va_end(ap);
	argv[argc] = NULL;
	rc = stk_flagset_parse(&fx->fs, argc, argv, fx->out, err);
	while (argc > 0)
		free(argv[--argc]);
	return rc;
}

#define PARSE(fx, err, ...) parse_args((fx), (err), __VA_ARGS__, (const char *)NULL)

static void test_flags__defaults_of_design(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(PARSE(fx, NULL, "--log-level=info"), STK_FLAGS_RUN);
	assert_null(fx->o.kubeconfig);
	assert_true(fx->o.leader_elect);
	assert_string_equal(fx->o.metrics_addr, ":8080");
	assert_string_equal(fx->o.health_addr, ":8081");
	assert_int_equal(fx->o.watch_namespaces.len, 0);
	assert_int_equal(fx->o.concurrent, 4);
	assert_int_equal(fx->o.lease_duration_ms, 15000);
	assert_string_equal(fx->artifact_addr, ":9090");
}

static void test_flags__all_syntaxes(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(PARSE(fx, NULL, "--kubeconfig", "/tmp/kc", "--leader-elect=false",
			       "--watch-namespaces=a,,b", "-concurrent=8",
			       "--metrics-bind-address=127.0.0.1:0", "--log-level", "debug",
			       "--artifact-bind-address", "[::1]:9090",
			       "--leader-elect-lease-duration=1m"),
			 STK_FLAGS_RUN);
	assert_string_equal(fx->o.kubeconfig, "/tmp/kc");
	assert_false(fx->o.leader_elect);
	assert_int_equal(fx->o.watch_namespaces.len, 2);
	assert_string_equal(fx->o.watch_namespaces.items[1], "b");
	assert_true(stk_strlist_contains(&fx->o.watch_namespaces, "a"));
	assert_false(stk_strlist_contains(&fx->o.watch_namespaces, ""));
	assert_int_equal(fx->o.concurrent, 8);
	assert_string_equal(fx->o.metrics_addr, "127.0.0.1:0");
	assert_int_equal(fx->o.log_level, STK_LOG_DEBUG);
	assert_string_equal(fx->artifact_addr, "[::1]:9090");
	assert_int_equal(fx->o.lease_duration_ms, 60000);
}

static void test_flags__bare_bool_means_true(void **state)
{
	struct fixture *fx = *state;
	fx->o.leader_elect = false;
	assert_int_equal(PARSE(fx, NULL, "--leader-elect"), STK_FLAGS_RUN);
	assert_true(fx->o.leader_elect);
}

static void test_flags__errors_are_one_line_and_name_the_flag(void **state)
{
	struct fixture *fx = *state;
	stk_err err = STK_ERR_INIT;
	assert_int_equal(PARSE(fx, &err, "--bogus=1"), STK_EINVAL);
	assert_string_equal(err.message, "unknown flag --bogus (see --help)");
	assert_int_equal(PARSE(fx, &err, "--concurrent=0"), STK_EINVAL);
	assert_non_null(strstr(err.message, "invalid value \"0\" for --concurrent"));
	assert_int_equal(PARSE(fx, &err, "--concurrent=lots"), STK_EINVAL);
	assert_non_null(strstr(err.message, "not an integer"));
	assert_int_equal(PARSE(fx, &err, "--leader-elect=maybe"), STK_EINVAL);
	assert_int_equal(PARSE(fx, &err, "--metrics-bind-address=8080"), STK_EINVAL);
	assert_non_null(strstr(err.message, "--metrics-bind-address"));
	assert_int_equal(PARSE(fx, &err, "--log-level=loud"), STK_EINVAL);
	assert_int_equal(PARSE(fx, &err, "--kubeconfig"), STK_EINVAL);
	assert_string_equal(err.message, "flag --kubeconfig needs a value");
	assert_int_equal(PARSE(fx, &err, "positional"), STK_EINVAL);
	assert_int_equal(PARSE(fx, &err, "--leader-elect-retry-period=soon"), STK_EINVAL);
	assert_null(strchr(err.message, '\n'));
}

static void test_flags__help_and_version(void **state)
{
	struct fixture *fx = *state;
	char text[8192];
	size_t n;
	assert_int_equal(PARSE(fx, NULL, "--version"), STK_FLAGS_EXIT_OK);
	assert_int_equal(PARSE(fx, NULL, "--help"), STK_FLAGS_EXIT_OK);
	rewind(fx->out);
	n = fread(text, 1, sizeof(text) - 1, fx->out);
	text[n] = '\0';
	assert_non_null(strstr(text, "source-controller " STK_VERSION "\n"));
	const char *expect[] = {"--kubeconfig",
				"--leader-elect",
				"--metrics-bind-address",
				"--health-probe-bind-address",
				"--watch-namespaces",
				"--concurrent",
				"--log-level",
				"--artifact-bind-address",
				"(default :9090)",
				"Reconciles GitSources."};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		assert_non_null(strstr(text, expect[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flags__defaults_of_design, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags__all_syntaxes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags__bare_bool_means_true, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags__errors_are_one_line_and_name_the_flag,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags__help_and_version, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
