/*
 * Incremental line splitter for streamed bodies (watch streams: one JSON object per
 * line). Bytes are appended as they arrive; complete lines are handed out in order. The
 * scan resumes where the previous one stopped, so no byte is scanned twice however the
 * stream is chunked, and consumed lines are dropped lazily so memmove cost stays linear.
 */
#ifndef STK_LINES_H
#define STK_LINES_H

#include <stddef.h>

#include "stk/buf.h"

typedef struct stk_lines {
	stk_buf buf;	 /* pending bytes: [start, buf.len) not yet handed out */
	size_t start;	 /* first byte of the current (incomplete) line */
	size_t scanned;	 /* bytes of the current line already known to hold no '\n' */
	size_t max_line; /* cap on one line, without its newline */
} stk_lines;

/* Embeds a splitter whose lines may be at most `max_line` bytes. Never fails. */
void stk_lines_init(stk_lines *l, size_t max_line);
void stk_lines_release(stk_lines *l);
/* Drops buffered bytes (after a reconnect). */
void stk_lines_reset(stk_lines *l);

/*
 * Appends received bytes. The caller drains complete lines with stk_lines_next after
 * every feed. 0, or STK_ETOOBIG if a line over the cap was reported and not reset.
 */
int stk_lines_feed(stk_lines *l, const char *data, size_t len);

/*
 * Hands out the next complete line (without "\n" and a preceding "\r"), pointing into the
 * splitter's storage and valid until the next feed/next/reset. Empty lines are skipped.
 * Returns 1 with *line and *len set, 0 when no complete line is buffered, or STK_ETOOBIG when
 * the next line (complete or still arriving) is longer than the cap; the stream is then
 * unusable until stk_lines_reset.
 */
int stk_lines_next(stk_lines *l, const char **line, size_t *len);

/* Bytes of the incomplete trailing line (for diagnostics). */
size_t stk_lines_pending(const stk_lines *l);

#endif
