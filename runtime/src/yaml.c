#include "stk/yaml.h"

#include <errno.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <yaml.h>

#include "stk/alloc.h"

#define YAML_MAX_DEPTH	 64
#define YAML_MAX_NODES	 1000000
#define YAML_MAX_ANCHORS 1024

struct yp {
	yaml_parser_t p;
	size_t nodes;
	struct {
		char *name;
		yajl_val v;
	} anchors[YAML_MAX_ANCHORS];
	size_t nanchors;
};

static yajl_val node_new(yajl_type t)
{
	yajl_val v = stk_calloc(1, sizeof(*v));

	v->type = t;
	return v;
}

static size_t tree_size(yajl_val v)
{
	size_t n = 1;

	if (YAJL_IS_OBJECT(v))
		for (size_t i = 0; i < v->u.object.len; i++)
			n += tree_size(v->u.object.values[i]);
	else if (YAJL_IS_ARRAY(v))
		for (size_t i = 0; i < v->u.array.len; i++)
			n += tree_size(v->u.array.values[i]);
	return n;
}

static yajl_val tree_copy(yajl_val v)
{
	yajl_val c = node_new(v->type);

	switch (v->type) {
	case yajl_t_string:
		c->u.string = stk_strdup(v->u.string);
		break;
	case yajl_t_number:
		c->u.number = v->u.number;
		c->u.number.r = stk_strdup(v->u.number.r);
		break;
	case yajl_t_object:
		c->u.object.len = v->u.object.len;
		c->u.object.keys = stk_calloc(v->u.object.len + 1, sizeof(char *));
		c->u.object.values = stk_calloc(v->u.object.len + 1, sizeof(yajl_val));
		for (size_t i = 0; i < v->u.object.len; i++) {
			c->u.object.keys[i] = stk_strdup(v->u.object.keys[i]);
			c->u.object.values[i] = tree_copy(v->u.object.values[i]);
		}
		break;
	case yajl_t_array:
		c->u.array.len = v->u.array.len;
		c->u.array.values = stk_calloc(v->u.array.len + 1, sizeof(yajl_val));
		for (size_t i = 0; i < v->u.array.len; i++)
			c->u.array.values[i] = tree_copy(v->u.array.values[i]);
		break;
	default:
		break;
	}
	return c;
}

/* True when s is a number in JSON's grammar (so it serialises back as one). */
static bool json_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return false;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

/* The JSON value of a plain scalar. */
static yajl_val plain_scalar(const char *s, size_t len)
{
	yajl_val v;
	char *end;

	if (!len || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL"))
		return node_new(yajl_t_null);
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return node_new(yajl_t_true);
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return node_new(yajl_t_false);
	if (strlen(s) == len && json_number(s)) {
		errno = 0;
		v = node_new(yajl_t_number);
		v->u.number.i = strtoll(s, &end, 10);
		if (!*end && !errno) {
			v->u.number.flags = YAJL_NUMBER_INT_VALID | YAJL_NUMBER_DOUBLE_VALID;
			v->u.number.d = (double)v->u.number.i;
			v->u.number.r = stk_strdup(s);
			return v;
		}
		errno = 0;
		v->u.number.d = strtod(s, &end);
		if (!*end && !errno) {
			v->u.number.flags = YAJL_NUMBER_DOUBLE_VALID;
			v->u.number.r = stk_strdup(s);
			return v;
		}
		free(v);
	}
	v = node_new(yajl_t_string);
	v->u.string = stk_strdup(s);
	return v;
}

static int parse_error(struct yp *y, stk_err *err)
{
	return stk_err_set(err, STK_EPARSE, "invalid YAML at line %zu column %zu: %s",
			   y->p.problem_mark.line + 1, y->p.problem_mark.column + 1,
			   y->p.problem ? y->p.problem : "syntax error");
}

static int parse_node(struct yp *y, yaml_event_t *ev, yajl_val *out, int depth, stk_err *err);

static int next(struct yp *y, yaml_event_t *ev, stk_err *err)
{
	return yaml_parser_parse(&y->p, ev) ? 0 : parse_error(y, err);
}

static void remember(struct yp *y, const yaml_char_t *anchor, yajl_val v)
{
	if (anchor && y->nanchors < YAML_MAX_ANCHORS) {
		y->anchors[y->nanchors].name = stk_strdup((const char *)anchor);
		y->anchors[y->nanchors++].v = v;
	}
}

/* Parses the node whose first event is *ev (consumed). */
static int parse_node(struct yp *y, yaml_event_t *ev, yajl_val *out, int depth, stk_err *err)
{
	yaml_event_t e;
	yajl_val v = NULL;
	int rc = 0;

	*out = NULL;
	if (++y->nodes > YAML_MAX_NODES)
		return stk_err_set(err, STK_ETOOBIG, "YAML document larger than %d nodes",
				   YAML_MAX_NODES);
	if (depth > YAML_MAX_DEPTH)
		return stk_err_set(err, STK_ETOOBIG, "YAML nests deeper than %d levels",
				   YAML_MAX_DEPTH);
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		for (size_t i = y->nanchors; i-- > 0;) {
			if (strcmp(y->anchors[i].name, (const char *)ev->data.alias.anchor))
				continue;
			y->nodes += tree_size(y->anchors[i].v);
			if (y->nodes > YAML_MAX_NODES)
				return stk_err_set(err, STK_ETOOBIG,
						   "YAML document larger than %d nodes",
						   YAML_MAX_NODES);
			*out = tree_copy(y->anchors[i].v);
			return 0;
		}
		return stk_err_set(err, STK_EPARSE, "YAML alias *%s has no anchor",
				   (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag) {
			v = plain_scalar((const char *)ev->data.scalar.value,
					 ev->data.scalar.length);
		} else {
			v = node_new(yajl_t_string);
			v->u.string = stk_malloc(ev->data.scalar.length + 1);
			memcpy(v->u.string, ev->data.scalar.value, ev->data.scalar.length);
			v->u.string[ev->data.scalar.length] = '\0';
		}
		remember(y, ev->data.scalar.anchor, v);
		*out = v;
		return 0;
	case YAML_SEQUENCE_START_EVENT:
		v = node_new(yajl_t_array);
		for (;;) {
			yajl_val item;
			if ((rc = next(y, &e, err)))
				break;
			if (e.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&e);
				break;
			}
			rc = parse_node(y, &e, &item, depth + 1, err);
			yaml_event_delete(&e);
			if (rc)
				break;
			v->u.array.values = stk_reallocarray(v->u.array.values, v->u.array.len + 1,
							     sizeof(yajl_val));
			v->u.array.values[v->u.array.len++] = item;
		}
		remember(y, ev->data.sequence_start.anchor, v);
		break;
	case YAML_MAPPING_START_EVENT:
		v = node_new(yajl_t_object);
		for (;;) {
			yajl_val key, val;
			if ((rc = next(y, &e, err)))
				break;
			if (e.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&e);
				break;
			}
			rc = parse_node(y, &e, &key, depth + 1, err);
			yaml_event_delete(&e);
			if (!rc && !YAJL_IS_STRING(key) && !YAJL_IS_NUMBER(key)) {
				yajl_tree_free(key);
				rc = stk_err_set(err, STK_EPARSE,
						 "YAML mapping key at line %zu is not a scalar",
						 y->p.mark.line + 1);
			}
			if (rc)
				break;
			if ((rc = next(y, &e, err))) {
				yajl_tree_free(key);
				break;
			}
			rc = parse_node(y, &e, &val, depth + 1, err);
			yaml_event_delete(&e);
			if (rc) {
				yajl_tree_free(key);
				break;
			}
			v->u.object.keys = stk_reallocarray((void *)v->u.object.keys,
							    v->u.object.len + 1, sizeof(char *));
			v->u.object.values = stk_reallocarray(
				v->u.object.values, v->u.object.len + 1, sizeof(yajl_val));
			v->u.object.keys[v->u.object.len] =
				stk_strdup(YAJL_IS_STRING(key) ? key->u.string : key->u.number.r);
			v->u.object.values[v->u.object.len++] = val;
			yajl_tree_free(key);
		}
		remember(y, ev->data.mapping_start.anchor, v);
		break;
	default:
		return stk_err_set(err, STK_EPARSE, "unexpected YAML event");
	}
	if (rc) {
		/* Parsing stops here: anchors into v are never looked at again. */
		yajl_tree_free(v);
		return rc;
	}
	*out = v;
	return 0;
}

int stk_yaml_parse(yajl_val *out, const char *yaml, size_t len, stk_err *err)
{
	struct yp *y = stk_calloc(1, sizeof(*y));
	yaml_event_t ev;
	int rc = 0;

	*out = NULL;
	if (!yaml_parser_initialize(&y->p)) {
		free(y);
		return stk_err_set(err, STK_EPARSE, "cannot initialise the YAML parser");
	}
	yaml_parser_set_input_string(&y->p, (const unsigned char *)(len ? yaml : ""), len);
	/* stream start, document start (or stream end: an empty document is null) */
	while (!rc) {
		if ((rc = next(y, &ev, err)))
			break;
		if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			*out = node_new(yajl_t_null);
			break;
		}
		rc = parse_node(y, &ev, out, 0, err);
		yaml_event_delete(&ev);
		break;
	}
	/* Anchored values belong to the tree; only the names are ours. */
	for (size_t i = 0; i < y->nanchors; i++)
		free(y->anchors[i].name);
	yaml_parser_delete(&y->p);
	free(y);
	return rc;
}
