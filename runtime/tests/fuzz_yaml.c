/* libFuzzer target: YAML to a yajl tree never crashes, stays bounded, and what it accepts
 * serialises to JSON that parses back. */
#include <stdint.h>
#include <stdlib.h>

#include "stk/json.h"
#include "stk/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	yajl_val v = NULL, back = NULL;
	stk_buf b = STK_BUF_INIT(1 << 26);
	stk_err err = STK_ERR_INIT;
	int rc = stk_yaml_parse(&v, (const char *)data, size, &err);

	if (rc) {
		if (v || err.message[0] == '\0')
			abort();
		return 0;
	}
	if (stk_json_write(&b, v) == 0 &&
	    stk_json_parse(&back, b.ptr ? b.ptr : "", b.len, 1 << 26, NULL))
		abort();
	yajl_tree_free(back);
	yajl_tree_free(v);
	stk_buf_release(&b);
	return 0;
}
