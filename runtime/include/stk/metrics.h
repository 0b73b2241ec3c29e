/*
 * Prometheus metrics registry: counters, gauges and histograms with a fixed list of label
 * names per family, rendered in the text exposition format 0.0.4 (served on /metrics by
 * stk_http_serve_metrics).
 *
 * A family is registered once (usually at startup) and returns a handle that stays valid
 * until the registry is freed. A series (one tuple of label values) is created on first use
 * and lives until it is removed, e.g. when the Kubernetes object it describes is deleted.
 * Updates are thread-safe: every family has its own mutex, so worker threads can record
 * reconcile results while the loop thread renders.
 *
 * Misuse that can only be a programming error (an invalid or reused name, a wrong number of
 * label values, a counter decremented) aborts the process with a message on stderr, like
 * the allocation wrappers: it is found by the first test that runs the code.
 */
#ifndef STK_METRICS_H
#define STK_METRICS_H

#include <stddef.h>

#include "stk/buf.h"
#include "stk/err.h"

typedef struct stk_metrics stk_metrics;
typedef struct stk_metrics_family stk_metrics_family;

/* Upper bound on the number of label names of one family (histograms add "le" on top). */
#define STK_METRICS_MAX_LABELS 16

/*
 * Default histogram buckets, in seconds, suited to reconcile and request durations:
 * 5 ms ... 60 s. STK_METRICS_DEFAULT_BUCKETS_LEN entries, strictly increasing.
 */
extern const double stk_metrics_default_buckets[];
#define STK_METRICS_DEFAULT_BUCKETS_LEN 15

/* Creates an empty registry. Never fails (aborts on OOM). Any thread. */
stk_metrics *stk_metrics_new(void);

/*
 * Frees the registry, its families and their series. Every family handle becomes invalid.
 * NULL-safe. No other thread may use the registry during or after the call.
 */
void stk_metrics_free(stk_metrics *m);

/*
 * Registers a family. `name` must match [a-zA-Z_:][a-zA-Z0-9_:]*, `labels` is a
 * NULL-terminated array of names matching [a-zA-Z_][a-zA-Z0-9_]* not starting with "__"
 * (NULL or empty for none); `help` is free text. The strings are copied. Registering the
 * same name again with the same type, help and labels returns the existing family (so two
 * modules can share a metric); anything else about a reused name, or an invalid name,
 * aborts. A family without labels has its single series from the start (value 0).
 * Returns a handle owned by the registry. Any thread.
 */
stk_metrics_family *stk_metrics_counter(stk_metrics *m, const char *name, const char *help,
					const char *const *labels);
stk_metrics_family *stk_metrics_gauge(stk_metrics *m, const char *name, const char *help,
				      const char *const *labels);

/*
 * Registers a histogram. `buckets` are the upper bounds (strictly increasing, finite; the
 * +Inf bucket is implicit), copied; NULL/0 selects stk_metrics_default_buckets. The label
 * "le" is reserved. Otherwise as stk_metrics_counter.
 */
stk_metrics_family *stk_metrics_histogram(stk_metrics *m, const char *name, const char *help,
					  const char *const *labels, const double *buckets,
					  size_t nbuckets);

/*
 * Series updates. `values` holds exactly one value per label name, in registration order
 * (NULL for a family without labels); the series is created on first use. Values are copied;
 * invalid UTF-8 bytes are replaced by U+FFFD so the exposition stays valid. Any thread.
 *
 * stk_metrics_inc adds 1 to a counter or gauge; stk_metrics_add adds `v` (a counter only
 * accepts v >= 0); stk_metrics_set sets a gauge; stk_metrics_observe records one sample in
 * a histogram. Using the wrong operation for the family's type aborts.
 */
void stk_metrics_inc(stk_metrics_family *f, const char *const *values);
void stk_metrics_add(stk_metrics_family *f, const char *const *values, double v);
void stk_metrics_set(stk_metrics_family *f, const char *const *values, double v);
void stk_metrics_observe(stk_metrics_family *f, const char *const *values, double v);

/*
 * Removes one series. 0, or STK_ENOTFOUND when it did not exist. The single series of a
 * family without labels cannot be removed (STK_EINVAL). Any thread.
 */
int stk_metrics_remove(stk_metrics_family *f, const char *const *values);

/*
 * Removes every series whose label values equal `values` where `values[i]` is non-NULL
 * (NULL entries match anything), e.g. {"Stoker", "plant", "site1", NULL, NULL} drops every
 * stoker_condition series of one object. Returns how many were removed. Any thread.
 */
size_t stk_metrics_remove_matching(stk_metrics_family *f, const char *const *values);

/*
 * Reads a series: the value of a counter or gauge, the sample count of a histogram (and its
 * sum in *sum when non-NULL). 0 or STK_ENOTFOUND; outputs written only on success. Meant
 * for tests and status reporting. Any thread.
 */
int stk_metrics_get(stk_metrics_family *f, const char *const *values, double *value, double *sum);

/*
 * Appends the whole registry to `out` in the Prometheus text exposition format 0.0.4:
 * families sorted by name, each with # HELP and # TYPE, series sorted by label values,
 * label values and help text escaped, histogram buckets cumulative with +Inf, _sum and
 * _count. 0, or STK_ETOOBIG when `out` reached its cap (its content is then incomplete and
 * should be discarded). Any thread; updates may run concurrently (each family is rendered
 * under its own lock, so one family is a consistent snapshot).
 */
int stk_metrics_render(stk_metrics *m, stk_buf *out);

/*
 * Formats `v` the way the exposition does: the shortest decimal that reads back as the same
 * double, integers without exponent or fraction up to 2^53, "+Inf", "-Inf", "NaN".
 * `dst` must hold at least STK_METRICS_NUMBER_MAX bytes. Any thread.
 */
#define STK_METRICS_NUMBER_MAX 32
void stk_metrics_format_number(double v, char dst[STK_METRICS_NUMBER_MAX]);

#endif
