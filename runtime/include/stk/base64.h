/*
 * Standard, padded base64 (RFC 4648 §4), as Kubernetes stores Secret data and caBundle.
 * One implementation for the daemons: Secret values, kubeconfig data, known_hosts keys,
 * JSON patches in AdmissionReviews, the injector's caBundle.
 */
#ifndef STK_BASE64_H
#define STK_BASE64_H

#include <stddef.h>

#include "stk/err.h"

/*
 * Encodes data[0..len) on one line, NUL-terminated; the caller frees. NULL when len is
 * beyond what OpenSSL encodes in one call (INT_MAX bytes). Any thread.
 */
char *stk_base64_encode(const void *data, size_t len);

/*
 * Decodes s[0..len) strictly: a multiple of 4 characters of the alphabet, '=' only as
 * the last one or two. *out is NUL-terminated (so text can be used as a string) and
 * *out_len (may be NULL) its length; the caller frees it, wiping it first when secret.
 * 0 or STK_EPARSE ("not base64"; the caller names the field). Any thread.
 */
int stk_base64_decode(const char *s, size_t len, char **out, size_t *out_len, stk_err *err);

#endif
