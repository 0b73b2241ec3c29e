/*
 * libFuzzer target: every decoder of the API. The first byte picks a kind or payload;
 * whatever decodes must re-encode to JSON that decodes again to the same encoding, and
 * defaulting and validation must not crash on it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stk/api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct stk_api_type *fuzz_type(uint8_t b)
{
	switch (b % 7) {
	case 0:
		return &stk_api_gitsource_type;
	case 1:
		return &stk_api_syncprofile_type;
	case 2:
		return &stk_api_stoker_type;
	case 3:
		return &stk_api_alert_type;
	case 4:
		return &stk_api_gateway_report_type;
	case 5:
		return &stk_api_profile_entry_type;
	default:
		return &stk_api_gateway_info_type;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct stk_api_type *t;
	void *a, *b;
	stk_buf e1 = STK_BUF_INIT(1 << 24), e2 = STK_BUF_INIT(1 << 24);

	if (size < 1)
		return 0;
	t = fuzz_type(data[0]);
	a = calloc(1, t->size);
	b = calloc(1, t->size);
	if (stk_api_decode_payload(t, a, (const char *)data + 1, size - 1, NULL) == 0) {
		if (stk_api_encode(t, a, &e1) ||
		    stk_api_decode_payload(t, b, e1.ptr, e1.len, NULL) ||
		    stk_api_encode(t, b, &e2) || e1.len != e2.len || memcmp(e1.ptr, e2.ptr, e1.len))
			abort();
		stk_api_default(t, a);
		stk_api_validate(t, a, "", NULL);
	}
	stk_api_release(t, a);
	stk_api_release(t, b);
	free(a);
	free(b);
	stk_buf_release(&e1);
	stk_buf_release(&e2);
	return 0;
}
