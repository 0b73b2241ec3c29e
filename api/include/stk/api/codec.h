/*
 * The table-driven codec behind every Stoker API type: a C struct is described once by
 * a field table (JSON name, type, offset, default, enum, bounds, pattern), and one
 * generic implementation decodes it from a yajl tree, encodes it to JSON, applies the
 * schema's defaults, validates it, frees it, and dumps the table as an OpenAPI-shaped
 * schema so a test can hold the tables and config/crd/ to the same shape.
 *
 * Optional fields carry presence: strings are NULL when absent, numbers and booleans
 * sit in stk_opt_* with a `set` flag, nested objects start with `bool present`, lists
 * and maps have `present`, so an explicit zero, false, "" or [] round-trips.
 */
#ifndef STK_API_CODEC_H
#define STK_API_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "stk/buf.h"
#include "stk/conditions.h"
#include "stk/err.h"

struct stk_opt_i64 {
	bool set;
	int64_t v;
};

struct stk_opt_bool {
	bool set;
	bool v;
};

struct stk_api_strings {
	bool present;
	char **items;
	size_t len;
};

/* Elements are structs of the field's `sub` type, `sub->size` bytes each. */
struct stk_api_objects {
	bool present;
	void *items;
	size_t len;
};

/* A map of strings (keys sorted by the decoder for stable output). */
struct stk_api_strmap {
	bool present;
	char **keys;
	char **values;
	size_t len;
};

/* Conditions of a status (runtime/conditions.h) with presence. */
struct stk_api_conditions {
	bool present;
	struct stk_conditions set;
};

enum stk_api_ftype {
	STK_API_STRING,	    /* char * */
	STK_API_INT,	    /* struct stk_opt_i64 */
	STK_API_BOOL,	    /* struct stk_opt_bool */
	STK_API_OBJECT,	    /* embedded struct of type `sub`, first member `bool present` */
	STK_API_STRINGS,    /* struct stk_api_strings */
	STK_API_OBJECTS,    /* struct stk_api_objects of `sub` */
	STK_API_STRMAP,	    /* struct stk_api_strmap */
	STK_API_INTSTRMAP,  /* struct stk_api_strmap whose values are int-or-string (kept as JSON
			       text) */
	STK_API_RAW,	    /* yajl_val (owned), any JSON value; NULL when absent */
	STK_API_CONDITIONS, /* struct stk_api_conditions */
};

/* Field flags. */
#define STK_API_REQUIRED 0x1u /* must be present (schema `required`) */
#define STK_API_MIN	 0x2u /* `min` applies: minimum (INT) or minItems/minLength */
#define STK_API_MAX	 0x4u /* `max` applies: maximum (INT) or maxItems/maxLength */

struct stk_api_type;

struct stk_api_field {
	const char *name;
	enum stk_api_ftype type;
	size_t offset;
	const struct stk_api_type *sub; /* OBJECT and OBJECTS */
	unsigned flags;
	const char *def;	  /* default as a JSON literal, or NULL */
	const char *const *enums; /* allowed string values, NULL-terminated, or NULL */
	int64_t min, max;
	const char *pattern; /* POSIX extended regex the string must match, or NULL */
	const char *format;  /* "int64", "date-time" — informational, or NULL */
};

struct stk_api_type {
	const char *name; /* for messages: "GitSourceSpec" */
	size_t size;
	const struct stk_api_field *fields;
	size_t nfields;
};

/*
 * Decodes `v` (a JSON object) into `out` (zeroed by the caller, or released). Members
 * the table does not know are ignored (a newer server may add fields). On a type
 * mismatch returns STK_EPARSE with the field's path ("spec.mappings[1].source: expected
 * a string"); `out` then holds what was decoded so far and must be released. Any thread.
 */
int stk_api_decode(const struct stk_api_type *t, void *out, yajl_val v, const char *path,
		   stk_err *err);

/* Appends `in` as a JSON object with the present fields in table order. 0 or STK_ETOOBIG. */
int stk_api_encode(const struct stk_api_type *t, const void *in, stk_buf *b);

/* Frees everything `obj` owns and zeroes it. Any thread. */
void stk_api_release(const struct stk_api_type *t, void *obj);

/*
 * Applies the table's defaults the way the API server applies a structural schema's:
 * an absent field with a default gets it, and present objects (and object-list
 * elements) are defaulted recursively. Returns 0 (defaults are program constants).
 */
int stk_api_default(const struct stk_api_type *t, void *obj);

/*
 * Checks required fields, enums, bounds and patterns, recursively. 0 or STK_EINVAL with
 * the path and the rule ("spec.syncPeriod: must be at most 3600"). Any thread.
 */
int stk_api_validate(const struct stk_api_type *t, const void *obj, const char *path, stk_err *err);

/* Writes the table as an OpenAPI v3 schema fragment (properties, required, types,
 * defaults, enums, bounds, patterns), for the schema drift test. */
int stk_api_schema(const struct stk_api_type *t, stk_buf *b);

#endif
