#include "receiver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <yajl/yajl_tree.h>

#include "payload.h"
#include "stk/alloc.h"
#include "stk/api/kinds.h"
#include "stk/buf.h"
#include "stk/http.h"
#include "stk/json.h"
#include "stk/limits.h"
#include "stk/log.h"
#include "stk/map.h"
#include "stk/objects.h"

#define RECV_ROUTE	   "/webhook/*"
#define RECV_DEFAULT_BIND  ":9292"
#define RECV_DEFAULT_RATE  10.0
#define RECV_DEFAULT_BURST 20u
#define RECV_SIG_PREFIX	   "sha256="
#define RECV_MAC_LEN	   32u /* SHA-256 */
#define RECV_RANDOM_KEY	   32u
/* Patch attempts when the Stoker changes between our GET and our patch (409). */
#define RECV_PATCH_TRIES 3
/* Retry-After when the API server failed and did not say, when busy, and the longest. */
#define RECV_RETRY_AFTER_S	5L
#define RECV_BUSY_RETRY_AFTER_S 1L
#define RECV_MAX_RETRY_AFTER_S	300L
/* A client key: an IPv4 address, or an IPv6 /64 ("…::/64"). */
#define RECV_CLIENT_KEY_MAX (INET6_ADDRSTRLEN + 4)
/* Longest Secret name or key read from a Stoker's spec.webhook.secretRef. */
#define RECV_REF_FIELD_MAX 253u

#define RECV_JSON "application/json"

/* --- rate limiting --------------------------------------------------------------------- */

struct recv_client {
	struct recv_client *older, *newer;
	char key[RECV_CLIENT_KEY_MAX];
	double tokens;
	uint64_t last_ms;
};

struct notifctl_buckets {
	double rate_per_ms;
	double burst;
	size_t max;
	stk_map map; /* client key -> recv_client */
	struct recv_client *oldest, *newest;
};

int notifctl_buckets_new(struct notifctl_buckets **out, double rate_per_s, unsigned burst,
			 size_t max_clients, stk_err *err)
{
	struct notifctl_buckets *b;

	if (!(rate_per_s > 0) || !isfinite(rate_per_s) || burst == 0 || max_clients == 0)
		return stk_err_set(err, STK_EINVAL,
				   "rate limit: the rate must be a positive number, the burst and "
				   "the client count at least 1");
	b = stk_calloc(1, sizeof(*b));
	b->rate_per_ms = rate_per_s / 1000.0;
	b->burst = burst;
	b->max = max_clients;
	*out = b;
	return 0;
}

static void recv_client_unlink(struct notifctl_buckets *b, struct recv_client *c)
{
	if (c->older)
		c->older->newer = c->newer;
	else
		b->oldest = c->newer;
	if (c->newer)
		c->newer->older = c->older;
	else
		b->newest = c->older;
	c->older = c->newer = NULL;
}

static void recv_client_link_newest(struct notifctl_buckets *b, struct recv_client *c)
{
	c->older = b->newest;
	c->newer = NULL;
	if (b->newest)
		b->newest->newer = c;
	else
		b->oldest = c;
	b->newest = c;
}

void notifctl_buckets_free(struct notifctl_buckets *b)
{
	struct recv_client *c;

	if (!b)
		return;
	while ((c = b->oldest) != NULL) {
		recv_client_unlink(b, c);
		free(c);
	}
	stk_map_release(&b->map);
	free(b);
}

size_t notifctl_buckets_len(const struct notifctl_buckets *b)
{
	return b->map.len;
}

/* The bucket a peer draws from: its IPv4 address, or the /64 of its IPv6 address. */
static void recv_client_key(const char *peer, char out[RECV_CLIENT_KEY_MAX])
{
	struct in6_addr a6;
	char text[INET6_ADDRSTRLEN];

	if (peer && inet_pton(AF_INET6, peer, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			if (inet_ntop(AF_INET, &a6.s6_addr[12], out, RECV_CLIENT_KEY_MAX))
				return;
		} else {
			memset(&a6.s6_addr[8], 0, 8);
			if (inet_ntop(AF_INET6, &a6, text, sizeof(text))) {
				snprintf(out, RECV_CLIENT_KEY_MAX, "%s/64", text);
				return;
			}
		}
	}
	snprintf(out, RECV_CLIENT_KEY_MAX, "%s", peer ? peer : "");
}

bool notifctl_bucket_take(struct notifctl_buckets *b, const char *peer, uint64_t now_ms,
			  uint64_t *retry_after_ms)
{
	char key[RECV_CLIENT_KEY_MAX];
	struct recv_client *c;
	double wait;

	recv_client_key(peer, key);
	c = stk_map_get(&b->map, key);
	if (c) {
		if (now_ms > c->last_ms) {
			c->tokens += (double)(now_ms - c->last_ms) * b->rate_per_ms;
			if (c->tokens > b->burst)
				c->tokens = b->burst;
			c->last_ms = now_ms;
		}
		recv_client_unlink(b, c);
	} else {
		if (b->map.len >= b->max && b->oldest) {
			struct recv_client *old = b->oldest;
			recv_client_unlink(b, old);
			stk_map_del(&b->map, old->key);
			free(old);
		}
		c = stk_calloc(1, sizeof(*c));
		memcpy(c->key, key, sizeof(key));
		c->tokens = b->burst;
		c->last_ms = now_ms;
		stk_map_put(&b->map, c->key, c);
	}
	recv_client_link_newest(b, c);
	if (c->tokens >= 1.0) {
		c->tokens -= 1.0;
		return true;
	}
	if (retry_after_ms) {
		/* Rounded up (without libm): the first millisecond a whole token is back. */
		wait = (1.0 - c->tokens) / b->rate_per_ms;
		*retry_after_ms = wait < 1.0 ? 1 : (uint64_t)wait;
		if ((double)*retry_after_ms < wait)
			(*retry_after_ms)++;
	}
	return false;
}

/* --- the path -------------------------------------------------------------------------- */

static bool recv_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One DNS-1123 label without the length cap: [a-z0-9]([-a-z0-9]*[a-z0-9])?. */
static bool recv_label(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !recv_alnum(s[0]) || !recv_alnum(s[n - 1]))
		return false;
	for (i = 1; i + 1 < n; i++)
		if (!recv_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* DNS-1123 subdomain as Kubernetes checks object names: dot-separated labels, 1..253. */
static bool recv_subdomain(const char *s, size_t n)
{
	size_t start = 0, i;

	if (n == 0 || n > NOTIFCTL_NAME_MAX)
		return false;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (!recv_label(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

bool notifctl_webhook_path(const char *rest, char ns[NOTIFCTL_NS_MAX + 1],
			   char name[NOTIFCTL_NAME_MAX + 1])
{
	const char *slash;
	size_t nslen, namelen;

	if (!rest)
		return false;
	slash = strchr(rest, '/');
	if (!slash)
		return false;
	nslen = (size_t)(slash - rest);
	namelen = strlen(slash + 1);
	if (nslen > NOTIFCTL_NS_MAX || !recv_label(rest, nslen) ||
	    !recv_subdomain(slash + 1, namelen))
		return false;
	memcpy(ns, rest, nslen);
	ns[nslen] = '\0';
	memcpy(name, slash + 1, namelen + 1);
	return true;
}

/* --- authentication -------------------------------------------------------------------- */

static int recv_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "sha256=<64 hex>" into mac[]; false (mac zeroed) when absent or malformed. */
static bool recv_parse_sig(const char *h, unsigned char mac[RECV_MAC_LEN])
{
	size_t plen = strlen(RECV_SIG_PREFIX), i;
	int hi, lo;

	memset(mac, 0, RECV_MAC_LEN);
	if (!h || strncasecmp(h, RECV_SIG_PREFIX, plen) != 0 ||
	    strlen(h + plen) != 2 * RECV_MAC_LEN)
		return false;
	h += plen;
	for (i = 0; i < RECV_MAC_LEN; i++) {
		hi = recv_hexval(h[2 * i]);
		lo = recv_hexval(h[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			memset(mac, 0, RECV_MAC_LEN);
			return false;
		}
		mac[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

/* The token of "Bearer <token>", surrounding blanks dropped; false when absent or empty. */
static bool recv_bearer(const char *h, const char **tok, size_t *len)
{
	size_t n;

	if (!h || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return false;
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n == 0)
		return false;
	*tok = h;
	*len = n;
	return true;
}

static bool recv_sha256(const void *p, size_t n, unsigned char md[RECV_MAC_LEN])
{
	unsigned int mdlen = 0;

	return EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == RECV_MAC_LEN;
}

bool notifctl_sig_ok(const void *key, size_t keylen, const void *body, size_t len,
		     const char *header_sig, const char *header_auth)
{
	unsigned char dummy[RECV_RANDOM_KEY], mac[EVP_MAX_MD_SIZE], given[RECV_MAC_LEN];
	unsigned char tok_md[RECV_MAC_LEN], key_md[RECV_MAC_LEN];
	bool have_key = key && keylen > 0 && keylen <= INT_MAX;
	bool computed, sig_form, sig_eq, tok_form, tok_eq;
	const char *tok = "";
	size_t toklen = 0;
	unsigned int maclen = 0;

	if (!have_key) {
		/* No key: the same work with one nobody knows, so the time tells nothing. */
		if (RAND_bytes(dummy, sizeof(dummy)) != 1)
			memset(dummy, 0x5a, sizeof(dummy));
		key = dummy;
		keylen = sizeof(dummy);
	}
	if (!body)
		body = "";
	computed = HMAC(EVP_sha256(), key, (int)keylen, body, len, mac, &maclen) != NULL &&
		   maclen == RECV_MAC_LEN;
	sig_form = recv_parse_sig(header_sig, given);
	sig_eq = CRYPTO_memcmp(mac, given, RECV_MAC_LEN) == 0;
	tok_form = recv_bearer(header_auth, &tok, &toklen);
	/* Digests first: CRYPTO_memcmp needs equal lengths, and the key's length is secret. */
	computed = recv_sha256(tok, toklen, tok_md) && computed;
	computed = recv_sha256(key, keylen, key_md) && computed;
	tok_eq = CRYPTO_memcmp(tok_md, key_md, RECV_MAC_LEN) == 0;
	OPENSSL_cleanse(dummy, sizeof(dummy));
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(key_md, sizeof(key_md));
	return have_key && computed && ((sig_form && sig_eq) || (tok_form && tok_eq));
}

/* --- the receiver ---------------------------------------------------------------------- */

/*
 * One request. Created on the loop thread; between recv_submit and the posted
 * recv_job_done it belongs to the worker, which reads the inputs and writes the outcome
 * (the queue lock and stk_loop_post order the hand-overs). `canceled` is the one field
 * both threads touch meanwhile.
 */
struct recv_job {
	notifctl_receiver *r;
	stk_http_exchange *ex;
	struct recv_job *qnext;
	atomic_bool canceled;

	/* input */
	char ns[NOTIFCTL_NS_MAX + 1];
	char name[NOTIFCTL_NAME_MAX + 1];
	char peer[64];
	const char *body; /* the exchange's, valid until it is completed */
	size_t body_len;
	char *sig, *auth; /* wiped when freed */
	char *github_event, *gitlab_event;

	/* outcome: status 0 = not run (client gone first) */
	int status;
	long retry_after_s;
	const char *source; /* static, or NULL */
	bool changed;
	bool quiet; /* dropped at shutdown: not logged one by one */
	char ref[NOTIFCTL_REF_MAX + 1];
	char message[STK_ERR_MESSAGE_MAX]; /* the error answered (400, 404, 503) */
	char why[STK_ERR_MESSAGE_MAX];	   /* logged only (401, 503 causes) */
};

struct recv_done {
	stk_loop_fn fn;
	void *arg;
};

struct notifctl_receiver {
	stk_loop *loop;
	stk_kube *kube;
	stk_recorder *recorder;
	stk_cache *stokers;
	stk_http_server *http;
	stk_metrics_family *requests; /* or NULL */
	char absent_secret[64];	      /* a random Secret name that never exists */

	/* loop thread */
	struct notifctl_buckets *buckets;
	size_t jobs; /* created and not done */
	bool stopping, http_closed, worker_joined, finished;
	struct recv_done *done;
	size_t ndone;

	/* the worker */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct recv_job *qhead, *qtail; /* under lock */
	bool stop;			/* under lock: the worker exits when the queue is empty */
	bool quiet_exit;		/* under lock: it then does not post */
	pthread_t thread;
	bool thread_started;
	stk_map trailing;    /* worker thread: "ns/name" owed a token write (recv_trail) */
	time_t trailing_sec; /* worker thread: the second of the latest recv_trail */
};

static void recv_job_done(void *arg);
static void recv_worker_gone(void *arg);

static void recv_wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static void recv_job_free(struct recv_job *j)
{
	recv_wipe_free(j->sig);
	recv_wipe_free(j->auth);
	free(j->github_event);
	free(j->gitlab_event);
	free(j);
}

static char *recv_header_dup(const stk_http_request *req, const char *name)
{
	const char *v = stk_http_request_header(req, name);

	return v ? stk_strdup(v) : NULL;
}

/* --- answers (loop thread) --- */

static void recv_count(notifctl_receiver *r, int status, const char *source)
{
	char code[16];

	if (!r->requests)
		return;
	snprintf(code, sizeof(code), "%d", status);
	stk_metrics_inc(r->requests, (const char *const[]){code, source ? source : ""});
}

static void recv_retry_after(stk_http_response *resp, long seconds)
{
	char v[24];

	snprintf(v, sizeof(v), "%ld", seconds < 1 ? 1 : seconds);
	stk_http_response_header(resp, "Retry-After", v, NULL);
}

/* An error answer {"error":"<message>"}. */
static void recv_error(notifctl_receiver *r, stk_http_response *resp, int status,
		       const char *source, const char *message)
{
	stk_buf b = STK_BUF_INIT(2 * STK_ERR_MESSAGE_MAX + 64);

	stk_buf_puts(&b, "{\"error\":");
	stk_buf_put_json_string(&b, message, strlen(message));
	stk_buf_puts(&b, "}");
	stk_http_response_body_take(resp, status, RECV_JSON, &b);
	stk_buf_release(&b);
	recv_count(r, status, source);
}

/* Every authentication failure, whatever its cause: the same bytes. */
static void recv_unauthorized(notifctl_receiver *r, stk_http_response *resp)
{
	recv_error(r, resp, 401, NULL, "unauthorized");
	stk_http_response_header(resp, "WWW-Authenticate", "Bearer realm=\"stoker-webhook\"", NULL);
}

static void recv_unavailable(notifctl_receiver *r, stk_http_response *resp, const char *source,
			     const char *message, long retry_s)
{
	recv_error(r, resp, 503, source, message);
	recv_retry_after(resp, retry_s);
}

static void recv_accepted(notifctl_receiver *r, stk_http_response *resp, const struct recv_job *j)
{
	stk_buf b = STK_BUF_INIT(4 * NOTIFCTL_REF_MAX + 128);

	stk_buf_puts(&b, "{\"accepted\":true,\"ref\":");
	stk_buf_put_json_string(&b, j->ref, strlen(j->ref));
	stk_buf_puts(&b, ",\"source\":");
	stk_buf_put_json_string(&b, j->source, strlen(j->source));
	stk_buf_puts(&b, "}");
	stk_http_response_body_take(resp, 202, RECV_JSON, &b);
	stk_buf_release(&b);
	recv_count(r, 202, j->source);
}

/* --- the worker's steps --- */

/* Copies a string member of the cached Stoker, or "" when absent or too long. */
static void recv_field(char out[RECV_REF_FIELD_MAX + 1], yajl_val root, const char *member)
{
	const char *v = stk_json_str(root, "spec", "webhook", "secretRef", member, NULL);

	if (!v || strlen(v) > RECV_REF_FIELD_MAX)
		v = "";
	memcpy(out, v, strlen(v) + 1);
}

/*
 * Reads the webhook key of ns/name with exactly one Secret GET, whatever the cache says:
 * the referenced Secret, or the never-existing one. *key is NULL when there is none (no
 * Stoker, no secretRef, no Secret or key, an empty key); a trailing newline of the value
 * (a Secret made with `--from-file` of an `echo`ed file) is not part of the key. Returns
 * 0, or the client's error when the API server could not answer (then *key is NULL).
 * The cause of a missing key goes to j->why, for the log only.
 */
static int recv_read_key(notifctl_receiver *r, struct recv_job *j, char **key, size_t *keylen,
			 stk_err *err)
{
	char secret[RECV_REF_FIELD_MAX + 1], item[RECV_REF_FIELD_MAX + 1];
	stk_obj *o = stk_cache_get(r->stokers, j->ns, j->name);
	bool real = false;
	char *value = NULL;
	size_t n;
	int rc;

	*key = NULL;
	*keylen = 0;
	secret[0] = item[0] = '\0';
	if (o) {
		recv_field(secret, o->root, "name");
		recv_field(item, o->root, "key");
		stk_obj_unref(o);
		real = *secret && *item;
		if (!real)
			snprintf(j->why, sizeof(j->why),
				 "Stoker %s/%s has no spec.webhook.secretRef", j->ns, j->name);
	} else {
		snprintf(j->why, sizeof(j->why), "Stoker %s/%s not found", j->ns, j->name);
	}
	if (!real) {
		memcpy(secret, r->absent_secret, strlen(r->absent_secret) + 1);
		memcpy(item, "key", 4);
	}
	rc = stk_kube_secret_value(r->kube, j->ns, secret, item, &value, err);
	if (rc == STK_ENOTFOUND || rc == STK_EFORBIDDEN || rc == STK_EPARSE || rc == STK_EINVAL) {
		/* No key, for the caller exactly as for a missing Stoker. */
		if (real)
			snprintf(j->why, sizeof(j->why), "%s", err->message);
		return 0;
	}
	if (rc)
		return rc;
	if (!real) {
		/* The never-existing Secret exists (someone guessed it?): never use it. */
		recv_wipe_free(value);
		return 0;
	}
	n = strlen(value);
	while (n > 0 && (value[n - 1] == '\n' || value[n - 1] == '\r'))
		value[--n] = '\0';
	if (n == 0) {
		snprintf(j->why, sizeof(j->why), "Secret %.200s key %.200s is empty", secret, item);
		recv_wipe_free(value);
		return 0;
	}
	*key = value;
	*keylen = n;
	return 0;
}

static long recv_retry_of(const stk_err *err)
{
	long s = RECV_RETRY_AFTER_S;

	if (err->retry_after_ms > 0)
		s = (err->retry_after_ms + 999) / 1000;
	return s > RECV_MAX_RETRY_AFTER_S ? RECV_MAX_RETRY_AFTER_S : s;
}

static void recv_now_rfc3339(char out[32])
{
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	if (strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		out[0] = '\0';
}

/*
 * The merge patch, conditional on resourceVersion `rv`: the three request annotations
 * when `ref` is not NULL, and always the reconcile token `now`, which makes the
 * sync-controller ask the GitSource for a fetch (a push to the branch already followed
 * changes no ref but does change the branch's commit).
 */
static void recv_patch_body(stk_buf *b, const char *rv, const char *now, const char *ref,
			    const char *source)
{
	stk_buf_puts(b, "{\"metadata\":{\"resourceVersion\":");
	stk_buf_put_json_string(b, rv, strlen(rv));
	stk_buf_puts(b, ",\"annotations\":{\"" STK_ANN_RECONCILE_REQUEST "\":");
	stk_buf_put_json_string(b, now, strlen(now));
	if (ref) {
		stk_buf_puts(b, ",\"" STK_ANN_REQUESTED_REF "\":");
		stk_buf_put_json_string(b, ref, strlen(ref));
		stk_buf_puts(b, ",\"" STK_ANN_REQUESTED_AT "\":");
		stk_buf_put_json_string(b, now, strlen(now));
		stk_buf_puts(b, ",\"" STK_ANN_REQUESTED_BY "\":");
		stk_buf_put_json_string(b, source, strlen(source));
	}
	stk_buf_puts(b, "}}}");
}

static void recv_event(notifctl_receiver *r, struct recv_job *j, yajl_val patched)
{
	struct stk_event_ref ref = {STK_API_GROUP_STOKER "/" STK_API_VERSION,
				    "Stoker",
				    j->ns,
				    j->name,
				    stk_json_str(patched, "metadata", "uid", NULL),
				    stk_json_str(patched, "metadata", "resourceVersion", NULL)};
	stk_err err = STK_ERR_INIT;

	if (!r->recorder)
		return;
	if (stk_recorder_event(r->recorder, &ref, STK_EVENT_NORMAL, "WebhookReceived", &err,
			       "ref '%s' requested by %s", j->ref, j->source))
		stk_log_warn("cannot record the WebhookReceived event", "namespace", j->ns, "name",
			     j->name, "error", err.message, NULL);
}

/*
 * A request found the Stoker's reconcile token already at this second: one more token
 * is written once the second is over (recv_flush_trailing), so a push that landed after
 * the fetch the earlier token started still gets a fetch of its own. Worker thread.
 */
static void recv_trail(notifctl_receiver *r, const char *ns, const char *name)
{
	char key[NOTIFCTL_NS_MAX + NOTIFCTL_NAME_MAX + 2];

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	stk_map_put(&r->trailing, key, (void *)1);
	r->trailing_sec = time(NULL);
}

/*
 * Writes the request into the Stoker's annotations: the three request annotations
 * unless requested-ref already holds the ref, and the reconcile token (RFC 3339,
 * seconds) unless it already holds this second — then once more when the second is
 * over (recv_trail): at most two token writes a second per Stoker, however many calls.
 * A job with an empty ref writes the token only (a trailing write). Decided on a fresh
 * GET, patched conditionally on its resourceVersion, re-read on a conflict. Sets the
 * outcome (202, 404, 503). Worker thread.
 */
static void recv_apply(notifctl_receiver *r, struct recv_job *j)
{
	stk_buf body = STK_BUF_INIT(4096);
	yajl_val cur = NULL, patched = NULL;
	stk_err err = STK_ERR_INIT;
	const char *have, *token, *rv;
	bool token_only = !j->ref[0];
	char now[32];
	int rc = 0, attempt;

	for (attempt = 0; attempt < RECV_PATCH_TRIES; attempt++) {
		yajl_tree_free(cur);
		cur = NULL;
		stk_err_clear(&err);
		rc = stk_kube_get(r->kube, &STK_GVR_STOKERS, j->ns, j->name, &cur, &err);
		if (rc)
			break;
		have = stk_json_str(cur, "metadata", "annotations", STK_ANN_REQUESTED_REF, NULL);
		token = stk_json_str(cur, "metadata", "annotations", STK_ANN_RECONCILE_REQUEST,
				     NULL);
		j->changed = !token_only && (!have || strcmp(have, j->ref));
		recv_now_rfc3339(now);
		if (!j->changed && token && !strcmp(token, now)) {
			if (!token_only)
				recv_trail(r, j->ns, j->name);
			j->status = 202;
			goto out;
		}
		rv = stk_json_str(cur, "metadata", "resourceVersion", NULL);
		stk_buf_reset(&body);
		recv_patch_body(&body, rv ? rv : "", now, j->changed ? j->ref : NULL, j->source);
		rc = stk_kube_patch(r->kube, &STK_GVR_STOKERS, j->ns, j->name, STK_PATCH_MERGE,
				    body.ptr, body.len, NULL, &patched, &err);
		if (rc != STK_ECONFLICT)
			break;
	}
	if (!rc) {
		j->status = 202;
		if (j->changed)
			recv_event(r, j, patched);
		goto out;
	}
	j->changed = false;
	if (rc == STK_ENOTFOUND) {
		j->status = 404;
		snprintf(j->message, sizeof(j->message), "Stoker '%s' not found in namespace '%s'",
			 j->name, j->ns);
		goto out;
	}
	j->status = 503;
	j->retry_after_s = recv_retry_of(&err);
	snprintf(j->message, sizeof(j->message), "cannot update the Stoker now; retry later");
	snprintf(j->why, sizeof(j->why), "%s", err.message);
out:
	yajl_tree_free(cur);
	yajl_tree_free(patched);
	stk_buf_release(&body);
}

/* Everything a request needs off the loop thread; fills the job's outcome. */
static void recv_run(notifctl_receiver *r, struct recv_job *j)
{
	stk_err err = STK_ERR_INIT;
	char *key = NULL;
	size_t keylen = 0;
	bool ok;
	int rc;

	if (atomic_load(&j->canceled))
		return; /* the client left before we started: it will retry */
	rc = recv_read_key(r, j, &key, &keylen, &err);
	if (rc) {
		/* Whichever Stoker was named, so this says nothing about it either. */
		j->status = 503;
		j->retry_after_s = recv_retry_of(&err);
		snprintf(j->message, sizeof(j->message),
			 "cannot authenticate the request now; retry later");
		snprintf(j->why, sizeof(j->why), "reading the webhook Secret: %.400s", err.message);
		return;
	}
	ok = notifctl_sig_ok(key, keylen, j->body, j->body_len, j->sig, j->auth);
	recv_wipe_free(key);
	if (!ok) {
		if (!j->why[0])
			snprintf(j->why, sizeof(j->why), "%s",
				 j->sig || j->auth ? "signature or token does not match"
						   : "no X-Hub-Signature-256 or Authorization");
		j->status = 401;
		return;
	}
	j->why[0] = '\0';
	rc = notifctl_payload_ref(j->body, j->body_len, j->github_event, j->gitlab_event, j->ref,
				  sizeof(j->ref), &j->source, &err);
	if (rc) {
		j->status = rc == STK_ETOOBIG ? 413 : 400;
		snprintf(j->message, sizeof(j->message), "%s", err.message);
		return;
	}
	recv_apply(r, j);
}

/* The token writes owed once their second is over. Worker thread. */
static void recv_flush_trailing(notifctl_receiver *r)
{
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;

	if (!r->trailing.len || time(NULL) <= r->trailing_sec)
		return;
	while ((e = stk_map_next(&r->trailing, &it))) {
		struct recv_job t;
		const char *slash = strchr(e->key, '/');
		memset(&t, 0, sizeof(t));
		if (!slash || (size_t)(slash - e->key) > NOTIFCTL_NS_MAX)
			continue;
		memcpy(t.ns, e->key, (size_t)(slash - e->key));
		snprintf(t.name, sizeof(t.name), "%s", slash + 1);
		recv_apply(r, &t); /* empty ref: the token only */
		if (t.status == 202)
			stk_log_debug("trailing reconcile token written", "namespace", t.ns, "name",
				      t.name, NULL);
		else
			stk_log_warn("cannot write a trailing reconcile token", "namespace", t.ns,
				     "name", t.name, "error", t.why[0] ? t.why : t.message, NULL);
	}
	stk_map_release(&r->trailing);
}

static void *recv_worker(void *arg)
{
	notifctl_receiver *r = arg;
	struct recv_job *j;
	bool post, stop;

	for (;;) {
		pthread_mutex_lock(&r->lock);
		while (!r->qhead && !r->stop) {
			if (r->trailing.len) {
				/* Wake when the second of the owed writes is over. */
				struct timespec until = {r->trailing_sec + 1, 0};
				if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT)
					break;
			} else {
				pthread_cond_wait(&r->cond, &r->lock);
			}
		}
		j = r->qhead;
		if (j) {
			r->qhead = j->qnext;
			if (!r->qhead)
				r->qtail = NULL;
			j->qnext = NULL;
		}
		stop = r->stop;
		pthread_mutex_unlock(&r->lock);
		if (j) {
			recv_run(r, j);
			stk_loop_post(r->loop, recv_job_done, j);
		}
		if (!j && stop)
			break;
		recv_flush_trailing(r);
	}
	stk_map_release(&r->trailing); /* stopping: owed writes are dropped */
	pthread_mutex_lock(&r->lock);
	post = !r->quiet_exit;
	pthread_mutex_unlock(&r->lock);
	/* Posted after the last job's completion, so it runs after it. */
	if (post)
		stk_loop_post(r->loop, recv_worker_gone, r);
	return NULL;
}

/* --- requests (loop thread) --- */

static void recv_submit(notifctl_receiver *r, struct recv_job *j)
{
	pthread_mutex_lock(&r->lock);
	if (r->qtail)
		r->qtail->qnext = j;
	else
		r->qhead = j;
	r->qtail = j;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void recv_on_cancel(void *arg)
{
	struct recv_job *j = arg;

	/* Completed when the worker hands it back: it may be reading the body now. */
	atomic_store(&j->canceled, true);
}

static void recv_log_answer(const struct recv_job *j)
{
	char code[16];

	snprintf(code, sizeof(code), "%d", j->status);
	if (j->status == 202)
		stk_log_info("webhook accepted", "namespace", j->ns, "name", j->name, "ref", j->ref,
			     "source", j->source, "changed", j->changed ? "true" : "false", "peer",
			     j->peer, NULL);
	else if (j->status == 401)
		stk_log_info("webhook unauthorized", "namespace", j->ns, "name", j->name, "peer",
			     j->peer, "reason", j->why, NULL);
	else if (j->status == 503)
		stk_log_warn("webhook not applied", "namespace", j->ns, "name", j->name, "code",
			     code, "peer", j->peer, "error", j->why, NULL);
	else
		stk_log_info("webhook refused", "namespace", j->ns, "name", j->name, "code", code,
			     "peer", j->peer, "error", j->message, NULL);
}

static void recv_maybe_finished(notifctl_receiver *r)
{
	struct recv_done *done;
	size_t n, i;

	if (!r->stopping || r->finished || !r->http_closed || !r->worker_joined || r->jobs > 0)
		return;
	r->finished = true;
	/* A `done` may free the receiver: work from a detached copy. */
	done = r->done;
	n = r->ndone;
	r->done = NULL;
	r->ndone = 0;
	for (i = 0; i < n; i++)
		if (done[i].fn)
			done[i].fn(done[i].arg);
	free(done);
}

static void recv_job_done(void *arg)
{
	struct recv_job *j = arg;
	notifctl_receiver *r = j->r;
	stk_http_response *resp;

	if (j->status && !stk_http_exchange_canceled(j->ex)) {
		resp = stk_http_exchange_response(j->ex);
		switch (j->status) {
		case 202:
			recv_accepted(r, resp, j);
			break;
		case 401:
			recv_unauthorized(r, resp);
			break;
		case 503:
			recv_unavailable(r, resp, j->source, j->message, j->retry_after_s);
			break;
		default:
			recv_error(r, resp, j->status, j->source, j->message);
			break;
		}
	}
	stk_http_exchange_complete(j->ex);
	if (j->status && !j->quiet)
		recv_log_answer(j);
	recv_job_free(j);
	r->jobs--;
	recv_maybe_finished(r);
}

static int recv_handle(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	notifctl_receiver *r = arg;
	char ns[NOTIFCTL_NS_MAX + 1], name[NOTIFCTL_NAME_MAX + 1];
	uint64_t wait_ms = 0;
	struct recv_job *j;

	if (strcmp(req->method, "POST") != 0) {
		recv_error(r, resp, 405, NULL, "method not allowed");
		stk_http_response_header(resp, "Allow", "POST", NULL);
		return STK_HTTP_DONE;
	}
	if (!notifctl_webhook_path(req->route_rest, ns, name)) {
		recv_error(r, resp, 404, NULL, "not found");
		return STK_HTTP_DONE;
	}
	if (!notifctl_bucket_take(r->buckets, req->peer, stk_now_ms(), &wait_ms)) {
		recv_error(r, resp, 429, NULL, "too many requests");
		recv_retry_after(resp, (long)((wait_ms + 999) / 1000));
		return STK_HTTP_DONE;
	}
	if (r->stopping || r->jobs >= NOTIFCTL_RECEIVER_MAX_JOBS) {
		recv_unavailable(r, resp, NULL, "receiver busy; retry later",
				 RECV_BUSY_RETRY_AFTER_S);
		return STK_HTTP_DONE;
	}
	if (!stk_cache_synced(r->stokers)) {
		recv_unavailable(r, resp, NULL, "receiver starting; retry later",
				 RECV_BUSY_RETRY_AFTER_S);
		return STK_HTTP_DONE;
	}
	j = stk_calloc(1, sizeof(*j));
	j->r = r;
	atomic_init(&j->canceled, false);
	memcpy(j->ns, ns, sizeof(ns));
	memcpy(j->name, name, sizeof(name));
	snprintf(j->peer, sizeof(j->peer), "%s", req->peer ? req->peer : "");
	j->body = req->body;
	j->body_len = req->body_len;
	j->sig = recv_header_dup(req, "X-Hub-Signature-256");
	j->auth = recv_header_dup(req, "Authorization");
	j->github_event = recv_header_dup(req, "X-GitHub-Event");
	j->gitlab_event = recv_header_dup(req, "X-Gitlab-Event");
	j->ex = stk_http_defer(req);
	stk_http_exchange_on_cancel(j->ex, recv_on_cancel, j);
	r->jobs++;
	recv_submit(r, j);
	return STK_HTTP_DEFERRED;
}

/* --- shutdown and lifecycle --- */

static void recv_worker_gone(void *arg)
{
	notifctl_receiver *r = arg;

	if (r->thread_started) {
		pthread_join(r->thread, NULL);
		r->thread_started = false;
	}
	r->worker_joined = true;
	recv_maybe_finished(r);
}

static void recv_http_closed(void *arg)
{
	notifctl_receiver *r = arg;

	r->http_closed = true;
	recv_maybe_finished(r);
}

void notifctl_receiver_shutdown(notifctl_receiver *r, stk_loop_fn done, void *arg)
{
	struct recv_job *queued, *j;
	size_t dropped = 0;
	char count[24];

	if (r->finished) {
		if (done)
			done(arg);
		return;
	}
	r->done = stk_reallocarray(r->done, r->ndone + 1, sizeof(*r->done));
	r->done[r->ndone].fn = done;
	r->done[r->ndone].arg = arg;
	r->ndone++;
	if (r->stopping)
		return;
	r->stopping = true;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	queued = r->qhead;
	r->qhead = r->qtail = NULL;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	/*
	 * Requests no worker took yet are answered 503 (nothing of them was applied), though
	 * the server's close below may cut the answer: the client retries either way.
	 */
	while ((j = queued) != NULL) {
		queued = j->qnext;
		j->status = 503;
		j->quiet = true;
		j->retry_after_s = RECV_BUSY_RETRY_AFTER_S;
		snprintf(j->message, sizeof(j->message), "receiver stopping; retry later");
		recv_job_done(j);
		dropped++;
	}
	if (dropped) {
		snprintf(count, sizeof(count), "%zu", dropped);
		stk_log_info("receiver stopping: queued webhooks not applied", "count", count,
			     NULL);
	}
	if (!r->thread_started)
		r->worker_joined = true;
	stk_http_server_shutdown(r->http, recv_http_closed, r);
}

static void recv_hook_done(void *arg)
{
	notifctl_receiver *r = arg;

	stk_loop_shutdown_done(r->loop);
}

void notifctl_receiver_shutdown_hook(void *r)
{
	notifctl_receiver_shutdown(r, recv_hook_done, r);
}

static void recv_release(notifctl_receiver *r)
{
	notifctl_buckets_free(r->buckets);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r->done);
	free(r);
}

/* Stops a worker that never served a request (failed start): joined here, no post. */
static void recv_stop_worker_now(notifctl_receiver *r)
{
	if (!r->thread_started)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	r->quiet_exit = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->thread_started = false;
}

int notifctl_receiver_new(notifctl_receiver **out, const struct notifctl_receiver_opts *o,
			  stk_err *err)
{
	static const char *const labels[] = {"code", "source", NULL};
	stk_http_opts ho = STK_HTTP_OPTS_INIT;
	unsigned char rnd[16];
	notifctl_receiver *r = NULL;
	double rate;
	unsigned burst;
	int rc, e;

	if (!out || !o || !o->loop || !o->kube || !o->stokers)
		return stk_err_set(err, STK_EINVAL,
				   "receiver: loop, kube and stokers are required");
	rate = o->rate_per_s != 0 ? o->rate_per_s : RECV_DEFAULT_RATE;
	burst = o->burst ? o->burst : RECV_DEFAULT_BURST;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return stk_err_set(err, STK_EIO, "receiver: no random bytes from OpenSSL");

	r = stk_calloc(1, sizeof(*r));
	r->loop = o->loop;
	r->kube = o->kube;
	r->recorder = o->recorder;
	r->stokers = o->stokers;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	memcpy(r->absent_secret, "stoker-webhook-absent-", 22);
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(r->absent_secret + 22 + 2 * i, 3, "%02x", rnd[i]);
	rc = notifctl_buckets_new(&r->buckets, rate, burst, NOTIFCTL_RECEIVER_MAX_CLIENTS, err);
	if (rc) {
		stk_err_wrap(err, "receiver");
		goto out;
	}

	/* The thread before the server: a failed start then never has to undo a server. */
	e = pthread_create(&r->thread, NULL, recv_worker, r);
	if (e) {
		rc = stk_err_errno(err, e, "receiver: worker thread");
		goto out;
	}
	r->thread_started = true;

	ho.bind_address = o->bind_address && *o->bind_address ? o->bind_address : RECV_DEFAULT_BIND;
	ho.name = "receiver";
	ho.max_body = STK_LIMIT_HTTP_BODY; /* 413 beyond, answered by the server */
	rc = stk_http_server_new(&r->http, r->loop, &ho, err);
	if (rc)
		goto out;
	/* Every method: the handler answers 405 itself, with a JSON body and a count. */
	rc = stk_http_route(r->http, "*", RECV_ROUTE, recv_handle, r, err);
	if (rc)
		goto out;
	if (o->metrics)
		r->requests = stk_metrics_counter(
			o->metrics, "stoker_receiver_requests_total",
			"Webhook receiver answers, by HTTP status code and payload source.",
			labels);
	*out = r;
	r = NULL;
out:
	OPENSSL_cleanse(rnd, sizeof(rnd));
	if (r) {
		recv_stop_worker_now(r);
		stk_http_server_free(r->http);
		recv_release(r);
	}
	return rc;
}

int notifctl_receiver_port(const notifctl_receiver *r)
{
	return stk_http_server_port(r->http);
}

void notifctl_receiver_free(notifctl_receiver *r)
{
	if (!r)
		return;
	if (!r->finished) {
		notifctl_receiver_shutdown(r, NULL, NULL);
		/* The loop is not running (main thread): run it until everything stopped. */
		while (!r->finished)
			uv_run(stk_loop_uv(r->loop), UV_RUN_ONCE);
	}
	stk_http_server_free(r->http);
	recv_release(r);
}
