#include "stk/events.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stk/alloc.h"
#include "stk/buf.h"
#include "stk/json.h"
#include "stk/loop.h"
#include "stk/map.h"

#define EVENT_MESSAGE_MAX 1024

struct ev_series {
	char *key;	  /* the map key (owned by the map; this is a copy for the LRU) */
	char *event_name; /* metadata.name of the Event */
	int64_t count;
	uint64_t last_ms;
	struct ev_series *prev, *next; /* LRU: head is the most recent */
};

struct stk_recorder {
	stk_kube *kube;
	char *component, *instance;
	uint64_t window_ms;
	size_t max_entries;
	pthread_mutex_t lock;
	stk_map series;
	struct ev_series *head, *tail;
};

int stk_recorder_new(stk_recorder **out, stk_kube *kube, const struct stk_recorder_opts *opts,
		     stk_err *err)
{
	stk_recorder *r;

	if (!opts || !opts->component || !*opts->component)
		return stk_err_set(err, STK_EINVAL, "event recorder needs a component name");
	r = stk_calloc(1, sizeof(*r));
	r->kube = kube;
	r->component = stk_strdup(opts->component);
	r->instance = stk_strdup(opts->instance ? opts->instance : "");
	r->window_ms = opts->dedupe_window_ms;
	r->max_entries = opts->max_entries ? opts->max_entries : 4096;
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

static void ev_series_free(struct ev_series *s)
{
	free(s->key);
	free(s->event_name);
	free(s);
}

void stk_recorder_free(stk_recorder *r)
{
	struct ev_series *s, *next;

	if (!r)
		return;
	for (s = r->head; s; s = next) {
		next = s->next;
		ev_series_free(s);
	}
	stk_map_release(&r->series);
	pthread_mutex_destroy(&r->lock);
	free(r->component);
	free(r->instance);
	free(r);
}

static void ev_unlink(stk_recorder *r, struct ev_series *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		r->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		r->tail = s->prev;
	s->prev = s->next = NULL;
}

static void ev_push_front(stk_recorder *r, struct ev_series *s)
{
	s->next = r->head;
	if (r->head)
		r->head->prev = s;
	r->head = s;
	if (!r->tail)
		r->tail = s;
}

/* Kubernetes Time: RFC 3339, seconds, UTC. */
static void ev_time(char sec[32])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(sec, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void ev_str_field(stk_buf *b, const char *name, const char *value, bool comma)
{
	if (!value)
		return;
	stk_buf_printf(b, "%s\"%s\":", comma ? "," : "", name);
	stk_buf_put_json_string(b, value, strlen(value));
}

static const char *ev_or_empty(const char *s)
{
	return s ? s : "";
}

/* The series key: every identifying field, separated by a byte messages do not use. */
static void ev_key(stk_buf *k, const struct stk_event_ref *o, const char *type, const char *reason,
		   const char *msg)
{
	stk_buf_printf(k, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s",
		       ev_or_empty(o->api_version), ev_or_empty(o->kind), ev_or_empty(o->ns),
		       ev_or_empty(o->name), ev_or_empty(o->uid), type, reason, msg);
}

static int ev_create(stk_recorder *r, const struct stk_event_ref *o, const char *type,
		     const char *reason, const char *msg, char **name_out, stk_err *err)
{
	char sec[32], name[320];
	stk_buf b = STK_BUF_INIT(16384);
	yajl_val created = NULL;
	const char *ns = o->ns && *o->ns ? o->ns : "default";
	int rc;

	ev_time(sec);
	/* The client-go naming scheme: <object>.<unique hex>. */
	snprintf(name, sizeof(name), "%.240s.%08x%08x", o->name, arc4random(), arc4random());
	stk_buf_puts(&b, "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{");
	ev_str_field(&b, "name", name, false);
	ev_str_field(&b, "namespace", ns, true);
	stk_buf_puts(&b, "},\"involvedObject\":{");
	ev_str_field(&b, "apiVersion", o->api_version, false);
	ev_str_field(&b, "kind", o->kind, true);
	ev_str_field(&b, "namespace", o->ns, true);
	ev_str_field(&b, "name", o->name, true);
	ev_str_field(&b, "uid", o->uid, true);
	ev_str_field(&b, "resourceVersion", o->resource_version, true);
	stk_buf_puts(&b, "}");
	ev_str_field(&b, "type", type, true);
	ev_str_field(&b, "reason", reason, true);
	ev_str_field(&b, "message", msg, true);
	stk_buf_puts(&b, ",\"source\":{");
	ev_str_field(&b, "component", r->component, false);
	if (*r->instance)
		ev_str_field(&b, "host", r->instance, true);
	stk_buf_puts(&b, "}");
	ev_str_field(&b, "reportingComponent", r->component, true);
	ev_str_field(&b, "reportingInstance", r->instance, true);
	ev_str_field(&b, "firstTimestamp", sec, true);
	ev_str_field(&b, "lastTimestamp", sec, true);
	stk_buf_puts(&b, ",\"count\":1}");
	rc = stk_kube_create(r->kube, &STK_GVR_EVENTS, ns, b.ptr, b.len, &created, err);
	if (!rc) {
		const char *n = stk_json_str(created, "metadata", "name", NULL);
		*name_out = stk_strdup(n ? n : name);
		yajl_tree_free(created);
	}
	stk_buf_release(&b);
	return rc;
}

static int ev_bump(stk_recorder *r, const char *ns, const char *name, int64_t count, stk_err *err)
{
	char sec[32], body[128];

	ev_time(sec);
	snprintf(body, sizeof(body), "{\"count\":%lld,\"lastTimestamp\":\"%s\"}", (long long)count,
		 sec);
	return stk_kube_patch(r->kube, &STK_GVR_EVENTS, ns, name, STK_PATCH_MERGE, body,
			      strlen(body), NULL, NULL, err);
}

int stk_recorder_event(stk_recorder *r, const struct stk_event_ref *obj, enum stk_event_type type,
		       const char *reason, stk_err *err, const char *fmt, ...)
{
	const char *type_s = type == STK_EVENT_WARNING ? "Warning" : "Normal";
	const char *ns = obj->ns && *obj->ns ? obj->ns : "default";
	char msg[EVENT_MESSAGE_MAX];
	stk_buf key = STK_BUF_INIT(8192);
	struct ev_series *s;
	char *event_name = NULL;
	int64_t count = 0;
	uint64_t now = stk_now_ms();
	va_list ap;
	int rc;

	if (!obj->name || !*obj->name || !obj->kind || !reason || !*reason)
		return stk_err_set(err, STK_EINVAL, "event needs an object kind, name and reason");
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) >= (int)sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	va_end(ap);
	ev_key(&key, obj, type_s, reason, msg);

	/* A repeat within the window bumps the existing Event. */
	pthread_mutex_lock(&r->lock);
	s = stk_map_get(&r->series, key.ptr);
	if (s && now - s->last_ms <= r->window_ms) {
		count = ++s->count;
		s->last_ms = now;
		event_name = stk_strdup(s->event_name);
		ev_unlink(r, s);
		ev_push_front(r, s);
	}
	pthread_mutex_unlock(&r->lock);
	if (event_name) {
		rc = ev_bump(r, ns, event_name, count, err);
		free(event_name);
		event_name = NULL;
		if (rc != STK_ENOTFOUND)
			goto out;
		/* The Event expired (TTL) or was deleted: start a new series. */
	}
	rc = ev_create(r, obj, type_s, reason, msg, &event_name, err);
	if (rc)
		goto out;
	pthread_mutex_lock(&r->lock);
	s = stk_map_get(&r->series, key.ptr);
	if (s) {
		ev_unlink(r, s);
	} else {
		s = stk_calloc(1, sizeof(*s));
		s->key = stk_strdup(key.ptr);
		stk_map_put(&r->series, key.ptr, s);
	}
	free(s->event_name);
	s->event_name = event_name;
	s->count = 1;
	s->last_ms = now;
	ev_push_front(r, s);
	while (r->series.len > r->max_entries && r->tail) {
		struct ev_series *old = r->tail;
		ev_unlink(r, old);
		stk_map_del(&r->series, old->key);
		ev_series_free(old);
	}
	pthread_mutex_unlock(&r->lock);
out:
	stk_buf_release(&key);
	return rc;
}
