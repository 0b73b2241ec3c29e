#include "stk/api/glob.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"

/* How many bytes of a pattern a message quotes. */
#define GLOB_QUOTE_MAX 80

enum glob_kind {
	GLOB_LIT,   /* bytes of the pattern, copied as they are (escapes and classes too) */
	GLOB_SEQ,   /* a sequence of LITs and BRACEs: the root, or one alternative */
	GLOB_BRACE, /* one of its SEQ children */
};

/*
 * One node of a pattern's brace tree, node 0 being the root SEQ. A child always comes
 * after its parent in the array, so a walk from the end sees children first. `count` is
 * how many brace-free patterns the node expands to and `bytes` their total length, both
 * saturated just past the limits. Indices fit 16 bits: a pattern of at most
 * STK_GLOB_PATTERN_MAX bytes makes at most 3 nodes per byte, plus the root.
 */
struct glob_node {
	uint8_t kind;
	uint16_t start, end;	    /* LIT: pattern bytes [start, end) */
	uint16_t first, last, next; /* children and next sibling; 0 is none */
	uint32_t count, bytes;
};

/* One brace-free pattern; `off` maps each byte back to its offset in the pattern. */
struct glob_alt {
	char s[STK_GLOB_PATTERN_MAX + 1];
	uint16_t off[STK_GLOB_PATTERN_MAX + 1];
	size_t len;
};

/* A checked pattern. Without braces there is no tree: the pattern is its only alternative. */
struct glob_prog {
	const char *pat;
	size_t len;
	struct glob_node *nodes;
	size_t nnodes;
	uint32_t nalts;
	struct glob_alt *alt; /* scratch for one alternative, with the tree */
};

/* Where an open brace's alternatives go, and where to continue once it closes. */
struct glob_open {
	uint16_t brace, outer;
	size_t at;
};

/*
 * Copies at most GLOB_QUOTE_MAX bytes of `s` for a one-line message: control bytes
 * become '?', and a cut copy ends in "...". `dst` holds GLOB_QUOTE_MAX + 4 bytes.
 */
static void glob_quote(char *dst, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i < GLOB_QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (s[i]) {
		memcpy(dst + i, "...", 4);
		return;
	}
	dst[i] = '\0';
}

/* Sets `glob "<pattern>": <what>` in err (may be NULL) and returns STK_EINVAL. */
__attribute__((format(printf, 3, 4))) static int glob_fail(stk_err *err, const char *pat,
							   const char *fmt, ...)
{
	char what[STK_ERR_MESSAGE_MAX];
	char q[GLOB_QUOTE_MAX + 4];
	va_list ap;

	if (!err)
		return STK_EINVAL;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	glob_quote(q, pat);
	return stk_err_set(err, STK_EINVAL, "glob \"%s\": %s", q, what);
}

/*
 * Reads one byte of a class at p[*j], an escape taking two, into *c. `pat` is the whole
 * pattern, for messages: when checking, p == pat; when matching the pattern is valid.
 */
static int glob_class_byte(const char *pat, const char *p, size_t len, size_t *j, unsigned char *c,
			   stk_err *err)
{
	size_t at = *j;

	if (p[at] == '\\') {
		if (at + 1 == len)
			return glob_fail(err, pat, "trailing backslash at offset %zu", at);
		if (p[at + 1] == '/')
			return glob_fail(err, pat, "'/' inside [...] at offset %zu", at + 1);
		*c = (unsigned char)p[at + 1];
		*j = at + 2;
		return 0;
	}
	if (p[at] == '/')
		return glob_fail(err, pat, "'/' inside [...] at offset %zu", at);
	*c = (unsigned char)p[at];
	*j = at + 1;
	return 0;
}

/*
 * Walks the class whose "[" is at p[i], stores the offset of its "]" in *end and returns
 * whether byte `c` is in it (1 or 0; `c` -1 only checks), or STK_EINVAL.
 */
static int glob_class(const char *pat, const char *p, size_t len, size_t i, int c, size_t *end,
		      stk_err *err)
{
	size_t j = i + 1, at;
	bool neg = false, hit = false, first = true;
	unsigned char lo = 0, hi = 0;
	int rc;

	if (j < len && (p[j] == '!' || p[j] == '^')) {
		neg = true;
		j++;
	}
	for (;; first = false) {
		if (j >= len)
			return glob_fail(err, pat, "unterminated '[' at offset %zu", i);
		if (p[j] == ']' && !first)
			break;
		if (p[j] == '[' && j + 1 < len && p[j + 1] == ':')
			return glob_fail(err, pat,
					 "POSIX classes such as [:digit:] are not supported at "
					 "offset %zu",
					 j);
		at = j;
		rc = glob_class_byte(pat, p, len, &j, &lo, err);
		if (rc)
			return rc;
		hi = lo;
		if (j + 1 < len && p[j] == '-' && p[j + 1] != ']') {
			j++;
			rc = glob_class_byte(pat, p, len, &j, &hi, err);
			if (rc)
				return rc;
			if (lo > hi)
				return glob_fail(err, pat, "reversed range at offset %zu", at);
		}
		if (c >= lo && c <= hi)
			hit = true;
	}
	*end = j;
	return c >= 0 && hit != neg;
}

static uint16_t glob_add(struct glob_prog *g, uint16_t parent, enum glob_kind kind, size_t start)
{
	uint16_t idx = (uint16_t)g->nnodes++;
	struct glob_node *n = &g->nodes[idx], *p = &g->nodes[parent];

	n->kind = (uint8_t)kind;
	n->start = n->end = (uint16_t)start;
	if (p->last)
		g->nodes[p->last].next = idx;
	else
		p->first = idx;
	p->last = idx;
	return idx;
}

/* Appends pattern bytes [start, end) to `seq`, extending its last literal if adjacent. */
static void glob_add_lit(struct glob_prog *g, uint16_t seq, size_t start, size_t end)
{
	uint16_t last;

	if (!g->nodes)
		return;
	last = g->nodes[seq].last;
	if (last && g->nodes[last].kind == GLOB_LIT && g->nodes[last].end == start) {
		g->nodes[last].end = (uint16_t)end;
		return;
	}
	g->nodes[glob_add(g, seq, GLOB_LIT, start)].end = (uint16_t)end;
}

static uint32_t glob_sat(uint64_t v, uint32_t max)
{
	return v > max ? max + 1 : (uint32_t)v;
}

/* Fills count and bytes of every node, children before parents. */
static void glob_count(struct glob_prog *g)
{
	for (size_t k = g->nnodes; k-- > 0;) {
		struct glob_node *n = &g->nodes[k];
		uint64_t c = n->kind == GLOB_SEQ ? 1 : 0, b = 0;

		if (n->kind == GLOB_LIT) {
			n->count = 1;
			n->bytes = (uint32_t)(n->end - n->start);
			continue;
		}
		for (uint16_t i = n->first; i; i = g->nodes[i].next) {
			const struct glob_node *ch = &g->nodes[i];
			if (n->kind == GLOB_SEQ) {
				/* c strings of b bytes, each followed by each child string */
				b = glob_sat(b * ch->count + (uint64_t)ch->bytes * c,
					     STK_GLOB_EXPANSION_MAX);
				c = glob_sat(c * ch->count, STK_GLOB_ALTERNATIVES_MAX);
			} else {
				b = glob_sat(b + ch->bytes, STK_GLOB_EXPANSION_MAX);
				c = glob_sat(c + ch->count, STK_GLOB_ALTERNATIVES_MAX);
			}
		}
		n->count = (uint32_t)c;
		n->bytes = (uint32_t)b;
	}
}

/*
 * Appends alternative `k` of node `idx` to `a`: a SEQ reads k as mixed-radix digits, one
 * per child; a BRACE hands k to the child whose range holds it. Recurses twice per brace
 * level, so no deeper than 2 * STK_GLOB_BRACE_DEPTH + 2.
 */
static void glob_emit(const struct glob_prog *g, uint16_t idx, uint32_t k, struct glob_alt *a)
{
	const struct glob_node *n = &g->nodes[idx];

	switch (n->kind) {
	case GLOB_LIT:
		for (size_t i = n->start; i < n->end && a->len < STK_GLOB_PATTERN_MAX; i++) {
			a->s[a->len] = g->pat[i];
			a->off[a->len++] = (uint16_t)i;
		}
		break;
	case GLOB_SEQ:
		for (uint16_t i = n->first; i; i = g->nodes[i].next) {
			uint32_t cnt = g->nodes[i].count;
			glob_emit(g, i, k % cnt, a);
			k /= cnt;
		}
		break;
	default:
		for (uint16_t i = n->first; i; i = g->nodes[i].next) {
			if (k < g->nodes[i].count) {
				glob_emit(g, i, k, a);
				break;
			}
			k -= g->nodes[i].count;
		}
		break;
	}
	a->s[a->len] = '\0';
}

/*
 * Checks the segments of one brace-free pattern s[0, len); `off` maps its bytes to the
 * pattern's offsets (NULL: the same). An empty alternative is allowed and matches nothing.
 */
static int glob_alt_check(const char *pat, const char *s, size_t len, const uint16_t *off,
			  stk_err *err)
{
	size_t b = 0, e;

	for (;;) {
		for (e = b; e < len && s[e] != '/'; e++)
			;
		if (e == b && e < len) {
			size_t at = off ? off[e] : e;
			if (b == 0)
				return glob_fail(err, pat, "leading '/' at offset %zu", at);
			return glob_fail(err, pat, "empty segment ('//') at offset %zu", at);
		}
		if (e - b == 1 && s[b] == '.')
			return glob_fail(err, pat, "'.' segment at offset %zu", off ? off[b] : b);
		if (e - b == 2 && s[b] == '.' && s[b + 1] == '.')
			return glob_fail(err, pat, "'..' segment at offset %zu", off ? off[b] : b);
		if (e == len)
			return 0;
		b = e + 1;
	}
}

static void glob_release(struct glob_prog *g)
{
	free(g->nodes);
	free(g->alt);
	g->nodes = NULL;
	g->alt = NULL;
}

/*
 * Checks `pat` and, when it has braces, builds its tree into `g`. On failure `g` holds
 * nothing to release. The pattern is scanned once, left to right: escapes and classes
 * are literal text to the brace structure.
 */
static int glob_compile(struct glob_prog *g, const char *pat, stk_err *err)
{
	struct glob_open open[STK_GLOB_BRACE_DEPTH];
	size_t len, i, j, depth = 0, end;
	uint16_t seq = 0;
	int rc;

	memset(g, 0, sizeof(*g));
	if (!pat)
		return stk_err_set(err, STK_EINVAL, "glob: NULL pattern");
	for (len = 0; len <= STK_GLOB_PATTERN_MAX && pat[len]; len++)
		;
	if (len == 0)
		return glob_fail(err, pat, "empty pattern");
	if (len > STK_GLOB_PATTERN_MAX)
		return glob_fail(err, pat, "pattern longer than %u bytes", STK_GLOB_PATTERN_MAX);
	g->pat = pat;
	g->len = len;
	g->nalts = 1;
	if (memchr(pat, '{', len)) {
		g->nodes = stk_calloc(3 * len + 1, sizeof(*g->nodes));
		g->nnodes = 1;
		g->nodes[0].kind = GLOB_SEQ;
	}

	for (i = 0; i < len; i = j) {
		j = i + 1;
		switch (pat[i]) {
		case '\\':
			if (i + 1 == len) {
				rc = glob_fail(err, pat, "trailing backslash at offset %zu", i);
				goto fail;
			}
			if (pat[i + 1] == '/') {
				rc = glob_fail(err, pat, "escaped '/' at offset %zu", i);
				goto fail;
			}
			j = i + 2;
			glob_add_lit(g, seq, i, j);
			break;
		case '[':
			rc = glob_class(pat, pat, len, i, -1, &end, err);
			if (rc)
				goto fail;
			j = end + 1;
			glob_add_lit(g, seq, i, j);
			break;
		case '{':
			if (depth == STK_GLOB_BRACE_DEPTH) {
				rc = glob_fail(err, pat,
					       "braces nested deeper than %u at offset %zu",
					       STK_GLOB_BRACE_DEPTH, i);
				goto fail;
			}
			open[depth].at = i;
			open[depth].outer = seq;
			open[depth].brace = glob_add(g, seq, GLOB_BRACE, i);
			seq = glob_add(g, open[depth].brace, GLOB_SEQ, i + 1);
			depth++;
			break;
		case ',':
			if (depth)
				seq = glob_add(g, open[depth - 1].brace, GLOB_SEQ, i + 1);
			else
				glob_add_lit(g, seq, i, j);
			break;
		case '}':
			if (!depth) {
				rc = glob_fail(err, pat, "unmatched '}' at offset %zu", i);
				goto fail;
			}
			seq = open[--depth].outer;
			break;
		default:
			glob_add_lit(g, seq, i, j);
			break;
		}
	}
	if (depth) {
		rc = glob_fail(err, pat, "unterminated '{' at offset %zu", open[0].at);
		goto fail;
	}
	if (!g->nodes)
		return glob_alt_check(pat, pat, len, NULL, err);

	glob_count(g);
	if (g->nodes[0].count > STK_GLOB_ALTERNATIVES_MAX) {
		rc = glob_fail(err, pat, "too many alternatives (more than %u)",
			       STK_GLOB_ALTERNATIVES_MAX);
		goto fail;
	}
	if (g->nodes[0].bytes > STK_GLOB_EXPANSION_MAX) {
		rc = glob_fail(err, pat, "alternatives longer than %u bytes in total",
			       STK_GLOB_EXPANSION_MAX);
		goto fail;
	}
	g->nalts = g->nodes[0].count;
	g->alt = stk_malloc(sizeof(*g->alt));
	for (uint32_t k = 0; k < g->nalts; k++) {
		g->alt->len = 0;
		glob_emit(g, 0, k, g->alt);
		rc = glob_alt_check(pat, g->alt->s, g->alt->len, g->alt->off, err);
		if (rc)
			goto fail;
	}
	return 0;
fail:
	glob_release(g);
	return rc;
}

/*
 * Whether the item at p[*i] (not '*') matches byte c; moves *i past it. The pattern is
 * valid, so escapes and classes are complete within p[0, n).
 */
static bool glob_item(const char *p, size_t n, size_t *i, unsigned char c)
{
	size_t at = *i, end;
	int rc;

	switch (p[at]) {
	case '?':
		*i = at + 1;
		return true;
	case '\\':
		*i = at + 2;
		return at + 1 < n && (unsigned char)p[at + 1] == c;
	case '[':
		rc = glob_class(p, p, n, at, c, &end, NULL);
		if (rc < 0)
			return false;
		*i = end + 1;
		return rc == 1;
	default:
		*i = at + 1;
		return (unsigned char)p[at] == c;
	}
}

/*
 * One segment: p[0, pn) against s[0, sn), neither holding '/'. The usual iterative
 * backtracking: only the last '*' seen is ever retried, one byte further each time, so
 * the work is at most pn * sn steps whatever the number of stars.
 */
static bool glob_seg_match(const char *p, size_t pn, const char *s, size_t sn)
{
	size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0, next;

	while (si < sn) {
		if (pi < pn && p[pi] == '*') {
			while (pi < pn && p[pi] == '*')
				pi++;
			if (pi == pn)
				return true;
			star_p = pi;
			star_s = si;
			continue;
		}
		next = pi;
		if (pi < pn && glob_item(p, pn, &next, (unsigned char)s[si])) {
			pi = next;
			si++;
			continue;
		}
		if (star_p == SIZE_MAX)
			return false;
		pi = star_p;
		si = ++star_s;
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

static size_t glob_seg_end(const char *s, size_t from, size_t len)
{
	while (from < len && s[from] != '/')
		from++;
	return from;
}

static bool glob_is_globstar(const char *p, size_t b, size_t e)
{
	return e - b == 2 && p[b] == '*' && p[b + 1] == '*';
}

/*
 * One brace-free pattern p[0, pn) against path s[0, sn). The same backtracking as
 * glob_seg_match one level up: a globstar is a star over whole segments, every other
 * pattern segment takes exactly one path segment. A position past the end (len + 1)
 * means no segment is left.
 *
 * With `below`, whether the pattern matches a proper ancestor of the path (a directory):
 * the pattern is read as if followed by a last globstar, which takes the one or more
 * segments below that ancestor. One pass instead of one match per ancestor.
 */
static bool glob_alt_match(const char *p, size_t pn, const char *s, size_t sn, bool is_dir,
			   bool below)
{
	size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0, pe, se;

	if (pn > 0 && p[pn - 1] == '/') {
		if (!is_dir && !below)
			return false;
		pn--;
	}
	while (si <= sn) {
		if (pi > pn && below)
			return true;
		if (pi <= pn) {
			pe = glob_seg_end(p, pi, pn);
			if (glob_is_globstar(p, pi, pe)) {
				/*
				 * The last globstar takes the rest, at least one segment; with
				 * `below`, one more for the globstar read after it. Should that
				 * fail, a retry of an earlier globstar would leave even fewer.
				 */
				if (pe == pn)
					return !below || glob_seg_end(s, si, sn) < sn;
				star_p = pi;
				star_s = si;
				pi = pe + 1;
				continue;
			}
			se = glob_seg_end(s, si, sn);
			if (glob_seg_match(p + pi, pe - pi, s + si, se - si)) {
				pi = pe + 1;
				si = se + 1;
				continue;
			}
		}
		if (star_p == SIZE_MAX)
			return false;
		/* The globstar takes one more segment; retry what follows it. */
		star_s = glob_seg_end(s, star_s, sn) + 1;
		si = star_s;
		pi = glob_seg_end(p, star_p, pn) + 1;
	}
	if (below)
		return false;
	/* The path is used up: what is left must be globstars taking nothing, none last. */
	while (pi <= pn) {
		pe = glob_seg_end(p, pi, pn);
		if (!glob_is_globstar(p, pi, pe) || pe == pn)
			return false;
		pi = pe + 1;
	}
	return true;
}

static bool glob_prog_match(const struct glob_prog *g, const char *path, size_t len, bool is_dir,
			    bool below)
{
	if (len == 0)
		return false;
	if (!g->nodes)
		return glob_alt_match(g->pat, g->len, path, len, is_dir, below);
	for (uint32_t k = 0; k < g->nalts; k++) {
		g->alt->len = 0;
		glob_emit(g, 0, k, g->alt);
		if (glob_alt_match(g->alt->s, g->alt->len, path, len, is_dir, below))
			return true;
	}
	return false;
}

int stk_glob_check(const char *pattern, stk_err *err)
{
	struct glob_prog g;
	int rc = glob_compile(&g, pattern, err);

	glob_release(&g);
	return rc;
}

bool stk_glob_match(const char *pattern, const char *path, bool is_dir)
{
	struct glob_prog g;
	bool hit;

	if (!path || glob_compile(&g, pattern, NULL))
		return false;
	hit = glob_prog_match(&g, path, strlen(path), is_dir, false);
	glob_release(&g);
	return hit;
}

bool stk_glob_excluded(const char *const *patterns, size_t n, const char *path, bool is_dir)
{
	struct glob_prog g;
	size_t len;
	bool hit = false;

	if (!path || !patterns)
		return false;
	len = strlen(path);
	for (size_t i = 0; i < n && !hit; i++) {
		if (glob_compile(&g, patterns[i], NULL))
			continue;
		hit = glob_prog_match(&g, path, len, is_dir, false) ||
		      glob_prog_match(&g, path, len, true, true);
		glob_release(&g);
	}
	return hit;
}
