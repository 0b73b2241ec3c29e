#include "stk/loop.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "stk/alloc.h"

struct loop_task {
	stk_loop_fn fn;
	void *arg;
	struct loop_task *next;
};

struct loop_hook {
	stk_loop_fn fn;
	void *arg;
};

struct stk_loop {
	uv_loop_t uv;
	uv_async_t wakeup;
	uv_signal_t sigterm, sigint;
	uv_timer_t grace_timer;
	bool signals, grace_started;

	pthread_mutex_t lock; /* guards the task queue */
	struct loop_task *head, *tail;

	struct loop_hook *hooks;
	size_t nhooks, pending_hooks;
	uint64_t grace_ms;
	atomic_bool stopping;
	atomic_bool shutdown_requested;
	int exit_code;
};

uint64_t stk_now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static void loop_drain(stk_loop *loop)
{
	struct loop_task *t;

	pthread_mutex_lock(&loop->lock);
	t = loop->head;
	loop->head = loop->tail = NULL;
	pthread_mutex_unlock(&loop->lock);
	while (t) {
		struct loop_task *next = t->next;
		t->fn(t->arg);
		free(t);
		t = next;
	}
}

static void loop_begin_shutdown(stk_loop *loop);

static void loop_on_wakeup(uv_async_t *h)
{
	stk_loop *loop = h->data;

	loop_drain(loop);
	if (atomic_load(&loop->shutdown_requested) && !atomic_load(&loop->stopping))
		loop_begin_shutdown(loop);
}

static void loop_on_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	stk_loop_shutdown(h->data);
}

int stk_loop_new(stk_loop **out, stk_err *err)
{
	stk_loop *loop = stk_calloc(1, sizeof(*loop));
	int rc;

	rc = uv_loop_init(&loop->uv);
	if (rc) {
		free(loop);
		return stk_err_set(err, STK_EIO, "uv_loop_init: %s", uv_strerror(rc));
	}
	pthread_mutex_init(&loop->lock, NULL);
	uv_async_init(&loop->uv, &loop->wakeup, loop_on_wakeup);
	loop->wakeup.data = loop;
	uv_timer_init(&loop->uv, &loop->grace_timer);
	loop->grace_timer.data = loop;
	loop->grace_ms = 10000;
	loop->uv.data = loop;
	*out = loop;
	return 0;
}

uv_loop_t *stk_loop_uv(stk_loop *loop)
{
	return &loop->uv;
}

void stk_loop_post(stk_loop *loop, stk_loop_fn fn, void *arg)
{
	struct loop_task *t = stk_malloc(sizeof(*t));

	t->fn = fn;
	t->arg = arg;
	t->next = NULL;
	pthread_mutex_lock(&loop->lock);
	if (loop->tail)
		loop->tail->next = t;
	else
		loop->head = t;
	loop->tail = t;
	pthread_mutex_unlock(&loop->lock);
	uv_async_send(&loop->wakeup);
}

void stk_loop_on_shutdown(stk_loop *loop, stk_loop_fn fn, void *arg)
{
	loop->hooks = stk_reallocarray(loop->hooks, loop->nhooks + 1, sizeof(*loop->hooks));
	loop->hooks[loop->nhooks].fn = fn;
	loop->hooks[loop->nhooks].arg = arg;
	loop->nhooks++;
}

void stk_loop_set_grace(stk_loop *loop, uint64_t grace_ms)
{
	loop->grace_ms = grace_ms;
}

static void loop_on_grace_expired(uv_timer_t *t)
{
	stk_loop *loop = t->data;

	loop->exit_code = 1;
	uv_stop(&loop->uv);
}

void stk_loop_shutdown_done(stk_loop *loop)
{
	if (loop->pending_hooks > 0 && --loop->pending_hooks == 0)
		uv_stop(&loop->uv);
}

/* Runs on the loop thread. */
static void loop_begin_shutdown(stk_loop *loop)
{
	size_t i;

	if (atomic_exchange(&loop->stopping, true))
		return;
	if (loop->nhooks == 0) {
		uv_stop(&loop->uv);
		return;
	}
	loop->pending_hooks = loop->nhooks;
	uv_timer_start(&loop->grace_timer, loop_on_grace_expired, loop->grace_ms, 0);
	loop->grace_started = true;
	for (i = loop->nhooks; i > 0; i--)
		loop->hooks[i - 1].fn(loop->hooks[i - 1].arg);
}

void stk_loop_shutdown(stk_loop *loop)
{
	atomic_store(&loop->shutdown_requested, true);
	uv_async_send(&loop->wakeup);
}

bool stk_loop_stopping(stk_loop *loop)
{
	return atomic_load(&loop->shutdown_requested);
}

int stk_loop_handle_signals(stk_loop *loop, stk_err *err)
{
	int rc;

	if (loop->signals)
		return 0;
	uv_signal_init(&loop->uv, &loop->sigterm);
	uv_signal_init(&loop->uv, &loop->sigint);
	loop->sigterm.data = loop->sigint.data = loop;
	rc = uv_signal_start(&loop->sigterm, loop_on_signal, SIGTERM);
	if (!rc)
		rc = uv_signal_start(&loop->sigint, loop_on_signal, SIGINT);
	loop->signals = true;
	if (rc)
		return stk_err_set(err, STK_EIO, "signal handler: %s", uv_strerror(rc));
	/* A peer that closes a socket must not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int stk_loop_run(stk_loop *loop)
{
	if (atomic_load(&loop->shutdown_requested))
		loop_begin_shutdown(loop);
	if (!atomic_load(&loop->stopping) || loop->pending_hooks > 0)
		uv_run(&loop->uv, UV_RUN_DEFAULT);
	uv_timer_stop(&loop->grace_timer);
	return loop->exit_code;
}

static void loop_close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void stk_loop_free(stk_loop *loop)
{
	if (!loop)
		return;
	/* Posted work may own memory: run it so it can release what it holds. */
	loop_drain(loop);
	uv_walk(&loop->uv, loop_close_walk, NULL);
	while (uv_run(&loop->uv, UV_RUN_NOWAIT) != 0)
		;
	loop_drain(loop);
	uv_loop_close(&loop->uv);
	pthread_mutex_destroy(&loop->lock);
	free(loop->hooks);
	free(loop);
}
