#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stk/api/template.h"

/* A NULL-terminated list of key, value pairs behind the label and var lookups. */
struct kv {
	const char *const *labels;
	const char *const *vars;
	int calls;
};

static const char *kv_find(const char *const *pairs, const char *key)
{
	for (; pairs && pairs[0]; pairs += 2)
		if (!strcmp(pairs[0], key))
			return pairs[1];
	return NULL;
}

static const char *kv_label(const char *key, void *arg)
{
	struct kv *kv = arg;

	kv->calls++;
	return kv_find(kv->labels, key);
}

static const char *kv_var(const char *name, void *arg)
{
	struct kv *kv = arg;

	kv->calls++;
	return kv_find(kv->vars, name);
}

static const char *const labels[] = {
	"app.kubernetes.io/name", "ignition", "tier", "edge", "loop", "{{.Commit}}", NULL,
};
static const char *const vars_table[] = {"site", "7", "site_2", "eight", NULL};

static struct kv kv_all = {labels, vars_table, 0};

static struct stk_template_vars full_vars(void)
{
	struct stk_template_vars v = {
		.gateway_name = "gw-a",
		.pod_name = "gw-a-0",
		.pod_ordinal = "0",
		.ns = "site1",
		.cr_name = "plant",
		.ref = "main",
		.commit = "0123abcd",
		.label = kv_label,
		.var = kv_var,
		.arg = &kv_all,
	};
	return v;
}

/* Expands `text` with `vars` and checks the result (and that check agrees). */
static void expect_expand(const char *text, const struct stk_template_vars *vars, const char *want)
{
	stk_buf b = STK_BUF_INIT(4096);
	stk_err err = STK_ERR_INIT;
	int rc = stk_template_expand(text, vars, &b, &err);

	if (rc)
		fail_msg("expand %s: %d %s", text, rc, err.message);
	assert_string_equal(b.ptr ? b.ptr : "", want);
	assert_int_equal(b.len, strlen(want));
	assert_int_equal(stk_template_check(text, NULL, NULL, &err), 0);
	stk_buf_release(&b);
}

/* Both check and expand reject `text` with STK_EINVAL and exactly `msg`. */
static void expect_syntax_error(const char *text, const char *msg)
{
	struct stk_template_vars v = full_vars();
	stk_buf b = STK_BUF_INIT(4096);
	stk_err err = STK_ERR_INIT;

	assert_int_equal(stk_template_check(text, NULL, NULL, &err), STK_EINVAL);
	assert_int_equal(err.code, STK_EINVAL);
	if (strcmp(err.message, msg))
		fail_msg("check %s:\n  got  %s\n  want %s", text, err.message, msg);
	stk_err_clear(&err);
	assert_int_equal(stk_buf_puts(&b, "keep"), 0);
	assert_int_equal(stk_template_expand(text, &v, &b, &err), STK_EINVAL);
	if (strcmp(err.message, msg))
		fail_msg("expand %s:\n  got  %s\n  want %s", text, err.message, msg);
	/* Whatever was appended before the error is taken back. */
	assert_string_equal(b.ptr, "keep");
	assert_int_equal(b.len, 4);
	stk_buf_release(&b);
}

static void test_template__expands_every_builtin(void **state)
{
	struct stk_template_vars v = full_vars();

	(void)state;
	expect_expand("{{.GatewayName}}", &v, "gw-a");
	expect_expand("{{.PodName}}", &v, "gw-a-0");
	expect_expand("{{.PodOrdinal}}", &v, "0");
	expect_expand("{{.Namespace}}", &v, "site1");
	expect_expand("{{.CRName}}", &v, "plant");
	expect_expand("{{.Ref}}", &v, "main");
	expect_expand("{{.Commit}}", &v, "0123abcd");
	expect_expand(
		"services/{{.GatewayName}}/{{.PodOrdinal}}-{{.Namespace}}/{{.CRName}}@{{.Ref}}"
		"#{{.Commit}}:{{.PodName}}",
		&v, "services/gw-a/0-site1/plant@main#0123abcd:gw-a-0");
	/* An empty value is a value. */
	v.ref = "";
	expect_expand("a{{.Ref}}b", &v, "ab");
}

static void test_template__whitespace_inside_braces(void **state)
{
	struct stk_template_vars v = full_vars();

	(void)state;
	expect_expand("{{ .GatewayName }}", &v, "gw-a");
	expect_expand("{{.GatewayName }}", &v, "gw-a");
	expect_expand("{{   .GatewayName}}", &v, "gw-a");
	expect_expand("{{\t.Namespace\r\n}}", &v, "site1");
	expect_expand("{{ .Labels.tier }}", &v, "edge");
	expect_expand("{{ .Vars.site\t}}", &v, "7");
	expect_expand("{{  index   .Labels\t\"tier\"  }}", &v, "edge");
	expect_expand("{{\nindex\n.Vars\n\"site_2\"\n}}", &v, "eight");
}

static void test_template__labels_and_vars(void **state)
{
	struct stk_template_vars v = full_vars();

	(void)state;
	expect_expand("{{.Labels.tier}}", &v, "edge");
	expect_expand("x/{{.Labels.app.kubernetes.io/name}}/y", &v, "x/ignition/y");
	expect_expand("{{.Vars.site}}-{{.Vars.site_2}}", &v, "7-eight");
	expect_expand("{{index .Labels \"app.kubernetes.io/name\"}}", &v, "ignition");
	expect_expand("{{index .Labels \"tier\"}}", &v, "edge");
	expect_expand("{{index .Vars \"site\"}}", &v, "7");
	/* The lookups get the bare key, NUL-terminated. */
	kv_all.calls = 0;
	expect_expand("{{.Labels.tier}}{{index .Vars \"site\"}}", &v, "edge7");
	assert_int_equal(kv_all.calls, 2);
}

static void test_template__literal_text(void **state)
{
	struct stk_template_vars v = full_vars();

	(void)state;
	expect_expand("", &v, "");
	expect_expand("plain/path.txt", &v, "plain/path.txt");
	expect_expand("a{b}c{ {x} }", &v, "a{b}c{ {x} }");
	expect_expand("{{.Ref}}}", &v, "main}");
	expect_expand("{ {{.Ref}}", &v, "{ main");
	/* No variable is needed for text without actions. */
	expect_expand("config/resources/core", NULL, "config/resources/core");
}

static void test_template__appends_to_buffer(void **state)
{
	struct stk_template_vars v = full_vars();
	stk_buf b = STK_BUF_INIT(100);

	(void)state;
	assert_int_equal(stk_buf_puts(&b, "pre/"), 0);
	assert_int_equal(stk_template_expand("{{.CRName}}/x", &v, &b, NULL), 0);
	assert_string_equal(b.ptr, "pre/plant/x");
	stk_buf_release(&b);
}

static void test_template__values_are_not_expanded_again(void **state)
{
	struct stk_template_vars v = full_vars();

	(void)state;
	/* .Commit would fail if the value were expanded: it has none here. */
	v.commit = NULL;
	v.gateway_name = "{{.Commit}}";
	expect_expand("a/{{.GatewayName}}/b", &v, "a/{{.Commit}}/b");
	expect_expand("{{.Labels.loop}}", &v, "{{.Commit}}");
	v.ns = "}}";
	expect_expand("{{.Namespace}}", &v, "}}");
}

static void test_template__syntax_errors(void **state)
{
	(void)state;
	/* unterminated */
	expect_syntax_error("a/{{.GatewayName",
			    "template \"a/{{.GatewayName\": unterminated \"{{\" at offset 2");
	expect_syntax_error("{{", "template \"{{\": unterminated \"{{\" at offset 0");
	expect_syntax_error("{{.Ref}}/{{.Ref}",
			    "template \"{{.Ref}}/{{.Ref}\": unterminated \"{{\" at offset 9");
	/* stray closer */
	expect_syntax_error("a}}b",
			    "template \"a}}b\": unexpected \"}}\" outside an action at offset 1");
	expect_syntax_error(
		"{{.Ref}}x}}",
		"template \"{{.Ref}}x}}\": unexpected \"}}\" outside an action at offset 9");
	/* empty */
	expect_syntax_error("x/{{}}", "template \"x/{{}}\": empty action at offset 2");
	expect_syntax_error("{{ \t }}", "template \"{{ ? }}\": empty action at offset 0");
	/* nested */
	expect_syntax_error(
		"{{a{{.Ref}}}}",
		"template \"{{a{{.Ref}}}}\": nested \"{{\" inside an action at offset 3");
	expect_syntax_error("{{{{",
			    "template \"{{{{\": nested \"{{\" inside an action at offset 2");
	/* unknown variables */
	expect_syntax_error("{{.Foo}}", "template \"{{.Foo}}\": unknown variable .Foo at offset 0");
	expect_syntax_error("p/{{ .gatewayName }}",
			    "template \"p/{{ .gatewayName }}\": unknown variable .gatewayName at "
			    "offset 2");
	expect_syntax_error("{{.Ref.X}}",
			    "template \"{{.Ref.X}}\": unknown variable .Ref.X at offset 0");
	expect_syntax_error("{{.}}", "template \"{{.}}\": unknown variable . at offset 0");
	expect_syntax_error("{{.Labelsx}}",
			    "template \"{{.Labelsx}}\": unknown variable .Labelsx at offset 0");
	expect_syntax_error("{{.Env.HOME}}",
			    "template \"{{.Env.HOME}}\": unknown variable .Env.HOME at offset 0");
	/* malformed keys */
	expect_syntax_error("{{.Labels.}}",
			    "template \"{{.Labels.}}\": malformed label key \"\" at offset 0");
	expect_syntax_error("{{.Labels}}",
			    "template \"{{.Labels}}\": malformed label key \"\" at offset 0");
	expect_syntax_error("{{.Labels. }}",
			    "template \"{{.Labels. }}\": malformed label key \"\" at offset 0");
	expect_syntax_error(
		"{{.Labels.a:b}}",
		"template \"{{.Labels.a:b}}\": malformed label key \"a:b\" at offset 0");
	expect_syntax_error("{{.Vars}}",
			    "template \"{{.Vars}}\": malformed var name \"\" at offset 0");
	expect_syntax_error("{{.Vars.1x}}",
			    "template \"{{.Vars.1x}}\": malformed var name \"1x\" at offset 0");
	expect_syntax_error("{{.Vars.a-b}}",
			    "template \"{{.Vars.a-b}}\": malformed var name \"a-b\" at offset 0");
	expect_syntax_error("{{.Vars.a.b}}",
			    "template \"{{.Vars.a.b}}\": malformed var name \"a.b\" at offset 0");
	expect_syntax_error(
		"{{index .Labels \"\"}}",
		"template \"{{index .Labels \"\"}}\": malformed label key \"\" at offset 0");
	expect_syntax_error(
		"{{index .Labels \"a b\"}}",
		"template \"{{index .Labels \"a b\"}}\": malformed label key \"a b\" at "
		"offset 0");
	expect_syntax_error(
		"{{index .Vars \"9\"}}",
		"template \"{{index .Vars \"9\"}}\": malformed var name \"9\" at offset 0");
	/* index form */
	expect_syntax_error(
		"{{index .Labels \"a\\\"b\"}}",
		"template \"{{index .Labels \"a\\\"b\"}}\": escapes in a quoted key are "
		"not supported at offset 0");
	expect_syntax_error("{{index .Labels \"tier}}",
			    "template \"{{index .Labels \"tier}}\": unterminated quoted key at "
			    "offset 0");
	expect_syntax_error(
		"{{index .Labels tier}}",
		"template \"{{index .Labels tier}}\": index needs a double-quoted key at "
		"offset 0");
	expect_syntax_error("{{index .Labels}}",
			    "template \"{{index .Labels}}\": index needs a double-quoted key at "
			    "offset 0");
	expect_syntax_error(
		"{{index .Pods \"a\"}}",
		"template \"{{index .Pods \"a\"}}\": index takes .Labels or .Vars and a "
		"quoted key at offset 0");
	expect_syntax_error("{{index}}", "template \"{{index}}\": index takes .Labels or .Vars and "
					 "a quoted key at offset 0");
	expect_syntax_error(
		"{{index .Labels \"a\" \"b\"}}",
		"template \"{{index .Labels \"a\" \"b\"}}\": unexpected \"\"b\"\" after "
		"the variable at offset 0");
	/* the rest of Go templates */
	expect_syntax_error("{{.Ref | printf \"%s\"}}",
			    "template \"{{.Ref | printf \"%s\"}}\": pipelines are not supported at "
			    "offset 0");
	expect_syntax_error(
		"{{printf \"%s\" .Ref}}",
		"template \"{{printf \"%s\" .Ref}}\": unsupported action \"printf\" (only "
		"variables and index are supported) at offset 0");
	expect_syntax_error("{{/* c */}}",
			    "template \"{{/* c */}}\": unsupported action \"/*\" (only "
			    "variables and index are supported) at offset 0");
	expect_syntax_error("{{\"lit\"}}",
			    "template \"{{\"lit\"}}\": unsupported action \"\"lit\"\" "
			    "(only variables and index are supported) at offset 0");
	expect_syntax_error("{{- .Ref}}", "template \"{{- .Ref}}\": trim markers ({{- and -}}) are "
					  "not supported at offset 0");
	expect_syntax_error("a{{.Ref -}}",
			    "template \"a{{.Ref -}}\": trim markers ({{- and -}}) are "
			    "not supported at offset 1");
	expect_syntax_error(
		"{{.Ref .Commit}}",
		"template \"{{.Ref .Commit}}\": unexpected \".Commit\" after the variable "
		"at offset 0");
	expect_syntax_error(
		"{{.Ref-}}",
		"template \"{{.Ref-}}\": unexpected \"-\" after the variable at offset 0");
}

static void test_template__first_error_wins(void **state)
{
	stk_err err = STK_ERR_INIT;

	(void)state;
	/* A valid action before the error does not hide it, and the offset is the bad one. */
	assert_int_equal(stk_template_check("{{.Ref}}/{{.Nope}}/{{", NULL, NULL, &err), STK_EINVAL);
	assert_string_equal(
		err.message,
		"template \"{{.Ref}}/{{.Nope}}/{{\": unknown variable .Nope at offset 9");
}

static bool known_site(const char *name, void *arg)
{
	int *calls = arg;

	(*calls)++;
	return !strcmp(name, "site");
}

static void test_template__check_vars_known(void **state)
{
	stk_err err = STK_ERR_INIT;
	int calls = 0;

	(void)state;
	assert_int_equal(stk_template_check("{{.Vars.site}}/{{index .Vars \"site\"}}", known_site,
					    &calls, &err),
			 0);
	assert_int_equal(calls, 2);
	/* Labels belong to pods: not checked. */
	assert_int_equal(stk_template_check("{{.Labels.anything}}", known_site, &calls, &err), 0);
	assert_int_equal(calls, 2);
	assert_int_equal(stk_template_check("a/{{.Vars.zone}}", known_site, &calls, &err),
			 STK_EINVAL);
	assert_string_equal(
		err.message,
		"template \"a/{{.Vars.zone}}\": unknown variable .Vars.zone at offset 2");
	assert_int_equal(stk_template_check("{{ index .Vars \"sit\" }}", known_site, &calls, &err),
			 STK_EINVAL);
	assert_string_equal(err.message, "template \"{{ index .Vars \"sit\" }}\": unknown variable "
					 ".Vars.sit at offset 0");
	/* Without vars_known any identifier goes. */
	assert_int_equal(stk_template_check("{{.Vars.zone}}", NULL, NULL, &err), 0);
}

/* Expands `text` expecting STK_EINVAL with `msg`; `out` keeps its content. */
static void expect_no_value(const char *text, const struct stk_template_vars *vars, const char *msg)
{
	stk_buf b = STK_BUF_INIT(4096);
	stk_err err = STK_ERR_INIT;

	assert_int_equal(stk_buf_puts(&b, "keep"), 0);
	assert_int_equal(stk_template_expand(text, vars, &b, &err), STK_EINVAL);
	if (strcmp(err.message, msg))
		fail_msg("expand %s:\n  got  %s\n  want %s", text, err.message, msg);
	assert_string_equal(b.ptr, "keep");
	assert_int_equal(b.len, 4);
	/* The text itself is valid. */
	assert_int_equal(stk_template_check(text, NULL, NULL, NULL), 0);
	stk_buf_release(&b);
}

static void test_template__expand_missing_value_is_an_error(void **state)
{
	struct stk_template_vars v = full_vars();

	(void)state;
	expect_no_value("a/{{.Labels.zone}}", &v,
			"template \"a/{{.Labels.zone}}\": no value for .Labels.zone at offset 2");
	expect_no_value("{{index .Labels \"zone\"}}", &v,
			"template \"{{index .Labels \"zone\"}}\": no value for .Labels.zone at "
			"offset 0");
	expect_no_value(
		"{{.Ref}}/{{.Vars.zone}}", &v,
		"template \"{{.Ref}}/{{.Vars.zone}}\": no value for .Vars.zone at offset 9");
	v.label = NULL;
	expect_no_value("{{.Labels.tier}}", &v,
			"template \"{{.Labels.tier}}\": no value for .Labels.tier at offset 0");
	v.var = NULL;
	expect_no_value("{{.Vars.site}}", &v,
			"template \"{{.Vars.site}}\": no value for .Vars.site at offset 0");
	expect_no_value("{{.Vars.site}}", NULL,
			"template \"{{.Vars.site}}\": no value for .Vars.site at offset 0");
	expect_no_value("{{.PodName}}", NULL,
			"template \"{{.PodName}}\": no value for .PodName at offset 0");
}

static void test_template__expand_null_builtin_is_an_error(void **state)
{
	static const char *const names[] = {
		".GatewayName", ".PodName", ".PodOrdinal", ".Namespace",
		".CRName",	".Ref",	    ".Commit",
	};
	char text[64], msg[256];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct stk_template_vars v = full_vars();
		const char **slot[] = {
			&v.gateway_name, &v.pod_name, &v.pod_ordinal, &v.ns,
			&v.cr_name,	 &v.ref,      &v.commit,
		};

		*slot[i] = NULL;
		snprintf(text, sizeof(text), "x/{{ %s }}", names[i]);
		snprintf(msg, sizeof(msg), "template \"%s\": no value for %s at offset 2", text,
			 names[i]);
		expect_no_value(text, &v, msg);
	}
}

static void test_template__too_big(void **state)
{
	struct stk_template_vars v = full_vars();
	stk_buf b = STK_BUF_INIT(10);
	stk_err err = STK_ERR_INIT;

	(void)state;
	/* "pre/" + "plant" + "/" is exactly 10 bytes: fits. */
	assert_int_equal(stk_buf_puts(&b, "pre/"), 0);
	assert_int_equal(stk_template_expand("{{.CRName}}/", &v, &b, &err), 0);
	assert_string_equal(b.ptr, "pre/plant/");

	/* One more byte from a value. */
	stk_buf_reset(&b);
	assert_int_equal(stk_buf_puts(&b, "pre/"), 0);
	assert_int_equal(stk_template_expand("/{{.CRName}}/", &v, &b, &err), STK_ETOOBIG);
	assert_int_equal(err.code, STK_ETOOBIG);
	assert_string_equal(err.message,
			    "template \"/{{.CRName}}/\": expansion longer than 10 bytes");
	assert_string_equal(b.ptr, "pre/");
	assert_int_equal(b.len, 4);

	/* One more byte from literal text after a value. */
	assert_int_equal(stk_template_expand("{{.CRName}}/ab", &v, &b, &err), STK_ETOOBIG);
	assert_string_equal(b.ptr, "pre/");

	/* A value cut short is not left behind. */
	v.cr_name = "a-very-long-name";
	assert_int_equal(stk_template_expand("{{.CRName}}", &v, &b, NULL), STK_ETOOBIG);
	assert_string_equal(b.ptr, "pre/");
	stk_buf_release(&b);
}

static void test_template__has_actions(void **state)
{
	(void)state;
	assert_false(stk_template_has_actions(NULL));
	assert_false(stk_template_has_actions(""));
	assert_false(stk_template_has_actions("services/gw/projects"));
	assert_false(stk_template_has_actions("a{b}c{ }"));
	assert_true(stk_template_has_actions("{{.Ref}}"));
	assert_true(stk_template_has_actions("services/{{ .GatewayName }}/x"));
	/* Malformed text is not literal either: it must go through check/expand. */
	assert_true(stk_template_has_actions("a/{{"));
	assert_true(stk_template_has_actions("a}}b"));
}

static void test_template__messages_stay_one_short_line(void **state)
{
	char text[400];
	stk_err err = STK_ERR_INIT;

	(void)state;
	memset(text, 'a', sizeof(text));
	memcpy(text, "x\n{{.Bad\x01name}}", 15);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(stk_template_check(text, NULL, NULL, &err), STK_EINVAL);
	assert_null(strchr(err.message, '\n'));
	assert_null(strchr(err.message, '\x01'));
	assert_non_null(strstr(err.message, "template \"x?{{.Bad?name}}aaaa"));
	assert_non_null(strstr(err.message, "aaa...\": unknown variable .Bad?name at offset 2"));
	assert_true(strlen(err.message) < 200);
}

static void test_template__null_text_and_null_err(void **state)
{
	stk_buf b = STK_BUF_INIT(10);
	stk_err err = STK_ERR_INIT;

	(void)state;
	assert_int_equal(stk_template_check(NULL, NULL, NULL, &err), STK_EINVAL);
	assert_int_equal(stk_template_expand(NULL, NULL, &b, &err), STK_EINVAL);
	assert_int_equal(b.len, 0);
	assert_int_equal(stk_template_check("{{.Foo}}", NULL, NULL, NULL), STK_EINVAL);
	assert_int_equal(stk_template_expand("0123456789ab", NULL, &b, NULL), STK_ETOOBIG);
	stk_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_template__expands_every_builtin),
		cmocka_unit_test(test_template__whitespace_inside_braces),
		cmocka_unit_test(test_template__labels_and_vars),
		cmocka_unit_test(test_template__literal_text),
		cmocka_unit_test(test_template__appends_to_buffer),
		cmocka_unit_test(test_template__values_are_not_expanded_again),
		cmocka_unit_test(test_template__syntax_errors),
		cmocka_unit_test(test_template__first_error_wins),
		cmocka_unit_test(test_template__check_vars_known),
		cmocka_unit_test(test_template__expand_missing_value_is_an_error),
		cmocka_unit_test(test_template__expand_null_builtin_is_an_error),
		cmocka_unit_test(test_template__too_big),
		cmocka_unit_test(test_template__has_actions),
		cmocka_unit_test(test_template__messages_stay_one_short_line),
		cmocka_unit_test(test_template__null_text_and_null_err),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
