#include "stk/conditions.h"

#include "stk/buf.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "stk/alloc.h"
#include "stk/json.h"
#include "stk/limits.h"

/* ---- validation ---- */

static bool cond_is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool cond_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool cond_is_alnum(char c)
{
	return cond_is_alpha(c) || cond_is_digit(c);
}

bool stk_conditions_valid_reason(const char *reason)
{
	size_t n, i;

	if (!reason)
		return false;
	n = strnlen(reason, STK_CONDITION_REASON_MAX + 1);
	if (n == 0 || n > STK_CONDITION_REASON_MAX || !cond_is_alpha(reason[0]))
		return false;
	for (i = 1; i < n; i++) {
		char c = reason[i];
		if (!cond_is_alnum(c) && c != '_' && c != ',' && c != ':')
			return false;
	}
	/* The last character may not be ',' or ':'. */
	return n == 1 || cond_is_alnum(reason[n - 1]) || reason[n - 1] == '_';
}

/* A DNS-1123 subdomain: labels of [a-z0-9-] starting and ending alphanumeric, '.'-joined. */
static bool cond_valid_subdomain(const char *s, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || cond_is_digit(c) || c == '-'))
			return false;
		if (label == 0 && c == '-')
			return false;
		label++;
	}
	return label > 0 && s[n - 1] != '-';
}

bool stk_conditions_valid_type(const char *type)
{
	const char *name, *slash;
	size_t n, len, i;

	if (!type)
		return false;
	len = strnlen(type, STK_CONDITION_TYPE_MAX + 1);
	if (len == 0 || len > STK_CONDITION_TYPE_MAX)
		return false;
	slash = memchr(type, '/', len);
	name = type;
	if (slash) {
		if (!cond_valid_subdomain(type, (size_t)(slash - type)))
			return false;
		name = slash + 1;
	}
	n = len - (size_t)(name - type);
	/* The name part is a qualified name: at most 63 characters. */
	if (n == 0 || n > 63 || !cond_is_alnum(name[0]) || !cond_is_alnum(name[n - 1]))
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (!cond_is_alnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t cond_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void cond_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void cond_put_digits(char *out, unsigned v, int n)
{
	while (n-- > 0) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* Formats seconds since the epoch; false (out = "") outside years 0000-9999. */
static bool cond_format_epoch(char *out, int64_t t)
{
	int64_t days, secs, y;
	unsigned m, d;

	out[0] = '\0';
	/* Years 0000 and 9999 bound t to about +-2.6e11; anything beyond is out of range. */
	if (t < INT64_C(-62167219200) || t > INT64_C(253402300799))
		return false;
	days = t / 86400;
	secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	cond_civil_from_days(days, &y, &m, &d);
	cond_put_digits(out, (unsigned)y, 4);
	out[4] = '-';
	cond_put_digits(out + 5, m, 2);
	out[7] = '-';
	cond_put_digits(out + 8, d, 2);
	out[10] = 'T';
	cond_put_digits(out + 11, (unsigned)(secs / 3600), 2);
	out[13] = ':';
	cond_put_digits(out + 14, (unsigned)(secs / 60 % 60), 2);
	out[16] = ':';
	cond_put_digits(out + 17, (unsigned)(secs % 60), 2);
	out[19] = 'Z';
	out[20] = '\0';
	return true;
}

int stk_conditions_format_time(char out[STK_CONDITION_TIME_SIZE], time_t t)
{
	return cond_format_epoch(out, (int64_t)t) ? 0 : STK_EINVAL;
}

void stk_conditions_now(char out[STK_CONDITION_TIME_SIZE])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	cond_format_epoch(out, (int64_t)ts.tv_sec);
}

/* Reads exactly n digits. */
static bool cond_digits(const char *s, int n, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++) {
		if (!cond_is_digit(s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

static bool cond_leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * Parses an RFC 3339 date-time ("2024-05-01T12:00:00Z", "...T12:00:00.5+02:00") and writes
 * it as UTC seconds. Fractions are dropped, as metav1.Time does.
 */
static bool cond_normalize_time(const char *s, char out[STK_CONDITION_TIME_SIZE])
{
	static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, d, h, mi, sec, oh = 0, om = 0;
	int64_t t;
	int sign = 0;
	size_t i = 19;

	if (strnlen(s, 20) < 20)
		return false;
	if (!cond_digits(s, 4, &y) || s[4] != '-' || !cond_digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !cond_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    !cond_digits(s + 11, 2, &h) || s[13] != ':' || !cond_digits(s + 14, 2, &mi) ||
	    s[16] != ':' || !cond_digits(s + 17, 2, &sec))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
		return false;
	if (d > mdays[mo - 1] + (mo == 2 && cond_leap(y)))
		return false;
	if (s[i] == '.') {
		i++;
		if (!cond_is_digit(s[i]))
			return false;
		while (cond_is_digit(s[i]))
			i++;
	}
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		sign = s[i] == '+' ? 1 : -1;
		if (!cond_digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
		    !cond_digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return false;
		i += 6;
	} else {
		return false;
	}
	if (s[i] != '\0')
		return false;
	t = cond_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (int64_t)(oh * 3600 + om * 60);
	return cond_format_epoch(out, t);
}

/* ---- messages ---- */

/*
 * Copies `str` (NULL = "") as valid UTF-8, bad bytes becoming U+FFFD, of at most `max`
 * bytes: it stops before the first character that would not fit, so a multi-byte
 * character is never cut.
 */
static char *cond_utf8_dup(const char *str, size_t max)
{
	static const char replacement[] = "\xef\xbf\xbd";
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t len = strlen((const char *)s), i = 0, o = 0, cap;
	char *out;

	/* A bad byte grows to 3 bytes of U+FFFD; the output never exceeds `max`. */
	cap = len > max / 3 ? max : len * 3;
	out = stk_malloc(cap + 1);
	while (i < len) {
		size_t n = stk_utf8_seq_len(s + i, len - i);
		const void *src = s + i;
		size_t outn = n;

		if (n == 0) {
			src = replacement;
			outn = 3;
			n = 1;
		}
		if (o + outn > cap)
			break;
		memcpy(out + o, src, outn);
		o += outn;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* ---- the set ---- */

void stk_conditions_init(struct stk_conditions *set)
{
	set->items = NULL;
	set->len = 0;
	set->cap = 0;
}

static void cond_free_fields(struct stk_condition *c)
{
	free(c->type);
	free(c->reason);
	free(c->message);
}

void stk_conditions_release(struct stk_conditions *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->len; i++)
		cond_free_fields(&set->items[i]);
	free(set->items);
	stk_conditions_init(set);
}

static struct stk_condition *cond_append(struct stk_conditions *set)
{
	struct stk_condition *c;

	if (set->len == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 8;
		set->items = stk_reallocarray(set->items, set->cap, sizeof(*set->items));
	}
	c = &set->items[set->len++];
	memset(c, 0, sizeof(*c));
	return c;
}

void stk_conditions_copy(struct stk_conditions *dst, const struct stk_conditions *src)
{
	struct stk_conditions tmp = STK_CONDITIONS_INIT;

	for (size_t i = 0; i < src->len; i++) {
		const struct stk_condition *s = &src->items[i];
		struct stk_condition *c = cond_append(&tmp);
		*c = *s;
		c->type = stk_strdup(s->type);
		c->reason = stk_strdup(s->reason);
		c->message = stk_strdup(s->message);
	}
	stk_conditions_release(dst);
	*dst = tmp;
}

static struct stk_condition *cond_find(const struct stk_conditions *set, const char *type)
{
	if (!type)
		return NULL;
	for (size_t i = 0; i < set->len; i++)
		if (!strcmp(set->items[i].type, type))
			return &set->items[i];
	return NULL;
}

const struct stk_condition *stk_conditions_get(const struct stk_conditions *set, const char *type)
{
	return cond_find(set, type);
}

bool stk_conditions_is_true(const struct stk_conditions *set, const char *type)
{
	const struct stk_condition *c = cond_find(set, type);

	return c && c->status == STK_CONDITION_TRUE;
}

const char *stk_conditions_status_name(enum stk_condition_status status)
{
	switch (status) {
	case STK_CONDITION_TRUE:
		return "True";
	case STK_CONDITION_FALSE:
		return "False";
	case STK_CONDITION_UNKNOWN:
		break;
	}
	return "Unknown";
}

/* Resolves `now` (NULL: the current time) into UTC seconds. */
static int cond_resolve_now(const char *now, char out[STK_CONDITION_TIME_SIZE], stk_err *err)
{
	if (!now) {
		stk_conditions_now(out);
		return 0;
	}
	if (!cond_normalize_time(now, out))
		return stk_err_set(err, STK_EINVAL, "condition time \"%.40s\" is not RFC 3339",
				   now);
	return 0;
}

int stk_conditions_set(struct stk_conditions *set, const char *type,
		       enum stk_condition_status status, const char *reason, const char *message,
		       int64_t generation, const char *now, stk_err *err)
{
	char ts[STK_CONDITION_TIME_SIZE];
	struct stk_condition *c;
	char *new_reason, *new_message;
	int rc;

	if (!stk_conditions_valid_type(type))
		return stk_err_set(err, STK_EINVAL, "invalid condition type \"%.64s\"",
				   type ? type : "");
	if (status != STK_CONDITION_TRUE && status != STK_CONDITION_FALSE &&
	    status != STK_CONDITION_UNKNOWN)
		return stk_err_set(err, STK_EINVAL, "condition %s: invalid status %d", type,
				   (int)status);
	if (!stk_conditions_valid_reason(reason))
		return stk_err_set(err, STK_EINVAL, "condition %s: invalid reason \"%.64s\"", type,
				   reason ? reason : "");
	if (generation < 0)
		return stk_err_set(err, STK_EINVAL, "condition %s: negative generation %" PRId64,
				   type, generation);
	rc = cond_resolve_now(now, ts, err);
	if (rc)
		return rc;

	/* Copied before the old strings go: the caller may pass a condition's own fields. */
	new_reason = stk_strdup(reason);
	new_message = cond_utf8_dup(message, STK_LIMIT_CONDITION_MESSAGE);
	c = cond_find(set, type);
	if (!c) {
		c = cond_append(set);
		c->type = stk_strdup(type);
		c->status = status;
		memcpy(c->last_transition_time, ts, sizeof(ts));
	} else {
		free(c->reason);
		free(c->message);
		/* Only a status flip is a transition; a missing time is filled in. */
		if (c->status != status || !c->last_transition_time[0])
			memcpy(c->last_transition_time, ts, sizeof(ts));
		c->status = status;
	}
	c->reason = new_reason;
	c->message = new_message;
	c->observed_generation = generation;
	return 0;
}

bool stk_conditions_remove(struct stk_conditions *set, const char *type)
{
	struct stk_condition *c = cond_find(set, type);
	size_t i;

	if (!c)
		return false;
	i = (size_t)(c - set->items);
	cond_free_fields(c);
	memmove(&set->items[i], &set->items[i + 1], (set->len - i - 1) * sizeof(*c));
	set->len--;
	return true;
}

static bool cond_same(const struct stk_condition *a, const struct stk_condition *b)
{
	return a->status == b->status && a->observed_generation == b->observed_generation &&
	       !strcmp(a->type, b->type) && !strcmp(a->reason, b->reason) &&
	       !strcmp(a->message, b->message) &&
	       !strcmp(a->last_transition_time, b->last_transition_time);
}

bool stk_conditions_equal(const struct stk_conditions *a, const struct stk_conditions *b)
{
	if (a->len != b->len)
		return false;
	/* Types are unique within a set, so matching each of a in b is a set comparison. */
	for (size_t i = 0; i < a->len; i++) {
		const struct stk_condition *o = cond_find(b, a->items[i].type);
		if (!o || !cond_same(&a->items[i], o))
			return false;
	}
	return true;
}

/* ---- kstatus ---- */

int stk_conditions_mark_reconciling(struct stk_conditions *set, const char *reason,
				    const char *message, int64_t generation, const char *now,
				    stk_err *err)
{
	int rc = stk_conditions_set(set, STK_CONDITION_RECONCILING, STK_CONDITION_TRUE, reason,
				    message, generation, now, err);
	if (rc == 0)
		stk_conditions_remove(set, STK_CONDITION_STALLED);
	return rc;
}

int stk_conditions_mark_stalled(struct stk_conditions *set, const char *reason, const char *message,
				int64_t generation, const char *now, stk_err *err)
{
	int rc = stk_conditions_set(set, STK_CONDITION_STALLED, STK_CONDITION_TRUE, reason, message,
				    generation, now, err);
	if (rc == 0)
		stk_conditions_remove(set, STK_CONDITION_RECONCILING);
	return rc;
}

void stk_conditions_mark_idle(struct stk_conditions *set)
{
	stk_conditions_remove(set, STK_CONDITION_RECONCILING);
	stk_conditions_remove(set, STK_CONDITION_STALLED);
}

/*
 * Ready copies a sub-condition's reason; one decoded from elsewhere may be empty or
 * invalid, which the API server would reject, so fall back to a generic one.
 */
static const char *cond_copy_reason(const struct stk_condition *c, const char *fallback)
{
	return stk_conditions_valid_reason(c->reason) ? c->reason : fallback;
}

int stk_conditions_summarize_ready(struct stk_conditions *set,
				   const struct stk_conditions_summary_opts *opts,
				   int64_t generation, const char *now, stk_err *err)
{
	static const char *const none[] = {NULL};
	const char *const *pos = opts && opts->positive ? opts->positive : none;
	const char *const *neg = opts && opts->negative ? opts->negative : none;
	const char *ok_reason =
		opts && opts->success_reason ? opts->success_reason : STK_REASON_SUCCEEDED;
	const char *ok_message = opts && opts->success_message ? opts->success_message : "";
	const struct stk_condition *c, *unknown = NULL;
	const char *missing = NULL;
	stk_buf msg = STK_BUF_INIT(STK_LIMIT_CONDITION_MESSAGE);
	size_t i;
	int rc;

	c = cond_find(set, STK_CONDITION_STALLED);
	if (c && c->status == STK_CONDITION_TRUE) {
		rc = stk_conditions_set(set, STK_CONDITION_READY, STK_CONDITION_FALSE,
					cond_copy_reason(c, "Stalled"), c->message, generation, now,
					err);
		goto out;
	}
	for (i = 0; neg[i]; i++) {
		c = cond_find(set, neg[i]);
		if (c && c->status == STK_CONDITION_TRUE) {
			rc = stk_conditions_set(set, STK_CONDITION_READY, STK_CONDITION_FALSE,
						cond_copy_reason(c, "Failed"), c->message,
						generation, now, err);
			goto out;
		}
	}
	for (i = 0; pos[i]; i++) {
		c = cond_find(set, pos[i]);
		if (c && c->status == STK_CONDITION_FALSE) {
			rc = stk_conditions_set(set, STK_CONDITION_READY, STK_CONDITION_FALSE,
						cond_copy_reason(c, "Failed"), c->message,
						generation, now, err);
			goto out;
		}
		if (c && c->status != STK_CONDITION_TRUE && !unknown && !missing)
			unknown = c;
		if (!c && !unknown && !missing)
			missing = pos[i];
	}
	if (unknown) {
		rc = stk_conditions_set(set, STK_CONDITION_READY, STK_CONDITION_UNKNOWN,
					cond_copy_reason(unknown, STK_REASON_PROGRESSING),
					unknown->message, generation, now, err);
		goto out;
	}
	if (missing) {
		rc = stk_buf_printf(&msg, "%s not yet reported", missing);
		if (rc) {
			rc = stk_err_set(err, rc, "condition type too long");
			goto out;
		}
		rc = stk_conditions_set(set, STK_CONDITION_READY, STK_CONDITION_UNKNOWN,
					STK_REASON_PROGRESSING, msg.ptr, generation, now, err);
		goto out;
	}
	c = cond_find(set, STK_CONDITION_RECONCILING);
	if (c && c->status == STK_CONDITION_TRUE) {
		rc = stk_conditions_set(set, STK_CONDITION_READY, STK_CONDITION_UNKNOWN,
					cond_copy_reason(c, STK_REASON_PROGRESSING), c->message,
					generation, now, err);
		goto out;
	}
	rc = stk_conditions_set(set, STK_CONDITION_READY, STK_CONDITION_TRUE, ok_reason, ok_message,
				generation, now, err);
out:
	stk_buf_release(&msg);
	return rc;
}

/* ---- JSON ---- */

/* An optional string member: missing or null leaves *out NULL. */
static int cond_opt_string(yajl_val obj, const char *key, size_t idx, const char **out,
			   stk_err *err)
{
	yajl_val v = stk_json_get(obj, key, NULL);

	*out = NULL;
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_STRING(v))
		return stk_err_set(err, STK_EPARSE, "conditions[%zu].%s: expected a string", idx,
				   key);
	*out = v->u.string;
	return 0;
}

static int cond_parse_status(const char *s, enum stk_condition_status *out)
{
	if (!strcmp(s, "True"))
		*out = STK_CONDITION_TRUE;
	else if (!strcmp(s, "False"))
		*out = STK_CONDITION_FALSE;
	else if (!strcmp(s, "Unknown"))
		*out = STK_CONDITION_UNKNOWN;
	else
		return STK_EPARSE;
	return 0;
}

static int cond_decode_one(struct stk_conditions *set, yajl_val obj, size_t idx, stk_err *err)
{
	const char *type = NULL, *status = NULL, *reason = NULL, *message = NULL, *ltt = NULL;
	char ts[STK_CONDITION_TIME_SIZE] = "";
	char *fixed_type = NULL;
	enum stk_condition_status st = STK_CONDITION_UNKNOWN;
	int64_t gen = -1;
	yajl_val v;
	struct stk_condition *c;
	int rc;

	if (!YAJL_IS_OBJECT(obj))
		return stk_err_set(err, STK_EPARSE, "conditions[%zu]: expected an object", idx);
	if ((rc = cond_opt_string(obj, "type", idx, &type, err)) != 0 ||
	    (rc = cond_opt_string(obj, "status", idx, &status, err)) != 0 ||
	    (rc = cond_opt_string(obj, "reason", idx, &reason, err)) != 0 ||
	    (rc = cond_opt_string(obj, "message", idx, &message, err)) != 0 ||
	    (rc = cond_opt_string(obj, "lastTransitionTime", idx, &ltt, err)) != 0)
		return rc;
	if (!type || !type[0])
		return stk_err_set(err, STK_EPARSE, "conditions[%zu].type: missing", idx);
	if (!status)
		return stk_err_set(err, STK_EPARSE, "conditions[%zu].status: missing", idx);
	if (cond_parse_status(status, &st) != 0)
		return stk_err_set(
			err, STK_EPARSE,
			"conditions[%zu].status: \"%.32s\" is not True, False or Unknown", idx,
			status);
	v = stk_json_get(obj, "observedGeneration", NULL);
	if (v && !YAJL_IS_NULL(v)) {
		if (!stk_json_int(v, &gen, NULL))
			return stk_err_set(
				err, STK_EPARSE,
				"conditions[%zu].observedGeneration: expected an integer", idx);
		if (gen < 0)
			return stk_err_set(err, STK_EPARSE,
					   "conditions[%zu].observedGeneration: negative", idx);
	}
	if (ltt && ltt[0] && !cond_normalize_time(ltt, ts))
		return stk_err_set(err, STK_EPARSE,
				   "conditions[%zu].lastTransitionTime: \"%.40s\" is not RFC 3339",
				   idx, ltt);

	/*
	 * yajl turns a lone surrogate escape ("\udc00") into bytes that are not UTF-8; repair
	 * them now so that encoding what was decoded is lossless.
	 */
	fixed_type = cond_utf8_dup(type, SIZE_MAX);
	if (cond_find(set, fixed_type)) {
		rc = stk_err_set(err, STK_EPARSE, "conditions[%zu].type: duplicate \"%.64s\"", idx,
				 fixed_type);
		goto out;
	}
	c = cond_append(set);
	c->type = fixed_type;
	fixed_type = NULL;
	c->status = st;
	c->reason = cond_utf8_dup(reason, SIZE_MAX);
	c->message = cond_utf8_dup(message, SIZE_MAX);
	c->observed_generation = gen;
	memcpy(c->last_transition_time, ts, sizeof(ts));
out:
	free(fixed_type);
	return rc;
}

int stk_conditions_decode(struct stk_conditions *out, yajl_val v, stk_err *err)
{
	struct stk_conditions tmp = STK_CONDITIONS_INIT;
	int rc = 0;

	if (v && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_ARRAY(v)) {
			rc = stk_err_set(err, STK_EPARSE, "conditions: expected an array");
			goto out;
		}
		for (size_t i = 0; i < v->u.array.len; i++) {
			rc = cond_decode_one(&tmp, v->u.array.values[i], i, err);
			if (rc)
				goto out;
		}
	}
	stk_conditions_release(out);
	*out = tmp;
	stk_conditions_init(&tmp);
out:
	stk_conditions_release(&tmp);
	return rc;
}

static int cond_encode_member(stk_buf *b, const char *key, const char *value)
{
	int rc = stk_buf_printf(b, ",\"%s\":", key);

	return rc ? rc : stk_buf_put_json_string(b, value, strlen(value));
}

int stk_conditions_encode(stk_buf *b, const struct stk_conditions *set, stk_err *err)
{
	size_t start = b->len;
	int rc = stk_buf_putc(b, '[');

	for (size_t i = 0; !rc && i < set->len; i++) {
		const struct stk_condition *c = &set->items[i];

		rc = stk_buf_puts(b, i ? ",{\"type\":" : "{\"type\":");
		if (!rc)
			rc = stk_buf_put_json_string(b, c->type, strlen(c->type));
		if (!rc)
			rc = stk_buf_printf(b, ",\"status\":\"%s\"",
					    stk_conditions_status_name(c->status));
		if (!rc && c->observed_generation >= 0)
			rc = stk_buf_printf(b, ",\"observedGeneration\":%" PRId64,
					    c->observed_generation);
		if (!rc && c->last_transition_time[0])
			rc = stk_buf_printf(b, ",\"lastTransitionTime\":\"%s\"",
					    c->last_transition_time);
		if (!rc)
			rc = cond_encode_member(b, "reason", c->reason);
		if (!rc)
			rc = cond_encode_member(b, "message", c->message);
		if (!rc)
			rc = stk_buf_putc(b, '}');
	}
	if (!rc)
		rc = stk_buf_putc(b, ']');
	if (rc) {
		b->len = start;
		if (b->ptr)
			b->ptr[start] = '\0';
		return stk_err_set(err, rc, "conditions: JSON exceeds %zu bytes", b->max);
	}
	return 0;
}
