/*
 * libFuzzer target: decoding a Kubernetes Status (or any other body) from an error
 * answer. The first two bytes choose the HTTP status; the decoded error must always be
 * a known code with a one-line, NUL-terminated message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stk/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	stk_err err = STK_ERR_INIT;
	long status;
	int rc;

	if (size < 2)
		return 0;
	status = 100 + (long)((data[0] << 8 | data[1]) % 500);
	rc = stk_kube_status_to_err(status, (const char *)data + 2, size - 2,
				    size > 8 ? "12" : NULL, &err);
	if (rc >= 0 || rc < STK_EUNSUPPORTED || err.code != rc)
		abort();
	if (memchr(err.message, '\0', sizeof(err.message)) == NULL ||
	    memchr(err.reason, '\0', sizeof(err.reason)) == NULL)
		abort();
	for (const char *p = err.message; *p; p++)
		if ((unsigned char)*p < 0x20)
			abort(); /* messages are one line, without control characters */
	if (rc == STK_ETOOMANY && err.retry_after_ms <= 0)
		abort();
	return 0;
}
