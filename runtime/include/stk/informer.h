/*
 * Informers: a list+watch of one resource type kept in a local cache, with event
 * handlers (DESIGN.md §6). The reflector runs on the loop thread: a paged list, then a
 * watch from the list's resourceVersion with bookmarks; a 410 Gone (or a watch that
 * cannot resume) relists and reconciles the cache with the fresh list, so changes made
 * while disconnected are not lost; other failures reconnect with jittered exponential
 * backoff; a stream silent for longer than the idle timeout is dropped and resumed.
 * Cached objects are immutable and reference-counted, so workers can hold them while
 * the cache moves on.
 */
#ifndef STK_INFORMER_H
#define STK_INFORMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "stk/curlm.h"
#include "stk/err.h"
#include "stk/kube.h"
#include "stk/loop.h"

/* An immutable cached object. Fields are read-only; hold a reference while using it. */
typedef struct stk_obj {
	yajl_val root;
	const char *ns; /* "" for cluster-scoped objects */
	const char *name;
	const char *uid;
	const char *rv;
	int64_t generation; /* 0 when absent */
	atomic_int refs;
} stk_obj;

/*
 * Wraps a parsed object, adopting `root` (freed on failure too). STK_EINVAL when it has
 * no metadata.name. The new object has one reference. Any thread.
 */
int stk_obj_new_take(stk_obj **out, yajl_val root, stk_err *err);
stk_obj *stk_obj_ref(stk_obj *o);
/* Drops a reference; the last one frees the object. NULL-safe. Any thread. */
void stk_obj_unref(stk_obj *o);

struct stk_informer_opts {
	const struct stk_gvr *gvr;
	const char *ns;		    /* NULL or "": all namespaces */
	const char *label_selector; /* server-side filters, or NULL */
	const char *field_selector;
	uint64_t resync_ms;	  /* periodic on_update(obj, obj) for every object; 0: never */
	uint64_t idle_timeout_ms; /* silent stream → reconnect; default 120 s */
	int64_t watch_timeout_s;  /* server-side timeoutSeconds; default 300–600 s, jittered */
	int64_t page_size;	  /* list page size; default 500 */
	uint64_t backoff_min_ms;  /* default 800 ms */
	uint64_t backoff_max_ms;  /* default 30 s */
	bool keep_managed_fields; /* default false: metadata.managedFields and the annotation
				     kubectl.kubernetes.io/last-applied-configuration are dropped */
	/*
	 * Optional: edits each object in place before it is cached (e.g. stk_json_keep to drop
	 * what the controller never reads, so a large cache stays small). Loop thread. It
	 * must keep metadata.name, namespace, uid and resourceVersion.
	 */
	void (*transform)(yajl_val root, void *arg);
	void *transform_arg;
};

#define STK_INFORMER_OPTS_INIT                                              \
	{                                                                   \
		NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, false, NULL, NULL \
	}

/*
 * Handlers run on the loop thread after the cache changed. Objects are valid during the
 * call; take a reference to keep one. On update, `old` may equal `cur` (resync).
 */
struct stk_informer_handler {
	void (*on_add)(stk_obj *obj, void *arg);
	void (*on_update)(stk_obj *old, stk_obj *cur, void *arg);
	void (*on_delete)(stk_obj *obj, void *arg);
	void *arg;
};

struct stk_informer_stats {
	uint64_t lists;		 /* complete lists (initial and relists) */
	uint64_t relists;	 /* lists after the first */
	uint64_t gone;		 /* 410 Gone answers seen */
	uint64_t watches;	 /* watch requests started */
	uint64_t events;	 /* watch events applied */
	uint64_t bookmarks;	 /* BOOKMARK events */
	uint64_t errors;	 /* failed requests (transport, HTTP, decoding) */
	uint64_t idle_resets;	 /* streams dropped by the idle timeout */
	uint64_t watch_apply_ns; /* time spent decoding watch events and applying them */
};

typedef struct stk_informer stk_informer;

/* Creates a stopped informer. The gvr, loop, curlm and kube must outlive it. Loop thread. */
int stk_informer_new(stk_informer **out, stk_loop *loop, stk_curlm *curlm, stk_kube *kube,
		     const struct stk_informer_opts *opts, stk_err *err);

/* Adds a handler (copied). Loop thread, before start. At most 8 handlers. */
void stk_informer_add_handler(stk_informer *inf, const struct stk_informer_handler *h);

/* Starts listing and watching. Loop thread. */
void stk_informer_start(stk_informer *inf);

/* Stops transfers and timers; the cache keeps its content. Loop thread. Idempotent. */
void stk_informer_stop(stk_informer *inf);

/* Stops if needed, releases every object and frees. NULL-safe. Loop thread. */
void stk_informer_free(stk_informer *inf);

/* True once the first list has been applied. Any thread. */
bool stk_informer_synced(stk_informer *inf);

/* The cached object (a new reference) or NULL. `ns` "" for cluster-scoped. Any thread. */
stk_obj *stk_informer_get(stk_informer *inf, const char *ns, const char *name);

/* Number of cached objects. Any thread. */
size_t stk_informer_len(stk_informer *inf);

/*
 * Calls fn for each cached object of namespace `ns` (NULL: all) whose labels match
 * `selector` (NULL: all; equality-based syntax "a=b,c!=d,e,!f"). fn runs under the
 * cache's read lock: it must be quick and must not call back into this informer's
 * writers; take a reference to keep an object. A non-zero return stops the walk and is
 * returned. STK_EINVAL for a malformed selector. Any thread.
 */
int stk_informer_each(stk_informer *inf, const char *ns, const char *selector,
		      int (*fn)(stk_obj *obj, void *arg), void *arg, stk_err *err);

/* The description of the most recent failure ("" if none), cut to `cap`. Any thread. */
void stk_informer_last_error(stk_informer *inf, char *buf, size_t cap);

/* Counters for diagnostics and tests. Any thread. */
void stk_informer_stats(stk_informer *inf, struct stk_informer_stats *out);

/* The resourceVersion the next watch resumes from ("" before the first list). Loop thread. */
const char *stk_informer_resource_version(stk_informer *inf);

/*
 * Checks labels (a metadata.labels object, or NULL) against an equality-based selector.
 * 1 match, 0 no match, STK_EINVAL malformed selector. Any thread.
 */
int stk_labels_match(yajl_val labels, const char *selector, stk_err *err);

#endif
