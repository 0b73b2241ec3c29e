#include "artserver.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <yajl/yajl_tree.h>

#include "stk/alloc.h"
#include "stk/buf.h"
#include "stk/http.h"
#include "stk/json.h"
#include "stk/map.h"

#define ART_ROUTE	     "/gitsource/*"
#define ART_SHA_LEN	     40u
#define ART_SUFFIX	     ".tar.gz"
#define ART_SIDECAR	     ".tar.gz.sha256"
#define ART_DIGEST_PREFIX    "sha256:"
#define ART_DIGEST_LEN	     71u /* "sha256:" + 64 hex digits */
#define ART_DIGEST_SIZE	     (ART_DIGEST_LEN + 1)
#define ART_HASH_HEX	     65u /* SHA-256 of a token in hex, NUL included */
#define ART_NS_MAX	     63u
#define ART_NAME_MAX	     253u
#define ART_SA_PREFIX	     "system:serviceaccount:"
#define ART_CONTENT_TYPE     "application/gzip"
#define ART_MAX_REVIEWERS    64u
#define ART_DEFAULT_BIND     ":9090"
#define ART_DEFAULT_AUDIENCE "stoker-source"
/* Longest token sent to a TokenReview; a service account token is ~1-2 KiB. */
#define ART_MAX_TOKEN 8192u
/* Jobs (reviews and digests) queued or running at once; past this, 503 at once, so a
 * flood of distinct bogus tokens cannot queue unbounded work or API calls. */
#define ART_MAX_JOBS 256u
/* Remembered digests of artifacts that came without a sidecar. */
#define ART_DIGEST_CACHE_MAX 1024u
/* Read size when hashing an artifact. */
#define ART_READ_CHUNK (64u * 1024)
/* Retry-After when the API server could not review a token and did not say. */
#define ART_RETRY_AFTER_S 5L
/* Retry-After when too many jobs are pending, or the server is stopping. */
#define ART_BUSY_RETRY_AFTER_S 1L
/* Longest Retry-After passed on from the API server. */
#define ART_MAX_RETRY_AFTER_S 300L
/* Longest in-flight job key: "d:" + ns/name/sha + file identity. */
#define ART_JOB_KEY_MAX 512u

/* --- types ----------------------------------------------------------------------------- */

enum art_verdict_kind {
	ART_DENIED, /* not authenticated for the audience: 401 */
	ART_NOT_SA, /* authenticated, but not a service account: 403 for every namespace */
	ART_SA,	    /* a service account of `ns` */
};

struct art_verdict {
	enum art_verdict_kind kind;
	char ns[ART_NS_MAX + 1];
};

struct art_auth_entry {
	struct art_auth_entry *older, *newer;
	char key[ART_HASH_HEX];
	struct art_verdict verdict;
	uint64_t expires_ms;
};

/* Which file a digest belongs to: a replaced artifact (new inode) is hashed again. */
struct art_fileid {
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
};

struct art_digest_entry {
	struct art_digest_entry *older, *newer;
	char *key; /* "<ns>/<name>/<sha>" */
	struct art_fileid id;
	char digest[ART_DIGEST_SIZE];
};

enum art_job_kind {
	ART_JOB_REVIEW,
	ART_JOB_DIGEST,
};

struct art_req;

/*
 * A unit of blocking work. Created and freed on the loop thread; between art_submit and
 * the posted art_job_done it belongs to the reviewer thread that took it, which only
 * touches the inputs and outputs below (the queue lock and stk_loop_post order the
 * hand-overs). `waiters` and `key` are loop-thread state.
 */
struct art_job {
	srcctl_artserver *srv;
	enum art_job_kind kind;
	char *key;		 /* in srv->inflight */
	struct art_job *qnext;	 /* srv->qhead list */
	struct art_req *waiters; /* requests answered when the job is done */

	/* review input; the token is wiped and freed as soon as it was sent */
	char *token;
	size_t token_len;
	char hash[ART_HASH_HEX];
	/* digest input */
	int fd; /* a duplicate of the artifact's descriptor */
	struct art_fileid id;
	char *path_key;

	/* output */
	int rc;
	stk_err err;
	struct art_verdict verdict;
	char digest[ART_DIGEST_SIZE];
};

/* One request. Loop thread only. */
struct art_req {
	srcctl_artserver *srv;
	stk_http_exchange *ex;	     /* set once deferred */
	struct art_job *job;	     /* the job it waits for, or NULL */
	struct art_req *prev, *next; /* in job->waiters */
	char ns[ART_NS_MAX + 1];
	char name[ART_NAME_MAX + 1];
	char sha[ART_SHA_LEN + 1];
	char hash[ART_HASH_HEX];
	char *inm; /* If-None-Match, or NULL */
	int fd;	   /* the artifact, once authorized; -1 */
	struct art_fileid id;
};

/* What a processing step did with the request. */
enum art_step {
	ART_ANSWERED, /* the response is filled in */
	ART_WAITING,  /* the request waits for a job */
};

struct art_done {
	stk_loop_fn fn;
	void *arg;
};

struct srcctl_artserver {
	stk_loop *loop;
	stk_kube *kube;
	stk_http_server *http;
	stk_metrics_family *requests; /* or NULL */
	char *audience;
	char *audience_json; /* the audience as a JSON string literal */
	int root_fd;	     /* <storage> */
	uint64_t review_timeout_ms;
	uint64_t cache_ttl_ms;
	size_t cache_max;

	/* loop thread */
	stk_map auth; /* token hash (hex) -> art_auth_entry, oldest first in the list */
	struct art_auth_entry *auth_oldest, *auth_newest;
	stk_map digests; /* "<ns>/<name>/<sha>" -> art_digest_entry */
	struct art_digest_entry *dig_oldest, *dig_newest;
	stk_map inflight; /* job key -> art_job, from creation to art_job_done */
	size_t jobs;	  /* jobs created and not done */
	bool stopping, http_closed, workers_joined, finished;
	struct art_done *done;
	size_t ndone;

	/* reviewer pool */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct art_job *qhead, *qtail; /* under lock */
	bool stop;		       /* under lock: threads exit when the queue is empty */
	bool quiet_exit;	       /* under lock: the last thread does not post */
	unsigned live;		       /* under lock: threads not yet exited */
	pthread_t *threads;
	unsigned nthreads;

	atomic_uint_fast64_t n_reviews, n_review_failures, n_cache_hits, n_canceled, n_digests;
	atomic_uint_fast64_t n_pending; /* mirrors `jobs` for other threads */
};

static void art_job_done(void *arg);

/* --- small helpers --------------------------------------------------------------------- */

static void art_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool art_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool art_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 1123 label as Kubernetes checks it: [a-z0-9]([-a-z0-9]*[a-z0-9])?, 1..63 bytes. */
static bool art_dns_label(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > ART_NS_MAX || !art_alnum(s[0]) || !art_alnum(s[n - 1]))
		return false;
	for (i = 1; i + 1 < n; i++)
		if (!art_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* DNS-1123 subdomain as Kubernetes checks it: dot-separated labels, 1..253 bytes. */
static bool art_dns_subdomain(const char *s, size_t n)
{
	size_t start = 0, i;

	if (n == 0 || n > ART_NAME_MAX)
		return false;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		/* Labels inside a subdomain are not capped at 63 by Kubernetes. */
		if (i == start || !art_alnum(s[start]) || !art_alnum(s[i - 1]))
			return false;
		for (size_t j = start; j < i; j++)
			if (!art_alnum(s[j]) && s[j] != '-')
				return false;
		start = i + 1;
	}
	return true;
}

/* "<ns>/<name>/<40 hex>.tar.gz" into r; false for anything else. */
static bool art_parse_path(const char *rest, struct art_req *r)
{
	const char *name, *file;
	size_t nslen, namelen, i;

	name = strchr(rest, '/');
	if (!name || !art_dns_label(rest, (size_t)(name - rest)))
		return false;
	nslen = (size_t)(name - rest);
	name++;
	file = strchr(name, '/');
	if (!file || !art_dns_subdomain(name, (size_t)(file - name)))
		return false;
	namelen = (size_t)(file - name);
	file++;
	if (strlen(file) != ART_SHA_LEN + strlen(ART_SUFFIX) ||
	    strcmp(file + ART_SHA_LEN, ART_SUFFIX) != 0)
		return false;
	for (i = 0; i < ART_SHA_LEN; i++)
		if (!art_lower_hex(file[i]))
			return false;
	memcpy(r->ns, rest, nslen);
	r->ns[nslen] = '\0';
	memcpy(r->name, name, namelen);
	r->name[namelen] = '\0';
	memcpy(r->sha, file, ART_SHA_LEN);
	r->sha[ART_SHA_LEN] = '\0';
	return true;
}

/*
 * The token of "Authorization: Bearer <token>": visible ASCII only (it goes into JSON and
 * is hashed as sent), at most ART_MAX_TOKEN bytes. False when absent or malformed.
 */
static bool art_bearer(const char *h, const char **tok, size_t *len)
{
	size_t n = 0;

	if (!h || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return false;
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	while ((unsigned char)h[n] > 0x20 && (unsigned char)h[n] < 0x7f)
		n++;
	if (n == 0 || n > ART_MAX_TOKEN)
		return false;
	for (size_t i = n; h[i]; i++)
		if (h[i] != ' ' && h[i] != '\t')
			return false;
	*tok = h;
	*len = n;
	return true;
}

static bool art_sha256_hex(const void *data, size_t len, char out[ART_HASH_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return false;
	art_hex(md, n, out);
	OPENSSL_cleanse(md, sizeof(md));
	return true;
}

/* "sha256:" followed by exactly 64 lowercase hex digits. */
static bool art_digest_valid(const char *s, size_t len)
{
	size_t i, plen = strlen(ART_DIGEST_PREFIX);

	if (len != ART_DIGEST_LEN || memcmp(s, ART_DIGEST_PREFIX, plen) != 0)
		return false;
	for (i = plen; i < len; i++)
		if (!art_lower_hex(s[i]))
			return false;
	return true;
}

/*
 * If-None-Match against our entity tag: "*", or a comma list of entity tags compared
 * weakly (RFC 9110 13.1.2: a W/ prefix is ignored). A bare unquoted digest is accepted
 * too, as some clients send the value they stored without its quotes.
 */
static bool art_etag_match(const char *inm, const char *digest)
{
	size_t dl = strlen(digest);
	const char *p = inm, *start, *end;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			return false;
		if (*p == '*')
			return true;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p == '"') {
			start = ++p;
			end = strchr(p, '"');
			if (!end)
				return false;
			p = end + 1;
		} else {
			start = p;
			while (*p && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			end = p;
		}
		if ((size_t)(end - start) == dl && memcmp(start, digest, dl) == 0)
			return true;
	}
}

static void art_fileid_of(const struct stat *st, struct art_fileid *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static bool art_fileid_eq(const struct art_fileid *a, const struct art_fileid *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns;
}

/* --- answers --------------------------------------------------------------------------- */

static void art_count(srcctl_artserver *s, int status)
{
	char code[16];

	if (!s->requests)
		return;
	snprintf(code, sizeof(code), "%d", status);
	stk_metrics_inc(s->requests, (const char *const[]){code});
}

static enum art_step art_answer(srcctl_artserver *s, stk_http_response *resp, int status,
				const char *text)
{
	stk_http_response_text(resp, status, text);
	art_count(s, status);
	return ART_ANSWERED;
}

static enum art_step art_not_found(srcctl_artserver *s, stk_http_response *resp)
{
	return art_answer(s, resp, 404, "not found\n");
}

static enum art_step art_unauthorized(srcctl_artserver *s, stk_http_response *resp)
{
	stk_http_response_text(resp, 401, "unauthorized\n");
	stk_http_response_header(resp, "WWW-Authenticate", "Bearer", NULL);
	art_count(s, 401);
	return ART_ANSWERED;
}

static enum art_step art_unavailable(srcctl_artserver *s, stk_http_response *resp, const char *text,
				     long retry_s)
{
	char v[24];

	stk_http_response_text(resp, 503, text);
	snprintf(v, sizeof(v), "%ld", retry_s);
	stk_http_response_header(resp, "Retry-After", v, NULL);
	art_count(s, 503);
	return ART_ANSWERED;
}

/* A local failure: descriptors or memory short (503), anything else 500. */
static enum art_step art_local_error(srcctl_artserver *s, stk_http_response *resp, int code)
{
	if (code == STK_ENOTFOUND)
		return art_not_found(s, resp);
	if (code == STK_EUNAVAIL || code == STK_ECANCELED)
		return art_unavailable(s, resp, "artifact server busy\n", ART_BUSY_RETRY_AFTER_S);
	return art_answer(s, resp, 500, "internal error\n");
}

/* --- caches (loop thread) -------------------------------------------------------------- */

static void art_auth_unlink(srcctl_artserver *s, struct art_auth_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		s->auth_oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		s->auth_newest = e->older;
	e->older = e->newer = NULL;
}

static void art_auth_del(srcctl_artserver *s, struct art_auth_entry *e)
{
	art_auth_unlink(s, e);
	stk_map_del(&s->auth, e->key);
	free(e);
}

static const struct art_verdict *art_auth_get(srcctl_artserver *s, const char *key)
{
	struct art_auth_entry *e = stk_map_get(&s->auth, key);

	if (!e)
		return NULL;
	if (stk_now_ms() >= e->expires_ms) {
		art_auth_del(s, e);
		return NULL;
	}
	return &e->verdict;
}

/* Every entry lives as long, so the oldest expire first and are evicted first. */
static void art_auth_put(srcctl_artserver *s, const char *key, const struct art_verdict *v)
{
	uint64_t now = stk_now_ms();
	struct art_auth_entry *e = stk_map_get(&s->auth, key);

	if (e) {
		art_auth_unlink(s, e);
	} else {
		while (s->auth_oldest &&
		       (s->auth_oldest->expires_ms <= now || s->auth.len >= s->cache_max))
			art_auth_del(s, s->auth_oldest);
		e = stk_calloc(1, sizeof(*e));
		memcpy(e->key, key, ART_HASH_HEX);
		stk_map_put(&s->auth, e->key, e);
	}
	e->verdict = *v;
	e->expires_ms = now + s->cache_ttl_ms;
	e->older = s->auth_newest;
	if (s->auth_newest)
		s->auth_newest->newer = e;
	else
		s->auth_oldest = e;
	s->auth_newest = e;
}

static void art_digest_del(srcctl_artserver *s, struct art_digest_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		s->dig_oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		s->dig_newest = e->older;
	stk_map_del(&s->digests, e->key);
	free(e->key);
	free(e);
}

static bool art_digest_get(srcctl_artserver *s, const char *key, const struct art_fileid *id,
			   char digest[ART_DIGEST_SIZE])
{
	struct art_digest_entry *e = stk_map_get(&s->digests, key);

	if (!e)
		return false;
	if (!art_fileid_eq(&e->id, id)) {
		art_digest_del(s, e); /* the artifact was replaced */
		return false;
	}
	memcpy(digest, e->digest, ART_DIGEST_SIZE);
	return true;
}

static void art_digest_put(srcctl_artserver *s, const char *key, const struct art_fileid *id,
			   const char *digest)
{
	struct art_digest_entry *e = stk_map_get(&s->digests, key);

	if (e)
		art_digest_del(s, e);
	while (s->dig_oldest && s->digests.len >= ART_DIGEST_CACHE_MAX)
		art_digest_del(s, s->dig_oldest);
	e = stk_calloc(1, sizeof(*e));
	e->key = stk_strdup(key);
	e->id = *id;
	memcpy(e->digest, digest, ART_DIGEST_SIZE);
	stk_map_put(&s->digests, e->key, e);
	e->older = s->dig_newest;
	if (s->dig_newest)
		s->dig_newest->newer = e;
	else
		s->dig_oldest = e;
	s->dig_newest = e;
}

/* --- jobs (loop thread side) ----------------------------------------------------------- */

/* NULL when the server is stopping or too much work is pending: the caller answers 503. */
static struct art_job *art_job_new(srcctl_artserver *s, enum art_job_kind kind, const char *key)
{
	struct art_job *j;

	if (s->stopping || s->jobs >= ART_MAX_JOBS)
		return NULL;
	j = stk_calloc(1, sizeof(*j));
	j->srv = s;
	j->kind = kind;
	j->key = stk_strdup(key);
	j->fd = -1;
	stk_map_put(&s->inflight, j->key, j);
	s->jobs++;
	atomic_store(&s->n_pending, s->jobs);
	return j;
}

static void art_job_free(struct art_job *j)
{
	if (j->token) {
		OPENSSL_cleanse(j->token, j->token_len);
		free(j->token);
	}
	if (j->fd >= 0)
		close(j->fd);
	free(j->path_key);
	free(j->key);
	free(j);
}

static void art_submit(srcctl_artserver *s, struct art_job *j)
{
	pthread_mutex_lock(&s->lock);
	if (s->qtail)
		s->qtail->qnext = j;
	else
		s->qhead = j;
	s->qtail = j;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void art_wait(struct art_req *r, struct art_job *j)
{
	r->job = j;
	r->prev = NULL;
	r->next = j->waiters;
	if (j->waiters)
		j->waiters->prev = r;
	j->waiters = r;
}

static void art_unwait(struct art_req *r)
{
	if (!r->job)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		r->job->waiters = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->job = NULL;
	r->prev = r->next = NULL;
}

/* --- request processing (loop thread) -------------------------------------------------- */

static struct art_req *art_req_new(srcctl_artserver *s)
{
	struct art_req *r = stk_calloc(1, sizeof(*r));

	r->srv = s;
	r->fd = -1;
	return r;
}

static void art_req_free(struct art_req *r)
{
	if (!r)
		return;
	art_unwait(r);
	if (r->fd >= 0)
		close(r->fd);
	free(r->inm);
	free(r);
}

/* Sends the filled-in response of a deferred request and forgets the request. */
static void art_finish(struct art_req *r)
{
	stk_http_exchange_complete(r->ex);
	art_req_free(r);
}

/* 304 when If-None-Match names our digest, else the file. Takes r->fd. */
static enum art_step art_serve(struct art_req *r, stk_http_response *resp, const char *digest)
{
	srcctl_artserver *s = r->srv;
	char etag[ART_DIGEST_SIZE + 2];
	int fd = r->fd, rc;

	snprintf(etag, sizeof(etag), "\"%s\"", digest);
	r->fd = -1;
	if (r->inm && art_etag_match(r->inm, digest)) {
		close(fd);
		stk_http_response_status(resp, 304);
		stk_http_response_header(resp, "ETag", etag, NULL);
		art_count(s, 304);
		return ART_ANSWERED;
	}
	rc = stk_http_response_file_take(resp, 200, ART_CONTENT_TYPE, fd, NULL);
	if (rc)
		return art_local_error(s, resp, rc);
	stk_http_response_header(resp, "ETag", etag, NULL);
	art_count(s, 200);
	return ART_ANSWERED;
}

static int art_errno_code(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
	case ELOOP: /* a symbolic link: never followed */
	case ENAMETOOLONG:
		return STK_ENOTFOUND;
	case EMFILE:
	case ENFILE:
	case ENOMEM:
		return STK_EUNAVAIL;
	default:
		return STK_EIO;
	}
}

/* Reads <sha>.tar.gz.sha256 next to the artifact; false when missing or malformed. */
static bool art_read_sidecar(int dirfd, const char *sha, char digest[ART_DIGEST_SIZE])
{
	char name[ART_SHA_LEN + sizeof(ART_SIDECAR)], buf[128];
	size_t len = 0;
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(name, sizeof(name), "%s%s", sha, ART_SIDECAR);
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return false;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
			   buf[len - 1] == '\t'))
		len--;
	if (!art_digest_valid(buf, len))
		return false;
	memcpy(digest, buf, len);
	digest[len] = '\0';
	return true;
}

/*
 * Opens <storage>/<ns>/<name>/<sha>.tar.gz into r->fd one component at a time, refusing
 * symbolic links, and reads its sidecar digest if there is one. 0, STK_ENOTFOUND (no such
 * file, not a regular file, a symbolic link on the way), STK_EUNAVAIL (out of descriptors
 * or memory), STK_EIO.
 */
static int art_open(srcctl_artserver *s, struct art_req *r, char digest[ART_DIGEST_SIZE],
		    bool *have_digest)
{
	const int dflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	char file[ART_SHA_LEN + sizeof(ART_SUFFIX)];
	int nsfd = -1, namefd = -1, fd = -1, rc = 0, fl;
	struct stat st;

	nsfd = openat(s->root_fd, r->ns, dflags);
	if (nsfd < 0)
		goto fail;
	namefd = openat(nsfd, r->name, dflags);
	if (namefd < 0)
		goto fail;
	snprintf(file, sizeof(file), "%s%s", r->sha, ART_SUFFIX);
	/* O_NONBLOCK: a FIFO planted there must not block the loop in open(2). */
	fd = openat(namefd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		rc = STK_ENOTFOUND;
		goto out;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	*have_digest = art_read_sidecar(namefd, r->sha, digest);
	art_fileid_of(&st, &r->id);
	r->fd = fd;
	fd = -1;
	goto out;
fail:
	rc = art_errno_code(errno);
out:
	if (fd >= 0)
		close(fd);
	if (namefd >= 0)
		close(namefd);
	if (nsfd >= 0)
		close(nsfd);
	return rc;
}

/* The caller is allowed to download: open the artifact, find its digest, answer. */
static enum art_step art_deliver(struct art_req *r, stk_http_response *resp)
{
	srcctl_artserver *s = r->srv;
	char digest[ART_DIGEST_SIZE], path_key[ART_NS_MAX + ART_NAME_MAX + ART_SHA_LEN + 3];
	char key[ART_JOB_KEY_MAX];
	bool have = false;
	struct art_job *j;
	int rc, dupfd;

	rc = art_open(s, r, digest, &have);
	if (rc)
		return art_local_error(s, resp, rc);
	snprintf(path_key, sizeof(path_key), "%s/%s/%s", r->ns, r->name, r->sha);
	if (have || art_digest_get(s, path_key, &r->id, digest))
		return art_serve(r, resp, digest);

	/* No sidecar: hash the file on a worker, once, however many requests want it. */
	snprintf(key, sizeof(key), "d:%s:%llu:%llu:%lld:%lld", path_key,
		 (unsigned long long)r->id.dev, (unsigned long long)r->id.ino,
		 (long long)r->id.size, (long long)r->id.mtime_ns);
	j = stk_map_get(&s->inflight, key);
	if (!j) {
		dupfd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
		if (dupfd < 0)
			return art_local_error(s, resp, art_errno_code(errno));
		j = art_job_new(s, ART_JOB_DIGEST, key);
		if (!j) {
			close(dupfd);
			return art_unavailable(s, resp, "artifact server busy\n",
					       ART_BUSY_RETRY_AFTER_S);
		}
		j->fd = dupfd;
		j->id = r->id;
		j->path_key = stk_strdup(path_key);
		art_submit(s, j);
	}
	art_wait(r, j);
	return ART_WAITING;
}

/* Applies a review's outcome (rc != 0: the API call failed) to the request. */
static enum art_step art_authorize(struct art_req *r, stk_http_response *resp, int rc,
				   const stk_err *err, const struct art_verdict *v)
{
	srcctl_artserver *s = r->srv;
	long retry_s = ART_RETRY_AFTER_S;

	if (rc == STK_ECANCELED)
		return art_unavailable(s, resp, "artifact server stopping\n",
				       ART_BUSY_RETRY_AFTER_S);
	if (rc) {
		/* The API server could not say: the client should retry, not give up. */
		if (err && err->retry_after_ms > 0)
			retry_s = (err->retry_after_ms + 999) / 1000;
		if (retry_s > ART_MAX_RETRY_AFTER_S)
			retry_s = ART_MAX_RETRY_AFTER_S;
		return art_unavailable(s, resp, "token review unavailable\n", retry_s);
	}
	if (v->kind == ART_DENIED)
		return art_unauthorized(s, resp);
	if (v->kind != ART_SA || strcmp(v->ns, r->ns) != 0)
		return art_answer(s, resp, 403, "forbidden\n");
	return art_deliver(r, resp);
}

/* Looks the token up in the cache, else joins or starts its review. */
static enum art_step art_authenticate(struct art_req *r, stk_http_response *resp, const char *token,
				      size_t token_len)
{
	srcctl_artserver *s = r->srv;
	const struct art_verdict *v = art_auth_get(s, r->hash);
	char key[ART_HASH_HEX + 2];
	struct art_job *j;

	if (v) {
		atomic_fetch_add(&s->n_cache_hits, 1);
		return art_authorize(r, resp, 0, NULL, v);
	}
	snprintf(key, sizeof(key), "r:%s", r->hash);
	j = stk_map_get(&s->inflight, key);
	if (!j) {
		j = art_job_new(s, ART_JOB_REVIEW, key);
		if (!j)
			return art_unavailable(s, resp, "artifact server busy\n",
					       ART_BUSY_RETRY_AFTER_S);
		j->token = stk_malloc(token_len + 1);
		memcpy(j->token, token, token_len);
		j->token[token_len] = '\0';
		j->token_len = token_len;
		memcpy(j->hash, r->hash, ART_HASH_HEX);
		art_submit(s, j);
	}
	art_wait(r, j);
	return ART_WAITING;
}

/* The client went away (or the server stopped) while the request waited for a job. */
static void art_on_cancel(void *arg)
{
	struct art_req *r = arg;

	atomic_fetch_add(&r->srv->n_canceled, 1);
	art_unwait(r);
	art_finish(r);
}

static int art_handle(const stk_http_request *hreq, stk_http_response *resp, void *arg)
{
	srcctl_artserver *s = arg;
	struct art_req *r = art_req_new(s);
	const char *token = NULL, *inm;
	size_t token_len = 0;

	/* The path's shape first: a malformed one never reaches the API or the disk. */
	if (!art_parse_path(hreq->route_rest, r)) {
		art_not_found(s, resp);
		goto done;
	}
	if (!art_bearer(stk_http_request_header(hreq, "Authorization"), &token, &token_len)) {
		art_unauthorized(s, resp);
		goto done;
	}
	if (!art_sha256_hex(token, token_len, r->hash)) {
		art_answer(s, resp, 500, "internal error\n");
		goto done;
	}
	inm = stk_http_request_header(hreq, "If-None-Match");
	if (inm)
		r->inm = stk_strdup(inm);
	if (art_authenticate(r, resp, token, token_len) == ART_WAITING) {
		/* No job can finish before this returns: they finish on this thread. */
		r->ex = stk_http_defer(hreq);
		stk_http_exchange_on_cancel(r->ex, art_on_cancel, r);
		return STK_HTTP_DEFERRED;
	}
done:
	art_req_free(r);
	return STK_HTTP_DONE;
}

/* --- jobs (reviewer threads) ----------------------------------------------------------- */

/*
 * The TokenReview body, built in one exact-size allocation so no stale copy of the token
 * is left behind by a reallocation. The token is visible ASCII (art_bearer): only '"' and
 * '\' need escaping.
 */
static char *art_review_body(const struct art_job *j, size_t *out_len)
{
	static const char pre[] = "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":"
				  "\"TokenReview\",\"spec\":{\"token\":\"";
	static const char mid[] = "\",\"audiences\":[";
	static const char post[] = "]}}";
	const char *aud = j->srv->audience_json;
	size_t alen = strlen(aud), cap, n = 0, i;
	char *b;

	cap = sizeof(pre) + 2 * j->token_len + sizeof(mid) + alen + sizeof(post);
	b = stk_malloc(cap);
	memcpy(b, pre, sizeof(pre) - 1);
	n = sizeof(pre) - 1;
	for (i = 0; i < j->token_len; i++) {
		if (j->token[i] == '"' || j->token[i] == '\\')
			b[n++] = '\\';
		b[n++] = j->token[i];
	}
	memcpy(b + n, mid, sizeof(mid) - 1);
	n += sizeof(mid) - 1;
	memcpy(b + n, aud, alen);
	n += alen;
	memcpy(b + n, post, sizeof(post));
	n += sizeof(post) - 1;
	*out_len = n;
	return b;
}

static void art_review_decode(yajl_val out, const char *audience, struct art_verdict *v)
{
	const size_t plen = strlen(ART_SA_PREFIX);
	bool authenticated = false, for_us = false;
	const char *user, *ns, *colon;
	yajl_val auds;
	size_t i;

	memset(v, 0, sizeof(*v));
	v->kind = ART_DENIED;
	if (!stk_json_bool(out, &authenticated, "status", "authenticated", NULL) || !authenticated)
		return;
	auds = stk_json_arr(out, "status", "audiences", NULL);
	for (i = 0; auds && i < auds->u.array.len; i++) {
		yajl_val a = auds->u.array.values[i];
		if (YAJL_IS_STRING(a) && strcmp(a->u.string, audience) == 0)
			for_us = true;
	}
	if (!for_us)
		return;
	v->kind = ART_NOT_SA;
	user = stk_json_str(out, "status", "user", "username", NULL);
	if (!user || strncmp(user, ART_SA_PREFIX, plen) != 0)
		return;
	ns = user + plen;
	colon = strchr(ns, ':');
	if (!colon || !art_dns_label(ns, (size_t)(colon - ns)) || colon[1] == '\0' ||
	    strchr(colon + 1, ':'))
		return;
	memcpy(v->ns, ns, (size_t)(colon - ns));
	v->ns[colon - ns] = '\0';
	v->kind = ART_SA;
}

/* The API server echoes spec.token in its answer: wipe that copy too. */
static void art_wipe_echo(yajl_val out)
{
	yajl_val t = stk_json_get(out, "spec", "token", NULL);

	if (t && YAJL_IS_STRING(t) && t->u.string)
		OPENSSL_cleanse(t->u.string, strlen(t->u.string));
}

static void art_review_run(srcctl_artserver *s, struct art_job *j)
{
	stk_buf path = STK_BUF_INIT(256);
	struct stk_kube_request req = {"POST", NULL, NULL, NULL, NULL, 0, s->review_timeout_ms};
	yajl_val out = NULL;
	size_t len = 0;
	char *body;
	int rc;

	atomic_fetch_add(&s->n_reviews, 1);
	body = art_review_body(j, &len);
	/* The token is not needed past this point. */
	OPENSSL_cleanse(j->token, j->token_len);
	free(j->token);
	j->token = NULL;
	rc = stk_kube_path(&path, &STK_GVR_TOKENREVIEWS, NULL, NULL, NULL, &j->err);
	if (!rc) {
		req.path = path.ptr;
		req.body = body;
		req.body_len = len;
		rc = stk_kube_do(s->kube, &req, &out, &j->err);
	}
	if (!rc)
		art_review_decode(out, s->audience, &j->verdict);
	else
		atomic_fetch_add(&s->n_review_failures, 1);
	art_wipe_echo(out);
	yajl_tree_free(out);
	OPENSSL_cleanse(body, len);
	free(body);
	stk_buf_release(&path);
	j->rc = rc;
}

static void art_digest_run(srcctl_artserver *s, struct art_job *j)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = stk_malloc(ART_READ_CHUNK), md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	off_t off = 0;
	ssize_t n;
	int rc = 0;

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = stk_err_set(&j->err, STK_EIO, "sha256: OpenSSL failed to initialise");
		goto out;
	}
	for (;;) {
		n = pread(j->fd, buf, ART_READ_CHUNK, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = stk_err_errno(&j->err, errno, "read artifact %s", j->path_key);
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			rc = stk_err_set(&j->err, STK_EIO, "sha256: OpenSSL update failed");
			goto out;
		}
		off += n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		rc = stk_err_set(&j->err, STK_EIO, "sha256: OpenSSL final failed");
		goto out;
	}
	memcpy(j->digest, ART_DIGEST_PREFIX, strlen(ART_DIGEST_PREFIX));
	art_hex(md, mdlen, j->digest + strlen(ART_DIGEST_PREFIX));
	atomic_fetch_add(&s->n_digests, 1);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	j->rc = rc;
}

static void art_workers_gone(void *arg);

static void *art_worker(void *arg)
{
	srcctl_artserver *s = arg;
	struct art_job *j;
	bool last, post;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (!s->qhead && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		j = s->qhead;
		if (j) {
			s->qhead = j->qnext;
			if (!s->qhead)
				s->qtail = NULL;
			j->qnext = NULL;
		}
		pthread_mutex_unlock(&s->lock);
		if (!j)
			break;
		if (j->kind == ART_JOB_REVIEW)
			art_review_run(s, j);
		else
			art_digest_run(s, j);
		stk_loop_post(s->loop, art_job_done, j);
	}
	pthread_mutex_lock(&s->lock);
	last = --s->live == 0;
	post = last && !s->quiet_exit;
	pthread_mutex_unlock(&s->lock);
	/* Posted after this thread's last job, so it runs after that job's completion. */
	if (post)
		stk_loop_post(s->loop, art_workers_gone, s);
	return NULL;
}

/* --- completion and shutdown (loop thread) --------------------------------------------- */

static void art_maybe_finished(srcctl_artserver *s)
{
	struct art_done *done;
	size_t n, i;

	if (!s->stopping || s->finished || !s->http_closed || !s->workers_joined || s->jobs > 0)
		return;
	s->finished = true;
	/* A `done` may free the server: work from a detached copy. */
	done = s->done;
	n = s->ndone;
	s->done = NULL;
	s->ndone = 0;
	for (i = 0; i < n; i++)
		if (done[i].fn)
			done[i].fn(done[i].arg);
	free(done);
}

static void art_job_done(void *arg)
{
	struct art_job *j = arg;
	srcctl_artserver *s = j->srv;
	struct art_req *r;
	enum art_step step;

	stk_map_del(&s->inflight, j->key);
	if (!j->rc && j->kind == ART_JOB_REVIEW)
		art_auth_put(s, j->hash, &j->verdict);
	if (!j->rc && j->kind == ART_JOB_DIGEST)
		art_digest_put(s, j->path_key, &j->id, j->digest);
	while ((r = j->waiters) != NULL) {
		stk_http_response *resp = stk_http_exchange_response(r->ex);

		art_unwait(r);
		if (j->kind == ART_JOB_REVIEW)
			step = art_authorize(r, resp, j->rc, &j->err, &j->verdict);
		else if (j->rc)
			step = art_local_error(s, resp, j->rc);
		else
			step = art_serve(r, resp, j->digest);
		if (step == ART_ANSWERED)
			art_finish(r);
	}
	art_job_free(j);
	s->jobs--;
	atomic_store(&s->n_pending, s->jobs);
	art_maybe_finished(s);
}

static void art_join(srcctl_artserver *s)
{
	unsigned i;

	for (i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	s->nthreads = 0;
}

static void art_workers_gone(void *arg)
{
	srcctl_artserver *s = arg;

	art_join(s);
	s->workers_joined = true;
	art_maybe_finished(s);
}

static void art_http_closed(void *arg)
{
	srcctl_artserver *s = arg;

	s->http_closed = true;
	art_maybe_finished(s);
}

void srcctl_artserver_shutdown(srcctl_artserver *s, stk_loop_fn done, void *arg)
{
	struct art_job *queued, *j;

	if (s->finished) {
		if (done)
			done(arg);
		return;
	}
	s->done = stk_reallocarray(s->done, s->ndone + 1, sizeof(*s->done));
	s->done[s->ndone].fn = done;
	s->done[s->ndone].arg = arg;
	s->ndone++;
	if (s->stopping)
		return;
	s->stopping = true;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	queued = s->qhead;
	s->qhead = s->qtail = NULL;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	/* Jobs no thread took yet are dropped; their waiters get a 503. */
	while ((j = queued) != NULL) {
		queued = j->qnext;
		j->rc = stk_err_set(&j->err, STK_ECANCELED, "artifact server stopping");
		art_job_done(j);
	}
	stk_http_server_shutdown(s->http, art_http_closed, s);
}

static void art_hook_done(void *arg)
{
	srcctl_artserver *s = arg;

	stk_loop_shutdown_done(s->loop);
}

void srcctl_artserver_shutdown_hook(void *s)
{
	srcctl_artserver_shutdown(s, art_hook_done, s);
}

/* --- lifecycle ------------------------------------------------------------------------- */

/* Stops threads that never served a job (failed start): joins them here, no post. */
static void art_stop_threads_now(srcctl_artserver *s)
{
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	s->quiet_exit = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	art_join(s);
}

static void art_release(srcctl_artserver *s)
{
	struct art_auth_entry *a;
	struct art_digest_entry *d;

	while ((a = s->auth_oldest) != NULL)
		art_auth_del(s, a);
	while ((d = s->dig_oldest) != NULL)
		art_digest_del(s, d);
	stk_map_release(&s->auth);
	stk_map_release(&s->digests);
	stk_map_release(&s->inflight);
	if (s->root_fd >= 0)
		close(s->root_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->threads);
	free(s->done);
	free(s->audience);
	free(s->audience_json);
	free(s);
}

int srcctl_artserver_new(srcctl_artserver **out, const struct srcctl_artserver_opts *o,
			 stk_err *err)
{
	static const char *const labels[] = {"code", NULL};
	stk_http_opts ho = STK_HTTP_OPTS_INIT;
	stk_buf aud = STK_BUF_INIT(4096);
	srcctl_artserver *s = NULL;
	unsigned reviewers, i;
	int rc = 0, e;

	if (!out || !o || !o->loop || !o->kube || !o->storage_path || !*o->storage_path)
		return stk_err_set(err, STK_EINVAL,
				   "artifact server: loop, kube and storage_path are required");
	reviewers = o->reviewers ? o->reviewers : 2;
	if (reviewers > ART_MAX_REVIEWERS)
		return stk_err_set(err, STK_EINVAL, "artifact server: reviewers must be 1..%u",
				   ART_MAX_REVIEWERS);

	s = stk_calloc(1, sizeof(*s));
	s->root_fd = -1;
	s->loop = o->loop;
	s->kube = o->kube;
	s->review_timeout_ms = o->review_timeout_ms ? o->review_timeout_ms : 5000;
	s->cache_ttl_ms = o->cache_ttl_ms ? o->cache_ttl_ms : 60000;
	s->cache_max = o->cache_max ? o->cache_max : 4096;
	s->audience = stk_strdup(o->audience && *o->audience ? o->audience : ART_DEFAULT_AUDIENCE);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (stk_buf_put_json_string(&aud, s->audience, strlen(s->audience)) != 0) {
		rc = stk_err_set(err, STK_EINVAL, "artifact server: audience too long");
		goto out;
	}
	s->audience_json = stk_buf_detach(&aud, NULL);

	s->root_fd = open(o->storage_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0) {
		e = errno;
		if (e == ENOENT || e == ENOTDIR)
			rc = stk_err_set(err, STK_ENOTFOUND, "artifact server: storage path %s: %s",
					 o->storage_path, strerror(e));
		else
			rc = stk_err_errno(err, e, "artifact server: storage path %s",
					   o->storage_path);
		goto out;
	}

	/* Threads before the HTTP server: a failed start then never has to undo a server. */
	s->threads = stk_calloc(reviewers, sizeof(*s->threads));
	for (i = 0; i < reviewers; i++) {
		pthread_mutex_lock(&s->lock);
		s->live++;
		pthread_mutex_unlock(&s->lock);
		e = pthread_create(&s->threads[i], NULL, art_worker, s);
		if (e) {
			pthread_mutex_lock(&s->lock);
			s->live--;
			pthread_mutex_unlock(&s->lock);
			rc = stk_err_errno(err, e, "artifact server: reviewer thread");
			goto out;
		}
		s->nthreads++;
	}

	ho.bind_address = o->bind_address && *o->bind_address ? o->bind_address : ART_DEFAULT_BIND;
	ho.name = "artifact";
	ho.max_body = 4096; /* GET and HEAD only: no request carries a body */
	rc = stk_http_server_new(&s->http, s->loop, &ho, err);
	if (rc)
		goto out;
	rc = stk_http_route(s->http, "GET", ART_ROUTE, art_handle, s, err);
	if (rc)
		goto out;
	if (o->metrics)
		s->requests = stk_metrics_counter(
			o->metrics, "stoker_artifact_requests_total",
			"Artifact download requests answered, by HTTP status code.", labels);
	*out = s;
	s = NULL;
out:
	stk_buf_release(&aud);
	if (s) {
		art_stop_threads_now(s);
		stk_http_server_free(s->http);
		art_release(s);
	}
	return rc;
}

int srcctl_artserver_port(const srcctl_artserver *s)
{
	return stk_http_server_port(s->http);
}

void srcctl_artserver_stats(const srcctl_artserver *s, struct srcctl_artserver_stats *out)
{
	srcctl_artserver *m = (srcctl_artserver *)s; /* atomic loads take non-const */

	out->reviews = atomic_load(&m->n_reviews);
	out->review_failures = atomic_load(&m->n_review_failures);
	out->cache_hits = atomic_load(&m->n_cache_hits);
	out->canceled = atomic_load(&m->n_canceled);
	out->digests = atomic_load(&m->n_digests);
	out->pending = atomic_load(&m->n_pending);
}

void srcctl_artserver_free(srcctl_artserver *s)
{
	if (!s)
		return;
	if (!s->finished) {
		srcctl_artserver_shutdown(s, NULL, NULL);
		/* The loop is not running (main thread): run it until everything stopped. */
		while (!s->finished)
			uv_run(stk_loop_uv(s->loop), UV_RUN_ONCE);
	}
	stk_http_server_free(s->http);
	art_release(s);
}
