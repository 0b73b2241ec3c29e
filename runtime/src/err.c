#include "stk/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void stk_err_clear(stk_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->http_status = 0;
	err->retry_after_ms = 0;
	err->reason[0] = '\0';
	err->message[0] = '\0';
}

/* Formats into the record, marking truncation with a trailing "...". */
__attribute__((format(printf, 3, 0))) static void err_vformat(char *dst, size_t cap,
							      const char *fmt, va_list ap)
{
	int n = vsnprintf(dst, cap, fmt, ap);
	if (n < 0) {
		dst[0] = '\0';
		return;
	}
	if ((size_t)n >= cap && cap > 4)
		memcpy(dst + cap - 4, "...", 4);
}

int stk_err_set(stk_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	stk_err_clear(err);
	err->code = code;
	va_start(ap, fmt);
	err_vformat(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

int stk_err_wrap(stk_err *err, const char *fmt, ...)
{
	char prefix[STK_ERR_MESSAGE_MAX];
	char old[STK_ERR_MESSAGE_MAX];
	va_list ap;

	if (!err)
		return STK_EINVAL;
	va_start(ap, fmt);
	err_vformat(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof(old));
	if (old[0] == '\0')
		snprintf(err->message, sizeof(err->message), "%s", prefix);
	else if ((size_t)snprintf(err->message, sizeof(err->message), "%s: %s", prefix, old) >=
		 sizeof(err->message))
		memcpy(err->message + sizeof(err->message) - 4, "...", 4);
	return err->code;
}

int stk_err_errno(stk_err *err, int errnum, const char *fmt, ...)
{
	char what[STK_ERR_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	err_vformat(what, sizeof(what), fmt, ap);
	va_end(ap);
	return stk_err_set(err, STK_EIO, "%s: %s", what, strerror(errnum));
}

const char *stk_err_name(int code)
{
	switch (code) {
	case STK_OK:
		return "OK";
	case STK_EINVAL:
		return "EINVAL";
	case STK_ENOTFOUND:
		return "ENOTFOUND";
	case STK_ECONFLICT:
		return "ECONFLICT";
	case STK_EEXIST:
		return "EEXIST";
	case STK_EGONE:
		return "EGONE";
	case STK_EAUTH:
		return "EAUTH";
	case STK_EFORBIDDEN:
		return "EFORBIDDEN";
	case STK_EINVALID:
		return "EINVALID";
	case STK_ETOOMANY:
		return "ETOOMANY";
	case STK_ESERVER:
		return "ESERVER";
	case STK_EUNAVAIL:
		return "EUNAVAIL";
	case STK_ETIMEOUT:
		return "ETIMEOUT";
	case STK_ETOOBIG:
		return "ETOOBIG";
	case STK_EPARSE:
		return "EPARSE";
	case STK_EIO:
		return "EIO";
	case STK_ECANCELED:
		return "ECANCELED";
	case STK_EUNSUPPORTED:
		return "EUNSUPPORTED";
	default:
		return "EUNKNOWN";
	}
}
