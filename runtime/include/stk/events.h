/*
 * The event recorder: core/v1 Events about our objects, with the Kubernetes convention
 * for repeats. An event identical to one recorded within the dedupe window (same object,
 * type, reason and message) is not created again: the existing Event's count and
 * lastTimestamp are patched instead, so a persistent condition shows as one Event with
 * a growing count rather than a flood.
 */
#ifndef STK_EVENTS_H
#define STK_EVENTS_H

#include <stdint.h>

#include "stk/err.h"
#include "stk/kube.h"

typedef struct stk_recorder stk_recorder;

/* The object an event is about. */
struct stk_event_ref {
	const char *api_version; /* "stoker.io/v1alpha1" */
	const char *kind;	 /* "Stoker" */
	const char *ns;
	const char *name;
	const char *uid;	      /* may be NULL */
	const char *resource_version; /* may be NULL */
};

struct stk_recorder_opts {
	const char *component;	   /* reportingController / source.component, e.g. "stoker-agent" */
	const char *instance;	   /* reportingInstance / source.host, e.g. the pod name */
	uint64_t dedupe_window_ms; /* default 10 min */
	size_t max_entries;	   /* remembered series; default 4096 (oldest forgotten) */
};

#define STK_RECORDER_OPTS_INIT           \
	{                                \
		NULL, NULL, 600000, 4096 \
	}

int stk_recorder_new(stk_recorder **out, stk_kube *kube, const struct stk_recorder_opts *opts,
		     stk_err *err);
void stk_recorder_free(stk_recorder *r);

enum stk_event_type {
	STK_EVENT_NORMAL,
	STK_EVENT_WARNING
};

/*
 * Records an event (message printf-style, cut at 1 KiB as Kubernetes does). Blocks for
 * one API request. Returns 0, or the client's error (the caller may log and go on:
 * events are best effort). Any thread.
 */
int stk_recorder_event(stk_recorder *r, const struct stk_event_ref *obj, enum stk_event_type type,
		       const char *reason, stk_err *err, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

#endif
