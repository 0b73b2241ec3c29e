/*
 * stoker-api: the C codecs from the command line, for tests and for checking manifests.
 *   stoker-api schema                  the field tables as OpenAPI-shaped JSON
 *   stoker-api roundtrip KIND < json   decode and re-encode (no defaults)
 *   stoker-api default KIND < json     decode, apply the schema defaults, encode
 *   stoker-api validate KIND < json    decode, default and validate; "ok" or the error
 * KIND is GitSource, SyncProfile, Stoker or Alert (or a plural or short name).
 * Exit status: 0 ok, 1 invalid or undecodable input, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stk/api/api.h"
#include "stk/buf.h"
#include "stk/limits.h"

static int read_stdin(stk_buf *b)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (stk_buf_put(b, chunk, n))
			return STK_ETOOBIG;
	return ferror(stdin) ? STK_EIO : 0;
}

static int print_schema(void)
{
	static const struct {
		const char *kind;
		const struct stk_api_type *spec, *status;
	} kinds[] = {
		{"GitSource", &stk_api_gitsource_spec_type, &stk_api_gitsource_status_type},
		{"SyncProfile", &stk_api_syncprofile_spec_type, &stk_api_syncprofile_status_type},
		{"Stoker", &stk_api_stoker_spec_type, &stk_api_stoker_status_type},
		{"Alert", &stk_api_alert_spec_type, &stk_api_alert_status_type},
	};
	stk_buf b = STK_BUF_INIT((size_t)-1);

	stk_buf_putc(&b, '{');
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		stk_buf_printf(&b, "%s\"%s\":{\"spec\":", i ? "," : "", kinds[i].kind);
		stk_api_schema(kinds[i].spec, &b);
		stk_buf_puts(&b, ",\"status\":");
		stk_api_schema(kinds[i].status, &b);
		stk_buf_putc(&b, '}');
	}
	stk_buf_puts(&b, "}\n");
	fwrite(b.ptr, 1, b.len, stdout);
	stk_buf_release(&b);
	return 0;
}

int main(int argc, char **argv)
{
	const struct stk_api_kind_info *info;
	const struct stk_api_type *t;
	stk_buf in = STK_BUF_INIT(STK_LIMIT_API_BODY), out = STK_BUF_INIT((size_t)-1);
	stk_err err = STK_ERR_INIT;
	void *obj = NULL;
	int rc = 0;

	if (argc == 2 && !strcmp(argv[1], "schema"))
		return print_schema();
	if (argc != 3 || (strcmp(argv[1], "roundtrip") && strcmp(argv[1], "default") &&
			  strcmp(argv[1], "validate"))) {
		fprintf(stderr,
			"usage: stoker-api schema | roundtrip|default|validate KIND < json\n");
		return 2;
	}
	info = stk_api_kind_lookup(argv[2]);
	if (!info) {
		fprintf(stderr, "stoker-api: unknown kind \"%s\"\n", argv[2]);
		return 2;
	}
	t = stk_api_type_of(info->kind);
	obj = calloc(1, t->size);
	if (!obj || read_stdin(&in)) {
		fprintf(stderr, "stoker-api: cannot read the input\n");
		rc = 1;
		goto out;
	}
	if (stk_api_decode_json(info->kind, obj, in.ptr ? in.ptr : "", in.len, &err)) {
		fprintf(stderr, "stoker-api: %s\n", err.message);
		rc = 1;
		goto out;
	}
	if (strcmp(argv[1], "roundtrip"))
		stk_api_default(t, obj);
	if (!strcmp(argv[1], "validate")) {
		if (stk_api_validate_object(info->kind, obj, &err)) {
			printf("%s\n", err.message);
			rc = 1;
		} else {
			printf("ok\n");
		}
		goto out;
	}
	stk_api_encode(t, obj, &out);
	printf("%s\n", out.ptr);
out:
	if (obj)
		stk_api_release(t, obj);
	free(obj);
	stk_buf_release(&in);
	stk_buf_release(&out);
	return rc;
}
