/*
 * libFuzzer target: status conditions from untrusted JSON. Decoding must never crash,
 * anything decoded must re-encode to valid JSON that decodes to an equal set, and the
 * kstatus helpers must keep their invariants on whatever was decoded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stk/conditions.h"
#include "stk/json.h"
#include "stk/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW "2024-05-01T10:00:00Z"

/* Encodes `set` and decodes the result again; aborts unless that round trip is exact. */
static void fuzz_round_trip(const struct stk_conditions *set)
{
	struct stk_conditions back = STK_CONDITIONS_INIT;
	stk_buf b = STK_BUF_INIT(STK_LIMIT_API_BODY);
	stk_err err = STK_ERR_INIT;
	yajl_val v = NULL;

	if (stk_conditions_encode(&b, set, &err) != 0)
		abort();
	if (stk_json_parse(&v, b.ptr, b.len, b.max, &err) != 0)
		abort();
	if (stk_conditions_decode(&back, v, &err) != 0)
		abort();
	if (!stk_conditions_equal(set, &back) || back.len != set->len)
		abort();
	/* Insertion order survives too. */
	for (size_t i = 0; i < set->len; i++)
		if (strcmp(set->items[i].type, back.items[i].type) != 0)
			abort();
	yajl_tree_free(v);
	stk_buf_release(&b);
	stk_conditions_release(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const positive[] = {"SourceReady", "Ready", "A", NULL};
	static const char *const negative[] = {"FetchFailed", NULL};
	struct stk_conditions_summary_opts opts = STK_CONDITIONS_SUMMARY_OPTS_INIT;
	struct stk_conditions set = STK_CONDITIONS_INIT, copy = STK_CONDITIONS_INIT;
	stk_err err = STK_ERR_INIT;
	yajl_val v = NULL, node;
	const struct stk_condition *ready;
	size_t before;
	int rc;

	if (stk_json_parse(&v, (const char *)data, size, STK_LIMIT_API_BODY, &err) != 0)
		return 0;
	/* A whole object (status.conditions) or the bare array. */
	node = YAJL_IS_OBJECT(v) ? stk_json_get(v, "status", "conditions", NULL) : v;
	rc = stk_conditions_decode(&set, node, &err);
	if (rc != 0) {
		/* A failure is STK_EPARSE with a message, and leaves the set empty. */
		if (rc != STK_EPARSE || err.code != rc || !err.message[0] || set.len != 0)
			abort();
		goto out;
	}
	fuzz_round_trip(&set);

	/* Mutate what was decoded the way a reconcile would; invariants must hold. */
	stk_conditions_copy(&copy, &set);
	if (!stk_conditions_equal(&set, &copy))
		abort();
	opts.positive = positive;
	opts.negative = negative;
	if (stk_conditions_mark_reconciling(&set, STK_REASON_PROGRESSING, "m", 1, NOW, &err) != 0)
		abort();
	if (stk_conditions_get(&set, STK_CONDITION_STALLED))
		abort();
	if (stk_conditions_summarize_ready(&set, &opts, 1, NOW, &err) != 0)
		abort();
	ready = stk_conditions_get(&set, STK_CONDITION_READY);
	if (!ready || ready->status == STK_CONDITION_TRUE ||
	    strlen(ready->last_transition_time) != 20)
		abort();
	stk_conditions_mark_idle(&set);
	if (stk_conditions_get(&set, STK_CONDITION_RECONCILING))
		abort();
	if (set.len > 0 && stk_conditions_valid_type(set.items[0].type)) {
		/* Re-setting a decoded condition keeps its place in the list. */
		char *type = strdup(set.items[0].type);
		if (!type)
			abort();
		before = set.len;
		if (stk_conditions_set(&set, type, STK_CONDITION_FALSE, "Fuzz",
				       set.items[0].message, 2, NOW, &err) != 0)
			abort();
		if (set.len != before || strcmp(set.items[0].type, type) != 0)
			abort();
		free(type);
	}
	fuzz_round_trip(&set);
out:
	stk_conditions_release(&set);
	stk_conditions_release(&copy);
	yajl_tree_free(v);
	return 0;
}
