/*
 * The webhook receiver of the notification-controller (DESIGN.md §5, CONTRACTS.md
 * "Webhook receiver"; the client-visible behaviour is written down in docs/receiver.md):
 *
 *   POST /webhook/<namespace>/<stoker>
 *   X-Hub-Signature-256: sha256=<hex HMAC-SHA256(key, raw body)>   or
 *   Authorization: Bearer <key>
 *   → 202 {"accepted":true,"ref":"<ref>","source":"<source>"}
 *
 * where the key is the value of the Stoker's spec.webhook.secretRef. On success it merge
 * patches the Stoker's annotations stoker.io/requested-ref, requested-at (RFC 3339 UTC)
 * and requested-by (the payload's source) and records a Normal WebhookReceived event on
 * it; when requested-ref already holds the ref it answers 202 and changes nothing.
 *
 * Order of the checks, each answered with a JSON body {"error":"…"}: the method (405,
 * Allow: POST), the path's shape (404: <namespace> a DNS-1123 label, <stoker> a DNS-1123
 * subdomain, nothing after them), the client's rate (429 with Retry-After: a token bucket
 * per client address, per /64 for IPv6), room in the work queue (503), the Stoker cache
 * synced (503), then authentication (401), the payload (400), the patch (503 when the API
 * server fails, 404 if the Stoker vanished after authentication). The HTTP server itself
 * answers 413 for a body above 1 MiB (STK_LIMIT_HTTP_BODY) and 411 for a chunked upload.
 *
 * Indistinguishable 401s. A Stoker that does not exist (or is not in a watched namespace),
 * one without spec.webhook, a Secret or key that is missing or empty, and a wrong or absent
 * signature all get the same 401 (body and headers) through the same code path: every
 * authentication makes exactly one Secret GET — the referenced Secret, or else a Secret
 * with a random name fixed at start-up that never exists — and one HMAC and one bearer
 * comparison (with a random key when there is none), both constant-time. So callers
 * cannot tell from the answer or its timing which Stokers exist. A Secret GET that fails
 * for another reason than NotFound/Forbidden (API server unreachable, 5xx, timeout)
 * answers 503 whichever Stoker was named, for the same reason.
 *
 * Threads. The HTTP server and every request live on the loop thread. Authentication,
 * payload parsing and the API calls run on one worker thread fed by a bounded queue
 * (NOTIFCTL_RECEIVER_MAX_JOBS queued or running; 503 with Retry-After: 1 beyond), one
 * request at a time, so two webhooks for the same Stoker never race. The exchange is
 * deferred meanwhile and completed from a stk_loop_post callback. A client that goes away
 * before its request was taken from the queue is dropped unapplied; once taken, the
 * request is applied even if nobody hears the answer.
 *
 * Exactly once. The decision "same ref: nothing to do" is made on a fresh GET of the
 * Stoker, and the patch carries that resourceVersion; a 409 re-reads and decides again
 * (at most 3 times). A patch that fails otherwise is never retried inside (the client's
 * retry is: it then finds the ref already requested).
 *
 * Metrics: stoker_receiver_requests_total{code,source}, one per answer this module sends,
 * `source` "" until the payload was parsed (answers the HTTP server makes itself — 413,
 * 411 — and requests whose client went away are not counted).
 *
 * Never logged: the key, the signature, the Authorization header.
 */
#ifndef NOTIFCTL_RECEIVER_H
#define NOTIFCTL_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stk/err.h"
#include "stk/events.h"
#include "stk/kube.h"
#include "stk/loop.h"
#include "stk/manager.h"
#include "stk/metrics.h"

/* Requests queued or running on the worker at once. */
#define NOTIFCTL_RECEIVER_MAX_JOBS 64u
/* Client addresses whose token bucket is remembered (least recently used forgotten). */
#define NOTIFCTL_RECEIVER_MAX_CLIENTS 4096u
/* Longest namespace (DNS-1123 label) and Stoker name (DNS-1123 subdomain). */
#define NOTIFCTL_NS_MAX	  63u
#define NOTIFCTL_NAME_MAX 253u

typedef struct notifctl_receiver notifctl_receiver;

/*
 * Options. `loop`, `kube` and `stokers` are required; `recorder` and `metrics` may be
 * NULL (no events, no metrics). All are borrowed and must outlive the receiver. Zero
 * values of the others select the defaults.
 */
struct notifctl_receiver_opts {
	stk_loop *loop;		  /* the daemon's loop; the server lives on its thread */
	stk_kube *kube;		  /* Secret GET, Stoker GET and patch, from the worker */
	stk_recorder *recorder;	  /* WebhookReceived events, from the worker */
	stk_metrics *metrics;	  /* stoker_receiver_requests_total */
	stk_cache *stokers;	  /* informer cache of Stokers, read from the worker */
	const char *bind_address; /* --receiver-bind-address; ":9292" */
	double rate_per_s;	  /* per client address: sustained requests per second; 10 */
	unsigned burst;		  /* and bucket size; 20 */
};

#define NOTIFCTL_RECEIVER_OPTS_INIT                              \
	{                                                        \
		NULL, NULL, NULL, NULL, NULL, ":9292", 10.0, 20u \
	}

/*
 * Binds the listening socket, registers the route and starts the worker thread. *out is
 * written only on success; the caller frees it with notifctl_receiver_free. 0;
 * STK_EINVAL (a required option missing, a rate that is not a positive finite number, a
 * bad bind address); STK_EIO (bind failed, e.g. the port is in use; the thread could not
 * start). Main thread before stk_loop_run, or the loop thread.
 */
int notifctl_receiver_new(notifctl_receiver **out, const struct notifctl_receiver_opts *o,
			  stk_err *err);

/* The bound port (the kernel's choice when the address said port 0). Any thread. */
int notifctl_receiver_port(const notifctl_receiver *r);

/*
 * Starts stopping: queued requests are answered 503, the HTTP server closes (requests
 * still waiting are canceled), the worker exits after its current request. Then done(arg)
 * runs on the loop thread (at once if already stopped; `done` may be NULL). Calling it
 * again only adds its `done`. Loop thread.
 */
void notifctl_receiver_shutdown(notifctl_receiver *r, stk_loop_fn done, void *arg);

/*
 * A stk_loop_on_shutdown hook: stk_loop_on_shutdown(loop, notifctl_receiver_shutdown_hook,
 * r) stops the receiver on SIGTERM and then calls stk_loop_shutdown_done. The receiver
 * must stay allocated until stk_loop_run returned.
 */
void notifctl_receiver_shutdown_hook(void *r);

/*
 * Frees the receiver. If it was not stopped, this stops it and runs the loop until it has
 * (waiting for the request in progress), so it must not be called from a loop callback
 * then. NULL-safe. Main thread after stk_loop_run returned, or the loop thread once the
 * shutdown's `done` ran.
 */
void notifctl_receiver_free(notifctl_receiver *r);

/* --- pure helpers (exported for tests) ------------------------------------------------- */

/*
 * True when the request proves knowledge of key[0..keylen): `header_sig` (the
 * X-Hub-Signature-256 value, or NULL) is "sha256=" followed by the 64 hex digits (either
 * case) of HMAC-SHA256(key, body[0..len)), or `header_auth` (the Authorization value, or
 * NULL) is "Bearer <key>" (scheme case-insensitive, spaces around the token ignored).
 * Either suffices. The work does not depend on the key or on which check passes: both
 * are always computed and compared in constant time (CRYPTO_memcmp; the bearer token and
 * the key through their SHA-256), and with key NULL or keylen 0 a random key is used and
 * the answer is false. Any thread.
 */
bool notifctl_sig_ok(const void *key, size_t keylen, const void *body, size_t len,
		     const char *header_sig, const char *header_auth);

/*
 * Per-client token buckets: each client may make `burst` requests at once and
 * `rate_per_s` per second sustained. At most `max_clients` are remembered; the least
 * recently seen is forgotten first (its bucket had refilled unless that many clients came
 * within burst/rate seconds). A client is its address text; IPv6 addresses count per /64,
 * the block one subscriber usually gets. Not thread-safe: one thread at a time (the
 * receiver's loop thread).
 */
struct notifctl_buckets;

/* 0, or STK_EINVAL (rate not a positive finite number, burst or max_clients 0). */
int notifctl_buckets_new(struct notifctl_buckets **out, double rate_per_s, unsigned burst,
			 size_t max_clients, stk_err *err);
void notifctl_buckets_free(struct notifctl_buckets *b);

/*
 * Takes one token of `peer`'s bucket at monotonic time `now_ms`. True when there was one;
 * false otherwise, with *retry_after_ms (may be NULL) the wait until one is back (> 0).
 */
bool notifctl_bucket_take(struct notifctl_buckets *b, const char *peer, uint64_t now_ms,
			  uint64_t *retry_after_ms);

/* How many clients are remembered. */
size_t notifctl_buckets_len(const struct notifctl_buckets *b);

/*
 * Splits the rest of a /webhook/ path, "<ns>/<name>", into ns[] and name[] (written only
 * on success). False unless ns is a DNS-1123 label (1..63 of [a-z0-9-], alphanumeric at
 * both ends), name a DNS-1123 subdomain (1..253, dot-separated such labels) and nothing
 * follows (no trailing '/'). Any thread.
 */
bool notifctl_webhook_path(const char *rest, char ns[NOTIFCTL_NS_MAX + 1],
			   char name[NOTIFCTL_NAME_MAX + 1]);

#endif
