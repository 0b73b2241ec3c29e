/*
 * libFuzzer target: kubeconfig parsing must never crash or leak, must leave the output
 * alone on failure with a one-line message, and on success must hand back a config the
 * client can use. Files the input names resolve under "/nonexistent", so they fail
 * cleanly (absolute paths may still name real files; only regular files are read).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stk/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size, const char *context)
{
	struct stk_kubeconfig *cfg = NULL;
	stk_err err = STK_ERR_INIT;
	size_t n;
	int rc =
		stk_kubeconfig_parse(&cfg, (const char *)data, size, "/nonexistent", context, &err);

	if (rc != 0) {
		if (cfg || err.code != rc || err.message[0] == '\0' || strchr(err.message, '\n'))
			abort();
		return;
	}
	if (!cfg || !cfg->server || !cfg->namespace || cfg->namespace[0] == '\0')
		abort();
	n = strlen(cfg->server);
	if (strncasecmp(cfg->server, "http", 4) != 0 || !strstr(cfg->server, "://") ||
	    cfg->server[n - 1] == '/')
		abort();
	if (!cfg->client_cert_pem != !cfg->client_key_pem)
		abort();
	if (cfg->ca_pem && (cfg->insecure_skip_tls_verify || cfg->ca_pem[cfg->ca_pem_len] != '\0'))
		abort();
	if (cfg->in_cluster)
		abort();
	stk_kubeconfig_free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* current-context, and a named one (the corpus uses "dev"). */
	check(data, size, NULL);
	check(data, size, "dev");
	return 0;
}
