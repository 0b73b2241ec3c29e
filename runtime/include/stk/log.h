/* JSON structured logging: one object per line on a file descriptor (stderr by default). */
#ifndef STK_LOG_H
#define STK_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "stk/err.h"

enum stk_log_level {
	STK_LOG_DEBUG = 0,
	STK_LOG_INFO = 1,
	STK_LOG_WARN = 2,
	STK_LOG_ERROR = 3,
};

/*
 * Sets the component written as "controller" on every line, the minimum level, and the
 * output descriptor. Called once from main before threads start (the one piece of global
 * mutable state STYLE.md allows); the strings must outlive logging.
 */
void stk_log_setup(const char *component, enum stk_log_level min_level, int fd);

/* "debug", "info", "warn"/"warning", "error". 0 or STK_EINVAL. */
int stk_log_parse_level(const char *s, enum stk_log_level *out, stk_err *err);

/* True when a line at `level` would be written (to skip building expensive fields). */
bool stk_log_enabled(enum stk_log_level level);

/*
 * Writes {"ts":…,"level":…,"msg":…,"controller":…,"<k1>":"<v1>",…} with one write(2), so
 * lines from several threads never interleave. The variadic part is pairs of strings
 * (key, value) ended by NULL; a NULL value is written as null. Values are escaped; a
 * line longer than STK_LIMIT_LOG_LINE is cut and marked "truncated":true. Any thread.
 */
void stk_log(enum stk_log_level level, const char *msg, ...) __attribute__((sentinel));

#define stk_log_debug(...) stk_log(STK_LOG_DEBUG, __VA_ARGS__)
#define stk_log_info(...)  stk_log(STK_LOG_INFO, __VA_ARGS__)
#define stk_log_warn(...)  stk_log(STK_LOG_WARN, __VA_ARGS__)
#define stk_log_error(...) stk_log(STK_LOG_ERROR, __VA_ARGS__)

/*
 * A failure that retries repeat: stk_log_repeat_due is true when `msg` differs from the
 * last message it was true for, or `repeat_ms` have passed since; the caller then logs.
 * Zeroed to start; zero it again after a success so the next failure is logged at once.
 * Used by one thread at a time.
 */
struct stk_log_repeat {
	char last[STK_ERR_MESSAGE_MAX + 64];
	uint64_t at_ms;
};

bool stk_log_repeat_due(struct stk_log_repeat *r, const char *msg, uint64_t repeat_ms);

/* Formats the current wall-clock time as RFC 3339 UTC with milliseconds into dst[32]. */
void stk_log_timestamp(char dst[32]);

#endif
