/*
 * Status conditions (metav1.Condition) and the kstatus rules of DESIGN.md §3: `Ready` is the
 * summary; `Reconciling=True` while work or retries are in progress; `Stalled=True` when the
 * controller gives up until the spec changes; both are removed when inactive; every
 * condition carries observedGeneration; lastTransitionTime changes only when the status
 * flips; messages are capped at STK_LIMIT_CONDITION_MESSAGE bytes.
 *
 * A condition set keeps insertion order (like Flux), so re-encoding an unchanged status
 * produces the same JSON. A set is plain data owned by one thread at a time; the functions
 * here keep no state of their own and may be called from any thread on different sets.
 */
#ifndef STK_CONDITIONS_H
#define STK_CONDITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "stk/buf.h"
#include "stk/err.h"

/* kstatus condition types and the reasons the runtime itself uses (CONTRACTS.md). */
#define STK_CONDITION_READY		  "Ready"
#define STK_CONDITION_RECONCILING	  "Reconciling"
#define STK_CONDITION_STALLED		  "Stalled"
#define STK_REASON_SUCCEEDED		  "Succeeded"
#define STK_REASON_PROGRESSING		  "Progressing"
#define STK_REASON_PROGRESSING_WITH_RETRY "ProgressingWithRetry"

/* "2006-01-02T15:04:05Z" and its terminator: Kubernetes' metav1.Time form (UTC, seconds). */
#define STK_CONDITION_TIME_SIZE 21
/* API server limits on metav1.Condition fields (the message cap is in stk/limits.h). */
#define STK_CONDITION_TYPE_MAX	 316
#define STK_CONDITION_REASON_MAX 1024

enum stk_condition_status {
	STK_CONDITION_UNKNOWN = 0,
	STK_CONDITION_TRUE,
	STK_CONDITION_FALSE,
};

struct stk_condition {
	char *type;			  /* never NULL */
	enum stk_condition_status status; /* JSON "True", "False", "Unknown" */
	char *reason;			  /* never NULL; "" if the decoded object had none */
	char *message;			  /* never NULL, valid UTF-8 when set here */
	int64_t observed_generation;	  /* -1: absent, left out of the JSON */
	char last_transition_time[STK_CONDITION_TIME_SIZE]; /* "" if absent */
};

/* A condition list in insertion order, types unique. Embed it; owned by one thread. */
struct stk_conditions {
	struct stk_condition *items;
	size_t len;
	size_t cap;
};

#define STK_CONDITIONS_INIT \
	{                   \
		NULL, 0, 0  \
	}

/* Initialises an empty set. Never fails. */
void stk_conditions_init(struct stk_conditions *set);

/* Frees every condition; the set is empty and reusable afterwards. NULL-safe. */
void stk_conditions_release(struct stk_conditions *set);

/*
 * Replaces `dst` (an initialised set, released first) with a deep copy of `src`, e.g. to
 * keep the status as read for stk_conditions_equal. Never fails (aborts on OOM).
 */
void stk_conditions_copy(struct stk_conditions *dst, const struct stk_conditions *src);

/* The condition of `type`, or NULL. The pointer is owned by the set and valid until the
 * set is next modified. */
const struct stk_condition *stk_conditions_get(const struct stk_conditions *set, const char *type);

/* True when the condition of `type` exists and its status is True. */
bool stk_conditions_is_true(const struct stk_conditions *set, const char *type);

/*
 * Sets the condition of `type` (appended if new, updated in place otherwise).
 * lastTransitionTime becomes `now` when the condition is new or its status differs, and is
 * kept when only reason, message or generation change. `message` (NULL = "") is copied with
 * invalid UTF-8 replaced by U+FFFD and cut, at a character boundary, to at most
 * STK_LIMIT_CONDITION_MESSAGE bytes. `now` is an RFC 3339 time (normalised to UTC seconds)
 * or NULL for the current time. Returns 0, or STK_EINVAL (set untouched) for a type or
 * reason the API server would reject, a negative generation, or a malformed `now`.
 */
int stk_conditions_set(struct stk_conditions *set, const char *type,
		       enum stk_condition_status status, const char *reason, const char *message,
		       int64_t generation, const char *now, stk_err *err);

/* Removes the condition of `type`, keeping the others' order. True if one was removed. */
bool stk_conditions_remove(struct stk_conditions *set, const char *type);

/*
 * True when both sets hold the same conditions with identical fields, in any order (the
 * API server keys the list by type), so a caller can skip a status patch that changes
 * nothing.
 */
bool stk_conditions_equal(const struct stk_conditions *a, const struct stk_conditions *b);

/*
 * kstatus: sets Reconciling=True with `reason` (STK_REASON_PROGRESSING, or
 * STK_REASON_PROGRESSING_WITH_RETRY after a failure) and removes Stalled. Same arguments,
 * returns and guarantees as stk_conditions_set.
 */
int stk_conditions_mark_reconciling(struct stk_conditions *set, const char *reason,
				    const char *message, int64_t generation, const char *now,
				    stk_err *err);

/*
 * kstatus: sets Stalled=True (the controller gives up until the spec changes, e.g.
 * reason "InvalidSpec") and removes Reconciling. Ready is left to
 * stk_conditions_summarize_ready. Same returns as stk_conditions_set.
 */
int stk_conditions_mark_stalled(struct stk_conditions *set, const char *reason, const char *message,
				int64_t generation, const char *now, stk_err *err);

/* kstatus: removes Reconciling and Stalled (work finished, nothing is stuck). */
void stk_conditions_mark_idle(struct stk_conditions *set);

/*
 * How stk_conditions_summarize_ready derives Ready. `positive` lists, in priority order and
 * NULL-terminated, the conditions that must be True (e.g. SourceReady, RefResolved);
 * `negative` the abnormal-true ones that must not be True (e.g. FetchFailed). Either may
 * be NULL.
 */
struct stk_conditions_summary_opts {
	const char *const *positive;
	const char *const *negative;
	const char *success_reason;  /* Ready=True reason (STK_REASON_SUCCEEDED) */
	const char *success_message; /* Ready=True message ("") */
};

#define STK_CONDITIONS_SUMMARY_OPTS_INIT             \
	{                                            \
		NULL, NULL, STK_REASON_SUCCEEDED, "" \
	}

/*
 * Sets Ready from the other conditions, first rule that applies:
 *  1. Stalled=True                        -> Ready=False with Stalled's reason and message;
 *  2. a `negative` condition is True      -> Ready=False with its reason and message;
 *  3. a `positive` condition is False     -> Ready=False with its reason and message;
 *  4. a `positive` condition is Unknown   -> Ready=Unknown with its reason and message;
 *     or missing                          -> Ready=Unknown, Progressing, "<type> not yet
 *                                            reported";
 *  5. Reconciling=True                    -> Ready=Unknown with its reason and message;
 *  6. otherwise                           -> Ready=True with the success reason/message.
 * Within a rule the first listed condition wins. `opts` NULL means no sub-conditions.
 * Returns as stk_conditions_set (STK_EINVAL for a bad success reason or `now`).
 */
int stk_conditions_summarize_ready(struct stk_conditions *set,
				   const struct stk_conditions_summary_opts *opts,
				   int64_t generation, const char *now, stk_err *err);

/*
 * Replaces `out` (an initialised set, released on success) with the conditions in `v`, the
 * `status.conditions` value of an object from the API server (NULL or JSON null: no
 * conditions). `type` and `status` are required; `reason`, `message`, `observedGeneration`
 * and `lastTransitionTime` may be missing or null; unknown members are ignored;
 * lastTransitionTime is normalised to UTC seconds and bytes that are not UTF-8 (yajl's
 * rendering of a lone surrogate escape) become U+FFFD. Returns 0, or STK_EPARSE naming the
 * field (e.g. "conditions[1].status: ...") for a wrong type, an unknown status, a bad
 * time, a negative generation or a duplicate type; `out` is untouched on failure. `v`
 * stays owned by the caller.
 */
int stk_conditions_decode(struct stk_conditions *out, yajl_val v, stk_err *err);

/*
 * Appends the set as a JSON array of metav1.Condition objects (members type, status,
 * observedGeneration, lastTransitionTime, reason, message; absent generation and time left
 * out). Returns 0 or STK_ETOOBIG (the buffer's cap; `b` unchanged).
 */
int stk_conditions_encode(stk_buf *b, const struct stk_conditions *set, stk_err *err);

/* "True", "False" or "Unknown". */
const char *stk_conditions_status_name(enum stk_condition_status status);

/* True if `reason` matches ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$ within 1024 bytes. */
bool stk_conditions_valid_reason(const char *reason);

/* True if `type` is a valid condition type (optional DNS-subdomain prefix and '/', then a
 * name of [A-Za-z0-9_.-] starting and ending alphanumeric) within 316 bytes. */
bool stk_conditions_valid_type(const char *type);

/*
 * Writes `t` (seconds since the epoch) as "YYYY-MM-DDTHH:MM:SSZ" into `out`. Returns 0, or
 * STK_EINVAL (out set to "") for a year outside 0000-9999.
 */
int stk_conditions_format_time(char out[STK_CONDITION_TIME_SIZE], time_t t);

/* Writes the current UTC time in the same form. Any thread. */
void stk_conditions_now(char out[STK_CONDITION_TIME_SIZE]);

#endif
