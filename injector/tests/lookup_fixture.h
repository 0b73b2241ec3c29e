/* A fixed namespace for the injector's tests and fuzzer: objects given as JSON text. */
#ifndef INJECTOR_LOOKUP_FIXTURE_H
#define INJECTOR_LOOKUP_FIXTURE_H

#include <string.h>

#include "mutate.h"
#include "stk/json.h"

struct fixture {
	const char *const *json; /* NULL-terminated list of objects */
	yajl_val objs[16];
	size_t n;
};

static inline void fixture_load(struct fixture *f)
{
	for (f->n = 0; f->json[f->n] && f->n < 16; f->n++)
		if (stk_json_parse(&f->objs[f->n], f->json[f->n], strlen(f->json[f->n]), 1 << 20,
				   NULL))
			f->objs[f->n] = NULL;
}

static inline void fixture_free(struct fixture *f)
{
	for (size_t i = 0; i < f->n; i++)
		yajl_tree_free(f->objs[i]);
}

static inline bool fixture_match(yajl_val o, enum stk_api_kind kind, const char *ns)
{
	const char *k = stk_json_str(o, "kind", NULL);
	const char *n = stk_json_str(o, "metadata", "namespace", NULL);

	return o && k && n && !strcmp(k, stk_api_kind(kind)->name) && !strcmp(n, ns);
}

static inline yajl_val fixture_get(void *arg, enum stk_api_kind kind, const char *ns,
				   const char *name, void **ref)
{
	struct fixture *f = arg;

	*ref = NULL;
	for (size_t i = 0; i < f->n; i++) {
		const char *n = stk_json_str(f->objs[i], "metadata", "name", NULL);
		if (fixture_match(f->objs[i], kind, ns) && n && !strcmp(n, name))
			return f->objs[i];
	}
	return NULL;
}

static inline void fixture_put(void *arg, void *ref)
{
	(void)arg;
	(void)ref;
}

static inline int fixture_each(void *arg, enum stk_api_kind kind, const char *ns,
			       int (*fn)(yajl_val obj, void *fn_arg), void *fn_arg)
{
	struct fixture *f = arg;
	int rc;

	for (size_t i = 0; i < f->n; i++)
		if (fixture_match(f->objs[i], kind, ns) && (rc = fn(f->objs[i], fn_arg)))
			return rc;
	return 0;
}

#endif
