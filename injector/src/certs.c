#include "certs.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "stk/alloc.h"
#include "stk/base64.h"

#define CERTS_CA_CN	   "stoker-injector-ca"
#define CERTS_FALLBACK_CN  "stoker-injector"
#define CERTS_CA_DAYS	   3650 /* 10 years */
#define CERTS_SERVING_S	   (365L * 24 * 3600)
#define CERTS_SKEW_S	   3600 /* notBefore this far back: clocks that lag still accept */
#define CERTS_SERIAL_BYTES 16
#define CERTS_MAX_NAMES	   256
#define CERTS_MAX_DNS_NAME 253 /* RFC 1035 */
#define CERTS_MAX_LABEL	   63
#define CERTS_MAX_CN	   64 /* ub-common-name, RFC 5280 */
#define CERTS_QUOTE_MAX	   80

/* A name of the serving certificate, as it goes into the subjectAltName. */
struct certs_name {
	const char *text;
	unsigned char ip[16];
	size_t iplen; /* 4 or 16 for an IP address, 0 for a DNS name */
};

/* Records an STK_EIO error naming the failed step and OpenSSL's reason; empties the queue. */
static int certs_ssl_error(stk_err *err, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char reason[256];

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	else
		snprintf(reason, sizeof(reason), "unknown OpenSSL error");
	ERR_clear_error();
	return stk_err_set(err, STK_EIO, "webhook certificate: %s: %s", what, reason);
}

/* `s` for a one-line message: printable ASCII only, bounded, with "..." when cut. */
static void certs_quote(char *dst, size_t cap, const char *s)
{
	size_t i = 0;

	for (; *s && i + 4 < cap && i < CERTS_QUOTE_MAX; s++)
		dst[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	if (*s && i + 4 <= cap) {
		memcpy(dst + i, "...", 3);
		i += 3;
	}
	dst[i] = '\0';
}

/* Why `s` is not a DNS name (RFC 1123 labels, an optional leading "*."), or NULL. */
static const char *certs_dns_problem(const char *s, char *buf, size_t cap)
{
	size_t len = strlen(s), label = 0, i;
	bool numeric = true;

	if (len > CERTS_MAX_DNS_NAME)
		return "longer than 253 characters";
	if (s[0] == '*' && s[1] == '.')
		s += 2;
	for (i = 0;; i++) {
		char ch = s[i];

		if (ch == '.' || ch == '\0') {
			if (label == 0)
				return "an empty label";
			if (s[i - 1] == '-')
				return "a label ends with '-'";
			if (ch == '\0')
				break;
			label = 0;
			numeric = true;
			continue;
		}
		if (ch == '-' && label == 0)
			return "a label starts with '-'";
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-')) {
			if (ch == ' ')
				snprintf(buf, cap, "a space is not allowed");
			else if (ch > 0x20 && ch < 0x7f)
				snprintf(buf, cap, "'%c' is not allowed", ch);
			else
				snprintf(buf, cap, "character 0x%02x is not allowed",
					 (unsigned)(unsigned char)ch);
			return buf;
		}
		if (++label > CERTS_MAX_LABEL)
			return "a label is longer than 63 characters";
		if (ch < '0' || ch > '9')
			numeric = false;
	}
	if (numeric)
		return "the last label is numeric (a malformed IP address?)";
	return NULL;
}

/* Sorts `text` into an IP address or a DNS name; STK_EINVAL when it is neither. */
static int certs_parse_name(struct certs_name *nm, const char *text, size_t index, stk_err *err)
{
	char quoted[CERTS_QUOTE_MAX + 8], why[64];
	const char *problem;

	if (!text || !text[0])
		return stk_err_set(err, STK_EINVAL,
				   "webhook certificate: name %zu is empty: give DNS names or IP "
				   "addresses",
				   index + 1);
	nm->text = text;
	nm->iplen = 0;
	if (inet_pton(AF_INET, text, nm->ip) == 1) {
		nm->iplen = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, text, nm->ip) == 1) {
		nm->iplen = 16;
		return 0;
	}
	certs_quote(quoted, sizeof(quoted), text);
	if (strchr(text, ':'))
		return stk_err_set(
			err, STK_EINVAL,
			"webhook certificate: name %zu \"%s\" is not a valid IPv6 address",
			index + 1, quoted);
	problem = certs_dns_problem(text, why, sizeof(why));
	if (problem)
		return stk_err_set(err, STK_EINVAL,
				   "webhook certificate: name %zu \"%s\" is neither an IP address "
				   "nor a DNS name: %s",
				   index + 1, quoted, problem);
	return 0;
}

/* A random positive serial of CERTS_SERIAL_BYTES bytes. */
static int certs_set_serial(X509 *x, stk_err *err)
{
	unsigned char raw[CERTS_SERIAL_BYTES];
	BIGNUM *bn = NULL;
	int rc = 0;

	do {
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			rc = certs_ssl_error(err, "random serial number");
			goto out;
		}
		BN_free(bn);
		bn = BN_bin2bn(raw, sizeof(raw), NULL);
		if (!bn) {
			rc = certs_ssl_error(err, "serial number");
			goto out;
		}
	} while (BN_is_zero(bn));
	if (!BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		rc = certs_ssl_error(err, "serial number");
out:
	BN_free(bn);
	return rc;
}

/* Adds an extension given in openssl.cnf syntax ("critical,CA:TRUE"); fixed text only. */
static int certs_add_ext(X509 *x, X509 *issuer, int nid, const char *value, stk_err *err)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return certs_ssl_error(err, OBJ_nid2sn(nid));
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : certs_ssl_error(err, OBJ_nid2sn(nid));
}

/*
 * The subjectAltName, built from GENERAL_NAMEs rather than config text so that a name
 * is never parsed as anything but itself.
 */
static int certs_add_sans(X509 *x, const struct certs_name *nms, size_t n, stk_err *err)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gen = NULL;
	ASN1_STRING *str = NULL;
	size_t i;
	int rc = 0;

	if (!gens) {
		rc = certs_ssl_error(err, "subjectAltName");
		goto out;
	}
	for (i = 0; i < n; i++) {
		gen = GENERAL_NAME_new();
		str = nms[i].iplen ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
		if (!gen || !str ||
		    !ASN1_STRING_set(str, nms[i].iplen ? (const void *)nms[i].ip : nms[i].text,
				     nms[i].iplen ? (int)nms[i].iplen : -1)) {
			rc = certs_ssl_error(err, "subjectAltName");
			goto out;
		}
		GENERAL_NAME_set0_value(gen, nms[i].iplen ? GEN_IPADD : GEN_DNS, str);
		str = NULL;
		if (!sk_GENERAL_NAME_push(gens, gen)) {
			rc = certs_ssl_error(err, "subjectAltName");
			goto out;
		}
		gen = NULL;
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		rc = certs_ssl_error(err, "subjectAltName");
out:
	ASN1_STRING_free(str);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	return rc;
}

/*
 * A certificate for `key` named `cn`, valid from CERTS_SKEW_S ago until `seconds` from
 * now, without extensions yet. `issuer` NULL makes it self-issued.
 */
static int certs_new_cert(X509 **out, EVP_PKEY *key, const char *cn, const X509 *issuer,
			  long seconds, stk_err *err)
{
	X509 *x = X509_new();
	X509_NAME *subject;
	int rc = 0;

	if (!x) {
		rc = certs_ssl_error(err, "X509_new");
		goto out;
	}
	subject = X509_get_subject_name(x);
	if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
				       (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) != 1 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -CERTS_SKEW_S) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)(seconds / 86400), seconds % 86400,
			      NULL)) {
		rc = certs_ssl_error(err, "certificate fields");
		goto out;
	}
	rc = certs_set_serial(x, err);
	if (rc)
		goto out;
	*out = x;
	x = NULL;
out:
	X509_free(x);
	return rc;
}

/* The PEM text of certificate `x`, or of private key `key` when given, on the heap. */
static int certs_pem(char **out, X509 *x, EVP_PKEY *key, stk_err *err)
{
	/* A secure-memory BIO: the key's PEM is cleansed when the BIO is freed. */
	BIO *b = BIO_new(key ? BIO_s_secmem() : BIO_s_mem());
	char *data = NULL, *copy;
	long len;
	int rc = 0;

	if (!b) {
		rc = certs_ssl_error(err, "BIO_new");
		goto out;
	}
	if (key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1
		: PEM_write_bio_X509(b, x) != 1) {
		rc = certs_ssl_error(err, key ? "writing the key PEM" : "writing the PEM");
		goto out;
	}
	len = BIO_get_mem_data(b, &data);
	if (len <= 0 || !data) {
		rc = certs_ssl_error(err, "reading the PEM");
		goto out;
	}
	copy = stk_malloc((size_t)len + 1);
	memcpy(copy, data, (size_t)len);
	copy[len] = '\0';
	*out = copy;
out:
	BIO_free(b);
	return rc;
}

int injector_certs_generate(struct injector_certs *out, const char *const *names, size_t n,
			    long serving_s, stk_err *err)
{
	struct injector_certs made = {NULL, NULL, NULL};
	struct certs_name *nms = NULL;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509 *ca = NULL, *leaf = NULL;
	const char *cn;
	size_t i;
	int rc = 0;

	if (!names || n == 0) {
		rc = stk_err_set(err, STK_EINVAL,
				 "webhook certificate: no names given (DNS names or IP addresses "
				 "the API server uses to reach the webhook)");
		goto out;
	}
	if (n > CERTS_MAX_NAMES) {
		rc = stk_err_set(err, STK_EINVAL,
				 "webhook certificate: %zu names given, at most %d are allowed", n,
				 CERTS_MAX_NAMES);
		goto out;
	}
	nms = stk_reallocarray(NULL, n, sizeof(*nms));
	for (i = 0; i < n; i++) {
		rc = certs_parse_name(&nms[i], names[i], i, err);
		if (rc)
			goto out;
	}
	cn = strlen(names[0]) <= CERTS_MAX_CN ? names[0] : CERTS_FALLBACK_CN;

	ca_key = EVP_EC_gen("P-256");
	key = EVP_EC_gen("P-256");
	if (!ca_key || !key) {
		rc = certs_ssl_error(err, "generating an EC P-256 key");
		goto out;
	}

	rc = certs_new_cert(&ca, ca_key, CERTS_CA_CN, NULL, CERTS_CA_DAYS * 86400L, err);
	if (rc)
		goto out;
	rc = certs_add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE", err);
	rc = rc ? rc : certs_add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign", err);
	rc = rc ? rc : certs_add_ext(ca, ca, NID_subject_key_identifier, "hash", err);
	rc = rc ? rc : certs_add_ext(ca, ca, NID_authority_key_identifier, "keyid:always", err);
	if (rc)
		goto out;
	if (X509_sign(ca, ca_key, EVP_sha256()) <= 0) {
		rc = certs_ssl_error(err, "signing the CA certificate");
		goto out;
	}

	rc = certs_new_cert(&leaf, key, cn, ca, serving_s > 0 ? serving_s : CERTS_SERVING_S, err);
	if (rc)
		goto out;
	rc = certs_add_ext(leaf, ca, NID_basic_constraints, "critical,CA:FALSE", err);
	rc = rc ? rc : certs_add_ext(leaf, ca, NID_key_usage, "critical,digitalSignature", err);
	rc = rc ? rc : certs_add_ext(leaf, ca, NID_ext_key_usage, "serverAuth", err);
	rc = rc ? rc : certs_add_ext(leaf, ca, NID_subject_key_identifier, "hash", err);
	rc = rc ? rc : certs_add_ext(leaf, ca, NID_authority_key_identifier, "keyid:always", err);
	rc = rc ? rc : certs_add_sans(leaf, nms, n, err);
	if (rc)
		goto out;
	if (X509_sign(leaf, ca_key, EVP_sha256()) <= 0) {
		rc = certs_ssl_error(err, "signing the serving certificate");
		goto out;
	}

	rc = certs_pem(&made.ca_pem, ca, NULL, err);
	rc = rc ? rc : certs_pem(&made.cert_pem, leaf, NULL, err);
	rc = rc ? rc : certs_pem(&made.key_pem, NULL, key, err);
	if (rc)
		goto out;
	*out = made;
	made = (struct injector_certs){NULL, NULL, NULL};
out:
	injector_certs_release(&made);
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	free(nms);
	ERR_clear_error();
	return rc;
}

void injector_certs_release(struct injector_certs *c)
{
	if (!c)
		return;
	if (c->key_pem)
		OPENSSL_cleanse(c->key_pem, strlen(c->key_pem));
	free(c->key_pem);
	free(c->cert_pem);
	free(c->ca_pem);
	c->key_pem = NULL;
	c->cert_pem = NULL;
	c->ca_pem = NULL;
}

char *injector_certs_ca_bundle(const struct injector_certs *c)
{
	if (!c || !c->ca_pem)
		return NULL;
	return stk_base64_encode(c->ca_pem, strlen(c->ca_pem));
}
