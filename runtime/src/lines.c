#include "stk/lines.h"

#include <string.h>

#include "stk/err.h"

void stk_lines_init(stk_lines *l, size_t max_line)
{
	stk_buf_init(&l->buf, max_line + 1);
	l->start = 0;
	l->scanned = 0;
	l->max_line = max_line;
}

void stk_lines_release(stk_lines *l)
{
	stk_buf_release(&l->buf);
	l->start = 0;
	l->scanned = 0;
}

void stk_lines_reset(stk_lines *l)
{
	stk_buf_reset(&l->buf);
	l->start = 0;
	l->scanned = 0;
}

int stk_lines_feed(stk_lines *l, const char *data, size_t len)
{
	size_t pending = l->buf.len - l->start;

	if (pending > l->max_line)
		return STK_ETOOBIG; /* next() already reported it; the caller did not stop */
	/*
	 * Compact only when the consumed prefix is at least as large as what remains, so
	 * each byte moves at most a constant number of times on average.
	 */
	if (l->start > 0 && l->start >= pending) {
		memmove(l->buf.ptr, l->buf.ptr + l->start, pending);
		l->buf.len = pending;
		l->start = 0;
	}
	/*
	 * The buffer holds at most one incomplete line (<= max_line, enforced by next) plus
	 * this chunk, so it stays bounded by max_line + the transport's chunk size.
	 */
	l->buf.max = l->buf.len + len;
	return stk_buf_put(&l->buf, data, len);
}

int stk_lines_next(stk_lines *l, const char **line, size_t *len)
{
	for (;;) {
		const char *base = l->buf.ptr + l->start;
		size_t avail = l->buf.len - l->start;
		const char *nl;
		size_t n;

		if (avail == 0 || l->scanned >= avail)
			return avail > l->max_line ? STK_ETOOBIG : 0;
		nl = memchr(base + l->scanned, '\n', avail - l->scanned);
		if (!nl) {
			l->scanned = avail;
			return avail > l->max_line ? STK_ETOOBIG : 0;
		}
		n = (size_t)(nl - base);
		if (n > 0 && base[n - 1] == '\r')
			n--;
		if (n > l->max_line)
			return STK_ETOOBIG;
		l->start += (size_t)(nl - base) + 1;
		l->scanned = 0;
		if (n == 0)
			continue;
		*line = base;
		*len = n;
		return 1;
	}
}

size_t stk_lines_pending(const stk_lines *l)
{
	return l->buf.len - l->start;
}
