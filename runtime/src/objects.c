#include "stk/objects.h"

#include <stdlib.h>
#include <string.h>

#include "stk/base64.h"
#include "stk/json.h"

bool stk_obj_has_finalizer(yajl_val obj, const char *finalizer)
{
	yajl_val fins = stk_json_arr(obj, "metadata", "finalizers", NULL);

	for (size_t i = 0; fins && i < fins->u.array.len; i++)
		if (YAJL_IS_STRING(fins->u.array.values[i]) &&
		    !strcmp(fins->u.array.values[i]->u.string, finalizer))
			return true;
	return false;
}

int stk_kube_patch_finalizer(stk_kube *k, const struct stk_gvr *gvr, yajl_val obj,
			     const char *finalizer, bool add, stk_err *err)
{
	yajl_val fins = stk_json_arr(obj, "metadata", "finalizers", NULL);
	const char *rv = stk_json_str(obj, "metadata", "resourceVersion", NULL);
	const char *ns = stk_json_str(obj, "metadata", "namespace", NULL);
	const char *name = stk_json_str(obj, "metadata", "name", NULL);
	stk_buf b = STK_BUF_INIT(1 << 16);
	bool first = true;
	int rc;

	if (!name)
		return stk_err_set(err, STK_EINVAL, "object without metadata.name");
	/* The resourceVersion makes the merge patch conditional: no lost update of the list. */
	stk_buf_puts(&b, "{\"metadata\":{\"resourceVersion\":");
	stk_buf_put_json_string(&b, rv ? rv : "", rv ? strlen(rv) : 0);
	stk_buf_puts(&b, ",\"finalizers\":[");
	for (size_t i = 0; fins && i < fins->u.array.len; i++) {
		yajl_val f = fins->u.array.values[i];
		if (!YAJL_IS_STRING(f) || !strcmp(f->u.string, finalizer))
			continue;
		if (!first)
			stk_buf_putc(&b, ',');
		stk_buf_put_json_string(&b, f->u.string, strlen(f->u.string));
		first = false;
	}
	if (add) {
		if (!first)
			stk_buf_putc(&b, ',');
		stk_buf_put_json_string(&b, finalizer, strlen(finalizer));
	}
	rc = stk_buf_puts(&b, "]}}");
	if (rc)
		rc = stk_err_set(err, rc, "finalizer patch too large");
	else
		rc = stk_kube_patch(k, gvr, ns ? ns : "", name, STK_PATCH_MERGE, b.ptr, b.len, NULL,
				    NULL, err);
	stk_buf_release(&b);
	return rc;
}

int stk_secret_data(yajl_val secret, const char *key, char **out, stk_err *err)
{
	const char *name = stk_json_str(secret, "metadata", "name", NULL);
	const char *b64 = stk_json_str(secret, "data", key, NULL);

	*out = NULL;
	if (!b64)
		return stk_err_set(err, STK_ENOTFOUND, "Secret '%s' has no key '%s'",
				   name ? name : "", key);
	if (stk_base64_decode(b64, strlen(b64), out, NULL, NULL))
		return stk_err_set(err, STK_EPARSE, "Secret '%s' key '%s' is not base64",
				   name ? name : "", key);
	return 0;
}

int stk_kube_secret_values(stk_kube *k, const char *ns, const char *secret, const char *const *keys,
			   char **outs, size_t n, stk_err *err)
{
	yajl_val s = NULL;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		outs[i] = NULL;
	rc = stk_kube_get(k, &STK_GVR_SECRETS, ns, secret, &s, err);
	if (rc == STK_ENOTFOUND)
		return stk_err_set(err, STK_ENOTFOUND, "Secret '%s' not found in namespace '%s'",
				   secret, ns);
	if (rc)
		return rc;
	for (i = 0; i < n && !rc; i++)
		rc = stk_secret_data(s, keys[i], &outs[i], err);
	yajl_tree_free(s);
	if (rc) {
		for (i = 0; i < n; i++) {
			if (outs[i])
				explicit_bzero(outs[i], strlen(outs[i]));
			free(outs[i]);
			outs[i] = NULL;
		}
	}
	return rc;
}

int stk_kube_secret_value(stk_kube *k, const char *ns, const char *secret, const char *key,
			  char **out, stk_err *err)
{
	return stk_kube_secret_values(k, ns, secret, &key, out, 1, err);
}
