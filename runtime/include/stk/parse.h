/* Checked parsers for numbers, booleans, durations and listen addresses. */
#ifndef STK_PARSE_H
#define STK_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stk/err.h"

/*
 * Parses the whole of s[0..len) as a base-10 integer within [min, max] (optional sign,
 * no spaces, no trailing bytes). 0, STK_EPARSE or STK_EINVAL (out of range); *out is
 * written only on success.
 */
int stk_parse_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out, stk_err *err);

/* "true"/"false" (also "1"/"0"). 0 or STK_EPARSE. */
int stk_parse_bool(const char *s, size_t len, bool *out, stk_err *err);

/*
 * Parses a Go/Kubernetes duration ("300ms", "1.5h", "2m30s", "0") into milliseconds,
 * rounding sub-millisecond parts toward zero. Units: ns us µs ms s m h. Negative
 * durations and values above ~292 years are rejected. 0, STK_EPARSE or STK_ETOOBIG.
 */
int stk_parse_duration_ms(const char *s, size_t len, int64_t *out_ms, stk_err *err);

/*
 * Splits a listen address "host:port", ":port" or "[v6]:port" (port 0–65535; host may be
 * empty, meaning all interfaces). `host` receives the host without brackets. 0 or
 * STK_EPARSE.
 */
int stk_parse_hostport(const char *s, char *host, size_t host_cap, int *port, stk_err *err);

#endif
