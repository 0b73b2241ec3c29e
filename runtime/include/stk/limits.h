/* Caps for every buffer fed from outside. One place, so reviews and fuzzers see them all. */
#ifndef STK_LIMITS_H
#define STK_LIMITS_H

/* One line of a watch stream (one event). Kubernetes objects are at most ~1.5 MiB. */
#define STK_LIMIT_WATCH_LINE (8u * 1024 * 1024)
/* A non-watch API response body (a list page is bounded by `limit`). */
#define STK_LIMIT_API_BODY (64u * 1024 * 1024)
/* A kubeconfig file. */
#define STK_LIMIT_KUBECONFIG (4u * 1024 * 1024)
/* A request body accepted by our HTTP servers (admission reviews, receiver payloads). */
#define STK_LIMIT_HTTP_BODY (1u * 1024 * 1024)
/* A condition message (DESIGN.md §3: messages are truncated to 32 KiB). */
#define STK_LIMIT_CONDITION_MESSAGE (32u * 1024)
/* A duration string ("1h2m3s"). */
#define STK_LIMIT_DURATION_TEXT 64u
/* One structured log line. */
#define STK_LIMIT_LOG_LINE (16u * 1024)

#endif
