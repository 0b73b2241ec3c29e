#include "stk/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"
#include "stk/err.h"

void stk_buf_init(stk_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void stk_buf_release(stk_buf *b)
{
	if (!b)
		return;
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
}

void stk_buf_reset(stk_buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

/* Makes room for `extra` more bytes plus the terminator. */
static int buf_reserve(stk_buf *b, size_t extra)
{
	size_t need, cap;

	if (!stk_add_ok(b->len, extra, &need) || need > b->max)
		return STK_ETOOBIG;
	if (need + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need + 1)
		cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
	b->ptr = stk_realloc(b->ptr, cap);
	b->cap = cap;
	return 0;
}

char *stk_buf_detach(stk_buf *b, size_t *len)
{
	char *p;

	if (!b->ptr) {
		b->ptr = stk_malloc(1);
		b->ptr[0] = '\0';
	}
	p = b->ptr;
	if (len)
		*len = b->len;
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

int stk_buf_put(stk_buf *b, const void *data, size_t len)
{
	int rc = buf_reserve(b, len);
	if (rc)
		return rc;
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
	return 0;
}

int stk_buf_puts(stk_buf *b, const char *s)
{
	return stk_buf_put(b, s, strlen(s));
}

int stk_buf_putc(stk_buf *b, char c)
{
	return stk_buf_put(b, &c, 1);
}

int stk_buf_vprintf(stk_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, rc;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return STK_EINVAL;
	rc = buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int stk_buf_printf(stk_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = stk_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

size_t stk_utf8_seq_len(const unsigned char *s, size_t avail)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and code points past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int stk_buf_put_json_pointer_token(stk_buf *b, const char *s)
{
	int rc = 0;

	for (; *s && !rc; s++) {
		if (*s == '~')
			rc = stk_buf_puts(b, "~0");
		else if (*s == '/')
			rc = stk_buf_puts(b, "~1");
		else
			rc = stk_buf_putc(b, *s);
	}
	return rc;
}

int stk_buf_put_json_string(stk_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t start_len = b->len;
	size_t i = 0;
	int rc = stk_buf_putc(b, '"');

	while (!rc && i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t run = i;

		/* Copy the longest stretch that needs no escaping in one call. */
		while (run < len) {
			unsigned char d = (unsigned char)s[run];
			if (d < 0x20 || d == '"' || d == '\\' || d >= 0x80)
				break;
			run++;
		}
		if (run > i) {
			rc = stk_buf_put(b, s + i, run - i);
			i = run;
			continue;
		}
		if (c >= 0x80) {
			size_t n = stk_utf8_seq_len((const unsigned char *)s + i, len - i);
			if (n) {
				rc = stk_buf_put(b, s + i, n);
				i += n;
			} else {
				rc = stk_buf_puts(b, "\xef\xbf\xbd");
				i++;
			}
			continue;
		}
		switch (c) {
		case '"':
			rc = stk_buf_puts(b, "\\\"");
			break;
		case '\\':
			rc = stk_buf_puts(b, "\\\\");
			break;
		case '\n':
			rc = stk_buf_puts(b, "\\n");
			break;
		case '\r':
			rc = stk_buf_puts(b, "\\r");
			break;
		case '\t':
			rc = stk_buf_puts(b, "\\t");
			break;
		default: {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			rc = stk_buf_put(b, esc, sizeof(esc));
		}
		}
		i++;
	}
	if (!rc)
		rc = stk_buf_putc(b, '"');
	if (rc) {
		b->len = start_len;
		if (b->ptr)
			b->ptr[b->len] = '\0';
	}
	return rc;
}

void stk_buf_consume(stk_buf *b, size_t n)
{
	if (n >= b->len) {
		stk_buf_reset(b);
		return;
	}
	memmove(b->ptr, b->ptr + n, b->len - n);
	b->len -= n;
	b->ptr[b->len] = '\0';
}
