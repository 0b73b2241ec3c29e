#include "stk/semver.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"

#define RANGE_MAX_COMPARATORS 64

enum op {
	OP_EQ,
	OP_NE,
	OP_GT,
	OP_GE,
	OP_LT,
	OP_LE
};

struct comparator {
	enum op op;
	struct stk_semver v;
};

/* A conjunction of comparators; a range is a disjunction of these. */
struct conj {
	struct comparator c[RANGE_MAX_COMPARATORS];
	size_t n;
};

struct stk_semver_range {
	struct conj *alts;
	size_t n;
};

static int parse_num(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (!isdigit((unsigned char)*s))
		return -1;
	if (*s == '0' && isdigit((unsigned char)s[1]))
		return -1; /* no leading zeros */
	while (isdigit((unsigned char)*s)) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

int stk_semver_parse(struct stk_semver *out, const char *s)
{
	struct stk_semver v;
	const char *p = s;
	size_t n;

	memset(&v, 0, sizeof(v));
	if (*p == 'v' || *p == 'V')
		p++;
	if (parse_num(&p, &v.major) || *p++ != '.' || parse_num(&p, &v.minor) || *p++ != '.' ||
	    parse_num(&p, &v.patch))
		return STK_EPARSE;
	if (*p == '-') {
		p++;
		n = strcspn(p, "+");
		if (n == 0 || n >= sizeof(v.pre))
			return STK_EPARSE;
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '.')
				return STK_EPARSE;
		if (p[0] == '.' || p[n - 1] == '.' || strstr(p, ".."))
			return STK_EPARSE;
		memcpy(v.pre, p, n);
		v.pre[n] = '\0';
		p += n;
	}
	if (*p == '+') {
		p++;
		if (!*p)
			return STK_EPARSE;
		for (; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
				return STK_EPARSE;
	}
	if (*p)
		return STK_EPARSE;
	*out = v;
	return 0;
}

/* Compares dot-separated pre-release identifiers (numeric < alphanumeric). */
static int cmp_pre(const char *a, const char *b)
{
	if (!*a || !*b)
		return !*a && !*b ? 0 : (!*a ? 1 : -1); /* a release outranks a pre-release */
	while (*a && *b) {
		size_t la = strcspn(a, "."), lb = strcspn(b, ".");
		bool na = true, nb = true;
		for (size_t i = 0; i < la; i++)
			na = na && isdigit((unsigned char)a[i]);
		for (size_t i = 0; i < lb; i++)
			nb = nb && isdigit((unsigned char)b[i]);
		if (na && nb) {
			if (la != lb)
				return la < lb ? -1 : 1;
			int c = memcmp(a, b, la);
			if (c)
				return c < 0 ? -1 : 1;
		} else if (na != nb) {
			return na ? -1 : 1;
		} else {
			int c = memcmp(a, b, la < lb ? la : lb);
			if (c)
				return c < 0 ? -1 : 1;
			if (la != lb)
				return la < lb ? -1 : 1;
		}
		a += la;
		b += lb;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
	}
	return *a ? 1 : (*b ? -1 : 0);
}

int stk_semver_cmp(const struct stk_semver *a, const struct stk_semver *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return cmp_pre(a->pre, b->pre);
}

/* A partial version "1", "1.2", "1.2.x", "*": how many parts were given (0..3). */
struct partial {
	struct stk_semver v;
	int parts;
};

static int parse_partial(const char *s, struct partial *out)
{
	const char *p = s;
	uint64_t *slots[3];
	struct partial r;

	memset(&r, 0, sizeof(r));
	slots[0] = &r.v.major;
	slots[1] = &r.v.minor;
	slots[2] = &r.v.patch;
	if (*p == 'v' || *p == 'V')
		p++;
	for (int i = 0; i < 3; i++) {
		if (*p == 'x' || *p == 'X' || *p == '*') {
			p++;
			break;
		}
		if (parse_num(&p, slots[i]))
			return STK_EPARSE;
		r.parts = i + 1;
		if (*p != '.')
			break;
		p++;
	}
	if (r.parts == 3 && *p == '-') {
		char full[160];
		snprintf(full, sizeof(full), "%llu.%llu.%llu%s", (unsigned long long)r.v.major,
			 (unsigned long long)r.v.minor, (unsigned long long)r.v.patch, p);
		if (stk_semver_parse(&r.v, full))
			return STK_EPARSE;
		p += strlen(p);
	} else if (*p == '+') {
		p += strlen(p);
	}
	/* Trailing ".x" parts after a wildcard. */
	while (*p == '.' && (p[1] == 'x' || p[1] == 'X' || p[1] == '*'))
		p += 2;
	if (*p)
		return STK_EPARSE;
	*out = r;
	return 0;
}

static struct stk_semver bump(struct stk_semver v, int part)
{
	struct stk_semver r;

	memset(&r, 0, sizeof(r));
	r.major = v.major;
	if (part == 0) {
		r.major++;
	} else if (part == 1) {
		r.minor = v.minor + 1;
	} else {
		r.minor = v.minor;
		r.patch = v.patch + 1;
	}
	/* "<x.y.z-0" excludes pre-releases of the bound itself. */
	snprintf(r.pre, sizeof(r.pre), "0");
	return r;
}

static int conj_add(struct conj *c, enum op op, struct stk_semver v)
{
	if (c->n == RANGE_MAX_COMPARATORS)
		return STK_ETOOBIG;
	c->c[c->n].op = op;
	c->c[c->n].v = v;
	c->n++;
	return 0;
}

/* Adds the comparators one token ("^1.2", ">=1.0.0", "1.x") stands for. */
static int add_token(struct conj *c, const char *tok)
{
	struct partial pv;
	enum op op = OP_EQ;
	char kind = 0;
	const char *p = tok;
	int rc = 0;

	if (*p == '^' || *p == '~') {
		kind = *p++;
		if (*p == '>') /* "~>" */
			p++;
	} else if (p[0] == '>' && p[1] == '=') {
		op = OP_GE, p += 2;
	} else if (p[0] == '<' && p[1] == '=') {
		op = OP_LE, p += 2;
	} else if (p[0] == '!' && p[1] == '=') {
		op = OP_NE, p += 2;
	} else if (*p == '>') {
		op = OP_GT, p++;
	} else if (*p == '<') {
		op = OP_LT, p++;
	} else if (*p == '=') {
		p++;
	}
	if (parse_partial(p, &pv))
		return STK_EPARSE;
	if (pv.parts == 0) /* "*" */
		return op == OP_LT || op == OP_GT || op == OP_NE ? STK_EPARSE : 0;
	if (kind == '^') {
		int part = pv.v.major ? 0 : (pv.v.minor || pv.parts < 3 ? 1 : 2);
		if (pv.parts == 1)
			part = 0;
		rc = conj_add(c, OP_GE, pv.v);
		return rc ? rc : conj_add(c, OP_LT, bump(pv.v, part));
	}
	if (kind == '~') {
		rc = conj_add(c, OP_GE, pv.v);
		return rc ? rc : conj_add(c, OP_LT, bump(pv.v, pv.parts == 1 ? 0 : 1));
	}
	if (pv.parts < 3) {
		/* x-range: "1.2" means >=1.2.0 <1.3.0-0, "<1.2" means <1.2.0-0 ... */
		struct stk_semver hi = bump(pv.v, pv.parts - 1);
		switch (op) {
		case OP_EQ:
			rc = conj_add(c, OP_GE, pv.v);
			return rc ? rc : conj_add(c, OP_LT, hi);
		case OP_GE:
			return conj_add(c, OP_GE, pv.v);
		case OP_GT:
			return conj_add(c, OP_GE, hi);
		case OP_LT:
			snprintf(pv.v.pre, sizeof(pv.v.pre), "0");
			return conj_add(c, OP_LT, pv.v);
		case OP_LE:
			return conj_add(c, OP_LT, hi);
		case OP_NE:
			return STK_EPARSE;
		}
	}
	return conj_add(c, op, pv.v);
}

int stk_semver_range_parse(stk_semver_range **out, const char *s, stk_err *err)
{
	stk_semver_range *r;
	char *copy, *alt, *next;
	int rc = 0;

	if (strlen(s) > 1024)
		return stk_err_set(err, STK_ETOOBIG, "semver range is longer than 1024 characters");
	r = stk_calloc(1, sizeof(*r));
	copy = stk_strdup(s);
	for (alt = copy; alt && !rc; alt = next) {
		char *sep = strstr(alt, "||");
		struct conj *c;
		char *tok, *save = NULL;
		const char *hyphen_lo = NULL;

		next = sep ? sep + 2 : NULL;
		if (sep)
			*sep = '\0';
		r->alts = stk_reallocarray(r->alts, r->n + 1, sizeof(*r->alts));
		c = &r->alts[r->n++];
		memset(c, 0, sizeof(*c));
		/* Tokens: split on spaces and commas; glue an operator to its version. */
		for (char *q = alt; *q; q++)
			if (*q == ',' || *q == '\t')
				*q = ' ';
		char pending[96] = "";
		bool any = false;
		for (tok = strtok_r(alt, " ", &save); tok && !rc;
		     tok = strtok_r(NULL, " ", &save)) {
			if (!strcmp(tok, "-")) {
				hyphen_lo = "pending";
				continue;
			}
			if (strspn(tok, "<>=!~^") == strlen(tok)) {
				snprintf(pending, sizeof(pending), "%s", tok);
				continue;
			}
			char joined[160];
			snprintf(joined, sizeof(joined), "%s%s", pending, tok);
			pending[0] = '\0';
			if (hyphen_lo) {
				/* "a - b": the last comparator (=a) becomes >=a, and <=b is added.
				 */
				struct partial hi;
				if (c->n == 0 || parse_partial(tok, &hi)) {
					rc = STK_EPARSE;
					break;
				}
				c->c[c->n - 1].op = OP_GE;
				if (hi.parts == 3) {
					rc = conj_add(c, OP_LE, hi.v);
				} else {
					rc = conj_add(c, OP_LT,
						      bump(hi.v, hi.parts ? hi.parts - 1 : 0));
				}
				hyphen_lo = NULL;
				any = true;
				continue;
			}
			rc = add_token(c, joined);
			any = true;
		}
		if (!rc && (pending[0] || hyphen_lo || (!any && r->n > 1)))
			rc = STK_EPARSE;
	}
	free(copy);
	if (rc) {
		stk_semver_range_free(r);
		return stk_err_set(err, rc,
				   rc == STK_ETOOBIG ? "semver range has too many parts"
						     : "\"%.100s\" is not a semver range",
				   s);
	}
	*out = r;
	return 0;
}

void stk_semver_range_free(stk_semver_range *r)
{
	if (!r)
		return;
	free(r->alts);
	free(r);
}

static bool comp_match(const struct comparator *c, const struct stk_semver *v)
{
	int d = stk_semver_cmp(v, &c->v);

	switch (c->op) {
	case OP_EQ:
		return d == 0;
	case OP_NE:
		return d != 0;
	case OP_GT:
		return d > 0;
	case OP_GE:
		return d >= 0;
	case OP_LT:
		return d < 0;
	case OP_LE:
		return d <= 0;
	}
	return false;
}

bool stk_semver_range_match(const stk_semver_range *r, const struct stk_semver *v)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct conj *c = &r->alts[i];
		bool ok = true, pre_allowed = v->pre[0] == '\0';

		for (size_t j = 0; j < c->n && ok; j++) {
			const struct comparator *k = &c->c[j];
			ok = comp_match(k, v);
			/* A pre-release needs a comparator naming a pre-release of its version. */
			if (v->pre[0] && k->v.pre[0] && strcmp(k->v.pre, "0") &&
			    k->v.major == v->major && k->v.minor == v->minor &&
			    k->v.patch == v->patch)
				pre_allowed = true;
		}
		if (ok && pre_allowed)
			return true;
	}
	return false;
}

long stk_semver_range_best(const stk_semver_range *r, const char *const *tags, size_t n)
{
	struct stk_semver best, v;
	long at = -1;

	for (size_t i = 0; i < n; i++) {
		if (stk_semver_parse(&v, tags[i]) || !stk_semver_range_match(r, &v))
			continue;
		if (at < 0 || stk_semver_cmp(&v, &best) > 0) {
			best = v;
			at = (long)i;
		}
	}
	return at;
}
