/* Caps for every buffer fed from outside. One place, so reviews and fuzzers see them all. */
#ifndef STK_LIMITS_H
#define STK_LIMITS_H

/* One line of a watch stream (one event). Kubernetes objects are at most ~1.5 MiB. */
#define STK_LIMIT_WATCH_LINE (8u * 1024 * 1024)
/* A non-watch API response body (a list page is bounded by `limit`). */
#define STK_LIMIT_API_BODY (64u * 1024 * 1024)
/* A kubeconfig file. */
#define STK_LIMIT_KUBECONFIG (4u * 1024 * 1024)
/* A file a kubeconfig names: CA bundle, client certificate or key. */
#define STK_LIMIT_KUBECONFIG_PEM (1u * 1024 * 1024)
/* YAML nodes plus alias references in one kubeconfig (~15 per context/cluster/user). */
#define STK_LIMIT_KUBECONFIG_NODES 100000u
/*
 * Nesting depth of any JSON document parsed (stk_json_parse): yajl's tree free recurses
 * once per level, so a hostile payload of 500,000 '[' crashed the process. Kubernetes
 * objects nest well under 100 levels.
 */
#define STK_LIMIT_JSON_DEPTH 512u

/* YAML nesting depth of a kubeconfig (kubectl's output nests at most ~8 levels). */
#define STK_LIMIT_KUBECONFIG_DEPTH 64u
/* YAML anchors in a kubeconfig (kubectl writes none). */
#define STK_LIMIT_KUBECONFIG_ANCHORS 64u
/* A bearer token file (a service account token is ~1 KiB). */
#define STK_LIMIT_TOKEN_FILE (64u * 1024)
/* A request body accepted by our HTTP servers (admission reviews, receiver payloads). */
#define STK_LIMIT_HTTP_BODY (1u * 1024 * 1024)
/* All request headers of one HTTP request (libwebsockets header storage), and all extra
 * headers of one response. Service account tokens in Authorization are ~1-2 KiB. */
#define STK_LIMIT_HTTP_HEADERS (16u * 1024)
/* The rendered /metrics exposition of one registry. */
#define STK_LIMIT_METRICS_TEXT (32u * 1024 * 1024)
/* A condition message (DESIGN.md §3: messages are truncated to 32 KiB). */
#define STK_LIMIT_CONDITION_MESSAGE (32u * 1024)
/* A duration string ("1h2m3s"). */
#define STK_LIMIT_DURATION_TEXT 64u
/* A work queue key ("namespace/name": 63 + 1 + 253 bytes, with room for a kind prefix). */
#define STK_LIMIT_QUEUE_KEY 1024u
/* One structured log line. */
#define STK_LIMIT_LOG_LINE (16u * 1024)

#endif
