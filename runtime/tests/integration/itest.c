#include "itest.h"

#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "stk/buf.h"
#include "stk/json.h"
#include "stk/kubeconfig.h"

extern char **environ;

stk_kube *itest_client(void)
{
	struct stk_kubeconfig_opts o = STK_KUBECONFIG_OPTS_INIT;
	struct stk_kubeconfig *cfg = NULL;
	stk_kube *k = NULL;
	stk_err err = STK_ERR_INIT;

	o.path = getenv("KUBECONFIG");
	if (stk_kubeconfig_load(&cfg, &o, &err))
		fail_msg("kubeconfig: %s", err.message);
	if (stk_kube_new_take(&k, cfg, NULL, &err))
		fail_msg("client: %s", err.message);
	return k;
}

stk_kube *itest_client_with_token(const char *token)
{
	struct stk_kubeconfig_opts o = STK_KUBECONFIG_OPTS_INIT;
	struct stk_kubeconfig *cfg = NULL;
	stk_kube *k = NULL;
	stk_err err = STK_ERR_INIT;

	o.path = getenv("KUBECONFIG");
	if (stk_kubeconfig_load(&cfg, &o, &err))
		fail_msg("kubeconfig: %s", err.message);
	/* Drop the client certificate: authenticate with the token alone. */
	free(cfg->client_cert_pem);
	free(cfg->client_key_pem);
	cfg->client_cert_pem = cfg->client_key_pem = NULL;
	cfg->client_cert_pem_len = cfg->client_key_pem_len = 0;
	free(cfg->token);
	cfg->token = strdup(token);
	if (stk_kube_new_take(&k, cfg, NULL, &err))
		fail_msg("client: %s", err.message);
	return k;
}

const char *itest_namespace(stk_kube *k, const char *prefix)
{
	static char ns[64];
	char body[256];
	stk_err err = STK_ERR_INIT;

	snprintf(ns, sizeof(ns), "%s-%06x", prefix, arc4random_uniform(0xffffff));
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}",
		 ns);
	if (stk_kube_create(k, &STK_GVR_NAMESPACES, NULL, body, strlen(body), NULL, &err))
		fail_msg("create namespace %s: %s", ns, err.message);
	return ns;
}

void itest_delete_namespace(stk_kube *k, const char *ns)
{
	stk_kube_delete(k, &STK_GVR_NAMESPACES, NULL, ns, NULL, NULL);
}

int itest_cluster(const char *const *args)
{
	const char *src = getenv("STOKER_SOURCE_DIR");
	char path[4096];
	char *argv[16];
	pid_t pid;
	int status, n = 0;

	snprintf(path, sizeof(path), "%s/e2e/cluster", src ? src : ".");
	argv[n++] = path;
	while (*args && n < 15)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	if (posix_spawn(&pid, path, NULL, NULL, argv, environ) != 0)
		return -1;
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool itest_local_cluster(void)
{
	const char *c = getenv("STOKER_E2E_CLUSTER");
	return c && !strcmp(c, "local");
}

void itest_create_cm(stk_kube *k, const char *ns, const char *name, const char *value,
		     const char *labels_json)
{
	stk_buf b = STK_BUF_INIT(1 << 20);
	stk_err err = STK_ERR_INIT;

	stk_buf_printf(
		&b, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\"",
		name);
	if (labels_json)
		stk_buf_printf(&b, ",\"labels\":%s", labels_json);
	stk_buf_puts(&b, "},\"data\":{\"k\":");
	stk_buf_put_json_string(&b, value, strlen(value));
	stk_buf_puts(&b, "}}");
	if (stk_kube_create(k, &STK_GVR_CONFIGMAPS, ns, b.ptr, b.len, NULL, &err))
		fail_msg("create configmap %s/%s: %s", ns, name, err.message);
	stk_buf_release(&b);
}

/* Compacts etcd at its current revision through its HTTP gateway. */
void itest_compact_etcd(void)
{
	const char *etcd = getenv("STOKER_E2E_ETCD");
	char cmd[512];
	stk_buf out = STK_BUF_INIT(1 << 16);
	CURL *c = curl_easy_init();
	yajl_val v = NULL;
	const char *rev;

	assert_non_null(etcd);
	snprintf(cmd, sizeof(cmd), "%s/v3/kv/range", etcd);
	curl_easy_setopt(c, CURLOPT_URL, cmd);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"key\":\"AA==\"}");
	FILE *f = open_memstream(&out.ptr, &out.len);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	fclose(f);
	assert_int_equal(stk_json_parse(&v, out.ptr, out.len, 1 << 16, NULL), 0);
	rev = stk_json_str(v, "header", "revision", NULL);
	assert_non_null(rev);
	char body[128];
	snprintf(body, sizeof(body), "{\"revision\":\"%s\",\"physical\":true}", rev);
	snprintf(cmd, sizeof(cmd), "%s/v3/kv/compaction", etcd);
	curl_easy_setopt(c, CURLOPT_URL, cmd);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	f = fopen("/dev/null", "w");
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	fclose(f);
	yajl_tree_free(v);
	free(out.ptr);
	curl_easy_cleanup(c);
}
