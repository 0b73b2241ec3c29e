#include "testloop.h"

#include <pthread.h>
#include <unistd.h>

static pthread_t loop_thread;

static void *loop_main(void *arg)
{
	stk_loop_run(arg);
	return NULL;
}

void testloop_start(stk_loop *loop)
{
	pthread_create(&loop_thread, NULL, loop_main, loop);
}

void testloop_stop(stk_loop *loop)
{
	stk_loop_shutdown(loop);
	pthread_join(loop_thread, NULL);
}

struct call {
	void (*fn)(void *);
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void call_run(void *arg)
{
	struct call *c = arg;

	c->fn(c->arg);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void testloop_call(stk_loop *loop, void (*fn)(void *), void *arg)
{
	struct call c = {fn, arg, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};

	stk_loop_post(loop, call_run, &c);
	pthread_mutex_lock(&c.lock);
	while (!c.done)
		pthread_cond_wait(&c.cond, &c.lock);
	pthread_mutex_unlock(&c.lock);
}

bool testloop_wait(bool (*cond)(void *), void *arg, uint64_t timeout_ms)
{
	uint64_t waited = 0;

	while (!cond(arg)) {
		if (waited >= timeout_ms)
			return false;
		usleep(20000);
		waited += 20;
	}
	return true;
}
