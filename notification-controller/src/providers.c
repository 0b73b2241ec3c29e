#include "providers.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <yajl/yajl_tree.h>

#include "stk/alloc.h"
#include "stk/api/kinds.h"
#include "stk/base64.h"
#include "stk/limits.h"
#include "stk/yaml.h"

enum prov_type {
	PROV_GENERIC,
	PROV_GENERIC_HMAC,
	PROV_SLACK,
	PROV_MSTEAMS,
	PROV_DISCORD,
	PROV_GOOGLECHAT,
	PROV_PAGERDUTY,
	PROV_ALERTMANAGER,
	PROV_COUNT
};

static const char *const prov_names[PROV_COUNT] = {
	"generic", "generic-hmac", "slack",	"msteams",
	"discord", "googlechat",   "pagerduty", "alertmanager",
};

/* Per-service limits, in bytes: the services count characters, never more than bytes. */
#define SLACK_FOOTER_MAX      300u   /* attachment footer */
#define TEAMS_MESSAGE_MAX     16384u /* Teams refuses messages above 28 KB in all */
#define TEAMS_VALUE_MAX	      2048u
#define DISCORD_TITLE_MAX     256u
#define DISCORD_DESC_MAX      4096u
#define DISCORD_FIELD_NAME    256u
#define DISCORD_FIELD_VALUE   1024u
#define DISCORD_FIELDS	      25u
#define DISCORD_FOOTER_MAX    128u
#define DISCORD_EMBED_TOTAL   6000u
#define DISCORD_USERNAME_MAX  80u
#define GCHAT_MESSAGE_MAX     16384u /* a Chat message is at most 32,000 bytes */
#define GCHAT_VALUE_MAX	      2048u
#define GCHAT_FALLBACK_MAX    1024u
#define PAGERDUTY_SUMMARY_MAX 1024u
#define PAGERDUTY_DEDUP_MAX   255u

/* Discord embed colours: red for failures, green otherwise. */
#define DISCORD_RED   0xED4245
#define DISCORD_GREEN 0x57F287

static const char ellipsis[] = "\xe2\x80\xa6";

/* What the address tells about the endpoint. */
struct url_info {
	bool slack_api;	      /* Slack's chat.postMessage method rather than a webhook */
	bool teams_connector; /* a retiring Office 365 connector (*.webhook.office.com) */
	bool discord_slack;   /* Discord's Slack-compatible endpoint (.../slack) */
};

/* ---- small helpers ---- */

static bool ends_with(const char *s, const char *suffix, bool nocase)
{
	size_t n = strlen(s), m = strlen(suffix);

	if (m > n)
		return false;
	return nocase ? !strcasecmp(s + n - m, suffix) : !strcmp(s + n - m, suffix);
}

static bool has_line_break(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* Copies up to 64 bytes of `s` for an error message, printable ASCII only. */
static void printable(char out[68], const char *s)
{
	size_t i = 0;

	for (; s[i] && i < 64; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

/* The longest prefix of s[0..len) at most `max` bytes that does not split a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	size_t n;

	if (len <= max)
		return len;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static void hex_encode(char *out, const unsigned char *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* ---- a JSON writer over stk_buf with a sticky error ---- */

#define JW_DEPTH 16

struct jw {
	stk_buf *b;
	int rc;
	unsigned depth;
	bool more[JW_DEPTH]; /* the container at this depth has a member already */
	bool keyed;	     /* a key was written: the next value needs no comma */
};

static void jw_raw(struct jw *w, const char *s)
{
	if (!w->rc)
		w->rc = stk_buf_puts(w->b, s);
}

static void jw_sep(struct jw *w)
{
	if (w->keyed) {
		w->keyed = false;
		return;
	}
	if (w->depth) {
		if (w->more[w->depth - 1])
			jw_raw(w, ",");
		w->more[w->depth - 1] = true;
	}
}

static void jw_open(struct jw *w, const char *brace)
{
	jw_sep(w);
	jw_raw(w, brace);
	assert(w->depth < JW_DEPTH);
	w->more[w->depth++] = false;
}

static void jw_close(struct jw *w, const char *brace)
{
	assert(w->depth > 0);
	w->depth--;
	jw_raw(w, brace);
}

static void jw_strn(struct jw *w, const char *s, size_t n)
{
	jw_sep(w);
	if (!w->rc)
		w->rc = stk_buf_put_json_string(w->b, s, n);
}

/* A string value; NULL becomes null. */
static void jw_str(struct jw *w, const char *s)
{
	if (!s) {
		jw_sep(w);
		jw_raw(w, "null");
		return;
	}
	jw_strn(w, s, strlen(s));
}

static void jw_key(struct jw *w, const char *k)
{
	jw_strn(w, k, strlen(k));
	jw_raw(w, ":");
	w->keyed = true;
}

static void jw_kv(struct jw *w, const char *k, const char *v)
{
	jw_key(w, k);
	jw_str(w, v);
}

static void jw_int(struct jw *w, long v)
{
	jw_sep(w);
	if (!w->rc)
		w->rc = stk_buf_printf(w->b, "%ld", v);
}

static void jw_bool(struct jw *w, bool v)
{
	jw_sep(w);
	jw_raw(w, v ? "true" : "false");
}

/* Escape &, < and >: the markup of Slack's mrkdwn and of Google Chat's HTML subset. */
#define TX_MARKUP 1u

/*
 * Appends s (NULL as "") to `t`, at most `max` source bytes, cut on a UTF-8 boundary and
 * ended with "…" when longer, escaping markup with TX_MARKUP. Returns the bytes of text
 * taken (before escaping; never more than max), so callers can keep a service's budget.
 * *rc gets STK_ETOOBIG when `t` is full.
 */
static size_t text_put(stk_buf *t, const char *s, size_t max, unsigned flags, int *rc)
{
	const size_t ell = sizeof(ellipsis) - 1;
	size_t len = s ? strlen(s) : 0, n = len, used = len;

	if (!s)
		s = "";
	if (len > max) {
		n = max >= ell ? utf8_cut(s, len, max - ell) : 0;
		used = n + (max >= ell ? ell : 0);
	}
	for (size_t i = 0, run = 0; i < n && !*rc; i = run + 1) {
		run = i;
		while (run < n && (!(flags & TX_MARKUP) || !strchr("&<>", s[run])))
			run++;
		*rc = stk_buf_put(t, s + i, run - i);
		if (*rc || run == n)
			break;
		*rc = stk_buf_puts(t, s[run] == '&' ? "&amp;" : s[run] == '<' ? "&lt;" : "&gt;");
	}
	if (!*rc && used > n)
		*rc = stk_buf_puts(t, ellipsis);
	return used;
}

/* Writes text_put's text as a JSON string value. */
static size_t jw_text(struct jw *w, const char *s, size_t max, unsigned flags)
{
	stk_buf t = STK_BUF_INIT(NOTIFCTL_BODY_MAX);
	size_t used;
	int rc = 0;

	if (s && strlen(s) <= max && !(flags & TX_MARKUP)) {
		jw_str(w, s);
		return strlen(s);
	}
	used = text_put(&t, s, max, flags, &rc);
	if (rc) {
		jw_sep(w);
		if (!w->rc)
			w->rc = rc;
	} else {
		jw_strn(w, t.ptr ? t.ptr : "", t.len);
	}
	stk_buf_release(&t);
	return used;
}

/* ---- header list ---- */

struct hdrs {
	char **v;
	size_t n;
};

/*
 * Sets header `name` to prefix+value, replacing a header of the same name (any case).
 * The inputs are bounded by notifctl_provider_check (64 KiB each), so the sum cannot
 * overflow.
 */
static void hdrs_set(struct hdrs *h, const char *name, const char *prefix, const char *value)
{
	size_t nl = strlen(name), pl = strlen(prefix), vl = strlen(value);
	char *line = stk_malloc(nl + 2 + pl + vl + 1);

	memcpy(line, name, nl);
	memcpy(line + nl, ": ", 2);
	memcpy(line + nl + 2, prefix, pl);
	memcpy(line + nl + 2 + pl, value, vl + 1);
	for (size_t i = 0; i < h->n; i++) {
		if (!strncasecmp(h->v[i], name, nl) && h->v[i][nl] == ':') {
			free_secret(h->v[i]);
			h->v[i] = line;
			return;
		}
	}
	h->v = stk_reallocarray(h->v, h->n + 1, sizeof(char *));
	h->v[h->n++] = line;
}

static void hdrs_free(struct hdrs *h)
{
	for (size_t i = 0; i < h->n; i++)
		free_secret(h->v[i]);
	free(h->v);
	h->v = NULL;
	h->n = 0;
}

/* ---- checks ---- */

static int prov_type_of(const char *s)
{
	for (int i = 0; s && i < PROV_COUNT; i++)
		if (!strcmp(s, prov_names[i]))
			return i;
	return -1;
}

/* RFC 9110 §5.6.2: token = 1*tchar. */
static bool header_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			continue;
		if (!strchr("!#$%&'*+-.^_`|~", c))
			return false;
	}
	return true;
}

/* The text of a header value: strings, numbers and booleans as written; NULL otherwise. */
static const char *header_value(yajl_val v)
{
	if (YAJL_IS_STRING(v))
		return v->u.string;
	if (YAJL_IS_NUMBER(v))
		return v->u.number.r;
	if (YAJL_IS_TRUE(v))
		return "true";
	if (YAJL_IS_FALSE(v))
		return "false";
	return NULL;
}

/*
 * Parses and checks the Secret's headers. *out is the map (NULL when there are none),
 * freed by the caller with yajl_tree_free.
 */
static int headers_parse(const char *text, int type, yajl_val *out, stk_err *err)
{
	static const char *const forbidden[] = {"Content-Length", "Host", "Transfer-Encoding"};
	yajl_val v = NULL;
	size_t len;
	char shown[68];
	int rc;

	*out = NULL;
	if (!text)
		return 0;
	len = strlen(text);
	if (len > STK_LIMIT_HTTP_HEADERS)
		return stk_err_set(err, STK_ETOOBIG, "Secret key headers: longer than %u bytes",
				   STK_LIMIT_HTTP_HEADERS);
	if ((rc = stk_yaml_parse(&v, text, len, err)))
		return stk_err_wrap(err, "Secret key headers");
	if (!v || YAJL_IS_NULL(v)) {
		yajl_tree_free(v);
		return 0;
	}
	if (!YAJL_IS_OBJECT(v)) {
		yajl_tree_free(v);
		return stk_err_set(err, STK_EINVAL,
				   "Secret key headers: not a map of header names to values");
	}
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *name = v->u.object.keys[i], *val = header_value(v->u.object.values[i]);

		printable(shown, name);
		if (!header_name_ok(name)) {
			rc = stk_err_set(err, STK_EINVAL,
					 "Secret key headers: \"%s\" is not a valid header name",
					 shown);
			goto fail;
		}
		for (size_t f = 0; f < sizeof(forbidden) / sizeof(forbidden[0]); f++)
			if (!strcasecmp(name, forbidden[f])) {
				rc = stk_err_set(err, STK_EINVAL,
						 "Secret key headers: %s cannot be set",
						 forbidden[f]);
				goto fail;
			}
		if (type == PROV_GENERIC_HMAC && !strcasecmp(name, "X-Signature")) {
			rc = stk_err_set(err, STK_EINVAL,
					 "Secret key headers: X-Signature is computed for "
					 "generic-hmac and cannot be set");
			goto fail;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcasecmp(name, v->u.object.keys[j])) {
				rc = stk_err_set(err, STK_EINVAL,
						 "Secret key headers: %s is given twice", shown);
				goto fail;
			}
		if (!val) {
			rc = stk_err_set(err, STK_EINVAL,
					 "Secret key headers: the value of %s is not a string",
					 shown);
			goto fail;
		}
		for (const char *c = val; *c; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) {
				rc = stk_err_set(
					err, STK_EINVAL,
					"Secret key headers: the value of %s contains a line "
					"break or control character",
					shown);
				goto fail;
			}
	}
	*out = v;
	return 0;
fail:
	yajl_tree_free(v);
	return rc;
}

/* Parses the address with libcurl's URL parser. Never quotes it: it may be a credential. */
static int url_check(const char *addr, struct url_info *ui, stk_err *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *path = NULL;
	CURLUcode uc;
	int rc = 0;

	memset(ui, 0, sizeof(*ui));
	if (strlen(addr) > NOTIFCTL_ADDRESS_MAX) {
		rc = stk_err_set(err, STK_EINVAL, "provider address: longer than %u bytes",
				 NOTIFCTL_ADDRESS_MAX);
		goto out;
	}
	if ((uc = curl_url_set(u, CURLUPART_URL, addr, 0)) ||
	    (uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0))) {
		rc = stk_err_set(err, STK_EINVAL, "provider address: not a valid URL (%s)",
				 curl_url_strerror(uc));
		goto out;
	}
	if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) {
		rc = stk_err_set(err, STK_EINVAL,
				 "provider address: the scheme must be http or https");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) || !*host) {
		rc = stk_err_set(err, STK_EINVAL, "provider address: the URL has no host");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PATH, &path, 0))
		path = NULL;
	ui->slack_api = path && ends_with(path, "/api/chat.postMessage", false);
	ui->teams_connector = ends_with(host, ".webhook.office.com", true);
	ui->discord_slack =
		path && (ends_with(path, "/slack", false) || ends_with(path, "/slack/", false));
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

/* The whole of notifctl_provider_check; also hands back what rendering needs. */
static int check(const struct notifctl_provider *p, int *type_out, struct url_info *ui,
		 yajl_val *hdrs, stk_err *err)
{
	const char *addr = p->address && *p->address ? p->address : NULL;
	bool has_token = p->token && *p->token;
	bool has_user = p->basic_user && *p->basic_user;
	bool has_pass = p->basic_password && *p->basic_password;
	bool bearer, basic;
	char shown[68];
	int type = prov_type_of(p->type), rc;

	*hdrs = NULL;
	if (type < 0) {
		printable(shown, p->type ? p->type : "");
		return stk_err_set(
			err, STK_EINVAL,
			"spec.provider.type: unknown provider type \"%s\" (one of generic, "
			"generic-hmac, slack, msteams, discord, googlechat, pagerduty, "
			"alertmanager)",
			shown);
	}
	if (!addr && type != PROV_PAGERDUTY)
		return stk_err_set(err, STK_EINVAL,
				   "%s provider: an address is required (spec.provider.address or "
				   "the Secret's key address)",
				   prov_names[type]);
	if ((rc = url_check(addr ? addr : NOTIFCTL_PAGERDUTY_URL, ui, err)))
		return rc;
	if ((type == PROV_GENERIC_HMAC || type == PROV_PAGERDUTY) && !has_token)
		return stk_err_set(
			err, STK_EINVAL, "%s provider: the Secret needs the key token (%s)",
			prov_names[type],
			type == PROV_PAGERDUTY ? "the integration's routing key" : "the HMAC key");
	if (p->token && strlen(p->token) > STK_LIMIT_TOKEN_FILE)
		return stk_err_set(err, STK_ETOOBIG, "Secret key token: longer than %u bytes",
				   STK_LIMIT_TOKEN_FILE);
	bearer = type == PROV_GENERIC || type == PROV_SLACK || type == PROV_ALERTMANAGER;
	basic = type == PROV_GENERIC || type == PROV_GENERIC_HMAC || type == PROV_ALERTMANAGER;
	if (has_token && (bearer || type == PROV_PAGERDUTY) && has_line_break(p->token))
		return stk_err_set(err, STK_EINVAL, "Secret key token: contains a line break");
	if (basic && (has_user || has_pass)) {
		if (!has_user || !has_pass)
			return stk_err_set(err, STK_EINVAL,
					   "Secret keys username and password: both are needed for "
					   "basic authentication");
		if (strlen(p->basic_user) > STK_LIMIT_TOKEN_FILE ||
		    strlen(p->basic_password) > STK_LIMIT_TOKEN_FILE)
			return stk_err_set(
				err, STK_ETOOBIG,
				"Secret keys username and password: longer than %u bytes",
				STK_LIMIT_TOKEN_FILE);
		if (strchr(p->basic_user, ':'))
			return stk_err_set(err, STK_EINVAL, "Secret key username: contains ':'");
		if (bearer && has_token)
			return stk_err_set(
				err, STK_EINVAL,
				"%s provider: the Secret has both token and "
				"username/password; both would be the Authorization header",
				prov_names[type]);
	}
	if (type == PROV_SLACK && ui->slack_api && (!has_token || !p->channel || !*p->channel))
		return stk_err_set(err, STK_EINVAL,
				   "slack provider: chat.postMessage needs the Secret's key token "
				   "and spec.provider.channel");
	if (type == PROV_DISCORD && ui->discord_slack)
		return stk_err_set(err, STK_EINVAL,
				   "discord provider: use the plain webhook URL, without /slack");
	if ((rc = headers_parse(p->headers, type, hdrs, err)))
		return rc;
	*type_out = type;
	return 0;
}

int notifctl_provider_check(const struct notifctl_provider *p, stk_err *err)
{
	struct url_info ui;
	yajl_val hdrs = NULL;
	int type, rc = check(p, &type, &ui, &hdrs, err);

	yajl_tree_free(hdrs);
	return rc;
}

/* ---- rendering ---- */

struct ctx {
	const struct notifctl_provider *p;
	const struct notifctl_event *e;
	struct url_info ui;
	bool error;	 /* a Warning event */
	const char *sev; /* "info" or "error" */
	char *object;	 /* "Kind/namespace/name" */
	char *headline;	 /* "Kind/namespace/name: Reason" */
	size_t nmeta;
};

static const char *str(const char *s)
{
	return s ? s : "";
}

static const char *meta_key(const struct ctx *c, size_t i)
{
	return c->e->meta_keys[i];
}

static const char *meta_value(const struct ctx *c, size_t i)
{
	return c->e->meta_values && c->e->meta_values[i] ? c->e->meta_values[i] : "";
}

/* The metadata as a JSON object of strings. */
static void meta_object(struct jw *w, const struct ctx *c)
{
	jw_open(w, "{");
	for (size_t i = 0; i < c->nmeta; i++) {
		if (!meta_key(c, i))
			continue;
		jw_kv(w, meta_key(c, i), meta_value(c, i));
	}
	jw_close(w, "}");
}

/* CONTRACTS.md "Event payload of the generic provider": the Flux event shape. */
static void render_generic(struct jw *w, const struct ctx *c)
{
	const struct notifctl_event *e = c->e;

	jw_open(w, "{");
	jw_key(w, "involvedObject");
	jw_open(w, "{");
	jw_kv(w, "apiVersion", e->api_version);
	jw_kv(w, "kind", e->kind);
	jw_kv(w, "namespace", e->ns);
	jw_kv(w, "name", e->name);
	jw_kv(w, "uid", e->uid);
	jw_close(w, "}");
	jw_kv(w, "severity", c->sev);
	jw_kv(w, "timestamp", e->timestamp);
	jw_kv(w, "reason", e->reason);
	jw_key(w, "message");
	jw_text(w, e->message, NOTIFCTL_MESSAGE_MAX, 0);
	jw_key(w, "metadata");
	meta_object(w, c);
	jw_kv(w, "reportingController", e->reporting_controller);
	jw_kv(w, "reportingInstance", e->reporting_instance);
	jw_close(w, "}");
}

/*
 * Slack: one legacy secondary attachment, the only message form with a colour bar
 * (https://api.slack.com/reference/messaging/attachments, fields title/value/short).
 * Incoming webhooks (https://api.slack.com/messaging/webhooks) and chat.postMessage take
 * the same JSON; channel and username are honoured by chat.postMessage and legacy
 * webhooks. Text fields are mrkdwn, so &, < and > are escaped as Slack asks
 * (https://api.slack.com/reference/surfaces/formatting#escaping): an event message cannot
 * ping <!channel>. Titles are plain text that Slack escapes itself.
 */
static void render_slack(struct jw *w, const struct ctx *c)
{
	const struct notifctl_event *e = c->e;

	jw_open(w, "{");
	if (c->p->channel && *c->p->channel)
		jw_kv(w, "channel", c->p->channel);
	if (c->p->username && *c->p->username)
		jw_kv(w, "username", c->p->username);
	jw_key(w, "attachments");
	jw_open(w, "[");
	jw_open(w, "{");
	jw_kv(w, "color", c->error ? "danger" : "good");
	jw_key(w, "fallback");
	jw_text(w, c->headline, NOTIFCTL_MESSAGE_MAX, TX_MARKUP);
	jw_kv(w, "title", c->object);
	jw_key(w, "text");
	jw_text(w, e->message, NOTIFCTL_MESSAGE_MAX, TX_MARKUP);
	jw_key(w, "fields");
	jw_open(w, "[");
	jw_open(w, "{");
	jw_kv(w, "title", "Reason");
	jw_key(w, "value");
	jw_text(w, e->reason, NOTIFCTL_MESSAGE_MAX, TX_MARKUP);
	jw_key(w, "short");
	jw_bool(w, true);
	jw_close(w, "}");
	for (size_t i = 0; i < c->nmeta; i++) {
		if (!meta_key(c, i))
			continue;
		jw_open(w, "{");
		jw_kv(w, "title", meta_key(c, i));
		jw_key(w, "value");
		jw_text(w, meta_value(c, i), NOTIFCTL_MESSAGE_MAX, TX_MARKUP);
		jw_key(w, "short");
		jw_bool(w, false);
		jw_close(w, "}");
	}
	jw_close(w, "]");
	if (e->reporting_controller && *e->reporting_controller) {
		jw_key(w, "footer");
		jw_text(w, e->reporting_controller, SLACK_FOOTER_MAX, TX_MARKUP);
	}
	jw_close(w, "}");
	jw_close(w, "]");
	jw_close(w, "}");
}

/*
 * Teams. Microsoft retires Office 365 connectors; the Workflows "When a Teams webhook
 * request is received" trigger that replaces them accepts Adaptive Cards only ("Workflows
 * support Adaptive Cards only", learn.microsoft.com/microsoftteams/platform/
 * webhooks-and-connectors/how-to/connectors-using, "Known issues"). So every address gets
 * the documented webhook envelope {"type":"message","attachments":[{"contentType":
 * "application/vnd.microsoft.card.adaptive","content":<AdaptiveCard 1.4>}]} (Teams renders
 * schema versions up to 1.4 from webhooks), except a remaining connector URL on
 * *.webhook.office.com, which gets the legacy MessageCard because some connectors refuse
 * Adaptive Cards (MicrosoftDocs/msteams-docs#11222). Flux's msteams provider makes the
 * same choice on the same host test.
 */
static void teams_facts(struct jw *w, const struct ctx *c, const char *name_key)
{
	jw_open(w, "[");
	jw_open(w, "{");
	jw_kv(w, name_key, "Reason");
	jw_key(w, "value");
	jw_text(w, c->e->reason, TEAMS_VALUE_MAX, 0);
	jw_close(w, "}");
	for (size_t i = 0; i < c->nmeta; i++) {
		if (!meta_key(c, i))
			continue;
		jw_open(w, "{");
		jw_key(w, name_key);
		jw_text(w, meta_key(c, i), TEAMS_VALUE_MAX, 0);
		jw_key(w, "value");
		jw_text(w, meta_value(c, i), TEAMS_VALUE_MAX, 0);
		jw_close(w, "}");
	}
	jw_close(w, "]");
}

static void render_msteams(struct jw *w, const struct ctx *c)
{
	if (c->ui.teams_connector) {
		/* https://learn.microsoft.com/outlook/actionable-messages/message-card-reference */
		jw_open(w, "{");
		jw_kv(w, "@type", "MessageCard");
		jw_kv(w, "@context", "http://schema.org/extensions");
		jw_kv(w, "themeColor", c->error ? "FF0000" : "0076D7");
		jw_key(w, "summary");
		jw_text(w, c->headline, TEAMS_VALUE_MAX, 0);
		jw_key(w, "sections");
		jw_open(w, "[");
		jw_open(w, "{");
		jw_key(w, "activityTitle");
		jw_text(w, c->object, TEAMS_VALUE_MAX, 0);
		jw_key(w, "text");
		jw_text(w, c->e->message, TEAMS_MESSAGE_MAX, 0);
		jw_key(w, "facts");
		teams_facts(w, c, "name");
		jw_close(w, "}");
		jw_close(w, "]");
		jw_close(w, "}");
		return;
	}
	jw_open(w, "{");
	jw_kv(w, "type", "message");
	jw_key(w, "attachments");
	jw_open(w, "[");
	jw_open(w, "{");
	jw_kv(w, "contentType", "application/vnd.microsoft.card.adaptive");
	jw_kv(w, "contentUrl", NULL);
	jw_key(w, "content");
	jw_open(w, "{");
	jw_kv(w, "$schema", "http://adaptivecards.io/schemas/adaptive-card.json");
	jw_kv(w, "type", "AdaptiveCard");
	jw_kv(w, "version", "1.4");
	jw_key(w, "msteams");
	jw_open(w, "{");
	jw_kv(w, "width", "Full");
	jw_close(w, "}");
	jw_key(w, "body");
	jw_open(w, "[");
	jw_open(w, "{");
	jw_kv(w, "type", "TextBlock");
	jw_key(w, "text");
	jw_text(w, c->object, TEAMS_VALUE_MAX, 0);
	jw_kv(w, "size", "Large");
	jw_kv(w, "weight", "Bolder");
	jw_key(w, "wrap");
	jw_bool(w, true);
	jw_close(w, "}");
	jw_open(w, "{");
	jw_kv(w, "type", "TextBlock");
	jw_key(w, "text");
	jw_text(w, c->e->message, TEAMS_MESSAGE_MAX, 0);
	jw_key(w, "wrap");
	jw_bool(w, true);
	if (c->error)
		jw_kv(w, "color", "Attention");
	jw_close(w, "}");
	jw_open(w, "{");
	jw_kv(w, "type", "FactSet");
	jw_key(w, "facts");
	teams_facts(w, c, "title");
	jw_close(w, "}");
	jw_close(w, "]");
	jw_close(w, "}");
	jw_close(w, "}");
	jw_close(w, "]");
	jw_close(w, "}");
}

/*
 * Discord's own Execute Webhook JSON (discord.com/developers/docs/resources/webhook
 * #execute-webhook): username and one embed (title, description, color, fields, footer,
 * timestamp) within the embed limits (title 256, description 4096, 25 fields of 256/1024,
 * 6000 in all). allowed_mentions.parse [] so an event message never pings anyone.
 */
static void render_discord(struct jw *w, const struct ctx *c)
{
	const struct notifctl_event *e = c->e;
	size_t budget = DISCORD_EMBED_TOTAL, nfields = 0;

	jw_open(w, "{");
	if (c->p->username && *c->p->username) {
		jw_key(w, "username");
		jw_text(w, c->p->username, DISCORD_USERNAME_MAX, 0);
	}
	jw_key(w, "allowed_mentions");
	jw_open(w, "{");
	jw_key(w, "parse");
	jw_open(w, "[");
	jw_close(w, "]");
	jw_close(w, "}");
	jw_key(w, "embeds");
	jw_open(w, "[");
	jw_open(w, "{");
	jw_key(w, "title");
	budget -= jw_text(w, c->object, DISCORD_TITLE_MAX, 0);
	if (e->message && *e->message) {
		jw_key(w, "description");
		budget -= jw_text(w, e->message, DISCORD_DESC_MAX, 0);
	}
	jw_key(w, "color");
	jw_int(w, c->error ? DISCORD_RED : DISCORD_GREEN);
	if (e->timestamp && *e->timestamp)
		jw_kv(w, "timestamp", e->timestamp);
	if (e->reporting_controller && *e->reporting_controller) {
		jw_key(w, "footer");
		jw_open(w, "{");
		jw_key(w, "text");
		budget -= jw_text(w, e->reporting_controller, DISCORD_FOOTER_MAX, 0);
		jw_close(w, "}");
	}
	/* Title, description and footer leave at least 1520 bytes: the reason always fits. */
	jw_key(w, "fields");
	jw_open(w, "[");
	for (size_t i = 0; i <= c->nmeta && nfields < DISCORD_FIELDS; i++) {
		const char *k = i ? meta_key(c, i - 1) : "Reason";
		const char *v = i ? meta_value(c, i - 1) : str(e->reason);
		size_t used;

		/* Discord refuses empty names and values. */
		if (!k || !*k || !*v || budget < 8)
			continue;
		jw_open(w, "{");
		jw_key(w, "name");
		used = jw_text(
			w, k, budget / 2 < DISCORD_FIELD_NAME ? budget / 2 : DISCORD_FIELD_NAME, 0);
		budget -= used;
		jw_key(w, "value");
		budget -= jw_text(w, v, budget < DISCORD_FIELD_VALUE ? budget : DISCORD_FIELD_VALUE,
				  0);
		jw_key(w, "inline");
		jw_bool(w, i == 0);
		jw_close(w, "}");
		nfields++;
	}
	jw_close(w, "]");
	jw_close(w, "}");
	jw_close(w, "]");
	jw_close(w, "}");
}

/*
 * Google Chat incoming webhook (developers.google.com/workspace/chat/quickstart/webhooks)
 * with a Cards v2 message (cardsV2[{cardId, card{header, sections[{widgets}]}}], the
 * current card format; Cards v1 is deprecated). fallbackText is what notifications show.
 * textParagraph and decoratedText.text take Chat's HTML subset, so &, < and > are escaped
 * and failures are red.
 */
static void render_googlechat(struct jw *w, const struct ctx *c)
{
	const struct notifctl_event *e = c->e;
	bool any = false;

	jw_open(w, "{");
	jw_key(w, "fallbackText");
	jw_text(w, c->headline, GCHAT_FALLBACK_MAX, 0);
	jw_key(w, "cardsV2");
	jw_open(w, "[");
	jw_open(w, "{");
	jw_kv(w, "cardId", "stoker-event");
	jw_key(w, "card");
	jw_open(w, "{");
	jw_key(w, "header");
	jw_open(w, "{");
	jw_key(w, "title");
	jw_text(w, c->object, GCHAT_VALUE_MAX, 0);
	jw_key(w, "subtitle");
	jw_text(w, e->reason, GCHAT_VALUE_MAX, 0);
	jw_close(w, "}");
	jw_key(w, "sections");
	jw_open(w, "[");
	jw_open(w, "{");
	jw_key(w, "widgets");
	jw_open(w, "[");
	jw_open(w, "{");
	jw_key(w, "textParagraph");
	jw_open(w, "{");
	jw_key(w, "text");
	if (c->error) {
		/* The message in red, as one string. */
		stk_buf t = STK_BUF_INIT(NOTIFCTL_BODY_MAX);
		int rc = stk_buf_puts(&t, "<font color=\"#d93025\">");

		text_put(&t, e->message, GCHAT_MESSAGE_MAX, TX_MARKUP, &rc);
		if (!rc)
			rc = stk_buf_puts(&t, "</font>");
		if (rc) {
			jw_sep(w);
			if (!w->rc)
				w->rc = rc;
		} else {
			jw_strn(w, t.ptr, t.len);
		}
		stk_buf_release(&t);
	} else {
		jw_text(w, e->message, GCHAT_MESSAGE_MAX, TX_MARKUP);
	}
	jw_close(w, "}");
	jw_close(w, "}");
	jw_close(w, "]");
	jw_close(w, "}");
	for (size_t i = 0; i < c->nmeta; i++) {
		if (!meta_key(c, i))
			continue;
		if (!any) {
			jw_open(w, "{");
			jw_key(w, "widgets");
			jw_open(w, "[");
			any = true;
		}
		jw_open(w, "{");
		jw_key(w, "decoratedText");
		jw_open(w, "{");
		jw_key(w, "topLabel");
		jw_text(w, meta_key(c, i), GCHAT_VALUE_MAX, 0);
		jw_key(w, "text");
		jw_text(w, meta_value(c, i), GCHAT_VALUE_MAX, TX_MARKUP);
		jw_key(w, "wrapText");
		jw_bool(w, true);
		jw_close(w, "}");
		jw_close(w, "}");
	}
	if (any) {
		jw_close(w, "]");
		jw_close(w, "}");
	}
	jw_close(w, "]");
	jw_close(w, "}");
	jw_close(w, "}");
	jw_close(w, "]");
	jw_close(w, "}");
}

/*
 * The PagerDuty dedup_key: one incident per object, and per gateway for the agent's events
 * (each agent reports as "stoker-agent" with its pod as instance, and one gateway's
 * success must not resolve another's failure). The reason is left out on purpose: the
 * Normal event that resolves (SyncCompleted) never has the reason of the Warning that
 * triggered (SyncFailed). "stoker/<Kind>/<namespace>/<name>[/<agent pod>]"; when that is
 * longer than the 255 characters PagerDuty allows, "stoker/sha256:<hex of it>".
 * NULL when the key would not fit a buffer of NOTIFCTL_BODY_MAX.
 */
static char *pagerduty_dedup_key(const struct notifctl_event *e)
{
	stk_buf b = STK_BUF_INIT(NOTIFCTL_BODY_MAX);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1], *key;
	int rc;

	rc = stk_buf_printf(&b, "stoker/%s/%s/%s", str(e->kind), str(e->ns), str(e->name));
	if (!rc && e->reporting_controller &&
	    !strcmp(e->reporting_controller, STK_AGENT_CONTAINER) && e->reporting_instance &&
	    *e->reporting_instance)
		rc = stk_buf_printf(&b, "/%s", e->reporting_instance);
	if (rc) {
		stk_buf_release(&b);
		return NULL;
	}
	if (b.len <= PAGERDUTY_DEDUP_MAX)
		return stk_buf_detach(&b, NULL);
	EVP_Digest(b.ptr, b.len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(hex, md, mdlen);
	stk_buf_release(&b);
	key = stk_malloc(sizeof("stoker/sha256:") + 2 * (size_t)mdlen);
	memcpy(key, "stoker/sha256:", sizeof("stoker/sha256:") - 1);
	memcpy(key + sizeof("stoker/sha256:") - 1, hex, 2 * (size_t)mdlen + 1);
	return key;
}

/*
 * PagerDuty Events API v2 (developer.pagerduty.com/docs/events-api-v2/trigger-events):
 * Warning events trigger, Normal events resolve the same dedup_key (as Flux does). The
 * payload is sent with both (PagerDuty needs it to trigger and ignores it to resolve).
 */
static void render_pagerduty(struct jw *w, const struct ctx *c)
{
	const struct notifctl_event *e = c->e;
	stk_buf summary = STK_BUF_INIT(NOTIFCTL_BODY_MAX);
	char *key = pagerduty_dedup_key(e);
	int rc;

	rc = stk_buf_printf(&summary, "%s: %s", c->headline, str(e->message));
	if (rc || !key) {
		if (!w->rc)
			w->rc = STK_ETOOBIG;
		goto out;
	}
	jw_open(w, "{");
	jw_kv(w, "routing_key", c->p->token);
	jw_kv(w, "event_action", c->error ? "trigger" : "resolve");
	jw_kv(w, "dedup_key", key);
	jw_kv(w, "client", "Stoker");
	jw_key(w, "payload");
	jw_open(w, "{");
	jw_key(w, "summary");
	jw_strn(w, summary.ptr, utf8_cut(summary.ptr, summary.len, PAGERDUTY_SUMMARY_MAX));
	jw_kv(w, "source", c->object);
	jw_kv(w, "severity", c->sev);
	if (e->timestamp && *e->timestamp)
		jw_kv(w, "timestamp", e->timestamp);
	if (e->reporting_controller && *e->reporting_controller)
		jw_kv(w, "component", e->reporting_controller);
	jw_kv(w, "group", str(e->ns));
	jw_kv(w, "class", str(e->reason));
	jw_key(w, "custom_details");
	jw_open(w, "{");
	jw_key(w, "message");
	jw_text(w, e->message, NOTIFCTL_MESSAGE_MAX, 0);
	jw_kv(w, "reportingController", e->reporting_controller);
	jw_kv(w, "reportingInstance", e->reporting_instance);
	jw_key(w, "metadata");
	meta_object(w, c);
	jw_close(w, "}");
	jw_close(w, "}");
	jw_close(w, "}");
out:
	stk_buf_release(&summary);
	free(key);
}

/* A Prometheus label name for `k`: [a-zA-Z_][a-zA-Z0-9_]*, other bytes as '_'. */
static char *label_name(const char *k)
{
	size_t n = strlen(k), o = 0;
	char *s;

	if (!n)
		return NULL;
	s = stk_malloc(n + 2);
	if (k[0] >= '0' && k[0] <= '9')
		s[o++] = '_';
	for (size_t i = 0; i < n; i++) {
		char ch = k[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '_';
		s[o++] = ok ? ch : '_';
	}
	s[o] = '\0';
	return s;
}

/*
 * Alertmanager API v2 POST /api/v2/alerts (prometheus.io/docs/alerting/latest/clients):
 * an array with one alert. The fixed labels cannot be overridden by metadata; metadata
 * summary becomes the summary annotation; metadata keys become label names
 * ([a-zA-Z_][a-zA-Z0-9_]*), the first of several keys that map to one name wins.
 */
static void render_alertmanager(struct jw *w, const struct ctx *c)
{
	static const char *const fixed[] = {"alertname", "severity", "reason",
					    "kind",	 "name",     "namespace"};
	const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	const struct notifctl_event *e = c->e;
	const char *summary = NULL;
	char **names = stk_calloc(c->nmeta + 1, sizeof(char *));
	stk_buf alertname = STK_BUF_INIT(NOTIFCTL_BODY_MAX);

	if (stk_buf_printf(&alertname, "Stoker%s", e->reason && *e->reason ? e->reason : "Event")) {
		w->rc = w->rc ? w->rc : STK_ETOOBIG;
		goto out;
	}
	jw_open(w, "[");
	jw_open(w, "{");
	jw_key(w, "labels");
	jw_open(w, "{");
	jw_kv(w, fixed[0], alertname.ptr);
	jw_kv(w, fixed[1], c->sev);
	jw_kv(w, fixed[2], str(e->reason));
	jw_kv(w, fixed[3], str(e->kind));
	jw_kv(w, fixed[4], str(e->name));
	jw_kv(w, fixed[5], str(e->ns));
	for (size_t i = 0; i < c->nmeta; i++) {
		const char *k = meta_key(c, i);
		bool taken = false;

		if (!k)
			continue;
		if (!strcmp(k, "summary")) {
			summary = summary ? summary : meta_value(c, i);
			continue;
		}
		if (!*meta_value(c, i) || !(names[i] = label_name(k)))
			continue;
		for (size_t f = 0; f < nfixed && !taken; f++)
			taken = !strcmp(names[i], fixed[f]);
		for (size_t j = 0; j < i && !taken; j++)
			taken = names[j] && !strcmp(names[i], names[j]);
		if (taken) {
			free(names[i]);
			names[i] = NULL;
			continue;
		}
		jw_kv(w, names[i], meta_value(c, i));
	}
	jw_close(w, "}");
	jw_key(w, "annotations");
	jw_open(w, "{");
	jw_key(w, "message");
	jw_text(w, e->message, NOTIFCTL_MESSAGE_MAX, 0);
	jw_kv(w, "summary", summary ? summary : c->headline);
	jw_close(w, "}");
	if (e->timestamp && *e->timestamp)
		jw_kv(w, "startsAt", e->timestamp);
	jw_close(w, "}");
	jw_close(w, "]");
out:
	for (size_t i = 0; i < c->nmeta; i++)
		free(names[i]);
	free(names);
	stk_buf_release(&alertname);
}

static int event_check(const struct notifctl_event *e, stk_err *err)
{
	if (!e->kind || !*e->kind || !e->name || !*e->name)
		return stk_err_set(err, STK_EINVAL,
				   "event: the involved object needs kind and name");
	if (e->severity && strcmp(e->severity, "info") && strcmp(e->severity, "error"))
		return stk_err_set(err, STK_EINVAL, "event: severity must be info or error");
	if (e->nmeta && !e->meta_keys)
		return stk_err_set(err, STK_EINVAL, "event: metadata without keys");
	return 0;
}

static void basic_auth(struct hdrs *h, const struct notifctl_provider *p)
{
	size_t ul = strlen(p->basic_user), pl = strlen(p->basic_password);
	char *pair = stk_malloc(ul + 1 + pl + 1), *b64;

	memcpy(pair, p->basic_user, ul);
	pair[ul] = ':';
	memcpy(pair + ul + 1, p->basic_password, pl + 1);
	b64 = stk_base64_encode(pair, ul + 1 + pl);
	hdrs_set(h, "Authorization", "Basic ", b64);
	free_secret(pair);
	free_secret(b64);
}

static void hmac_signature(struct hdrs *h, const char *key, const stk_buf *body)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	HMAC(EVP_sha256(), key, (int)strlen(key),
	     (const unsigned char *)(body->ptr ? body->ptr : ""), body->len, mac, &maclen);
	hex_encode(hex, mac, maclen);
	hdrs_set(h, "X-Signature", "sha256=", hex);
	OPENSSL_cleanse(mac, sizeof(mac));
}

int notifctl_render(const struct notifctl_provider *p, const struct notifctl_event *e,
		    struct notifctl_request *out, stk_err *err)
{
	stk_buf body = STK_BUF_INIT(NOTIFCTL_BODY_MAX), t = STK_BUF_INIT(NOTIFCTL_BODY_MAX);
	struct jw w = {&body, 0, 0, {false}, false};
	struct hdrs h = {NULL, 0};
	struct ctx c;
	yajl_val extra = NULL;
	char *url = NULL;
	int type = 0, rc;

	memset(&c, 0, sizeof(c));
	if ((rc = check(p, &type, &c.ui, &extra, err)) || (rc = event_check(e, err)))
		goto out;
	c.p = p;
	c.e = e;
	c.error = e->severity && !strcmp(e->severity, "error");
	c.sev = c.error ? "error" : "info";
	c.nmeta = e->nmeta < NOTIFCTL_META_MAX ? e->nmeta : NOTIFCTL_META_MAX;
	if (e->ns && *e->ns)
		rc = stk_buf_printf(&t, "%s/%s/%s", e->kind, e->ns, e->name);
	else
		rc = stk_buf_printf(&t, "%s/%s", e->kind, e->name);
	if (rc) {
		rc = stk_err_set(err, STK_ETOOBIG, "event: the involved object's name is too long");
		goto out;
	}
	c.object = stk_buf_detach(&t, NULL);
	if (stk_buf_printf(&t, "%s: %s", c.object, e->reason && *e->reason ? e->reason : "Event")) {
		rc = stk_err_set(err, STK_ETOOBIG, "event: the reason is too long");
		goto out;
	}
	c.headline = stk_buf_detach(&t, NULL);

	switch (type) {
	case PROV_GENERIC:
	case PROV_GENERIC_HMAC:
		render_generic(&w, &c);
		break;
	case PROV_SLACK:
		render_slack(&w, &c);
		break;
	case PROV_MSTEAMS:
		render_msteams(&w, &c);
		break;
	case PROV_DISCORD:
		render_discord(&w, &c);
		break;
	case PROV_GOOGLECHAT:
		render_googlechat(&w, &c);
		break;
	case PROV_PAGERDUTY:
		render_pagerduty(&w, &c);
		break;
	default:
		render_alertmanager(&w, &c);
		break;
	}
	if (w.rc) {
		rc = stk_err_set(err, STK_ETOOBIG,
				 "%s notification: the body is larger than %u bytes",
				 prov_names[type], NOTIFCTL_BODY_MAX);
		goto out;
	}

	hdrs_set(&h, "Content-Type", "",
		 type == PROV_SLACK || type == PROV_GOOGLECHAT ? "application/json; charset=utf-8"
							       : "application/json");
	if ((type == PROV_GENERIC || type == PROV_GENERIC_HMAC || type == PROV_ALERTMANAGER) &&
	    p->basic_user && *p->basic_user)
		basic_auth(&h, p);
	else if ((type == PROV_GENERIC || type == PROV_SLACK || type == PROV_ALERTMANAGER) &&
		 p->token && *p->token)
		hdrs_set(&h, "Authorization", "Bearer ", p->token);
	for (size_t i = 0; extra && i < extra->u.object.len; i++)
		hdrs_set(&h, extra->u.object.keys[i], "", header_value(extra->u.object.values[i]));
	if (type == PROV_GENERIC_HMAC)
		hmac_signature(&h, p->token, &body);
	url = stk_strdup(p->address && *p->address ? p->address : NOTIFCTL_PAGERDUTY_URL);

	out->url = url;
	out->headers = h.v;
	out->nheaders = h.n;
	out->body = body;
	url = NULL;
	h.v = NULL;
	h.n = 0;
	stk_buf_init(&body, NOTIFCTL_BODY_MAX);
out:
	if (body.ptr)
		OPENSSL_cleanse(body.ptr, body.len);
	stk_buf_release(&body);
	stk_buf_release(&t);
	hdrs_free(&h);
	free_secret(url);
	free(c.object);
	free(c.headline);
	yajl_tree_free(extra);
	return rc;
}

void notifctl_request_release(struct notifctl_request *r)
{
	if (!r)
		return;
	free_secret(r->url);
	r->url = NULL;
	for (size_t i = 0; i < r->nheaders; i++)
		free_secret(r->headers[i]);
	free(r->headers);
	r->headers = NULL;
	r->nheaders = 0;
	if (r->body.ptr)
		OPENSSL_cleanse(r->body.ptr, r->body.len);
	stk_buf_release(&r->body);
}
