#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "stk/map.h"

static void test_map__put_get_del_many(void **state)
{
	stk_map m = STK_MAP_INIT;
	char key[32];
	(void)state;
	for (intptr_t i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "ns%ld/obj%ld", (long)(i % 7), (long)i);
		assert_null(stk_map_put(&m, key, (void *)(i + 1)));
	}
	assert_int_equal(m.len, 10000);
	snprintf(key, sizeof(key), "ns%d/obj%d", 4242 % 7, 4242);
	assert_int_equal((intptr_t)stk_map_get(&m, key), 4243);
	assert_int_equal((intptr_t)stk_map_put(&m, key, (void *)7), 4243);
	assert_int_equal((intptr_t)stk_map_del(&m, key), 7);
	assert_null(stk_map_get(&m, key));
	assert_null(stk_map_del(&m, key));
	assert_int_equal(m.len, 9999);
	stk_map_release(&m);
	assert_null(stk_map_get(&m, "x"));
}

static void test_map__iterate_and_delete_current(void **state)
{
	stk_map m = STK_MAP_INIT;
	struct stk_map_iter it = {0};
	struct stk_map_entry *e;
	char key[16];
	int seen = 0;
	(void)state;
	for (intptr_t i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%ld", (long)i);
		stk_map_put(&m, key, (void *)i);
	}
	while ((e = stk_map_next(&m, &it)) != NULL) {
		seen++;
		if ((intptr_t)e->value % 2)
			stk_map_del(&m, e->key);
	}
	assert_int_equal(seen, 100);
	assert_int_equal(m.len, 50);
	assert_non_null(stk_map_get(&m, "k2"));
	assert_null(stk_map_get(&m, "k3"));
	stk_map_release(&m);
}

/* The values go with the map (valgrind and ASan see a leak otherwise). */
static void test_map__release_free(void **state)
{
	stk_map m = STK_MAP_INIT;
	char key[16];
	(void)state;
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		stk_map_put(&m, key, strdup(key));
	}
	stk_map_put(&m, "null", NULL);
	stk_map_release_free(&m);
	assert_int_equal(m.len, 0);
	assert_null(stk_map_get(&m, "k1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map__put_get_del_many),
		cmocka_unit_test(test_map__iterate_and_delete_current),
		cmocka_unit_test(test_map__release_free),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
