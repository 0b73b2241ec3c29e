#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "stk/conditions.h"
#include "stk/json.h"
#include "stk/limits.h"

#define T1 "2024-05-01T10:00:00Z"
#define T2 "2024-05-01T10:05:00Z"
#define T3 "2024-05-01T11:00:00Z"

/* Strict UTF-8 check, independent of the code under test. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static void test_conditions__set_appends_in_insertion_order(void **state)
{
	struct stk_conditions set = STK_CONDITIONS_INIT;
	const struct stk_condition *c;

	(void)state;
	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_FALSE, "FetchFailed",
					    "cannot reach git", 3, T1, NULL),
			 0);
	assert_int_equal(stk_conditions_set(&set, "FetchFailed", STK_CONDITION_TRUE, "FetchFailed",
					    NULL, 3, T1, NULL),
			 0);
	assert_int_equal(stk_conditions_set(&set, "example.com/Custom", STK_CONDITION_UNKNOWN,
					    "Pending", "", 3, T1, NULL),
			 0);
	/* Updating the first keeps it first. */
	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_TRUE, "Succeeded", "ok", 4,
					    T2, NULL),
			 0);
	assert_int_equal(set.len, 3);
	assert_string_equal(set.items[0].type, "Ready");
	assert_string_equal(set.items[1].type, "FetchFailed");
	assert_string_equal(set.items[2].type, "example.com/Custom");
	assert_string_equal(set.items[1].message, "");

	c = stk_conditions_get(&set, "Ready");
	assert_non_null(c);
	assert_int_equal(c->status, STK_CONDITION_TRUE);
	assert_string_equal(c->reason, "Succeeded");
	assert_int_equal(c->observed_generation, 4);
	assert_true(stk_conditions_is_true(&set, "Ready"));
	assert_false(stk_conditions_is_true(&set, "example.com/Custom"));
	assert_false(stk_conditions_is_true(&set, "Missing"));
	assert_null(stk_conditions_get(&set, "Missing"));
	assert_string_equal(stk_conditions_status_name(STK_CONDITION_UNKNOWN), "Unknown");
	assert_string_equal(stk_conditions_status_name(STK_CONDITION_FALSE), "False");

	/* Remove keeps the others' order. */
	assert_true(stk_conditions_remove(&set, "FetchFailed"));
	assert_false(stk_conditions_remove(&set, "FetchFailed"));
	assert_int_equal(set.len, 2);
	assert_string_equal(set.items[0].type, "Ready");
	assert_string_equal(set.items[1].type, "example.com/Custom");
	stk_conditions_release(&set);
	assert_int_equal(set.len, 0);
	stk_conditions_release(NULL);
}

static void test_conditions__transition_time_changes_only_on_status_flip(void **state)
{
	struct stk_conditions set;
	const struct stk_condition *c;
	char before[STK_CONDITION_TIME_SIZE], after[STK_CONDITION_TIME_SIZE];

	(void)state;
	stk_conditions_init(&set);
	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_TRUE, "Succeeded", "v1", 1,
					    T1, NULL),
			 0);
	c = stk_conditions_get(&set, "Ready");
	assert_string_equal(c->last_transition_time, T1);

	/* Same status, new reason, message and generation: the time stays. */
	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_TRUE, "Upgraded", "v2", 2,
					    T2, NULL),
			 0);
	c = stk_conditions_get(&set, "Ready");
	assert_string_equal(c->last_transition_time, T1);
	assert_string_equal(c->reason, "Upgraded");
	assert_string_equal(c->message, "v2");
	assert_int_equal(c->observed_generation, 2);

	/* A flip moves it. */
	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_FALSE, "FetchFailed",
					    "timeout", 2, T3, NULL),
			 0);
	assert_string_equal(stk_conditions_get(&set, "Ready")->last_transition_time, T3);

	/* `now` may be any RFC 3339 time; it is stored as UTC seconds. */
	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_UNKNOWN, "Progressing", "",
					    2, "2024-05-01T13:30:15.123456+02:00", NULL),
			 0);
	assert_string_equal(stk_conditions_get(&set, "Ready")->last_transition_time,
			    "2024-05-01T11:30:15Z");

	/* NULL means the current time. */
	stk_conditions_now(before);
	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_TRUE, "Succeeded", "", 2,
					    NULL, NULL),
			 0);
	stk_conditions_now(after);
	c = stk_conditions_get(&set, "Ready");
	assert_true(strcmp(c->last_transition_time, before) >= 0);
	assert_true(strcmp(c->last_transition_time, after) <= 0);
	stk_conditions_release(&set);
}

static void test_conditions__invalid_input_is_an_error_not_a_change(void **state)
{
	static const char *const good_reasons[] = {"Succeeded", "A", "a_b,c:d", "X_", "Ab9"};
	static const char *const bad_reasons[] = {"",	     "1abc", "Foo-Bar", "Foo:",	     "Foo,",
						  "Foo Bar", "_x",   "Ready.",	"Fo\xc3\xa9"};
	static const char *const good_types[] = {"Ready", "example.com/Ready", "a-b.c_d", "x.y/Z9"};
	static const char *const bad_types[] = {
		"", "-Ready", "Ready-", "a/b/c", "Ex.com/Ready", "/Ready", "a..b/Ready", "Re ady"};
	struct stk_conditions set = STK_CONDITIONS_INIT;
	char reason[STK_CONDITION_REASON_MAX + 2];
	stk_err err = STK_ERR_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good_reasons) / sizeof(*good_reasons); i++)
		assert_true(stk_conditions_valid_reason(good_reasons[i]));
	for (i = 0; i < sizeof(bad_reasons) / sizeof(*bad_reasons); i++)
		assert_false(stk_conditions_valid_reason(bad_reasons[i]));
	for (i = 0; i < sizeof(good_types) / sizeof(*good_types); i++)
		assert_true(stk_conditions_valid_type(good_types[i]));
	for (i = 0; i < sizeof(bad_types) / sizeof(*bad_types); i++)
		assert_false(stk_conditions_valid_type(bad_types[i]));
	assert_false(stk_conditions_valid_reason(NULL));
	memset(reason, 'R', sizeof(reason) - 1);
	reason[STK_CONDITION_REASON_MAX] = '\0';
	assert_true(stk_conditions_valid_reason(reason));
	reason[STK_CONDITION_REASON_MAX] = 'R';
	reason[STK_CONDITION_REASON_MAX + 1] = '\0';
	assert_false(stk_conditions_valid_reason(reason));

	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_TRUE, "Succeeded", "ok", 1,
					    T1, NULL),
			 0);
	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_FALSE, "Not-Valid", "x", 2,
					    T2, &err),
			 STK_EINVAL);
	assert_non_null(strstr(err.message, "Not-Valid"));
	assert_int_equal(
		stk_conditions_set(&set, "Ready", STK_CONDITION_FALSE, NULL, "x", 2, T2, &err),
		STK_EINVAL);
	assert_int_equal(stk_conditions_set(&set, "Bad Type", STK_CONDITION_FALSE, "Failed", "x", 2,
					    T2, &err),
			 STK_EINVAL);
	assert_int_equal(
		stk_conditions_set(&set, "Ready", STK_CONDITION_FALSE, "Failed", "x", -1, T2, &err),
		STK_EINVAL);
	assert_int_equal(stk_conditions_set(&set, "Ready", (enum stk_condition_status)7, "Failed",
					    "x", 2, T2, &err),
			 STK_EINVAL);
	static const char *const bad_times[] = {"yesterday",
						"2024-05-01 10:00:00Z",
						"2024-02-30T00:00:00Z",
						"2024-05-01T24:00:00Z",
						"2024-05-01T10:00:00",
						"2024-05-01T10:00:00Zjunk",
						"2024-05-01T10:00:00.Z",
						"2024-05-01T10:00:00+2:00",
						"0000-01-01T00:30:00+01:00",
						""};
	for (i = 0; i < sizeof(bad_times) / sizeof(*bad_times); i++)
		assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_FALSE, "Failed",
						    "x", 2, bad_times[i], &err),
				 STK_EINVAL);
	/* Nothing changed. */
	assert_int_equal(set.len, 1);
	assert_int_equal(set.items[0].status, STK_CONDITION_TRUE);
	assert_string_equal(set.items[0].reason, "Succeeded");
	assert_string_equal(set.items[0].message, "ok");
	assert_int_equal(set.items[0].observed_generation, 1);
	/* Leap day and lower-case separators are fine. */
	assert_int_equal(stk_conditions_set(&set, "Leap", STK_CONDITION_TRUE, "Ok", "", 1,
					    "2024-02-29t23:59:59z", &err),
			 0);
	assert_string_equal(stk_conditions_get(&set, "Leap")->last_transition_time,
			    "2024-02-29T23:59:59Z");
	stk_conditions_release(&set);
}

static void test_conditions__message_is_cut_at_a_character_boundary(void **state)
{
	const size_t lim = STK_LIMIT_CONDITION_MESSAGE;
	struct stk_conditions set = STK_CONDITIONS_INIT;
	char *msg = malloc(lim + 16);
	const char *m;

	(void)state;
	assert_non_null(msg);
	/* Exactly at the limit: kept whole. */
	memset(msg, 'a', lim);
	msg[lim] = '\0';
	assert_int_equal(stk_conditions_set(&set, "A", STK_CONDITION_TRUE, "R", msg, 1, T1, NULL),
			 0);
	assert_int_equal(strlen(stk_conditions_get(&set, "A")->message), lim);

	/* A 2-byte character straddling the limit is dropped whole. */
	memset(msg, 'a', lim - 1);
	memcpy(msg + lim - 1, "\xc3\xa9zz", 5);
	assert_int_equal(stk_conditions_set(&set, "A", STK_CONDITION_TRUE, "R", msg, 1, T1, NULL),
			 0);
	m = stk_conditions_get(&set, "A")->message;
	assert_int_equal(strlen(m), lim - 1);
	assert_true(valid_utf8((const unsigned char *)m, strlen(m)));

	/* A 3-byte and a 4-byte character ending exactly at the limit are kept. */
	memset(msg, 'a', lim - 3);
	memcpy(msg + lim - 3, "\xe2\x82\xac\xf0\x9f\x98\x80", 8);
	assert_int_equal(stk_conditions_set(&set, "A", STK_CONDITION_TRUE, "R", msg, 1, T1, NULL),
			 0);
	m = stk_conditions_get(&set, "A")->message;
	assert_int_equal(strlen(m), lim);
	assert_memory_equal(m + lim - 3, "\xe2\x82\xac", 3);
	assert_true(valid_utf8((const unsigned char *)m, strlen(m)));

	/* Invalid bytes become U+FFFD, still within the limit. */
	assert_int_equal(stk_conditions_set(&set, "A", STK_CONDITION_TRUE, "R",
					    "a\xff"
					    "b\xc3",
					    1, T1, NULL),
			 0);
	assert_string_equal(stk_conditions_get(&set, "A")->message, "a\xef\xbf\xbd"
								    "b\xef\xbf\xbd");
	memset(msg, '\xff', lim);
	msg[lim] = '\0';
	assert_int_equal(stk_conditions_set(&set, "A", STK_CONDITION_TRUE, "R", msg, 1, T1, NULL),
			 0);
	m = stk_conditions_get(&set, "A")->message;
	assert_true(strlen(m) <= lim);
	assert_int_equal(strlen(m) % 3, 0);
	assert_true(strlen(m) > lim - 3);
	assert_true(valid_utf8((const unsigned char *)m, strlen(m)));
	free(msg);
	stk_conditions_release(&set);
}

/* As the API server returns it: members in its order, extra members, nulls. */
static const char api_status[] =
	"{\"observedGeneration\":7,\"conditions\":["
	"{\"type\":\"Ready\",\"status\":\"False\",\"observedGeneration\":7,"
	"\"lastTransitionTime\":\"2024-05-01T10:00:00Z\",\"reason\":\"FetchFailed\","
	"\"message\":\"failed to fetch \\\"main\\\": timeout\\n\\u00e9\"},"
	"{\"type\":\"Reconciling\",\"status\":\"True\",\"observedGeneration\":7,"
	"\"lastTransitionTime\":\"2024-05-01T12:00:00.5+02:00\",\"reason\":"
	"\"ProgressingWithRetry\","
	"\"message\":\"retrying\",\"futureField\":{\"x\":[1,2]}},"
	"{\"type\":\"HostKeyVerified\",\"status\":\"Unknown\",\"reason\":null}"
	"]}";

static void test_conditions__decode_the_api_server_shape(void **state)
{
	struct stk_conditions set = STK_CONDITIONS_INIT;
	const struct stk_condition *c;
	yajl_val v = NULL;
	stk_err err = STK_ERR_INIT;

	(void)state;
	assert_int_equal(stk_json_parse(&v, api_status, strlen(api_status), 4096, &err), 0);
	assert_int_equal(stk_conditions_decode(&set, stk_json_get(v, "conditions", NULL), &err), 0);
	assert_int_equal(set.len, 3);
	c = &set.items[0];
	assert_string_equal(c->type, "Ready");
	assert_int_equal(c->status, STK_CONDITION_FALSE);
	assert_int_equal(c->observed_generation, 7);
	assert_string_equal(c->last_transition_time, "2024-05-01T10:00:00Z");
	assert_string_equal(c->reason, "FetchFailed");
	assert_string_equal(c->message, "failed to fetch \"main\": timeout\n\xc3\xa9");
	c = &set.items[1];
	assert_int_equal(c->status, STK_CONDITION_TRUE);
	/* Offsets and fractions normalised to UTC seconds. */
	assert_string_equal(c->last_transition_time, "2024-05-01T10:00:00Z");
	c = &set.items[2];
	assert_string_equal(c->type, "HostKeyVerified");
	assert_int_equal(c->status, STK_CONDITION_UNKNOWN);
	assert_int_equal(c->observed_generation, -1);
	assert_string_equal(c->last_transition_time, "");
	assert_string_equal(c->reason, "");
	assert_string_equal(c->message, "");

	/* A lone surrogate escape comes out of yajl as bytes that are not UTF-8: repaired. */
	yajl_tree_free(v);
	v = NULL;
	{
		const char doc[] =
			"[{\"type\":\"A\",\"status\":\"True\",\"message\":\"x\\udc00y\"}]";
		assert_int_equal(stk_json_parse(&v, doc, strlen(doc), 4096, NULL), 0);
		assert_int_equal(stk_conditions_decode(&set, v, &err), 0);
		assert_string_equal(set.items[0].message, "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
							  "y");
	}

	/* No conditions yet: missing or null is an empty set, replacing the old content. */
	assert_int_equal(stk_conditions_decode(&set, stk_json_get(v, "nothing", NULL), &err), 0);
	assert_int_equal(set.len, 0);
	yajl_tree_free(v);
	stk_conditions_release(&set);
}

static void test_conditions__decode_rejects_wrong_types_naming_the_field(void **state)
{
	static const struct {
		const char *json;
		const char *field;
	} cases[] = {
		{"{\"type\":\"Ready\"}", "conditions"},
		{"[1]", "conditions[0]"},
		{"[{\"status\":\"True\"}]", "conditions[0].type"},
		{"[{\"type\":\"\",\"status\":\"True\"}]", "conditions[0].type"},
		{"[{\"type\":7,\"status\":\"True\"}]", "conditions[0].type"},
		{"[{\"type\":\"A\",\"status\":\"True\"},{\"type\":\"B\"}]", "conditions[1].status"},
		{"[{\"type\":\"A\",\"status\":true}]", "conditions[0].status"},
		{"[{\"type\":\"A\",\"status\":\"Maybe\"}]", "conditions[0].status"},
		{"[{\"type\":\"A\",\"status\":\"True\",\"reason\":1}]", "conditions[0].reason"},
		{"[{\"type\":\"A\",\"status\":\"True\",\"message\":[]}]", "conditions[0].message"},
		{"[{\"type\":\"A\",\"status\":\"True\",\"observedGeneration\":\"3\"}]",
		 "conditions[0].observedGeneration"},
		{"[{\"type\":\"A\",\"status\":\"True\",\"observedGeneration\":1.5}]",
		 "conditions[0].observedGeneration"},
		{"[{\"type\":\"A\",\"status\":\"True\",\"observedGeneration\":-2}]",
		 "conditions[0].observedGeneration"},
		{"[{\"type\":\"A\",\"status\":\"True\",\"lastTransitionTime\":\"soon\"}]",
		 "conditions[0].lastTransitionTime"},
		{"[{\"type\":\"A\",\"status\":\"True\",\"lastTransitionTime\":5}]",
		 "conditions[0].lastTransitionTime"},
		{"[{\"type\":\"A\",\"status\":\"True\"},{\"type\":\"A\",\"status\":\"False\"}]",
		 "conditions[1].type"},
	};
	struct stk_conditions set = STK_CONDITIONS_INIT;

	(void)state;
	assert_int_equal(
		stk_conditions_set(&set, "Keep", STK_CONDITION_TRUE, "Kept", "", 1, T1, NULL), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		yajl_val v = NULL;
		stk_err err = STK_ERR_INIT;
		size_t n = strlen(cases[i].field);

		assert_int_equal(
			stk_json_parse(&v, cases[i].json, strlen(cases[i].json), 4096, NULL), 0);
		assert_int_equal(stk_conditions_decode(&set, v, &err), STK_EPARSE);
		/* The message starts with the field path. */
		assert_memory_equal(err.message, cases[i].field, n);
		assert_true(err.message[n] == ':');
		yajl_tree_free(v);
	}
	/* Output untouched by every failure. */
	assert_int_equal(set.len, 1);
	assert_string_equal(set.items[0].type, "Keep");
	stk_conditions_release(&set);
}

static void test_conditions__encode_round_trips(void **state)
{
	struct stk_conditions set = STK_CONDITIONS_INIT, back = STK_CONDITIONS_INIT;
	stk_buf b = STK_BUF_INIT(1 << 20), small = STK_BUF_INIT(40);
	yajl_val v = NULL;
	stk_err err = STK_ERR_INIT;

	(void)state;
	assert_int_equal(stk_conditions_encode(&b, &set, NULL), 0);
	assert_string_equal(b.ptr, "[]");
	stk_buf_reset(&b);

	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_FALSE, "FetchFailed",
					    "quote \" backslash \\ newline \n tab \t \x01 \xc3\xa9",
					    12, T1, NULL),
			 0);
	assert_int_equal(stk_conditions_set(&set, "Stalled", STK_CONDITION_TRUE, "InvalidSpec", "",
					    12, T2, NULL),
			 0);
	assert_int_equal(stk_conditions_encode(&b, &set, &err), 0);
	assert_string_equal(
		b.ptr, "[{\"type\":\"Ready\",\"status\":\"False\",\"observedGeneration\":12,"
		       "\"lastTransitionTime\":\"2024-05-01T10:00:00Z\",\"reason\":\"FetchFailed\","
		       "\"message\":\"quote \\\" backslash \\\\ newline \\n tab \\t \\u0001 "
		       "\xc3\xa9\"},"
		       "{\"type\":\"Stalled\",\"status\":\"True\",\"observedGeneration\":12,"
		       "\"lastTransitionTime\":\"2024-05-01T10:05:00Z\",\"reason\":\"InvalidSpec\","
		       "\"message\":\"\"}]");
	assert_int_equal(stk_json_parse(&v, b.ptr, b.len, b.max, &err), 0);
	assert_int_equal(stk_conditions_decode(&back, v, &err), 0);
	assert_true(stk_conditions_equal(&set, &back));
	yajl_tree_free(v);
	v = NULL;

	/* A decoded condition without generation or time keeps them out of the JSON. */
	assert_int_equal(stk_json_parse(&v, api_status, strlen(api_status), 4096, NULL), 0);
	assert_int_equal(stk_conditions_decode(&back, stk_json_get(v, "conditions", NULL), NULL),
			 0);
	stk_buf_reset(&b);
	assert_int_equal(stk_conditions_encode(&b, &back, NULL), 0);
	assert_non_null(strstr(b.ptr, "{\"type\":\"HostKeyVerified\",\"status\":\"Unknown\","
				      "\"reason\":\"\",\"message\":\"\"}"));
	yajl_tree_free(v);

	/* Past the buffer's cap: STK_ETOOBIG and the buffer as it was. */
	assert_int_equal(stk_buf_puts(&small, "prefix"), 0);
	assert_int_equal(stk_conditions_encode(&small, &set, &err), STK_ETOOBIG);
	assert_string_equal(small.ptr, "prefix");
	assert_int_equal(small.len, 6);

	stk_buf_release(&b);
	stk_buf_release(&small);
	stk_conditions_release(&set);
	stk_conditions_release(&back);
}

static void test_conditions__equal_ignores_order_not_content(void **state)
{
	struct stk_conditions a = STK_CONDITIONS_INIT, b = STK_CONDITIONS_INIT;

	(void)state;
	assert_true(stk_conditions_equal(&a, &b));
	assert_int_equal(
		stk_conditions_set(&a, "Ready", STK_CONDITION_TRUE, "Succeeded", "m", 1, T1, NULL),
		0);
	assert_int_equal(
		stk_conditions_set(&a, "Other", STK_CONDITION_FALSE, "No", "m", 1, T1, NULL), 0);
	assert_false(stk_conditions_equal(&a, &b));
	assert_int_equal(
		stk_conditions_set(&b, "Other", STK_CONDITION_FALSE, "No", "m", 1, T1, NULL), 0);
	assert_int_equal(
		stk_conditions_set(&b, "Ready", STK_CONDITION_TRUE, "Succeeded", "m", 1, T1, NULL),
		0);
	assert_true(stk_conditions_equal(&a, &b));

	/* A copy is equal and independent. */
	struct stk_conditions c = STK_CONDITIONS_INIT;
	stk_conditions_copy(&c, &a);
	assert_true(stk_conditions_equal(&a, &c));

	/* Each field counts: message, generation, reason, status, time. */
	assert_int_equal(
		stk_conditions_set(&b, "Ready", STK_CONDITION_TRUE, "Succeeded", "m2", 1, T1, NULL),
		0);
	assert_false(stk_conditions_equal(&a, &b));
	assert_int_equal(
		stk_conditions_set(&b, "Ready", STK_CONDITION_TRUE, "Succeeded", "m", 2, T1, NULL),
		0);
	assert_false(stk_conditions_equal(&a, &b));
	assert_int_equal(
		stk_conditions_set(&b, "Ready", STK_CONDITION_TRUE, "Other", "m", 1, T1, NULL), 0);
	assert_false(stk_conditions_equal(&a, &b));
	assert_int_equal(stk_conditions_set(&b, "Ready", STK_CONDITION_UNKNOWN, "Succeeded", "m", 1,
					    T1, NULL),
			 0);
	assert_false(stk_conditions_equal(&a, &b));
	/* Back to True, but the flip moved the time. */
	assert_int_equal(
		stk_conditions_set(&b, "Ready", STK_CONDITION_TRUE, "Succeeded", "m", 1, T2, NULL),
		0);
	assert_false(stk_conditions_equal(&a, &b));
	/* Re-setting identical values is a no-op the caller can detect. */
	assert_int_equal(
		stk_conditions_set(&a, "Ready", STK_CONDITION_TRUE, "Succeeded", "m", 1, T3, NULL),
		0);
	assert_true(stk_conditions_equal(&a, &c));
	assert_true(stk_conditions_remove(&c, "Other"));
	assert_false(stk_conditions_equal(&a, &c));
	stk_conditions_release(&a);
	stk_conditions_release(&b);
	stk_conditions_release(&c);
}

static void test_conditions__kstatus_reconciling_and_stalled(void **state)
{
	struct stk_conditions set = STK_CONDITIONS_INIT;

	(void)state;
	assert_int_equal(stk_conditions_mark_stalled(&set, "InvalidSpec", "bad url", 2, T1, NULL),
			 0);
	assert_true(stk_conditions_is_true(&set, STK_CONDITION_STALLED));
	/* Progress again: Stalled goes, Reconciling comes. */
	assert_int_equal(stk_conditions_mark_reconciling(&set, STK_REASON_PROGRESSING, "fetching",
							 3, T2, NULL),
			 0);
	assert_null(stk_conditions_get(&set, STK_CONDITION_STALLED));
	assert_true(stk_conditions_is_true(&set, STK_CONDITION_RECONCILING));
	assert_int_equal(stk_conditions_mark_reconciling(&set, STK_REASON_PROGRESSING_WITH_RETRY,
							 "retrying", 3, T3, NULL),
			 0);
	assert_string_equal(stk_conditions_get(&set, STK_CONDITION_RECONCILING)->reason,
			    "ProgressingWithRetry");
	/* Still True: the transition time is the first one. */
	assert_string_equal(
		stk_conditions_get(&set, STK_CONDITION_RECONCILING)->last_transition_time, T2);
	assert_int_equal(
		stk_conditions_mark_stalled(&set, "SecretNotFound", "no secret", 3, T3, NULL), 0);
	assert_null(stk_conditions_get(&set, STK_CONDITION_RECONCILING));
	/* A bad reason changes nothing, not even the other condition. */
	assert_int_equal(stk_conditions_mark_reconciling(&set, "bad reason", "", 3, T3, NULL),
			 STK_EINVAL);
	assert_true(stk_conditions_is_true(&set, STK_CONDITION_STALLED));
	assert_int_equal(stk_conditions_set(&set, "Ready", STK_CONDITION_FALSE, "SecretNotFound",
					    "", 3, T3, NULL),
			 0);
	assert_int_equal(
		stk_conditions_mark_reconciling(&set, STK_REASON_PROGRESSING, "", 3, T3, NULL), 0);
	stk_conditions_mark_idle(&set);
	assert_int_equal(set.len, 1);
	assert_string_equal(set.items[0].type, "Ready");
	stk_conditions_mark_idle(&set);
	assert_int_equal(set.len, 1);
	stk_conditions_release(&set);
}

static void test_conditions__summarize_ready(void **state)
{
	static const char *const positive[] = {"SourceReady", "RefResolved", NULL};
	static const char *const negative[] = {"FetchFailed", NULL};
	struct stk_conditions_summary_opts o = STK_CONDITIONS_SUMMARY_OPTS_INIT;
	struct stk_conditions set = STK_CONDITIONS_INIT;
	const struct stk_condition *r;

	(void)state;
	o.positive = positive;
	o.negative = negative;
	o.success_message = "stored main@sha1:abc";

	/* Sub-conditions not reported yet: Unknown, naming the first. */
	assert_int_equal(stk_conditions_summarize_ready(&set, &o, 5, T1, NULL), 0);
	r = stk_conditions_get(&set, "Ready");
	assert_int_equal(r->status, STK_CONDITION_UNKNOWN);
	assert_string_equal(r->reason, "Progressing");
	assert_string_equal(r->message, "SourceReady not yet reported");
	assert_int_equal(r->observed_generation, 5);

	/* An Unknown one is copied. */
	assert_int_equal(stk_conditions_set(&set, "SourceReady", STK_CONDITION_UNKNOWN, "Waiting",
					    "source pending", 5, T1, NULL),
			 0);
	assert_int_equal(stk_conditions_set(&set, "RefResolved", STK_CONDITION_TRUE, "RefResolved",
					    "abc", 5, T1, NULL),
			 0);
	assert_int_equal(stk_conditions_summarize_ready(&set, &o, 5, T1, NULL), 0);
	r = stk_conditions_get(&set, "Ready");
	assert_int_equal(r->status, STK_CONDITION_UNKNOWN);
	assert_string_equal(r->reason, "Waiting");

	/* A False one beats an earlier Unknown one. */
	assert_int_equal(stk_conditions_set(&set, "RefResolved", STK_CONDITION_FALSE,
					    "RefResolutionFailed", "no such ref", 5, T1, NULL),
			 0);
	assert_int_equal(stk_conditions_summarize_ready(&set, &o, 5, T2, NULL), 0);
	r = stk_conditions_get(&set, "Ready");
	assert_int_equal(r->status, STK_CONDITION_FALSE);
	assert_string_equal(r->reason, "RefResolutionFailed");
	assert_string_equal(r->message, "no such ref");
	assert_string_equal(r->last_transition_time, T2);

	/* An abnormal-true condition beats the positive ones. */
	assert_int_equal(stk_conditions_set(&set, "FetchFailed", STK_CONDITION_TRUE,
					    "AuthenticationFailed", "bad token", 5, T2, NULL),
			 0);
	assert_int_equal(stk_conditions_summarize_ready(&set, &o, 5, T2, NULL), 0);
	r = stk_conditions_get(&set, "Ready");
	assert_string_equal(r->reason, "AuthenticationFailed");

	/* Stalled beats everything. */
	assert_int_equal(
		stk_conditions_mark_stalled(&set, "InvalidSpec", "url rejected", 5, T2, NULL), 0);
	assert_int_equal(stk_conditions_summarize_ready(&set, &o, 5, T2, NULL), 0);
	r = stk_conditions_get(&set, "Ready");
	assert_int_equal(r->status, STK_CONDITION_FALSE);
	assert_string_equal(r->reason, "InvalidSpec");
	assert_string_equal(r->message, "url rejected");

	/* All good but still reconciling: Unknown from Reconciling. */
	stk_conditions_mark_idle(&set);
	assert_true(stk_conditions_remove(&set, "FetchFailed"));
	assert_int_equal(stk_conditions_set(&set, "SourceReady", STK_CONDITION_TRUE, "SourceReady",
					    "", 5, T3, NULL),
			 0);
	assert_int_equal(stk_conditions_set(&set, "RefResolved", STK_CONDITION_TRUE, "RefResolved",
					    "abc", 5, T3, NULL),
			 0);
	assert_int_equal(stk_conditions_mark_reconciling(&set, STK_REASON_PROGRESSING,
							 "2/3 gateways synced", 5, T3, NULL),
			 0);
	assert_int_equal(stk_conditions_summarize_ready(&set, &o, 5, T3, NULL), 0);
	r = stk_conditions_get(&set, "Ready");
	assert_int_equal(r->status, STK_CONDITION_UNKNOWN);
	assert_string_equal(r->message, "2/3 gateways synced");

	/* Done: True with the success reason; a later summary keeps the time. */
	stk_conditions_mark_idle(&set);
	assert_int_equal(stk_conditions_summarize_ready(&set, &o, 6, T3, NULL), 0);
	r = stk_conditions_get(&set, "Ready");
	assert_int_equal(r->status, STK_CONDITION_TRUE);
	assert_string_equal(r->reason, "Succeeded");
	assert_string_equal(r->message, "stored main@sha1:abc");
	assert_int_equal(r->observed_generation, 6);
	assert_int_equal(stk_conditions_summarize_ready(&set, &o, 7, "2024-06-01T00:00:00Z", NULL),
			 0);
	assert_string_equal(stk_conditions_get(&set, "Ready")->last_transition_time, T3);

	/* No options: Ready=True unless Stalled or Reconciling. */
	assert_int_equal(stk_conditions_summarize_ready(&set, NULL, 7, T3, NULL), 0);
	assert_true(stk_conditions_is_true(&set, "Ready"));
	o.success_reason = "bad reason";
	assert_int_equal(stk_conditions_summarize_ready(&set, &o, 7, T3, NULL), STK_EINVAL);
	stk_conditions_release(&set);
}

static void test_conditions__format_time(void **state)
{
	char out[STK_CONDITION_TIME_SIZE];
	time_t t;

	(void)state;
	assert_int_equal(stk_conditions_format_time(out, 0), 0);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	assert_int_equal(stk_conditions_format_time(out, 951782400), 0);
	assert_string_equal(out, "2000-02-29T00:00:00Z");
	assert_int_equal(stk_conditions_format_time(out, -1), 0);
	assert_string_equal(out, "1969-12-31T23:59:59Z");
	assert_int_equal(stk_conditions_format_time(out, 1714557600), 0);
	assert_string_equal(out, T1);
	assert_int_equal(stk_conditions_format_time(out, (time_t)253402300799), 0);
	assert_string_equal(out, "9999-12-31T23:59:59Z");
	assert_int_equal(stk_conditions_format_time(out, (time_t)253402300800), STK_EINVAL);
	assert_string_equal(out, "");

	/* now() agrees with gmtime. */
	t = time(NULL);
	stk_conditions_now(out);
	{
		struct tm tm;
		char ref[32];
		gmtime_r(&t, &tm);
		strftime(ref, sizeof(ref), "%Y-%m-%dT%H:%M", &tm);
		/* Same minute unless the test straddled one. */
		if (tm.tm_sec < 59)
			assert_memory_equal(out, ref, 16);
	}
	assert_int_equal(strlen(out), 20);
	assert_int_equal(out[19], 'Z');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conditions__set_appends_in_insertion_order),
		cmocka_unit_test(test_conditions__transition_time_changes_only_on_status_flip),
		cmocka_unit_test(test_conditions__invalid_input_is_an_error_not_a_change),
		cmocka_unit_test(test_conditions__message_is_cut_at_a_character_boundary),
		cmocka_unit_test(test_conditions__decode_the_api_server_shape),
		cmocka_unit_test(test_conditions__decode_rejects_wrong_types_naming_the_field),
		cmocka_unit_test(test_conditions__encode_round_trips),
		cmocka_unit_test(test_conditions__equal_ignores_order_not_content),
		cmocka_unit_test(test_conditions__kstatus_reconciling_and_stalled),
		cmocka_unit_test(test_conditions__summarize_ready),
		cmocka_unit_test(test_conditions__format_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
