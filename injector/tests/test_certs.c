/*
 * Self-managed webhook TLS: the generated CA and serving certificate, read back and checked
 * with OpenSSL the way the API server's TLS client will use them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"

static const char *const names[] = {
	"stoker-injector.stoker-system.svc",
	"stoker-injector.stoker-system.svc.cluster.local",
	"127.0.0.1",
	"::1",
	"10.96.0.12",
	"fd00::1:2",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* The generated material, parsed back. */
struct parsed {
	struct injector_certs pem;
	X509 *ca;
	X509 *leaf;
	EVP_PKEY *key;
};

static X509 *read_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	assert_non_null(x);
	return x;
}

static void generate(struct parsed *p, const char *const *list, size_t n)
{
	stk_err err = STK_ERR_INIT;
	BIO *b;

	memset(p, 0, sizeof(*p));
	if (injector_certs_generate(&p->pem, list, n, 0, &err) != 0)
		fail_msg("injector_certs_generate: %s", err.message);
	p->ca = read_cert(p->pem.ca_pem);
	p->leaf = read_cert(p->pem.cert_pem);
	b = BIO_new_mem_buf(p->pem.key_pem, -1);
	p->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(p->key);
}

static void parsed_release(struct parsed *p)
{
	X509_free(p->ca);
	X509_free(p->leaf);
	EVP_PKEY_free(p->key);
	injector_certs_release(&p->pem);
	assert_null(p->pem.ca_pem);
	assert_null(p->pem.cert_pem);
	assert_null(p->pem.key_pem);
}

/* X509_verify_cert of `leaf` against only `ca`, for the SSL server purpose. */
static int verify(X509 *ca, X509 *leaf, const char *host, const char *ip)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int ok, error;

	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER), 1);
	param = X509_STORE_CTX_get0_param(ctx);
	if (host)
		assert_int_equal(X509_VERIFY_PARAM_set1_host(param, host, 0), 1);
	if (ip)
		assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(param, ip), 1);
	ok = X509_verify_cert(ctx);
	error = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok == 1 ? X509_V_OK : (error != X509_V_OK ? error : -1);
}

static bool common_name_is(X509 *x, const char *want)
{
	char cn[256];

	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) < 0)
		return false;
	return strcmp(cn, want) == 0;
}

static bool is_p256(EVP_PKEY *k)
{
	char group[64];
	size_t len = 0;

	return EVP_PKEY_is_a(k, "EC") &&
	       EVP_PKEY_get_group_name(k, group, sizeof(group), &len) == 1 &&
	       strcmp(group, "prime256v1") == 0;
}

/* Whole days and seconds from `now` to `t`. */
static void days_from(const ASN1_TIME *t, time_t now, int *days, int *secs)
{
	ASN1_TIME *n = ASN1_TIME_set(NULL, now);

	assert_int_equal(ASN1_TIME_diff(days, secs, n, t), 1);
	ASN1_TIME_free(n);
}

static void test_certs__serving_cert_verifies_against_the_ca(void **state)
{
	struct parsed p;
	(void)state;

	generate(&p, names, NNAMES);
	assert_int_equal(verify(p.ca, p.leaf, NULL, NULL), X509_V_OK);
	assert_int_equal(verify(p.ca, p.leaf, "stoker-injector.stoker-system.svc", NULL),
			 X509_V_OK);
	assert_int_equal(verify(p.ca, p.leaf, NULL, "::1"), X509_V_OK);
	/* A name that was not asked for does not verify. */
	assert_int_equal(verify(p.ca, p.leaf, "evil.example.com", NULL),
			 X509_V_ERR_HOSTNAME_MISMATCH);
	assert_int_equal(verify(p.ca, p.leaf, NULL, "127.0.0.2"), X509_V_ERR_IP_ADDRESS_MISMATCH);
	/* The serving certificate cannot act as a CA itself. */
	assert_int_equal(X509_check_ca(p.leaf), 0);
	parsed_release(&p);
}

static void test_certs__other_ca_does_not_verify(void **state)
{
	struct parsed a, b;
	(void)state;

	generate(&a, names, NNAMES);
	generate(&b, names, NNAMES);
	assert_int_not_equal(verify(b.ca, a.leaf, NULL, NULL), X509_V_OK);
	parsed_release(&a);
	parsed_release(&b);
}

static void test_certs__ca_profile(void **state)
{
	time_t now = time(NULL);
	int days, secs, crit = -1;
	BASIC_CONSTRAINTS *bc;
	struct parsed p;
	(void)state;

	generate(&p, names, NNAMES);
	assert_true(common_name_is(p.ca, "stoker-injector-ca"));
	assert_true(is_p256(X509_get0_pubkey(p.ca)));
	bc = X509_get_ext_d2i(p.ca, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_true(bc->ca);
	assert_int_equal(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_check_ca(p.ca) >= 1);
	assert_int_equal(X509_get_key_usage(p.ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	/* Self-signed. */
	assert_int_equal(X509_check_issued(p.ca, p.ca), X509_V_OK);
	/* 10 years, from an hour ago. */
	days_from(X509_get0_notBefore(p.ca), now, &days, &secs);
	assert_int_equal(days, 0);
	assert_in_range(-secs, 3600 - 60, 3600 + 60);
	days_from(X509_get0_notAfter(p.ca), now, &days, &secs);
	assert_in_range(days, 3650 - 1, 3653);
	parsed_release(&p);
}

static void test_certs__serving_cert_profile(void **state)
{
	time_t now = time(NULL);
	const ASN1_INTEGER *serial;
	BIGNUM *bn;
	int days, secs;
	struct parsed p;
	(void)state;

	generate(&p, names, NNAMES);
	assert_true(common_name_is(p.leaf, names[0]));
	assert_true(is_p256(X509_get0_pubkey(p.leaf)));
	assert_true(is_p256(p.key));
	assert_int_equal(X509_check_issued(p.ca, p.leaf), X509_V_OK);
	assert_int_equal(X509_get_key_usage(p.leaf), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(p.leaf), XKU_SSL_SERVER);
	assert_int_equal(X509_check_purpose(p.leaf, X509_PURPOSE_SSL_SERVER, 0), 1);
	/* One year, from an hour ago. */
	days_from(X509_get0_notBefore(p.leaf), now, &days, &secs);
	assert_int_equal(days, 0);
	assert_in_range(-secs, 3600 - 60, 3600 + 60);
	days_from(X509_get0_notAfter(p.leaf), now, &days, &secs);
	assert_in_range(days, 364, 365);
	/* A random serial of (up to) 128 bits: positive, and short of 64 bits only by chance
	 * of 2^-64. */
	serial = X509_get0_serialNumber(p.leaf);
	bn = ASN1_INTEGER_to_BN(serial, NULL);
	assert_non_null(bn);
	assert_false(BN_is_negative(bn));
	assert_in_range(BN_num_bits(bn), 65, 128);
	BN_free(bn);
	parsed_release(&p);
}

static void test_certs__sans_list_every_name(void **state)
{
	GENERAL_NAMES *gens;
	struct parsed p;
	int crit = -1;
	(void)state;

	generate(&p, names, NNAMES);
	gens = X509_get_ext_d2i(p.leaf, NID_subject_alt_name, &crit, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), NNAMES);
	for (size_t i = 0; i < NNAMES; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, (int)i);
		unsigned char want[16];
		int type;
		const ASN1_STRING *v = GENERAL_NAME_get0_value(g, &type);

		if (inet_pton(AF_INET, names[i], want) == 1) {
			assert_int_equal(type, GEN_IPADD);
			assert_int_equal(ASN1_STRING_length(v), 4);
			assert_memory_equal(ASN1_STRING_get0_data(v), want, 4);
		} else if (inet_pton(AF_INET6, names[i], want) == 1) {
			assert_int_equal(type, GEN_IPADD);
			assert_int_equal(ASN1_STRING_length(v), 16);
			assert_memory_equal(ASN1_STRING_get0_data(v), want, 16);
		} else {
			assert_int_equal(type, GEN_DNS);
			assert_int_equal(ASN1_STRING_length(v), (int)strlen(names[i]));
			assert_memory_equal(ASN1_STRING_get0_data(v), names[i], strlen(names[i]));
		}
	}
	GENERAL_NAMES_free(gens);

	/* What a TLS client checks. */
	assert_int_equal(X509_check_host(p.leaf, "stoker-injector.stoker-system.svc", 0, 0, NULL),
			 1);
	assert_int_equal(X509_check_ip_asc(p.leaf, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(p.leaf, "::1", 0), 1);
	assert_int_equal(X509_check_ip_asc(p.leaf, "fd00:0:0:0:0:0:1:2", 0), 1);
	/* An IP address is not a DNS name, and the other way round. */
	assert_int_equal(X509_check_host(p.leaf, "127.0.0.1", 0, 0, NULL), 0);
	assert_int_equal(X509_check_host(p.leaf, "stoker-injector", 0, 0, NULL), 0);
	parsed_release(&p);
}

static void test_certs__long_first_name_falls_back_to_a_short_cn(void **state)
{
	char longname[128];
	const char *list[2];
	struct parsed p;
	(void)state;

	/* 3 labels of 40 characters: a fine DNS name, too long for a CN. */
	memset(longname, 'a', sizeof(longname));
	longname[40] = '.';
	longname[81] = '.';
	longname[122] = '\0';
	list[0] = longname;
	list[1] = "127.0.0.1";
	generate(&p, list, 2);
	assert_true(common_name_is(p.leaf, "stoker-injector"));
	assert_int_equal(X509_check_host(p.leaf, longname, 0, 0, NULL), 1);
	parsed_release(&p);
}

static void test_certs__private_key_matches_the_certificate(void **state)
{
	struct parsed p;
	(void)state;

	generate(&p, names, NNAMES);
	assert_int_equal(X509_check_private_key(p.leaf, p.key), 1);
	assert_int_equal(X509_check_private_key(p.ca, p.key), 0);
	ERR_clear_error();
	/* And the key is plain PKCS#8 PEM, as the HTTP server and cert-manager write it. */
	assert_non_null(strstr(p.pem.key_pem, "-----BEGIN PRIVATE KEY-----"));
	parsed_release(&p);
}

/* A TLS handshake in memory: a client trusting only the CA, for `name`, against the pair. */
static bool handshake(const struct parsed *p, const char *name)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	X509_VERIFY_PARAM *param;
	SSL *s, *c;
	BIO *sb, *cb;
	bool sdone = false, cdone = false, failed = false;
	unsigned char ip[16];

	assert_int_equal(SSL_CTX_use_certificate(sctx, p->leaf), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(sctx, p->key), 1);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), p->ca), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	s = SSL_new(sctx);
	c = SSL_new(cctx);
	param = SSL_get0_param(c);
	if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1)
		assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(param, name), 1);
	else
		assert_int_equal(SSL_set1_host(c, name), 1);
	assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (int i = 0; i < 100 && !failed && !(sdone && cdone); i++) {
		int r;

		if (!cdone) {
			r = SSL_do_handshake(c);
			cdone = r == 1;
			failed = r != 1 && SSL_get_error(c, r) != SSL_ERROR_WANT_READ &&
				 SSL_get_error(c, r) != SSL_ERROR_WANT_WRITE;
		}
		if (!sdone && !failed) {
			r = SSL_do_handshake(s);
			sdone = r == 1;
			failed = r != 1 && SSL_get_error(s, r) != SSL_ERROR_WANT_READ &&
				 SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE;
		}
	}
	failed = failed || !(sdone && cdone) || SSL_get_verify_result(c) != X509_V_OK;
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	ERR_clear_error();
	return !failed;
}

static void test_certs__tls_client_trusting_the_ca_accepts_each_name(void **state)
{
	struct parsed p;
	(void)state;

	generate(&p, names, NNAMES);
	for (size_t i = 0; i < NNAMES; i++)
		assert_true(handshake(&p, names[i]));
	assert_false(handshake(&p, "stoker-injector.default.svc"));
	assert_false(handshake(&p, "127.0.0.53"));
	parsed_release(&p);
}

static void test_certs__each_generation_is_new(void **state)
{
	struct parsed a, b;
	(void)state;

	generate(&a, names, NNAMES);
	generate(&b, names, NNAMES);
	assert_int_not_equal(
		ASN1_INTEGER_cmp(X509_get0_serialNumber(a.leaf), X509_get0_serialNumber(b.leaf)),
		0);
	assert_int_not_equal(
		ASN1_INTEGER_cmp(X509_get0_serialNumber(a.ca), X509_get0_serialNumber(b.ca)), 0);
	assert_int_not_equal(EVP_PKEY_eq(a.key, b.key), 1);
	assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(a.ca), X509_get0_pubkey(b.ca)), 1);
	assert_string_not_equal(a.pem.key_pem, b.pem.key_pem);
	parsed_release(&a);
	parsed_release(&b);
}

/* Refused with STK_EINVAL, *out untouched, and a message containing `fragment`. */
static void expect_refused(const char *const *list, size_t n, const char *fragment)
{
	struct injector_certs out = {NULL, NULL, NULL};
	stk_err err = STK_ERR_INIT;

	assert_int_equal(injector_certs_generate(&out, list, n, 0, &err), STK_EINVAL);
	assert_int_equal(err.code, STK_EINVAL);
	if (!strstr(err.message, fragment))
		fail_msg("message \"%s\" lacks \"%s\"", err.message, fragment);
	assert_null(out.ca_pem);
	assert_null(out.cert_pem);
	assert_null(out.key_pem);
}

static void test_certs__bad_names_are_refused(void **state)
{
	const char *space[] = {"stoker-injector.svc", "bad name"};
	const char *empty[] = {"stoker-injector.svc", ""};
	const char *null[] = {NULL};
	const char *bad_ip[] = {"1.2.3.999"};
	const char *bad_v6[] = {"fd00::1::2"};
	const char *dots[] = {"a..b"};
	const char *hyphen[] = {"-a.svc"};
	const char *under[] = {"a_b.svc"};
	const char *ctrl[] = {"a\nb"};
	char label[80], huge[300];
	const char *long_label[] = {label};
	const char *too_long[] = {huge};
	(void)state;

	expect_refused(names, 0, "no names");
	expect_refused(NULL, 0, "no names");
	expect_refused(space, 2,
		       "name 2 \"bad name\" is neither an IP address nor a DNS name: "
		       "a space is not allowed");
	expect_refused(empty, 2, "name 2 is empty");
	expect_refused(null, 1, "name 1 is empty");
	expect_refused(bad_ip, 1, "numeric");
	expect_refused(bad_v6, 1, "not a valid IPv6 address");
	expect_refused(dots, 1, "empty label");
	expect_refused(hyphen, 1, "starts with '-'");
	expect_refused(under, 1, "'_' is not allowed");
	/* Control characters are not echoed into the one-line message. */
	expect_refused(ctrl, 1, "\"a?b\"");
	memset(label, 'x', sizeof(label));
	label[70] = '\0';
	expect_refused(long_label, 1, "longer than 63");
	memset(huge, 'a', sizeof(huge));
	for (size_t i = 50; i < sizeof(huge); i += 50)
		huge[i] = '.';
	huge[sizeof(huge) - 1] = '\0';
	expect_refused(too_long, 1, "longer than 253");
}

static void test_certs__wildcard_and_single_label_names_are_accepted(void **state)
{
	const char *list[] = {"localhost", "*.stoker-system.svc"};
	struct parsed p;
	(void)state;

	generate(&p, list, 2);
	assert_int_equal(X509_check_host(p.leaf, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(p.leaf, "webhook.stoker-system.svc", 0, 0, NULL), 1);
	parsed_release(&p);
}

/* A chosen validity applies to the serving certificate only; the CA keeps 10 years. */
static void test_certs__serving_validity_is_chosen(void **state)
{
	static const char *const one[] = {"injector.stoker-system.svc"};
	struct injector_certs pem = {NULL, NULL, NULL};
	stk_err err = STK_ERR_INIT;
	time_t now = time(NULL);
	int days, secs;
	X509 *ca, *leaf;
	(void)state;

	assert_int_equal(injector_certs_generate(&pem, one, 1, 90, &err), 0);
	ca = read_cert(pem.ca_pem);
	leaf = read_cert(pem.cert_pem);
	days_from(X509_get0_notAfter(leaf), now, &days, &secs);
	assert_int_equal(days, 0);
	assert_in_range(secs, 90 - 5, 90 + 5);
	days_from(X509_get0_notAfter(ca), now, &days, &secs);
	assert_in_range(days, 3650 - 1, 3653);
	X509_free(ca);
	X509_free(leaf);
	injector_certs_release(&pem);
}

static void test_certs__ca_bundle_decodes_to_the_ca_pem(void **state)
{
	struct injector_certs empty = {NULL, NULL, NULL};
	unsigned char *decoded;
	size_t blen, plen, pad = 0;
	struct parsed p;
	char *bundle;
	int n;
	(void)state;

	generate(&p, names, NNAMES);
	bundle = injector_certs_ca_bundle(&p.pem);
	assert_non_null(bundle);
	blen = strlen(bundle);
	assert_null(strchr(bundle, '\n'));
	assert_int_equal(blen % 4, 0);
	decoded = malloc(blen);
	n = EVP_DecodeBlock(decoded, (const unsigned char *)bundle, (int)blen);
	assert_true(n > 0);
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	while (pad < 2 && bundle[blen - 1 - pad] == '=')
		pad++;
	plen = (size_t)n - pad;
	assert_int_equal(plen, strlen(p.pem.ca_pem));
	assert_memory_equal(decoded, p.pem.ca_pem, plen);
	free(decoded);
	free(bundle);
	assert_null(injector_certs_ca_bundle(&empty));
	assert_null(injector_certs_ca_bundle(NULL));
	parsed_release(&p);
}

static void test_certs__release_is_null_safe_and_repeatable(void **state)
{
	struct injector_certs c = {NULL, NULL, NULL};
	(void)state;

	injector_certs_release(NULL);
	injector_certs_release(&c);
	injector_certs_release(&c);
	assert_null(c.key_pem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_certs__serving_cert_verifies_against_the_ca),
		cmocka_unit_test(test_certs__other_ca_does_not_verify),
		cmocka_unit_test(test_certs__ca_profile),
		cmocka_unit_test(test_certs__serving_cert_profile),
		cmocka_unit_test(test_certs__sans_list_every_name),
		cmocka_unit_test(test_certs__long_first_name_falls_back_to_a_short_cn),
		cmocka_unit_test(test_certs__private_key_matches_the_certificate),
		cmocka_unit_test(test_certs__tls_client_trusting_the_ca_accepts_each_name),
		cmocka_unit_test(test_certs__each_generation_is_new),
		cmocka_unit_test(test_certs__bad_names_are_refused),
		cmocka_unit_test(test_certs__wildcard_and_single_label_names_are_accepted),
		cmocka_unit_test(test_certs__serving_validity_is_chosen),
		cmocka_unit_test(test_certs__ca_bundle_decodes_to_the_ca_pem),
		cmocka_unit_test(test_certs__release_is_null_safe_and_repeatable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
