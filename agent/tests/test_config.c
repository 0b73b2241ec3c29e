#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

/* A test environment: NULL-terminated name/value pairs. */
static const char *fake_env(const char *name, void *ctx)
{
	const char **kv = ctx;
	for (; kv[0]; kv += 2)
		if (!strcmp(kv[0], name))
			return kv[1];
	return NULL;
}

static void test_config__injected_env_with_defaults(void **state)
{
	const char *env[] = {"POD_NAME",
			     "gw-0",
			     "POD_NAMESPACE",
			     "site1",
			     "CR_NAME",
			     "plant",
			     "DATA_PATH",
			     "/usr/local/bin/ignition/data",
			     "SYNC_PROFILE",
			     "site",
			     NULL};
	struct agent_config c;
	stk_err err = STK_ERR_INIT;
	(void)state;
	assert_int_equal(agent_config_load(&c, fake_env, env, &err), 0);
	assert_string_equal(c.gateway_name, "gw-0");
	assert_string_equal(c.repo_path, "/repo");
	assert_string_equal(c.gateway_host, "localhost");
	assert_int_equal(c.gateway_port, 8088);
	assert_false(c.gateway_tls);
	assert_int_equal(c.source_mode, AGENT_SOURCE_ARTIFACT);
	assert_string_equal(c.source_token_file, "/var/run/secrets/stoker/token");
	assert_string_equal(c.sync_profile, "site");
	assert_null(c.api_key_file);
}

static void test_config__explicit_values(void **state)
{
	const char *env[] = {"POD_NAME",
			     "gw-0",
			     "POD_NAMESPACE",
			     "site1",
			     "CR_NAME",
			     "plant",
			     "DATA_PATH",
			     "/data",
			     "GATEWAY_NAME",
			     "area1",
			     "GATEWAY_PORT",
			     "8043",
			     "GATEWAY_TLS",
			     "true",
			     "SOURCE_MODE",
			     "git",
			     "GIT_SSH_KEY_FILE",
			     "/etc/git/key",
			     "GIT_KNOWN_HOSTS_FILE",
			     "/etc/git/kh",
			     "SERVICE_PATH",
			     "services/site",
			     "EXCLUDE_PATTERNS",
			     "**/*.log, tmp/**",
			     NULL};
	struct agent_config c;
	(void)state;
	assert_int_equal(agent_config_load(&c, fake_env, env, NULL), 0);
	assert_string_equal(c.gateway_name, "area1");
	assert_int_equal(c.gateway_port, 8043);
	assert_true(c.gateway_tls);
	assert_int_equal(c.source_mode, AGENT_SOURCE_GIT);
	assert_string_equal(c.git_known_hosts_file, "/etc/git/kh");
	assert_null(c.sync_profile);
	assert_string_equal(c.service_path, "services/site");
	assert_string_equal(c.exclude_patterns, "**/*.log, tmp/**");
	assert_null(c.state_path);
}

static void expect_error(const char **env, const char *needle)
{
	struct agent_config c;
	stk_err err = STK_ERR_INIT;
	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(agent_config_load(&c, fake_env, env, &err), STK_EINVAL);
	if (!strstr(err.message, needle))
		fail_msg("message \"%s\" does not mention \"%s\"", err.message, needle);
	/* The output is untouched on failure. */
	assert_int_equal(((unsigned char *)&c)[0], 0x5a);
}

static void test_config__errors_name_the_variable(void **state)
{
	(void)state;
	const char *no_cr[] = {"POD_NAME", "p", "POD_NAMESPACE", "n", "DATA_PATH", "/d", NULL};
	expect_error(no_cr, "CR_NAME is not set");
	const char *empty_data[] = {
		"POD_NAME", "p", "POD_NAMESPACE", "n", "CR_NAME", "c", "DATA_PATH", "", NULL};
	expect_error(empty_data, "DATA_PATH is not set");
	const char *bad_port[] = {"POD_NAME",  "p",  "POD_NAMESPACE", "n", "CR_NAME", "c",
				  "DATA_PATH", "/d", "GATEWAY_PORT",  "0", NULL};
	expect_error(bad_port, "GATEWAY_PORT");
	const char *bad_tls[] = {"POD_NAME",  "p",  "POD_NAMESPACE", "n",   "CR_NAME", "c",
				 "DATA_PATH", "/d", "GATEWAY_TLS",   "yes", NULL};
	expect_error(bad_tls, "GATEWAY_TLS");
	const char *bad_mode[] = {"POD_NAME",  "p",  "POD_NAMESPACE", "n",     "CR_NAME", "c",
				  "DATA_PATH", "/d", "SOURCE_MODE",   "rsync", NULL};
	expect_error(bad_mode, "SOURCE_MODE");
	const char *rel[] = {"POD_NAME", "p",	      "POD_NAMESPACE", "n", "CR_NAME",
			     "c",	 "DATA_PATH", "data",	       NULL};
	expect_error(rel, "DATA_PATH must be an absolute path");
	const char *same[] = {"POD_NAME", "p",	       "POD_NAMESPACE", "n", "CR_NAME",
			      "c",	  "DATA_PATH", "/repo",		NULL};
	expect_error(same, "must differ");
	const char *kh[] = {"POD_NAME",	 "p",  "POD_NAMESPACE",	       "n",   "CR_NAME",      "c",
			    "DATA_PATH", "/d", "GIT_KNOWN_HOSTS_FILE", "/kh", "SYNC_PROFILE", "s",
			    NULL};
	expect_error(kh, "GIT_SSH_KEY_FILE");
	const char *neither[] = {"POD_NAME", "p", "POD_NAMESPACE", "n", "CR_NAME", "c", "DATA_PATH",
				 "/d",	     NULL};
	expect_error(neither, "neither SYNC_PROFILE nor SERVICE_PATH");
	const char *half[] = {"POD_NAME",  "p",	 "POD_NAMESPACE",     "n",  "CR_NAME",	    "c",
			      "DATA_PATH", "/d", "GIT_USERNAME_FILE", "/u", "SYNC_PROFILE", "s",
			      NULL};
	expect_error(half, "GIT_USERNAME_FILE and GIT_PASSWORD_FILE");
	const char *state_rel[] = {"POD_NAME",	"p",  "POD_NAMESPACE", "n",  "CR_NAME",	     "c",
				   "DATA_PATH", "/d", "STATE_PATH",    "st", "SYNC_PROFILE", "s",
				   NULL};
	expect_error(state_rel, "STATE_PATH must be an absolute path");
}

static void test_config__usage_lists_every_variable(void **state)
{
	FILE *f = tmpfile();
	char text[8192];
	size_t n;
	(void)state;
	agent_config_usage(f);
	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	const char *names[] = {"POD_NAME",	    "POD_NAMESPACE",	"CR_NAME",
			       "GATEWAY_NAME",	    "SYNC_PROFILE",	"REPO_PATH",
			       "DATA_PATH",	    "GATEWAY_HOST",	"GATEWAY_PORT",
			       "GATEWAY_TLS",	    "API_KEY_FILE",	"SOURCE_MODE",
			       "SOURCE_TOKEN_FILE", "GIT_SSH_KEY_FILE", "GIT_KNOWN_HOSTS_FILE",
			       "GIT_TOKEN_FILE",    "KUBECONFIG"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_non_null(strstr(text, names[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config__injected_env_with_defaults),
		cmocka_unit_test(test_config__explicit_values),
		cmocka_unit_test(test_config__errors_name_the_variable),
		cmocka_unit_test(test_config__usage_lists_every_variable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
