/*
 * Helpers over whole Kubernetes objects: finalizers and Secret values (DESIGN.md §6).
 */
#ifndef STK_OBJECTS_H
#define STK_OBJECTS_H

#include <stdbool.h>
#include <yajl/yajl_tree.h>

#include "stk/err.h"
#include "stk/kube.h"

/* True when metadata.finalizers of `obj` holds `finalizer`. Any thread. */
bool stk_obj_has_finalizer(yajl_val obj, const char *finalizer);

/*
 * Adds or removes `finalizer` on the object `obj` (as read: its namespace, name and
 * resourceVersion are used) with a merge patch that keeps the other finalizers and fails
 * with STK_ECONFLICT when the object changed since it was read. Blocking; any thread.
 */
int stk_kube_patch_finalizer(stk_kube *k, const struct stk_gvr *gvr, yajl_val obj,
			     const char *finalizer, bool add, stk_err *err);

/*
 * Reads key `key` of Secret ns/secret, base64-decoded and NUL-terminated, into *out (the
 * caller wipes and frees it). STK_ENOTFOUND with "Secret 'x' not found in namespace 'y'"
 * or "Secret 'x' has no key 'k'", STK_EPARSE for bad base64, or the client's error.
 * Blocking; any thread.
 */
int stk_kube_secret_value(stk_kube *k, const char *ns, const char *secret, const char *key,
			  char **out, stk_err *err);

/*
 * As stk_kube_secret_value for `n` keys of one Secret, read with one GET: outs[i] gets
 * keys[i]. Every key is required; on an error no output is left set. Blocking; any thread.
 */
int stk_kube_secret_values(stk_kube *k, const char *ns, const char *secret, const char *const *keys,
			   char **outs, size_t n, stk_err *err);

/*
 * As stk_kube_secret_value for a Secret already read (one GET for several keys):
 * STK_ENOTFOUND ("Secret 'x' has no key 'k'") or STK_EPARSE. Any thread.
 */
int stk_secret_data(yajl_val secret, const char *key, char **out, stk_err *err);

#endif
