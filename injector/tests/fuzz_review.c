/*
 * libFuzzer target: AdmissionReview decoding and patch building (inj_review) against a
 * fixed namespace. A review either fails with a parse error or yields an AdmissionReview
 * answer that is valid JSON; an injection's patch is base64 of a JSON array.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "lookup_fixture.h"
#include "mutate.h"

#define NS "\"namespace\":\"site1\""

static const char *const objs[] = {
	"{\"apiVersion\":\"stoker.io/v1alpha1\",\"kind\":\"Stoker\",\"metadata\":{\"name\":"
	"\"plant\"," NS "},\"spec\":{\"sourceRef\":{\"kind\":\"GitSource\",\"name\":\"repo\"},"
	"\"gateway\":{\"apiKeySecretRef\":{\"name\":\"k\",\"key\":\"apiKey\"}}}}",
	"{\"apiVersion\":\"stoker.io/v1alpha1\",\"kind\":\"Stoker\",\"metadata\":{\"name\":"
	"\"gitty\"," NS "},\"spec\":{\"sourceRef\":{\"kind\":\"GitSource\",\"name\":\"repo\"},"
	"\"agent\":{\"sourceMode\":\"git\",\"image\":{\"repository\":\"r/a\",\"digest\":"
	"\"sha256:00\"},\"resources\":{\"limits\":{\"memory\":\"1Gi\"}}}}}",
	"{\"apiVersion\":\"source.stoker.io/v1alpha1\",\"kind\":\"GitSource\",\"metadata\":{"
	"\"name\":\"repo\"," NS "},\"spec\":{\"url\":\"https://x/r.git\",\"ref\":{\"branch\":"
	"\"main\"},\"auth\":{\"token\":{\"secretRef\":{\"name\":\"t\",\"key\":\"token\"}},"
	"\"basic\":{\"secretRef\":{\"name\":\"b\"}}}}}",
	"{\"apiVersion\":\"stoker.io/v1alpha1\",\"kind\":\"SyncProfile\",\"metadata\":{\"name\":"
	"\"site\"," NS "},\"spec\":{\"mappings\":[{\"source\":\"a\",\"destination\":\"b\"}]}}",
	NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fixture f = {objs, {0}, 0};
	static bool loaded;
	struct inj_lookup lk = {fixture_get, fixture_put, fixture_each, &f};
	struct inj_config cfg = {"agent:fuzz"};
	stk_buf out = STK_BUF_INIT(1 << 22);
	enum inj_result res;
	yajl_val v = NULL;
	int rc;

	if (!loaded) {
		fixture_load(&f);
		loaded = true;
	}
	rc = inj_review(&cfg, &lk, (const char *)data, size, &out, &res, NULL);
	if (rc) {
		if (out.len)
			abort(); /* a failure answers nothing */
		stk_buf_release(&out);
		return 0;
	}
	if (stk_json_parse(&v, out.ptr, out.len, 1 << 22, NULL))
		abort(); /* every answer is JSON */
	if (res == INJ_INJECTED) {
		const char *b64 = stk_json_str(v, "response", "patch", NULL);
		size_t len = b64 ? strlen(b64) : 0;
		unsigned char *raw = malloc(len + 4);
		yajl_val patch = NULL;
		int n = b64 ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len) : -1;
		if (n <= 0)
			abort();
		while (n > 0 && raw[n - 1] == '\0')
			n--; /* base64 padding decodes to NULs */
		if (stk_json_parse(&patch, (const char *)raw, (size_t)n, 1 << 22, NULL) ||
		    !YAJL_IS_ARRAY(patch))
			abort();
		yajl_tree_free(patch);
		free(raw);
	}
	yajl_tree_free(v);
	stk_buf_release(&out);
	return 0;
}
