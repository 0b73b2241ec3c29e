/* Provider requests: URL, headers and the documented JSON body of every provider type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "providers.h"
#include "stk/alloc.h"
#include "stk/json.h"

#define ELLIPSIS "\xe2\x80\xa6"

static const char *const meta_keys[] = {"summary", "site", "site-id", "1st", "name"};
static const char *const meta_values[] = {"ProveIt site 1", "Site 1", "S1", "yes", "spoof"};

/* A Warning SyncFailed from the agent of gateway area2, or a Normal SyncCompleted. */
static struct notifctl_event sample(bool error)
{
	struct notifctl_event e;

	memset(&e, 0, sizeof(e));
	e.api_version = "stoker.io/v1alpha1";
	e.kind = "Stoker";
	e.ns = "site1";
	e.name = "plant";
	e.uid = "0b6c5a2e-1111-2222-3333-444455556666";
	e.severity = error ? "error" : "info";
	e.timestamp = "2026-11-22T10:30:05Z";
	e.reason = error ? "SyncFailed" : "SyncCompleted";
	e.message = error ? "Sync failed on gateway area2: config.json is not JSON"
			  : "Synced gateway area2 to main@sha1:2c6a06";
	e.reporting_controller = "stoker-agent";
	e.reporting_instance = "area2-gateway-0";
	e.meta_keys = meta_keys;
	e.meta_values = meta_values;
	e.nmeta = 5;
	return e;
}

static struct notifctl_provider prov(const char *type, const char *address)
{
	struct notifctl_provider p;

	memset(&p, 0, sizeof(p));
	p.type = type;
	p.address = address;
	return p;
}

/* Renders, failing the test with the error message; returns the parsed body. */
static yajl_val render_json(const struct notifctl_provider *p, const struct notifctl_event *e,
			    struct notifctl_request *rq)
{
	stk_err err = STK_ERR_INIT;
	yajl_val v = NULL;
	int rc;

	memset(rq, 0, sizeof(*rq));
	rc = notifctl_render(p, e, rq, &err);
	if (rc)
		print_error("notifctl_render: %s\n", err.message);
	assert_int_equal(rc, 0);
	rc = stk_json_parse(&v, rq->body.ptr, rq->body.len, NOTIFCTL_BODY_MAX, &err);
	if (rc)
		print_error("body: %s\n%s\n", err.message, rq->body.ptr);
	assert_int_equal(rc, 0);
	return v;
}

/* The value of header `name` (any case), or NULL. Fails when it is there twice. */
static const char *header(const struct notifctl_request *rq, const char *name)
{
	const char *found = NULL;
	size_t n = strlen(name);

	for (size_t i = 0; i < rq->nheaders; i++)
		if (!strncasecmp(rq->headers[i], name, n) && rq->headers[i][n] == ':') {
			assert_null(found);
			found = rq->headers[i] + n + 2;
		}
	return found;
}

static void assert_keys(yajl_val obj, const char *const *keys, size_t n)
{
	assert_true(YAJL_IS_OBJECT(obj));
	assert_int_equal(obj->u.object.len, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(obj->u.object.keys[i], keys[i]);
}

static yajl_val at(yajl_val arr, size_t i)
{
	assert_true(YAJL_IS_ARRAY(arr));
	assert_true(i < arr->u.array.len);
	return arr->u.array.values[i];
}

static int check_msg(const struct notifctl_provider *p, stk_err *err)
{
	stk_err_clear(err);
	return notifctl_provider_check(p, err);
}

static void test_providers__generic_contract_shape(void **state)
{
	static const char *const top[] = {
		"involvedObject", "severity", "timestamp",	     "reason",
		"message",	  "metadata", "reportingController", "reportingInstance"};
	static const char *const obj[] = {"apiVersion", "kind", "namespace", "name", "uid"};
	struct notifctl_provider p = prov("generic", "https://hooks.example.com/stoker");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	yajl_val v, md;
	(void)state;

	v = render_json(&p, &e, &rq);
	assert_string_equal(rq.url, "https://hooks.example.com/stoker");
	assert_int_equal(rq.nheaders, 1);
	assert_string_equal(header(&rq, "Content-Type"), "application/json");
	assert_keys(v, top, 8);
	assert_keys(stk_json_obj(v, "involvedObject", NULL), obj, 5);
	assert_string_equal(stk_json_str(v, "involvedObject", "apiVersion", NULL),
			    "stoker.io/v1alpha1");
	assert_string_equal(stk_json_str(v, "involvedObject", "kind", NULL), "Stoker");
	assert_string_equal(stk_json_str(v, "involvedObject", "namespace", NULL), "site1");
	assert_string_equal(stk_json_str(v, "involvedObject", "name", NULL), "plant");
	assert_string_equal(stk_json_str(v, "involvedObject", "uid", NULL), e.uid);
	assert_string_equal(stk_json_str(v, "severity", NULL), "error");
	assert_string_equal(stk_json_str(v, "timestamp", NULL), "2026-11-22T10:30:05Z");
	assert_string_equal(stk_json_str(v, "reason", NULL), "SyncFailed");
	assert_string_equal(stk_json_str(v, "message", NULL), e.message);
	assert_string_equal(stk_json_str(v, "reportingController", NULL), "stoker-agent");
	assert_string_equal(stk_json_str(v, "reportingInstance", NULL), "area2-gateway-0");
	md = stk_json_obj(v, "metadata", NULL);
	assert_keys(md, meta_keys, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(stk_json_str(md, meta_keys[i], NULL), meta_values[i]);
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	/* Normal events are "info"; a missing uid is null, not a made-up value. */
	e = sample(false);
	e.uid = NULL;
	v = render_json(&p, &e, &rq);
	assert_string_equal(stk_json_str(v, "severity", NULL), "info");
	assert_true(YAJL_IS_NULL(stk_json_get(v, "involvedObject", "uid", NULL)));
	yajl_tree_free(v);
	notifctl_request_release(&rq);
}

static void test_providers__generic_auth_headers(void **state)
{
	struct notifctl_provider p = prov("generic", "http://receiver.local:8080/events");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	stk_err err = STK_ERR_INIT;
	yajl_val v;
	(void)state;

	p.token = "t0ken";
	v = render_json(&p, &e, &rq);
	assert_string_equal(header(&rq, "Authorization"), "Bearer t0ken");
	assert_null(strstr(rq.body.ptr, "t0ken"));
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	p.token = NULL;
	p.basic_user = "u";
	p.basic_password = "p";
	v = render_json(&p, &e, &rq);
	assert_string_equal(header(&rq, "Authorization"), "Basic dTpw"); /* base64("u:p") */
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	/* Both would be the Authorization header. */
	p.token = "t0ken";
	memset(&rq, 0, sizeof(rq));
	assert_int_equal(notifctl_render(&p, &e, &rq, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "both token and username/password"));
	assert_null(rq.url);
	assert_null(rq.headers);
	assert_null(rq.body.ptr);
}

static void test_providers__generic_hmac_signature(void **state)
{
	struct notifctl_provider p = prov("generic-hmac", "https://hooks.example.com/signed");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char want[7 + 2 * EVP_MAX_MD_SIZE + 1] = "sha256=";
	yajl_val v;
	(void)state;

	p.token = "hmac-key-SECRET";
	v = render_json(&p, &e, &rq);
	/* Same body as generic. */
	assert_string_equal(stk_json_str(v, "reason", NULL), "SyncFailed");
	assert_non_null(stk_json_obj(v, "metadata", NULL));
	assert_non_null(HMAC(EVP_sha256(), p.token, (int)strlen(p.token),
			     (const unsigned char *)rq.body.ptr, rq.body.len, mac, &maclen));
	assert_int_equal(maclen, 32);
	for (unsigned int i = 0; i < maclen; i++)
		snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
	assert_string_equal(header(&rq, "X-Signature"), want);
	/* The key itself goes nowhere. */
	assert_null(header(&rq, "Authorization"));
	assert_null(strstr(rq.body.ptr, "SECRET"));
	for (size_t i = 0; i < rq.nheaders; i++)
		assert_null(strstr(rq.headers[i], "SECRET"));
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	/* A different body gets a different signature. */
	e.message = "another message";
	v = render_json(&p, &e, &rq);
	assert_string_not_equal(header(&rq, "X-Signature"), want);
	yajl_tree_free(v);
	notifctl_request_release(&rq);
}

static void test_providers__slack_attachment(void **state)
{
	struct notifctl_provider p =
		prov("slack", "https://hooks.slack.com/services/T000/B000/XXXXSECRET");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	yajl_val v, a, fields;
	(void)state;

	p.channel = "#plant-ops";
	p.username = "Stoker";
	e.message = "<!channel> sync failed & rolled back";
	v = render_json(&p, &e, &rq);
	assert_string_equal(stk_json_str(v, "channel", NULL), "#plant-ops");
	assert_string_equal(stk_json_str(v, "username", NULL), "Stoker");
	a = at(stk_json_arr(v, "attachments", NULL), 0);
	assert_string_equal(stk_json_str(a, "color", NULL), "danger");
	assert_string_equal(stk_json_str(a, "title", NULL), "Stoker/site1/plant");
	assert_string_equal(stk_json_str(a, "fallback", NULL), "Stoker/site1/plant: SyncFailed");
	/* Escaped as Slack asks, so the message cannot ping the channel. */
	assert_string_equal(stk_json_str(a, "text", NULL),
			    "&lt;!channel&gt; sync failed &amp; rolled back");
	assert_string_equal(stk_json_str(a, "footer", NULL), "stoker-agent");
	fields = stk_json_arr(a, "fields", NULL);
	assert_int_equal(fields->u.array.len, 6);
	assert_string_equal(stk_json_str(at(fields, 0), "title", NULL), "Reason");
	assert_string_equal(stk_json_str(at(fields, 0), "value", NULL), "SyncFailed");
	assert_string_equal(stk_json_str(at(fields, 1), "title", NULL), "summary");
	assert_string_equal(stk_json_str(at(fields, 1), "value", NULL), "ProveIt site 1");
	assert_string_equal(stk_json_str(at(fields, 3), "title", NULL), "site-id");
	assert_string_equal(header(&rq, "Content-Type"), "application/json; charset=utf-8");
	assert_null(header(&rq, "Authorization"));
	assert_string_equal(rq.url, p.address);
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	/* Normal events are green; no channel or username unless configured. */
	p.channel = p.username = NULL;
	e = sample(false);
	v = render_json(&p, &e, &rq);
	a = at(stk_json_arr(v, "attachments", NULL), 0);
	assert_string_equal(stk_json_str(a, "color", NULL), "good");
	assert_null(stk_json_get(v, "channel", NULL));
	assert_null(stk_json_get(v, "username", NULL));
	yajl_tree_free(v);
	notifctl_request_release(&rq);
}

static void test_providers__slack_chat_post_message(void **state)
{
	struct notifctl_provider p = prov("slack", "https://slack.com/api/chat.postMessage");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	stk_err err = STK_ERR_INIT;
	yajl_val v;
	(void)state;

	p.token = "xoxb-1";
	assert_int_equal(check_msg(&p, &err), STK_EINVAL); /* needs a channel */
	assert_non_null(strstr(err.message, "chat.postMessage"));
	p.channel = "C0123";
	p.token = NULL;
	assert_int_equal(check_msg(&p, &err), STK_EINVAL); /* needs the token */
	p.token = "xoxb-1";
	v = render_json(&p, &e, &rq);
	assert_string_equal(header(&rq, "Authorization"), "Bearer xoxb-1");
	assert_string_equal(stk_json_str(v, "channel", NULL), "C0123");
	assert_null(strstr(rq.body.ptr, "xoxb"));
	yajl_tree_free(v);
	notifctl_request_release(&rq);
}

static void test_providers__msteams_adaptive_card(void **state)
{
	struct notifctl_provider p = prov(
		"msteams", "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/"
			   "manual/paths/invoke?api-version=2016-06-01&sig=SECRET");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	yajl_val v, att, card, body, facts;
	(void)state;

	v = render_json(&p, &e, &rq);
	assert_string_equal(stk_json_str(v, "type", NULL), "message");
	att = at(stk_json_arr(v, "attachments", NULL), 0);
	assert_string_equal(stk_json_str(att, "contentType", NULL),
			    "application/vnd.microsoft.card.adaptive");
	card = stk_json_obj(att, "content", NULL);
	assert_string_equal(stk_json_str(card, "type", NULL), "AdaptiveCard");
	assert_string_equal(stk_json_str(card, "version", NULL), "1.4");
	assert_string_equal(stk_json_str(card, "$schema", NULL),
			    "http://adaptivecards.io/schemas/adaptive-card.json");
	body = stk_json_arr(card, "body", NULL);
	assert_string_equal(stk_json_str(at(body, 0), "type", NULL), "TextBlock");
	assert_string_equal(stk_json_str(at(body, 0), "text", NULL), "Stoker/site1/plant");
	assert_string_equal(stk_json_str(at(body, 1), "text", NULL), e.message);
	assert_string_equal(stk_json_str(at(body, 1), "color", NULL), "Attention");
	assert_string_equal(stk_json_str(at(body, 2), "type", NULL), "FactSet");
	facts = stk_json_arr(at(body, 2), "facts", NULL);
	assert_int_equal(facts->u.array.len, 6);
	assert_string_equal(stk_json_str(at(facts, 0), "title", NULL), "Reason");
	assert_string_equal(stk_json_str(at(facts, 0), "value", NULL), "SyncFailed");
	assert_string_equal(stk_json_str(at(facts, 2), "title", NULL), "site");
	assert_string_equal(stk_json_str(at(facts, 2), "value", NULL), "Site 1");
	assert_null(header(&rq, "Authorization"));
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	e = sample(false);
	v = render_json(&p, &e, &rq);
	body = stk_json_arr(at(stk_json_arr(v, "attachments", NULL), 0), "content", "body", NULL);
	assert_null(stk_json_get(at(body, 1), "color", NULL));
	yajl_tree_free(v);
	notifctl_request_release(&rq);
}

static void test_providers__msteams_legacy_connector(void **state)
{
	struct notifctl_provider p = prov(
		"msteams", "https://contoso.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	yajl_val v, sec;
	(void)state;

	v = render_json(&p, &e, &rq);
	assert_string_equal(stk_json_str(v, "@type", NULL), "MessageCard");
	assert_string_equal(stk_json_str(v, "@context", NULL), "http://schema.org/extensions");
	assert_string_equal(stk_json_str(v, "themeColor", NULL), "FF0000");
	assert_string_equal(stk_json_str(v, "summary", NULL), "Stoker/site1/plant: SyncFailed");
	sec = at(stk_json_arr(v, "sections", NULL), 0);
	assert_string_equal(stk_json_str(sec, "activityTitle", NULL), "Stoker/site1/plant");
	assert_string_equal(stk_json_str(sec, "text", NULL), e.message);
	assert_string_equal(stk_json_str(at(stk_json_arr(sec, "facts", NULL), 0), "name", NULL),
			    "Reason");
	yajl_tree_free(v);
	notifctl_request_release(&rq);
}

static void test_providers__discord_embed(void **state)
{
	static const char *const big_keys[] = {"a", "b", "c", "d", "e", "f"};
	const char *big_values[6];
	struct notifctl_provider p = prov("discord", "https://discord.com/api/webhooks/1/tok");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	stk_err err = STK_ERR_INIT;
	char *longmsg, *bigval;
	size_t total;
	yajl_val v, emb, fields;
	int64_t color = 0;
	(void)state;

	p.username = "Stoker";
	e.message = "@everyone sync failed";
	v = render_json(&p, &e, &rq);
	assert_string_equal(stk_json_str(v, "username", NULL), "Stoker");
	assert_int_equal(stk_json_arr(v, "allowed_mentions", "parse", NULL)->u.array.len, 0);
	assert_null(stk_json_get(v, "content", NULL));
	emb = at(stk_json_arr(v, "embeds", NULL), 0);
	assert_string_equal(stk_json_str(emb, "title", NULL), "Stoker/site1/plant");
	assert_string_equal(stk_json_str(emb, "description", NULL), e.message);
	assert_true(stk_json_int(emb, &color, "color", NULL));
	assert_int_equal(color, 0xED4245);
	assert_string_equal(stk_json_str(emb, "timestamp", NULL), "2026-11-22T10:30:05Z");
	assert_string_equal(stk_json_str(emb, "footer", "text", NULL), "stoker-agent");
	fields = stk_json_arr(emb, "fields", NULL);
	assert_int_equal(fields->u.array.len, 6);
	assert_string_equal(stk_json_str(at(fields, 0), "name", NULL), "Reason");
	assert_string_equal(stk_json_str(at(fields, 0), "value", NULL), "SyncFailed");
	assert_string_equal(stk_json_str(at(fields, 2), "name", NULL), "site");
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	/* Within Discord's limits: description 4096, value 1024, 6000 in all. */
	longmsg = stk_malloc(10001);
	memset(longmsg, 'x', 10000);
	longmsg[10000] = '\0';
	bigval = stk_malloc(3001);
	memset(bigval, 'y', 3000);
	bigval[3000] = '\0';
	for (size_t i = 0; i < 6; i++)
		big_values[i] = bigval;
	e.message = longmsg;
	e.meta_keys = big_keys;
	e.meta_values = big_values;
	e.nmeta = 6;
	v = render_json(&p, &e, &rq);
	emb = at(stk_json_arr(v, "embeds", NULL), 0);
	assert_int_equal(strlen(stk_json_str(emb, "description", NULL)), 4096);
	assert_non_null(strstr(stk_json_str(emb, "description", NULL), ELLIPSIS));
	total = strlen(stk_json_str(emb, "title", NULL)) + 4096 +
		strlen(stk_json_str(emb, "footer", "text", NULL));
	fields = stk_json_arr(emb, "fields", NULL);
	for (size_t i = 0; i < fields->u.array.len; i++) {
		size_t vl = strlen(stk_json_str(at(fields, i), "value", NULL));
		assert_true(vl >= 1 && vl <= 1024);
		total += strlen(stk_json_str(at(fields, i), "name", NULL)) + vl;
	}
	assert_true(total <= 6000);
	assert_true(fields->u.array.len >= 2); /* the reason and at least one value */
	yajl_tree_free(v);
	notifctl_request_release(&rq);
	free(longmsg);
	free(bigval);

	/* The Slack-compatible endpoint would not understand the native payload. */
	p.address = "https://discord.com/api/webhooks/1/tok/slack";
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
}

static void test_providers__googlechat_card(void **state)
{
	struct notifctl_provider p =
		prov("googlechat",
		     "https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token=SECRET");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	yajl_val v, card, sections, widgets;
	(void)state;

	e.message = "config.json <broken> & skipped";
	v = render_json(&p, &e, &rq);
	assert_string_equal(stk_json_str(v, "fallbackText", NULL),
			    "Stoker/site1/plant: SyncFailed");
	assert_string_equal(stk_json_str(at(stk_json_arr(v, "cardsV2", NULL), 0), "cardId", NULL),
			    "stoker-event");
	card = stk_json_obj(at(stk_json_arr(v, "cardsV2", NULL), 0), "card", NULL);
	assert_string_equal(stk_json_str(card, "header", "title", NULL), "Stoker/site1/plant");
	assert_string_equal(stk_json_str(card, "header", "subtitle", NULL), "SyncFailed");
	sections = stk_json_arr(card, "sections", NULL);
	assert_int_equal(sections->u.array.len, 2);
	assert_string_equal(
		stk_json_str(at(stk_json_arr(at(sections, 0), "widgets", NULL), 0), "textParagraph",
			     "text", NULL),
		"<font color=\"#d93025\">config.json &lt;broken&gt; &amp; skipped</font>");
	widgets = stk_json_arr(at(sections, 1), "widgets", NULL);
	assert_int_equal(widgets->u.array.len, 5);
	assert_string_equal(stk_json_str(at(widgets, 1), "decoratedText", "topLabel", NULL),
			    "site");
	assert_string_equal(stk_json_str(at(widgets, 1), "decoratedText", "text", NULL), "Site 1");
	assert_string_equal(header(&rq, "Content-Type"), "application/json; charset=utf-8");
	assert_string_equal(rq.url, p.address);
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	/* Info: plain text, and no empty metadata section. */
	e = sample(false);
	e.nmeta = 0;
	v = render_json(&p, &e, &rq);
	card = stk_json_obj(at(stk_json_arr(v, "cardsV2", NULL), 0), "card", NULL);
	sections = stk_json_arr(card, "sections", NULL);
	assert_int_equal(sections->u.array.len, 1);
	assert_string_equal(stk_json_str(at(stk_json_arr(at(sections, 0), "widgets", NULL), 0),
					 "textParagraph", "text", NULL),
			    e.message);
	yajl_tree_free(v);
	notifctl_request_release(&rq);
}

/* Renders a pagerduty event and returns its dedup_key (caller frees). */
static char *pd_key(const struct notifctl_provider *p, const struct notifctl_event *e,
		    const char *action)
{
	struct notifctl_request rq;
	yajl_val v = render_json(p, e, &rq);
	char *key;

	assert_string_equal(stk_json_str(v, "event_action", NULL), action);
	key = stk_strdup(stk_json_str(v, "dedup_key", NULL));
	assert_true(strlen(key) <= 255);
	yajl_tree_free(v);
	notifctl_request_release(&rq);
	return key;
}

static void test_providers__pagerduty_trigger_resolve(void **state)
{
	struct notifctl_provider p = prov("pagerduty", NULL);
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	char *trig, *res, *other, *k1, *k2, name[254], *longmsg;
	yajl_val v, pl;
	(void)state;

	p.token = "R0UTINGKEY0123456789012345678901";
	v = render_json(&p, &e, &rq);
	assert_string_equal(rq.url, "https://events.pagerduty.com/v2/enqueue");
	assert_string_equal(stk_json_str(v, "routing_key", NULL), p.token);
	assert_string_equal(stk_json_str(v, "event_action", NULL), "trigger");
	assert_string_equal(stk_json_str(v, "dedup_key", NULL),
			    "stoker/Stoker/site1/plant/area2-gateway-0");
	pl = stk_json_obj(v, "payload", NULL);
	assert_string_equal(stk_json_str(pl, "summary", NULL),
			    "Stoker/site1/plant: SyncFailed: Sync failed on gateway area2: "
			    "config.json is not JSON");
	assert_string_equal(stk_json_str(pl, "severity", NULL), "error");
	assert_string_equal(stk_json_str(pl, "source", NULL), "Stoker/site1/plant");
	assert_string_equal(stk_json_str(pl, "timestamp", NULL), "2026-11-22T10:30:05Z");
	assert_string_equal(stk_json_str(pl, "component", NULL), "stoker-agent");
	assert_string_equal(stk_json_str(pl, "group", NULL), "site1");
	assert_string_equal(stk_json_str(pl, "class", NULL), "SyncFailed");
	assert_string_equal(stk_json_str(pl, "custom_details", "message", NULL), e.message);
	assert_string_equal(stk_json_str(pl, "custom_details", "metadata", "site", NULL), "Site 1");
	assert_null(header(&rq, "Authorization"));
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	/* The same gateway's next success resolves the incident its failure opened. */
	trig = pd_key(&p, &e, "trigger");
	e = sample(false);
	res = pd_key(&p, &e, "resolve");
	assert_string_equal(trig, res);
	v = render_json(&p, &e, &rq);
	assert_string_equal(stk_json_str(v, "payload", "severity", NULL), "info");
	yajl_tree_free(v);
	notifctl_request_release(&rq);
	/* Another gateway's success does not. */
	e.reporting_instance = "area1-gateway-0";
	other = pd_key(&p, &e, "resolve");
	assert_string_not_equal(trig, other);
	free(other);
	/* A controller's events are keyed by the object alone: its pod name may change. */
	e = sample(true);
	e.reporting_controller = "sync-controller";
	e.reporting_instance = "sync-controller-7d9f-abcde";
	k1 = pd_key(&p, &e, "trigger");
	e = sample(false);
	e.reporting_controller = "sync-controller";
	e.reporting_instance = "sync-controller-7d9f-zzzzz";
	k2 = pd_key(&p, &e, "resolve");
	assert_string_equal(k1, k2);
	assert_string_equal(k1, "stoker/Stoker/site1/plant");
	free(k1);
	free(k2);
	free(trig);
	free(res);

	/* Names too long for PagerDuty's 255 characters: a stable hash. */
	memset(name, 'n', 253);
	name[253] = '\0';
	e = sample(true);
	e.name = name;
	k1 = pd_key(&p, &e, "trigger");
	k2 = pd_key(&p, &e, "trigger");
	assert_string_equal(k1, k2);
	assert_int_equal(strlen(k1), strlen("stoker/sha256:") + 64);
	assert_int_equal(strncmp(k1, "stoker/sha256:", 14), 0);
	free(k1);
	free(k2);

	/* The summary is the first 1024 characters. */
	longmsg = stk_malloc(5001);
	memset(longmsg, 'm', 5000);
	longmsg[5000] = '\0';
	e = sample(true);
	e.message = longmsg;
	v = render_json(&p, &e, &rq);
	assert_int_equal(strlen(stk_json_str(v, "payload", "summary", NULL)), 1024);
	assert_int_equal(strncmp(stk_json_str(v, "payload", "summary", NULL),
				 "Stoker/site1/plant: SyncFailed: mmm", 35),
			 0);
	yajl_tree_free(v);
	notifctl_request_release(&rq);
	free(longmsg);

	/* An explicit address is used as given. */
	p.address = "http://pd-proxy.local/v2/enqueue";
	e = sample(true);
	v = render_json(&p, &e, &rq);
	assert_string_equal(rq.url, "http://pd-proxy.local/v2/enqueue");
	yajl_tree_free(v);
	notifctl_request_release(&rq);
}

static void test_providers__alertmanager_labels(void **state)
{
	static const char *const keys[] = {"summary",	 "site-id",    "1st",	"name",
					   "plant.area", "plant_area", "empty", "severity"};
	static const char *const values[] = {"ProveIt site 1", "S1", "yes", "spoof", "A2", "B2", "",
					     "critical"};
	struct notifctl_provider p = prov("alertmanager", "http://alertmanager:9093/api/v2/alerts");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	yajl_val v, alert, labels;
	(void)state;

	p.basic_user = "am";
	p.basic_password = "pw";
	e.meta_keys = keys;
	e.meta_values = values;
	e.nmeta = 8;
	v = render_json(&p, &e, &rq);
	assert_true(YAJL_IS_ARRAY(v));
	assert_int_equal(v->u.array.len, 1);
	alert = at(v, 0);
	labels = stk_json_obj(alert, "labels", NULL);
	assert_string_equal(stk_json_str(labels, "alertname", NULL), "StokerSyncFailed");
	assert_string_equal(stk_json_str(labels, "severity", NULL), "error");
	assert_string_equal(stk_json_str(labels, "reason", NULL), "SyncFailed");
	assert_string_equal(stk_json_str(labels, "kind", NULL), "Stoker");
	assert_string_equal(stk_json_str(labels, "name", NULL), "plant"); /* not "spoof" */
	assert_string_equal(stk_json_str(labels, "namespace", NULL), "site1");
	assert_string_equal(stk_json_str(labels, "site_id", NULL), "S1");
	assert_string_equal(stk_json_str(labels, "_1st", NULL), "yes");
	assert_string_equal(stk_json_str(labels, "plant_area", NULL), "A2"); /* first one wins */
	assert_null(stk_json_get(labels, "summary", NULL));
	assert_null(stk_json_get(labels, "empty", NULL));
	assert_int_equal(labels->u.object.len, 9);
	for (size_t i = 0; i < labels->u.object.len; i++) {
		const char *k = labels->u.object.keys[i];
		assert_true(k[0] == '_' || (k[0] >= 'a' && k[0] <= 'z') ||
			    (k[0] >= 'A' && k[0] <= 'Z'));
		assert_int_equal(strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					   "0123456789_"),
				 strlen(k));
	}
	assert_string_equal(stk_json_str(alert, "annotations", "message", NULL), e.message);
	assert_string_equal(stk_json_str(alert, "annotations", "summary", NULL), "ProveIt site 1");
	assert_string_equal(stk_json_str(alert, "startsAt", NULL), "2026-11-22T10:30:05Z");
	assert_string_equal(header(&rq, "Authorization"), "Basic YW06cHc="); /* base64("am:pw") */
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	/* Without a summary in the metadata, the object and reason; bearer auth. */
	p.basic_user = p.basic_password = NULL;
	p.token = "am-token";
	e = sample(false);
	e.nmeta = 0;
	v = render_json(&p, &e, &rq);
	assert_string_equal(stk_json_str(at(v, 0), "annotations", "summary", NULL),
			    "Stoker/site1/plant: SyncCompleted");
	assert_string_equal(stk_json_str(at(v, 0), "labels", "severity", NULL), "info");
	assert_string_equal(header(&rq, "Authorization"), "Bearer am-token");
	yajl_tree_free(v);
	notifctl_request_release(&rq);
}

static void test_providers__headers_yaml_and_json(void **state)
{
	struct notifctl_provider p = prov("generic", "https://hooks.example.com/x");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	yajl_val v;
	(void)state;

	p.token = "t0ken";
	p.headers = "X-Team: plant-ops\nX-Priority: 5\nX-Flag: true\nAuthorization: Token abc\n";
	v = render_json(&p, &e, &rq);
	assert_string_equal(header(&rq, "X-Team"), "plant-ops");
	assert_string_equal(header(&rq, "X-Priority"), "5");
	assert_string_equal(header(&rq, "X-Flag"), "true");
	/* A header from the Secret replaces the default of the same name. */
	assert_string_equal(header(&rq, "authorization"), "Token abc");
	assert_int_equal(rq.nheaders, 5);
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	p.token = NULL;
	p.headers =
		"{\"X-Team\": \"plant-ops\", \"content-type\": \"application/cloudevents+json\"}";
	v = render_json(&p, &e, &rq);
	assert_string_equal(header(&rq, "X-Team"), "plant-ops");
	assert_string_equal(header(&rq, "Content-Type"), "application/cloudevents+json");
	assert_int_equal(rq.nheaders, 2);
	yajl_tree_free(v);
	notifctl_request_release(&rq);

	/* Empty means none. */
	p.headers = "";
	v = render_json(&p, &e, &rq);
	assert_int_equal(rq.nheaders, 1);
	yajl_tree_free(v);
	notifctl_request_release(&rq);
}

static void test_providers__headers_rejected(void **state)
{
	static const struct {
		const char *type, *headers, *says;
	} bad[] = {
		{"generic", "X-A: \"ok\\r\\nInjected: 1\"", "line break"},
		{"generic", "{\"X-A\": \"ok\\nInjected: 1\"}", "line break"},
		{"generic", "{\"X-A\": \"bell\\u0007byte\"}", "control character"},
		{"generic", "Content-Length: 5", "Content-Length cannot be set"},
		{"slack", "host: evil.example", "Host cannot be set"},
		{"generic", "Transfer-Encoding: chunked", "Transfer-Encoding"},
		{"generic-hmac", "X-Signature: sha256=00", "X-Signature"},
		{"generic", "\"X A\": b", "not a valid header name"},
		{"generic", "\"X:A\": b", "not a valid header name"},
		{"generic", "- a\n- b", "not a map"},
		{"generic", "X-A: {b: c}", "not a string"},
		{"generic", "X-A:", "not a string"},
		{"generic", "X-A: a\nx-a: b", "given twice"},
	};
	struct notifctl_provider p;
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	stk_err err = STK_ERR_INIT;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = prov(bad[i].type, "https://hooks.example.com/x");
		p.token = "k";
		p.headers = bad[i].headers;
		assert_int_equal(check_msg(&p, &err), STK_EINVAL);
		if (!strstr(err.message, bad[i].says))
			print_error("case %zu: \"%s\"\n", i, err.message);
		assert_non_null(strstr(err.message, bad[i].says));
		assert_null(strstr(err.message, "Injected")); /* values are never quoted */
		memset(&rq, 0, sizeof(rq));
		assert_int_equal(notifctl_render(&p, &e, &rq, &err), STK_EINVAL);
		assert_null(rq.url);
	}
	p = prov("generic", "https://hooks.example.com/x");
	p.headers = "X-A: [unclosed";
	assert_int_equal(check_msg(&p, &err), STK_EPARSE);
	assert_non_null(strstr(err.message, "Secret key headers"));
}

static void test_providers__check_errors(void **state)
{
	struct notifctl_provider p;
	stk_err err = STK_ERR_INIT;
	(void)state;

	p = prov("slack", NULL);
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "address is required"));
	p.address = "";
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);

	p.address = "ftp://hooks.slack.com/services/SECRET";
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "http or https"));
	assert_null(strstr(err.message, "SECRET"));
	p.address = "hooks.slack.com/services/SECRET";
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
	assert_null(strstr(err.message, "SECRET"));
	p.address = "https://hooks.slack.com/services/has space SECRET";
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
	assert_null(strstr(err.message, "SECRET"));
	p.address = "https://hooks.slack.com/services/T/B/X";
	assert_int_equal(check_msg(&p, &err), 0);
	p.address = "HTTP://hooks.slack.com/services/T/B/X";
	assert_int_equal(check_msg(&p, &err), 0);

	p = prov("generic-hmac", "https://hooks.example.com/x");
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "token"));
	p.token = "key with\nnewline is fine for HMAC";
	assert_int_equal(check_msg(&p, &err), 0);

	p = prov("pagerduty", NULL);
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "routing key"));
	p.token = "R0UTINGKEY0123456789012345678901\n";
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "line break"));
	assert_null(strstr(err.message, "R0UTING"));
	p.token = "R0UTINGKEY0123456789012345678901";
	assert_int_equal(check_msg(&p, &err), 0); /* the default address */

	p = prov("alertmanager", "http://am:9093/api/v2/alerts");
	p.basic_user = "am";
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "both are needed"));
	p.basic_password = "pw";
	assert_int_equal(check_msg(&p, &err), 0);
	p.basic_user = "a:m";
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
	p.basic_user = "am";
	p.token = "t";
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);

	p = prov("telegram", "https://api.telegram.org/x");
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
	assert_non_null(strstr(err.message, "unknown provider type \"telegram\""));
	p.type = NULL;
	assert_int_equal(check_msg(&p, &err), STK_EINVAL);
}

static void test_providers__message_cut_and_body_cap(void **state)
{
	struct notifctl_provider p = prov("generic", "https://hooks.example.com/x");
	struct notifctl_event e = sample(true);
	struct notifctl_request rq;
	stk_err err = STK_ERR_INIT;
	const char *msg;
	char *longmsg = stk_malloc(40001), *huge;
	const char *hk[1] = {"blob"};
	const char *hv[1];
	yajl_val v;
	(void)state;

	/* 20000 × "é": the cut never splits a character. */
	for (size_t i = 0; i < 40000; i += 2)
		memcpy(longmsg + i, "\xc3\xa9", 2);
	longmsg[40000] = '\0';
	e.message = longmsg;
	v = render_json(&p, &e, &rq);
	msg = stk_json_str(v, "message", NULL);
	assert_true(strlen(msg) <= NOTIFCTL_MESSAGE_MAX);
	assert_int_equal(strlen(msg), 32764 + 3);
	assert_string_equal(msg + 32764, ELLIPSIS);
	yajl_tree_free(v);
	notifctl_request_release(&rq);
	free(longmsg);

	/* Metadata that makes the body exceed 1 MiB. */
	huge = stk_malloc(NOTIFCTL_BODY_MAX + 1);
	memset(huge, 'h', NOTIFCTL_BODY_MAX);
	huge[NOTIFCTL_BODY_MAX] = '\0';
	hv[0] = huge;
	e = sample(true);
	e.meta_keys = hk;
	e.meta_values = hv;
	e.nmeta = 1;
	memset(&rq, 0, sizeof(rq));
	assert_int_equal(notifctl_render(&p, &e, &rq, &err), STK_ETOOBIG);
	assert_non_null(strstr(err.message, "larger than"));
	assert_null(rq.url);
	assert_null(rq.body.ptr);
	assert_int_equal(rq.nheaders, 0);
	p = prov("alertmanager", "http://am:9093/api/v2/alerts");
	assert_int_equal(notifctl_render(&p, &e, &rq, &err), STK_ETOOBIG);
	p = prov("pagerduty", NULL);
	p.token = "R0UTINGKEY0123456789012345678901";
	assert_int_equal(notifctl_render(&p, &e, &rq, &err), STK_ETOOBIG);
	free(huge);

	/* Events the renderer cannot describe. */
	e = sample(true);
	e.kind = NULL;
	assert_int_equal(notifctl_render(&p, &e, &rq, &err), STK_EINVAL);
	e = sample(true);
	e.severity = "Warning";
	assert_int_equal(notifctl_render(&p, &e, &rq, &err), STK_EINVAL);
	notifctl_request_release(&rq);
	notifctl_request_release(NULL);
}

/* Every type: the token and password appear only where the service needs them. */
static void test_providers__secrets_stay_in_place(void **state)
{
	static const char *const types[] = {"generic", "generic-hmac", "slack",	    "msteams",
					    "discord", "googlechat",   "pagerduty", "alertmanager"};
	struct notifctl_event e = sample(true);
	(void)state;

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		struct notifctl_provider p = prov(types[t], "https://hooks.example.com/hook");
		struct notifctl_request rq;
		bool pd = !strcmp(types[t], "pagerduty");
		size_t found = 0;
		yajl_val v;

		p.token = "TOKEN-SECRET-0123456789abcdef01";
		if (!strcmp(types[t], "generic-hmac")) {
			p.basic_user = "user";
			p.basic_password = "PASSWORD-SECRET";
		}
		v = render_json(&p, &e, &rq);
		assert_null(strstr(rq.url, "SECRET"));
		if (pd)
			assert_string_equal(stk_json_str(v, "routing_key", NULL), p.token);
		/* Only pagerduty's routing_key carries it in the body. */
		for (const char *s = rq.body.ptr; (s = strstr(s, "SECRET")); s++)
			found++;
		assert_int_equal(found, pd ? 1 : 0);
		for (size_t i = 0; i < rq.nheaders; i++) {
			bool bearer = !strcmp(types[t], "generic") || !strcmp(types[t], "slack") ||
				      !strcmp(types[t], "alertmanager");
			if (strstr(rq.headers[i], "SECRET"))
				assert_true(bearer &&
					    !strncmp(rq.headers[i], "Authorization: Bearer ", 22));
		}
		yajl_tree_free(v);
		notifctl_request_release(&rq);
		notifctl_request_release(&rq); /* twice is harmless */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_providers__generic_contract_shape),
		cmocka_unit_test(test_providers__generic_auth_headers),
		cmocka_unit_test(test_providers__generic_hmac_signature),
		cmocka_unit_test(test_providers__slack_attachment),
		cmocka_unit_test(test_providers__slack_chat_post_message),
		cmocka_unit_test(test_providers__msteams_adaptive_card),
		cmocka_unit_test(test_providers__msteams_legacy_connector),
		cmocka_unit_test(test_providers__discord_embed),
		cmocka_unit_test(test_providers__googlechat_card),
		cmocka_unit_test(test_providers__pagerduty_trigger_resolve),
		cmocka_unit_test(test_providers__alertmanager_labels),
		cmocka_unit_test(test_providers__headers_yaml_and_json),
		cmocka_unit_test(test_providers__headers_rejected),
		cmocka_unit_test(test_providers__check_errors),
		cmocka_unit_test(test_providers__message_cut_and_body_cap),
		cmocka_unit_test(test_providers__secrets_stay_in_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
