/* The event recorder against a real API server: repeats are counted, not duplicated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "itest.h"
#include "stk/events.h"
#include "stk/json.h"

static stk_kube *k;
static const char *ns;

static int setup(void **state)
{
	(void)state;
	k = itest_client();
	ns = itest_namespace(k, "itest-events");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	itest_delete_namespace(k, ns);
	stk_kube_free(k);
	return 0;
}

struct tally {
	int events;
	int64_t total;
	int64_t max_count;
	char reason[64];
	char component[64];
};

static int tally_event(yajl_val ev, void *arg)
{
	struct tally *t = arg;
	int64_t c = 0;
	stk_json_int(ev, &c, "count", NULL);
	t->events++;
	t->total += c;
	if (c > t->max_count)
		t->max_count = c;
	snprintf(t->reason, sizeof(t->reason), "%s", stk_json_str(ev, "reason", NULL));
	snprintf(t->component, sizeof(t->component), "%s",
		 stk_json_str(ev, "source", "component", NULL));
	return 0;
}

static struct tally events_about(const char *name)
{
	struct stk_list_opts lo = STK_LIST_OPTS_INIT;
	struct tally t;
	char sel[128];
	stk_err err = STK_ERR_INIT;

	memset(&t, 0, sizeof(t));
	snprintf(sel, sizeof(sel), "involvedObject.name=%s", name);
	lo.field_selector = sel;
	if (stk_kube_list_all(k, &STK_GVR_EVENTS, ns, &lo, tally_event, &t, NULL, &err))
		fail_msg("list events: %s", err.message);
	return t;
}

static stk_recorder *recorder(uint64_t window_ms)
{
	struct stk_recorder_opts o = STK_RECORDER_OPTS_INIT;
	stk_recorder *r = NULL;
	o.component = "itest-controller";
	o.instance = "itest-0";
	o.dedupe_window_ms = window_ms;
	assert_int_equal(stk_recorder_new(&r, k, &o, NULL), 0);
	return r;
}

static void test_events__identical_events_are_counted(void **state)
{
	struct stk_event_ref obj = {"stoker.io/v1alpha1", "Stoker", ns, "plant", NULL, NULL};
	stk_recorder *r = recorder(600000);
	stk_err err = STK_ERR_INIT;
	struct tally t;
	(void)state;

	for (int i = 0; i < 3; i++)
		assert_int_equal(stk_recorder_event(r, &obj, STK_EVENT_WARNING, "SyncFailed", &err,
						    "Sync failed on gateway %s: %s", "area2",
						    "disk full"),
				 0);
	t = events_about("plant");
	assert_int_equal(t.events, 1);
	assert_int_equal(t.max_count, 3);
	assert_string_equal(t.reason, "SyncFailed");
	assert_string_equal(t.component, "itest-controller");

	/* Another message is another series. */
	assert_int_equal(stk_recorder_event(r, &obj, STK_EVENT_WARNING, "SyncFailed", &err,
					    "Sync failed on gateway %s", "area3"),
			 0);
	t = events_about("plant");
	assert_int_equal(t.events, 2);
	assert_int_equal(t.total, 4);
	stk_recorder_free(r);
}

static void test_events__window_expiry_and_deleted_events_start_new_series(void **state)
{
	struct stk_event_ref obj = {"stoker.io/v1alpha1", "Stoker", ns, "short", NULL, NULL};
	stk_recorder *r = recorder(300);
	stk_err err = STK_ERR_INIT;
	(void)state;

	assert_int_equal(
		stk_recorder_event(r, &obj, STK_EVENT_NORMAL, "Paused", &err, "paused by user"), 0);
	usleep(400 * 1000);
	assert_int_equal(
		stk_recorder_event(r, &obj, STK_EVENT_NORMAL, "Paused", &err, "paused by user"), 0);
	assert_int_equal(events_about("short").events, 2);
	stk_recorder_free(r);

	/* Deleted behind the recorder's back: the next repeat creates it again. */
	struct stk_event_ref other = {"stoker.io/v1alpha1", "Stoker", ns, "gone", NULL, NULL};
	r = recorder(600000);
	assert_int_equal(stk_recorder_event(r, &other, STK_EVENT_NORMAL, "Resumed", &err, "x"), 0);
	struct stk_list_opts lo = STK_LIST_OPTS_INIT;
	yajl_val list = NULL;
	lo.field_selector = "involvedObject.name=gone";
	assert_int_equal(stk_kube_list(k, &STK_GVR_EVENTS, ns, &lo, &list, &err), 0);
	yajl_val items = stk_json_arr(list, "items", NULL);
	assert_int_equal(items->u.array.len, 1);
	assert_int_equal(
		stk_kube_delete(k, &STK_GVR_EVENTS, ns,
				stk_json_str(items->u.array.values[0], "metadata", "name", NULL),
				NULL, &err),
		0);
	yajl_tree_free(list);
	assert_int_equal(stk_recorder_event(r, &other, STK_EVENT_NORMAL, "Resumed", &err, "x"), 0);
	assert_int_equal(events_about("gone").events, 1);
	stk_recorder_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events__identical_events_are_counted),
		cmocka_unit_test(test_events__window_expiry_and_deleted_events_start_new_series),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
