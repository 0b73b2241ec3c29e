/*
 * The receiver's pure parts: the signature and bearer check, the per-client token
 * buckets, the path. The HTTP endpoint against an API server is covered end to end
 * (docs/receiver.md says what the e2e tests hold it to).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/hmac.h>

#include "receiver.h"

/* GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!". */
#define GH_KEY	"It's a Secret to Everybody"
#define GH_BODY "Hello, World!"
#define GH_SIG	"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

static void hmac_header(const char *key, const char *body, size_t len, char out[80])
{
	unsigned char mac[32];
	unsigned int n = 0;

	assert_non_null(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body, len,
			     mac, &n));
	assert_int_equal(n, 32);
	memcpy(out, "sha256=", 7);
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
}

static bool sig(const char *key, const char *body, const char *h_sig, const char *h_auth)
{
	return notifctl_sig_ok(key, key ? strlen(key) : 0, body, strlen(body), h_sig, h_auth);
}

/* --- signatures ----------------------------------------------------------------------- */

static void test_receiver__hmac_matches_github_example(void **state)
{
	char upper[80];

	(void)state;
	assert_true(sig(GH_KEY, GH_BODY, GH_SIG, NULL));
	/* Hex digits in either case. */
	snprintf(upper, sizeof(upper), "sha256=%s",
		 "757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17");
	assert_true(sig(GH_KEY, GH_BODY, upper, NULL));
}

static void test_receiver__hmac_rejects_any_change(void **state)
{
	char h[80], bad[80];
	const char *body = "{\"ref\":\"refs/heads/main\"}";

	(void)state;
	hmac_header("k3y", body, strlen(body), h);
	assert_true(sig("k3y", body, h, NULL));
	/* Another key, another body, one flipped digit, a missing or truncated digest. */
	assert_false(sig("k3y!", body, h, NULL));
	assert_false(sig("k3y", "{\"ref\":\"refs/heads/mainx\"}", h, NULL));
	memcpy(bad, h, sizeof(bad));
	bad[20] = bad[20] == '0' ? '1' : '0';
	assert_false(sig("k3y", body, bad, NULL));
	bad[20] = h[20];
	bad[strlen(bad) - 1] = '\0';
	assert_false(sig("k3y", body, bad, NULL));
	assert_false(sig("k3y", body, NULL, NULL));
	assert_false(sig("k3y", body, "", NULL));
	/* Another algorithm's prefix, or garbage in the digest. */
	memcpy(bad, h, sizeof(bad));
	memcpy(bad, "sha1=", 5);
	assert_false(sig("k3y", body, bad, NULL));
	memcpy(bad, h, sizeof(bad));
	bad[10] = 'g';
	assert_false(sig("k3y", body, bad, NULL));
	/* The all-zero digest a malformed header decodes to never passes. */
	assert_false(sig("k3y", body,
			 "sha256=0000000000000000000000000000000000000000000000000000000000000000",
			 NULL));
	/* The HMAC covers the raw bytes, NULs included. */
	hmac_header("k", "a\0b", 3, h);
	assert_true(notifctl_sig_ok("k", 1, "a\0b", 3, h, NULL));
	assert_false(notifctl_sig_ok("k", 1, "a\0c", 3, h, NULL));
}

static void test_receiver__bearer(void **state)
{
	(void)state;
	assert_true(sig("t0ken", "{}", NULL, "Bearer t0ken"));
	assert_true(sig("t0ken", "{}", NULL, "bearer   t0ken  "));
	assert_true(sig("t0ken", "{}", NULL, "BEARER\tt0ken"));
	assert_false(sig("t0ken", "{}", NULL, "Bearer t0ke"));
	assert_false(sig("t0ken", "{}", NULL, "Bearer t0kenn"));
	assert_false(sig("t0ken", "{}", NULL, "Bearer"));
	assert_false(sig("t0ken", "{}", NULL, "Bearer "));
	assert_false(sig("t0ken", "{}", NULL, "Bearert0ken"));
	assert_false(sig("t0ken", "{}", NULL, "Basic dDBrZW4="));
	assert_false(sig("t0ken", "{}", NULL, "t0ken"));
	/* Either proof suffices; a wrong one beside a right one does not spoil it. */
	assert_true(sig(GH_KEY, GH_BODY, "sha256=00", "Bearer " GH_KEY));
	assert_true(sig(GH_KEY, GH_BODY, GH_SIG, "Bearer wrong"));
}

static void test_receiver__no_key_never_passes(void **state)
{
	char h[80];

	(void)state;
	/* Whatever is presented, including proofs made with an empty key. */
	hmac_header("", GH_BODY, strlen(GH_BODY), h);
	assert_false(notifctl_sig_ok(NULL, 0, GH_BODY, strlen(GH_BODY), h, "Bearer "));
	assert_false(notifctl_sig_ok("", 0, GH_BODY, strlen(GH_BODY), h, "Bearer x"));
	assert_false(notifctl_sig_ok(NULL, 0, GH_BODY, strlen(GH_BODY), GH_SIG, NULL));
	assert_false(notifctl_sig_ok(NULL, 0, NULL, 0, NULL, NULL));
	/* A key with a NUL inside is compared over its whole length. */
	assert_false(notifctl_sig_ok("ab\0cd", 5, "{}", 2, NULL, "Bearer ab"));
}

/* --- token buckets ------------------------------------------------------------------- */

static struct notifctl_buckets *buckets(double rate, unsigned burst, size_t max)
{
	struct notifctl_buckets *b = NULL;
	stk_err err = STK_ERR_INIT;

	assert_int_equal(notifctl_buckets_new(&b, rate, burst, max, &err), 0);
	return b;
}

static void test_receiver__bucket_burst_then_rate(void **state)
{
	struct notifctl_buckets *b = buckets(10, 20, 16);
	uint64_t wait = 0;
	int i;

	(void)state;
	for (i = 0; i < 20; i++)
		assert_true(notifctl_bucket_take(b, "192.0.2.1", 1000, &wait));
	assert_false(notifctl_bucket_take(b, "192.0.2.1", 1000, &wait));
	assert_int_equal(wait, 100); /* one token per 100 ms at 10/s */
	/* Another client has its own bucket. */
	assert_true(notifctl_bucket_take(b, "192.0.2.2", 1000, &wait));
	/* 50 ms later: half a token, still no; the wait shrinks. */
	assert_false(notifctl_bucket_take(b, "192.0.2.1", 1050, &wait));
	assert_int_equal(wait, 50);
	assert_true(notifctl_bucket_take(b, "192.0.2.1", 1100, &wait));
	assert_false(notifctl_bucket_take(b, "192.0.2.1", 1100, &wait));
	/* Sustained: exactly one per 100 ms. */
	for (i = 1; i <= 50; i++) {
		assert_true(notifctl_bucket_take(b, "192.0.2.1", 1100 + 100 * (uint64_t)i, &wait));
		assert_false(notifctl_bucket_take(b, "192.0.2.1", 1100 + 100 * (uint64_t)i, &wait));
	}
	/* A long pause refills to the burst, not beyond. */
	for (i = 0; i < 20; i++)
		assert_true(notifctl_bucket_take(b, "192.0.2.1", 3600000, &wait));
	assert_false(notifctl_bucket_take(b, "192.0.2.1", 3600000, &wait));
	/* A clock that does not move forward adds nothing. */
	assert_false(notifctl_bucket_take(b, "192.0.2.1", 1000, &wait));
	notifctl_buckets_free(b);
}

static void test_receiver__bucket_slow_rate_retry_after(void **state)
{
	struct notifctl_buckets *b = buckets(0.5, 1, 4);
	uint64_t wait = 0;

	(void)state;
	assert_true(notifctl_bucket_take(b, "198.51.100.7", 0, &wait));
	assert_false(notifctl_bucket_take(b, "198.51.100.7", 0, &wait));
	assert_int_equal(wait, 2000);
	assert_false(notifctl_bucket_take(b, "198.51.100.7", 1999, NULL));
	notifctl_buckets_free(b);
}

static void test_receiver__bucket_ipv6_per_64(void **state)
{
	struct notifctl_buckets *b = buckets(1, 2, 16);

	(void)state;
	assert_true(notifctl_bucket_take(b, "2001:db8:1:2::1", 0, NULL));
	assert_true(notifctl_bucket_take(b, "2001:db8:1:2:ffff:ffff:ffff:ffff", 0, NULL));
	/* Same /64: the same bucket, now empty. */
	assert_false(notifctl_bucket_take(b, "2001:db8:1:2:aaaa::9", 0, NULL));
	/* The neighbouring /64 is someone else. */
	assert_true(notifctl_bucket_take(b, "2001:db8:1:3::1", 0, NULL));
	/* An IPv4-mapped address is its IPv4 client. */
	assert_true(notifctl_bucket_take(b, "203.0.113.5", 0, NULL));
	assert_true(notifctl_bucket_take(b, "::ffff:203.0.113.5", 0, NULL));
	assert_false(notifctl_bucket_take(b, "203.0.113.5", 0, NULL));
	assert_int_equal(notifctl_buckets_len(b), 3);
	notifctl_buckets_free(b);
}

static void test_receiver__bucket_table_is_bounded(void **state)
{
	struct notifctl_buckets *b = buckets(1, 1, 8);
	char ip[32];
	int i;

	(void)state;
	assert_true(notifctl_bucket_take(b, "10.0.0.1", 0, NULL));
	assert_false(notifctl_bucket_take(b, "10.0.0.1", 0, NULL));
	/* Seven more clients fill the table; 10.0.0.1 is touched again, so it stays. */
	for (i = 2; i <= 8; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%d", i);
		assert_true(notifctl_bucket_take(b, ip, 0, NULL));
	}
	assert_false(notifctl_bucket_take(b, "10.0.0.1", 0, NULL));
	assert_int_equal(notifctl_buckets_len(b), 8);
	/* Many more: the table stays at 8, the least recently seen go first. */
	for (i = 9; i <= 1000; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		assert_true(notifctl_bucket_take(b, ip, 0, NULL));
		assert_int_equal(notifctl_buckets_len(b), 8);
	}
	/* 10.0.0.1 was forgotten: a full bucket again. */
	assert_true(notifctl_bucket_take(b, "10.0.0.1", 0, NULL));
	/* The most recent client is still remembered (empty). */
	assert_false(notifctl_bucket_take(b, "10.0.3.232", 0, NULL));
	notifctl_buckets_free(b);
}

static void test_receiver__bucket_options(void **state)
{
	struct notifctl_buckets *b = NULL;
	stk_err err = STK_ERR_INIT;

	(void)state;
	assert_int_equal(notifctl_buckets_new(&b, 0, 1, 1, &err), STK_EINVAL);
	assert_int_equal(notifctl_buckets_new(&b, -1, 1, 1, &err), STK_EINVAL);
	assert_int_equal(notifctl_buckets_new(&b, INFINITY, 1, 1, &err), STK_EINVAL);
	assert_int_equal(notifctl_buckets_new(&b, NAN, 1, 1, &err), STK_EINVAL);
	assert_int_equal(notifctl_buckets_new(&b, 1, 0, 1, &err), STK_EINVAL);
	assert_int_equal(notifctl_buckets_new(&b, 1, 1, 0, &err), STK_EINVAL);
	assert_null(b);
	notifctl_buckets_free(NULL);
}

/* --- the path ------------------------------------------------------------------------ */

static void test_receiver__path(void **state)
{
	char ns[NOTIFCTL_NS_MAX + 1], name[NOTIFCTL_NAME_MAX + 1], big[400];

	(void)state;
	assert_true(notifctl_webhook_path("site1/plant", ns, name));
	assert_string_equal(ns, "site1");
	assert_string_equal(name, "plant");
	assert_true(notifctl_webhook_path("a/plant.line-3", ns, name));
	assert_string_equal(name, "plant.line-3");

	snprintf(ns, sizeof(ns), "keep");
	assert_false(notifctl_webhook_path("site1/plant/", ns, name));
	assert_string_equal(ns, "keep");
	assert_false(notifctl_webhook_path("site1/plant/extra", ns, name));
	assert_false(notifctl_webhook_path("site1", ns, name));
	assert_false(notifctl_webhook_path("site1/", ns, name));
	assert_false(notifctl_webhook_path("/plant", ns, name));
	assert_false(notifctl_webhook_path("", ns, name));
	assert_false(notifctl_webhook_path(NULL, ns, name));
	assert_false(notifctl_webhook_path("Site1/plant", ns, name));
	assert_false(notifctl_webhook_path("site1/Plant", ns, name));
	assert_false(notifctl_webhook_path("-site/plant", ns, name));
	assert_false(notifctl_webhook_path("site-/plant", ns, name));
	assert_false(notifctl_webhook_path("site.1/plant", ns, name)); /* a label, no dots */
	assert_false(notifctl_webhook_path("site1/plant..x", ns, name));
	assert_false(notifctl_webhook_path("site1/.plant", ns, name));
	assert_false(notifctl_webhook_path("site1/plant.", ns, name));
	assert_false(notifctl_webhook_path("site1/pl_ant", ns, name));
	assert_false(notifctl_webhook_path("site1/..", ns, name));
	assert_false(notifctl_webhook_path("site1/pl%2fant", ns, name));

	/* Lengths: 63 for the namespace, 253 for the name. */
	memset(big, 'a', 63);
	big[63] = '/';
	memset(big + 64, 'b', 253);
	big[64 + 253] = '\0';
	assert_true(notifctl_webhook_path(big, ns, name));
	assert_int_equal(strlen(ns), 63);
	assert_int_equal(strlen(name), 253);
	big[64 + 253] = 'b';
	big[64 + 254] = '\0';
	assert_false(notifctl_webhook_path(big, ns, name));
	memset(big, 'a', 64);
	big[64] = '/';
	memcpy(big + 65, "plant", 6);
	assert_false(notifctl_webhook_path(big, ns, name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_receiver__hmac_matches_github_example),
		cmocka_unit_test(test_receiver__hmac_rejects_any_change),
		cmocka_unit_test(test_receiver__bearer),
		cmocka_unit_test(test_receiver__no_key_never_passes),
		cmocka_unit_test(test_receiver__bucket_burst_then_rate),
		cmocka_unit_test(test_receiver__bucket_slow_rate_retry_after),
		cmocka_unit_test(test_receiver__bucket_ipv6_per_64),
		cmocka_unit_test(test_receiver__bucket_table_is_bounded),
		cmocka_unit_test(test_receiver__bucket_options),
		cmocka_unit_test(test_receiver__path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
