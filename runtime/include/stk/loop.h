/*
 * The daemon's one event loop (libuv): every socket, timer, watch, cache and HTTP server
 * lives on its thread. Other threads hand it work with stk_loop_post. SIGTERM and SIGINT
 * start a graceful shutdown: the registered shutdown hooks run on the loop thread, in
 * reverse order of registration, and the loop stops once they have all called
 * stk_loop_shutdown_done (or after the grace period).
 */
#ifndef STK_LOOP_H
#define STK_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "stk/err.h"

typedef struct stk_loop stk_loop;

typedef void (*stk_loop_fn)(void *arg);

/* Creates the loop and its wakeup handle. 0 or STK_EIO. Main thread. */
int stk_loop_new(stk_loop **out, stk_err *err);

/*
 * Closes every handle the loop still owns (running it until they are closed) and frees it.
 * NULL-safe. Main thread, after stk_loop_run returned.
 */
void stk_loop_free(stk_loop *loop);

/* The underlying libuv loop, for modules that add their own handles. Loop thread only. */
uv_loop_t *stk_loop_uv(stk_loop *loop);

/*
 * Queues fn(arg) to run on the loop thread, in posting order. Any thread; never blocks
 * for long and never fails (it allocates, aborting on OOM). Callbacks posted after the
 * loop stopped are run by stk_loop_free so their arguments are not leaked.
 */
void stk_loop_post(stk_loop *loop, stk_loop_fn fn, void *arg);

/*
 * Registers a hook run when shutdown starts (signal or stk_loop_shutdown). The hook must
 * eventually call stk_loop_shutdown_done(loop) once its component has stopped. Loop or
 * main thread, before or while running.
 */
void stk_loop_on_shutdown(stk_loop *loop, stk_loop_fn fn, void *arg);
void stk_loop_shutdown_done(stk_loop *loop);

/* Sets how long shutdown may take before the loop stops regardless (default 10 s). */
void stk_loop_set_grace(stk_loop *loop, uint64_t grace_ms);

/* Handles SIGTERM and SIGINT by starting shutdown. Call before stk_loop_run. */
int stk_loop_handle_signals(stk_loop *loop, stk_err *err);

/* Starts shutdown as a signal would. Any thread; idempotent. */
void stk_loop_shutdown(stk_loop *loop);

/* True once shutdown started. Any thread. */
bool stk_loop_stopping(stk_loop *loop);

/* Runs the loop until shutdown finished. Returns 0, or 1 if the grace period ran out. */
int stk_loop_run(stk_loop *loop);

/* Monotonic milliseconds (uv_hrtime based). Any thread. */
uint64_t stk_now_ms(void);

#endif
