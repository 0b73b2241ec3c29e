/*
 * The artifact server of the source-controller (DESIGN.md §4, CONTRACTS.md "Artifact
 * download"): agents download the tar.gz of a GitSource revision with
 *
 *   GET /gitsource/<ns>/<name>/<sha>.tar.gz            (HEAD too: headers only)
 *   Authorization: Bearer <projected SA token, audience stoker-source>
 *   If-None-Match: "sha256:…"
 *
 * and get 200 (the file streamed from disk, ETag "sha256:…", Content-Type
 * application/gzip), 304 (the ETag matched), 401 (no token, or the API server did not
 * authenticate it for the audience), 403 (a valid token of another namespace, or of a
 * user that is not a service account), 404 (malformed path, no such source or
 * revision) or 503 with Retry-After (the TokenReview could not be made; never turned
 * into a 401).
 *
 * Order of the checks: the path's shape first (ns a DNS-1123 label, name a DNS-1123
 * subdomain, sha 40 lowercase hex digits, anything else 404 without touching the
 * filesystem); then the token; then the namespace; only then the filesystem, so a
 * client of another namespace learns nothing about which sources exist.
 *
 * Files. <storage>/<ns>/<name>/<sha>.tar.gz, opened one path component at a time below
 * a directory descriptor of <storage> taken at start-up, with O_NOFOLLOW: a symbolic
 * link anywhere below <storage> is never followed (it answers 404), so no request can
 * read outside it. The ETag is the content of the sidecar <sha>.tar.gz.sha256
 * ("sha256:<64 hex>", written by the controller next to each artifact); when the
 * sidecar is missing or malformed the digest is computed once on a worker thread with
 * OpenSSL and remembered per path, keyed also by the file's device, inode, size and
 * mtime so a replaced artifact is hashed again.
 *
 * Tokens. Checked with a TokenReview (authentication.k8s.io/v1, spec.audiences =
 * [audience]) through the REST client, which blocks, so reviews run on a small pool of
 * reviewer threads and the HTTP exchange is deferred meanwhile. A review is accepted
 * only with status.authenticated true and the audience listed in status.audiences; the
 * user must be "system:serviceaccount:<ns>:<sa>" with <ns> equal to the path's
 * namespace. Positive and negative review results are cached for `cache_ttl_ms` keyed
 * by the SHA-256 of the token (the token itself is never kept: our copy, the request
 * body and the API server's echo of it are wiped once the review returns; libcurl's
 * internal copy is beyond our reach), at most `cache_max` entries, oldest evicted first. Concurrent
 * requests with the same token share one review. A failed API call is not cached. At
 * most 256 jobs (reviews and digests) are queued or running at once; a request that
 * would need one more gets 503 with Retry-After: 1, so a flood of made-up tokens cannot
 * queue unbounded work or API calls.
 *
 * Threads. One loop thread (the stk_loop's) owns the HTTP server, every request, both
 * caches and the job bookkeeping. Reviewer threads only run a job (a TokenReview or a
 * digest) and hand its result back with stk_loop_post. A request waiting for a job
 * holds its deferred exchange; if the client goes away first, the exchange's cancel
 * callback unlinks the request from the job and completes (releases) the exchange at
 * once; the job still finishes, its result is cached, and nobody is answered.
 *
 * Metrics: stoker_artifact_requests_total{code} on the registry given, one increment
 * per answer this module sends (requests canceled by the client are not counted;
 * answers the HTTP server makes by itself, such as 405 for a POST, are not either).
 */
#ifndef SRCCTL_ARTSERVER_H
#define SRCCTL_ARTSERVER_H

#include <stdint.h>

#include "stk/err.h"
#include "stk/kube.h"
#include "stk/loop.h"
#include "stk/metrics.h"

typedef struct srcctl_artserver srcctl_artserver;

/*
 * Options. `loop`, `kube` and `storage_path` are required; zero values of the others
 * select the defaults. Pointers are borrowed: `loop`, `kube` and `metrics` must outlive
 * the server; the strings are used during srcctl_artserver_new only (the audience is
 * copied, the storage directory is opened then and served through that descriptor).
 */
struct srcctl_artserver_opts {
	stk_loop *loop;		    /* the daemon's loop; the server lives on its thread */
	stk_kube *kube;		    /* for TokenReviews, called from reviewer threads */
	stk_metrics *metrics;	    /* stoker_artifact_requests_total; NULL: none */
	const char *bind_address;   /* ":9090" */
	const char *storage_path;   /* an existing directory */
	const char *audience;	    /* "stoker-source" */
	unsigned reviewers;	    /* reviewer threads, 1..64 (2) */
	uint64_t review_timeout_ms; /* one TokenReview call (5000) */
	uint64_t cache_ttl_ms;	    /* review cache lifetime (60000) */
	unsigned cache_max;	    /* review cache entries (4096) */
};

#define SRCCTL_ARTSERVER_OPTS_INIT                                                     \
	{                                                                              \
		NULL, NULL, NULL, ":9090", NULL, "stoker-source", 2, 5000, 60000, 4096 \
	}

/* Counters since start, for tests and diagnostics. */
struct srcctl_artserver_stats {
	uint64_t reviews;	  /* TokenReview calls started (failed ones included) */
	uint64_t review_failures; /* calls that got no review: API or transport error */
	uint64_t cache_hits;	  /* requests answered from the review cache */
	uint64_t canceled;	  /* requests whose client went away before the answer */
	uint64_t digests;	  /* artifact digests computed (no usable sidecar) */
	uint64_t pending;	  /* jobs (reviews, digests) queued or running now */
};

/*
 * Opens <storage_path>, binds the listening socket, registers the route and starts the
 * reviewer threads. On success *out is a server the caller frees with
 * srcctl_artserver_free. Errors: STK_EINVAL (a required option missing, reviewers out of
 * range, a bad bind address), STK_ENOTFOUND (storage_path missing or not a directory),
 * STK_EIO (bind failed, e.g. the port is in use; a thread could not be created). Main
 * thread before stk_loop_run, or the loop thread.
 */
int srcctl_artserver_new(srcctl_artserver **out, const struct srcctl_artserver_opts *o,
			 stk_err *err);

/* The bound port (the kernel's choice when the address said port 0). Any thread. */
int srcctl_artserver_port(const srcctl_artserver *s);

/* Copies the counters into *out. Any thread. */
void srcctl_artserver_stats(const srcctl_artserver *s, struct srcctl_artserver_stats *out);

/*
 * Starts stopping: queued jobs are dropped (their requests are answered 503), the HTTP
 * server closes (requests still waiting are canceled), and the reviewer threads exit
 * after their current call (a TokenReview in
 * progress ends within review_timeout_ms). When all of that has happened, done(arg) runs
 * on the loop thread (at once if the server is already stopped; `done` may be NULL).
 * Calling it again only adds its `done`. Loop thread.
 */
void srcctl_artserver_shutdown(srcctl_artserver *s, stk_loop_fn done, void *arg);

/*
 * A stk_loop_on_shutdown hook: stk_loop_on_shutdown(loop, srcctl_artserver_shutdown_hook,
 * s) stops the server on SIGTERM and then calls stk_loop_shutdown_done. The server must
 * stay allocated until stk_loop_run returned. Loop thread (as the loop calls hooks).
 */
void srcctl_artserver_shutdown_hook(void *s);

/*
 * Frees the server. If it was not stopped completely, this stops it and runs the loop
 * until it has (so it may wait for a TokenReview in progress); it must then not be
 * called from a loop callback. NULL-safe. Main thread after stk_loop_run returned, or the
 * loop thread once the shutdown's `done` ran.
 */
void srcctl_artserver_free(srcctl_artserver *s);

#endif
