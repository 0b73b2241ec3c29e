/*
 * libFuzzer target: mapping-path templates. check and expand must agree on what is
 * valid, a text without actions must expand to itself, values must go in literally,
 * a failed expansion must leave the buffer as it was, and messages stay one line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stk/api/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every label and var has a value containing an action, which must not be expanded. */
static const char *fuzz_lookup(const char *key, void *arg)
{
	(void)arg;
	if (!*key)
		abort();
	return "{{.Commit}}";
}

static bool fuzz_known(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "unknown") != 0;
}

static void fuzz_check_err(const stk_err *err, int rc)
{
	if (err->code != rc || !err->message[0] || strchr(err->message, '\n') ||
	    strncmp(err->message, "template \"", 10))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stk_template_vars all = {
		.gateway_name = "g",
		.pod_name = "p",
		.pod_ordinal = "0",
		.ns = "n",
		.cr_name = "c",
		.ref = "r",
		.commit = "x",
		.label = fuzz_lookup,
		.var = fuzz_lookup,
	};
	struct stk_template_vars none = {0};
	stk_buf out = STK_BUF_INIT(1 << 20), small = STK_BUF_INIT(16);
	stk_err e1 = STK_ERR_INIT, e2 = STK_ERR_INIT;
	char *text = malloc(size + 1);
	int rc1, rc2;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';

	rc1 = stk_template_check(text, NULL, NULL, &e1);
	rc2 = stk_template_expand(text, &all, &out, &e2);
	if (rc1 != rc2 || (rc1 && strcmp(e1.message, e2.message)))
		abort();
	if (rc1) {
		fuzz_check_err(&e1, STK_EINVAL);
		if (out.len != 0)
			abort();
	} else if (!stk_template_has_actions(text)) {
		if (out.len != strlen(text) || memcmp(out.ptr ? out.ptr : "", text, out.len))
			abort();
	} else {
		/*
		 * Every action is at least as long as its value here ("{{.Ref}}" -> "r",
		 * "{{.Vars.a}}" -> "{{.Commit}}"), so a value expanded again would show.
		 */
		size_t len = out.len;
		if (!strstr(text, "{{") || len > strlen(text))
			abort();
		/* Without values every action fails, and the buffer keeps its content. */
		if (stk_template_expand(text, &none, &out, &e2) != STK_EINVAL || out.len != len)
			abort();
		fuzz_check_err(&e2, STK_EINVAL);
	}

	/*
	 * vars_known only adds failures, and only about .Vars.unknown (which may come before
	 * a syntax error further on).
	 */
	rc2 = stk_template_check(text, fuzz_known, NULL, &e2);
	if (rc1 && rc2 != rc1)
		abort();
	if (rc2) {
		fuzz_check_err(&e2, STK_EINVAL);
		if (strcmp(e1.message, e2.message) &&
		    !strstr(e2.message, "\": unknown variable .Vars.unknown at offset "))
			abort();
	}

	/* A small buffer: success or a clean failure that keeps what was there. */
	stk_buf_puts(&small, "ab");
	rc2 = stk_template_expand(text, &all, &small, &e2);
	if (rc2) {
		if ((rc2 != STK_ETOOBIG && rc2 != STK_EINVAL) || (rc2 == STK_EINVAL && !rc1) ||
		    small.len != 2 || strcmp(small.ptr, "ab"))
			abort();
		fuzz_check_err(&e2, rc2);
	} else if (rc1 || small.len < 2 || small.len > 16) {
		abort();
	}

	stk_buf_release(&out);
	stk_buf_release(&small);
	free(text);
	return 0;
}
