#include "stk/base64.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "stk/alloc.h"

char *stk_base64_encode(const void *data, size_t len)
{
	char *out;

	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return NULL;
	/* 4 characters per started group of 3 bytes, and the NUL EVP_EncodeBlock writes. */
	out = stk_malloc((len + 2) / 3 * 4 + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int stk_base64_decode(const char *s, size_t len, char **out, size_t *out_len, stk_err *err)
{
	size_t pad = 0;
	char *dec;
	int n;

	*out = NULL;
	if (len == 0) {
		*out = stk_calloc(1, 1);
		if (out_len)
			*out_len = 0;
		return 0;
	}
	if (len % 4 || len > INT_MAX)
		return stk_err_set(err, STK_EPARSE, "not base64");
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	if (pad == 1 && s[len - 2] == '=')
		return stk_err_set(err, STK_EPARSE, "not base64");
	for (size_t i = 0; i < len - pad; i++)
		if (!b64_char(s[i]))
			return stk_err_set(err, STK_EPARSE, "not base64");
	/* EVP_DecodeBlock counts padding as zero bytes: subtract it. */
	dec = stk_malloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock((unsigned char *)dec, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad) {
		OPENSSL_cleanse(dec, len / 4 * 3);
		free(dec);
		return stk_err_set(err, STK_EPARSE, "not base64");
	}
	n -= (int)pad;
	dec[n] = '\0';
	*out = dec;
	if (out_len)
		*out_len = (size_t)n;
	return 0;
}
