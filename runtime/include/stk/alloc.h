/* Allocation wrappers: abort on out-of-memory (the pod restarts), check size arithmetic. */
#ifndef STK_ALLOC_H
#define STK_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Each returns non-NULL or aborts the process with a message on stderr. Any thread. */
void *stk_malloc(size_t n);
void *stk_calloc(size_t count, size_t size);
void *stk_realloc(void *p, size_t n);
/* Reallocates `p` to `count * size` bytes, aborting if the product overflows. */
void *stk_reallocarray(void *p, size_t count, size_t size);
char *stk_strdup(const char *s);
/* Copies at most `n` bytes of `s` (stopping at a NUL) and terminates the copy. */
char *stk_strndup(const char *s, size_t n);

/* Stores a * b (or a + b) in *out; returns false, leaving *out alone, on overflow. */
bool stk_mul_ok(size_t a, size_t b, size_t *out);
bool stk_add_ok(size_t a, size_t b, size_t *out);

#endif
