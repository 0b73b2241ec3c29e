#include "stk/parse.h"

#include <string.h>

#include "stk/limits.h"

/* Quote at most 40 bytes of the offending input in messages. */
#define SHOW(s, len) (int)((len) > 40 ? 40 : (len)), (s)

int stk_parse_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out, stk_err *err)
{
	bool neg = false;
	uint64_t v = 0, limit;
	size_t i = 0;

	if (len && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i++;
	}
	if (i == len)
		return stk_err_set(err, STK_EPARSE, "\"%.*s\" is not an integer", SHOW(s, len));
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		unsigned d;
		if (s[i] < '0' || s[i] > '9')
			return stk_err_set(err, STK_EPARSE, "\"%.*s\" is not an integer",
					   SHOW(s, len));
		d = (unsigned)(s[i] - '0');
		if (v > (limit - d) / 10)
			return stk_err_set(err, STK_EINVAL, "\"%.*s\" is out of range",
					   SHOW(s, len));
		v = v * 10 + d;
	}
	{
		int64_t r =
			neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
		if (r < min || r > max)
			return stk_err_set(err, STK_EINVAL, "%lld is out of range (%lld to %lld)",
					   (long long)r, (long long)min, (long long)max);
		*out = r;
	}
	return 0;
}

int stk_parse_bool(const char *s, size_t len, bool *out, stk_err *err)
{
	if ((len == 4 && !memcmp(s, "true", 4)) || (len == 1 && s[0] == '1')) {
		*out = true;
		return 0;
	}
	if ((len == 5 && !memcmp(s, "false", 5)) || (len == 1 && s[0] == '0')) {
		*out = false;
		return 0;
	}
	return stk_err_set(err, STK_EPARSE, "\"%.*s\" is not a boolean (true or false)",
			   SHOW(s, len));
}

struct dur_unit {
	const char *name;
	size_t len;
	/* Nanoseconds per unit. */
	uint64_t ns;
};

static const struct dur_unit dur_units[] = {
	{"ns", 2, 1ull},
	{"us", 2, 1000ull},
	{"\xc2\xb5s", 3, 1000ull}, /* µs, micro sign */
	{"\xce\xbcs", 3, 1000ull}, /* μs, Greek mu */
	{"ms", 2, 1000000ull},
	{"s", 1, 1000000000ull},
	{"m", 1, 60ull * 1000000000ull},
	{"h", 1, 3600ull * 1000000000ull},
};

int stk_parse_duration_ms(const char *s, size_t len, int64_t *out_ms, stk_err *err)
{
	/* Accumulate in nanoseconds like Go's time.ParseDuration; cap at INT64_MAX ns. */
	const uint64_t max_ns = (uint64_t)INT64_MAX;
	uint64_t total = 0;
	size_t i = 0;

	if (len > STK_LIMIT_DURATION_TEXT)
		return stk_err_set(err, STK_ETOOBIG, "duration is longer than %u characters",
				   STK_LIMIT_DURATION_TEXT);
	if (len == 1 && s[0] == '0') {
		*out_ms = 0;
		return 0;
	}
	if (len && s[0] == '+')
		i++;
	if (i == len)
		return stk_err_set(err, STK_EPARSE, "\"%.*s\" is not a duration (e.g. 30s, 5m)",
				   SHOW(s, len));
	while (i < len) {
		uint64_t whole = 0, frac = 0, scale = 1;
		bool digits = false;
		const struct dur_unit *u = NULL;
		size_t k;

		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (whole > (max_ns - (uint64_t)(s[i] - '0')) / 10)
				goto toobig;
			whole = whole * 10 + (uint64_t)(s[i] - '0');
			digits = true;
			i++;
		}
		if (i < len && s[i] == '.') {
			i++;
			while (i < len && s[i] >= '0' && s[i] <= '9') {
				/* Digits past nanosecond precision of any unit are dropped. */
				if (scale < 1000000000000000000ull) {
					frac = frac * 10 + (uint64_t)(s[i] - '0');
					scale *= 10;
				}
				digits = true;
				i++;
			}
		}
		if (!digits)
			return stk_err_set(err, STK_EPARSE,
					   "\"%.*s\" is not a duration (e.g. 30s, 5m)",
					   SHOW(s, len));
		for (k = 0; k < sizeof(dur_units) / sizeof(dur_units[0]); k++) {
			const struct dur_unit *c = &dur_units[k];
			if (len - i >= c->len && !memcmp(s + i, c->name, c->len) &&
			    (!u || c->len > u->len))
				u = c;
		}
		/* "m" must not swallow the "m" of "ms". */
		if (u && u->len == 1 && u->name[0] == 'm' && i + 1 < len && s[i + 1] == 's')
			u = &dur_units[4];
		if (!u)
			return stk_err_set(
				err, STK_EPARSE,
				"\"%.*s\": missing or unknown unit (ns, us, ms, s, m, h)",
				SHOW(s, len));
		i += u->len;
		if (whole > max_ns / u->ns)
			goto toobig;
		whole *= u->ns;
		/* frac/scale of a unit, in ns: frac * u->ns / scale without overflow. */
		{
			long double f = (long double)frac * (long double)u->ns / (long double)scale;
			uint64_t fns = (uint64_t)f;
			if (whole > max_ns - fns)
				goto toobig;
			whole += fns;
		}
		if (total > max_ns - whole)
			goto toobig;
		total += whole;
	}
	*out_ms = (int64_t)(total / 1000000ull);
	return 0;
toobig:
	return stk_err_set(err, STK_ETOOBIG, "duration \"%.*s\" is too large", SHOW(s, len));
}

int stk_parse_hostport(const char *s, char *host, size_t host_cap, int *port, stk_err *err)
{
	const char *colon, *h = s;
	size_t hlen;
	int64_t p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return stk_err_set(err, STK_EPARSE,
					   "\"%s\" is not an address of the form [v6]:port", s);
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return stk_err_set(
				err, STK_EPARSE,
				"\"%s\" is not an address of the form host:port or :port", s);
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return stk_err_set(err, STK_EPARSE,
					   "\"%s\": write IPv6 addresses as [addr]:port", s);
	}
	if (hlen >= host_cap)
		return stk_err_set(err, STK_EPARSE, "host in \"%s\" is too long", s);
	if (stk_parse_i64(colon + 1, strlen(colon + 1), 0, 65535, &p, NULL))
		return stk_err_set(err, STK_EPARSE, "\"%s\": port must be a number 0-65535", s);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}
