/*
 * libcurl's multi interface driven by the daemon's libuv loop: transfers run without
 * blocking the loop, each socket watched with a uv_poll and curl's timeout with a
 * uv_timer. Used by watches, informer lists, and any other asynchronous HTTP request.
 */
#ifndef STK_CURLM_H
#define STK_CURLM_H

#include <curl/curl.h>

#include "stk/err.h"
#include "stk/loop.h"

typedef struct stk_curlm stk_curlm;

/* Called on the loop thread when a transfer ends (result CURLE_OK or the error). */
typedef void (*stk_curlm_done_fn)(CURL *easy, CURLcode result, void *arg);

/* Creates the multi handle on `loop`. 0 or STK_EIO. Loop (or main, before running) thread. */
int stk_curlm_new(stk_curlm **out, stk_loop *loop, stk_err *err);

/*
 * Stops every transfer still running (without calling their done callbacks), closes the
 * uv handles and frees. The easy handles stay the callers'. NULL-safe. Loop thread.
 */
void stk_curlm_free(stk_curlm *m);

/*
 * Starts `easy` (fully configured by the caller). `done` runs once when it ends, unless
 * the caller removes it first. 0 or STK_EIO. Loop thread.
 */
int stk_curlm_add(stk_curlm *m, CURL *easy, stk_curlm_done_fn done, void *arg, stk_err *err);

/*
 * Aborts a running transfer; its done callback is not called. Safe to call from inside a
 * write or done callback of any transfer, and for a handle that is not running. Loop thread.
 */
void stk_curlm_remove(stk_curlm *m, CURL *easy);

/* Number of running transfers. */
size_t stk_curlm_running(const stk_curlm *m);

#endif
