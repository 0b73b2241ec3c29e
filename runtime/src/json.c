#include "stk/json.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"
#include "stk/limits.h"

/* The deepest nesting of arrays and objects in `s`, outside strings; stops past `cap`. */
static size_t json_depth(const char *s, size_t len, size_t cap)
{
	size_t depth = 0, deepest = 0;
	bool in_str = false;

	for (size_t i = 0; i < len && deepest <= cap; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > deepest)
				deepest = depth;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return deepest;
}

int stk_json_parse(yajl_val *out, const char *s, size_t len, size_t max, stk_err *err)
{
	char errbuf[256];
	char *copy;
	yajl_val v;
	size_t i;

	if (len > max)
		return stk_err_set(err, STK_ETOOBIG, "JSON document of %zu bytes exceeds %zu", len,
				   max);
	/* yajl_tree_parse wants a C string; a NUL inside the input is itself malformed. */
	if (memchr(s, '\0', len))
		return stk_err_set(err, STK_EPARSE, "JSON document contains a NUL byte");
	if (json_depth(s, len, STK_LIMIT_JSON_DEPTH) > STK_LIMIT_JSON_DEPTH)
		return stk_err_set(err, STK_EPARSE, "JSON document nests deeper than %u levels",
				   STK_LIMIT_JSON_DEPTH);
	copy = stk_strndup(s, len);
	errbuf[0] = '\0';
	v = yajl_tree_parse(copy, errbuf, sizeof(errbuf));
	free(copy);
	if (!v) {
		/* yajl's message spans lines (it quotes the input); keep the first. */
		for (i = 0; errbuf[i]; i++)
			if (errbuf[i] == '\n') {
				errbuf[i] = '\0';
				break;
			}
		return stk_err_set(err, STK_EPARSE, "invalid JSON: %s",
				   errbuf[0] ? errbuf : "parse error");
	}
	*out = v;
	return 0;
}

static yajl_val json_vget(yajl_val v, va_list ap)
{
	const char *key;

	while ((key = va_arg(ap, const char *)) != NULL) {
		size_t i, n;
		yajl_val next = NULL;

		if (!v || !YAJL_IS_OBJECT(v))
			return NULL;
		n = v->u.object.len;
		for (i = 0; i < n; i++) {
			if (!strcmp(v->u.object.keys[i], key)) {
				next = v->u.object.values[i];
				break;
			}
		}
		v = next;
	}
	return v;
}

yajl_val stk_json_get(yajl_val v, ...)
{
	va_list ap;
	yajl_val r;

	va_start(ap, v);
	r = json_vget(v, ap);
	va_end(ap);
	return r;
}

const char *stk_json_str(yajl_val v, ...)
{
	va_list ap;
	yajl_val r;

	va_start(ap, v);
	r = json_vget(v, ap);
	va_end(ap);
	return r && YAJL_IS_STRING(r) ? r->u.string : NULL;
}

yajl_val stk_json_obj(yajl_val v, ...)
{
	va_list ap;
	yajl_val r;

	va_start(ap, v);
	r = json_vget(v, ap);
	va_end(ap);
	return r && YAJL_IS_OBJECT(r) ? r : NULL;
}

yajl_val stk_json_arr(yajl_val v, ...)
{
	va_list ap;
	yajl_val r;

	va_start(ap, v);
	r = json_vget(v, ap);
	va_end(ap);
	return r && YAJL_IS_ARRAY(r) ? r : NULL;
}

bool stk_json_int(yajl_val v, int64_t *out, ...)
{
	va_list ap;
	yajl_val r;

	va_start(ap, out);
	r = json_vget(v, ap);
	va_end(ap);
	if (!r || !YAJL_IS_INTEGER(r))
		return false;
	*out = r->u.number.i;
	return true;
}

bool stk_json_bool(yajl_val v, bool *out, ...)
{
	va_list ap;
	yajl_val r;

	va_start(ap, out);
	r = json_vget(v, ap);
	va_end(ap);
	if (!r || !(YAJL_IS_TRUE(r) || YAJL_IS_FALSE(r)))
		return false;
	*out = YAJL_IS_TRUE(r);
	return true;
}

int stk_json_write(stk_buf *b, yajl_val v)
{
	size_t i;
	int rc = 0;

	if (!v)
		return stk_buf_puts(b, "null");
	switch (v->type) {
	case yajl_t_string:
		return stk_buf_put_json_string(b, v->u.string, strlen(v->u.string));
	case yajl_t_number:
		/* r holds the number exactly as it appeared in the input. */
		return stk_buf_puts(b, v->u.number.r);
	case yajl_t_true:
		return stk_buf_puts(b, "true");
	case yajl_t_false:
		return stk_buf_puts(b, "false");
	case yajl_t_null:
		return stk_buf_puts(b, "null");
	case yajl_t_object:
		rc = stk_buf_putc(b, '{');
		for (i = 0; !rc && i < v->u.object.len; i++) {
			const char *k = v->u.object.keys[i];
			if (i)
				rc = stk_buf_putc(b, ',');
			if (!rc)
				rc = stk_buf_put_json_string(b, k, strlen(k));
			if (!rc)
				rc = stk_buf_putc(b, ':');
			if (!rc)
				rc = stk_json_write(b, v->u.object.values[i]);
		}
		return rc ? rc : stk_buf_putc(b, '}');
	case yajl_t_array:
		rc = stk_buf_putc(b, '[');
		for (i = 0; !rc && i < v->u.array.len; i++) {
			if (i)
				rc = stk_buf_putc(b, ',');
			if (!rc)
				rc = stk_json_write(b, v->u.array.values[i]);
		}
		return rc ? rc : stk_buf_putc(b, ']');
	case yajl_t_any:
		break;
	}
	return stk_buf_puts(b, "null");
}

bool stk_json_remove(yajl_val obj, const char *key)
{
	if (!obj || !YAJL_IS_OBJECT(obj))
		return false;
	for (size_t i = 0; i < obj->u.object.len; i++) {
		if (strcmp(obj->u.object.keys[i], key))
			continue;
		free((char *)obj->u.object.keys[i]);
		yajl_tree_free(obj->u.object.values[i]);
		memmove(&obj->u.object.keys[i], &obj->u.object.keys[i + 1],
			(obj->u.object.len - i - 1) * sizeof(*obj->u.object.keys));
		memmove(&obj->u.object.values[i], &obj->u.object.values[i + 1],
			(obj->u.object.len - i - 1) * sizeof(*obj->u.object.values));
		obj->u.object.len--;
		return true;
	}
	return false;
}

void stk_json_keep(yajl_val obj, const char *const *keep)
{
	size_t i = 0;

	if (!obj || !YAJL_IS_OBJECT(obj))
		return;
	while (i < obj->u.object.len) {
		const char *k = obj->u.object.keys[i];
		bool wanted = false;
		for (const char *const *w = keep; *w && !wanted; w++)
			wanted = !strcmp(*w, k);
		if (wanted) {
			i++;
			continue;
		}
		free((char *)k);
		yajl_tree_free(obj->u.object.values[i]);
		memmove(&obj->u.object.keys[i], &obj->u.object.keys[i + 1],
			(obj->u.object.len - i - 1) * sizeof(*obj->u.object.keys));
		memmove(&obj->u.object.values[i], &obj->u.object.values[i + 1],
			(obj->u.object.len - i - 1) * sizeof(*obj->u.object.values));
		obj->u.object.len--;
	}
}

int stk_json_set_string(yajl_val obj, const char *key, const char *value)
{
	yajl_val v;
	size_t n;

	if (!obj || !YAJL_IS_OBJECT(obj))
		return STK_EINVAL;
	stk_json_remove(obj, key);
	n = obj->u.object.len;
	v = stk_calloc(1, sizeof(*v));
	v->type = yajl_t_string;
	v->u.string = stk_strdup(value);
	obj->u.object.keys = stk_reallocarray((void *)obj->u.object.keys, n + 1, sizeof(char *));
	obj->u.object.values = stk_reallocarray(obj->u.object.values, n + 1, sizeof(yajl_val));
	obj->u.object.keys[n] = stk_strdup(key);
	obj->u.object.values[n] = v;
	obj->u.object.len = n + 1;
	return 0;
}
