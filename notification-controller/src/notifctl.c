#include "notifctl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "match.h"
#include "providers.h"
#include "receiver.h"
#include "stk/alloc.h"
#include "stk/api/api.h"
#include "stk/api/conditions.h"
#include "stk/api/kinds.h"
#include "stk/json.h"
#include "stk/log.h"
#include "stk/manager.h"
#include "stk/map.h"
#include "stk/objects.h"
#include "stk/parse.h"
#include "stk/version.h"

#define NOTIF_DEDUPE_MS		 (5 * 60 * 1000)
#define NOTIF_QUEUE_MAX		 4096 /* delivery jobs waiting; beyond, new ones are dropped */
#define NOTIF_ATTEMPTS		 3
#define NOTIF_DEFAULT_TIMEOUT_MS 15000
#define NOTIF_HELD_MAX		 4096 /* events held (see struct notifctl); beyond, dropped */
#define NOTIF_STANDBY_MIN_S	 60   /* a standby holds events this long (or 2 lease durations) */

/* One delivery: an event for one Alert. Strings owned. */
struct job {
	struct job *next;
	char *alert_ns, *alert_name;
	char *api_version, *kind, *ns, *name, *uid, *severity, *timestamp, *reason, *message;
	char *controller, *instance;
	char *event; /* "namespace/name" of the Event, and its count: the lastSent marker */
	int64_t event_count;
};

struct notifctl {
	const struct notifctl_options *o;
	stk_manager *m;
	stk_kube *kube;
	stk_recorder *rec;
	stk_cache *alerts, *events, *stokers, *sources, *profiles;
	time_t started; /* events last seen before this are history, not news */
	stk_map seen;	/* dedupe: alert uid + object + reason + message -> expiry (loop thread) */
	uint64_t seen_sweep_ms;
	stk_metrics_family *m_sent;
	struct notifctl_receiver *recv;
	/*
	 * Events wait here (references, in arrival order) while a cache has not yet held its
	 * first list (matched against a partial Alert cache they would be lost), and, for the
	 * last standby window, while another replica leads: should this one take over, what
	 * the old leader had not sent yet (after each Alert's status.lastSent marker) goes
	 * out. Loop thread.
	 */
	stk_obj **held;
	size_t nheld;
	uv_timer_t held_timer;

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	size_t njobs;
	bool stopping;
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->alert_ns);
	free(j->alert_name);
	free(j->api_version);
	free(j->kind);
	free(j->ns);
	free(j->name);
	free(j->uid);
	free(j->severity);
	free(j->timestamp);
	free(j->reason);
	free(j->message);
	free(j->controller);
	free(j->instance);
	free(j->event);
	free(j);
}

static char *dup0(const char *s)
{
	return stk_strdup(s ? s : "");
}

/* ---- the Alert reconcile -------------------------------------------------------------- */

static void now_rfc3339(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * Reads the provider's Secret into `p` (address, token, username, password, headers;
 * each optional). The strings are the caller's to wipe and free. 0, or STK_ENOTFOUND
 * naming the Secret. Worker threads; blocking.
 */
static int provider_load(struct notifctl *c, const char *ns, const struct stk_provider *sp,
			 struct notifctl_provider *p, char *owned[5], stk_err *err)
{
	static const char *const keys[5] = {"address", "token", "username", "password", "headers"};
	int rc;

	memset(p, 0, sizeof(*p));
	memset(owned, 0, 5 * sizeof(char *));
	p->type = sp->type;
	p->address = sp->address;
	p->channel = sp->channel;
	p->username = sp->username;
	if (sp->secret_ref.name && *sp->secret_ref.name) {
		yajl_val sec = NULL;
		rc = stk_kube_get(c->kube, &STK_GVR_SECRETS, ns, sp->secret_ref.name, &sec, err);
		if (rc == STK_ENOTFOUND)
			return stk_err_set(err, STK_ENOTFOUND,
					   "Secret '%s' not found in namespace '%s'",
					   sp->secret_ref.name, ns);
		if (rc)
			return rc;
		/* One GET for every key; a key that is absent is simply not used. */
		for (int i = 0; i < 5 && !rc; i++) {
			rc = stk_secret_data(sec, keys[i], &owned[i], err);
			if (rc == STK_ENOTFOUND)
				rc = 0;
		}
		yajl_tree_free(sec);
		if (rc)
			return rc;
		if (owned[0] && *owned[0])
			p->address = owned[0];
		p->token = owned[1];
		p->basic_user = owned[2];
		p->basic_password = owned[3];
		p->headers = owned[4];
	}
	return 0;
}

static void owned_free(char *owned[5])
{
	for (int i = 0; i < 5; i++)
		if (owned[i]) {
			explicit_bzero(owned[i], strlen(owned[i]));
			free(owned[i]);
			owned[i] = NULL;
		}
}

static int patch_alert_status(struct notifctl *c, const char *ns, const char *name,
			      const char *body, stk_err *err)
{
	struct stk_patch_opts po = STK_PATCH_OPTS_INIT;
	int rc;

	po.subresource = "status";
	rc = stk_kube_patch(c->kube, &STK_GVR_ALERTS, ns, name, STK_PATCH_MERGE, body, strlen(body),
			    &po, NULL, err);
	return rc == STK_ENOTFOUND ? 0 : rc;
}

static int alert_reconcile(void *arg, const char *ns, const char *name, uint64_t *requeue,
			   stk_err *err)
{
	struct notifctl *c = arg;
	stk_obj *obj = stk_cache_get(c->alerts, ns, name);
	struct stk_alert a;
	struct stk_conditions conds = STK_CONDITIONS_INIT;
	struct notifctl_rules *rules = NULL;
	struct notifctl_provider p;
	char *owned[5] = {0};
	stk_buf msg = STK_BUF_INIT(1 << 15), b = STK_BUF_INIT(1 << 20);
	stk_err e = STK_ERR_INIT;
	const char *reason = STK_REASON_SUCCEEDED, *token;
	enum stk_condition_status status = STK_CONDITION_TRUE;
	int64_t gen = 0;
	int rc = 0;

	memset(&a, 0, sizeof(a));
	if (!obj) {
		stk_manager_forget(c->m, ns, name, NULL);
		return 0;
	}
	if (stk_api_decode(&stk_api_alert_type, &a, obj->root, "", &e)) {
		status = STK_CONDITION_FALSE;
		reason = STK_REASON_INVALID_SPEC;
		stk_buf_puts(&msg, e.message);
		goto write;
	}
	stk_api_default(&stk_api_alert_spec_type, &a.spec);
	stk_json_int(obj->root, &gen, "metadata", "generation", NULL);
	if (a.status.conditions.present)
		stk_conditions_copy(&conds, &a.status.conditions.set);
	if (notifctl_rules_compile(&rules, ns, &a.spec, &e)) {
		status = STK_CONDITION_FALSE;
		reason = STK_REASON_INVALID_SPEC;
		stk_buf_puts(&msg, e.message);
		goto write;
	}
	rc = provider_load(c, ns, &a.spec.provider, &p, owned, &e);
	if (rc == STK_ENOTFOUND) {
		status = STK_CONDITION_FALSE;
		reason = STK_REASON_SECRET_NOT_FOUND;
		stk_buf_puts(&msg, e.message);
		rc = 0;
		*requeue = 30000; /* Secrets are not watched */
		goto write;
	}
	if (rc) {
		*err = e;
		goto out;
	}
	if (notifctl_provider_check(&p, &e)) {
		status = STK_CONDITION_FALSE;
		reason = STK_REASON_INVALID_SPEC;
		stk_buf_puts(&msg, e.message);
		goto write;
	}
	if (a.spec.suspend.v)
		stk_buf_printf(&msg, "suspended: no notifications are sent");
	else
		stk_buf_printf(&msg, "sending to %s", a.spec.provider.type);
write:
	stk_conditions_set(&conds, STK_CONDITION_READY, status, reason, msg.ptr ? msg.ptr : "", gen,
			   NULL, NULL);
	stk_manager_publish_conditions(c->m, ns, name, &conds);
	token = stk_json_str(obj->root, "metadata", "annotations", STK_ANN_RECONCILE_REQUEST, NULL);
	{
		struct stk_alert_status st;
		memset(&st, 0, sizeof(st));
		st.present = true;
		st.observed_generation.set = true;
		st.observed_generation.v = gen;
		st.last_handled_reconcile_at = (char *)token;
		st.conditions.present = true;
		st.conditions.set = conds;
		stk_buf_puts(&b, "{\"status\":");
		stk_api_encode(&stk_api_alert_status_type, &st, &b);
		stk_buf_putc(&b, '}');
	}
	if (!a.status.conditions.present ||
	    !stk_conditions_equal(&conds, &a.status.conditions.set) ||
	    !a.status.observed_generation.set || a.status.observed_generation.v != gen ||
	    (token && (!a.status.last_handled_reconcile_at ||
		       strcmp(token, a.status.last_handled_reconcile_at))))
		rc = patch_alert_status(c, ns, name, b.ptr, err);
out:
	owned_free(owned);
	notifctl_rules_free(rules);
	stk_conditions_release(&conds);
	stk_api_release(&stk_api_alert_type, &a);
	stk_obj_unref(obj);
	stk_buf_release(&msg);
	stk_buf_release(&b);
	return rc;
}

/* ---- delivery ------------------------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* One POST; the HTTP status or 0 with `err` for a transport failure. */
static long post_once(const struct notifctl_request *rq, uint64_t timeout_ms, stk_err *err)
{
	struct curl_slist *h = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *e = curl_easy_init();
	CURLcode rc;
	long status = 0;

	for (size_t i = 0; i < rq->nheaders; i++)
		h = curl_slist_append(h, rq->headers[i]);
	curl_easy_setopt(e, CURLOPT_URL, rq->url);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body.ptr ? rq->body.ptr : "");
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)rq->body.len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "stoker-notification-controller/" STK_VERSION);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	else
		/* The URL may hold a credential (a Slack webhook): the message names the host only.
		 */
		stk_err_set(err, STK_EUNAVAIL, "%s", *errbuf ? errbuf : curl_easy_strerror(rc));
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return status;
}

static void sleep_ms(struct notifctl *c, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->mu);
	if (!c->stopping)
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	pthread_mutex_unlock(&c->mu);
}

static void deliver(struct notifctl *c, struct job *j)
{
	stk_obj *obj = stk_cache_get(c->alerts, j->alert_ns, j->alert_name);
	struct stk_alert a;
	struct notifctl_provider p;
	struct notifctl_event ev;
	struct notifctl_request rq;
	const char **mk = NULL, **mv = NULL;
	char *owned[5] = {0}, when[32], result[600] = "", uid[128] = "";
	stk_err err = STK_ERR_INIT;
	uint64_t timeout_ms = NOTIF_DEFAULT_TIMEOUT_MS;
	const char *labels[2];
	long status = 0;
	bool ok = false;
	int rc;

	memset(&a, 0, sizeof(a));
	memset(&rq, 0, sizeof(rq));
	if (!obj || stk_api_decode(&stk_api_alert_type, &a, obj->root, "", NULL))
		goto out;
	stk_api_default(&stk_api_alert_spec_type, &a.spec);
	if (a.spec.suspend.v)
		goto out;
	{
		const char *u = stk_json_str(obj->root, "metadata", "uid", NULL);
		snprintf(uid, sizeof(uid), "%s", u ? u : "");
	}
	if (a.spec.provider.timeout) {
		int64_t ms;
		stk_err pe = STK_ERR_INIT;
		if (!stk_parse_duration_ms(a.spec.provider.timeout, strlen(a.spec.provider.timeout),
					   &ms, &pe) &&
		    ms > 0)
			timeout_ms = (uint64_t)ms;
	}
	if ((rc = provider_load(c, j->alert_ns, &a.spec.provider, &p, owned, &err)))
		goto failed;
	memset(&ev, 0, sizeof(ev));
	ev.api_version = j->api_version;
	ev.kind = j->kind;
	ev.ns = j->ns;
	ev.name = j->name;
	ev.uid = j->uid;
	ev.severity = j->severity;
	ev.timestamp = j->timestamp;
	ev.reason = j->reason;
	ev.message = j->message;
	ev.reporting_controller = j->controller;
	ev.reporting_instance = j->instance;
	/* metadata: the Alert's summary, then its eventMetadata */
	mk = stk_calloc(a.spec.event_metadata.len + 1, sizeof(char *));
	mv = stk_calloc(a.spec.event_metadata.len + 1, sizeof(char *));
	if (a.spec.summary && *a.spec.summary) {
		mk[ev.nmeta] = "summary";
		mv[ev.nmeta++] = a.spec.summary;
	}
	for (size_t i = 0; i < a.spec.event_metadata.len; i++) {
		mk[ev.nmeta] = a.spec.event_metadata.keys[i];
		mv[ev.nmeta++] = a.spec.event_metadata.values[i];
	}
	ev.meta_keys = mk;
	ev.meta_values = mv;
	if ((rc = notifctl_render(&p, &ev, &rq, &err)))
		goto failed;
	for (int attempt = 1; attempt <= NOTIF_ATTEMPTS; attempt++) {
		stk_err te = STK_ERR_INIT;
		status = post_once(&rq, timeout_ms, &te);
		if (status >= 200 && status < 300) {
			ok = true;
			break;
		}
		if (status)
			stk_err_set(&err, STK_ESERVER, "HTTP %ld", status);
		else
			err = te;
		if (status && status < 500 && status != 429)
			break; /* the request itself is wrong: retrying will not help */
		if (attempt < NOTIF_ATTEMPTS)
			sleep_ms(c, 1000u << (attempt - 1));
		if (c->stopping)
			break;
	}
failed:
	labels[0] = a.spec.provider.type ? a.spec.provider.type : "";
	labels[1] = ok ? "success" : "failure";
	stk_metrics_inc(c->m_sent, labels);
	now_rfc3339(when);
	if (ok) {
		snprintf(result, sizeof(result), "%ld", status);
		stk_log_info("notification sent", "alert", j->alert_name, "namespace", j->alert_ns,
			     "reason", j->reason, "provider", labels[0], NULL);
	} else {
		struct stk_event_ref ref = {"notification.stoker.io/v1alpha1",
					    "Alert",
					    j->alert_ns,
					    j->alert_name,
					    uid[0] ? uid : NULL,
					    NULL};
		stk_err ee = STK_ERR_INIT;
		snprintf(result, sizeof(result), "failed: %s", err.message);
		stk_log_warn("notification failed", "alert", j->alert_name, "namespace",
			     j->alert_ns, "reason", j->reason, "error", err.message, NULL);
		if (stk_recorder_event(c->rec, &ref, STK_EVENT_WARNING,
				       "NotificationDispatchFailed", &ee,
				       "Sending %s of %s/%s to %s failed: %s", j->reason, j->kind,
				       j->name, labels[0], err.message))
			stk_log_warn("cannot record event", "error", ee.message, NULL);
	}
	{
		stk_buf b = STK_BUF_INIT(4096);
		stk_err pe = STK_ERR_INIT;
		stk_buf_printf(&b, "{\"status\":{\"lastSent\":{\"time\":\"%s\",\"reason\":", when);
		stk_buf_put_json_string(&b, j->reason, strlen(j->reason));
		stk_buf_puts(&b, ",\"result\":");
		stk_buf_put_json_string(&b, result, strlen(result));
		stk_buf_puts(&b, ",\"event\":");
		stk_buf_put_json_string(&b, j->event, strlen(j->event));
		stk_buf_printf(&b, ",\"count\":%lld}}}", (long long)j->event_count);
		if (patch_alert_status(c, j->alert_ns, j->alert_name, b.ptr, &pe))
			stk_log_warn("cannot write lastSent", "alert", j->alert_name, "error",
				     pe.message, NULL);
		stk_buf_release(&b);
	}
out:
	free(mk);
	free(mv);
	notifctl_request_release(&rq);
	owned_free(owned);
	stk_api_release(&stk_api_alert_type, &a);
	stk_obj_unref(obj);
}

static void *dispatcher(void *arg)
{
	struct notifctl *c = arg;

	for (;;) {
		struct job *j;
		pthread_mutex_lock(&c->mu);
		while (!c->head && !c->stopping)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stopping) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		j = c->head;
		c->head = j->next;
		if (!c->head)
			c->tail = NULL;
		c->njobs--;
		pthread_mutex_unlock(&c->mu);
		deliver(c, j);
		job_free(j);
	}
	return NULL;
}

/* ---- events in ------------------------------------------------------------------------ */

static bool our_kind(const char *api_version, const char *kind)
{
	static const char *const kinds[] = {"GitSource", "SyncProfile", "Stoker", "Alert"};

	if (!api_version || !kind || !strstr(api_version, "stoker.io/"))
		return false;
	for (size_t i = 0; i < 4; i++)
		if (!strcmp(kind, kinds[i]))
			return true;
	return false;
}

/* "2026-11-22T10:30:05Z" (or with fractional seconds) to Unix time; 0 if malformed. */
static time_t parse_time(const char *s)
{
	struct tm tm;
	int n = 0;

	memset(&tm, 0, sizeof(tm));
	if (!s ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

static stk_cache *cache_of(struct notifctl *c, const char *kind)
{
	if (!strcmp(kind, "Stoker"))
		return c->stokers;
	if (!strcmp(kind, "GitSource"))
		return c->sources;
	if (!strcmp(kind, "SyncProfile"))
		return c->profiles;
	return c->alerts;
}

struct ev_ctx {
	struct notifctl *c;
	yajl_val ev;
	struct notifctl_match_in in;
	stk_obj *involved; /* for labels, fetched once when needed */
	bool involved_looked;
	/* A held event: its place, and "ns/name#count" -> place + 1 of every held event. */
	const stk_map *held_pos;
	size_t held_index;
};

/* "namespace/name#count" of an Event: which occurrence of it a delivery carried. */
static void event_key(stk_buf *b, const char *ns, const char *name, int64_t count)
{
	stk_buf_printf(b, "%s/%s#%lld", ns ? ns : "", name ? name : "", (long long)count);
}

static int64_t event_count(yajl_val ev)
{
	int64_t n = 1;

	stk_json_int(ev, &n, "count", NULL);
	return n;
}

/*
 * A held event the old leader already sent to this Alert: it lies at or before the
 * Event its status.lastSent names. (The dispatcher sends in order; an Alert whose marker
 * is not among the held events had sent none of them.)
 */
static bool sent_before_takeover(const struct ev_ctx *x, yajl_val alert)
{
	const char *ev = stk_json_str(alert, "status", "lastSent", "event", NULL);
	int64_t count = 0;
	stk_buf key = STK_BUF_INIT(4096);
	uintptr_t at;

	if (!x->held_pos || !ev || !strchr(ev, '/'))
		return false;
	stk_json_int(alert, &count, "status", "lastSent", "count", NULL);
	stk_buf_printf(&key, "%s#%lld", ev, (long long)count);
	at = (uintptr_t)stk_map_get(x->held_pos, key.ptr);
	stk_buf_release(&key);
	return at && x->held_index < at;
}

static void enqueue(struct notifctl *c, struct job *j)
{
	pthread_mutex_lock(&c->mu);
	if (c->njobs >= NOTIF_QUEUE_MAX || c->stopping) {
		pthread_mutex_unlock(&c->mu);
		stk_log_warn("notification queue full; dropped", "alert", j->alert_name, NULL);
		job_free(j);
		return;
	}
	if (c->tail)
		c->tail->next = j;
	else
		c->head = j;
	c->tail = j;
	c->njobs++;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Drops a repeat of the same object, reason and message for this Alert within 5 min. */
static bool duplicate(struct notifctl *c, const char *alert_uid, const struct ev_ctx *x,
		      const char *reason)
{
	stk_buf key = STK_BUF_INIT(1 << 16);
	uint64_t now = stk_now_ms(), *exp;
	bool dup;

	if (now - c->seen_sweep_ms > 60000) {
		struct stk_map_iter it = {0};
		struct stk_map_entry *e;
		stk_map keep = {0};
		while ((e = stk_map_next(&c->seen, &it))) {
			uint64_t *t = e->value;
			if (*t > now) {
				uint64_t *k = stk_malloc(sizeof(*k));
				*k = *t;
				free(stk_map_put(&keep, e->key, k));
			}
		}
		stk_map_release_free(&c->seen);
		c->seen = keep;
		c->seen_sweep_ms = now;
	}
	stk_buf_printf(&key, "%s|%s|%s|%s|%s|", alert_uid, x->in.kind, x->in.ns ? x->in.ns : "",
		       x->in.name ? x->in.name : "", reason ? reason : "");
	stk_buf_puts(&key, x->in.message ? x->in.message : "");
	exp = stk_map_get(&c->seen, key.ptr);
	dup = exp && *exp > now;
	if (!dup) {
		uint64_t *t = stk_malloc(sizeof(*t));
		*t = now + NOTIF_DEDUPE_MS;
		free(stk_map_put(&c->seen, key.ptr, t));
	}
	stk_buf_release(&key);
	return dup;
}

static int match_alert(stk_obj *alert, void *arg)
{
	struct ev_ctx *x = arg;
	struct notifctl *c = x->c;
	struct stk_alert_spec spec;
	struct notifctl_rules *rules = NULL;
	yajl_val spec_v = stk_json_obj(alert->root, "spec", NULL), ev = x->ev;
	const char *ans = stk_json_str(alert->root, "metadata", "namespace", NULL);
	const char *aname = stk_json_str(alert->root, "metadata", "name", NULL);
	const char *auid = stk_json_str(alert->root, "metadata", "uid", NULL);
	const char *reason = stk_json_str(ev, "reason", NULL);
	struct job *j;

	memset(&spec, 0, sizeof(spec));
	if (!spec_v || !ans || !aname ||
	    stk_api_decode(&stk_api_alert_spec_type, &spec, spec_v, "spec", NULL))
		goto out;
	stk_api_default(&stk_api_alert_spec_type, &spec);
	if (spec.suspend.v || notifctl_rules_compile(&rules, ans, &spec, NULL))
		goto out;
	if (notifctl_rules_need_labels(rules, x->in.kind, x->in.ns) && !x->involved_looked) {
		x->involved_looked = true;
		x->involved = stk_cache_get(cache_of(c, x->in.kind), x->in.ns, x->in.name);
		x->in.labels = x->involved
				       ? stk_json_obj(x->involved->root, "metadata", "labels", NULL)
				       : NULL;
	}
	if (!notifctl_rules_match(rules, &x->in) || sent_before_takeover(x, alert->root) ||
	    duplicate(c, auid ? auid : aname, x, reason))
		goto out;
	j = stk_calloc(1, sizeof(*j));
	j->alert_ns = stk_strdup(ans);
	j->alert_name = stk_strdup(aname);
	j->api_version = dup0(stk_json_str(ev, "involvedObject", "apiVersion", NULL));
	j->kind = dup0(x->in.kind);
	j->ns = dup0(x->in.ns);
	j->name = dup0(x->in.name);
	j->uid = dup0(stk_json_str(ev, "involvedObject", "uid", NULL));
	j->severity = dup0(x->in.error ? "error" : "info");
	{
		const char *t = stk_json_str(ev, "lastTimestamp", NULL);
		if (!t)
			t = stk_json_str(ev, "eventTime", NULL);
		j->timestamp = dup0(t);
	}
	j->reason = dup0(reason);
	j->message = dup0(x->in.message);
	{
		const char *rc = stk_json_str(ev, "reportingComponent", NULL);
		const char *ri = stk_json_str(ev, "reportingInstance", NULL);
		if (!rc || !*rc)
			rc = stk_json_str(ev, "source", "component", NULL);
		if (!ri || !*ri)
			ri = stk_json_str(ev, "source", "host", NULL);
		j->controller = dup0(rc);
		j->instance = dup0(ri);
	}
	{
		const char *ens = stk_json_str(ev, "metadata", "namespace", NULL);
		const char *ename = stk_json_str(ev, "metadata", "name", NULL);
		stk_buf b = STK_BUF_INIT(4096);
		stk_buf_printf(&b, "%s/%s", ens ? ens : "", ename ? ename : "");
		j->event = stk_buf_detach(&b, NULL);
		j->event_count = event_count(ev);
	}
	enqueue(c, j);
out:
	notifctl_rules_free(rules);
	stk_api_release(&stk_api_alert_spec_type, &spec);
	return 0;
}

static void dispatch_event(struct notifctl *c, stk_obj *cur, const stk_map *held_pos,
			   size_t held_index);

/* The caches an event's matching reads: the Alerts and the involved objects' labels. */
static bool caches_synced(struct notifctl *c)
{
	return stk_cache_synced(c->alerts) && stk_cache_synced(c->sources) &&
	       stk_cache_synced(c->profiles) && stk_cache_synced(c->stokers);
}

static void release_held(struct notifctl *c)
{
	for (size_t i = 0; i < c->nheld; i++)
		stk_obj_unref(c->held[i]);
	free(c->held);
	c->held = NULL;
	c->nheld = 0;
}

/* The Event's time (lastTimestamp, else eventTime); 0 when it has none. */
static time_t event_time(yajl_val ev)
{
	const char *t = stk_json_str(ev, "lastTimestamp", NULL);

	return parse_time(t ? t : stk_json_str(ev, "eventTime", NULL));
}

/* How long a standby holds events: past any takeover of the Lease. */
static time_t standby_window_s(const struct notifctl *c)
{
	time_t lease = (time_t)(c->o->daemon->lease_duration_ms / 1000);

	return 2 * lease > NOTIF_STANDBY_MIN_S ? 2 * lease : NOTIF_STANDBY_MIN_S;
}

/* Drops held events older than the standby window. */
static void prune_held(struct notifctl *c)
{
	time_t cutoff = time(NULL) - standby_window_s(c);
	size_t keep = 0;

	for (size_t i = 0; i < c->nheld; i++) {
		if (event_time(c->held[i]->root) < cutoff)
			stk_obj_unref(c->held[i]);
		else
			c->held[keep++] = c->held[i];
	}
	c->nheld = keep;
}

/*
 * Every 10 ms while a cache fills, every second on a standby: once the caches are synced
 * and this replica leads, the held events are matched in order, each Alert skipping what
 * its status.lastSent shows the old leader sent.
 */
static void on_held_timer(uv_timer_t *t)
{
	struct notifctl *c = t->data;
	stk_obj **held = c->held;
	size_t n = c->nheld;
	stk_map pos = STK_MAP_INIT;
	stk_buf key = STK_BUF_INIT(4096);

	if (!caches_synced(c))
		return;
	if (!stk_manager_leading(c->m)) {
		prune_held(c);
		if (!c->nheld)
			uv_timer_stop(t);
		else
			uv_timer_set_repeat(t, 1000);
		return;
	}
	uv_timer_stop(t);
	c->held = NULL;
	c->nheld = 0;
	for (size_t i = 0; i < n; i++) {
		yajl_val ev = held[i]->root;
		stk_buf_reset(&key);
		event_key(&key, stk_json_str(ev, "metadata", "namespace", NULL),
			  stk_json_str(ev, "metadata", "name", NULL), event_count(ev));
		stk_map_put(&pos, key.ptr, (void *)(uintptr_t)(i + 1));
	}
	if (n) {
		char count[32];
		snprintf(count, sizeof(count), "%zu", n);
		stk_log_info("matching the held events", "events", count, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		dispatch_event(c, held[i], &pos, i);
		stk_obj_unref(held[i]);
	}
	free(held);
	stk_map_release(&pos);
	stk_buf_release(&key);
}

static void hold_event(struct notifctl *c, stk_obj *cur)
{
	if (c->nheld >= NOTIF_HELD_MAX && !stk_manager_leading(c->m))
		prune_held(c);
	if (c->nheld >= NOTIF_HELD_MAX) {
		stk_log_warn("too many events held; dropping one", "name",
			     stk_json_str(cur->root, "metadata", "name", NULL), NULL);
		return;
	}
	c->held = stk_reallocarray(c->held, c->nheld + 1, sizeof(*c->held));
	c->held[c->nheld++] = stk_obj_ref(cur);
	if (!uv_is_active((uv_handle_t *)&c->held_timer))
		uv_timer_start(&c->held_timer, on_held_timer, 10, 10);
}

static void on_event(stk_obj *old, stk_obj *cur, void *arg)
{
	struct notifctl *c = arg;
	yajl_val ev = cur->root;
	const char *av = stk_json_str(ev, "involvedObject", "apiVersion", NULL);
	const char *kind = stk_json_str(ev, "involvedObject", "kind", NULL);
	int64_t count_old = 0, count_cur = 0;

	if (!our_kind(av, kind))
		return;
	if (old && old != cur) {
		/* An update that is not a repeat (count unchanged) carries nothing new. */
		stk_json_int(old->root, &count_old, "count", NULL);
		stk_json_int(cur->root, &count_cur, "count", NULL);
		if (count_cur <= count_old)
			return;
	} else if (old == cur) {
		return; /* periodic resync */
	}
	if (event_time(ev) < c->started)
		return; /* history from before this controller started */
	/* Only the leader sends, or two replicas would send everything twice; a standby
	 * holds what it sees for a while, and while anything is held, a new event waits
	 * behind it. */
	if (!caches_synced(c) || !stk_manager_leading(c->m) || c->nheld) {
		hold_event(c, cur);
		return;
	}
	dispatch_event(c, cur, NULL, 0);
}

/* Matches one event against every Alert. Loop thread, caches synced. */
static void dispatch_event(struct notifctl *c, stk_obj *cur, const stk_map *held_pos,
			   size_t held_index)
{
	yajl_val ev = cur->root;
	struct ev_ctx x;
	const char *kind = stk_json_str(ev, "involvedObject", "kind", NULL);
	const char *type = stk_json_str(ev, "type", NULL);

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.ev = ev;
	x.held_pos = held_pos;
	x.held_index = held_index;
	x.in.kind = kind;
	x.in.ns = stk_json_str(ev, "involvedObject", "namespace", NULL);
	x.in.name = stk_json_str(ev, "involvedObject", "name", NULL);
	x.in.error = type && !strcmp(type, "Warning");
	x.in.message = stk_json_str(ev, "message", NULL);
	stk_cache_each(c->alerts, NULL, NULL, match_alert, &x, NULL);
	stk_obj_unref(x.involved);
}

static void on_event_add(stk_obj *obj, void *arg)
{
	on_event(NULL, obj, arg);
}

static void on_alert(stk_obj *obj, void *arg)
{
	struct notifctl *c = arg;
	stk_manager_enqueue(c->m, stk_json_str(obj->root, "metadata", "namespace", NULL),
			    stk_json_str(obj->root, "metadata", "name", NULL));
}

static void on_alert_update(stk_obj *old, stk_obj *cur, void *arg)
{
	if (stk_obj_changed_beyond_status(old, cur))
		on_alert(cur, arg);
}

/* Keeps what the matcher reads of an object: its metadata (labels). */
static void slim_meta(yajl_val root, void *arg)
{
	static const char *const keep[] = {"apiVersion", "kind", "metadata", NULL};
	(void)arg;
	stk_json_keep(root, keep);
}

/* Keeps what the matcher and the receiver read of a Stoker. */
static void slim_stoker(yajl_val root, void *arg)
{
	static const char *const keep[] = {"apiVersion", "kind", "metadata", "spec", NULL};
	(void)arg;
	stk_json_keep(root, keep);
}

static void on_shutdown(void *arg)
{
	struct notifctl *c = arg;

	uv_timer_stop(&c->held_timer);
	uv_close((uv_handle_t *)&c->held_timer, NULL);
	release_held(c);
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	stk_loop_shutdown_done(stk_manager_loop(c->m));
}

int notifctl_run(const struct notifctl_options *o)
{
	struct notifctl *c = stk_calloc(1, sizeof(*c));
	struct stk_manager_opts mo = {0};
	struct stk_informer_opts io = STK_INFORMER_OPTS_INIT;
	struct stk_informer_handler ah = {on_alert, on_alert_update, on_alert, NULL};
	struct stk_informer_handler eh = {on_event_add, on_event, NULL, NULL};
	struct notifctl_receiver_opts ro = NOTIFCTL_RECEIVER_OPTS_INIT;
	static const char *const sent_labels[] = {"provider", "result", NULL};
	stk_err err = STK_ERR_INIT;
	int rc;

	c->o = o;
	c->started = time(NULL);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	mo.name = "notification-controller";
	mo.kind = "Alert";
	mo.daemon = o->daemon;
	mo.reconcile = alert_reconcile;
	mo.arg = c;
	if ((rc = stk_manager_new(&c->m, &mo, &err)))
		goto fail;
	c->kube = stk_manager_kube(c->m);
	c->rec = stk_manager_recorder(c->m);
	uv_timer_init(stk_loop_uv(stk_manager_loop(c->m)), &c->held_timer);
	c->held_timer.data = c;
	ah.arg = c;
	eh.arg = c;
	io.gvr = &STK_GVR_ALERTS;
	if ((rc = stk_manager_cache(c->m, &io, &ah, &c->alerts, &err)))
		goto fail;
	io.gvr = &STK_GVR_EVENTS;
	io.transform = NULL;
	/* Events about Pods and other core objects are most of a cluster's: not ours. */
	io.field_selector = "involvedObject.apiVersion!=v1";
	if ((rc = stk_manager_cache(c->m, &io, &eh, &c->events, &err)))
		goto fail;
	io.gvr = &STK_GVR_STOKERS;
	io.field_selector = NULL;
	io.transform = slim_stoker;
	if ((rc = stk_manager_cache(c->m, &io, NULL, &c->stokers, &err)))
		goto fail;
	io.transform = slim_meta;
	io.gvr = &STK_GVR_GITSOURCES;
	if ((rc = stk_manager_cache(c->m, &io, NULL, &c->sources, &err)))
		goto fail;
	io.gvr = &STK_GVR_SYNCPROFILES;
	if ((rc = stk_manager_cache(c->m, &io, NULL, &c->profiles, &err)))
		goto fail;
	c->m_sent = stk_metrics_counter(stk_manager_metrics(c->m), "stoker_notifications_total",
					"Notifications sent, by provider type and result.",
					sent_labels);
	ro.loop = stk_manager_loop(c->m);
	ro.kube = c->kube;
	ro.recorder = c->rec;
	ro.metrics = stk_manager_metrics(c->m);
	ro.stokers = c->stokers;
	ro.bind_address = o->receiver_addr;
	if (o->receiver_rate > 0)
		ro.rate_per_s = o->receiver_rate;
	if (o->receiver_burst > 0)
		ro.burst = (unsigned)o->receiver_burst;
	if ((rc = notifctl_receiver_new(&c->recv, &ro, &err)))
		goto fail;
	if (pthread_create(&c->thread, NULL, dispatcher, c)) {
		rc = stk_err_set(&err, STK_EIO, "cannot start the dispatcher thread");
		goto fail;
	}
	c->thread_started = true;
	stk_loop_on_shutdown(stk_manager_loop(c->m), on_shutdown, c);
	stk_loop_on_shutdown(stk_manager_loop(c->m), notifctl_receiver_shutdown_hook, c->recv);
	rc = stk_manager_run(c->m);
	goto out;
fail:
	stk_log_error("cannot start", "error", err.message, NULL);
	rc = 1;
out:
	if (c->thread_started) {
		pthread_mutex_lock(&c->mu);
		c->stopping = true;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thread, NULL);
	}
	while (c->head) {
		struct job *j = c->head;
		c->head = j->next;
		job_free(j);
	}
	notifctl_receiver_free(c->recv);
	release_held(c);
	stk_manager_free(c->m);
	stk_map_release_free(&c->seen);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	return rc;
}
