/*
 * Liveness, readiness and startup checks served Kubernetes-style on an stk_http server:
 * /healthz and /livez (liveness), /readyz (readiness), /startupz (startup).
 *
 * Each endpoint runs the named checks of its kind and answers 200 "ok" when all pass, or
 * 503 listing every check ("[+]name ok" / "[-]name failed: message") followed by
 * "<endpoint> check failed". "?verbose" lists the checks on success too, ending with
 * "<endpoint> check passed"; "?exclude=name" skips one check (as the API server does).
 * During shutdown, readiness fails with the built-in "shutdown" check so the Service stops
 * sending traffic while liveness keeps passing.
 */
#ifndef STK_HEALTH_H
#define STK_HEALTH_H

#include <stdbool.h>

#include "stk/buf.h"
#include "stk/err.h"
#include "stk/http.h"

typedef struct stk_health stk_health;

/* Which endpoints a check belongs to (bit set). */
enum stk_health_kind {
	STK_HEALTH_LIVE = 1,	/* /healthz, /livez: restart the container when failing */
	STK_HEALTH_READY = 2,	/* /readyz: take the pod out of Service endpoints */
	STK_HEALTH_STARTUP = 4, /* /startupz: still starting up */
};

/*
 * A check: returns true when healthy; on failure it may append a one-line reason to
 * `message` (capped; newlines are flattened). Runs on the loop thread while a probe is
 * answered, so it must be quick and non-blocking: read state that other threads publish
 * (an atomic flag, a timestamp) rather than doing I/O.
 */
typedef bool (*stk_health_check_fn)(void *arg, stk_buf *message);

/* Creates an empty registry (every endpoint passes). Never fails. Any thread. */
stk_health *stk_health_new(void);

/* Frees the registry. It must no longer be served (free the server first). NULL-safe. */
void stk_health_free(stk_health *h);

/*
 * Adds check `name` ([a-z0-9] plus '-', '_' and '.', at most 63 characters; "shutdown" is
 * reserved) for the endpoints in `kinds` (STK_HEALTH_* bits). `arg` is borrowed. 0,
 * STK_EINVAL (bad name or kinds), STK_EEXIST (name taken). Loop thread, or before serving.
 */
int stk_health_add(stk_health *h, const char *name, unsigned kinds, stk_health_check_fn fn,
		   void *arg, stk_err *err);

/* Makes readiness fail from now on ("[-]shutdown failed: shutting down"). Any thread. */
void stk_health_set_shutting_down(stk_health *h);

/*
 * Evaluates the checks of one kind (a single STK_HEALTH_* value) into `report`, in the
 * format of the endpoints without the final "check passed/failed" line; `exclude` may name
 * a check to skip (or be NULL). Returns true when all passed. Loop thread.
 */
bool stk_health_evaluate(stk_health *h, enum stk_health_kind kind, const char *exclude,
			 stk_buf *report);

/*
 * Mounts GET /healthz, /livez, /readyz and /startupz for `h` on `srv`. `h` must outlive
 * the server. 0 or the stk_http_route errors. Loop thread, or before the loop runs.
 */
int stk_health_serve(stk_health *h, stk_http_server *srv, stk_err *err);

#endif
