/* A hash map from strings (copied) to pointers (not owned). Not thread-safe. */
#ifndef STK_MAP_H
#define STK_MAP_H

#include <stddef.h>

struct stk_map_entry {
	char *key;
	void *value;
	size_t hash;
	struct stk_map_entry *next;
};

typedef struct stk_map {
	struct stk_map_entry **buckets;
	size_t nbuckets; /* a power of two, or 0 before the first put */
	size_t len;
} stk_map;

#define STK_MAP_INIT       \
	{                  \
		NULL, 0, 0 \
	}

/* Frees the entries and keys (not the values). The map is empty and reusable after. */
void stk_map_release(stk_map *m);

/* stk_map_release, and free() of every value (each one malloc'ed, or NULL). */
void stk_map_release_free(stk_map *m);

/* The value stored under `key`, or NULL. */
void *stk_map_get(const stk_map *m, const char *key);

/* Stores `value` under `key`; returns the value it replaced, or NULL. */
void *stk_map_put(stk_map *m, const char *key, void *value);

/* Removes `key`; returns its value, or NULL. */
void *stk_map_del(stk_map *m, const char *key);

/*
 * Iteration: `it` starts zeroed (struct stk_map_iter it = {0}); stk_map_next returns the
 * next entry or NULL. The map must not change during iteration, except that the entry
 * just returned may be deleted.
 */
struct stk_map_iter {
	size_t bucket;
	struct stk_map_entry *next;
	int started;
};

struct stk_map_entry *stk_map_next(const stk_map *m, struct stk_map_iter *it);

#endif
