#include "stk/http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "stk/alloc.h"
#include "stk/limits.h"
#include "stk/parse.h"

/* Bytes written per writable callback when sending a body. */
#define HTTP_CHUNK (32u * 1024)
/* Room for the status line and the server's own headers on top of the extra headers. */
#define HTTP_HEADER_ROOM	     (STK_LIMIT_HTTP_HEADERS + 1024u)
#define HTTP_SCRATCH		     (HTTP_CHUNK > HTTP_HEADER_ROOM ? HTTP_CHUNK : HTTP_HEADER_ROOM)
#define HTTP_DEFAULT_MAX_CONNECTIONS 1024u
#define HTTP_DEFAULT_TIMEOUT_S	     30u
/* Connections accepted per listener wakeup, so one busy listener cannot starve the loop. */
#define HTTP_ACCEPT_BATCH 64
/* Backoff when accept(2) runs out of descriptors (the pending connection keeps the
 * listener readable; without a pause the loop would spin). */
#define HTTP_ACCEPT_PAUSE_MS 100
/*
 * While a deferred exchange waits, lws does not read its socket (an HTTP/1.1 transaction
 * is in progress), so it would not notice the client leaving. We look for the peer's FIN
 * ourselves this often.
 */
#define HTTP_WATCH_MS 200
#ifndef POLLRDHUP
#define POLLRDHUP 0x2000 /* Linux: the peer shut down its writing side */
#endif
/*
 * After an early final answer (413 while the body is still coming), closing at once with
 * unread request bytes makes the kernel send a reset, which can destroy the answer before
 * the client reads it. The connection instead reads and drops up to this much more, for
 * at most this long, closing when the body ends or the client closes.
 */
#define HTTP_LINGER_BYTES (1u * 1024 * 1024)
#define HTTP_LINGER_S	  2
/* Loop iterations the reaper waits for lws to finish before giving up on a clean destroy. */
#define HTTP_REAP_MAX_ITERATIONS 100000u

enum http_srv_state {
	SRV_OPEN,
	SRV_STOPPING,
	SRV_CLOSED,
};

enum http_ex_state {
	EX_READING,  /* headers parsed, body arriving */
	EX_HANDLING, /* inside the route handler */
	EX_WAITING,  /* deferred: waiting for stk_http_exchange_complete */
	EX_SENDING,  /* response being written */
	EX_DONE,     /* sent, or the connection went away */
};

enum http_body_kind {
	BODY_NONE,
	BODY_MEM,
	BODY_FILE,
};

struct http_route {
	char *method; /* "*" for any */
	char *path;   /* for a prefix route, without the final '*' ("/gitsource/") */
	bool prefix;
	stk_http_handler_fn fn;
	void *arg;
};

struct http_tls {
	X509 *cert;
	STACK_OF(X509) * chain;
	EVP_PKEY *key;
};

struct http_done {
	stk_loop_fn fn;
	void *arg;
};

struct stk_http_server {
	stk_loop *loop;
	char *name;
	enum http_srv_state state;
	int port;
	size_t max_body;
	unsigned timeout_s;

	int listen_fd;
	uv_poll_t listener;
	uv_timer_t pause_timer;
	uv_timer_t watch_timer;	    /* runs while exchanges wait for a deferred answer */
	stk_http_exchange *waiting; /* those exchanges */
	uv_idle_t reaper;
	unsigned open_handles; /* our own uv handles not yet closed */
	bool handles_inited;   /* listener and the timers exist on the loop */
	bool listening;

	struct lws_context *ctx; /* set to NULL by lws (pcontext) when fully destroyed */
	struct lws_vhost *vhost;
	struct http_tls tls;
	bool tls_on;

	struct http_route *routes;
	size_t nroutes;

	bool destroy_started;  /* first lws_context_destroy done */
	bool destroy_finished; /* second lws_context_destroy done */
	unsigned reap_iterations;
	struct http_done *done;
	size_t ndone;
	bool free_when_closed; /* a failed stk_http_server_new cleans up asynchronously */
};

struct http_header_cache {
	struct http_header_cache *next;
	char *name;
	char *value;
};

struct stk_http_response {
	int status;
	char *content_type;
	stk_buf headers; /* "name:\0value\0" pairs, names lowercased */
	enum http_body_kind kind;
	char *mem;
	size_t mem_len;
	int fd;
	uint64_t file_len;
};

struct stk_http_exchange {
	stk_http_request req;
	struct stk_http_response resp;
	unsigned refs;
	struct lws *wsi; /* NULL once the connection is gone or the response was sent */
	unsigned timeout_s;
	enum http_ex_state state;
	bool deferred;	  /* stk_http_defer was called */
	bool released;	  /* stk_http_exchange_complete was called */
	bool answered;	  /* completed while still inside the handler */
	bool canceled;	  /* the connection went away before the response was sent */
	bool close_after; /* close the connection after this response */
	bool head;	  /* HEAD: headers only */
	bool headers_sent;
	stk_loop_fn cancel_fn;
	void *cancel_arg;
	stk_http_server *srv;		  /* set while on srv->waiting */
	stk_http_exchange *wprev, *wnext; /* srv->waiting list */

	char method[8];
	char *path;
	char *query;
	char **args; /* decoded query arguments "k=v" */
	size_t nargs;
	stk_buf body;
	char peer[64];
	struct http_header_cache *hdrs;

	uint64_t total; /* body bytes to send */
	uint64_t sent;
	unsigned char *scratch; /* LWS_PRE + HTTP_SCRATCH */
};

/* Per-connection storage lws allocates for us. */
struct http_pss {
	stk_http_exchange *ex;
	bool body_pending; /* the request announced a body that has not fully arrived */
	bool lingering;	   /* answered with "Connection: close"; draining before the close */
	size_t linger_left;
};

#define REQ_EX(r) ((stk_http_exchange *)(void *)((char *)(r)-offsetof(stk_http_exchange, req)))

static const char *const http_methods[] = {
	[LWSHUMETH_GET] = "GET",	 [LWSHUMETH_POST] = "POST",
	[LWSHUMETH_OPTIONS] = "OPTIONS", [LWSHUMETH_PUT] = "PUT",
	[LWSHUMETH_PATCH] = "PATCH",	 [LWSHUMETH_DELETE] = "DELETE",
	[LWSHUMETH_CONNECT] = "CONNECT", [LWSHUMETH_HEAD] = "HEAD",
};

static void http_die(const char *what)
{
	fprintf(stderr, "stk_http: %s\n", what);
	abort();
}

static const char *http_reason(int status)
{
	switch (status) {
	case 400:
		return "bad request";
	case 401:
		return "unauthorized";
	case 403:
		return "forbidden";
	case 404:
		return "not found";
	case 405:
		return "method not allowed";
	case 411:
		return "length required";
	case 413:
		return "request body too large";
	case 429:
		return "too many requests";
	case 501:
		return "not implemented";
	case 503:
		return "service unavailable";
	default:
		return "internal server error";
	}
}

/* --- exchanges ------------------------------------------------------------------------- */

static void http_response_clear_body(struct stk_http_response *r)
{
	free(r->mem);
	r->mem = NULL;
	r->mem_len = 0;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->file_len = 0;
	r->kind = BODY_NONE;
}

static void http_ex_unref(stk_http_exchange *ex)
{
	struct http_header_cache *h;
	size_t i;

	if (--ex->refs > 0)
		return;
	http_response_clear_body(&ex->resp);
	free(ex->resp.content_type);
	stk_buf_release(&ex->resp.headers);
	while ((h = ex->hdrs)) {
		ex->hdrs = h->next;
		free(h->name);
		free(h->value);
		free(h);
	}
	for (i = 0; i < ex->nargs; i++)
		free(ex->args[i]);
	free(ex->args);
	free(ex->path);
	free(ex->query);
	stk_buf_release(&ex->body);
	free(ex->scratch);
	free(ex);
}

static stk_http_exchange *http_ex_new(stk_http_server *srv, struct lws *wsi)
{
	stk_http_exchange *ex = stk_calloc(1, sizeof(*ex));

	ex->refs = 1; /* the connection's */
	ex->wsi = wsi;
	ex->timeout_s = srv->timeout_s;
	ex->state = EX_READING;
	ex->resp.fd = -1;
	stk_buf_init(&ex->resp.headers, STK_LIMIT_HTTP_HEADERS);
	stk_buf_init(&ex->body, srv->max_body);
	ex->req.route_rest = "";
	ex->req.query = "";
	ex->req.body = "";
	ex->req.peer = ex->peer;
	return ex;
}

static void http_on_watch(uv_timer_t *t);

static void http_waiting_add(stk_http_server *srv, stk_http_exchange *ex)
{
	ex->srv = srv;
	ex->wprev = NULL;
	ex->wnext = srv->waiting;
	if (srv->waiting)
		srv->waiting->wprev = ex;
	srv->waiting = ex;
	if (srv->state == SRV_OPEN && srv->handles_inited &&
	    !uv_is_active((uv_handle_t *)&srv->watch_timer))
		uv_timer_start(&srv->watch_timer, http_on_watch, HTTP_WATCH_MS, HTTP_WATCH_MS);
}

static void http_waiting_remove(stk_http_exchange *ex)
{
	stk_http_server *srv = ex->srv;

	if (!srv)
		return;
	if (ex->wprev)
		ex->wprev->wnext = ex->wnext;
	else
		srv->waiting = ex->wnext;
	if (ex->wnext)
		ex->wnext->wprev = ex->wprev;
	ex->srv = NULL;
	ex->wprev = ex->wnext = NULL;
	if (!srv->waiting && srv->state == SRV_OPEN && srv->handles_inited)
		uv_timer_stop(&srv->watch_timer);
}

/* Closes the connections of waiting exchanges whose client has gone away. */
static void http_on_watch(uv_timer_t *t)
{
	stk_http_server *srv = t->data;
	struct lws *gone[16];
	stk_http_exchange *ex;
	size_t n = 0, i;

	/* Collect first: closing runs callbacks that may change the list. */
	for (ex = srv->waiting; ex && n < sizeof(gone) / sizeof(gone[0]); ex = ex->wnext) {
		struct pollfd pfd;
		if (!ex->wsi)
			continue;
		pfd.fd = lws_get_socket_fd(ex->wsi);
		pfd.events = POLLRDHUP;
		pfd.revents = 0;
		if (pfd.fd >= 0 && poll(&pfd, 1, 0) > 0 &&
		    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			gone[n++] = ex->wsi;
	}
	/* lws closes them on its next service; CLOSED_HTTP then cancels the exchanges. */
	for (i = 0; i < n; i++)
		lws_set_timeout(gone[i], PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
}

/*
 * The connection is gone (or done with this exchange): drop its reference. An exchange
 * that had not been answered yet is canceled and its owner told once.
 */
static void http_ex_detach(stk_http_exchange *ex)
{
	bool delivered = ex->state == EX_SENDING && ex->headers_sent && ex->sent >= ex->total;

	http_waiting_remove(ex);
	ex->wsi = NULL;
	if (ex->state != EX_DONE && !delivered)
		ex->canceled = true;
	ex->state = EX_DONE;
	if (ex->canceled && ex->cancel_fn && !ex->released) {
		stk_loop_fn fn = ex->cancel_fn;
		ex->cancel_fn = NULL;
		ex->refs++; /* the callback may complete the exchange */
		fn(ex->cancel_arg);
		http_ex_unref(ex);
	}
	http_ex_unref(ex);
}

static void http_start_sending(stk_http_exchange *ex)
{
	struct stk_http_response *r = &ex->resp;

	http_waiting_remove(ex);
	ex->state = EX_SENDING;
	if (r->status == 0)
		r->status = 200;
	ex->total = r->kind == BODY_MEM ? r->mem_len : r->kind == BODY_FILE ? r->file_len : 0;
	if (!ex->wsi)
		return;
	lws_set_timeout(ex->wsi, PENDING_TIMEOUT_HTTP_CONTENT, (int)ex->timeout_s);
	lws_callback_on_writable(ex->wsi);
}

/* A plain-text answer generated by the server itself (no route, 405, 413, errors). */
static void http_reject(stk_http_exchange *ex, int status, const char *allow, bool close_after)
{
	char text[64];

	snprintf(text, sizeof(text), "%s\n", http_reason(status));
	stk_buf_reset(&ex->resp.headers);
	stk_http_response_text(&ex->resp, status, text);
	if (allow)
		stk_http_response_header(&ex->resp, "Allow", allow, NULL);
	ex->close_after = ex->close_after || close_after;
	http_start_sending(ex);
}

static int http_status_for(int code)
{
	switch (code) {
	case STK_EINVAL:
	case STK_EPARSE:
		return 400;
	case STK_EAUTH:
		return 401;
	case STK_EFORBIDDEN:
		return 403;
	case STK_ENOTFOUND:
		return 404;
	case STK_ETOOBIG:
		return 413;
	case STK_ETOOMANY:
		return 429;
	case STK_EUNAVAIL:
		return 503;
	default:
		return 500;
	}
}

/* --- routing --------------------------------------------------------------------------- */

static bool http_method_matches(const struct http_route *r, const char *method)
{
	return strcmp(r->method, "*") == 0 || strcmp(r->method, method) == 0 ||
	       (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
}

/*
 * The best pattern for `path` (exact beats prefix, longer prefix beats shorter), then the
 * route of that pattern for `method`. When the pattern exists but not for the method,
 * `allow` receives the methods it has.
 */
static const struct http_route *http_match(const stk_http_server *srv, const char *path,
					   const char *method, stk_buf *allow)
{
	const struct http_route *best = NULL, *hit = NULL;
	size_t best_score = 0, i, plen = strlen(path);
	bool get = false;

	for (i = 0; i < srv->nroutes; i++) {
		const struct http_route *r = &srv->routes[i];
		size_t rl = strlen(r->path), score;
		if (r->prefix) {
			if (plen < rl || strncmp(path, r->path, rl) != 0)
				continue;
			score = rl + 1;
		} else {
			if (strcmp(path, r->path) != 0)
				continue;
			score = SIZE_MAX;
		}
		if (score > best_score) {
			best_score = score;
			best = r;
		}
	}
	if (!best)
		return NULL;
	for (i = 0; i < srv->nroutes; i++) {
		const struct http_route *r = &srv->routes[i];
		if (r->prefix != best->prefix || strcmp(r->path, best->path) != 0)
			continue;
		if (!hit && http_method_matches(r, method))
			hit = r;
		get = get || strcmp(r->method, "GET") == 0;
		stk_buf_printf(allow, "%s%s", allow->len ? ", " : "", r->method);
	}
	if (get)
		stk_buf_printf(allow, ", HEAD");
	return hit;
}

static void http_dispatch(stk_http_server *srv, stk_http_exchange *ex)
{
	stk_buf allow = STK_BUF_INIT(1024);
	const struct http_route *r;
	int rc;

	r = http_match(srv, ex->req.path, ex->req.method, &allow);
	if (!r) {
		if (allow.len)
			http_reject(ex, 405, allow.ptr, false);
		else
			http_reject(ex, 404, NULL, false);
		goto out;
	}
	ex->req.route_rest = r->prefix ? ex->req.path + strlen(r->path) : "";
	ex->req.body = ex->body.ptr ? ex->body.ptr : "";
	ex->req.body_len = ex->body.len;
	ex->state = EX_HANDLING;
	ex->refs++; /* keep it alive across the handler, whatever the handler does */
	rc = r->fn(&ex->req, &ex->resp, r->arg);
	if (ex->state == EX_HANDLING) {
		if (rc == STK_HTTP_DEFERRED) {
			if (!ex->deferred)
				http_die("handler returned STK_HTTP_DEFERRED without "
					 "stk_http_defer");
			if (ex->answered) {
				http_start_sending(ex);
			} else {
				ex->state = EX_WAITING;
				lws_set_timeout(ex->wsi, PENDING_TIMEOUT_HTTP_CONTENT,
						(int)ex->timeout_s);
				http_waiting_add(srv, ex);
			}
		} else if (rc < 0) {
			int status = http_status_for(rc);
			http_response_clear_body(&ex->resp);
			stk_buf_reset(&ex->resp.headers);
			http_reject(ex, status, NULL, false);
		} else {
			http_start_sending(ex);
		}
	}
	http_ex_unref(ex);
out:
	stk_buf_release(&allow);
}

/* --- request parsing ------------------------------------------------------------------- */

/* Case-insensitive search for `word` (lowercase) in a header value. */
static bool http_contains_token(const char *value, const char *word)
{
	size_t wl = strlen(word), i;

	for (; *value; value++) {
		for (i = 0; i < wl; i++) {
			char c = value[i];
			if (c >= 'A' && c <= 'Z')
				c = (char)(c + 32);
			if (c != word[i])
				break;
		}
		if (i == wl)
			return true;
	}
	return false;
}

/*
 * "Expect: 100-continue": the client waits for a go-ahead before sending the body (curl
 * does for bodies above 1 MiB, else it stalls a second). lws 4.1 does not send one, so we
 * do once the body has been accepted.
 */
static void http_continue(stk_http_exchange *ex)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	unsigned char buf[LWS_PRE + sizeof(cont)];
	const char *expect = stk_http_request_header(&ex->req, "Expect");

	if (!expect || !http_contains_token(expect, "100-continue"))
		return;
	memcpy(buf + LWS_PRE, cont, sizeof(cont) - 1);
	lws_write(ex->wsi, buf + LWS_PRE, sizeof(cont) - 1, LWS_WRITE_HTTP);
}

static int http_on_request(stk_http_server *srv, struct lws *wsi, struct http_pss *pss,
			   const char *uri, size_t urilen)
{
	stk_http_exchange *ex;
	char *uri_ptr = NULL, num[32];
	int meth, uri_len, n, i;
	int64_t content_length = -1;
	stk_buf q = STK_BUF_INIT(STK_LIMIT_HTTP_HEADERS);
	bool chunked = false;

	if (srv->state != SRV_OPEN)
		return -1;
	if (pss->ex) { /* lws starts a new transaction only after the last; be safe anyway */
		http_ex_detach(pss->ex);
		pss->ex = NULL;
	}
	ex = http_ex_new(srv, wsi);
	pss->ex = ex;
	pss->body_pending = false;
	pss->lingering = false;

	meth = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len);
	ex->path = stk_strndup(uri ? uri : "/", uri ? urilen : 1);
	ex->req.path = ex->path;
	if (meth < 0 || (size_t)meth >= sizeof(http_methods) / sizeof(http_methods[0]) ||
	    !http_methods[meth]) {
		snprintf(ex->method, sizeof(ex->method), "?");
		ex->req.method = ex->method;
		http_reject(ex, 501, NULL, true);
		return 0;
	}
	snprintf(ex->method, sizeof(ex->method), "%s", http_methods[meth]);
	ex->req.method = ex->method;
	ex->head = meth == LWSHUMETH_HEAD;
	if (lws_get_peer_simple(wsi, ex->peer, sizeof(ex->peer)) == NULL)
		ex->peer[0] = '\0';
	/* An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d: report a.b.c.d. */
	if (strncmp(ex->peer, "::ffff:", 7) == 0 && strchr(ex->peer + 7, '.'))
		memmove(ex->peer, ex->peer + 7, strlen(ex->peer + 7) + 1);

	/* Query arguments: lws keeps each one decoded in its own fragment. */
	for (i = 0;; i++) {
		n = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n <= 0)
			break;
		ex->args = stk_reallocarray(ex->args, ex->nargs + 1, sizeof(*ex->args));
		ex->args[ex->nargs] = stk_malloc((size_t)n + 1);
		if (lws_hdr_copy_fragment(wsi, ex->args[ex->nargs], n + 1, WSI_TOKEN_HTTP_URI_ARGS,
					  i) < 0) {
			free(ex->args[ex->nargs]);
			break;
		}
		stk_buf_printf(&q, "%s%s", ex->nargs ? "&" : "", ex->args[ex->nargs]);
		ex->nargs++;
	}
	ex->query = stk_buf_detach(&q, NULL);
	ex->req.query = ex->query;

	if (meth == LWSHUMETH_CONNECT) {
		http_reject(ex, 501, NULL, true);
		return 0;
	}

	n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
	if (n > 0) {
		if ((size_t)n >= sizeof(num) ||
		    lws_hdr_copy(wsi, num, (int)sizeof(num), WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0 ||
		    stk_parse_i64(num, strlen(num), 0, INT64_MAX, &content_length, NULL) != 0) {
			http_reject(ex, 400, NULL, true);
			return 0;
		}
	}
	n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
	if (n > 0) {
		const char *te = stk_http_request_header(&ex->req, "Transfer-Encoding");
		chunked = te && http_contains_token(te, "chunked");
	}
	pss->body_pending = content_length > 0 || chunked;
	if (chunked) {
		/* lws 4.1 does not decode chunked request bodies: ask for a length instead. */
		http_reject(ex, 411, NULL, true);
		return 0;
	}
	if (content_length > 0 && (uint64_t)content_length > srv->max_body) {
		/* Answer at once and close: the body is never read. */
		http_reject(ex, 413, NULL, true);
		return 0;
	}
	if (content_length > 0) {
		http_continue(ex);
		return 0; /* LWS_CALLBACK_HTTP_BODY… follow */
	}
	http_dispatch(srv, ex);
	return 0;
}

static void http_on_body(struct http_pss *pss, const void *data, size_t len)
{
	stk_http_exchange *ex = pss->ex;

	if (!ex || ex->state != EX_READING)
		return; /* e.g. the 413 answer is already on its way */
	if (stk_buf_put(&ex->body, data, len) != 0)
		http_reject(ex, 413, NULL, true);
}

/* --- response writing ------------------------------------------------------------------ */

static int http_write_headers(stk_http_exchange *ex)
{
	struct stk_http_response *r = &ex->resp;
	unsigned char *start = ex->scratch + LWS_PRE, *p = start;
	unsigned char *end = start + HTTP_SCRATCH;
	struct lws *wsi = ex->wsi;
	size_t off = 0;

	if (lws_add_http_header_status(wsi, (unsigned int)r->status, &p, end))
		return -1;
	if (r->content_type && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
							    (const unsigned char *)r->content_type,
							    (int)strlen(r->content_type), &p, end))
		return -1;
	/* 1xx, 204 and 304 have no body and no length (RFC 9110 8.6). */
	if (r->status >= 200 && r->status != 204 && r->status != 304 &&
	    lws_add_http_header_content_length(wsi, (lws_filepos_t)ex->total, &p, end))
		return -1;
	while (off < r->headers.len) {
		const char *name = r->headers.ptr + off;
		const char *value = name + strlen(name) + 1;
		off += strlen(name) + 1 + strlen(value) + 1;
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
						(const unsigned char *)value, (int)strlen(value),
						&p, end))
			return -1;
	}
	if (ex->close_after &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
					 5, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

/* Reads exactly `n` bytes of the body file into dst. */
static int http_read_file(stk_http_exchange *ex, unsigned char *dst, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(ex->resp.fd, dst + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		/* An error, or the file shrank: the promised length cannot be sent. */
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int http_on_writeable(struct lws *wsi, struct http_pss *pss)
{
	stk_http_exchange *ex = pss->ex;
	size_t n;
	bool final, close_after;

	if (!ex || ex->state != EX_SENDING)
		return 0;
	if (!ex->scratch)
		ex->scratch = stk_malloc(LWS_PRE + HTTP_SCRATCH);
	if (!ex->headers_sent) {
		if (http_write_headers(ex) != 0)
			return -1;
		ex->headers_sent = true;
		if (ex->total == 0 || ex->head)
			goto finish;
		lws_callback_on_writable(wsi);
		return 0;
	}

	n = ex->total - ex->sent > HTTP_CHUNK ? HTTP_CHUNK : (size_t)(ex->total - ex->sent);
	if (ex->resp.kind == BODY_MEM)
		memcpy(ex->scratch + LWS_PRE, ex->resp.mem + ex->sent, n);
	else if (http_read_file(ex, ex->scratch + LWS_PRE, n) != 0)
		return -1;
	final = ex->sent + n == ex->total;
	if (lws_write(wsi, ex->scratch + LWS_PRE, n,
		      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
		return -1;
	ex->sent += n;
	/* Progress: the stall timer starts again. */
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, (int)ex->timeout_s);
	if (!final) {
		lws_callback_on_writable(wsi);
		return 0;
	}

finish:
	close_after = ex->close_after;
	ex->sent = ex->total;
	pss->ex = NULL;
	http_ex_detach(ex);
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	if (close_after && pss->body_pending) {
		pss->lingering = true;
		pss->linger_left = HTTP_LINGER_BYTES;
		lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, HTTP_LINGER_S);
		return 0;
	}
	if (close_after)
		return -1;
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

/* --- TLS ------------------------------------------------------------------------------- */

static int http_no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0; /* encrypted keys are refused rather than prompting on a terminal */
}

static void http_tls_release(struct http_tls *t)
{
	X509_free(t->cert);
	t->cert = NULL;
	sk_X509_pop_free(t->chain, X509_free);
	t->chain = NULL;
	EVP_PKEY_free(t->key);
	t->key = NULL;
}

/* The reason of the most recent OpenSSL error, then an empty error queue. */
static const char *http_ssl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, buf, cap);
	else
		snprintf(buf, cap, "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

/*
 * Reads a certificate (with the chain after it) from `cb` and a private key from `kb` into
 * `t`, and checks they belong together. `cert_src` and `key_src` name them in messages.
 */
static int http_tls_read(const stk_http_server *srv, struct http_tls *t, BIO *cb, BIO *kb,
			 const char *cert_src, const char *key_src, stk_err *err)
{
	X509 *x;
	int rc = 0;

	t->cert = PEM_read_bio_X509(cb, NULL, http_no_password, NULL);
	if (!t->cert) {
		rc = stk_err_set(err, STK_EINVAL, "http server %s: no PEM certificate in %s",
				 srv->name, cert_src);
		goto out;
	}
	t->chain = sk_X509_new_null();
	if (!t->chain)
		http_die("out of memory");
	while ((x = PEM_read_bio_X509(cb, NULL, http_no_password, NULL)) != NULL) {
		if (!sk_X509_push(t->chain, x))
			http_die("out of memory");
	}
	t->key = PEM_read_bio_PrivateKey(kb, NULL, http_no_password, NULL);
	if (!t->key) {
		rc = stk_err_set(err, STK_EINVAL,
				 "http server %s: no usable PEM private key in %s (encrypted keys "
				 "are not supported)",
				 srv->name, key_src);
		goto out;
	}
	if (X509_check_private_key(t->cert, t->key) != 1) {
		rc = stk_err_set(err, STK_EINVAL,
				 "http server %s: the private key in %s does not match the "
				 "certificate in %s",
				 srv->name, key_src, cert_src);
		goto out;
	}
out:
	ERR_clear_error();
	if (rc)
		http_tls_release(t);
	return rc;
}

/*
 * Installs the pair on a scratch SSL_CTX, as the handshake will, so that material OpenSSL
 * refuses (a key below the security level, an unsupported key type, a chain certificate
 * with a weak signature) is reported now and never reaches a connection.
 */
static int http_tls_check(const stk_http_server *srv, const struct http_tls *t, stk_err *err)
{
	SSL_CTX *scratch = SSL_CTX_new(TLS_server_method());
	char reason[256];
	int rc = 0;

	if (!scratch) {
		rc = stk_err_set(err, STK_EIO, "http server %s: SSL_CTX_new: %s", srv->name,
				 http_ssl_reason(reason, sizeof(reason)));
		goto out;
	}
	if (SSL_CTX_use_cert_and_key(scratch, t->cert, t->key, t->chain, 1) != 1 ||
	    SSL_CTX_check_private_key(scratch) != 1) {
		rc = stk_err_set(err, STK_EINVAL,
				 "http server %s: OpenSSL refuses the certificate or key: %s",
				 srv->name, http_ssl_reason(reason, sizeof(reason)));
		goto out;
	}
out:
	SSL_CTX_free(scratch);
	ERR_clear_error();
	return rc;
}

/* Loads and checks the certificate chain and key before anything else is set up. */
static int http_tls_load(stk_http_server *srv, const stk_http_opts *o, stk_err *err)
{
	BIO *cb = NULL, *kb = NULL;
	const char *cert_src, *key_src;
	int rc = 0;

	if (o->tls_cert_pem || o->tls_key_pem) {
		if (!o->tls_cert_pem || !o->tls_key_pem || o->tls_cert_file || o->tls_key_file) {
			rc = stk_err_set(
				err, STK_EINVAL,
				"http server %s: give tls_cert_pem and tls_key_pem together, "
				"and no TLS files",
				srv->name);
			goto out;
		}
		cert_src = "tls_cert_pem";
		key_src = "tls_key_pem";
		cb = BIO_new_mem_buf(o->tls_cert_pem, -1);
		kb = BIO_new_mem_buf(o->tls_key_pem, -1);
	} else {
		if (!o->tls_cert_file || !o->tls_key_file) {
			rc = stk_err_set(
				err, STK_EINVAL,
				"http server %s: TLS needs both a certificate and a key file",
				srv->name);
			goto out;
		}
		cert_src = o->tls_cert_file;
		key_src = o->tls_key_file;
		cb = BIO_new_file(o->tls_cert_file, "r");
		if (!cb) {
			rc = stk_err_set(err, STK_EINVAL, "http server %s: cannot read %s: %s",
					 srv->name, cert_src, strerror(errno));
			goto out;
		}
		kb = BIO_new_file(o->tls_key_file, "r");
		if (!kb) {
			rc = stk_err_set(err, STK_EINVAL, "http server %s: cannot read %s: %s",
					 srv->name, key_src, strerror(errno));
			goto out;
		}
	}
	if (!cb || !kb)
		http_die("out of memory");
	rc = http_tls_read(srv, &srv->tls, cb, kb, cert_src, key_src, err);
	if (rc)
		goto out;
	rc = http_tls_check(srv, &srv->tls, err);
	if (rc)
		http_tls_release(&srv->tls);
out:
	BIO_free(cb);
	BIO_free(kb);
	ERR_clear_error();
	return rc;
}

/*
 * The certificate callback of the vhost's SSL_CTX: at every handshake, before OpenSSL
 * selects the certificate, it gives the connection the server's current pair. This is what
 * makes stk_http_server_set_tls_pem work without touching the SSL_CTX (which lws created
 * and owns): OpenSSL keeps one certificate per key type in an SSL_CTX and has no call to
 * remove one, so replacing the pair there would leave an old EC certificate selectable
 * after a change to RSA. SSL_new copies the SSL_CTX's certificate settings, this callback
 * included; an established connection keeps what its handshake installed (the SSL holds
 * its own references), so freeing an old pair never pulls it from under a connection.
 */
static int http_tls_cert_cb(SSL *ssl, void *arg)
{
	const stk_http_server *srv = arg;

	SSL_certs_clear(ssl);
	if (!srv->tls.cert ||
	    SSL_use_cert_and_key(ssl, srv->tls.cert, srv->tls.key, srv->tls.chain, 1) != 1) {
		ERR_clear_error();
		return 0; /* handshake failure alert */
	}
	return 1;
}

/* Called by lws while it creates the vhost's SSL_CTX (CREATE_VHOST_SSL_CTX). */
static int http_tls_apply(stk_http_server *srv, SSL_CTX *ctx)
{
	int ok;

	ok = srv->tls.cert &&
	     SSL_CTX_use_cert_and_key(ctx, srv->tls.cert, srv->tls.key, srv->tls.chain, 1) == 1;
	ok = ok && SSL_CTX_check_private_key(ctx) == 1;
	ok = ok && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1;
	if (ok)
		SSL_CTX_set_cert_cb(ctx, http_tls_cert_cb, srv);
	ERR_clear_error();
	return ok ? 0 : 1;
}

int stk_http_server_set_tls_pem(stk_http_server *srv, const char *cert_pem, const char *key_pem,
				stk_err *err)
{
	struct http_tls next = {NULL, NULL, NULL};
	BIO *cb = NULL, *kb = NULL;
	int rc;

	if (!srv->tls_on) {
		rc = stk_err_set(err, STK_EINVAL,
				 "http server %s: serves plain HTTP; it has no certificate to "
				 "replace",
				 srv->name);
		goto out;
	}
	if (!cert_pem || !key_pem) {
		rc = stk_err_set(err, STK_EINVAL,
				 "http server %s: a new certificate needs both the certificate "
				 "and the key",
				 srv->name);
		goto out;
	}
	cb = BIO_new_mem_buf(cert_pem, -1);
	kb = BIO_new_mem_buf(key_pem, -1);
	if (!cb || !kb)
		http_die("out of memory");
	rc = http_tls_read(srv, &next, cb, kb, "the new cert_pem", "the new key_pem", err);
	if (rc)
		goto out;
	rc = http_tls_check(srv, &next, err);
	if (rc)
		goto out;
	/* Connections hold their own references: the old pair can go at once. */
	http_tls_release(&srv->tls);
	srv->tls = next;
	next = (struct http_tls){NULL, NULL, NULL};
out:
	BIO_free(cb);
	BIO_free(kb);
	http_tls_release(&next);
	return rc;
}

/* --- lws glue -------------------------------------------------------------------------- */

static int http_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	struct http_pss *pss = user;
	stk_http_server *srv;

	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		srv = lws_context_user(lws_get_context(wsi));
		return srv->tls_on ? http_tls_apply(srv, user) : 0;
	case LWS_CALLBACK_HTTP:
		srv = lws_context_user(lws_get_context(wsi));
		return http_on_request(srv, wsi, pss, in, len);
	case LWS_CALLBACK_HTTP_BODY:
		if (pss && pss->lingering) {
			if (len > pss->linger_left)
				return -1;
			pss->linger_left -= len;
			return 0;
		}
		if (pss)
			http_on_body(pss, in, len);
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!pss)
			return 0;
		pss->body_pending = false;
		if (pss->lingering)
			return -1; /* all read: now the close is a clean FIN */
		if (pss->ex && pss->ex->state == EX_READING)
			http_dispatch(lws_context_user(lws_get_context(wsi)), pss->ex);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return http_on_writeable(wsi, pss);
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (pss && pss->ex) {
			stk_http_exchange *ex = pss->ex;
			pss->ex = NULL;
			http_ex_detach(ex);
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols http_protocols[] = {
	{"stk-http", http_lws_cb, sizeof(struct http_pss), 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static pthread_once_t http_lws_once = PTHREAD_ONCE_INIT;

/*
 * lws writes its own text lines to stderr; a daemon writes JSON lines only, and libraries
 * report errors through stk_err instead of logging. One-time library setup.
 */
static void http_lws_init(void)
{
	lws_set_log_level(0, NULL);
}

/* --- listener -------------------------------------------------------------------------- */

static void http_on_handle_closed(uv_handle_t *h);

static void http_on_accept(uv_poll_t *h, int status, int events);

static void http_on_pause_end(uv_timer_t *t)
{
	stk_http_server *srv = t->data;

	if (srv->state == SRV_OPEN && !srv->listening) {
		uv_poll_start(&srv->listener, UV_READABLE, http_on_accept);
		srv->listening = true;
	}
}

static void http_on_accept(uv_poll_t *h, int status, int events)
{
	stk_http_server *srv = h->data;
	int i;

	(void)events;
	if (status < 0 || srv->state != SRV_OPEN)
		return;
	for (i = 0; i < HTTP_ACCEPT_BATCH; i++) {
		int fd = accept(srv->listen_fd, NULL, NULL);
		if (fd >= 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
				fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)) {
			close(fd);
			continue;
		}
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				uv_poll_stop(&srv->listener);
				srv->listening = false;
				uv_timer_start(&srv->pause_timer, http_on_pause_end,
					       HTTP_ACCEPT_PAUSE_MS, 0);
			}
			return;
		}
		/*
		 * Responses go out as several writes (headers, body chunks): without
		 * TCP_NODELAY, Nagle holds the last one until the client's delayed ACK,
		 * ~40 ms on Linux, on a kept-alive connection.
		 */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		/* On failure lws closes fd itself (e.g. above max_connections). */
		lws_adopt_socket_vhost(srv->vhost, fd);
	}
}

/* Creates, binds and listens one socket. 0 or the errno of the step named in *what. */
static int http_try_listen(const struct sockaddr *sa, socklen_t len, bool dual_stack, int *out,
			   const char **what)
{
	int one = 1, zero = 0, e;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		*what = "socket";
		return errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (dual_stack)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	*what = "bind";
	if (bind(fd, sa, len) == 0) {
		*what = "listen";
		if (listen(fd, SOMAXCONN) == 0) {
			*out = fd;
			return 0;
		}
	}
	e = errno;
	close(fd);
	return e;
}

static int http_listen(stk_http_server *srv, const char *address, stk_err *err)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], portstr[16];
	const char *what = "bind";
	int port, fd = -1, e;

	if (!address || stk_parse_hostport(address, host, sizeof(host), &port, NULL) != 0)
		return stk_err_set(err, STK_EINVAL, "http server %s: bad bind address \"%s\"",
				   srv->name, address ? address : "");
	if (host[0] == '\0') {
		/* All interfaces: one dual-stack IPv6 socket, IPv4 on a host without IPv6. */
		struct sockaddr_in6 s6;
		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_addr = in6addr_any;
		s6.sin6_port = htons((uint16_t)port);
		e = http_try_listen((struct sockaddr *)&s6, sizeof(s6), true, &fd, &what);
		if (e == EAFNOSUPPORT) {
			struct sockaddr_in s4;
			memset(&s4, 0, sizeof(s4));
			s4.sin_family = AF_INET;
			s4.sin_addr.s_addr = htonl(INADDR_ANY);
			s4.sin_port = htons((uint16_t)port);
			e = http_try_listen((struct sockaddr *)&s4, sizeof(s4), false, &fd, &what);
		}
	} else {
		struct addrinfo hints, *res = NULL, *ai;
		int gai;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		snprintf(portstr, sizeof(portstr), "%d", port);
		gai = getaddrinfo(host, portstr, &hints, &res);
		if (gai != 0)
			return stk_err_set(err, STK_EINVAL,
					   "http server %s: cannot resolve \"%s\": %s", srv->name,
					   host, gai_strerror(gai));
		e = EADDRNOTAVAIL;
		for (ai = res; ai; ai = ai->ai_next) {
			e = http_try_listen(ai->ai_addr, ai->ai_addrlen, false, &fd, &what);
			if (e == 0)
				break;
		}
		freeaddrinfo(res);
	}
	if (e != 0)
		return stk_err_errno(err, e, "http server %s: %s %s", srv->name, what, address);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		e = errno;
		close(fd);
		return stk_err_errno(err, e, "http server %s: getsockname", srv->name);
	}
	srv->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	srv->listen_fd = fd;
	return 0;
}

/* --- lifecycle ------------------------------------------------------------------------- */

static void http_server_release(stk_http_server *srv)
{
	size_t i;

	for (i = 0; i < srv->nroutes; i++) {
		free(srv->routes[i].method);
		free(srv->routes[i].path);
	}
	free(srv->routes);
	http_tls_release(&srv->tls);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	free(srv->done);
	free(srv->name);
	free(srv);
}

static void http_finish(stk_http_server *srv)
{
	struct http_done *done = srv->done;
	size_t i, n = srv->ndone;

	srv->state = SRV_CLOSED;
	srv->done = NULL;
	srv->ndone = 0;
	if (srv->free_when_closed)
		http_server_release(srv);
	for (i = 0; i < n; i++)
		done[i].fn(done[i].arg);
	free(done);
}

static void http_on_handle_closed(uv_handle_t *h)
{
	stk_http_server *srv = h->data;

	if (h == (uv_handle_t *)&srv->listener) {
		close(srv->listen_fd);
		srv->listen_fd = -1;
	}
	if (--srv->open_handles == 0)
		http_finish(srv);
}

static void http_walk_closing(uv_handle_t *h, void *arg)
{
	if (uv_is_closing(h))
		*(bool *)arg = true;
}

/*
 * Tears the lws context down in the two steps lws 4.1 needs on a foreign libuv loop: the
 * first lws_context_destroy closes every connection and starts closing lws's uv handles;
 * libuv completes those closes at the end of that loop iteration; only then may the second
 * lws_context_destroy free the context (it clears srv->ctx through pcontext). Until a loop
 * iteration shows no handle closing any more, we wait. An idle handle, so the loop does not
 * block in poll while we wait.
 */
static void http_on_reap(uv_idle_t *h)
{
	stk_http_server *srv = h->data;
	bool closing = false;

	if (!srv->destroy_started) {
		srv->destroy_started = true;
		if (srv->ctx)
			lws_context_destroy(srv->ctx);
		return;
	}
	if (srv->ctx && !srv->destroy_finished) {
		uv_walk(stk_loop_uv(srv->loop), http_walk_closing, &closing);
		if (!closing) {
			srv->destroy_finished = true;
			lws_context_destroy(srv->ctx);
		}
	}
	/* Bounded: should lws never report the end, stop waiting rather than spin forever. */
	if (srv->ctx && ++srv->reap_iterations < HTTP_REAP_MAX_ITERATIONS)
		return;
	uv_idle_stop(h);
	uv_close((uv_handle_t *)h, http_on_handle_closed);
}

void stk_http_server_shutdown(stk_http_server *srv, stk_loop_fn done, void *arg)
{
	uv_loop_t *uv = stk_loop_uv(srv->loop);

	if (srv->state == SRV_CLOSED) {
		if (done)
			done(arg);
		return;
	}
	if (done) {
		srv->done = stk_reallocarray(srv->done, srv->ndone + 1, sizeof(*srv->done));
		srv->done[srv->ndone].fn = done;
		srv->done[srv->ndone].arg = arg;
		srv->ndone++;
	}
	if (srv->state != SRV_OPEN)
		return;
	srv->state = SRV_STOPPING;
	srv->listening = false;
	if (srv->handles_inited) {
		uv_poll_stop(&srv->listener);
		uv_timer_stop(&srv->pause_timer);
		uv_timer_stop(&srv->watch_timer);
		uv_close((uv_handle_t *)&srv->listener, http_on_handle_closed);
		uv_close((uv_handle_t *)&srv->pause_timer, http_on_handle_closed);
		uv_close((uv_handle_t *)&srv->watch_timer, http_on_handle_closed);
	}
	uv_idle_init(uv, &srv->reaper);
	srv->reaper.data = srv;
	srv->open_handles++;
	uv_idle_start(&srv->reaper, http_on_reap);
}

static void http_hook_done(void *loop)
{
	stk_loop_shutdown_done(loop);
}

void stk_http_server_shutdown_hook(void *arg)
{
	stk_http_server *srv = arg;

	stk_http_server_shutdown(srv, http_hook_done, srv->loop);
}

void stk_http_server_free(stk_http_server *srv)
{
	if (!srv)
		return;
	if (srv->state == SRV_OPEN)
		stk_http_server_shutdown(srv, NULL, NULL);
	while (srv->state != SRV_CLOSED)
		uv_run(stk_loop_uv(srv->loop), UV_RUN_ONCE);
	http_server_release(srv);
}

int stk_http_server_new(stk_http_server **out, stk_loop *loop, const stk_http_opts *opts,
			stk_err *err)
{
	struct lws_context_creation_info ci, vi;
	stk_http_server *srv = stk_calloc(1, sizeof(*srv));
	uv_loop_t *uv = stk_loop_uv(loop);
	void *loops[1];
	int rc;

	pthread_once(&http_lws_once, http_lws_init);
	srv->loop = loop;
	srv->listen_fd = -1;
	srv->name = stk_strdup(opts->name ? opts->name : "http");
	srv->max_body = opts->max_body ? opts->max_body : STK_LIMIT_HTTP_BODY;
	srv->timeout_s = opts->timeout_s ? opts->timeout_s : HTTP_DEFAULT_TIMEOUT_S;
	srv->tls_on = opts->tls_cert_file || opts->tls_key_file || opts->tls_cert_pem ||
		      opts->tls_key_pem;

	if (srv->tls_on) {
		rc = http_tls_load(srv, opts, err);
		if (rc)
			goto out;
	}
	rc = http_listen(srv, opts->bind_address, err);
	if (rc)
		goto out;

	memset(&ci, 0, sizeof(ci));
	loops[0] = uv;
	ci.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
		     LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		     LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME;
	if (srv->tls_on)
		ci.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	ci.foreign_loops = loops;
	ci.pcontext = &srv->ctx;
	ci.user = srv;
	ci.port = CONTEXT_PORT_NO_LISTEN;
	ci.fd_limit_per_thread =
		(opts->max_connections ? opts->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS) + 8;
	ci.max_http_header_data2 = STK_LIMIT_HTTP_HEADERS;
	ci.server_string = "stoker";
	ci.timeout_secs = srv->timeout_s;
	srv->ctx = lws_create_context(&ci);
	if (!srv->ctx) {
		rc = stk_err_set(err, STK_EIO,
				 "http server %s: libwebsockets failed to start on the libuv loop "
				 "(is libwebsockets-evlib-uv installed?)",
				 srv->name);
		goto out;
	}

	memset(&vi, 0, sizeof(vi));
	vi.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	vi.protocols = http_protocols;
	vi.vhost_name = srv->name;
	vi.user = srv;
	vi.alpn = "http/1.1";
	vi.keepalive_timeout = 5;
	vi.timeout_secs = srv->timeout_s;
	if (srv->tls_on)
		vi.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
			     LWS_SERVER_OPTION_CREATE_VHOST_SSL_CTX;
	/* srv->tls stays: every handshake takes the current pair from it (http_tls_cert_cb). */
	srv->vhost = lws_create_vhost(srv->ctx, &vi);
	if (!srv->vhost) {
		rc = stk_err_set(err, STK_EIO,
				 "http server %s: libwebsockets could not create "
				 "the server (TLS setup failed?)",
				 srv->name);
		goto out;
	}

	uv_poll_init_socket(uv, &srv->listener, srv->listen_fd);
	srv->listener.data = srv;
	uv_timer_init(uv, &srv->pause_timer);
	srv->pause_timer.data = srv;
	uv_timer_init(uv, &srv->watch_timer);
	srv->watch_timer.data = srv;
	srv->open_handles = 3;
	srv->handles_inited = true;
	uv_poll_start(&srv->listener, UV_READABLE, http_on_accept);
	srv->listening = true;
	*out = srv;
	srv = NULL;
out:
	if (srv && srv->ctx) {
		/* lws already has handles on the loop; they close on the coming iterations. */
		srv->free_when_closed = true;
		stk_http_server_shutdown(srv, NULL, NULL);
	} else if (srv) {
		http_server_release(srv);
	}
	return rc;
}

int stk_http_server_port(const stk_http_server *srv)
{
	return srv->port;
}

int stk_http_route(stk_http_server *srv, const char *method, const char *path,
		   stk_http_handler_fn fn, void *arg, stk_err *err)
{
	static const char *const known[] = {"*",   "GET",   "HEAD",   "POST",
					    "PUT", "PATCH", "DELETE", "OPTIONS"};
	struct http_route *r;
	bool prefix, ok = false;
	size_t i, len;
	char *p;

	for (i = 0; method && i < sizeof(known) / sizeof(known[0]); i++)
		ok = ok || strcmp(method, known[i]) == 0;
	if (!ok)
		return stk_err_set(err, STK_EINVAL, "http route: unknown method \"%s\"",
				   method ? method : "(null)");
	if (!path || path[0] != '/' || !fn)
		return stk_err_set(err, STK_EINVAL, "http route: path must start with '/'");
	len = strlen(path);
	prefix = len >= 2 && strcmp(path + len - 2, "/*") == 0;
	p = stk_strndup(path, prefix ? len - 1 : len);
	if (strchr(p, '*')) {
		free(p);
		return stk_err_set(err, STK_EINVAL, "http route %s: '*' only as final \"/*\"",
				   path);
	}
	for (i = 0; i < srv->nroutes; i++) {
		r = &srv->routes[i];
		if (r->prefix == prefix && strcmp(r->path, p) == 0 &&
		    strcmp(r->method, method) == 0) {
			free(p);
			return stk_err_set(err, STK_EEXIST, "http route %s %s: already registered",
					   method, path);
		}
	}
	srv->routes = stk_reallocarray(srv->routes, srv->nroutes + 1, sizeof(*srv->routes));
	r = &srv->routes[srv->nroutes++];
	r->method = stk_strdup(method);
	r->path = p;
	r->prefix = prefix;
	r->fn = fn;
	r->arg = arg;
	return 0;
}

/* --- request and response API ---------------------------------------------------------- */

const char *stk_http_request_header(const stk_http_request *req, const char *name)
{
	stk_http_exchange *ex = REQ_EX(req);
	struct http_header_cache *h;
	char key[128];
	size_t nlen, i;
	int t, n = -1;
	char *val;

	if (!name || !ex->wsi)
		return NULL;
	for (h = ex->hdrs; h; h = h->next)
		if (strcasecmp(h->name, name) == 0)
			return h->value;
	nlen = strlen(name);
	if (nlen == 0 || nlen + 2 > sizeof(key))
		return NULL;
	for (i = 0; i < nlen; i++)
		key[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	key[nlen] = ':';
	key[nlen + 1] = '\0';

	/* A header lws knows by token, else one it stored by name (custom headers). */
	for (t = 0; t < WSI_TOKEN_COUNT; t++) {
		const unsigned char *s = lws_token_to_string((enum lws_token_indexes)t);
		if (s && strcmp((const char *)s, key) == 0)
			break;
	}
	if (t < WSI_TOKEN_COUNT) {
		n = lws_hdr_total_length(ex->wsi, (enum lws_token_indexes)t);
		if (n <= 0)
			return NULL;
		val = stk_malloc((size_t)n + 1);
		if (lws_hdr_copy(ex->wsi, val, n + 1, (enum lws_token_indexes)t) < 0) {
			free(val);
			return NULL;
		}
	} else {
		n = lws_hdr_custom_length(ex->wsi, key, (int)nlen + 1);
		if (n <= 0)
			return NULL;
		val = stk_malloc((size_t)n + 1);
		if (lws_hdr_custom_copy(ex->wsi, val, n + 1, key, (int)nlen + 1) < 0) {
			free(val);
			return NULL;
		}
	}
	h = stk_calloc(1, sizeof(*h));
	h->name = stk_strdup(name);
	h->value = val;
	h->next = ex->hdrs;
	ex->hdrs = h;
	return val;
}

const char *stk_http_request_query(const stk_http_request *req, const char *name)
{
	stk_http_exchange *ex = REQ_EX(req);
	size_t nlen = name ? strlen(name) : 0, i;

	for (i = 0; name && i < ex->nargs; i++) {
		const char *a = ex->args[i];
		if (strncmp(a, name, nlen) != 0)
			continue;
		if (a[nlen] == '=')
			return a + nlen + 1;
		if (a[nlen] == '\0')
			return a + nlen;
	}
	return NULL;
}

void stk_http_response_status(stk_http_response *resp, int status)
{
	http_response_clear_body(resp);
	free(resp->content_type);
	resp->content_type = NULL;
	resp->status = status;
}

static bool http_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

int stk_http_response_header(stk_http_response *resp, const char *name, const char *value,
			     stk_err *err)
{
	static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
					       "content-type"};
	char lname[128];
	size_t nlen, i, mark;
	int rc;

	if (!name || !value)
		return stk_err_set(err, STK_EINVAL, "http header: NULL name or value");
	nlen = strlen(name);
	if (nlen == 0 || nlen >= sizeof(lname) - 1)
		return stk_err_set(err, STK_EINVAL, "http header: bad name length");
	for (i = 0; i < nlen; i++) {
		if (!http_token_char(name[i]))
			return stk_err_set(err, STK_EINVAL, "http header \"%s\": bad name", name);
		lname[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	}
	lname[nlen] = '\0';
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(lname, reserved[i]) == 0)
			return stk_err_set(err, STK_EINVAL,
					   "http header \"%s\" is set by the server", name);
	for (i = 0; value[i]; i++)
		if ((unsigned char)value[i] < 0x20 && value[i] != '\t')
			return stk_err_set(err, STK_EINVAL,
					   "http header \"%s\": control character in value", name);
	lname[nlen] = ':';
	lname[nlen + 1] = '\0';
	mark = resp->headers.len;
	rc = stk_buf_put(&resp->headers, lname, nlen + 2);
	if (!rc)
		rc = stk_buf_put(&resp->headers, value, strlen(value) + 1);
	if (rc) {
		resp->headers.len = mark;
		return stk_err_set(err, STK_ETOOBIG, "http response headers above %u bytes",
				   STK_LIMIT_HTTP_HEADERS);
	}
	return 0;
}

static void http_set_type(stk_http_response *resp, int status, const char *content_type)
{
	http_response_clear_body(resp);
	free(resp->content_type);
	resp->content_type = content_type ? stk_strdup(content_type) : NULL;
	resp->status = status;
}

void stk_http_response_body(stk_http_response *resp, int status, const char *content_type,
			    const void *data, size_t len)
{
	http_set_type(resp, status, content_type);
	resp->kind = BODY_MEM;
	resp->mem = stk_malloc(len ? len : 1);
	if (len)
		memcpy(resp->mem, data, len);
	resp->mem_len = len;
}

void stk_http_response_text(stk_http_response *resp, int status, const char *text)
{
	stk_http_response_body(resp, status, "text/plain; charset=utf-8", text, strlen(text));
}

void stk_http_response_body_take(stk_http_response *resp, int status, const char *content_type,
				 stk_buf *body)
{
	http_set_type(resp, status, content_type);
	resp->kind = BODY_MEM;
	resp->mem = stk_buf_detach(body, &resp->mem_len);
}

int stk_http_response_file_take(stk_http_response *resp, int status, const char *content_type,
				int fd, stk_err *err)
{
	struct stat st;
	off_t pos;

	http_set_type(resp, status, content_type);
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return stk_err_errno(err, e, "http response file");
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return stk_err_set(err, STK_EINVAL, "http response file: not a regular file");
	}
	pos = lseek(fd, 0, SEEK_CUR);
	if (pos < 0 || pos > st.st_size) {
		int e = pos < 0 ? errno : EINVAL;
		close(fd);
		return stk_err_errno(err, e, "http response file: lseek");
	}
	resp->kind = BODY_FILE;
	resp->fd = fd;
	resp->file_len = (uint64_t)(st.st_size - pos);
	return 0;
}

stk_http_exchange *stk_http_defer(const stk_http_request *req)
{
	stk_http_exchange *ex = REQ_EX(req);

	if (ex->state != EX_HANDLING || ex->deferred)
		http_die("stk_http_defer outside a handler or called twice");
	ex->deferred = true;
	ex->refs++;
	return ex;
}

const stk_http_request *stk_http_exchange_request(stk_http_exchange *ex)
{
	return &ex->req;
}

stk_http_response *stk_http_exchange_response(stk_http_exchange *ex)
{
	return &ex->resp;
}

bool stk_http_exchange_canceled(const stk_http_exchange *ex)
{
	return ex->canceled;
}

void stk_http_exchange_on_cancel(stk_http_exchange *ex, stk_loop_fn fn, void *arg)
{
	if (ex->released)
		http_die("stk_http_exchange_on_cancel after complete");
	if (ex->canceled) {
		if (fn)
			fn(arg);
		return;
	}
	ex->cancel_fn = fn;
	ex->cancel_arg = arg;
}

void stk_http_exchange_complete(stk_http_exchange *ex)
{
	if (!ex->deferred || ex->released)
		http_die("stk_http_exchange_complete without stk_http_defer, or twice");
	ex->released = true;
	ex->cancel_fn = NULL;
	if (ex->state == EX_HANDLING)
		ex->answered = true; /* dispatch sends it when the handler returns */
	else if (ex->state == EX_WAITING && ex->wsi)
		http_start_sending(ex);
	http_ex_unref(ex);
}

/* --- /metrics -------------------------------------------------------------------------- */

static int http_metrics_handler(const stk_http_request *req, stk_http_response *resp, void *arg)
{
	stk_buf b = STK_BUF_INIT(STK_LIMIT_METRICS_TEXT);

	(void)req;
	if (stk_metrics_render(arg, &b) != 0) {
		stk_buf_release(&b);
		return STK_ESERVER;
	}
	stk_http_response_body_take(resp, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
	return STK_HTTP_DONE;
}

int stk_http_serve_metrics(stk_http_server *srv, stk_metrics *m, stk_err *err)
{
	return stk_http_route(srv, "GET", "/metrics", http_metrics_handler, m, err);
}
