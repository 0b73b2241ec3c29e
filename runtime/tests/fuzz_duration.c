/* libFuzzer target: duration parsing must never crash and must agree with itself. */
#include <stdint.h>
#include <stdlib.h>

#include "stk/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t ms = -1;
	stk_err err = STK_ERR_INIT;
	int rc = stk_parse_duration_ms((const char *)data, size, &ms, &err);

	/* Success yields a non-negative value; failure leaves the output alone. */
	if (rc == 0 && ms < 0)
		abort();
	if (rc != 0 && (ms != -1 || err.code != rc || err.message[0] == '\0'))
		abort();
	return 0;
}
