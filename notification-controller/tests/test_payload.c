/* Webhook payloads: which ref each kind of sender asks for, and which refs are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "payload.h"
#include "stk/limits.h"

struct got {
	int rc;
	char ref[NOTIFCTL_REF_MAX + 1];
	const char *source;
	stk_err err;
};

static struct got parse_h(const char *body, const char *github_event, const char *gitlab_event)
{
	struct got g;

	memset(&g, 0, sizeof(g));
	g.source = NULL;
	g.rc = notifctl_payload_ref(body, strlen(body), github_event, gitlab_event, g.ref,
				    sizeof(g.ref), &g.source, &g.err);
	return g;
}

static struct got parse(const char *body)
{
	return parse_h(body, NULL, NULL);
}

static void expect_ref(const char *body, const char *github_event, const char *gitlab_event,
		       const char *ref, const char *source)
{
	struct got g = parse_h(body, github_event, gitlab_event);

	if (g.rc)
		fail_msg("%s: %s", body, g.err.message);
	assert_string_equal(g.ref, ref);
	assert_non_null(g.source);
	assert_string_equal(g.source, source);
}

/* Refused with `code`, and the message contains `needle`. */
static void expect_error(const char *body, int code, const char *needle)
{
	struct got g = parse(body);

	assert_int_equal(g.rc, code);
	assert_int_equal(g.err.code, code);
	if (!strstr(g.err.message, needle))
		fail_msg("message \"%s\" lacks \"%s\"", g.err.message, needle);
	assert_null(g.source);
	assert_string_equal(g.ref, "");
}

/* --- one realistic payload per sender ------------------------------------------------ */

static const char GITHUB_PUSH[] =
	"{\"ref\":\"refs/heads/release\","
	"\"before\":\"6113728f27ae82c7b1a177c8d03f9e96e0adf246\","
	"\"after\":\"2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa\","
	"\"repository\":{\"id\":1296269,\"name\":\"plant-config\",\"full_name\":"
	"\"acme/plant-config\",\"private\":true,\"default_branch\":\"main\"},"
	"\"pusher\":{\"name\":\"octocat\",\"email\":\"octocat@github.com\"},"
	"\"sender\":{\"login\":\"octocat\",\"id\":1},"
	"\"created\":false,\"deleted\":false,\"forced\":false,\"base_ref\":null,"
	"\"compare\":\"https://github.com/acme/plant-config/compare/6113728f27ae...2c6a0646d007\","
	"\"commits\":[{\"id\":\"2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa\",\"message\":"
	"\"Update tags\",\"timestamp\":\"2026-11-22T10:30:05Z\",\"added\":[],\"removed\":[],"
	"\"modified\":[\"projects/area1/tags.json\"]}],"
	"\"head_commit\":{\"id\":\"2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa\"}}";

static const char GITHUB_TAG_PUSH[] =
	"{\"ref\":\"refs/tags/v2.1.0\",\"before\":\"0000000000000000000000000000000000000000\","
	"\"after\":\"2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa\",\"created\":true,"
	"\"deleted\":false,\"base_ref\":\"refs/heads/main\",\"repository\":{\"name\":\"x\"}}";

static const char GITHUB_RELEASE[] =
	"{\"action\":\"published\",\"release\":{\"url\":"
	"\"https://api.github.com/repos/acme/plant-config/releases/1\",\"id\":1,"
	"\"tag_name\":\"v2.0.0\",\"target_commitish\":\"main\",\"name\":\"2.0.0\","
	"\"draft\":false,\"prerelease\":false,\"created_at\":\"2026-11-22T10:00:00Z\","
	"\"published_at\":\"2026-11-22T10:30:00Z\",\"assets\":[],\"body\":\"Line 3 tags\"},"
	"\"repository\":{\"id\":1296269,\"full_name\":\"acme/plant-config\"},"
	"\"sender\":{\"login\":\"octocat\"}}";

static const char GITLAB_PUSH[] =
	"{\"object_kind\":\"push\",\"event_name\":\"push\","
	"\"before\":\"95790bf891e76fee5e1747ab589903a6a1f80f22\","
	"\"after\":\"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\",\"ref\":\"refs/heads/master\","
	"\"ref_protected\":true,\"checkout_sha\":\"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\","
	"\"user_id\":4,\"user_name\":\"John Smith\",\"project_id\":15,"
	"\"project\":{\"id\":15,\"name\":\"Diaspora\",\"path_with_namespace\":\"mike/diaspora\","
	"\"default_branch\":\"master\"},\"commits\":[{\"id\":"
	"\"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\",\"message\":\"fixed readme\","
	"\"added\":[\"CHANGELOG\"],\"modified\":[\"app/controller/application.rb\"],"
	"\"removed\":[]}],\"total_commits_count\":1}";

static const char GITLAB_TAG_PUSH[] =
	"{\"object_kind\":\"tag_push\",\"event_name\":\"tag_push\","
	"\"before\":\"0000000000000000000000000000000000000000\","
	"\"after\":\"82b3d5ae55f7080f1e6022629cdb57bfae7cccc7\",\"ref\":\"refs/tags/v1.0.0\","
	"\"ref_protected\":true,\"checkout_sha\":\"82b3d5ae55f7080f1e6022629cdb57bfae7cccc7\","
	"\"user_id\":1,\"user_name\":\"John Smith\",\"project_id\":1,"
	"\"project\":{\"id\":1,\"name\":\"Example\"},\"commits\":[],\"total_commits_count\":0}";

static const char ARGOCD_NOTIFICATION[] =
	"{\"app\":{\"metadata\":{\"name\":\"plant-line3\",\"namespace\":\"argocd\","
	"\"annotations\":{\"git.ref\":\"release/2026.11\",\"notifications.argoproj.io/"
	"subscribe.on-sync-succeeded.stoker\":\"\"}},\"spec\":{\"source\":{\"repoURL\":"
	"\"https://github.com/acme/plant-config\",\"targetRevision\":\"release/2026.11\"}},"
	"\"status\":{\"sync\":{\"status\":\"Synced\",\"revision\":"
	"\"2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa\"},\"health\":{\"status\":\"Healthy\"}}},"
	"\"context\":{\"argocdUrl\":\"https://argocd.example.com\"}}";

static const char KARGO_PROMOTION[] =
	"{\"project\":\"plant\",\"stage\":\"production\",\"promotion\":\"production.01jd9\","
	"\"freight\":{\"name\":\"f6d2b3a9c1e0\",\"alias\":\"wistful-otter\",\"commits\":["
	"{\"repoURL\":\"https://github.com/acme/plant-config\",\"id\":"
	"\"2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa\",\"tag\":\"v1.4.0\",\"message\":"
	"\"Line 3 tags\"},{\"repoURL\":\"https://github.com/acme/other\",\"tag\":\"v9\"}]}}";

static void test_payload__github_push(void **state)
{
	(void)state;
	expect_ref(GITHUB_PUSH, "push", NULL, "release", "github");
	expect_ref(GITHUB_TAG_PUSH, "push", NULL, "v2.1.0", "github");
	/* Without the header too (Gitea and Forgejo send theirs, proxies may drop them). */
	expect_ref(GITHUB_PUSH, NULL, NULL, "release", "github");
}

static void test_payload__github_release(void **state)
{
	(void)state;
	expect_ref(GITHUB_RELEASE, "release", NULL, "v2.0.0", "github");
}

static void test_payload__gitlab_push(void **state)
{
	(void)state;
	expect_ref(GITLAB_PUSH, NULL, "Push Hook", "master", "gitlab");
	/* object_kind alone says GitLab. */
	expect_ref(GITLAB_PUSH, NULL, NULL, "master", "gitlab");
	/* The header alone too (a prefixed ref without object_kind). */
	expect_ref("{\"ref\":\"refs/heads/dev\"}", NULL, "Push Hook", "dev", "gitlab");
	/* object_kind with a ref lacking the refs/ prefix: taken as it is. */
	expect_ref("{\"object_kind\":\"push\",\"ref\":\"main\"}", NULL, NULL, "main", "gitlab");
}

static void test_payload__gitlab_tag_push(void **state)
{
	(void)state;
	expect_ref(GITLAB_TAG_PUSH, NULL, "Tag Push Hook", "v1.0.0", "gitlab");
}

static void test_payload__argocd_notification(void **state)
{
	(void)state;
	expect_ref(ARGOCD_NOTIFICATION, NULL, NULL, "release/2026.11", "argocd");
}

static void test_payload__kargo_promotion(void **state)
{
	(void)state;
	expect_ref(KARGO_PROMOTION, NULL, NULL, "v1.4.0", "kargo");
}

static void test_payload__generic(void **state)
{
	(void)state;
	expect_ref("{\"ref\":\"main\"}", NULL, NULL, "main", "generic");
	expect_ref("{\"ref\":\"2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa\",\"by\":\"ci\"}", NULL,
		   NULL, "2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa", "generic");
	/* A full ref other than a branch or tag is kept whole. */
	expect_ref("{\"ref\":\"refs/pull/12/head\"}", NULL, NULL, "refs/pull/12/head", "generic");
	/* A GitHub "create" event has a bare ref: the generic rule takes it. */
	expect_ref("{\"ref\":\"v3.0.0\",\"ref_type\":\"tag\",\"master_branch\":\"main\"}", "create",
		   NULL, "v3.0.0", "generic");
}

/* --- precedence: the first present rule wins ----------------------------------------- */

static void test_payload__precedence(void **state)
{
	(void)state;
	/* 1 over 2..6 */
	expect_ref("{\"ref\":\"refs/heads/a\",\"object_kind\":\"push\",\"release\":{\"tag_name\":"
		   "\"v1\"},\"app\":{\"metadata\":{\"annotations\":{\"git.ref\":\"b\"}}},"
		   "\"freight\":{\"commits\":[{\"tag\":\"c\"}]}}",
		   NULL, NULL, "v1", "github");
	/* 2 over 4, 5 */
	expect_ref("{\"ref\":\"refs/tags/t\",\"app\":{\"metadata\":{\"annotations\":{\"git.ref\":"
		   "\"b\"}}},\"freight\":{\"commits\":[{\"tag\":\"c\"}]}}",
		   NULL, NULL, "t", "github");
	/* 3 over 4, 5 */
	expect_ref("{\"object_kind\":\"tag_push\",\"ref\":\"x\",\"app\":{\"metadata\":"
		   "{\"annotations\":{\"git.ref\":\"b\"}}}}",
		   NULL, NULL, "x", "gitlab");
	/* 4 over 5 and 6 */
	expect_ref("{\"ref\":\"g\",\"app\":{\"metadata\":{\"annotations\":{\"git.ref\":\"b\"}}},"
		   "\"freight\":{\"commits\":[{\"tag\":\"c\"}]}}",
		   NULL, NULL, "b", "argocd");
	/* 5 over 6 */
	expect_ref("{\"ref\":\"g\",\"freight\":{\"commits\":[{\"tag\":\"c\"}]}}", NULL, NULL, "c",
		   "kargo");
	/* An object_kind that is not a push does not make a bare ref GitLab's. */
	expect_ref("{\"object_kind\":\"merge_request\",\"ref\":\"g\"}", NULL, NULL, "g", "generic");
}

static void test_payload__members_of_other_types_do_not_match(void **state)
{
	(void)state;
	/* A rule is present only when its member is a string. */
	expect_ref("{\"release\":{\"tag_name\":7},\"ref\":\"g\"}", NULL, NULL, "g", "generic");
	expect_ref("{\"app\":{\"metadata\":{\"annotations\":{\"git.ref\":null}}},\"ref\":\"g\"}",
		   NULL, NULL, "g", "generic");
	expect_ref("{\"freight\":{\"commits\":[]},\"ref\":\"g\"}", NULL, NULL, "g", "generic");
	expect_ref("{\"freight\":{\"commits\":{\"tag\":\"x\"}},\"ref\":\"g\"}", NULL, NULL, "g",
		   "generic");
	expect_error("{\"ref\":5}", STK_EINVAL, "no ref found in the payload");
	expect_error("{\"ref\":[\"main\"]}", STK_EINVAL, "no ref found in the payload");
	expect_error("{\"tag\":\"v1\"}", STK_EINVAL, "no ref found in the payload");
	expect_error("{}", STK_EINVAL, "no ref found in the payload");
}

/* An invalid value of the first present rule is an error, not a reason to look further. */
static void test_payload__invalid_first_match_is_an_error(void **state)
{
	(void)state;
	expect_error("{\"release\":{\"tag_name\":\"v1..2\"},\"ref\":\"main\"}", STK_EINVAL,
		     "contains '..'");
	expect_error("{\"ref\":\"refs/heads/\"}", STK_EINVAL, "ref is empty");
	expect_error("{\"app\":{\"metadata\":{\"annotations\":{\"git.ref\":\"\"}}},\"ref\":\"m\"}",
		     STK_EINVAL, "ref is empty");
}

/* --- what is refused on purpose ------------------------------------------------------ */

static void test_payload__deleting_push_is_refused(void **state)
{
	struct got g;

	(void)state;
	expect_error("{\"ref\":\"refs/heads/feature\",\"after\":"
		     "\"0000000000000000000000000000000000000000\",\"deleted\":true}",
		     STK_EINVAL, "deletes");
	/* GitLab says it with the null object id only. */
	expect_error("{\"object_kind\":\"push\",\"ref\":\"refs/heads/feature\",\"after\":"
		     "\"0000000000000000000000000000000000000000\",\"checkout_sha\":null}",
		     STK_EINVAL, "deletes 'refs/heads/feature'");
	expect_error("{\"ref\":\"refs/tags/v1\",\"deleted\":true}", STK_EINVAL, "deletes");
	/* A created ref has the null id before, not after. */
	g = parse(GITHUB_TAG_PUSH);
	assert_int_equal(g.rc, 0);
	/* GitHub delete and ping events, and a deleted release. */
	g = parse_h("{\"ref\":\"feature\",\"ref_type\":\"branch\"}", "delete", NULL);
	assert_int_equal(g.rc, STK_EINVAL);
	assert_non_null(strstr(g.err.message, "delete event"));
	g = parse_h("{\"zen\":\"Design for failure.\",\"hook_id\":1}", "ping", NULL);
	assert_int_equal(g.rc, STK_EINVAL);
	assert_non_null(strstr(g.err.message, "ping"));
	expect_error("{\"action\":\"deleted\",\"release\":{\"tag_name\":\"v2.0.0\"}}", STK_EINVAL,
		     "release of tag 'v2.0.0' was deleted");
}

/* --- malformed input ----------------------------------------------------------------- */

static void test_payload__malformed_json(void **state)
{
	(void)state;
	expect_error("{\"ref\":\"main\"", STK_EPARSE, "payload: invalid JSON");
	expect_error("{\"ref\":\"main\"}}", STK_EPARSE, "invalid JSON");
	expect_error("", STK_EPARSE, "invalid JSON");
	expect_error("ref=main", STK_EPARSE, "invalid JSON");
	expect_error("{\"ref\":\"ma\xff\"}", STK_EPARSE, "invalid JSON");
}

static void test_payload__non_object_root(void **state)
{
	(void)state;
	expect_error("[{\"ref\":\"main\"}]", STK_EINVAL, "must be a JSON object");
	expect_error("\"main\"", STK_EINVAL, "must be a JSON object");
	expect_error("42", STK_EINVAL, "must be a JSON object");
	expect_error("null", STK_EINVAL, "must be a JSON object");
}

static void test_payload__escaped_nul_is_refused(void **state)
{
	(void)state;
	/* yajl keeps C strings: "ma\u0000in" would become "ma" silently. */
	expect_error("{\"ref\":\"ma\\u0000in\"}", STK_EPARSE, "NUL");
	/* An escaped backslash before u0000 is not an escape of NUL. */
	expect_ref("{\"ref\":\"main\",\"m\":\"\\\\u0000\"}", NULL, NULL, "main", "generic");
	/* A raw NUL byte is malformed JSON. */
	{
		static const char raw[] = "{\"ref\":\"ma\0in\"}";
		struct got g;
		memset(&g, 0, sizeof(g));
		g.rc = notifctl_payload_ref(raw, sizeof(raw) - 1, NULL, NULL, g.ref, sizeof(g.ref),
					    &g.source, &g.err);
		assert_int_equal(g.rc, STK_EPARSE);
	}
}

static void test_payload__deep_nesting_is_refused(void **state)
{
	size_t n = 100000, i;
	char *s = malloc(2 * n + 32);
	struct got g;

	(void)state;
	assert_non_null(s);
	/* 64 levels (the root included) are fine, 65 are not. */
	memcpy(s, "{\"ref\":\"main\",\"x\":", 18);
	for (i = 0; i < 63; i++)
		s[18 + i] = '[';
	for (i = 0; i < 63; i++)
		s[18 + 63 + i] = ']';
	memcpy(s + 18 + 126, "}", 2);
	g = parse(s);
	assert_int_equal(g.rc, 0);
	memcpy(s, "{\"ref\":\"main\",\"x\":", 18);
	for (i = 0; i < 64; i++)
		s[18 + i] = '[';
	for (i = 0; i < 64; i++)
		s[18 + 64 + i] = ']';
	memcpy(s + 18 + 128, "}", 2);
	g = parse(s);
	assert_int_equal(g.rc, STK_EPARSE);
	assert_non_null(strstr(g.err.message, "deeper than 64"));
	/* Brackets inside strings do not count. */
	memcpy(s, "{\"ref\":\"main\",\"x\":\"", 19);
	memset(s + 19, '[', n);
	memcpy(s + 19 + n, "\"}", 3);
	g = parse(s);
	assert_int_equal(g.rc, 0);
	/* The megabyte of '[' that would overflow yajl's recursive free. */
	memset(s, '[', n);
	memset(s + n, ']', n);
	s[2 * n] = '\0';
	g = parse(s);
	assert_int_equal(g.rc, STK_EPARSE);
	free(s);
}

static void test_payload__size_cap(void **state)
{
	size_t n = STK_LIMIT_HTTP_BODY + 1;
	char *s = malloc(n + 1);
	struct got g;

	(void)state;
	assert_non_null(s);
	memset(s, ' ', n);
	memcpy(s, "{\"ref\":\"main\"}", 14);
	s[n] = '\0';
	g = parse(s);
	assert_int_equal(g.rc, STK_ETOOBIG);
	/* Exactly the cap is accepted (trailing blanks are valid JSON). */
	s[n - 1] = '\0';
	g = parse(s);
	assert_int_equal(g.rc, 0);
	assert_string_equal(g.ref, "main");
	free(s);
}

static void test_payload__outputs_untouched_on_error(void **state)
{
	char ref[NOTIFCTL_REF_MAX + 1] = "sentinel", small[16];
	const char *source = "unchanged";
	stk_err err = STK_ERR_INIT;
	const char *body = "{\"ref\":\"a b\"}";

	(void)state;
	assert_int_equal(notifctl_payload_ref(body, strlen(body), NULL, NULL, ref, sizeof(ref),
					      &source, &err),
			 STK_EINVAL);
	assert_string_equal(ref, "sentinel");
	assert_string_equal(source, "unchanged");
	/* A buffer that could not hold the longest ref is refused up front. */
	body = "{\"ref\":\"main\"}";
	assert_int_equal(notifctl_payload_ref(body, strlen(body), NULL, NULL, small, sizeof(small),
					      &source, &err),
			 STK_EINVAL);
	assert_string_equal(source, "unchanged");
}

/* --- ref validity, rule by rule ------------------------------------------------------ */

static void expect_bad_ref(const char *ref, size_t len, const char *needle)
{
	stk_err err = STK_ERR_INIT;
	char body[1024];
	struct got g;

	assert_int_equal(notifctl_ref_check(ref, len, &err), STK_EINVAL);
	if (!strstr(err.message, needle))
		fail_msg("ref \"%s\": message \"%s\" lacks \"%s\"", ref, err.message, needle);
	/* The same through a payload, when the ref can travel in JSON as it is. */
	if (len == strlen(ref) && !strpbrk(ref, "\"\\") && len < 900) {
		int ok = 1;
		for (size_t i = 0; i < len; i++)
			ok = ok && (unsigned char)ref[i] >= 0x20 && (unsigned char)ref[i] < 0x80;
		if (ok) {
			snprintf(body, sizeof(body), "{\"ref\":\"%s\"}", ref);
			g = parse(body);
			assert_int_equal(g.rc, STK_EINVAL);
			assert_non_null(strstr(g.err.message, needle));
		}
	}
}

static void expect_good_ref(const char *ref)
{
	stk_err err = STK_ERR_INIT;

	if (notifctl_ref_check(ref, strlen(ref), &err) != 0)
		fail_msg("ref \"%s\" refused: %s", ref, err.message);
}

static void test_payload__ref_rules(void **state)
{
	char long_ref[NOTIFCTL_REF_MAX + 2];

	(void)state;
	expect_bad_ref("", 0, "ref is empty");
	memset(long_ref, 'a', sizeof(long_ref) - 1);
	long_ref[sizeof(long_ref) - 1] = '\0';
	expect_bad_ref(long_ref, NOTIFCTL_REF_MAX + 1, "longer than 255 bytes");
	long_ref[NOTIFCTL_REF_MAX] = '\0';
	expect_good_ref(long_ref);

	expect_bad_ref("ma\tin", 5, "control character");
	expect_bad_ref("ma\nin", 5, "control character");
	expect_bad_ref("ma\x7fin", 5, "control character");
	expect_bad_ref("ma in", 5, "contains a space");
	expect_bad_ref("v1~1", 4, "contains '~'");
	expect_bad_ref("v1^{}", 5, "contains '^'");
	expect_bad_ref("a:b", 3, "contains ':'");
	expect_bad_ref("a?b", 3, "contains '?'");
	expect_bad_ref("a*", 2, "contains '*'");
	expect_bad_ref("a[1]", 4, "contains '['");
	expect_bad_ref("a\\b", 3, "contains '\\'");
	expect_bad_ref("a..b", 4, "contains '..'");
	expect_bad_ref("../../etc/passwd", 16, "contains '..'");
	expect_bad_ref("main@{1}", 8, "contains '@{'");
	expect_bad_ref("@", 1, "not a valid ref name");
	expect_bad_ref("-main", 5, "starts with '-'");
	expect_bad_ref("--upload-pack=x", 15, "starts with '-'");
	expect_bad_ref("/main", 5, "starts with '/'");
	expect_bad_ref("main/", 5, "ends with '/'");
	expect_bad_ref("feature//x", 10, "contains '//'");
	expect_bad_ref(".hidden", 7, "component starting with '.'");
	expect_bad_ref("feature/.x", 10, "component starting with '.'");
	expect_bad_ref("main.lock", 9, "ending with '.lock'");
	expect_bad_ref("a.lock/b", 8, "ending with '.lock'");
	expect_bad_ref("main.", 5, "ends with '.'");
	expect_bad_ref("f\xc3(x", 5, "not valid UTF-8");
	expect_bad_ref("ma\0in", 5, "control character");

	expect_good_ref("main");
	expect_good_ref("feature/line-3_tags");
	expect_good_ref("v2.0.0");
	expect_good_ref("release/2026.11");
	expect_good_ref("2c6a0646d007574bbb6d7a3ef0c7d4ce9badfafa");
	expect_good_ref("a@b");
	expect_good_ref("@x");
	expect_good_ref("lock");
	expect_good_ref("x.locked");
	expect_good_ref("a.lock.b");
	expect_good_ref("caf\xc3\xa9");
	expect_good_ref("x-");
}

static void test_payload__message_quotes_ref_safely(void **state)
{
	char ref[200];
	stk_err err = STK_ERR_INIT;

	(void)state;
	memset(ref, 'a', sizeof(ref));
	memcpy(ref + 2, "\x1b[31m", 5);
	memcpy(ref + 150, "..", 2);
	assert_int_equal(notifctl_ref_check(ref, sizeof(ref), &err), STK_EINVAL);
	/* The escape byte shows as '?', the quote is cut at 64 bytes with "...". */
	assert_non_null(strstr(err.message, "ref 'aa?[31m"));
	assert_non_null(strstr(err.message, "...' contains a control character"));
	assert_null(strchr(err.message, '\x1b'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload__github_push),
		cmocka_unit_test(test_payload__github_release),
		cmocka_unit_test(test_payload__gitlab_push),
		cmocka_unit_test(test_payload__gitlab_tag_push),
		cmocka_unit_test(test_payload__argocd_notification),
		cmocka_unit_test(test_payload__kargo_promotion),
		cmocka_unit_test(test_payload__generic),
		cmocka_unit_test(test_payload__precedence),
		cmocka_unit_test(test_payload__members_of_other_types_do_not_match),
		cmocka_unit_test(test_payload__invalid_first_match_is_an_error),
		cmocka_unit_test(test_payload__deleting_push_is_refused),
		cmocka_unit_test(test_payload__malformed_json),
		cmocka_unit_test(test_payload__non_object_root),
		cmocka_unit_test(test_payload__escaped_nul_is_refused),
		cmocka_unit_test(test_payload__deep_nesting_is_refused),
		cmocka_unit_test(test_payload__size_cap),
		cmocka_unit_test(test_payload__outputs_untouched_on_error),
		cmocka_unit_test(test_payload__ref_rules),
		cmocka_unit_test(test_payload__message_quotes_ref_safely),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
