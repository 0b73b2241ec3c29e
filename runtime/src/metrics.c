#include "stk/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"

const double stk_metrics_default_buckets[STK_METRICS_DEFAULT_BUCKETS_LEN] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60,
};

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

struct metrics_series {
	struct metrics_series *next; /* hash chain */
	uint64_t hash;
	char **values;	  /* nlabels strings, NULL-terminated */
	double value;	  /* counter, gauge */
	uint64_t *counts; /* histogram: per bucket, not cumulative; [nbuckets] is +Inf */
	uint64_t count;
	double sum;
};

struct stk_metrics_family {
	char *name;
	char *help;
	enum metrics_type type;
	char **labels; /* NULL-terminated */
	size_t nlabels;
	double *buckets;
	size_t nbuckets;

	pthread_mutex_t lock; /* guards everything below */
	struct metrics_series **slots;
	size_t nslots;
	size_t nseries;
};

struct stk_metrics {
	pthread_mutex_t lock;	   /* guards the family list (registration vs. render) */
	stk_metrics_family **fams; /* sorted by name */
	size_t nfams;
};

static void metrics_die(const char *what, const char *name)
{
	fprintf(stderr, "stk_metrics: %s: %s\n", what, name ? name : "(null)");
	abort();
}

/* --- names, UTF-8 ---------------------------------------------------------------------- */

static bool metrics_name_ok(const char *s, bool colon)
{
	size_t i;

	if (!s || !*s)
		return false;
	for (i = 0; s[i]; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     (colon && c == ':');
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0 if the bytes there are invalid. */
static size_t metrics_utf8_seq(const unsigned char *s, size_t len)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool metrics_utf8_valid(const char *s)
{
	size_t len = strlen(s), i = 0;

	while (i < len) {
		size_t n = metrics_utf8_seq((const unsigned char *)s + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

/* A copy of `s` with every invalid byte replaced by U+FFFD. */
static char *metrics_utf8_sanitize(const char *s)
{
	size_t len = strlen(s), i = 0, o = 0, cap;
	char *out;

	if (!stk_mul_ok(len, 3, &cap) || !stk_add_ok(cap, 1, &cap))
		metrics_die("label value too long", NULL);
	out = stk_malloc(cap);
	while (i < len) {
		size_t n = metrics_utf8_seq((const unsigned char *)s + i, len - i);
		if (n) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

/* --- registry -------------------------------------------------------------------------- */

stk_metrics *stk_metrics_new(void)
{
	stk_metrics *m = stk_calloc(1, sizeof(*m));

	pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void metrics_series_free(struct metrics_series *s)
{
	char **v;

	for (v = s->values; *v; v++)
		free(*v);
	free(s->values);
	free(s->counts);
	free(s);
}

static void metrics_family_free(stk_metrics_family *f)
{
	size_t i;

	for (i = 0; i < f->nslots; i++) {
		struct metrics_series *s = f->slots[i];
		while (s) {
			struct metrics_series *next = s->next;
			metrics_series_free(s);
			s = next;
		}
	}
	free(f->slots);
	for (i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->labels);
	free(f->buckets);
	free(f->name);
	free(f->help);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void stk_metrics_free(stk_metrics *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->nfams; i++)
		metrics_family_free(m->fams[i]);
	free(m->fams);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static struct metrics_series *metrics_series_get(stk_metrics_family *f, const char *const *values,
						 bool create);

static bool metrics_same_definition(const stk_metrics_family *f, enum metrics_type type,
				    const char *help, const char *const *labels, size_t nlabels,
				    const double *buckets, size_t nbuckets)
{
	size_t i;

	if (f->type != type || strcmp(f->help, help) != 0 || f->nlabels != nlabels)
		return false;
	for (i = 0; i < nlabels; i++)
		if (strcmp(f->labels[i], labels[i]) != 0)
			return false;
	if (type != METRICS_HISTOGRAM)
		return true;
	if (f->nbuckets != nbuckets)
		return false;
	for (i = 0; i < nbuckets; i++)
		if (f->buckets[i] != buckets[i])
			return false;
	return true;
}

static stk_metrics_family *metrics_register(stk_metrics *m, enum metrics_type type,
					    const char *name, const char *help,
					    const char *const *labels, const double *buckets,
					    size_t nbuckets)
{
	stk_metrics_family *f;
	size_t nlabels = 0, i, lo = 0, hi;

	if (!metrics_name_ok(name, true))
		metrics_die("invalid metric name", name);
	if (!help)
		metrics_die("metric without help text", name);
	for (; labels && labels[nlabels]; nlabels++) {
		const char *l = labels[nlabels];
		if (!metrics_name_ok(l, false) || strncmp(l, "__", 2) == 0)
			metrics_die("invalid label name", l);
		if (type == METRICS_HISTOGRAM && strcmp(l, "le") == 0)
			metrics_die("label \"le\" is reserved in histogram", name);
		for (i = 0; i < nlabels; i++)
			if (strcmp(labels[i], l) == 0)
				metrics_die("duplicate label name", l);
	}
	if (nlabels > STK_METRICS_MAX_LABELS)
		metrics_die("too many labels", name);
	if (type == METRICS_HISTOGRAM) {
		if (!buckets || nbuckets == 0) {
			buckets = stk_metrics_default_buckets;
			nbuckets = STK_METRICS_DEFAULT_BUCKETS_LEN;
		}
		for (i = 0; i < nbuckets; i++)
			if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
				metrics_die("histogram buckets must be finite and increasing",
					    name);
	}

	pthread_mutex_lock(&m->lock);
	hi = m->nfams;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->fams[mid]->name, name);
		if (c == 0) {
			f = m->fams[mid];
			pthread_mutex_unlock(&m->lock);
			if (!metrics_same_definition(f, type, help, labels, nlabels, buckets,
						     nbuckets))
				metrics_die("metric registered twice with different definitions",
					    name);
			return f;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}

	f = stk_calloc(1, sizeof(*f));
	f->name = stk_strdup(name);
	f->help = stk_strdup(help);
	f->type = type;
	f->nlabels = nlabels;
	f->labels = stk_calloc(nlabels + 1, sizeof(*f->labels));
	for (i = 0; i < nlabels; i++)
		f->labels[i] = stk_strdup(labels[i]);
	if (type == METRICS_HISTOGRAM) {
		f->nbuckets = nbuckets;
		f->buckets = stk_reallocarray(NULL, nbuckets, sizeof(*f->buckets));
		memcpy(f->buckets, buckets, nbuckets * sizeof(*f->buckets));
	}
	pthread_mutex_init(&f->lock, NULL);

	m->fams = stk_reallocarray(m->fams, m->nfams + 1, sizeof(*m->fams));
	memmove(m->fams + lo + 1, m->fams + lo, (m->nfams - lo) * sizeof(*m->fams));
	m->fams[lo] = f;
	m->nfams++;
	pthread_mutex_unlock(&m->lock);

	/* A family without labels always has its one series, so it renders as 0 at once. */
	if (nlabels == 0) {
		pthread_mutex_lock(&f->lock);
		metrics_series_get(f, NULL, true);
		pthread_mutex_unlock(&f->lock);
	}
	return f;
}

stk_metrics_family *stk_metrics_counter(stk_metrics *m, const char *name, const char *help,
					const char *const *labels)
{
	return metrics_register(m, METRICS_COUNTER, name, help, labels, NULL, 0);
}

stk_metrics_family *stk_metrics_gauge(stk_metrics *m, const char *name, const char *help,
				      const char *const *labels)
{
	return metrics_register(m, METRICS_GAUGE, name, help, labels, NULL, 0);
}

stk_metrics_family *stk_metrics_histogram(stk_metrics *m, const char *name, const char *help,
					  const char *const *labels, const double *buckets,
					  size_t nbuckets)
{
	return metrics_register(m, METRICS_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

/* --- series lookup (family lock held) ------------------------------------------------- */

static uint64_t metrics_hash(const stk_metrics_family *f, const char *const *values)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < f->nlabels; i++) {
		const unsigned char *p = (const unsigned char *)values[i];
		for (; *p; p++) {
			h ^= *p;
			h *= 1099511628211ull;
		}
		/* 0xff never occurs in UTF-8, so it separates values unambiguously. */
		h ^= 0xff;
		h *= 1099511628211ull;
	}
	return h;
}

static bool metrics_values_equal(const stk_metrics_family *f, const struct metrics_series *s,
				 const char *const *values)
{
	size_t i;

	for (i = 0; i < f->nlabels; i++)
		if (strcmp(s->values[i], values[i]) != 0)
			return false;
	return true;
}

static void metrics_rehash(stk_metrics_family *f)
{
	size_t n = f->nslots ? f->nslots * 2 : 16, i;
	struct metrics_series **slots = stk_calloc(n, sizeof(*slots));

	for (i = 0; i < f->nslots; i++) {
		struct metrics_series *s = f->slots[i];
		while (s) {
			struct metrics_series *next = s->next;
			size_t k = (size_t)(s->hash & (n - 1));
			s->next = slots[k];
			slots[k] = s;
			s = next;
		}
	}
	free(f->slots);
	f->slots = slots;
	f->nslots = n;
}

static void metrics_check_values(const stk_metrics_family *f, const char *const *values)
{
	size_t i;

	if (f->nlabels == 0)
		return;
	if (!values)
		metrics_die("label values missing", f->name);
	for (i = 0; i < f->nlabels; i++)
		if (!values[i])
			metrics_die("label value is NULL", f->name);
}

/*
 * Finds (or creates) the series for `values`. Values that are not valid UTF-8 are looked up
 * in their sanitized form, which is how they are stored.
 */
static struct metrics_series *metrics_series_get(stk_metrics_family *f, const char *const *values,
						 bool create)
{
	const char *const *key = values;
	char *fixed[STK_METRICS_MAX_LABELS + 1] = {0};
	const char *fixed_c[STK_METRICS_MAX_LABELS + 1] = {0};
	struct metrics_series *s = NULL;
	bool sanitized = false;
	uint64_t h;
	size_t i;

	metrics_check_values(f, values);
	for (i = 0; i < f->nlabels; i++)
		if (!metrics_utf8_valid(values[i]))
			sanitized = true;
	if (sanitized) {
		for (i = 0; i < f->nlabels; i++) {
			fixed[i] = metrics_utf8_sanitize(values[i]);
			fixed_c[i] = fixed[i];
		}
		key = fixed_c;
	}

	h = metrics_hash(f, key);
	if (f->nslots) {
		for (s = f->slots[h & (f->nslots - 1)]; s; s = s->next)
			if (s->hash == h && metrics_values_equal(f, s, key))
				goto out;
	}
	if (!create)
		goto out;

	if (f->nseries >= f->nslots)
		metrics_rehash(f);
	s = stk_calloc(1, sizeof(*s));
	s->hash = h;
	s->values = stk_calloc(f->nlabels + 1, sizeof(*s->values));
	for (i = 0; i < f->nlabels; i++) {
		if (sanitized) {
			s->values[i] = fixed[i];
			fixed[i] = NULL;
		} else {
			s->values[i] = stk_strdup(values[i]);
		}
	}
	if (f->type == METRICS_HISTOGRAM)
		s->counts = stk_calloc(f->nbuckets + 1, sizeof(*s->counts));
	s->next = f->slots[h & (f->nslots - 1)];
	f->slots[h & (f->nslots - 1)] = s;
	f->nseries++;
out:
	for (i = 0; i < f->nlabels; i++)
		free(fixed[i]);
	return s;
}

/* --- updates --------------------------------------------------------------------------- */

void stk_metrics_add(stk_metrics_family *f, const char *const *values, double v)
{
	struct metrics_series *s;

	if (f->type == METRICS_HISTOGRAM)
		metrics_die("add on a histogram", f->name);
	if (f->type == METRICS_COUNTER && !(v >= 0))
		metrics_die("counter can only increase", f->name);
	pthread_mutex_lock(&f->lock);
	s = metrics_series_get(f, values, true);
	s->value += v;
	pthread_mutex_unlock(&f->lock);
}

void stk_metrics_inc(stk_metrics_family *f, const char *const *values)
{
	stk_metrics_add(f, values, 1);
}

void stk_metrics_set(stk_metrics_family *f, const char *const *values, double v)
{
	struct metrics_series *s;

	if (f->type != METRICS_GAUGE)
		metrics_die("set on a metric that is not a gauge", f->name);
	pthread_mutex_lock(&f->lock);
	s = metrics_series_get(f, values, true);
	s->value = v;
	pthread_mutex_unlock(&f->lock);
}

void stk_metrics_observe(stk_metrics_family *f, const char *const *values, double v)
{
	struct metrics_series *s;
	size_t i;

	if (f->type != METRICS_HISTOGRAM)
		metrics_die("observe on a metric that is not a histogram", f->name);
	/* First bucket whose upper bound holds v; NaN and values above the last go to +Inf. */
	for (i = 0; i < f->nbuckets; i++)
		if (v <= f->buckets[i])
			break;
	pthread_mutex_lock(&f->lock);
	s = metrics_series_get(f, values, true);
	s->counts[i]++;
	s->count++;
	s->sum += v;
	pthread_mutex_unlock(&f->lock);
}

int stk_metrics_get(stk_metrics_family *f, const char *const *values, double *value, double *sum)
{
	struct metrics_series *s;
	int rc = STK_ENOTFOUND;

	pthread_mutex_lock(&f->lock);
	s = metrics_series_get(f, values, false);
	if (s) {
		if (f->type == METRICS_HISTOGRAM) {
			*value = (double)s->count;
			if (sum)
				*sum = s->sum;
		} else {
			*value = s->value;
			if (sum)
				*sum = s->value;
		}
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* Unlinks `s` from its chain. Family lock held. */
static void metrics_unlink(stk_metrics_family *f, struct metrics_series *s)
{
	struct metrics_series **pp = &f->slots[s->hash & (f->nslots - 1)];

	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	f->nseries--;
	metrics_series_free(s);
}

int stk_metrics_remove(stk_metrics_family *f, const char *const *values)
{
	struct metrics_series *s;
	int rc = STK_ENOTFOUND;

	if (f->nlabels == 0)
		return STK_EINVAL;
	pthread_mutex_lock(&f->lock);
	s = metrics_series_get(f, values, false);
	if (s) {
		metrics_unlink(f, s);
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

size_t stk_metrics_remove_matching(stk_metrics_family *f, const char *const *values)
{
	size_t removed = 0, i, k;

	if (f->nlabels == 0)
		return 0;
	if (!values)
		metrics_die("label values missing", f->name);
	pthread_mutex_lock(&f->lock);
	for (k = 0; k < f->nslots; k++) {
		struct metrics_series **pp = &f->slots[k];
		while (*pp) {
			struct metrics_series *s = *pp;
			bool match = true;
			for (i = 0; i < f->nlabels && match; i++)
				if (values[i] && strcmp(values[i], s->values[i]) != 0)
					match = false;
			if (match) {
				*pp = s->next;
				metrics_series_free(s);
				f->nseries--;
				removed++;
			} else {
				pp = &s->next;
			}
		}
	}
	pthread_mutex_unlock(&f->lock);
	return removed;
}

/* --- rendering ------------------------------------------------------------------------- */

void stk_metrics_format_number(double v, char dst[STK_METRICS_NUMBER_MAX])
{
	int p;

	if (isnan(v)) {
		memcpy(dst, "NaN", 4);
		return;
	}
	if (isinf(v)) {
		memcpy(dst, v > 0 ? "+Inf" : "-Inf", 5);
		return;
	}
	if (v == 0) {
		memcpy(dst, "0", 2);
		return;
	}
	/* Integers up to 2^53 (exact in a double) print in full, without an exponent. The
	 * range check comes first so the conversion is defined. libm is not needed. */
	if (v >= -9007199254740992.0 && v <= 9007199254740992.0 && (double)(int64_t)v == v) {
		snprintf(dst, STK_METRICS_NUMBER_MAX, "%" PRId64, (int64_t)v);
		return;
	}
	/* The shortest %g form that reads back as the same double (17 digits always do). */
	for (p = 1; p <= 17; p++) {
		snprintf(dst, STK_METRICS_NUMBER_MAX, "%.*g", p, v);
		if (strtod(dst, NULL) == v)
			return;
	}
}

static int metrics_put_escaped(stk_buf *out, const char *s, bool quote)
{
	int rc = 0;

	for (; *s && !rc; s++) {
		if (*s == '\\')
			rc = stk_buf_put(out, "\\\\", 2);
		else if (*s == '\n')
			rc = stk_buf_put(out, "\\n", 2);
		else if (*s == '"' && quote)
			rc = stk_buf_put(out, "\\\"", 2);
		else
			rc = stk_buf_putc(out, *s);
	}
	return rc;
}

/* name{l1="v1",...[,le="x"]} value\n */
static int metrics_put_sample(stk_buf *out, const stk_metrics_family *f, const char *suffix,
			      const struct metrics_series *s, const char *le, double v)
{
	char num[STK_METRICS_NUMBER_MAX];
	size_t i;
	int rc;

	rc = stk_buf_puts(out, f->name);
	if (!rc)
		rc = stk_buf_puts(out, suffix);
	if (!rc && (f->nlabels || le))
		rc = stk_buf_putc(out, '{');
	for (i = 0; i < f->nlabels && !rc; i++) {
		rc = stk_buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
		if (!rc)
			rc = metrics_put_escaped(out, s->values[i], true);
		if (!rc)
			rc = stk_buf_putc(out, '"');
	}
	if (!rc && le)
		rc = stk_buf_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
	if (!rc && (f->nlabels || le))
		rc = stk_buf_putc(out, '}');
	stk_metrics_format_number(v, num);
	if (!rc)
		rc = stk_buf_printf(out, " %s\n", num);
	return rc;
}

static int metrics_series_cmp(const void *a, const void *b)
{
	const struct metrics_series *x = *(const struct metrics_series *const *)a;
	const struct metrics_series *y = *(const struct metrics_series *const *)b;
	size_t i;

	for (i = 0; x->values[i]; i++) {
		int c = strcmp(x->values[i], y->values[i]);
		if (c)
			return c;
	}
	return 0;
}

static int metrics_render_series(stk_buf *out, const stk_metrics_family *f,
				 const struct metrics_series *s)
{
	char le[STK_METRICS_NUMBER_MAX];
	uint64_t cum = 0;
	size_t i;
	int rc = 0;

	if (f->type != METRICS_HISTOGRAM)
		return metrics_put_sample(out, f, "", s, NULL, s->value);
	for (i = 0; i <= f->nbuckets && !rc; i++) {
		cum += s->counts[i];
		if (i < f->nbuckets)
			stk_metrics_format_number(f->buckets[i], le);
		else
			memcpy(le, "+Inf", 5);
		rc = metrics_put_sample(out, f, "_bucket", s, le, (double)cum);
	}
	if (!rc)
		rc = metrics_put_sample(out, f, "_sum", s, NULL, s->sum);
	if (!rc)
		rc = metrics_put_sample(out, f, "_count", s, NULL, (double)s->count);
	return rc;
}

static int metrics_render_family(stk_metrics_family *f, stk_buf *out)
{
	static const char *const type_names[] = {"counter", "gauge", "histogram"};
	struct metrics_series **all = NULL;
	size_t n = 0, i;
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = stk_buf_printf(out, "# HELP %s ", f->name);
	if (!rc)
		rc = metrics_put_escaped(out, f->help, false);
	if (!rc)
		rc = stk_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
	if (rc || f->nseries == 0)
		goto out;
	all = stk_reallocarray(NULL, f->nseries, sizeof(*all));
	for (i = 0; i < f->nslots; i++)
		for (struct metrics_series *s = f->slots[i]; s; s = s->next)
			all[n++] = s;
	qsort(all, n, sizeof(*all), metrics_series_cmp);
	for (i = 0; i < n && !rc; i++)
		rc = metrics_render_series(out, f, all[i]);
out:
	pthread_mutex_unlock(&f->lock);
	free(all);
	return rc;
}

int stk_metrics_render(stk_metrics *m, stk_buf *out)
{
	size_t i;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nfams && !rc; i++)
		rc = metrics_render_family(m->fams[i], out);
	pthread_mutex_unlock(&m->lock);
	return rc;
}
