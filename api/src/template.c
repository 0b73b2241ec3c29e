#include "stk/api/template.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"

/* How many bytes of the template, or of a name from it, a message quotes. */
#define TMPL_QUOTE_MAX 80

enum tmpl_kind {
	TMPL_BUILTIN,
	TMPL_LABEL,
	TMPL_VAR,
};

/* What one action names; `key` points into the template (not terminated). */
struct tmpl_ref {
	enum tmpl_kind kind;
	size_t builtin; /* index into tmpl_builtins */
	const char *key;
	size_t keylen;
	size_t at; /* offset of the action's "{{" */
};

static const char *const tmpl_builtins[] = {
	".GatewayName", ".PodName", ".PodOrdinal", ".Namespace", ".CRName", ".Ref", ".Commit",
};

#define TMPL_NBUILTINS (sizeof(tmpl_builtins) / sizeof(tmpl_builtins[0]))

static const char *tmpl_builtin_value(const struct stk_template_vars *v, size_t i)
{
	if (!v)
		return NULL;
	switch (i) {
	case 0:
		return v->gateway_name;
	case 1:
		return v->pod_name;
	case 2:
		return v->pod_ordinal;
	case 3:
		return v->ns;
	case 4:
		return v->cr_name;
	case 5:
		return v->ref;
	default:
		return v->commit;
	}
}

/*
 * Copies at most `n` bytes of `s` (stopping at a NUL) for a one-line message: control
 * bytes become '?', and a copy cut at TMPL_QUOTE_MAX ends in "...". `dst` holds
 * TMPL_QUOTE_MAX + 4 bytes.
 */
static void tmpl_quote(char *dst, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i] && i < TMPL_QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (i < n && s[i]) {
		memcpy(dst + i, "...", 4);
		return;
	}
	dst[i] = '\0';
}

/* Sets `template "<text>": <what>` in err and returns `code`. */
__attribute__((format(printf, 4, 5))) static int tmpl_fail(stk_err *err, int code, const char *text,
							   const char *fmt, ...)
{
	char what[STK_ERR_MESSAGE_MAX];
	char q[TMPL_QUOTE_MAX + 4];
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	tmpl_quote(q, text, (size_t)-1);
	return stk_err_set(err, code, "template \"%s\": %s", q, what);
}

static bool tmpl_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool tmpl_is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool tmpl_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool tmpl_is_label_key(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!tmpl_is_alpha(s[i]) && !tmpl_is_digit(s[i]) && s[i] != '-' && s[i] != '_' &&
		    s[i] != '.' && s[i] != '/')
			return false;
	return true;
}

static bool tmpl_is_ident(const char *s, size_t n)
{
	if (n == 0 || !(tmpl_is_alpha(s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!tmpl_is_alpha(s[i]) && !tmpl_is_digit(s[i]) && s[i] != '_')
			return false;
	return true;
}

static bool tmpl_token_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Checks a label key or var name and stores it in `ref`. */
static int tmpl_set_key(const char *text, struct tmpl_ref *ref, enum tmpl_kind kind,
			const char *key, size_t n, stk_err *err)
{
	char q[TMPL_QUOTE_MAX + 4];

	if (kind == TMPL_LABEL ? !tmpl_is_label_key(key, n) : !tmpl_is_ident(key, n)) {
		tmpl_quote(q, key, n);
		return tmpl_fail(err, STK_EINVAL, text, "malformed %s \"%s\" at offset %zu",
				 kind == TMPL_LABEL ? "label key" : "var name", q, ref->at);
	}
	ref->kind = kind;
	ref->key = key;
	ref->keylen = n;
	return 0;
}

/*
 * Parses `.Name`, `.Labels.<key>` or `.Vars.<name>` at b[*i] (a '.'), leaving *i past it.
 * A label key or var name runs to the next whitespace; a built-in's name to the first
 * byte that cannot be part of a field path.
 */
static int tmpl_parse_field(const char *text, const char *b, size_t n, size_t *i,
			    struct tmpl_ref *ref, stk_err *err)
{
	char q[TMPL_QUOTE_MAX + 4];
	size_t s = *i, k;

	if (n - s > 8 && memcmp(b + s, ".Labels.", 8) == 0) {
		for (k = s + 8; k < n && !tmpl_is_ws(b[k]); k++)
			;
		*i = k;
		return tmpl_set_key(text, ref, TMPL_LABEL, b + s + 8, k - s - 8, err);
	}
	if (n - s > 6 && memcmp(b + s, ".Vars.", 6) == 0) {
		for (k = s + 6; k < n && !tmpl_is_ws(b[k]); k++)
			;
		*i = k;
		return tmpl_set_key(text, ref, TMPL_VAR, b + s + 6, k - s - 6, err);
	}
	for (k = s + 1;
	     k < n && (tmpl_is_alpha(b[k]) || tmpl_is_digit(b[k]) || b[k] == '_' || b[k] == '.');
	     k++)
		;
	*i = k;
	/* ".Labels" and ".Vars" alone, or with an empty key after the dot. */
	if (tmpl_token_is(b + s, k - s, ".Labels") || tmpl_token_is(b + s, k - s, ".Labels."))
		return tmpl_set_key(text, ref, TMPL_LABEL, b + k, 0, err);
	if (tmpl_token_is(b + s, k - s, ".Vars") || tmpl_token_is(b + s, k - s, ".Vars."))
		return tmpl_set_key(text, ref, TMPL_VAR, b + k, 0, err);
	for (size_t j = 0; j < TMPL_NBUILTINS; j++) {
		if (tmpl_token_is(b + s, k - s, tmpl_builtins[j])) {
			ref->kind = TMPL_BUILTIN;
			ref->builtin = j;
			return 0;
		}
	}
	/* Name the whole word as written, up to the next whitespace. */
	for (; k < n && !tmpl_is_ws(b[k]); k++)
		;
	tmpl_quote(q, b + s, k - s);
	return tmpl_fail(err, STK_EINVAL, text, "unknown variable %s at offset %zu", q, ref->at);
}

/* Parses `index .Labels "key"` or `index .Vars "name"`, *i just past "index". */
static int tmpl_parse_index(const char *text, const char *b, size_t n, size_t *i,
			    struct tmpl_ref *ref, stk_err *err)
{
	enum tmpl_kind kind;
	size_t s, k;

	for (s = *i; s < n && tmpl_is_ws(b[s]); s++)
		;
	for (k = s; k < n && !tmpl_is_ws(b[k]); k++)
		;
	if (tmpl_token_is(b + s, k - s, ".Labels"))
		kind = TMPL_LABEL;
	else if (tmpl_token_is(b + s, k - s, ".Vars"))
		kind = TMPL_VAR;
	else
		return tmpl_fail(err, STK_EINVAL, text,
				 "index takes .Labels or .Vars and a quoted key at offset %zu",
				 ref->at);
	for (s = k; s < n && tmpl_is_ws(b[s]); s++)
		;
	if (s == n || b[s] != '"')
		return tmpl_fail(err, STK_EINVAL, text,
				 "index needs a double-quoted key at offset %zu", ref->at);
	for (k = s + 1; k < n && b[k] != '"'; k++)
		if (b[k] == '\\')
			return tmpl_fail(err, STK_EINVAL, text,
					 "escapes in a quoted key are not supported at offset %zu",
					 ref->at);
	if (k == n)
		return tmpl_fail(err, STK_EINVAL, text, "unterminated quoted key at offset %zu",
				 ref->at);
	*i = k + 1;
	return tmpl_set_key(text, ref, kind, b + s + 1, k - s - 1, err);
}

/*
 * Parses the action whose "{{" is at text[at] into `ref` and stores in *end the offset
 * just past its "}}". Reads no byte past the template's NUL.
 */
static int tmpl_parse_action(const char *text, size_t at, struct tmpl_ref *ref, size_t *end,
			     stk_err *err)
{
	const char *b = text + at + 2;
	char q[TMPL_QUOTE_MAX + 4];
	size_t n, i, k;
	int rc;

	ref->at = at;
	/* The body ends at the first "}}"; a NUL or another "{{" before it is an error. */
	for (n = 0;; n++) {
		if (b[n] == '\0')
			return tmpl_fail(err, STK_EINVAL, text, "unterminated \"{{\" at offset %zu",
					 at);
		if (b[n] == '{' && b[n + 1] == '{')
			return tmpl_fail(err, STK_EINVAL, text,
					 "nested \"{{\" inside an action at offset %zu",
					 at + 2 + n);
		if (b[n] == '}' && b[n + 1] == '}')
			break;
	}
	*end = at + 2 + n + 2;

	for (i = 0; i < n && tmpl_is_ws(b[i]); i++)
		;
	if (i == n)
		return tmpl_fail(err, STK_EINVAL, text, "empty action at offset %zu", at);
	if (b[0] == '-')
		return tmpl_fail(err, STK_EINVAL, text,
				 "trim markers ({{- and -}}) are not supported at offset %zu", at);
	if (b[i] == '.') {
		rc = tmpl_parse_field(text, b, n, &i, ref, err);
	} else {
		for (k = i; k < n && !tmpl_is_ws(b[k]); k++)
			;
		if (!tmpl_token_is(b + i, k - i, "index")) {
			tmpl_quote(q, b + i, k - i);
			return tmpl_fail(err, STK_EINVAL, text,
					 "unsupported action \"%s\" (only variables and index "
					 "are supported) at offset %zu",
					 q, at);
		}
		i = k;
		rc = tmpl_parse_index(text, b, n, &i, ref, err);
	}
	if (rc)
		return rc;

	/* Only whitespace may follow the variable. */
	for (k = i; k < n && tmpl_is_ws(b[k]); k++)
		;
	if (k == n)
		return 0;
	if (b[k] == '-' && k + 1 == n && k > i)
		return tmpl_fail(err, STK_EINVAL, text,
				 "trim markers ({{- and -}}) are not supported at offset %zu", at);
	if (b[k] == '|')
		return tmpl_fail(err, STK_EINVAL, text, "pipelines are not supported at offset %zu",
				 at);
	tmpl_quote(q, b + k, n - k);
	return tmpl_fail(err, STK_EINVAL, text,
			 "unexpected \"%s\" after the variable at offset %zu", q, at);
}

/* The canonical spelling of a reference for messages: ".Commit", ".Labels.app". */
static void tmpl_ref_name(char *dst, size_t cap, const struct tmpl_ref *ref)
{
	char q[TMPL_QUOTE_MAX + 4];

	if (ref->kind == TMPL_BUILTIN) {
		snprintf(dst, cap, "%s", tmpl_builtins[ref->builtin]);
		return;
	}
	tmpl_quote(q, ref->key, ref->keylen);
	snprintf(dst, cap, "%s%s", ref->kind == TMPL_LABEL ? ".Labels." : ".Vars.", q);
}

static int tmpl_too_big(const char *text, const stk_buf *out, stk_err *err)
{
	return tmpl_fail(err, STK_ETOOBIG, text, "expansion longer than %zu bytes", out->max);
}

/* The value of `ref`, or NULL when it has none. `*key` is freed by the caller. */
static const char *tmpl_lookup(const struct tmpl_ref *ref, const struct stk_template_vars *vars,
			       char **key)
{
	if (ref->kind == TMPL_BUILTIN)
		return tmpl_builtin_value(vars, ref->builtin);
	if (!vars)
		return NULL;
	if (ref->kind == TMPL_LABEL && !vars->label)
		return NULL;
	if (ref->kind == TMPL_VAR && !vars->var)
		return NULL;
	*key = stk_strndup(ref->key, ref->keylen);
	if (ref->kind == TMPL_LABEL)
		return vars->label(*key, vars->arg);
	return vars->var(*key, vars->arg);
}

/*
 * One pass over `text`. With `out`, literal runs and values are appended to it; without,
 * each .Vars.<name> is checked with `known` (when non-NULL).
 */
static int tmpl_run(const char *text, bool (*known)(const char *name, void *arg), void *karg,
		    const struct stk_template_vars *vars, stk_buf *out, stk_err *err)
{
	char name[TMPL_QUOTE_MAX + 16];
	size_t pos = 0, lit = 0, end = 0;
	struct tmpl_ref ref;
	const char *val;
	char *key;
	bool ok;
	int rc;

	if (!text)
		return stk_err_set(err, STK_EINVAL, "template: no text");
	for (;;) {
		char c = text[pos];

		if (c != '\0' && !((c == '{' || c == '}') && text[pos + 1] == c)) {
			pos++;
			continue;
		}
		if (out && pos > lit && stk_buf_put(out, text + lit, pos - lit))
			return tmpl_too_big(text, out, err);
		if (c == '\0')
			return 0;
		if (c == '}')
			return tmpl_fail(err, STK_EINVAL, text,
					 "unexpected \"}}\" outside an action at offset %zu", pos);
		rc = tmpl_parse_action(text, pos, &ref, &end, err);
		if (rc)
			return rc;
		pos = lit = end;

		key = NULL;
		if (out) {
			val = tmpl_lookup(&ref, vars, &key);
			if (val && stk_buf_puts(out, val)) {
				free(key);
				return tmpl_too_big(text, out, err);
			}
			ok = val != NULL;
		} else if (ref.kind == TMPL_VAR && known) {
			key = stk_strndup(ref.key, ref.keylen);
			ok = known(key, karg);
		} else {
			ok = true;
		}
		free(key);
		if (!ok) {
			tmpl_ref_name(name, sizeof(name), &ref);
			return tmpl_fail(err, STK_EINVAL, text, "%s %s at offset %zu",
					 out ? "no value for" : "unknown variable", name, ref.at);
		}
	}
}

int stk_template_check(const char *text, bool (*vars_known)(const char *name, void *arg), void *arg,
		       stk_err *err)
{
	return tmpl_run(text, vars_known, arg, NULL, NULL, err);
}

int stk_template_expand(const char *text, const struct stk_template_vars *vars, stk_buf *out,
			stk_err *err)
{
	size_t start = out->len;
	int rc = tmpl_run(text, NULL, NULL, vars, out, err);

	if (rc) {
		out->len = start;
		if (out->ptr)
			out->ptr[start] = '\0';
	}
	return rc;
}

bool stk_template_has_actions(const char *text)
{
	if (!text)
		return false;
	for (; *text; text++)
		if ((*text == '{' || *text == '}') && text[1] == *text)
			return true;
	return false;
}
