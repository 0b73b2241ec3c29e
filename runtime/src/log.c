#include "stk/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stk/buf.h"
#include "stk/limits.h"

static const char *log_component = "stoker";
static enum stk_log_level log_min = STK_LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void stk_log_setup(const char *component, enum stk_log_level min_level, int fd)
{
	if (component)
		log_component = component;
	log_min = min_level;
	log_fd = fd;
}

int stk_log_parse_level(const char *s, enum stk_log_level *out, stk_err *err)
{
	if (!strcmp(s, "debug"))
		*out = STK_LOG_DEBUG;
	else if (!strcmp(s, "info"))
		*out = STK_LOG_INFO;
	else if (!strcmp(s, "warn") || !strcmp(s, "warning"))
		*out = STK_LOG_WARN;
	else if (!strcmp(s, "error"))
		*out = STK_LOG_ERROR;
	else
		return stk_err_set(err, STK_EINVAL,
				   "\"%.40s\" is not a log level (debug, info, warn, error)", s);
	return 0;
}

bool stk_log_enabled(enum stk_log_level level)
{
	return level >= log_min;
}

void stk_log_timestamp(char dst[32])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(dst, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(dst + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void log_write_all(const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(log_fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Appends ,"key":"value" (or null) and reports whether it fit. */
static int log_field(stk_buf *b, const char *key, const char *value)
{
	int rc = stk_buf_putc(b, ',');
	if (!rc)
		rc = stk_buf_put_json_string(b, key, strlen(key));
	if (!rc)
		rc = stk_buf_putc(b, ':');
	if (!rc)
		rc = value ? stk_buf_put_json_string(b, value, strlen(value))
			   : stk_buf_puts(b, "null");
	return rc;
}

void stk_log(enum stk_log_level level, const char *msg, ...)
{
	/* Leave room for the truncation marker and the closing brace and newline. */
	stk_buf b = STK_BUF_INIT(STK_LIMIT_LOG_LINE - 32);
	char ts[32];
	const char *k;
	bool truncated = false;
	va_list ap;

	if (level < log_min || level > STK_LOG_ERROR)
		return;
	stk_log_timestamp(ts);
	stk_buf_puts(&b, "{\"ts\":\"");
	stk_buf_puts(&b, ts);
	stk_buf_puts(&b, "\",\"level\":\"");
	stk_buf_puts(&b, level_names[level]);
	stk_buf_puts(&b, "\"");
	if (log_field(&b, "msg", msg) || log_field(&b, "controller", log_component))
		truncated = true;
	va_start(ap, msg);
	while (!truncated && (k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		size_t mark = b.len;
		if (log_field(&b, k, v)) {
			b.len = mark;
			b.ptr[b.len] = '\0';
			truncated = true;
		}
	}
	va_end(ap);
	b.max = STK_LIMIT_LOG_LINE;
	if (truncated)
		stk_buf_puts(&b, ",\"truncated\":true");
	stk_buf_puts(&b, "}\n");
	log_write_all(b.ptr, b.len);
	stk_buf_release(&b);
}

bool stk_log_repeat_due(struct stk_log_repeat *r, const char *msg, uint64_t repeat_ms)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (r->at_ms && !strncmp(r->last, msg, sizeof(r->last) - 1) && now - r->at_ms < repeat_ms)
		return false;
	snprintf(r->last, sizeof(r->last), "%s", msg);
	r->at_ms = now ? now : 1;
	return true;
}
