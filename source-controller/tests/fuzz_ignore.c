/*
 * libFuzzer target for srcctl_ignore_match. Input: lines separated by '\n'; the last
 * line is the path, the others are the patterns. Besides never crashing, the matcher
 * must agree with properties that hold for every pattern list and every normal path
 * (non-empty components, no leading or trailing '/'):
 *  - the path, escaped, as the only pattern matches it (and so does the raw path when it
 *    holds no glob or gitignore syntax); followed by its negation, it does not;
 *  - as a directory-only pattern it matches the path as a directory, not as a file;
 *  - a lone negated pattern never excludes anything;
 *  - whatever the list, appending "**" excludes the path and appending "!**" keeps it;
 *  - for each simple pattern of the input (no brackets, backslashes or "**"), the result
 *    equals glibc fnmatch(3) with FNM_PATHNAME applied git's way: anchored patterns to
 *    the path and its ancestors, others to each component.
 */
#include <fnmatch.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"

#define MAX_PATTERNS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool normal_path(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || p[0] == '/' || p[n - 1] == '/' || strstr(p, "//"))
		return false;
	return true;
}

/* Quotes every byte gitignore or the glob would interpret, so the pattern is literal. */
static char *escape(const char *p, const char *prefix, const char *suffix)
{
	size_t n = strlen(p), o = 0;
	char *e = malloc(strlen(prefix) + 2 * n + strlen(suffix) + 1);

	if (!e)
		abort();
	for (const char *q = prefix; *q; q++)
		e[o++] = *q;
	for (size_t i = 0; i < n; i++) {
		if (strchr("\\*?[]!# ", p[i]))
			e[o++] = '\\';
		e[o++] = p[i];
	}
	for (const char *q = suffix; *q; q++)
		e[o++] = *q;
	e[o] = '\0';
	return e;
}

static bool match1(const char *pattern, const char *path, bool is_dir)
{
	const char *const list[1] = {pattern};

	return srcctl_ignore_match(list, 1, path, is_dir);
}

/* fnmatch oracle for one simple, non-negated, not directory-only pattern. */
static bool oracle(const char *pat, const char *path)
{
	char *copy = strdup(path);
	bool anchored = strchr(pat, '/') != NULL, hit = false;
	size_t n;

	if (!copy)
		abort();
	if (pat[0] == '/')
		pat++;
	n = strlen(copy);
	if (anchored) {
		/* The path and each ancestor directory. */
		for (size_t i = n + 1; i-- > 1;) {
			if (i == n || copy[i] == '/') {
				char keep = copy[i];
				copy[i] = '\0';
				if (fnmatch(pat, copy, FNM_PATHNAME) == 0)
					hit = true;
				copy[i] = keep;
			}
		}
	} else {
		for (char *c = copy, *s; c; c = s) {
			s = strchr(c, '/');
			if (s)
				*s++ = '\0';
			if (fnmatch(pat, c, FNM_PATHNAME) == 0)
				hit = true;
		}
	}
	free(copy);
	return hit;
}

static bool simple_pattern(const char *p)
{
	size_t n = strlen(p);

	return n > 0 && !strpbrk(p, "[]\\") && !strstr(p, "**") && p[0] != '!' && p[0] != '#' &&
	       p[n - 1] != ' ' && p[n - 1] != '/' && strcmp(p, "/") != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *line, *path;
	const char *pats[MAX_PATTERNS + 1];
	size_t n = 0;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* Split into lines; the last is the path. */
	path = buf;
	for (line = buf;;) {
		char *nl = memchr(line, '\n', (size_t)(buf + size - line));
		if (!nl) {
			path = line;
			break;
		}
		*nl = '\0';
		if (n < MAX_PATTERNS)
			pats[n++] = line;
		line = nl + 1;
	}

	/* Never crashes, whatever the input. */
	(void)srcctl_ignore_match(pats, n, path, false);
	(void)srcctl_ignore_match(pats, n, path, true);
	(void)srcctl_ignore_match(pats, n, "", false);

	if (normal_path(path)) {
		char *lit = escape(path, "", ""), *neg = escape(path, "!", ""),
		     *dir = escape(path, "", "/");
		const char *pair[2] = {lit, neg};

		for (int d = 0; d < 2; d++) {
			check(match1(lit, path, d));
			check(!srcctl_ignore_match(pair, 2, path, d));
			check(!match1(neg, path, d));
			if (!strpbrk(path, "\\*?[]") && !strchr("!#", path[0]) &&
			    path[strlen(path) - 1] != ' ')
				check(match1(path, path, d));
		}
		check(match1(dir, path, true));
		check(!match1(dir, path, false));

		pats[n] = "**";
		check(srcctl_ignore_match(pats, n + 1, path, false));
		check(srcctl_ignore_match(pats, n + 1, path, true));
		pats[n] = "!**";
		check(!srcctl_ignore_match(pats, n + 1, path, false));
		check(!srcctl_ignore_match(pats, n + 1, path, true));

		for (size_t i = 0; i < n; i++) {
			if (simple_pattern(pats[i]))
				check(match1(pats[i], path, false) == oracle(pats[i], path));
		}
		free(lit);
		free(neg);
		free(dir);
	}
	free(buf);
	return 0;
}
