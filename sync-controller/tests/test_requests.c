/* The sync-controller's in-memory bookkeeping of requested refs (controller.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "syncctl.h"

static int setup(void **state)
{
	static struct syncctl c;

	memset(&c, 0, sizeof(c));
	syncctl_requests_init(&c);
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	syncctl_requests_release(*state);
	return 0;
}

/* A mark is taken once, only for the Stoker marked, and only while it still requests
 * the ref it was marked for. */
static void test_superseded_taken_once(void **state)
{
	struct syncctl *c = *state;

	assert_false(syncctl_take_superseded(c, "ns", "a", "v1"));
	syncctl_mark_superseded(c, "ns", "a", "v1");
	syncctl_mark_superseded(c, "ns", "a", "v1");
	assert_false(syncctl_take_superseded(c, "ns", "b", "v1"));
	assert_false(syncctl_take_superseded(c, "other", "a", "v1"));
	assert_true(syncctl_take_superseded(c, "ns", "a", "v1"));
	assert_false(syncctl_take_superseded(c, "ns", "a", "v1"));
	/* a request that came after the mark stands, and the mark is gone */
	syncctl_mark_superseded(c, "ns", "a", "v1");
	assert_false(syncctl_take_superseded(c, "ns", "a", "v2"));
	assert_false(syncctl_take_superseded(c, "ns", "a", "v1"));
	assert_false(syncctl_take_superseded(c, "ns", "a", NULL));
	syncctl_mark_superseded(c, "ns", "z", "v3"); /* left for the release */
}

/*
 * The version read before the drop shows the dropped request for as long as the cache
 * holds it; the first newer version forgets the note, so a later request arriving at
 * that very version is passed on again.
 */
static void test_dropped_until_newer_version(void **state)
{
	struct syncctl *c = *state;

	assert_false(syncctl_shows_dropped(c, "ns", "a", "10"));
	syncctl_note_dropped(c, "ns", "a", "10");
	assert_true(syncctl_shows_dropped(c, "ns", "a", "10"));
	assert_true(syncctl_shows_dropped(c, "ns", "a", "10"));
	assert_false(syncctl_shows_dropped(c, "ns", "b", "10"));
	assert_false(syncctl_shows_dropped(c, "ns", "a", "11"));
	assert_false(syncctl_shows_dropped(c, "ns", "a", "10")); /* forgotten */
	assert_false(syncctl_shows_dropped(c, "ns", "a", NULL));
}

/* A second drop replaces the first note (freed, under ASan and valgrind). */
static void test_dropped_note_replaced(void **state)
{
	struct syncctl *c = *state;

	syncctl_note_dropped(c, "ns", "a", "10");
	syncctl_note_dropped(c, "ns", "a", "12");
	assert_false(syncctl_shows_dropped(c, "ns", "a", "10"));
	syncctl_note_dropped(c, "ns", "a", "12");
	syncctl_note_dropped(c, "ns", "z", "3"); /* left for the release */
	assert_true(syncctl_shows_dropped(c, "ns", "a", "12"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_superseded_taken_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropped_until_newer_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropped_note_replaced, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
