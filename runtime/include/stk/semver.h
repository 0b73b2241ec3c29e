/*
 * Semantic versions (semver.org 2.0) and the range syntax of GitSource `ref.semver`
 * (the Masterminds/Flux dialect): comparators `=`, `!=`, `>`, `>=`, `<`, `<=`, `~`, `^`,
 * x-ranges (`1.2.x`, `1.*`, `*`), hyphen ranges (`1.2 - 1.4`), space- or comma-separated
 * AND, `||` OR. A leading `v` is accepted on versions and tags. Pre-releases match only
 * when a comparator of the same major.minor.patch names a pre-release (as npm does).
 */
#ifndef STK_SEMVER_H
#define STK_SEMVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stk/err.h"

struct stk_semver {
	uint64_t major, minor, patch;
	char pre[64]; /* pre-release identifiers, "" for a release; build metadata dropped */
};

/* Parses "1.2.3", "v1.2.3-rc.1+build". 0 or STK_EPARSE. Any thread. */
int stk_semver_parse(struct stk_semver *out, const char *s);

/* <0, 0, >0 by semver precedence. */
int stk_semver_cmp(const struct stk_semver *a, const struct stk_semver *b);

typedef struct stk_semver_range stk_semver_range;

/* Parses a range. 0, STK_EPARSE (message names the bad part) or STK_ETOOBIG. */
int stk_semver_range_parse(stk_semver_range **out, const char *s, stk_err *err);
void stk_semver_range_free(stk_semver_range *r);
bool stk_semver_range_match(const stk_semver_range *r, const struct stk_semver *v);

/*
 * Picks the highest of `tags` (names without "refs/tags/") that parse as versions and
 * match `r`. Returns its index, or -1 when none matches.
 */
long stk_semver_range_best(const stk_semver_range *r, const char *const *tags, size_t n);

#endif
