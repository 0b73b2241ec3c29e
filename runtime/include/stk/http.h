/*
 * HTTP/1.1 and HTTPS server on libwebsockets, running on the daemon's libuv loop (stk_loop).
 * Used for /metrics, /healthz and /readyz, the admission webhook, the webhook receiver and
 * the artifact server.
 *
 * Threads. Everything here runs on the loop thread: handlers are called there, and every
 * function below must be called there too (or from the main thread before stk_loop_run
 * starts), except where a comment says otherwise. A worker thread that computes an answer
 * hands it back with stk_loop_post and completes the exchange from the posted callback.
 *
 * Design. Each server owns one libwebsockets context bound to the stk_loop's uv_loop_t as a
 * "foreign loop" (LWS_SERVER_OPTION_LIBUV; Debian's lws 4.1 loads the uv event lib as a
 * plugin). One context per server keeps servers independent: a daemon can start, stop and
 * free its metrics, health and webhook servers separately, and a TLS setting on one never
 * leaks into another. The listening socket is ours (bound before lws is involved, so a
 * busy port is reported synchronously with errno text and nothing is left on the loop);
 * each accepted connection is adopted by lws, which does the HTTP parsing and TLS.
 *
 * Requests. A route is an exact path ("/readyz") or a prefix: a path whose last two
 * characters are a slash and an asterisk matches everything below that slash (the route
 * "/gitsource/" + "*" matches "/gitsource/" followed by anything). An exact route beats a
 * prefix, a longer prefix beats a shorter one. No route: 404. A route for the path but
 * not for the method: 405 with an Allow header. GET routes also answer HEAD. A request body
 * needs a Content-Length (a chunked upload gets 411: lws 4.1 cannot decode one); a length
 * above the server's max_body gets 413 at once and the connection is closed without
 * reading the body; "Expect: 100-continue" is answered. Path and query arrive
 * percent-decoded (libwebsockets decodes them). Methods lws does not know are refused by
 * lws itself (403).
 *
 * Responses. A handler fills the response (status, content type, body from memory or from
 * a file descriptor streamed in chunks, extra headers) and returns STK_HTTP_DONE, or it
 * takes an exchange handle with stk_http_defer, returns STK_HTTP_DEFERRED, and answers
 * later with stk_http_exchange_complete.
 *
 * Deferred ownership. An exchange is reference counted: the connection holds one
 * reference, a deferring handler another. If the client disconnects (or the server shuts
 * down, or the server's timeout passes) first, the connection drops its reference and the
 * exchange is marked canceled; the optional cancel callback runs once, on the loop thread.
 * (lws does not read a connection while its request is pending, so the server looks for
 * the client's FIN itself every 200 ms.)
 * The holder must still call stk_http_exchange_complete exactly once: on a canceled
 * exchange it only releases the memory. The handle therefore never dangles, whatever the
 * order of events, and no callback is made after complete.
 *
 * Shutdown. stk_http_server_shutdown stops accepting, closes every connection (canceling
 * deferred exchanges) and destroys the lws context; libuv closes handles asynchronously, so
 * it finishes on a later loop iteration and then calls `done`. Register
 * stk_http_server_shutdown_hook with stk_loop_on_shutdown to make SIGTERM do this. Free
 * servers before stk_loop_free: the loop must still exist to close their handles.
 */
#ifndef STK_HTTP_H
#define STK_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "stk/buf.h"
#include "stk/err.h"
#include "stk/loop.h"
#include "stk/metrics.h"

typedef struct stk_http_server stk_http_server;
typedef struct stk_http_exchange stk_http_exchange;
typedef struct stk_http_response stk_http_response;

/*
 * Server options. `bind_address` is "host:port", ":port" (all interfaces) or "[v6]:port";
 * port 0 picks a free port (see stk_http_server_port). TLS is on when a certificate is
 * given, either as PEM files (`tls_cert_file` may hold the chain after the leaf) or as PEM
 * text in memory (`tls_cert_pem`, `tls_key_pem`; e.g. a certificate generated at
 * startup, which then never touches the disk). Zero values select the defaults.
 */
typedef struct stk_http_opts {
	const char *bind_address;
	const char *name;	   /* identifies the server in error messages; "http" */
	const char *tls_cert_file; /* PEM certificate (chain) file */
	const char *tls_key_file;  /* PEM private key file (unencrypted) */
	const char *tls_cert_pem;  /* or: PEM certificate (chain) text */
	const char *tls_key_pem;   /* and PEM private key text */
	size_t max_body;	   /* request body cap; STK_LIMIT_HTTP_BODY */
	unsigned max_connections;  /* simultaneous connections (a few more pass); 1024 */
	unsigned timeout_s;	   /* max wait for a deferred answer, max response stall; 30 */
} stk_http_opts;

#define STK_HTTP_OPTS_INIT                                    \
	{                                                     \
		NULL, "http", NULL, NULL, NULL, NULL, 0, 0, 0 \
	}

/*
 * The request as a handler sees it. Strings are NUL-terminated and owned by the exchange:
 * valid until the handler returns, or for a deferred exchange until
 * stk_http_exchange_complete.
 */
typedef struct stk_http_request {
	const char *method;	/* "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" */
	const char *path;	/* decoded path without the query, e.g. "/webhook/ns/name" */
	const char *route_rest; /* prefix routes: what "*" matched ("ns/name.tar.gz"), else "" */
	const char *query;	/* decoded query arguments joined with '&', "" if none */
	const char *body;	/* body_len bytes (NUL-terminated for convenience), "" if none */
	size_t body_len;
	const char *peer; /* client IP address as text */
} stk_http_request;

/* Handler results. A negative STK_E… code is answered with a matching status. */
enum {
	STK_HTTP_DONE = 0,    /* the response is filled; send it */
	STK_HTTP_DEFERRED = 1 /* the handler called stk_http_defer and will complete later */
};

/*
 * A route handler, called on the loop thread. Returns STK_HTTP_DONE (a handler that set
 * nothing answers 200 with an empty body), STK_HTTP_DEFERRED, or a negative STK_E… code,
 * which answers a plain-text error: EINVAL/EPARSE 400, EAUTH 401, EFORBIDDEN 403,
 * ENOTFOUND 404, ETOOBIG 413, ETOOMANY 429, EUNAVAIL 503, anything else 500.
 */
typedef int (*stk_http_handler_fn)(const stk_http_request *req, stk_http_response *resp, void *arg);

/*
 * Binds the listening socket and starts serving on `loop`. The options' strings are used
 * during the call only. 0; STK_EINVAL (bad address, unreadable or mismatched TLS
 * material); STK_EIO (bind/listen failed, e.g. "Address already in use"; libwebsockets could
 * not start). *out is written only on success. Loop thread, or main thread before the loop
 * runs.
 */
int stk_http_server_new(stk_http_server **out, stk_loop *loop, const stk_http_opts *opts,
			stk_err *err);

/* The bound port (the kernel's choice when the address said port 0). Any thread. */
int stk_http_server_port(const stk_http_server *srv);

/*
 * Replaces the serving certificate and key of a TLS server, e.g. when cert-manager renews
 * the mounted Secret. `cert_pem` is PEM text and may carry the chain after the leaf;
 * `key_pem` an unencrypted PEM private key; both are read during the call only. The pair
 * is checked first (parsed, key against certificate, accepted by OpenSSL), so bad material
 * never replaces a good pair. New connections use the new pair; open ones keep the one
 * their handshake used. 0; STK_EINVAL (a server without TLS, unparsable PEM, a key that
 * does not match the certificate, material OpenSSL refuses; the old pair stays); STK_EIO
 * (OpenSSL could not run the check). Loop thread, or main thread before the loop runs.
 */
int stk_http_server_set_tls_pem(stk_http_server *srv, const char *cert_pem, const char *key_pem,
				stk_err *err);

/*
 * Registers `fn(req, resp, arg)` for `method` ("GET", "POST", ..., or "*" for any) on
 * `path` (exact, or a prefix ending in a slash and an asterisk, see above). `arg` is
 * borrowed and must outlive the server. 0, STK_EINVAL (path not starting with '/', unknown
 * method), STK_EEXIST (same method and path already routed). Loop thread or before the
 * loop runs.
 */
int stk_http_route(stk_http_server *srv, const char *method, const char *path,
		   stk_http_handler_fn fn, void *arg, stk_err *err);

/*
 * Mounts GET /metrics rendering `m` with content type
 * "text/plain; version=0.0.4; charset=utf-8". `m` is borrowed and must outlive the server.
 * As stk_http_route.
 */
int stk_http_serve_metrics(stk_http_server *srv, stk_metrics *m, stk_err *err);

/*
 * Starts the stop: closes the listener, then every connection (deferred exchanges are
 * canceled; in-flight responses are cut), then the lws context. libuv closes handles
 * asynchronously, so this finishes on a later loop iteration and then calls done(arg) on
 * the loop thread. Calling it again only adds its `done` (run at once if the server is
 * already closed); `done` may be NULL. Daemons register their HTTP hooks first so they run
 * last (hooks run in reverse), after the components that still answer requests. Loop
 * thread.
 */
void stk_http_server_shutdown(stk_http_server *srv, stk_loop_fn done, void *arg);

/*
 * A stk_loop_on_shutdown hook: stk_loop_on_shutdown(loop, stk_http_server_shutdown_hook,
 * srv) makes SIGTERM shut the server down and report stk_loop_shutdown_done when finished.
 * The server must then stay allocated until stk_loop_run returned.
 */
void stk_http_server_shutdown_hook(void *srv);

/*
 * Frees the server. If it was not shut down completely, this shuts it down and runs the
 * loop until lws has closed its handles, so it must not be called from a loop callback
 * unless the shutdown's `done` already ran. Deferred exchanges still held by their owners
 * stay valid (canceled) until completed. NULL-safe. Main thread after stk_loop_run, or
 * loop thread after shutdown finished.
 */
void stk_http_server_free(stk_http_server *srv);

/*
 * Looks up a request header by name (case-insensitive), e.g. "Authorization",
 * "If-None-Match", "X-Hub-Signature-256". Returns the value (owned by the exchange, valid
 * as the request strings), or NULL when absent, empty, or the client already went away.
 * Loop thread.
 */
const char *stk_http_request_header(const stk_http_request *req, const char *name);

/*
 * The value of query argument `name` ("" for a bare flag such as "?verbose"), or NULL when
 * absent. Owned by the exchange, valid as the request strings. Loop thread.
 */
const char *stk_http_request_query(const stk_http_request *req, const char *name);

/* Sets a status with an empty body (e.g. 202, 204, 304). Loop thread. */
void stk_http_response_status(stk_http_response *resp, int status);

/*
 * Adds a response header (e.g. "ETag", "Retry-After", "WWW-Authenticate"). The name must be
 * an HTTP token, the value printable text without CR/LF; Content-Length, Transfer-Encoding
 * and Connection are managed by the server. 0, STK_EINVAL, STK_ETOOBIG (all headers above
 * STK_LIMIT_HTTP_HEADERS). Loop thread.
 */
int stk_http_response_header(stk_http_response *resp, const char *name, const char *value,
			     stk_err *err);

/*
 * Sets status, content type and a copy of data[0..len) as the body (replacing any earlier
 * body). `content_type` may be NULL for none. Loop thread.
 */
void stk_http_response_body(stk_http_response *resp, int status, const char *content_type,
			    const void *data, size_t len);

/* Shorthand: a "text/plain; charset=utf-8" body. Loop thread. */
void stk_http_response_text(stk_http_response *resp, int status, const char *text);

/* As stk_http_response_body, adopting the buffer's storage (the buffer is left empty). */
void stk_http_response_body_take(stk_http_response *resp, int status, const char *content_type,
				 stk_buf *body);

/*
 * Streams the regular file open at `fd` from its current offset to its end as the body,
 * in chunks, without loading it into memory. Takes `fd` in every case (closed after the
 * response or on error). 0, STK_EINVAL (not a regular file), STK_EIO (fstat/lseek
 * failed). Loop thread.
 */
int stk_http_response_file_take(stk_http_response *resp, int status, const char *content_type,
				int fd, stk_err *err);

/*
 * Inside a handler: takes a reference to the exchange so the handler can return
 * STK_HTTP_DEFERRED and answer later. Call at most once per request. Loop thread.
 */
stk_http_exchange *stk_http_defer(const stk_http_request *req);

/* The request and response of a deferred exchange. Loop thread. */
const stk_http_request *stk_http_exchange_request(stk_http_exchange *ex);
stk_http_response *stk_http_exchange_response(stk_http_exchange *ex);

/* True once the client went away (or the server stopped) before completion. Loop thread. */
bool stk_http_exchange_canceled(const stk_http_exchange *ex);

/*
 * Sets a callback run once, on the loop thread, if the exchange is canceled before it is
 * completed (immediately if it already is). It must not free `ex`; the holder still calls
 * stk_http_exchange_complete. Loop thread.
 */
void stk_http_exchange_on_cancel(stk_http_exchange *ex, stk_loop_fn fn, void *arg);

/*
 * Sends the response now filled in (or, if canceled, drops it) and releases the handle,
 * which is invalid afterwards. Exactly once per stk_http_defer. Loop thread.
 */
void stk_http_exchange_complete(stk_http_exchange *ex);

#endif
