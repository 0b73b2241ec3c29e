/*
 * The injector's decision and patch (DESIGN.md §4, §5; CONTRACTS.md "Injected sidecar"):
 * from an AdmissionReview of a Pod CREATE to the AdmissionReview answer. Pure logic: the
 * Stokers, GitSources and SyncProfiles of the namespace are reached through callbacks
 * (the daemon answers them from informer caches; tests and the fuzzer from fixed JSON).
 *
 * Decision order: not annotated stoker.io/inject=true → allowed untouched; already
 * injected (annotation stoker.io/injected or an existing stoker-agent container) →
 * allowed untouched; the Stoker (annotation stoker.io/cr-name, or the namespace's only
 * Stoker, written back as cr-name) must exist and not be paused; the SyncProfile named by
 * stoker.io/sync-profile must exist (or stoker.io/service-path be given); the pod must have
 * a data volume (`ignition-data`, else `data`) mounted by one of its containers. Then a
 * JSON patch adds the native sidecar, its volumes and the annotations.
 */
#ifndef INJECTOR_MUTATE_H
#define INJECTOR_MUTATE_H

#include <stdbool.h>
#include <yajl/yajl_tree.h>

#include "stk/api/api.h"
#include "stk/buf.h"
#include "stk/err.h"

/* Objects of the namespace, as the callbacks see them. */
struct inj_lookup {
	/* The object (its JSON) or NULL; *ref is handed back to put() when done. */
	yajl_val (*get)(void *arg, enum stk_api_kind kind, const char *ns, const char *name,
			void **ref);
	void (*put)(void *arg, void *ref);
	/* Calls fn for each object of `kind` in `ns`; a non-zero return stops the walk. */
	int (*each)(void *arg, enum stk_api_kind kind, const char *ns,
		    int (*fn)(yajl_val obj, void *fn_arg), void *fn_arg);
	void *arg;
};

struct inj_config {
	const char *default_image; /* used when neither the pod nor the Stoker names one */
};

enum inj_result {
	INJ_SKIPPED,  /* not annotated (or not a Pod CREATE): allowed untouched */
	INJ_ALREADY,  /* already injected: allowed untouched */
	INJ_INJECTED, /* allowed with the patch */
	INJ_DENIED,   /* refused with a message */
};

/* "skipped", "already", "injected", "denied": the metric's result label. */
const char *inj_result_name(enum inj_result r);

/*
 * Decides for `pod` (the request's object) in namespace `ns`. On INJ_INJECTED appends the
 * JSON patch (an array) to `patch`; on INJ_DENIED appends the message to `msg`. 0, or
 * STK_ETOOBIG when a buffer's cap is hit. Any thread.
 */
int inj_mutate(const struct inj_config *cfg, const struct inj_lookup *lk, const char *ns,
	       yajl_val pod, enum inj_result *res, stk_buf *patch, stk_buf *msg, stk_err *err);

/*
 * Answers an AdmissionReview (admission.k8s.io/v1) given as JSON text: appends the
 * response AdmissionReview to `out` and sets *res. STK_EPARSE (with a message naming what
 * is wrong) for a body that is not an AdmissionReview v1 with request.uid and
 * request.object; the caller answers 400 then. Any thread.
 */
int inj_review(const struct inj_config *cfg, const struct inj_lookup *lk, const char *body,
	       size_t len, stk_buf *out, enum inj_result *res, stk_err *err);

#endif
