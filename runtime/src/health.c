#include "stk/health.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"

#define HEALTH_NAME_MAX 63
/* One check's failure message in a probe answer. */
#define HEALTH_MESSAGE_MAX 1024u
/* A whole probe answer. */
#define HEALTH_REPORT_MAX (64u * 1024)

struct health_check {
	char *name;
	unsigned kinds;
	stk_health_check_fn fn;
	void *arg;
};

struct health_endpoint {
	stk_health *h;
	enum stk_health_kind kind;
	const char *path;
	const char *label; /* "healthz" in "healthz check passed" */
};

struct stk_health {
	struct health_check *checks;
	size_t nchecks;
	atomic_bool shutting_down;
	struct health_endpoint endpoints[4];
};

stk_health *stk_health_new(void)
{
	stk_health *h = stk_calloc(1, sizeof(*h));

	atomic_init(&h->shutting_down, false);
	h->endpoints[0] = (struct health_endpoint){h, STK_HEALTH_LIVE, "/healthz", "healthz"};
	h->endpoints[1] = (struct health_endpoint){h, STK_HEALTH_LIVE, "/livez", "livez"};
	h->endpoints[2] = (struct health_endpoint){h, STK_HEALTH_READY, "/readyz", "readyz"};
	h->endpoints[3] = (struct health_endpoint){h, STK_HEALTH_STARTUP, "/startupz", "startupz"};
	return h;
}

void stk_health_free(stk_health *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->nchecks; i++)
		free(h->checks[i].name);
	free(h->checks);
	free(h);
}

static bool health_name_ok(const char *s)
{
	size_t i;

	if (!s || !*s || strlen(s) > HEALTH_NAME_MAX)
		return false;
	for (i = 0; s[i]; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}

int stk_health_add(stk_health *h, const char *name, unsigned kinds, stk_health_check_fn fn,
		   void *arg, stk_err *err)
{
	const unsigned all = STK_HEALTH_LIVE | STK_HEALTH_READY | STK_HEALTH_STARTUP;
	struct health_check *c;
	size_t i;

	if (!health_name_ok(name) || strcmp(name, "shutdown") == 0)
		return stk_err_set(err, STK_EINVAL, "health check name \"%s\" is not allowed",
				   name ? name : "(null)");
	if (kinds == 0 || (kinds & ~all) || !fn)
		return stk_err_set(err, STK_EINVAL, "health check %s: bad kinds or no function",
				   name);
	for (i = 0; i < h->nchecks; i++)
		if (strcmp(h->checks[i].name, name) == 0)
			return stk_err_set(err, STK_EEXIST, "health check %s already exists", name);
	h->checks = stk_reallocarray(h->checks, h->nchecks + 1, sizeof(*h->checks));
	c = &h->checks[h->nchecks++];
	c->name = stk_strdup(name);
	c->kinds = kinds;
	c->fn = fn;
	c->arg = arg;
	return 0;
}

void stk_health_set_shutting_down(stk_health *h)
{
	atomic_store(&h->shutting_down, true);
}

/* Appends "[+]name ok\n" or "[-]name failed: msg\n", the message on one line. */
static void health_line(stk_buf *report, const char *name, bool ok, const stk_buf *msg)
{
	size_t i;

	if (ok) {
		stk_buf_printf(report, "[+]%s ok\n", name);
		return;
	}
	stk_buf_printf(report, "[-]%s failed", name);
	if (msg->len) {
		stk_buf_puts(report, ": ");
		for (i = 0; i < msg->len; i++) {
			char c = msg->ptr[i];
			stk_buf_putc(report, (c == '\n' || c == '\r' || c == '\t') ? ' ' : c);
		}
	}
	stk_buf_putc(report, '\n');
}

bool stk_health_evaluate(stk_health *h, enum stk_health_kind kind, const char *exclude,
			 stk_buf *report)
{
	stk_buf msg = STK_BUF_INIT(HEALTH_MESSAGE_MAX);
	bool all_ok = true;
	size_t i;

	if (kind == STK_HEALTH_READY) {
		bool down = atomic_load(&h->shutting_down);
		stk_buf_puts(&msg, "shutting down");
		if (!(exclude && strcmp(exclude, "shutdown") == 0)) {
			health_line(report, "shutdown", !down, &msg);
			all_ok = !down;
		}
	}
	for (i = 0; i < h->nchecks; i++) {
		const struct health_check *c = &h->checks[i];
		bool ok;
		if (!(c->kinds & (unsigned)kind) || (exclude && strcmp(exclude, c->name) == 0))
			continue;
		stk_buf_reset(&msg);
		ok = c->fn(c->arg, &msg);
		health_line(report, c->name, ok, &msg);
		all_ok = all_ok && ok;
	}
	stk_buf_release(&msg);
	return all_ok;
}

static int health_handler(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	const struct health_endpoint *ep = arg;
	stk_buf report = STK_BUF_INIT(HEALTH_REPORT_MAX);
	bool ok, verbose = stk_http_request_query(req, "verbose") != NULL;

	ok = stk_health_evaluate(ep->h, ep->kind, stk_http_request_query(req, "exclude"), &report);
	if (ok && !verbose) {
		stk_buf_reset(&report);
		stk_buf_puts(&report, "ok");
	} else {
		stk_buf_printf(&report, "%s check %s\n", ep->label, ok ? "passed" : "failed");
	}
	stk_http_response_header(resp, "Cache-Control", "no-store", NULL);
	stk_http_response_body_take(resp, ok ? 200 : 503, "text/plain; charset=utf-8", &report);
	return STK_HTTP_DONE;
}

int stk_health_serve(stk_health *h, stk_http_server *srv, stk_err *err)
{
	size_t i;
	int rc;

	for (i = 0; i < sizeof(h->endpoints) / sizeof(h->endpoints[0]); i++) {
		rc = stk_http_route(srv, "GET", h->endpoints[i].path, health_handler,
				    &h->endpoints[i], err);
		if (rc)
			return rc;
	}
	return 0;
}
