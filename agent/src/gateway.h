/*
 * The Ignition gateway's HTTP API, as the agent uses it (DESIGN.md §5): scan projects and
 * config after a sync, the gateway's run state, and open Designer sessions. Every call
 * sends the API token in `X-Ignition-API-Token`; https when GATEWAY_TLS is true (the
 * certificate is checked against GATEWAY_CA_FILE when given; otherwise not, as the
 * gateway is on the pod's own loopback and usually has a self-signed certificate).
 */
#ifndef AGENT_GATEWAY_H
#define AGENT_GATEWAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stk/buf.h"
#include "stk/err.h"

struct agent_gateway {
	char base[300];		 /* "http://localhost:8088" */
	const char *ca_file;	 /* NULL: TLS certificate not verified */
	const char *token_file;	 /* read on every call (the Secret may rotate); NULL: none */
	uint64_t timeout_ms;	 /* per request; default 10 s */
	uint64_t retry_delay_ms; /* first backoff of scan retries; default 1 s, doubling */
	const volatile sig_atomic_t *stop; /* cuts retries short; may be NULL */
};

/* Sets the defaults and the base URL. Any thread. */
void agent_gateway_init(struct agent_gateway *gw, const char *host, int port, bool tls,
			const char *ca_file, const char *token_file);

/*
 * POST /data/api/v1/scan/projects, then /data/api/v1/scan/config, each tried up to 3
 * times with backoff on a connection error, 429 or 5xx; any 2xx is success. `summary`
 * receives "projects=200 config=200" (the statuses; "error" for a transport failure).
 * 0; STK_EAUTH on 401/403 (not retried: a wrong token does not heal); STK_EUNAVAIL when
 * the tries ran out; STK_ECANCELED when *stop was set. Worker threads; blocking.
 */
int agent_gateway_scan(struct agent_gateway *gw, stk_buf *summary, stk_err *err);

/*
 * GET /system/gwinfo: *running is true when it answers 200 with ContextStatus=RUNNING
 * (or without that key), false for 503 or another ContextStatus (commissioning,
 * starting). 0, or STK_EUNAVAIL when the gateway cannot be reached or answers another
 * status. Worker threads; blocking.
 */
int agent_gateway_running(struct agent_gateway *gw, bool *running, stk_err *err);

/*
 * GET /data/api/v1/designers: *count open Designer sessions, `who` receives up to five
 * "user@project" names, comma-separated. Accepts the 8.3 shape {"items":[…]} and a bare
 * array. 0; STK_EAUTH (401/403); STK_EUNAVAIL; STK_EINVAL (not JSON). Worker threads.
 */
int agent_gateway_designers(struct agent_gateway *gw, size_t *count, stk_buf *who, stk_err *err);

#endif
