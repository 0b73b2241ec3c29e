/* Error codes and the caller-owned error record shared by every Stoker library. */
#ifndef STK_ERR_H
#define STK_ERR_H

#include <stddef.h>

/*
 * Error codes. Functions return 0 on success and one of these (negative) on failure.
 * Kubernetes Status reasons map onto them at the client boundary; errno, curl, libgit2,
 * yajl and OpenSSL errors are translated where they are called.
 */
enum stk_errcode {
	STK_OK = 0,
	STK_EINVAL = -1,       /* bad argument or input: the caller must change something */
	STK_ENOTFOUND = -2,    /* 404 NotFound, missing file, unknown key */
	STK_ECONFLICT = -3,    /* 409 Conflict: resourceVersion or precondition mismatch */
	STK_EEXIST = -4,       /* 409 AlreadyExists */
	STK_EGONE = -5,	       /* 410 Gone / Expired: resourceVersion too old, relist */
	STK_EAUTH = -6,	       /* 401 Unauthorized */
	STK_EFORBIDDEN = -7,   /* 403 Forbidden */
	STK_EINVALID = -8,     /* 422 Invalid: the server rejected the object (see causes) */
	STK_ETOOMANY = -9,     /* 429 TooManyRequests: retry after err->retry_after_ms */
	STK_ESERVER = -10,     /* 5xx or an unexpected answer from a server */
	STK_EUNAVAIL = -11,    /* cannot connect, connection reset, service unavailable */
	STK_ETIMEOUT = -12,    /* a deadline passed */
	STK_ETOOBIG = -13,     /* input larger than the limit in stk/limits.h */
	STK_EPARSE = -14,      /* malformed JSON, YAML, URL, number, ... */
	STK_EIO = -15,	       /* local I/O error (see the message for errno text) */
	STK_ECANCELED = -16,   /* the operation was cancelled (shutdown) */
	STK_EUNSUPPORTED = -17 /* a valid request this build or server cannot honour */
};

#define STK_ERR_REASON_MAX  64
#define STK_ERR_MESSAGE_MAX 512

/*
 * Caller-owned, fixed-size error record. Setting it never allocates, so it can be filled
 * on any path, including after an allocation failure. `http_status` and `reason` are set
 * when a remote server answered (Kubernetes Status `code` and `reason`); `retry_after_ms`
 * when the server asked the client to wait.
 */
typedef struct stk_err {
	int code;
	int http_status;
	long retry_after_ms;
	char reason[STK_ERR_REASON_MAX];
	char message[STK_ERR_MESSAGE_MAX];
} stk_err;

#define STK_ERR_INIT            \
	{                       \
		0, 0, 0, "", "" \
	}

/* Resets `err` (may be NULL). Any thread. */
void stk_err_clear(stk_err *err);

/*
 * Records `code` and a printf-style one-line message in `err` (may be NULL; then only the
 * code is returned). A message longer than the record is truncated with "...". Returns
 * `code`, so callers can write `return stk_err_set(err, STK_EINVAL, "...")`. Any thread.
 */
int stk_err_set(stk_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Prefixes the existing message with "<prefix>: ", keeping code, status and reason, so
 * a caller can add context without losing the cause. Returns err->code (or STK_EINVAL
 * when err is NULL).
 */
int stk_err_wrap(stk_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The stable name of a code ("ENOTFOUND"); "EUNKNOWN" for anything else. */
const char *stk_err_name(int code);

/* Sets an STK_EIO error whose message ends with strerror(errnum). Returns STK_EIO. */
int stk_err_errno(stk_err *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
