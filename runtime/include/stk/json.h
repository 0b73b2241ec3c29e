/*
 * JSON helpers over yajl: bounded parsing into a yajl tree, path lookups that never
 * crash on a missing or mistyped member, and serialisation of a tree or values into a
 * stk_buf.
 */
#ifndef STK_JSON_H
#define STK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "stk/buf.h"
#include "stk/err.h"

/*
 * Parses s[0..len) (need not be NUL-terminated) into a tree the caller frees with
 * yajl_tree_free. Fails with STK_ETOOBIG past `max` bytes and STK_EPARSE (message from
 * yajl, one line) on malformed input. Any thread.
 */
int stk_json_parse(yajl_val *out, const char *s, size_t len, size_t max, stk_err *err);

/*
 * Member lookups along a NULL-terminated path of object keys. Each returns NULL/false
 * when a step is missing or has another type; they never allocate. Any thread.
 */
yajl_val stk_json_get(yajl_val v, ...) __attribute__((sentinel));
const char *stk_json_str(yajl_val v, ...) __attribute__((sentinel));
yajl_val stk_json_obj(yajl_val v, ...) __attribute__((sentinel));
yajl_val stk_json_arr(yajl_val v, ...) __attribute__((sentinel));
/* Integer members: false unless the value is an integer that fits int64. */
bool stk_json_int(yajl_val v, int64_t *out, ...) __attribute__((sentinel));
/* Boolean members: false unless the value is true or false. */
bool stk_json_bool(yajl_val v, bool *out, ...) __attribute__((sentinel));

/*
 * In-place edits of a parsed tree (e.g. to slim an object before caching it):
 * stk_json_remove drops member `key` of object `obj` (true if it was there);
 * stk_json_keep drops every member whose key is not in the NULL-terminated `keep` list.
 * Both ignore a NULL or non-object `obj`. The caller owns the tree. Any thread.
 */
bool stk_json_remove(yajl_val obj, const char *key);
void stk_json_keep(yajl_val obj, const char *const *keep);
/* Sets member `key` of object `obj` to a copy of string `value` (replacing it). 0, or
 * STK_EINVAL when `obj` is not an object. */
int stk_json_set_string(yajl_val obj, const char *key, const char *value);

/* Serialises a tree compactly. 0 or STK_ETOOBIG. */
int stk_json_write(stk_buf *b, yajl_val v);

#endif
