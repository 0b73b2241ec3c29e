#include "stk/api/codec.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"
#include "stk/json.h"

#define FIELD_PTR(obj, f)  ((char *)(obj) + (f)->offset)
#define FIELD_CPTR(obj, f) ((const char *)(obj) + (f)->offset)

/* A field's path for messages: "<parent>.<name>" (or "<name>" at the top). */
static void codec_path(char *dst, size_t cap, const char *parent, const char *name)
{
	if (parent && *parent)
		snprintf(dst, cap, "%s.%s", parent, name);
	else
		snprintf(dst, cap, "%s", name);
}

static const char *codec_type_name(yajl_val v)
{
	if (!v || YAJL_IS_NULL(v))
		return "null";
	if (YAJL_IS_STRING(v))
		return "a string";
	if (YAJL_IS_NUMBER(v))
		return "a number";
	if (YAJL_IS_OBJECT(v))
		return "an object";
	if (YAJL_IS_ARRAY(v))
		return "an array";
	return "a boolean";
}

static int codec_mismatch(stk_err *err, const char *path, const char *want, yajl_val got)
{
	return stk_err_set(err, STK_EPARSE, "%s: expected %s, got %s", path, want,
			   codec_type_name(got));
}

/* Deep copy of a yajl value (so decoded objects own their memory). */
static yajl_val codec_copy(yajl_val v)
{
	stk_buf b = STK_BUF_INIT((size_t)-1);
	yajl_val out = NULL;

	stk_json_write(&b, v);
	if (stk_json_parse(&out, b.ptr, b.len, b.len + 1, NULL))
		out = NULL;
	stk_buf_release(&b);
	return out;
}

static int codec_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int codec_decode_field(const struct stk_api_field *f, void *obj, yajl_val v,
			      const char *path, stk_err *err);

int stk_api_decode(const struct stk_api_type *t, void *out, yajl_val v, const char *path,
		   stk_err *err)
{
	char sub[512];
	int rc;

	if (!v || !YAJL_IS_OBJECT(v))
		return codec_mismatch(err, path && *path ? path : t->name, "an object", v);
	for (size_t i = 0; i < t->nfields; i++) {
		const struct stk_api_field *f = &t->fields[i];
		yajl_val fv = stk_json_get(v, f->name, NULL);
		if (!fv)
			continue;
		/* A JSON null is the same as an absent field (kubectl may send it). */
		if (YAJL_IS_NULL(fv))
			continue;
		codec_path(sub, sizeof(sub), path, f->name);
		rc = codec_decode_field(f, out, fv, sub, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int codec_decode_field(const struct stk_api_field *f, void *obj, yajl_val v,
			      const char *path, stk_err *err)
{
	char *p = FIELD_PTR(obj, f);
	char sub[512];
	int rc;

	switch (f->type) {
	case STK_API_STRING:
		if (!YAJL_IS_STRING(v))
			return codec_mismatch(err, path, "a string", v);
		free(*(char **)p);
		*(char **)p = stk_strdup(v->u.string);
		return 0;
	case STK_API_INT: {
		struct stk_opt_i64 *o = (struct stk_opt_i64 *)p;
		if (!YAJL_IS_INTEGER(v))
			return codec_mismatch(err, path, "an integer", v);
		o->set = true;
		o->v = v->u.number.i;
		return 0;
	}
	case STK_API_BOOL: {
		struct stk_opt_bool *o = (struct stk_opt_bool *)p;
		if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
			return codec_mismatch(err, path, "a boolean", v);
		o->set = true;
		o->v = YAJL_IS_TRUE(v);
		return 0;
	}
	case STK_API_OBJECT:
		*(bool *)p = true;
		return stk_api_decode(f->sub, p, v, path, err);
	case STK_API_STRINGS: {
		struct stk_api_strings *l = (struct stk_api_strings *)p;
		if (!YAJL_IS_ARRAY(v))
			return codec_mismatch(err, path, "an array of strings", v);
		l->present = true;
		for (size_t i = 0; i < v->u.array.len; i++) {
			yajl_val e = v->u.array.values[i];
			if (!YAJL_IS_STRING(e)) {
				snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
				return codec_mismatch(err, sub, "a string", e);
			}
			l->items = stk_reallocarray(l->items, l->len + 1, sizeof(*l->items));
			l->items[l->len++] = stk_strdup(e->u.string);
		}
		return 0;
	}
	case STK_API_OBJECTS: {
		struct stk_api_objects *l = (struct stk_api_objects *)p;
		if (!YAJL_IS_ARRAY(v))
			return codec_mismatch(err, path, "an array of objects", v);
		l->present = true;
		for (size_t i = 0; i < v->u.array.len; i++) {
			void *e;
			l->items = stk_reallocarray(l->items, l->len + 1, f->sub->size);
			e = (char *)l->items + l->len * f->sub->size;
			memset(e, 0, f->sub->size);
			*(bool *)e = true;
			l->len++;
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			rc = stk_api_decode(f->sub, e, v->u.array.values[i], sub, err);
			if (rc)
				return rc;
		}
		return 0;
	}
	case STK_API_STRMAP:
	case STK_API_INTSTRMAP: {
		struct stk_api_strmap *m = (struct stk_api_strmap *)p;
		size_t n;
		if (!YAJL_IS_OBJECT(v))
			return codec_mismatch(err, path, "an object of strings", v);
		m->present = true;
		n = v->u.object.len;
		m->keys = stk_calloc(n ? n : 1, sizeof(*m->keys));
		m->values = stk_calloc(n ? n : 1, sizeof(*m->values));
		for (size_t i = 0; i < n; i++) {
			yajl_val e = v->u.object.values[i];
			snprintf(sub, sizeof(sub), "%s.%s", path, v->u.object.keys[i]);
			if (f->type == STK_API_STRMAP && !YAJL_IS_STRING(e))
				return codec_mismatch(err, sub, "a string", e);
			if (f->type == STK_API_INTSTRMAP && !YAJL_IS_STRING(e) &&
			    !YAJL_IS_INTEGER(e))
				return codec_mismatch(err, sub, "an integer or a string", e);
			m->keys[m->len] = stk_strdup(v->u.object.keys[i]);
			if (YAJL_IS_STRING(e)) {
				stk_buf q = STK_BUF_INIT((size_t)-1);
				if (f->type == STK_API_INTSTRMAP)
					stk_buf_put_json_string(&q, e->u.string,
								strlen(e->u.string));
				else
					stk_buf_puts(&q, e->u.string);
				m->values[m->len] = stk_buf_detach(&q, NULL);
			} else {
				m->values[m->len] = stk_strdup(e->u.number.r);
			}
			m->len++;
		}
		/* Sorted by key: the API server and Go's JSON encoder emit maps that way. */
		for (size_t i = 1; i < m->len; i++) {
			for (size_t j = i; j > 0 && codec_cmp_str(&m->keys[j - 1], &m->keys[j]) > 0;
			     j--) {
				char *tk = m->keys[j], *tv = m->values[j];
				m->keys[j] = m->keys[j - 1];
				m->values[j] = m->values[j - 1];
				m->keys[j - 1] = tk;
				m->values[j - 1] = tv;
			}
		}
		return 0;
	}
	case STK_API_RAW:
		if (*(yajl_val *)p)
			yajl_tree_free(*(yajl_val *)p);
		*(yajl_val *)p = codec_copy(v);
		return 0;
	case STK_API_CONDITIONS: {
		struct stk_api_conditions *c = (struct stk_api_conditions *)p;
		stk_err cerr = STK_ERR_INIT;
		c->present = true;
		stk_conditions_release(&c->set);
		stk_conditions_init(&c->set);
		if (stk_conditions_decode(&c->set, v, &cerr))
			return stk_err_set(err, STK_EPARSE, "%s: %s", path, cerr.message);
		return 0;
	}
	}
	return stk_err_set(err, STK_EINVAL, "%s: unknown field type", path);
}

static int codec_encode_field(const struct stk_api_field *f, const void *obj, stk_buf *b)
{
	const char *p = FIELD_CPTR(obj, f);
	int rc = 0;

	switch (f->type) {
	case STK_API_STRING:
		return stk_buf_put_json_string(b, *(char *const *)p, strlen(*(char *const *)p));
	case STK_API_INT:
		return stk_buf_printf(b, "%lld", (long long)((const struct stk_opt_i64 *)p)->v);
	case STK_API_BOOL:
		return stk_buf_puts(b, ((const struct stk_opt_bool *)p)->v ? "true" : "false");
	case STK_API_OBJECT:
		return stk_api_encode(f->sub, p, b);
	case STK_API_STRINGS: {
		const struct stk_api_strings *l = (const struct stk_api_strings *)p;
		rc = stk_buf_putc(b, '[');
		for (size_t i = 0; !rc && i < l->len; i++) {
			if (i)
				rc = stk_buf_putc(b, ',');
			if (!rc)
				rc = stk_buf_put_json_string(b, l->items[i], strlen(l->items[i]));
		}
		return rc ? rc : stk_buf_putc(b, ']');
	}
	case STK_API_OBJECTS: {
		const struct stk_api_objects *l = (const struct stk_api_objects *)p;
		rc = stk_buf_putc(b, '[');
		for (size_t i = 0; !rc && i < l->len; i++) {
			if (i)
				rc = stk_buf_putc(b, ',');
			if (!rc)
				rc = stk_api_encode(f->sub,
						    (const char *)l->items + i * f->sub->size, b);
		}
		return rc ? rc : stk_buf_putc(b, ']');
	}
	case STK_API_STRMAP:
	case STK_API_INTSTRMAP: {
		const struct stk_api_strmap *m = (const struct stk_api_strmap *)p;
		rc = stk_buf_putc(b, '{');
		for (size_t i = 0; !rc && i < m->len; i++) {
			if (i)
				rc = stk_buf_putc(b, ',');
			if (!rc)
				rc = stk_buf_put_json_string(b, m->keys[i], strlen(m->keys[i]));
			if (!rc)
				rc = stk_buf_putc(b, ':');
			if (!rc)
				rc = f->type == STK_API_INTSTRMAP
					     ? stk_buf_puts(b, m->values[i])
					     : stk_buf_put_json_string(b, m->values[i],
								       strlen(m->values[i]));
		}
		return rc ? rc : stk_buf_putc(b, '}');
	}
	case STK_API_RAW:
		return stk_json_write(b, *(const yajl_val *)p);
	case STK_API_CONDITIONS:
		return stk_conditions_encode(b, &((const struct stk_api_conditions *)p)->set, NULL);
	}
	return STK_EINVAL;
}

static bool codec_present(const struct stk_api_field *f, const void *obj)
{
	const char *p = FIELD_CPTR(obj, f);

	switch (f->type) {
	case STK_API_STRING:
		return *(char *const *)p != NULL;
	case STK_API_INT:
		return ((const struct stk_opt_i64 *)p)->set;
	case STK_API_BOOL:
		return ((const struct stk_opt_bool *)p)->set;
	case STK_API_OBJECT:
	case STK_API_STRINGS:
	case STK_API_OBJECTS:
	case STK_API_STRMAP:
	case STK_API_INTSTRMAP:
	case STK_API_CONDITIONS:
		return *(const bool *)p;
	case STK_API_RAW:
		return *(const yajl_val *)p != NULL;
	}
	return false;
}

int stk_api_encode(const struct stk_api_type *t, const void *in, stk_buf *b)
{
	bool first = true;
	int rc = stk_buf_putc(b, '{');

	for (size_t i = 0; !rc && i < t->nfields; i++) {
		const struct stk_api_field *f = &t->fields[i];
		if (!codec_present(f, in))
			continue;
		if (!first)
			rc = stk_buf_putc(b, ',');
		first = false;
		if (!rc)
			rc = stk_buf_put_json_string(b, f->name, strlen(f->name));
		if (!rc)
			rc = stk_buf_putc(b, ':');
		if (!rc)
			rc = codec_encode_field(f, in, b);
	}
	return rc ? rc : stk_buf_putc(b, '}');
}

void stk_api_release(const struct stk_api_type *t, void *obj)
{
	if (!obj)
		return;
	for (size_t i = 0; i < t->nfields; i++) {
		const struct stk_api_field *f = &t->fields[i];
		char *p = FIELD_PTR(obj, f);

		switch (f->type) {
		case STK_API_STRING:
			free(*(char **)p);
			break;
		case STK_API_INT:
		case STK_API_BOOL:
			break;
		case STK_API_OBJECT:
			stk_api_release(f->sub, p);
			break;
		case STK_API_STRINGS: {
			struct stk_api_strings *l = (struct stk_api_strings *)p;
			for (size_t j = 0; j < l->len; j++)
				free(l->items[j]);
			free(l->items);
			break;
		}
		case STK_API_OBJECTS: {
			struct stk_api_objects *l = (struct stk_api_objects *)p;
			for (size_t j = 0; j < l->len; j++)
				stk_api_release(f->sub, (char *)l->items + j * f->sub->size);
			free(l->items);
			break;
		}
		case STK_API_STRMAP:
		case STK_API_INTSTRMAP: {
			struct stk_api_strmap *m = (struct stk_api_strmap *)p;
			for (size_t j = 0; j < m->len; j++) {
				free(m->keys[j]);
				free(m->values[j]);
			}
			free(m->keys);
			free(m->values);
			break;
		}
		case STK_API_RAW:
			if (*(yajl_val *)p)
				yajl_tree_free(*(yajl_val *)p);
			break;
		case STK_API_CONDITIONS:
			stk_conditions_release(&((struct stk_api_conditions *)p)->set);
			break;
		}
	}
	memset(obj, 0, t->size);
}

int stk_api_default(const struct stk_api_type *t, void *obj)
{
	for (size_t i = 0; i < t->nfields; i++) {
		const struct stk_api_field *f = &t->fields[i];
		char *p = FIELD_PTR(obj, f);

		if (!codec_present(f, obj) && f->def) {
			yajl_val d = NULL;
			if (stk_json_parse(&d, f->def, strlen(f->def), 65536, NULL) == 0) {
				codec_decode_field(f, obj, d, f->name, NULL);
				yajl_tree_free(d);
			}
		}
		if (f->type == STK_API_OBJECT && *(bool *)p)
			stk_api_default(f->sub, p);
		if (f->type == STK_API_OBJECTS) {
			struct stk_api_objects *l = (struct stk_api_objects *)p;
			for (size_t j = 0; j < l->len; j++)
				stk_api_default(f->sub, (char *)l->items + j * f->sub->size);
		}
	}
	return 0;
}

static bool codec_in_enum(const char *const *enums, const char *s)
{
	for (; *enums; enums++)
		if (!strcmp(*enums, s))
			return true;
	return false;
}

static int codec_check_string(const struct stk_api_field *f, const char *s, const char *path,
			      stk_err *err)
{
	size_t len = strlen(s);

	if (f->enums && !codec_in_enum(f->enums, s)) {
		stk_buf list = STK_BUF_INIT(1024);
		for (const char *const *e = f->enums; *e; e++)
			stk_buf_printf(&list, "%s\"%s\"", e == f->enums ? "" : ", ", *e);
		stk_err_set(err, STK_EINVAL, "%s: \"%.60s\" is not one of %s", path, s,
			    list.ptr ? list.ptr : "");
		stk_buf_release(&list);
		return STK_EINVAL;
	}
	if ((f->flags & STK_API_MIN) && (int64_t)len < f->min)
		return stk_err_set(err, STK_EINVAL, "%s: must be at least %lld characters", path,
				   (long long)f->min);
	if ((f->flags & STK_API_MAX) && (int64_t)len > f->max)
		return stk_err_set(err, STK_EINVAL, "%s: must be at most %lld characters", path,
				   (long long)f->max);
	if (f->pattern) {
		regex_t re;
		int m;
		if (regcomp(&re, f->pattern, REG_EXTENDED | REG_NOSUB) != 0)
			return stk_err_set(err, STK_EINVAL, "%s: bad pattern in the API table",
					   path);
		m = regexec(&re, s, 0, NULL, 0);
		regfree(&re);
		if (m != 0)
			return stk_err_set(err, STK_EINVAL, "%s: \"%.60s\" does not match %s", path,
					   s, f->pattern);
	}
	return 0;
}

/* minItems/maxItems of a list field. */
static int codec_check_count(const struct stk_api_field *f, size_t len, const char *path,
			     stk_err *err)
{
	if ((f->flags & STK_API_MIN) && (int64_t)len < f->min)
		return stk_err_set(err, STK_EINVAL, "%s: must have at least %lld items", path,
				   (long long)f->min);
	if ((f->flags & STK_API_MAX) && (int64_t)len > f->max)
		return stk_err_set(err, STK_EINVAL, "%s: must have at most %lld items", path,
				   (long long)f->max);
	return 0;
}

int stk_api_validate(const struct stk_api_type *t, const void *obj, const char *path, stk_err *err)
{
	char sub[512];
	int rc;

	for (size_t i = 0; i < t->nfields; i++) {
		const struct stk_api_field *f = &t->fields[i];
		const char *p = FIELD_CPTR(obj, f);

		codec_path(sub, sizeof(sub), path, f->name);
		if (!codec_present(f, obj)) {
			if (f->flags & STK_API_REQUIRED)
				return stk_err_set(err, STK_EINVAL, "%s: required", sub);
			continue;
		}
		switch (f->type) {
		case STK_API_STRING:
			rc = codec_check_string(f, *(char *const *)p, sub, err);
			if (rc)
				return rc;
			break;
		case STK_API_INT: {
			int64_t v = ((const struct stk_opt_i64 *)p)->v;
			if ((f->flags & STK_API_MIN) && v < f->min)
				return stk_err_set(err, STK_EINVAL, "%s: must be at least %lld",
						   sub, (long long)f->min);
			if ((f->flags & STK_API_MAX) && v > f->max)
				return stk_err_set(err, STK_EINVAL, "%s: must be at most %lld", sub,
						   (long long)f->max);
			break;
		}
		case STK_API_BOOL:
		case STK_API_RAW:
		case STK_API_STRMAP:
		case STK_API_INTSTRMAP:
		case STK_API_CONDITIONS:
			break;
		case STK_API_OBJECT:
			rc = stk_api_validate(f->sub, p, sub, err);
			if (rc)
				return rc;
			break;
		case STK_API_STRINGS: {
			const struct stk_api_strings *l = (const struct stk_api_strings *)p;
			rc = codec_check_count(f, l->len, sub, err);
			if (rc)
				return rc;
			break;
		}
		case STK_API_OBJECTS: {
			const struct stk_api_objects *l = (const struct stk_api_objects *)p;
			rc = codec_check_count(f, l->len, sub, err);
			if (rc)
				return rc;
			for (size_t j = 0; j < l->len; j++) {
				char el[544];
				snprintf(el, sizeof(el), "%s[%zu]", sub, j);
				rc = stk_api_validate(
					f->sub, (const char *)l->items + j * f->sub->size, el, err);
				if (rc)
					return rc;
			}
			break;
		}
		}
	}
	return 0;
}

static int codec_schema_field(const struct stk_api_field *f, stk_buf *b)
{
	static const char *const types[] = {
		[STK_API_STRING] = "string", [STK_API_INT] = "integer",
		[STK_API_BOOL] = "boolean",  [STK_API_OBJECT] = "object",
		[STK_API_STRINGS] = "array", [STK_API_OBJECTS] = "array",
		[STK_API_STRMAP] = "object", [STK_API_INTSTRMAP] = "object",
		[STK_API_RAW] = "any",	     [STK_API_CONDITIONS] = "conditions",
	};
	int rc = stk_buf_printf(b, "{\"type\":\"%s\"", types[f->type]);

	if (!rc && f->def)
		rc = stk_buf_printf(b, ",\"default\":%s", f->def);
	if (!rc && f->format)
		rc = stk_buf_printf(b, ",\"format\":\"%s\"", f->format);
	if (!rc && f->pattern) {
		rc = stk_buf_puts(b, ",\"pattern\":");
		if (!rc)
			rc = stk_buf_put_json_string(b, f->pattern, strlen(f->pattern));
	}
	if (!rc && f->enums) {
		rc = stk_buf_puts(b, ",\"enum\":[");
		for (const char *const *e = f->enums; !rc && *e; e++)
			rc = stk_buf_printf(b, "%s\"%s\"", e == f->enums ? "" : ",", *e);
		if (!rc)
			rc = stk_buf_putc(b, ']');
	}
	if (!rc && (f->flags & (STK_API_MIN | STK_API_MAX))) {
		const char *lo = "minimum", *hi = "maximum";
		if (f->type == STK_API_STRING)
			lo = "minLength", hi = "maxLength";
		else if (f->type == STK_API_STRINGS || f->type == STK_API_OBJECTS)
			lo = "minItems", hi = "maxItems";
		if (f->flags & STK_API_MIN)
			rc = stk_buf_printf(b, ",\"%s\":%lld", lo, (long long)f->min);
		if (!rc && (f->flags & STK_API_MAX))
			rc = stk_buf_printf(b, ",\"%s\":%lld", hi, (long long)f->max);
	}
	if (!rc && f->type == STK_API_OBJECT) {
		rc = stk_buf_puts(b, ",\"schema\":");
		if (!rc)
			rc = stk_api_schema(f->sub, b);
	}
	if (!rc && f->type == STK_API_OBJECTS) {
		rc = stk_buf_puts(b, ",\"items\":");
		if (!rc)
			rc = stk_api_schema(f->sub, b);
	}
	if (!rc && f->type == STK_API_STRINGS)
		rc = stk_buf_puts(b, ",\"items\":{\"type\":\"string\"}");
	if (!rc && f->type == STK_API_STRMAP)
		rc = stk_buf_puts(b, ",\"additionalProperties\":{\"type\":\"string\"}");
	if (!rc && f->type == STK_API_INTSTRMAP)
		rc = stk_buf_puts(b, ",\"additionalProperties\":{\"int-or-string\":true}");
	return rc ? rc : stk_buf_putc(b, '}');
}

int stk_api_schema(const struct stk_api_type *t, stk_buf *b)
{
	bool any = false;
	int rc = stk_buf_printf(b, "{\"name\":\"%s\",\"properties\":{", t->name);

	for (size_t i = 0; !rc && i < t->nfields; i++) {
		if (i)
			rc = stk_buf_putc(b, ',');
		if (!rc)
			rc = stk_buf_printf(b, "\"%s\":", t->fields[i].name);
		if (!rc)
			rc = codec_schema_field(&t->fields[i], b);
	}
	if (!rc)
		rc = stk_buf_puts(b, "},\"required\":[");
	for (size_t i = 0; !rc && i < t->nfields; i++) {
		if (!(t->fields[i].flags & STK_API_REQUIRED))
			continue;
		rc = stk_buf_printf(b, "%s\"%s\"", any ? "," : "", t->fields[i].name);
		any = true;
	}
	return rc ? rc : stk_buf_puts(b, "]}");
}
