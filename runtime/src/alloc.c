#include "stk/alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void alloc_die(size_t n)
{
	fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
	abort();
}

void *stk_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		alloc_die(n);
	return p;
}

void *stk_calloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		alloc_die(count * size);
	return p;
}

void *stk_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		alloc_die(n);
	return q;
}

void *stk_reallocarray(void *p, size_t count, size_t size)
{
	size_t n;
	if (!stk_mul_ok(count, size, &n))
		alloc_die(SIZE_MAX);
	return stk_realloc(p, n);
}

char *stk_strdup(const char *s)
{
	return stk_strndup(s, strlen(s));
}

char *stk_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = stk_malloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

bool stk_mul_ok(size_t a, size_t b, size_t *out)
{
	if (a != 0 && b > SIZE_MAX / a)
		return false;
	*out = a * b;
	return true;
}

bool stk_add_ok(size_t a, size_t b, size_t *out)
{
	if (b > SIZE_MAX - a)
		return false;
	*out = a + b;
	return true;
}
