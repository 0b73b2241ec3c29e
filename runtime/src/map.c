#include "stk/map.h"

#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"

/* FNV-1a. */
static size_t map_hash(const char *s)
{
	size_t h = (size_t)1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * (size_t)1099511628211ull;
	return h;
}

void stk_map_release(stk_map *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct stk_map_entry *e = m->buckets[i];
		while (e) {
			struct stk_map_entry *next = e->next;
			free(e->key);
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = NULL;
	m->nbuckets = 0;
	m->len = 0;
}

void stk_map_release_free(stk_map *m)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct stk_map_entry *e = m->buckets[i]; e; e = e->next)
			free(e->value);
	stk_map_release(m);
}

static struct stk_map_entry **map_slot(const stk_map *m, const char *key, size_t h)
{
	struct stk_map_entry **p = &m->buckets[h & (m->nbuckets - 1)];

	while (*p && ((*p)->hash != h || strcmp((*p)->key, key)))
		p = &(*p)->next;
	return p;
}

void *stk_map_get(const stk_map *m, const char *key)
{
	struct stk_map_entry **p;

	if (!m->nbuckets)
		return NULL;
	p = map_slot(m, key, map_hash(key));
	return *p ? (*p)->value : NULL;
}

static void map_grow(stk_map *m)
{
	size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
	struct stk_map_entry **b = stk_calloc(n, sizeof(*b));

	for (size_t i = 0; i < m->nbuckets; i++) {
		struct stk_map_entry *e = m->buckets[i];
		while (e) {
			struct stk_map_entry *next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

void *stk_map_put(stk_map *m, const char *key, void *value)
{
	size_t h = map_hash(key);
	struct stk_map_entry **p, *e;

	if (!m->nbuckets || m->len + 1 > m->nbuckets / 4 * 3)
		map_grow(m);
	p = map_slot(m, key, h);
	if (*p) {
		void *old = (*p)->value;
		(*p)->value = value;
		return old;
	}
	e = stk_malloc(sizeof(*e));
	e->key = stk_strdup(key);
	e->value = value;
	e->hash = h;
	e->next = NULL;
	*p = e;
	m->len++;
	return NULL;
}

void *stk_map_del(stk_map *m, const char *key)
{
	struct stk_map_entry **p, *e;
	void *v;

	if (!m->nbuckets)
		return NULL;
	p = map_slot(m, key, map_hash(key));
	e = *p;
	if (!e)
		return NULL;
	*p = e->next;
	v = e->value;
	free(e->key);
	free(e);
	m->len--;
	return v;
}

struct stk_map_entry *stk_map_next(const stk_map *m, struct stk_map_iter *it)
{
	struct stk_map_entry *e;

	if (!it->started) {
		it->started = 1;
		it->bucket = 0;
		it->next = NULL;
	}
	while (!it->next) {
		if (it->bucket >= m->nbuckets)
			return NULL;
		it->next = m->buckets[it->bucket++];
	}
	e = it->next;
	it->next = e->next;
	return e;
}
