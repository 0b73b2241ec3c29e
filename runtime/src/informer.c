#include "stk/informer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"
#include "stk/json.h"
#include "stk/limits.h"
#include "stk/lines.h"
#include "stk/log.h"
#include "stk/map.h"

/* ---- objects ----------------------------------------------------------------------- */

int stk_obj_new_take(stk_obj **out, yajl_val root, stk_err *err)
{
	stk_obj *o;
	const char *name = stk_json_str(root, "metadata", "name", NULL);

	if (!name || !*name) {
		yajl_tree_free(root);
		return stk_err_set(err, STK_EINVAL, "object has no metadata.name");
	}
	o = stk_calloc(1, sizeof(*o));
	o->root = root;
	o->name = name;
	o->ns = stk_json_str(root, "metadata", "namespace", NULL);
	if (!o->ns)
		o->ns = "";
	o->uid = stk_json_str(root, "metadata", "uid", NULL);
	o->rv = stk_json_str(root, "metadata", "resourceVersion", NULL);
	if (!o->rv)
		o->rv = "";
	stk_json_int(root, &o->generation, "metadata", "generation", NULL);
	atomic_init(&o->refs, 1);
	*out = o;
	return 0;
}

stk_obj *stk_obj_ref(stk_obj *o)
{
	if (o)
		atomic_fetch_add(&o->refs, 1);
	return o;
}

void stk_obj_unref(stk_obj *o)
{
	if (o && atomic_fetch_sub(&o->refs, 1) == 1) {
		yajl_tree_free(o->root);
		free(o);
	}
}

/* ---- label selectors ------------------------------------------------------------- */

static const char *labels_value(yajl_val labels, const char *key, size_t klen)
{
	if (!labels || !YAJL_IS_OBJECT(labels))
		return NULL;
	for (size_t i = 0; i < labels->u.object.len; i++) {
		const char *k = labels->u.object.keys[i];
		yajl_val v = labels->u.object.values[i];
		if (strlen(k) == klen && !memcmp(k, key, klen))
			return YAJL_IS_STRING(v) ? v->u.string : "";
	}
	return NULL;
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

int stk_labels_match(yajl_val labels, const char *selector, stk_err *err)
{
	const char *p = selector;
	int match = 1;

	if (!selector)
		return 1;
	while (*p) {
		const char *end = strchr(p, ',');
		const char *ks, *ke, *vs = NULL, *ve = NULL, *op;
		bool neg = false, exists_only = false;
		const char *have;

		if (!end)
			end = p + strlen(p);
		ks = p;
		ke = end;
		trim(&ks, &ke);
		if (ks == ke)
			return stk_err_set(err, STK_EINVAL,
					   "empty requirement in selector \"%.80s\"", selector);
		op = memchr(ks, '=', (size_t)(ke - ks));
		if (!op) {
			exists_only = true;
			if (*ks == '!') {
				neg = true;
				ks++;
			}
		} else {
			vs = op + 1;
			ve = ke;
			ke = op;
			if (ke > ks && ke[-1] == '!') {
				neg = true;
				ke--;
			} else if (vs < ve && *vs == '=') {
				vs++;
			}
			trim(&ks, &ke);
			trim(&vs, &ve);
		}
		if (ks == ke || memchr(ks, ' ', (size_t)(ke - ks)) ||
		    memchr(ks, '!', (size_t)(ke - ks)) ||
		    (vs && memchr(vs, '=', (size_t)(ve - vs))))
			return stk_err_set(err, STK_EINVAL, "malformed selector \"%.80s\"",
					   selector);
		have = labels_value(labels, ks, (size_t)(ke - ks));
		if (exists_only) {
			if ((have != NULL) == neg)
				match = 0;
		} else {
			bool eq = have && strlen(have) == (size_t)(ve - vs) &&
				  !memcmp(have, vs, (size_t)(ve - vs));
			if (eq == neg)
				match = 0;
		}
		p = *end ? end + 1 : end;
	}
	return match;
}

/* ---- informer ---------------------------------------------------------------------- */

#define INF_MAX_HANDLERS 8

enum inf_state {
	INF_STOPPED,
	INF_LISTING,
	INF_WATCHING,
	INF_WAITING
};

struct stk_informer {
	stk_loop *loop;
	stk_curlm *curlm;
	stk_kube *kube;
	struct stk_informer_opts opts;
	char *ns, *label_selector, *field_selector;

	struct stk_informer_handler handlers[INF_MAX_HANDLERS];
	size_t nhandlers;

	/* The cache: namespace → (name → stk_obj*). Written on the loop thread only. */
	pthread_rwlock_t lock;
	stk_map spaces;
	size_t count;
	atomic_bool synced;

	enum inf_state state;
	CURL *easy;
	struct curl_slist *headers;
	stk_buf body;	   /* list response, or a watch's non-200 answer */
	stk_lines lines;   /* watch stream */
	long http_status;  /* of the running transfer, once known */
	bool need_relist;  /* the watch said 410 */
	bool stream_error; /* a watch line could not be used */
	char *rv;	   /* resume point */
	char *cont;	   /* list continue token */
	stk_map snapshot;  /* list in progress: key → stk_obj* */
	uint64_t backoff_ms;
	uv_timer_t retry_timer, idle_timer, resync_timer;
	int timers_open; /* while closing: timers whose close callback has not run */

	pthread_mutex_t stats_lock;
	struct stk_informer_stats stats;
	char last_error[STK_ERR_MESSAGE_MAX + 64];
	struct stk_log_repeat logged; /* loop thread */
};

static void inf_list_begin(stk_informer *inf);
static void inf_watch_begin(stk_informer *inf);

static void inf_stat(stk_informer *inf, size_t offset)
{
	pthread_mutex_lock(&inf->stats_lock);
	(*(uint64_t *)((char *)&inf->stats + offset))++;
	pthread_mutex_unlock(&inf->stats_lock);
}

#define INF_STAT(inf, field) inf_stat((inf), offsetof(struct stk_informer_stats, field))

#define INF_LOG_REPEAT_MS (5 * 60 * 1000)

/*
 * Counts a failure, remembers its description for stk_informer_last_error and logs it:
 * a daemon whose RBAC lacks a list or watch verb must say so. The same message is
 * logged again only every INF_LOG_REPEAT_MS, as retries repeat it. Loop thread.
 */
static void inf_error(stk_informer *inf, const char *what, const stk_err *err)
{
	char msg[sizeof(inf->last_error)];

	snprintf(msg, sizeof(msg), "%s%s%s", what, err && err->message[0] ? ": " : "",
		 err ? err->message : "");
	pthread_mutex_lock(&inf->stats_lock);
	inf->stats.errors++;
	memcpy(inf->last_error, msg, sizeof(msg));
	pthread_mutex_unlock(&inf->stats_lock);
	if (stk_log_repeat_due(&inf->logged, msg, INF_LOG_REPEAT_MS)) {
		stk_log_warn("cannot list or watch; retrying", "resource", inf->opts.gvr->resource,
			     "namespace", inf->ns ? inf->ns : "", "error", msg, NULL);
	}
}

static char *inf_dup(const char *s)
{
	return s && *s ? stk_strdup(s) : NULL;
}

int stk_informer_new(stk_informer **out, stk_loop *loop, stk_curlm *curlm, stk_kube *kube,
		     const struct stk_informer_opts *opts, stk_err *err)
{
	stk_informer *inf;

	if (!opts || !opts->gvr)
		return stk_err_set(err, STK_EINVAL, "informer needs a resource type");
	inf = stk_calloc(1, sizeof(*inf));
	inf->loop = loop;
	inf->curlm = curlm;
	inf->kube = kube;
	inf->opts = *opts;
	inf->ns = inf_dup(opts->ns);
	inf->label_selector = inf_dup(opts->label_selector);
	inf->field_selector = inf_dup(opts->field_selector);
	if (!inf->opts.idle_timeout_ms)
		inf->opts.idle_timeout_ms = 120000;
	if (inf->opts.watch_timeout_s <= 0)
		inf->opts.watch_timeout_s = 300 + (int64_t)arc4random_uniform(300);
	if (inf->opts.page_size <= 0)
		inf->opts.page_size = 500;
	if (!inf->opts.backoff_min_ms)
		inf->opts.backoff_min_ms = 800;
	if (!inf->opts.backoff_max_ms)
		inf->opts.backoff_max_ms = 30000;
	pthread_rwlock_init(&inf->lock, NULL);
	pthread_mutex_init(&inf->stats_lock, NULL);
	stk_buf_init(&inf->body, STK_LIMIT_API_BODY);
	stk_lines_init(&inf->lines, STK_LIMIT_WATCH_LINE);
	uv_timer_init(stk_loop_uv(loop), &inf->retry_timer);
	uv_timer_init(stk_loop_uv(loop), &inf->idle_timer);
	uv_timer_init(stk_loop_uv(loop), &inf->resync_timer);
	inf->retry_timer.data = inf->idle_timer.data = inf->resync_timer.data = inf;
	inf->rv = stk_strdup("");
	*out = inf;
	return 0;
}

void stk_informer_add_handler(stk_informer *inf, const struct stk_informer_handler *h)
{
	if (inf->nhandlers == INF_MAX_HANDLERS) {
		fprintf(stderr, "fatal: more than %d informer handlers\n", INF_MAX_HANDLERS);
		abort();
	}
	inf->handlers[inf->nhandlers++] = *h;
}

bool stk_informer_synced(stk_informer *inf)
{
	return atomic_load(&inf->synced);
}

const char *stk_informer_resource_version(stk_informer *inf)
{
	return inf->rv;
}

void stk_informer_last_error(stk_informer *inf, char *buf, size_t cap)
{
	pthread_mutex_lock(&inf->stats_lock);
	snprintf(buf, cap, "%s", inf->last_error);
	pthread_mutex_unlock(&inf->stats_lock);
}

void stk_informer_stats(stk_informer *inf, struct stk_informer_stats *out)
{
	pthread_mutex_lock(&inf->stats_lock);
	*out = inf->stats;
	pthread_mutex_unlock(&inf->stats_lock);
}

/* ---- cache ------------------------------------------------------------------------- */

/* Replaces or inserts; returns the previous object (reference transferred) or NULL. */
static stk_obj *cache_put(stk_informer *inf, stk_obj *o)
{
	stk_map *names;
	stk_obj *old;

	pthread_rwlock_wrlock(&inf->lock);
	names = stk_map_get(&inf->spaces, o->ns);
	if (!names) {
		names = stk_calloc(1, sizeof(*names));
		stk_map_put(&inf->spaces, o->ns, names);
	}
	old = stk_map_put(names, o->name, o);
	if (!old)
		inf->count++;
	pthread_rwlock_unlock(&inf->lock);
	return old;
}

/* Removes; returns the removed object (reference transferred) or NULL. */
static stk_obj *cache_del(stk_informer *inf, const char *ns, const char *name)
{
	stk_map *names;
	stk_obj *old = NULL;

	pthread_rwlock_wrlock(&inf->lock);
	names = stk_map_get(&inf->spaces, ns);
	if (names) {
		old = stk_map_del(names, name);
		if (old)
			inf->count--;
		if (names->len == 0) {
			stk_map_del(&inf->spaces, ns);
			stk_map_release(names);
			free(names);
		}
	}
	pthread_rwlock_unlock(&inf->lock);
	return old;
}

stk_obj *stk_informer_get(stk_informer *inf, const char *ns, const char *name)
{
	stk_map *names;
	stk_obj *o = NULL;

	pthread_rwlock_rdlock(&inf->lock);
	names = stk_map_get(&inf->spaces, ns ? ns : "");
	if (names)
		o = stk_obj_ref(stk_map_get(names, name));
	pthread_rwlock_unlock(&inf->lock);
	return o;
}

size_t stk_informer_len(stk_informer *inf)
{
	size_t n;

	pthread_rwlock_rdlock(&inf->lock);
	n = inf->count;
	pthread_rwlock_unlock(&inf->lock);
	return n;
}

static int each_in(stk_map *names, const char *selector, int (*fn)(stk_obj *, void *), void *arg,
		   stk_err *err)
{
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;
	int rc = 0;

	while (!rc && (e = stk_map_next(names, &it)) != NULL) {
		stk_obj *o = e->value;
		if (selector) {
			rc = stk_labels_match(stk_json_obj(o->root, "metadata", "labels", NULL),
					      selector, err);
			if (rc < 0)
				return rc;
			if (rc == 0)
				continue;
		}
		rc = fn(o, arg);
	}
	return rc;
}

int stk_informer_each(stk_informer *inf, const char *ns, const char *selector,
		      int (*fn)(stk_obj *obj, void *arg), void *arg, stk_err *err)
{
	int rc = 0;

	/* Validate the selector once, up front, so an empty cache still reports it. */
	if (selector && stk_labels_match(NULL, selector, err) < 0)
		return STK_EINVAL;
	pthread_rwlock_rdlock(&inf->lock);
	if (ns) {
		stk_map *names = stk_map_get(&inf->spaces, ns);
		if (names)
			rc = each_in(names, selector, fn, arg, err);
	} else {
		struct stk_map_iter it = {0};
		struct stk_map_entry *e;
		while (!rc && (e = stk_map_next(&inf->spaces, &it)) != NULL)
			rc = each_in(e->value, selector, fn, arg, err);
	}
	pthread_rwlock_unlock(&inf->lock);
	return rc;
}

static void notify_add(stk_informer *inf, stk_obj *o)
{
	for (size_t i = 0; i < inf->nhandlers; i++)
		if (inf->handlers[i].on_add)
			inf->handlers[i].on_add(o, inf->handlers[i].arg);
}

static void notify_update(stk_informer *inf, stk_obj *old, stk_obj *cur)
{
	for (size_t i = 0; i < inf->nhandlers; i++)
		if (inf->handlers[i].on_update)
			inf->handlers[i].on_update(old, cur, inf->handlers[i].arg);
}

static void notify_delete(stk_informer *inf, stk_obj *o)
{
	for (size_t i = 0; i < inf->nhandlers; i++)
		if (inf->handlers[i].on_delete)
			inf->handlers[i].on_delete(o, inf->handlers[i].arg);
}

/* Applies an upsert; takes the caller's reference to `o`. */
static void apply_upsert(stk_informer *inf, stk_obj *o)
{
	stk_obj *old = cache_put(inf, stk_obj_ref(o));

	if (old) {
		notify_update(inf, old, o);
		stk_obj_unref(old);
	} else {
		notify_add(inf, o);
	}
	stk_obj_unref(o);
}

static void apply_delete(stk_informer *inf, const char *ns, const char *name)
{
	stk_obj *old = cache_del(inf, ns, name);

	if (old) {
		notify_delete(inf, old);
		stk_obj_unref(old);
	}
}

static void inf_set_rv(stk_informer *inf, const char *rv)
{
	if (rv && *rv && strcmp(rv, inf->rv)) {
		free(inf->rv);
		inf->rv = stk_strdup(rv);
	}
}

/* ---- transfers --------------------------------------------------------------------- */

static void inf_end_transfer(stk_informer *inf)
{
	if (inf->easy) {
		stk_curlm_remove(inf->curlm, inf->easy);
		curl_easy_cleanup(inf->easy);
		inf->easy = NULL;
	}
	curl_slist_free_all(inf->headers);
	inf->headers = NULL;
	uv_timer_stop(&inf->idle_timer);
}

static void inf_on_retry(uv_timer_t *t)
{
	stk_informer *inf = t->data;

	if (inf->need_relist || !atomic_load(&inf->synced))
		inf_list_begin(inf);
	else
		inf_watch_begin(inf);
}

/* Waits out the backoff (jittered, doubling) and then resumes with a watch or a list. */
static void inf_retry_later(stk_informer *inf)
{
	uint64_t d;

	inf->state = INF_WAITING;
	if (!inf->backoff_ms)
		inf->backoff_ms = inf->opts.backoff_min_ms;
	else if (inf->backoff_ms < inf->opts.backoff_max_ms / 2)
		inf->backoff_ms *= 2;
	else
		inf->backoff_ms = inf->opts.backoff_max_ms;
	/* Full jitter over the upper half keeps reconnect storms apart. */
	d = inf->backoff_ms / 2 + arc4random_uniform((uint32_t)(inf->backoff_ms / 2 + 1));
	uv_timer_start(&inf->retry_timer, inf_on_retry, d, 0);
}

static size_t inf_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	stk_informer *inf = arg;
	size_t n = size * nmemb;

	if (!inf->http_status)
		curl_easy_getinfo(inf->easy, CURLINFO_RESPONSE_CODE, &inf->http_status);
	if (inf->state == INF_LISTING || inf->http_status != 200)
		return stk_buf_put(&inf->body, data, n) ? 0 : n;
	return n; /* watch bytes are handled in inf_on_watch_body */
}

static int inf_start(stk_informer *inf, const char *query, bool watch, stk_err *err)
{
	stk_buf path = STK_BUF_INIT(4096);
	struct stk_kube_request req = {"GET", NULL, query, NULL, NULL, 0, watch ? UINT64_MAX : 0};
	int rc;

	rc = stk_kube_path(&path, inf->opts.gvr, inf->ns, NULL, NULL, err);
	if (rc)
		goto out;
	req.path = path.ptr;
	inf->easy = curl_easy_init();
	if (!inf->easy) {
		rc = stk_err_set(err, STK_EIO, "curl_easy_init failed");
		goto out;
	}
	rc = stk_kube_setup_easy(inf->kube, inf->easy, &req, &inf->headers, err);
	if (rc)
		goto out;
	inf->http_status = 0;
	stk_buf_reset(&inf->body);
	rc = 0;
out:
	stk_buf_release(&path);
	return rc;
}

static void inf_list_done(CURL *easy, CURLcode result, void *arg);

static void inf_list_request(stk_informer *inf)
{
	struct stk_list_opts lo = STK_LIST_OPTS_INIT;
	stk_buf q = STK_BUF_INIT(8192);
	stk_err err = STK_ERR_INIT;

	lo.label_selector = inf->label_selector;
	lo.field_selector = inf->field_selector;
	lo.continue_token = inf->cont;
	lo.limit = inf->opts.page_size;
	stk_kube_list_query(&q, &lo);
	if (inf_start(inf, q.ptr, false, &err) ||
	    (curl_easy_setopt(inf->easy, CURLOPT_WRITEFUNCTION, inf_on_body),
	     curl_easy_setopt(inf->easy, CURLOPT_WRITEDATA, inf),
	     stk_curlm_add(inf->curlm, inf->easy, inf_list_done, inf, &err))) {
		inf_error(inf, "list", &err);
		inf_end_transfer(inf);
		inf_retry_later(inf);
	}
	stk_buf_release(&q);
}

static void inf_list_begin(stk_informer *inf)
{
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;

	inf->state = INF_LISTING;
	inf->need_relist = false;
	free(inf->cont);
	inf->cont = NULL;
	while ((e = stk_map_next(&inf->snapshot, &it)) != NULL)
		stk_obj_unref(e->value);
	stk_map_release(&inf->snapshot);
	inf_list_request(inf);
}

/* Makes the cache equal to the completed snapshot, notifying handlers of differences. */
static void inf_apply_snapshot(stk_informer *inf)
{
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;
	stk_obj **gone = NULL;
	size_t ngone = 0, cap = 0;

	/* Deletions first: objects cached but absent from the fresh list. */
	pthread_rwlock_rdlock(&inf->lock);
	while ((e = stk_map_next(&inf->spaces, &it)) != NULL) {
		struct stk_map_iter jt = {0};
		struct stk_map_entry *f;
		while ((f = stk_map_next(e->value, &jt)) != NULL) {
			stk_obj *o = f->value;
			char key[600];
			snprintf(key, sizeof(key), "%s/%s", o->ns, o->name);
			if (stk_map_get(&inf->snapshot, key))
				continue;
			if (ngone == cap) {
				cap = cap ? cap * 2 : 16;
				gone = stk_reallocarray(gone, cap, sizeof(*gone));
			}
			gone[ngone++] = stk_obj_ref(o);
		}
	}
	pthread_rwlock_unlock(&inf->lock);
	for (size_t i = 0; i < ngone; i++) {
		apply_delete(inf, gone[i]->ns, gone[i]->name);
		stk_obj_unref(gone[i]);
	}
	free(gone);

	/* Then additions and changes. Unchanged objects keep their cached instance. */
	memset(&it, 0, sizeof(it));
	while ((e = stk_map_next(&inf->snapshot, &it)) != NULL) {
		stk_obj *o = e->value;
		stk_obj *cur = stk_informer_get(inf, o->ns, o->name);
		if (cur && !strcmp(cur->rv, o->rv))
			stk_obj_unref(o);
		else
			apply_upsert(inf, o);
		stk_obj_unref(cur);
	}
	stk_map_release(&inf->snapshot);
}

/*
 * Drops metadata.managedFields and kubectl's last-applied-configuration annotation
 * (apply bookkeeping that no controller reads and that is often the largest part of a
 * small object; controller-runtime strips managedFields from its caches for the same
 * reason), then applies the caller's transform.
 */
static void obj_slim(stk_informer *inf, yajl_val root)
{
	if (!inf->opts.keep_managed_fields) {
		stk_json_remove(stk_json_obj(root, "metadata", NULL), "managedFields");
		/* kubectl apply's copy of the whole object: as large, and as unread. */
		stk_json_remove(stk_json_obj(root, "metadata", "annotations", NULL),
				"kubectl.kubernetes.io/last-applied-configuration");
	}
	if (inf->opts.transform)
		inf->opts.transform(root, inf->opts.transform_arg);
}

/* Adopts the item in *slot of the page's tree (the slot is emptied, so freeing the page
 * leaves the item alone) and puts it in the snapshot. */
static void inf_collect_item(stk_informer *inf, yajl_val *slot)
{
	char key[600];
	yajl_val copy = *slot;
	stk_obj *o, *prev;

	*slot = NULL;
	if (!copy)
		return;
	obj_slim(inf, copy);
	if (stk_obj_new_take(&o, copy, NULL))
		return; /* an item without a name cannot be cached; skip it */
	snprintf(key, sizeof(key), "%s/%s", o->ns, o->name);
	prev = stk_map_put(&inf->snapshot, key, o);
	stk_obj_unref(prev);
}

static void inf_list_done(CURL *easy, CURLcode result, void *arg)
{
	stk_informer *inf = arg;
	yajl_val page = NULL, items;
	stk_err err = STK_ERR_INIT;
	const char *cont, *rv;
	long status = 0;

	(void)easy;
	curl_easy_getinfo(inf->easy, CURLINFO_RESPONSE_CODE, &status);
	/* The transfer is over: drop our handle without removing it again. */
	curl_easy_cleanup(inf->easy);
	inf->easy = NULL;
	curl_slist_free_all(inf->headers);
	inf->headers = NULL;
	if (result != CURLE_OK || status != 200) {
		int code = result != CURLE_OK ? stk_kube_curl_err(result, NULL, &err)
					      : stk_kube_status_to_err(status, inf->body.ptr,
								       inf->body.len, NULL, &err);
		inf_error(inf, "list", &err);
		if (code == STK_EAUTH)
			stk_kube_token_expired(inf->kube);
		if (code == STK_EGONE) {
			/* The continue token expired: start the list over. */
			INF_STAT(inf, gone);
			inf->need_relist = true;
		}
		inf->need_relist = true;
		inf_retry_later(inf);
		return;
	}
	if (stk_json_parse(&page, inf->body.ptr ? inf->body.ptr : "", inf->body.len,
			   STK_LIMIT_API_BODY, &err)) {
		inf_error(inf, "list", &err);
		inf->need_relist = true;
		inf_retry_later(inf);
		return;
	}
	items = stk_json_arr(page, "items", NULL);
	for (size_t i = 0; items && i < items->u.array.len; i++)
		inf_collect_item(inf, &items->u.array.values[i]);
	cont = stk_json_str(page, "metadata", "continue", NULL);
	rv = stk_json_str(page, "metadata", "resourceVersion", NULL);
	free(inf->cont);
	inf->cont = cont && *cont ? stk_strdup(cont) : NULL;
	if (!inf->cont)
		inf_set_rv(inf, rv);
	yajl_tree_free(page);
	if (inf->cont) {
		stk_buf_reset(&inf->body); /* the next page reuses the room */
		inf_list_request(inf);
		return;
	}
	/* A list page can be megabytes; watches need none of it. */
	stk_buf_release(&inf->body);
	inf_apply_snapshot(inf);
	INF_STAT(inf, lists);
	if (atomic_exchange(&inf->synced, true))
		INF_STAT(inf, relists);
	inf->backoff_ms = 0;
	inf_watch_begin(inf);
}

static void inf_on_idle(uv_timer_t *t)
{
	stk_informer *inf = t->data;

	INF_STAT(inf, idle_resets);
	inf_end_transfer(inf);
	inf_retry_later(inf);
}

/* Applies one watch event line. Returns false when the stream must be abandoned. */
static bool inf_watch_line(stk_informer *inf, const char *line, size_t len)
{
	yajl_val ev = NULL, obj;
	const char *type;
	stk_obj *o = NULL;
	bool ok = true;

	if (stk_json_parse(&ev, line, len, STK_LIMIT_WATCH_LINE, NULL)) {
		inf_error(inf, "watch event is not JSON", NULL);
		return false;
	}
	type = stk_json_str(ev, "type", NULL);
	obj = stk_json_obj(ev, "object", NULL);
	if (!type || !obj) {
		inf_error(inf, "watch event without type or object", NULL);
		ok = false;
		goto out;
	}
	if (!strcmp(type, "ERROR")) {
		int64_t code = 0;
		stk_json_int(obj, &code, "code", NULL);
		if (code == 410) {
			INF_STAT(inf, gone);
			inf->need_relist = true;
		} else {
			inf_error(inf, "watch ERROR event", NULL);
		}
		ok = false;
		goto out;
	}
	if (!strcmp(type, "BOOKMARK")) {
		INF_STAT(inf, bookmarks);
		inf_set_rv(inf, stk_json_str(obj, "metadata", "resourceVersion", NULL));
		goto out;
	}
	/* Detach the object from the event so the object owns its tree. */
	for (size_t i = 0; i < ev->u.object.len; i++) {
		if (ev->u.object.values[i] == obj) {
			ev->u.object.values[i] = NULL;
			break;
		}
	}
	obj_slim(inf, obj);
	if (stk_obj_new_take(&o, obj, NULL)) {
		inf_error(inf, "watch event object without a name", NULL);
		goto out;
	}
	INF_STAT(inf, events);
	inf_set_rv(inf, o->rv);
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED"))
		apply_upsert(inf, stk_obj_ref(o));
	else if (!strcmp(type, "DELETED"))
		apply_delete(inf, o->ns, o->name);
	else
		inf_error(inf, "unknown watch event type", NULL);
	stk_obj_unref(o);
out:
	yajl_tree_free(ev);
	return ok;
}

static size_t inf_on_watch_body(char *data, size_t size, size_t nmemb, void *arg)
{
	stk_informer *inf = arg;
	size_t n = size * nmemb;
	const char *line;
	size_t len;
	int rc;

	if (!inf->http_status)
		curl_easy_getinfo(inf->easy, CURLINFO_RESPONSE_CODE, &inf->http_status);
	if (inf->http_status != 200)
		return stk_buf_put(&inf->body, data, n) ? 0 : n;
	uv_timer_again(&inf->idle_timer);
	if (stk_lines_feed(&inf->lines, data, n)) {
		inf->stream_error = true;
		return 0;
	}
	while ((rc = stk_lines_next(&inf->lines, &line, &len)) == 1) {
		uint64_t t0 = uv_hrtime();
		bool ok = inf_watch_line(inf, line, len);
		pthread_mutex_lock(&inf->stats_lock);
		inf->stats.watch_apply_ns += uv_hrtime() - t0;
		pthread_mutex_unlock(&inf->stats_lock);
		if (!ok) {
			/* Abort the transfer: the done callback decides what comes next. */
			inf->stream_error = true;
			return 0;
		}
	}
	if (rc < 0) {
		inf_error(inf, "watch event larger than the line limit", NULL);
		/* An event too large to hold: resynchronise from a fresh list. */
		inf->need_relist = true;
		inf->stream_error = true;
		return 0;
	}
	return n;
}

static void inf_watch_done(CURL *easy, CURLcode result, void *arg)
{
	stk_informer *inf = arg;
	long status = inf->http_status;
	bool clean_end;

	(void)easy;
	if (!status)
		curl_easy_getinfo(inf->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(inf->easy);
	inf->easy = NULL;
	curl_slist_free_all(inf->headers);
	inf->headers = NULL;
	uv_timer_stop(&inf->idle_timer);
	if (status == 410) {
		INF_STAT(inf, gone);
		inf->need_relist = true;
	} else if (status && status != 200) {
		stk_err err = STK_ERR_INIT;
		if (stk_kube_status_to_err(status, inf->body.ptr, inf->body.len, NULL, &err) ==
		    STK_EAUTH)
			stk_kube_token_expired(inf->kube);
		inf_error(inf, "watch", &err);
	}
	if (inf->need_relist) {
		inf_list_begin(inf);
		return;
	}
	clean_end = result == CURLE_OK && status == 200 && !inf->stream_error;
	if (clean_end) {
		/* The server closed the watch at timeoutSeconds: resume at once. */
		inf->backoff_ms = 0;
		inf_watch_begin(inf);
		return;
	}
	if (result != CURLE_OK && !inf->stream_error) {
		stk_err err = STK_ERR_INIT;
		stk_kube_curl_err(result, NULL, &err);
		inf_error(inf, "watch", &err);
	}
	inf_retry_later(inf);
}

static void inf_watch_begin(stk_informer *inf)
{
	struct stk_list_opts lo = STK_LIST_OPTS_INIT;
	stk_buf q = STK_BUF_INIT(8192);
	stk_err err = STK_ERR_INIT;

	inf->state = INF_WATCHING;
	inf->stream_error = false;
	stk_lines_reset(&inf->lines);
	lo.label_selector = inf->label_selector;
	lo.field_selector = inf->field_selector;
	lo.resource_version = inf->rv;
	stk_buf_puts(&q, "watch=true&allowWatchBookmarks=true");
	stk_buf_printf(&q, "&timeoutSeconds=%lld", (long long)inf->opts.watch_timeout_s);
	stk_buf_putc(&q, '&');
	stk_kube_list_query(&q, &lo);
	if (inf_start(inf, q.ptr, true, &err) ||
	    (curl_easy_setopt(inf->easy, CURLOPT_WRITEFUNCTION, inf_on_watch_body),
	     curl_easy_setopt(inf->easy, CURLOPT_WRITEDATA, inf),
	     stk_curlm_add(inf->curlm, inf->easy, inf_watch_done, inf, &err))) {
		inf_error(inf, "watch", &err);
		inf_end_transfer(inf);
		inf_retry_later(inf);
	} else {
		INF_STAT(inf, watches);
		uv_timer_start(&inf->idle_timer, inf_on_idle, inf->opts.idle_timeout_ms,
			       inf->opts.idle_timeout_ms);
	}
	stk_buf_release(&q);
}

/* ---- resync and lifecycle ------------------------------------------------------- */

static int inf_collect(stk_obj *o, void *arg)
{
	stk_obj ***cursor = arg;

	**cursor = stk_obj_ref(o);
	(*cursor)++;
	return 0;
}

static void inf_on_resync(uv_timer_t *t)
{
	stk_informer *inf = t->data;
	stk_obj **all, **cursor;
	size_t n;

	if (!atomic_load(&inf->synced))
		return;
	/* Snapshot under the lock, notify without it. */
	pthread_rwlock_rdlock(&inf->lock);
	n = inf->count;
	pthread_rwlock_unlock(&inf->lock);
	all = stk_calloc(n + 1, sizeof(*all));
	cursor = all;
	pthread_rwlock_rdlock(&inf->lock);
	if (inf->count == n) {
		struct stk_map_iter it = {0};
		struct stk_map_entry *e;
		while ((e = stk_map_next(&inf->spaces, &it)) != NULL)
			each_in(e->value, NULL, inf_collect, &cursor, NULL);
	}
	pthread_rwlock_unlock(&inf->lock);
	for (stk_obj **p = all; p < cursor; p++) {
		notify_update(inf, *p, *p);
		stk_obj_unref(*p);
	}
	free(all);
}

void stk_informer_start(stk_informer *inf)
{
	if (inf->state != INF_STOPPED)
		return;
	if (inf->opts.resync_ms)
		uv_timer_start(&inf->resync_timer, inf_on_resync, inf->opts.resync_ms,
			       inf->opts.resync_ms);
	inf_list_begin(inf);
}

void stk_informer_stop(stk_informer *inf)
{
	if (inf->state == INF_STOPPED)
		return;
	inf_end_transfer(inf);
	uv_timer_stop(&inf->retry_timer);
	uv_timer_stop(&inf->resync_timer);
	inf->state = INF_STOPPED;
}

static void inf_timer_closed(uv_handle_t *h)
{
	stk_informer *inf = h->data;

	/* libuv runs close callbacks in no promised order: the last one frees. */
	if (--inf->timers_open == 0)
		free(inf);
}

void stk_informer_free(stk_informer *inf)
{
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;

	if (!inf)
		return;
	stk_informer_stop(inf);
	while ((e = stk_map_next(&inf->spaces, &it)) != NULL) {
		struct stk_map_iter jt = {0};
		struct stk_map_entry *f;
		while ((f = stk_map_next(e->value, &jt)) != NULL)
			stk_obj_unref(f->value);
		stk_map_release(e->value);
		free(e->value);
	}
	stk_map_release(&inf->spaces);
	memset(&it, 0, sizeof(it));
	while ((e = stk_map_next(&inf->snapshot, &it)) != NULL)
		stk_obj_unref(e->value);
	stk_map_release(&inf->snapshot);
	stk_buf_release(&inf->body);
	stk_lines_release(&inf->lines);
	free(inf->rv);
	free(inf->cont);
	free(inf->ns);
	free(inf->label_selector);
	free(inf->field_selector);
	pthread_rwlock_destroy(&inf->lock);
	pthread_mutex_destroy(&inf->stats_lock);
	inf->timers_open = 3;
	uv_close((uv_handle_t *)&inf->retry_timer, inf_timer_closed);
	uv_close((uv_handle_t *)&inf->idle_timer, inf_timer_closed);
	uv_close((uv_handle_t *)&inf->resync_timer, inf_timer_closed);
}
