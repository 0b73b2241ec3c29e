/*
 * The Kubernetes REST client: requests on the calling thread (workers), typed errors
 * decoded from Status objects, and the request set-up the loop-side watch machinery
 * shares. One client per daemon, shared by every thread.
 */
#ifndef STK_KUBE_H
#define STK_KUBE_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "stk/buf.h"
#include "stk/err.h"
#include "stk/kubeconfig.h"

typedef struct stk_kube stk_kube;

/* A resource type: group ("" for core), version, plural resource name. */
struct stk_gvr {
	const char *group;
	const char *version;
	const char *resource;
};

extern const struct stk_gvr STK_GVR_CONFIGMAPS;
extern const struct stk_gvr STK_GVR_SECRETS;
extern const struct stk_gvr STK_GVR_PODS;
extern const struct stk_gvr STK_GVR_EVENTS;
extern const struct stk_gvr STK_GVR_NAMESPACES;
extern const struct stk_gvr STK_GVR_SERVICEACCOUNTS;
extern const struct stk_gvr STK_GVR_LEASES;
extern const struct stk_gvr STK_GVR_TOKENREVIEWS;
extern const struct stk_gvr STK_GVR_CRDS;
extern const struct stk_gvr STK_GVR_MUTATINGWEBHOOKCONFIGURATIONS;

struct stk_kube_opts {
	const char *user_agent;	     /* "source-controller/0.1.0"; NULL: "stoker/<version>" */
	uint64_t timeout_ms;	     /* whole request, watches excepted; default 30 s */
	uint64_t connect_timeout_ms; /* default 10 s */
	uint64_t token_reread_ms;    /* token file re-read period; default 60 s */
	size_t max_body;	     /* response cap; default STK_LIMIT_API_BODY */
};

#define STK_KUBE_OPTS_INIT                   \
	{                                    \
		NULL, 30000, 10000, 60000, 0 \
	}

/*
 * Creates a client for `cfg`, which it adopts (freed by stk_kube_free, also on failure).
 * 0, STK_EINVAL (unusable config: no server, unreadable token file) or STK_EIO. Any
 * thread; the client is then safe to use from every thread.
 */
int stk_kube_new_take(stk_kube **out, struct stk_kubeconfig *cfg, const struct stk_kube_opts *opts,
		      stk_err *err);

/* Frees the client and its pooled connections. NULL-safe. No request may be running. */
void stk_kube_free(stk_kube *k);

/* The configuration's default namespace ("default" when none). */
const char *stk_kube_namespace(const stk_kube *k);
/* The API server's base URL. */
const char *stk_kube_server(const stk_kube *k);

/*
 * Appends the path of a collection or object: "/api/v1/namespaces/<ns>/configmaps[/<name>
 * [/<subresource>]]". `ns` NULL (or "") means cluster-scoped or all namespaces. Names
 * are checked to hold no '/', '?', '%' or '#', and not be "." or "..". 0, STK_EINVAL or
 * STK_ETOOBIG.
 */
int stk_kube_path(stk_buf *b, const struct stk_gvr *gvr, const char *ns, const char *name,
		  const char *subresource, stk_err *err);

/* Percent-encodes a query value into b (RFC 3986 unreserved characters pass). */
int stk_kube_query_escape(stk_buf *b, const char *value);

struct stk_kube_request {
	const char *method;	  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *path;	  /* from stk_kube_path */
	const char *query;	  /* without '?', already escaped; or NULL */
	const char *content_type; /* for bodies; default application/json */
	const char *body;
	size_t body_len;
	uint64_t timeout_ms; /* 0: the client's default; UINT64_MAX: none (watches) */
};

/*
 * Performs `req` on the calling thread. On a 2xx answer parses the body into *out (pass
 * NULL to discard it). Otherwise decodes the Status into `err` and returns its typed
 * code (STK_ENOTFOUND, STK_ECONFLICT, STK_EEXIST, STK_EINVALID, STK_EGONE, STK_EAUTH,
 * STK_EFORBIDDEN, STK_ETOOMANY with err->retry_after_ms, STK_ESERVER), or a transport
 * error (STK_EUNAVAIL, STK_ETIMEOUT, STK_ETOOBIG, STK_EPARSE). After a 401 the token file
 * (if any) is re-read and the request retried once. Any thread.
 */
int stk_kube_do(stk_kube *k, const struct stk_kube_request *req, yajl_val *out, stk_err *err);

/* GET one object. */
int stk_kube_get(stk_kube *k, const struct stk_gvr *gvr, const char *ns, const char *name,
		 yajl_val *out, stk_err *err);

struct stk_list_opts {
	const char *label_selector;
	const char *field_selector;
	const char *resource_version;
	const char *resource_version_match; /* "Exact" or "NotOlderThan", or NULL */
	const char *continue_token;
	int64_t limit; /* page size; 0: no limit */
};

#define STK_LIST_OPTS_INIT                      \
	{                                       \
		NULL, NULL, NULL, NULL, NULL, 0 \
	}

/* Appends the query string of a list or watch (without '?'). */
int stk_kube_list_query(stk_buf *b, const struct stk_list_opts *opts);

/* One page of a list; the caller follows metadata.continue. */
int stk_kube_list(stk_kube *k, const struct stk_gvr *gvr, const char *ns,
		  const struct stk_list_opts *opts, yajl_val *out, stk_err *err);

/* Called for each item of a paged list; a non-zero return stops the list with that code. */
typedef int (*stk_kube_item_fn)(yajl_val item, void *arg);

/*
 * Lists every page (opts->limit per page, default 500), calling fn for each item in
 * order, and returns the list's resourceVersion in *rv_out (caller frees; may be NULL).
 * A continue token that expired (410) restarts nothing: the STK_EGONE is returned.
 */
int stk_kube_list_all(stk_kube *k, const struct stk_gvr *gvr, const char *ns,
		      const struct stk_list_opts *opts, stk_kube_item_fn fn, void *arg,
		      char **rv_out, stk_err *err);

/* POST a new object (JSON); *out receives the stored object (may be NULL). */
int stk_kube_create(stk_kube *k, const struct stk_gvr *gvr, const char *ns, const char *json,
		    size_t len, yajl_val *out, stk_err *err);

/* PUT a whole object (or its `subresource`, e.g. "status"); 409 on a stale resourceVersion. */
int stk_kube_update(stk_kube *k, const struct stk_gvr *gvr, const char *ns, const char *name,
		    const char *subresource, const char *json, size_t len, yajl_val *out,
		    stk_err *err);

enum stk_patch_type {
	STK_PATCH_MERGE,     /* application/merge-patch+json */
	STK_PATCH_JSON,	     /* application/json-patch+json */
	STK_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in kinds) */
	STK_PATCH_APPLY,     /* application/apply-patch+yaml: server-side apply */
};

struct stk_patch_opts {
	const char *subresource;   /* "status", or NULL */
	const char *field_manager; /* required for APPLY */
	bool force;		   /* APPLY: take ownership of conflicting fields */
};

#define STK_PATCH_OPTS_INIT       \
	{                         \
		NULL, NULL, false \
	}

int stk_kube_patch(stk_kube *k, const struct stk_gvr *gvr, const char *ns, const char *name,
		   enum stk_patch_type type, const char *body, size_t len,
		   const struct stk_patch_opts *opts, yajl_val *out, stk_err *err);

struct stk_delete_opts {
	const char *propagation_policy; /* "Foreground", "Background", "Orphan", or NULL */
	const char *precondition_uid;	/* delete only this incarnation */
	const char *precondition_rv;	/* delete only this version */
};

#define STK_DELETE_OPTS_INIT     \
	{                        \
		NULL, NULL, NULL \
	}

int stk_kube_delete(stk_kube *k, const struct stk_gvr *gvr, const char *ns, const char *name,
		    const struct stk_delete_opts *opts, stk_err *err);

/*
 * Decodes a non-2xx answer: the Status object's code, reason, message and field causes
 * (appended to the message when it does not already name them) into `err`, falling
 * back to the HTTP status when the body is not a Status. `retry_after` is the
 * Retry-After header value or NULL. Returns the typed code. Never allocates beyond the
 * parse. Any thread.
 */
int stk_kube_status_to_err(long http_status, const char *body, size_t len, const char *retry_after,
			   stk_err *err);

/*
 * Configures `easy` (reset by the caller) for `req`: URL, TLS material, authorization,
 * headers (returned in *headers; the caller frees them with curl_slist_free_all after
 * the transfer), timeouts. For the loop-side watch and list machinery. Any thread.
 */
int stk_kube_setup_easy(stk_kube *k, CURL *easy, const struct stk_kube_request *req,
			struct curl_slist **headers, stk_err *err);

/* Marks the cached token stale (after a 401 seen by an asynchronous request). */
void stk_kube_token_expired(stk_kube *k);

/* Translates a libcurl result into an STK code and message. */
int stk_kube_curl_err(CURLcode rc, const char *errbuf, stk_err *err);

#endif
