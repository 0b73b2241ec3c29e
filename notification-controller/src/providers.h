/*
 * One notification request per provider type (DESIGN.md §3.4, CONTRACTS.md "Event payload
 * of the generic provider"): the URL, the headers and the JSON body an Alert's provider
 * receives for one event. Pure: no I/O, no clock, no global state. docs/notifications.md
 * "Providers" lists what each type sends.
 *
 * Secrets (the token, the basic-auth pair, the address of a Slack/Teams/Discord/Google
 * Chat webhook, extra headers) go only where the service needs them: the URL, the
 * Authorization or X-Signature header, PagerDuty's routing_key. Error messages never
 * quote the address, a token or a header value.
 */
#ifndef NOTIFCTL_PROVIDERS_H
#define NOTIFCTL_PROVIDERS_H

#include <stddef.h>

#include "stk/buf.h"
#include "stk/err.h"

/* Event messages are cut (on a UTF-8 boundary, marked with "…") to this many bytes. */
#define NOTIFCTL_MESSAGE_MAX (32u * 1024)
/* A rendered body larger than this fails with STK_ETOOBIG. */
#define NOTIFCTL_BODY_MAX (1u * 1024 * 1024)
/* Longest provider address accepted, in bytes. */
#define NOTIFCTL_ADDRESS_MAX 8192u
/* Metadata entries beyond this many are not sent. */
#define NOTIFCTL_META_MAX 256u
/* Where pagerduty events go when the provider has no address (Events API v2). */
#define NOTIFCTL_PAGERDUTY_URL "https://events.pagerduty.com/v2/enqueue"

/* One core/v1 Event about a Stoker kind. Borrowed strings; NULL means absent. */
struct notifctl_event {
	const char *api_version, *kind, *ns, *name, *uid; /* involvedObject */
	const char *severity;				  /* "info", or "error" (Warning events) */
	const char *timestamp;				  /* RFC 3339 UTC */
	const char *reason, *message;
	const char *reporting_controller, *reporting_instance;
	/* metadata: the Alert's summary and eventMetadata, already merged, keys unique */
	const char *const *meta_keys;
	const char *const *meta_values;
	size_t nmeta;
};

/* An Alert's provider with its Secret resolved by the caller. Borrowed strings. */
struct notifctl_provider {
	/* generic generic-hmac slack msteams discord googlechat pagerduty alertmanager */
	const char *type;
	const char *address;		/* URL; the Secret's key address wins (caller) */
	const char *channel, *username; /* spec.provider */
	/* Secret key token: the HMAC key (generic-hmac), the routing key (pagerduty), a
	 * bearer token (generic, slack, alertmanager) */
	const char *token;
	const char *basic_user, *basic_password; /* Secret keys username/password (generic,
						    generic-hmac, alertmanager) */
	const char *headers; /* Secret key headers: a YAML or JSON map, or NULL */
};

/* What to send: POST `body` to `url` with `headers` ("Name: value", Content-Type too). */
struct notifctl_request {
	char *url;
	char **headers;
	size_t nheaders;
	stk_buf body;
};

/*
 * Checks a provider without rendering anything, for the Alert's Ready condition: the type
 * is known; an address is present (every type but pagerduty, which defaults to
 * NOTIFCTL_PAGERDUTY_URL), at most NOTIFCTL_ADDRESS_MAX bytes, and an http or https URL
 * with a host; a token is present for generic-hmac and pagerduty, and has no line break
 * where it goes into a header or PagerDuty's routing_key; username and password come
 * together, the username has no ':', and generic/alertmanager do not get both a token and
 * a username (both would be the Authorization header); Slack's chat.postMessage URL has
 * a token and a channel; a Discord address is the plain webhook URL, not its /slack
 * variant. `headers` parses as a YAML or JSON map (at most STK_LIMIT_HTTP_HEADERS bytes)
 * of header names (RFC 9110 tokens, each once) to scalar values without CR, LF or other
 * control characters except tab; Content-Length, Host and Transfer-Encoding (and
 * X-Signature for generic-hmac) cannot be set that way.
 *
 * Returns 0, STK_EINVAL (message names the field, never its value), STK_EPARSE (headers
 * are not YAML) or STK_ETOOBIG (headers too long). Pure; any thread.
 */
int notifctl_provider_check(const struct notifctl_provider *p, stk_err *err);

/*
 * Renders the request that sends event `e` to provider `p`, after the checks of
 * notifctl_provider_check. The message is cut to NOTIFCTL_MESSAGE_MAX bytes (less where
 * a service has a smaller limit), only the first NOTIFCTL_META_MAX metadata entries are
 * used, and a body above NOTIFCTL_BODY_MAX fails with STK_ETOOBIG. Headers from the
 * Secret come after the defaults and replace a default of the same name (Content-Type,
 * Authorization).
 *
 * On success `*out` owns its strings (free with notifctl_request_release); on failure it
 * is left untouched. Returns 0, the codes of notifctl_provider_check, or STK_EINVAL for
 * an event without kind, name or a known severity. Pure; any thread.
 */
int notifctl_render(const struct notifctl_provider *p, const struct notifctl_event *e,
		    struct notifctl_request *out, stk_err *err);

/*
 * Wipes (it may hold secrets) and frees what a request owns, leaving it empty. Accepts
 * NULL and a zeroed request. Any thread.
 */
void notifctl_request_release(struct notifctl_request *r);

#endif
