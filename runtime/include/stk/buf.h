/* Growable byte buffer with a hard size cap, for text built from or fed by outside input. */
#ifndef STK_BUF_H
#define STK_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * `ptr` is always NUL-terminated after a successful call (the terminator is not counted in
 * `len`). `max` bounds `len`; an append that would exceed it fails with STK_ETOOBIG and
 * leaves the buffer unchanged. Owned by one thread at a time.
 */
typedef struct stk_buf {
	char *ptr;
	size_t len;
	size_t cap;
	size_t max;
} stk_buf;

#define STK_BUF_INIT(max_len)         \
	{                             \
		NULL, 0, 0, (max_len) \
	}

/* Embeds a buffer limited to `max` bytes. Never fails. */
void stk_buf_init(stk_buf *b, size_t max);
/* Frees the storage; the buffer can be reused (empty) afterwards. NULL-safe. */
void stk_buf_release(stk_buf *b);
/* Empties the buffer, keeping its storage. */
void stk_buf_reset(stk_buf *b);
/* Hands the storage (NUL-terminated, never NULL) to the caller and empties the buffer. */
char *stk_buf_detach(stk_buf *b, size_t *len);

/* Appends bytes / a string / one byte. 0 or STK_ETOOBIG. */
int stk_buf_put(stk_buf *b, const void *data, size_t len);
int stk_buf_puts(stk_buf *b, const char *s);
int stk_buf_putc(stk_buf *b, char c);
/* Appends formatted text. 0, STK_ETOOBIG, or STK_EINVAL for a bad format. */
int stk_buf_printf(stk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int stk_buf_vprintf(stk_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/*
 * Appends `s[0..len)` as a JSON string literal with quotes, escaping control characters,
 * quote and backslash; invalid UTF-8 bytes become U+FFFD so the output is always valid
 * JSON. 0 or STK_ETOOBIG.
 */
int stk_buf_put_json_string(stk_buf *b, const char *s, size_t len);
/*
 * Appends `s` as one JSON Pointer reference token (RFC 6901): "~" as "~0", "/" as "~1"
 * (an annotation key such as "stoker.io/cr-name" in a JSON patch path). No quoting: the
 * caller puts it inside a JSON string, so `s` must need no JSON escaping (as Kubernetes
 * names and keys do not). 0 or STK_ETOOBIG.
 */
int stk_buf_put_json_pointer_token(stk_buf *b, const char *s);
/*
 * Length (1..4) of the valid UTF-8 sequence at s[0..avail), or 0 when it is not valid
 * (truncated, overlong, a surrogate, past U+10FFFF). avail must be at least 1.
 */
size_t stk_utf8_seq_len(const unsigned char *s, size_t avail);

/* Drops the first `n` bytes (n <= len). */
void stk_buf_consume(stk_buf *b, size_t n);

#endif
