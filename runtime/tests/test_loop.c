#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>

#include "stk/loop.h"

struct counter {
	stk_loop *loop;
	int hits;
	int order[4];
	int norder;
};

static void bump(void *arg)
{
	struct counter *c = arg;
	c->hits++;
}

static void *poster(void *arg)
{
	struct counter *c = arg;
	for (int i = 0; i < 1000; i++)
		stk_loop_post(c->loop, bump, c);
	stk_loop_shutdown(c->loop);
	return NULL;
}

static void test_loop__posts_from_other_threads_run_on_the_loop(void **state)
{
	struct counter c = {0};
	pthread_t t;
	(void)state;
	assert_int_equal(stk_loop_new(&c.loop, NULL), 0);
	pthread_create(&t, NULL, poster, &c);
	assert_int_equal(stk_loop_run(c.loop), 0);
	pthread_join(t, NULL);
	stk_loop_free(c.loop);
	/* Whatever the loop did not run before stopping, free ran. */
	assert_int_equal(c.hits, 1000);
}

static void hook_a(void *arg)
{
	struct counter *c = arg;
	c->order[c->norder++] = 1;
	stk_loop_shutdown_done(c->loop);
}

static void hook_b(void *arg)
{
	struct counter *c = arg;
	c->order[c->norder++] = 2;
	stk_loop_shutdown_done(c->loop);
}

static void send_term(void *arg)
{
	(void)arg;
	kill(getpid(), SIGTERM);
}

static void test_loop__sigterm_runs_hooks_in_reverse(void **state)
{
	struct counter c = {0};
	(void)state;
	assert_int_equal(stk_loop_new(&c.loop, NULL), 0);
	assert_int_equal(stk_loop_handle_signals(c.loop, NULL), 0);
	stk_loop_on_shutdown(c.loop, hook_a, &c);
	stk_loop_on_shutdown(c.loop, hook_b, &c);
	stk_loop_post(c.loop, send_term, NULL);
	assert_int_equal(stk_loop_run(c.loop), 0);
	assert_true(stk_loop_stopping(c.loop));
	stk_loop_free(c.loop);
	assert_int_equal(c.norder, 2);
	assert_int_equal(c.order[0], 2);
	assert_int_equal(c.order[1], 1);
}

static void hook_never_done(void *arg)
{
	(void)arg;
}

static void test_loop__grace_period_bounds_shutdown(void **state)
{
	stk_loop *loop;
	uint64_t t0;
	(void)state;
	assert_int_equal(stk_loop_new(&loop, NULL), 0);
	stk_loop_set_grace(loop, 50);
	stk_loop_on_shutdown(loop, hook_never_done, NULL);
	stk_loop_shutdown(loop);
	t0 = stk_now_ms();
	assert_int_equal(stk_loop_run(loop), 1);
	assert_true(stk_now_ms() - t0 >= 45);
	stk_loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop__posts_from_other_threads_run_on_the_loop),
		cmocka_unit_test(test_loop__sigterm_runs_hooks_in_reverse),
		cmocka_unit_test(test_loop__grace_period_bounds_shutdown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
