/*
 * libFuzzer target: the watch-stream splitter. The first byte picks a chunk size; the
 * lines handed out must be identical to those of a one-shot split, and never contain a
 * newline or exceed the cap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stk/lines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 256

/* Splits and folds the lines into a running hash; returns -1 on ETOOBIG. */
static long long fold(const char *s, size_t len, size_t chunk, unsigned long long *hash)
{
	stk_lines l;
	size_t off = 0;
	long long lines = 0;
	const char *line;
	size_t n;
	int rc = 0;

	stk_lines_init(&l, CAP);
	*hash = 1469598103934665603ull;
	while (off < len && rc >= 0) {
		size_t c = len - off < chunk ? len - off : chunk;
		if (stk_lines_feed(&l, s + off, c) != 0)
			abort(); /* next() always drained, so feed cannot fail here */
		off += c;
		while ((rc = stk_lines_next(&l, &line, &n)) == 1) {
			if (n == 0 || n > CAP || memchr(line, '\n', n))
				abort();
			for (size_t i = 0; i < n; i++)
				*hash = (*hash ^ (unsigned char)line[i]) * 1099511628211ull;
			*hash = (*hash ^ 0x100) * 1099511628211ull;
			lines++;
		}
	}
	stk_lines_release(&l);
	return rc < 0 ? -1 : lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned long long h1, h2;
	long long n1, n2;

	if (size < 1)
		return 0;
	n1 = fold((const char *)data + 1, size - 1, size, &h1);
	n2 = fold((const char *)data + 1, size - 1, (size_t)data[0] % 17 + 1, &h2);
	/* Chunking may only change how far we get before an over-long line. */
	if (n1 >= 0 && (n1 != n2 || h1 != h2))
		abort();
	return 0;
}
