/*
 * libFuzzer target: exclude-pattern globs. The input is a pattern, a newline, and a path.
 * stk_glob_check must not crash and must fail with a one-line message; an invalid pattern
 * matches nothing; a valid one must agree with strcmp when it has no special bytes, keep
 * a pattern without '/' off paths with '/', match no file that it would not match as a
 * directory, and, when short and brace-free, agree with a slow reference matcher written
 * straight from the header's grammar. stk_glob_excluded (one pass) must equal matching
 * the path, then each of its ancestors as a directory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stk/api/glob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Patterns and paths the reference matcher takes; its memo is (REF_MAX + 1)^2. */
#define REF_MAX 48

struct ref {
	const char *p, *s;
	size_t pn, sn;
	signed char memo[REF_MAX + 1][REF_MAX + 1];
};

/* Whether class p[i] ("[" ...) holds c; *next is past its "]". */
static bool ref_class(const char *p, size_t i, unsigned char c, size_t *next)
{
	bool neg = false, hit = false;
	unsigned char lo, hi;

	i++;
	if (p[i] == '!' || p[i] == '^') {
		neg = true;
		i++;
	}
	for (bool first = true; p[i] != ']' || first; first = false) {
		if (p[i] == '\\')
			i++;
		lo = hi = (unsigned char)p[i++];
		if (p[i] == '-' && p[i + 1] != ']') {
			i++;
			if (p[i] == '\\')
				i++;
			hi = (unsigned char)p[i++];
		}
		if (c >= lo && c <= hi)
			hit = true;
	}
	*next = i + 1;
	return c != '/' && hit != neg;
}

/* Pattern from byte i against path from byte j, memoised: polynomial, not exponential. */
static bool ref_at(struct ref *r, size_t i, size_t j)
{
	const char *p = r->p, *s = r->s;
	bool res = false;
	size_t k, next;

	if (r->memo[i][j] >= 0)
		return r->memo[i][j];
	if (i == r->pn) {
		res = j == r->sn;
	} else if (p[i] == '*' && i + 1 < r->pn && p[i + 1] == '*' && (i == 0 || p[i - 1] == '/') &&
		   (i + 2 == r->pn || p[i + 2] == '/')) {
		if (i + 2 == r->pn) {
			/* A last globstar: one or more segments, that is something. */
			res = j < r->sn;
		} else {
			/* Zero segments, or any that end just before a '/'. */
			res = ref_at(r, i + 3, j);
			for (k = j; k < r->sn && !res; k++)
				if (s[k] == '/')
					res = ref_at(r, i + 3, k + 1);
		}
	} else if (p[i] == '*') {
		for (next = i; next < r->pn && p[next] == '*'; next++)
			;
		for (k = j;; k++) {
			res = ref_at(r, next, k);
			if (res || k == r->sn || s[k] == '/')
				break;
		}
	} else if (j < r->sn) {
		unsigned char c = (unsigned char)s[j];
		bool hit;

		if (p[i] == '?') {
			hit = c != '/';
			next = i + 1;
		} else if (p[i] == '[') {
			hit = ref_class(p, i, c, &next);
		} else if (p[i] == '\\') {
			hit = (unsigned char)p[i + 1] == c;
			next = i + 2;
		} else {
			hit = (unsigned char)p[i] == c;
			next = i + 1;
		}
		res = hit && ref_at(r, next, j + 1);
	}
	r->memo[i][j] = res;
	return res;
}

static bool ref_match(const char *p, const char *s, bool is_dir)
{
	struct ref r = {.p = p, .s = s, .pn = strlen(p), .sn = strlen(s)};

	if (r.pn && p[r.pn - 1] == '/') {
		if (!is_dir)
			return false;
		r.pn--;
	}
	memset(r.memo, -1, sizeof(r.memo));
	return r.sn > 0 && ref_at(&r, 0, 0);
}

/* A path as a tree walk makes it: non-empty, no leading, trailing or double '/'. */
static bool is_clean_path(const char *s)
{
	size_t n = strlen(s);

	return n && s[0] != '/' && s[n - 1] != '/' && !strstr(s, "//");
}

static size_t count_slashes(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '/';
	return n;
}

static bool excluded_by_hand(const char *pat, const char *path, bool is_dir)
{
	size_t n = strlen(path);
	char *prefix = malloc(n + 1);
	bool hit = stk_glob_match(pat, path, is_dir);

	if (!prefix)
		abort();
	for (size_t j = 0; j < n && !hit; j++) {
		if (path[j] != '/')
			continue;
		memcpy(prefix, path, j);
		prefix[j] = '\0';
		hit = stk_glob_match(pat, prefix, true);
	}
	free(prefix);
	return hit;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t pn = nl ? (size_t)(nl - data) : size;
	size_t sn = nl ? size - pn - 1 : 0;
	char *pat = malloc(pn + 1), *path = malloc(sn + 1);
	stk_err err = STK_ERR_INIT;
	bool file, dir;

	if (!pat || !path)
		abort();
	memcpy(pat, data, pn);
	pat[pn] = '\0';
	if (sn)
		memcpy(path, nl + 1, sn);
	path[sn] = '\0';

	/* "*" alone takes any one segment. */
	if (stk_glob_match("*", path, false) != (path[0] && !strchr(path, '/')))
		abort();

	file = stk_glob_match(pat, path, false);
	dir = stk_glob_match(pat, path, true);
	if (stk_glob_check(pat, &err)) {
		if (err.code != STK_EINVAL || strncmp(err.message, "glob \"", 6) ||
		    strchr(err.message, '\n') || file || dir ||
		    stk_glob_excluded((const char *const *)&pat, 1, path, true))
			abort();
		goto out;
	}
	if (file && !dir)
		abort();
	/*
	 * By hand, one match per ancestor: only for paths of a few segments, and clean ones
	 * (for "/x" the one-pass match sees an empty ancestor, stk_glob_match no path).
	 */
	if (is_clean_path(path) && count_slashes(path) <= 16 &&
	    (stk_glob_excluded((const char *const *)&pat, 1, path, false) !=
		     excluded_by_hand(pat, path, false) ||
	     stk_glob_excluded((const char *const *)&pat, 1, path, true) !=
		     excluded_by_hand(pat, path, true)))
		abort();

	/* No special bytes: plain string equality (less a trailing '/', for directories). */
	if (!strpbrk(pat, "*?[{}\\")) {
		size_t len = strlen(pat);
		bool slash = pat[len - 1] == '/';
		bool same = strlen(path) == len - slash && !memcmp(pat, path, len - slash);
		if (file != (same && !slash) || dir != same)
			abort();
	}
	/* Without '/' a pattern cannot reach past one segment (unless it is a globstar). */
	if (!strchr(pat, '/') && !strchr(pat, '{') && strcmp(pat, "**") && strchr(path, '/') &&
	    (file || dir))
		abort();
	/* Short and brace-free: the reference matcher must agree. */
	if (!strchr(pat, '{') && strlen(pat) <= REF_MAX && strlen(path) <= REF_MAX &&
	    is_clean_path(path) &&
	    (ref_match(pat, path, false) != file || ref_match(pat, path, true) != dir))
		abort();
out:
	free(pat);
	free(path);
	return 0;
}
