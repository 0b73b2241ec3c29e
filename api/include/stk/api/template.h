/*
 * Template variables in SyncProfile mapping paths (`source`, `destination`; DESIGN.md
 * §3.2): a small, fixed subset of Go text/template, so profiles written for the Go peer
 * keep working, and an unknown or unset variable is an error, never "".
 *
 * Grammar (bytes; `ws` is space, tab, CR or LF):
 *
 *   template  = *( literal / action )
 *   literal   = any bytes but "{{" and "}}"      ; a lone "{" or "}" is literal text
 *   action    = "{{" *ws expr *ws "}}"
 *   expr      = builtin
 *             / ".Labels." label-key
 *             / ".Vars." ident
 *             / "index" 1*ws ".Labels" 1*ws DQUOTE label-key DQUOTE
 *             / "index" 1*ws ".Vars" 1*ws DQUOTE ident DQUOTE
 *   builtin   = ".GatewayName" / ".PodName" / ".PodOrdinal" / ".Namespace" / ".CRName"
 *             / ".Ref" / ".Commit"
 *   label-key = 1*( ALPHA / DIGIT / "-" / "_" / "." / "/" )
 *   ident     = ( ALPHA / "_" ) *( ALPHA / DIGIT / "_" )
 *
 * Everything else is rejected with STK_EINVAL: an unterminated "{{", a "}}" outside an
 * action, an empty action, a "{{" inside an action, an unknown variable, a malformed
 * label key or var name, backslash escapes inside the quoted key, and the parts of Go
 * templates this subset leaves out (pipelines, functions other than `index`, literals,
 * comments, `{{-` / `-}}` trim markers). Messages read
 *   template "<text>": <problem> at offset <n>
 * where <n> is the byte offset of the offending "{{" (the action's own "{{", or the inner
 * one for a nested "{{") or of the stray "}}". Work is linear in the length of the text.
 *
 * Values are inserted literally: a value containing "{{" is not expanded again.
 */
#ifndef STK_API_TEMPLATE_H
#define STK_API_TEMPLATE_H

#include <stdbool.h>

#include "stk/buf.h"
#include "stk/err.h"

/*
 * Values for expansion, borrowed for the duration of the call. A NULL built-in (say
 * `commit` before the first fetch) makes an action that uses it fail. `label` and `var`
 * return the value of a pod label / spec.vars entry, or NULL when there is none; a NULL
 * function is the same as every lookup returning NULL. Both receive `arg`.
 */
struct stk_template_vars {
	const char *gateway_name, *pod_name, *pod_ordinal, *ns, *cr_name, *ref, *commit;
	const char *(*label)(const char *key, void *arg);
	const char *(*var)(const char *name, void *arg);
	void *arg;
};

/*
 * Checks the syntax of `text` and that every variable is one of the grammar's. When
 * `vars_known` is non-NULL, each .Vars.<name> must also satisfy vars_known(name, arg)
 * (the profile's spec.vars keys); labels are not checked, since they belong to pods.
 * 0 or STK_EINVAL (message as above). Any thread.
 */
int stk_template_check(const char *text, bool (*vars_known)(const char *name, void *arg), void *arg,
		       stk_err *err);

/*
 * Appends the expansion of `text` to `out`. STK_EINVAL for a syntax error or a variable
 * that is unknown or has no value (the message names it: "no value for .Commit");
 * STK_ETOOBIG when the result would pass out->max. On failure `out` is left as it was.
 * `vars` may be NULL (every variable is then unset). Any thread.
 */
int stk_template_expand(const char *text, const struct stk_template_vars *vars, stk_buf *out,
			stk_err *err);

/*
 * True when `text` is not plain literal text, that is when it contains "{{" (an action,
 * well-formed or not) or "}}": such a text must go through stk_template_check/expand,
 * which reject the malformed ones, rather than be used as it is. False for NULL.
 */
bool stk_template_has_actions(const char *text);

#endif
