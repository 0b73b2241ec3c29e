/*
 * The API groups, kinds and well-known names of Stoker (DESIGN.md §3–4): the constants
 * every daemon and the CRD manifests must agree on.
 */
#ifndef STK_API_KINDS_H
#define STK_API_KINDS_H

#include "stk/kube.h"

#include <stdbool.h>

#define STK_API_GROUP_SOURCE	   "source.stoker.io"
#define STK_API_GROUP_STOKER	   "stoker.io"
#define STK_API_GROUP_NOTIFICATION "notification.stoker.io"
#define STK_API_VERSION		   "v1alpha1"

/* Annotations on gateway pods, Stokers and every kind (DESIGN.md §3, §4). */
#define STK_ANN_INJECT		 "stoker.io/inject"
#define STK_ANN_INJECTED	 "stoker.io/injected"
#define STK_ANN_CR_NAME		 "stoker.io/cr-name"
#define STK_ANN_SYNC_PROFILE	 "stoker.io/sync-profile"
#define STK_ANN_GATEWAY_NAME	 "stoker.io/gateway-name"
#define STK_ANN_SERVICE_PATH	 "stoker.io/service-path"
#define STK_ANN_REF_OVERRIDE	 "stoker.io/ref-override"
#define STK_ANN_AGENT_IMAGE	 "stoker.io/agent-image"
#define STK_ANN_EXCLUDE_PATTERNS "stoker.io/exclude-patterns"
#define STK_ANN_REQUESTED_REF	 "stoker.io/requested-ref"
#define STK_ANN_REQUESTED_AT	 "stoker.io/requested-at"
#define STK_ANN_REQUESTED_BY	 "stoker.io/requested-by"
/* On a GitSource, beside requested-ref: its spec.ref ("kind:name") when the request came. */
#define STK_ANN_REQUESTED_OVER	  "stoker.io/requested-over"
#define STK_ANN_RECONCILE_REQUEST "stoker.io/reconcile-requested-at"

#define STK_LABEL_CR_NAME    "stoker.io/cr-name"
#define STK_LABEL_INJECTION  "stoker.io/injection"
#define STK_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define STK_LABEL_APP_NAME   "app.kubernetes.io/name"

#define STK_FINALIZER_STOKER	"stoker.io/finalizer"
#define STK_FINALIZER_GITSOURCE "source.stoker.io/finalizer"

#define STK_CM_METADATA_PREFIX "stoker-metadata-"
#define STK_CM_STATUS_PREFIX   "stoker-status-"

/* The agent's container name and the audience of its projected token. */
#define STK_AGENT_CONTAINER "stoker-agent"
#define STK_SOURCE_AUDIENCE "stoker-source"

enum stk_api_kind {
	STK_KIND_GITSOURCE,
	STK_KIND_SYNCPROFILE,
	STK_KIND_STOKER,
	STK_KIND_ALERT,
	STK_KIND_COUNT
};

struct stk_api_kind_info {
	enum stk_api_kind kind;
	const char *name;	/* "GitSource" */
	const char *group;	/* "source.stoker.io" */
	const char *plural;	/* "gitsources" */
	const char *short_name; /* "gitsrc" */
	const char *owner;	/* the daemon that owns it */
};

/* The table entry of a kind. Never NULL for a valid enum value. Any thread. */
const struct stk_api_kind_info *stk_api_kind(enum stk_api_kind kind);

/*
 * Looks a kind up by its Kind name ("Stoker"), plural ("stokers") or short name ("stk"),
 * case-sensitively as the API server does. NULL when it is not one of ours. Any thread.
 */
const struct stk_api_kind_info *stk_api_kind_lookup(const char *name);

/* "stoker.io/v1alpha1" for a kind; static storage. */
const char *stk_api_version_of(enum stk_api_kind kind);

/* The REST resources of the four kinds (for stk_kube_* and informers). */
extern const struct stk_gvr STK_GVR_GITSOURCES;
extern const struct stk_gvr STK_GVR_SYNCPROFILES;
extern const struct stk_gvr STK_GVR_STOKERS;
extern const struct stk_gvr STK_GVR_ALERTS;

#endif
