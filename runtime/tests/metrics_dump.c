/*
 * Prints a registry exercising every rendering path (escaping, histograms, removed series,
 * odd numbers) for check_prometheus.py, which parses it with the Prometheus client library.
 * The expected samples there must match what is recorded here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "stk/buf.h"
#include "stk/metrics.h"

int main(void)
{
	const char *const cond_labels[] = {"kind", "name", "namespace", "type", "status", NULL};
	stk_metrics *m = stk_metrics_new();
	stk_metrics_family *total, *cond, *dur, *info, *leader, *temp, *bytes;
	stk_buf out = STK_BUF_INIT(1 << 20);
	int rc;

	total = stk_metrics_counter(m, "stoker_reconcile_total", "Reconciles by result.",
				    (const char *[]){"kind", "name", "namespace", "result", NULL});
	cond = stk_metrics_gauge(m, "stoker_condition", "Current condition status (1).",
				 cond_labels);
	dur = stk_metrics_histogram(m, "stoker_reconcile_duration_seconds",
				    "Reconcile duration.\nSecond line with a \\ backslash.",
				    (const char *[]){"kind", NULL}, NULL, 0);
	info = stk_metrics_gauge(m, "stoker_build_info", "Build information.",
				 (const char *[]){"version", NULL});
	leader = stk_metrics_gauge(m, "stoker_leader", "1 while this replica leads.", NULL);
	temp = stk_metrics_gauge(m, "test_special_values", "Non-finite and tiny values.",
				 (const char *[]){"case", NULL});
	bytes = stk_metrics_counter(m, "stoker_artifact_bytes_total", "Bytes served.", NULL);

	stk_metrics_inc(total, (const char *[]){"Stoker", "plant", "site1", "success"});
	stk_metrics_add(total, (const char *[]){"Stoker", "plant", "site1", "success"}, 4);
	stk_metrics_inc(total, (const char *[]){"GitSource", "repo", "site1", "error"});
	/* Values that need escaping: quote, backslash, newline; and non-ASCII UTF-8. */
	stk_metrics_inc(total, (const char *[]){"Stoker", "we\"ird\\na\nme", "s\xc3\xa9", "error"});

	stk_metrics_set(cond, (const char *[]){"Stoker", "plant", "site1", "Ready", "True"}, 1);
	stk_metrics_set(cond, (const char *[]){"Stoker", "plant", "site1", "Synced", "True"}, 1);
	stk_metrics_set(cond, (const char *[]){"Stoker", "gone", "site1", "Ready", "False"}, 1);
	stk_metrics_set(cond, (const char *[]){"Stoker", "gone", "site1", "Synced", "True"}, 1);
	/* The object "gone" was deleted: its series must not be exposed. */
	stk_metrics_remove_matching(cond, (const char *[]){"Stoker", "gone", "site1", NULL, NULL});

	stk_metrics_observe(dur, (const char *[]){"Stoker"}, 0.003);
	stk_metrics_observe(dur, (const char *[]){"Stoker"}, 0.2);
	stk_metrics_observe(dur, (const char *[]){"Stoker"}, 1.5);
	stk_metrics_observe(dur, (const char *[]){"Stoker"}, 120);
	stk_metrics_observe(dur, (const char *[]){"GitSource"}, 0.05);

	stk_metrics_set(info, (const char *[]){"0.1.0"}, 1);
	stk_metrics_set(leader, NULL, 1);
	stk_metrics_set(temp, (const char *[]){"inf"}, INFINITY);
	stk_metrics_set(temp, (const char *[]){"neginf"}, -INFINITY);
	stk_metrics_set(temp, (const char *[]){"nan"}, NAN);
	stk_metrics_set(temp, (const char *[]){"tiny"}, 1e-300);
	stk_metrics_set(temp, (const char *[]){"third"}, 1.0 / 3);
	stk_metrics_add(bytes, NULL, 9007199254740992.0);

	rc = stk_metrics_render(m, &out);
	if (rc == 0)
		fwrite(out.ptr, 1, out.len, stdout);
	stk_buf_release(&out);
	stk_metrics_free(m);
	return rc == 0 ? 0 : 1;
}
