/*
 * Semantic versions (semver.org 2.0) and the range syntax of GitSource `ref.semver`
 * (the Masterminds/Flux dialect): comparators `=`, `!=`, `>`, `>=`, `<`, `<=`, `~`, `^`,
 * x-ranges (`1.2.x`, `1.*`, `*`), hyphen ranges (`1.2 - 1.4`), space- or comma-separated
 * AND, `||` OR. A leading `v` is accepted on versions and tags. Pre-releases match only
 * when a comparator of the same major.minor.patch names a pre-release (as npm does).
 */
#ifndef SRCCTL_SEMVER_H
#define SRCCTL_SEMVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stk/err.h"

struct srcctl_semver {
	uint64_t major, minor, patch;
	char pre[64]; /* pre-release identifiers, "" for a release; build metadata dropped */
};

/* Parses "1.2.3", "v1.2.3-rc.1+build". 0 or STK_EPARSE. Any thread. */
int srcctl_semver_parse(struct srcctl_semver *out, const char *s);

/* <0, 0, >0 by semver precedence. */
int srcctl_semver_cmp(const struct srcctl_semver *a, const struct srcctl_semver *b);

typedef struct srcctl_range srcctl_range;

/* Parses a range. 0, STK_EPARSE (message names the bad part) or STK_ETOOBIG. */
int srcctl_range_parse(srcctl_range **out, const char *s, stk_err *err);
void srcctl_range_free(srcctl_range *r);
bool srcctl_range_match(const srcctl_range *r, const struct srcctl_semver *v);

/*
 * Picks the highest of `tags` (names without "refs/tags/") that parse as versions and
 * match `r`. Returns its index, or -1 when none matches.
 */
long srcctl_range_best(const srcctl_range *r, const char *const *tags, size_t n);

#endif
