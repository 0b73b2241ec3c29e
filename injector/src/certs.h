/*
 * Self-managed TLS of the admission webhook (DESIGN.md §5, injector): without a mounted
 * certificate the injector makes its own CA and serving certificate at startup, serves
 * with the latter and publishes the CA as the webhook configuration's caBundle. The
 * daemon keeps the pair in a Secret so replicas and restarts share it (injector.c).
 */
#ifndef INJECTOR_CERTS_H
#define INJECTOR_CERTS_H

#include <stddef.h>

#include "stk/err.h"

/* PEM text, NUL-terminated, on the heap; owned by the struct (injector_certs_release). */
struct injector_certs {
	char *ca_pem;	/* the CA certificate: what the API server trusts */
	char *cert_pem; /* the serving certificate, signed by the CA */
	char *key_pem;	/* its private key (PKCS#8, unencrypted) */
};

/*
 * Generates a CA (EC P-256, CN "stoker-injector-ca", basicConstraints CA:TRUE critical,
 * keyUsage keyCertSign|cRLSign critical, valid 10 years) and a serving certificate signed
 * by it (EC P-256, CN the first name, subjectAltName listing every one of `names`: IPv4
 * and IPv6 addresses as IP entries, anything else as a DNS entry; extendedKeyUsage
 * serverAuth; keyUsage digitalSignature critical; valid `serving_s` seconds, or 1 year
 * when `serving_s` is 0 or less). Both get a random
 * 128-bit serial and a notBefore one hour in the past, for clocks that lag. A DNS name is
 * letters, digits and hyphens in dot-separated labels (RFC 1123; "*." may lead), at most
 * 253 characters; the CN falls back to "stoker-injector" when the first name is longer
 * than the 64 characters a CN allows. The CA key is discarded: nothing can be signed
 * with it afterwards.
 *
 * `names` is read during the call only; *out is written only on success and released
 * with injector_certs_release. 0; STK_EINVAL (no names, or a name that is neither an IP
 * address nor a DNS name; the message says which and why); STK_EIO (an OpenSSL failure,
 * with its error text). Any thread.
 */
int injector_certs_generate(struct injector_certs *out, const char *const *names, size_t n,
			    long serving_s, stk_err *err);

/*
 * Overwrites the private key text (OPENSSL_cleanse) and frees all three strings; the
 * struct is left empty and may be reused. NULL-safe, and safe on an empty struct.
 */
void injector_certs_release(struct injector_certs *c);

/*
 * The CA certificate PEM in base64 on one line (no newlines), as a webhook
 * configuration's `caBundle` wants it. Returns a heap string the caller frees, or NULL
 * when `c` holds no CA. Any thread.
 */
char *injector_certs_ca_bundle(const struct injector_certs *c);

#endif
