#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "stk/buf.h"
#include "stk/kubeconfig.h"
#include "stk/limits.h"

#define CA_PEM                                                                             \
	"-----BEGIN "                                                                      \
	"CERTIFICATE-----\nTUlJQ2FEQ0NBVkNnQXdJQkFnSUJBREFOQmdrcWhraUc5dzBCQVFzRkFEQVY=\n" \
	"-----END CERTIFICATE-----\n"
#define CERT_PEM                                                                  \
	"-----BEGIN CERTIFICATE-----\nY2xpZW50IGNlcnRpZmljYXRlIGZvciBhZG1pbg==\n" \
	"-----END CERTIFICATE-----\n"
#define KEY_PEM \
	"-----BEGIN PRIVATE KEY-----\nc2VjcmV0IGtleSBtYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"

/* Per-test temporary directory; the environment the loader reads is reset for each test. */
struct fx {
	char dir[512];
};

#define assert_msg_has(e, s)                                                       \
	do {                                                                       \
		if (!strstr((e).message, (s)))                                     \
			fail_msg("message \"%s\" lacks \"%s\"", (e).message, (s)); \
		if (strchr((e).message, '\n'))                                     \
			fail_msg("message \"%s\" spans lines", (e).message);       \
	} while (0)

/* rm -rf, without following symlinks. */
static void rm_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char sub[PATH_MAX];

	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >=
			    (int)sizeof(sub))
				continue;
			rm_tree(sub);
		}
		closedir(d);
	}
	remove(path);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/stk-kubeconfig-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	/* Whatever the machine running the tests has must not leak into them. */
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("KUBECONFIG");
	setenv("HOME", fx->dir, 1);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	rm_tree(fx->dir);
	free(fx);
	return 0;
}

/* fx->dir + "/" + rel, in a static ring so a test can hold a few at once. */
static const char *at(const struct fx *fx, const char *rel)
{
	static char ring[8][PATH_MAX];
	static int next;
	char *p = ring[next++ % 8];

	if (snprintf(p, PATH_MAX, "%s/%s", fx->dir, rel) >= PATH_MAX)
		fail_msg("path too long");
	return p;
}

/* Writes `len` bytes at fx->dir/rel, creating parent directories. */
static void put_n(const struct fx *fx, const char *rel, const char *data, size_t len)
{
	char path[PATH_MAX];
	char *slash;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s", fx->dir, rel) >= (int)sizeof(path))
		fail_msg("path too long");
	for (slash = strchr(path + strlen(fx->dir) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*slash = '/';
	}
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void put(const struct fx *fx, const char *rel, const char *data)
{
	put_n(fx, rel, data, strlen(data));
}

static char *b64(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	assert_non_null(out);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

static struct stk_kubeconfig *parse(const char *yaml, const char *dir, const char *ctx,
				    stk_err *err, int *rc)
{
	/* The output must stay untouched on failure: start from a sentinel. */
	struct stk_kubeconfig *cfg = (struct stk_kubeconfig *)(uintptr_t)0x1;

	stk_err_clear(err);
	*rc = stk_kubeconfig_parse(&cfg, yaml, strlen(yaml), dir, ctx, err);
	if (*rc) {
		assert_ptr_equal(cfg, (struct stk_kubeconfig *)(uintptr_t)0x1);
		assert_int_equal(err->code, *rc);
		assert_true(err->message[0] != '\0');
		return NULL;
	}
	assert_non_null(cfg);
	return cfg;
}

static void assert_bytes(const char *got, size_t got_len, const char *want)
{
	assert_non_null(got);
	assert_int_equal(got_len, strlen(want));
	assert_memory_equal(got, want, got_len);
	assert_int_equal(got[got_len], '\0');
}

/* A kubeconfig as kind or kubeadm writes it, with what people add by hand. */
static char *kind_style(void)
{
	char *ca = b64(CA_PEM), *cert = b64(CERT_PEM), *key = b64(KEY_PEM);
	stk_buf b = STK_BUF_INIT(1 << 20);

	assert_int_equal(
		stk_buf_printf(&b,
			       "# written by kind\n"
			       "apiVersion: v1\n"
			       "clusters:\n"
			       "- cluster:\n"
			       "    certificate-authority-data: %s\n"
			       "    server: https://127.0.0.1:39213/\n"
			       "    extensions:\n"
			       "    - name: client.authentication.k8s.io/exec\n"
			       "      extension: {audience: foo, nested: {a: [1, 2, {b: c}]}}\n"
			       "  name: kind-kind\n"
			       "- cluster:\n"
			       "    server: 'https://other.example:6443'\n"
			       "  name: other\n"
			       "contexts:\n"
			       "- context:\n"
			       "    cluster: kind-kind\n"
			       "    user: kind-kind\n"
			       "    namespace: \"team-a\"   # trailing comment\n"
			       "  name: kind-kind\n"
			       "- context: {cluster: other, user: token-user}\n"
			       "  name: other\n"
			       "current-context: kind-kind\n"
			       "kind: Config\n"
			       "preferences: {}\n"
			       "users:\n"
			       "- name: kind-kind\n"
			       "  user:\n"
			       "    client-certificate-data: %s\n"
			       "    client-key-data: >-\n"
			       "      %s\n"
			       "    unknown-field: [whatever]\n"
			       "- name: token-user\n"
			       "  user:\n"
			       "    token: abc.def-ghi\n"
			       "    exec: null\n",
			       ca, cert, key),
		0);
	free(ca);
	free(cert);
	free(key);
	return stk_buf_detach(&b, NULL);
}

static void test_kubeconfig__inline_data(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	char *yaml = kind_style();
	struct stk_kubeconfig *cfg;
	int rc;

	cfg = parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->server, "https://127.0.0.1:39213");
	assert_string_equal(cfg->namespace, "team-a");
	assert_bytes(cfg->ca_pem, cfg->ca_pem_len, CA_PEM);
	assert_bytes(cfg->client_cert_pem, cfg->client_cert_pem_len, CERT_PEM);
	assert_bytes(cfg->client_key_pem, cfg->client_key_pem_len, KEY_PEM);
	assert_false(cfg->insecure_skip_tls_verify);
	assert_null(cfg->tls_server_name);
	assert_null(cfg->token);
	assert_null(cfg->token_file);
	assert_false(cfg->in_cluster);
	stk_kubeconfig_free(cfg);
	free(yaml);
}

static void test_kubeconfig__named_vs_current_context(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	char *yaml = kind_style();
	struct stk_kubeconfig *cfg;
	int rc;

	/* "" means current-context too. */
	cfg = parse(yaml, fx->dir, "", &err, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->server, "https://127.0.0.1:39213");
	stk_kubeconfig_free(cfg);

	cfg = parse(yaml, fx->dir, "other", &err, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->server, "https://other.example:6443");
	assert_string_equal(cfg->namespace, "default");
	assert_string_equal(cfg->token, "abc.def-ghi");
	assert_null(cfg->ca_pem);
	assert_null(cfg->client_cert_pem);
	stk_kubeconfig_free(cfg);
	free(yaml);
}

static void test_kubeconfig__flow_style_and_json(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg;
	char *ca = b64(CA_PEM);
	stk_buf b = STK_BUF_INIT(1 << 20);
	int rc;

	put(fx, "tok", "  flow-token\n");
	/* Flow style throughout, as a hand-written or generated file may be. */
	assert_int_equal(
		stk_buf_printf(&b,
			       "{apiVersion: v1, kind: Config, current-context: c,\n"
			       " clusters: [{name: k, cluster: {server: 'https://[::1]:6443',\n"
			       "   certificate-authority-data: \"%s\", tls-server-name: "
			       "kubernetes.default}}],\n"
			       " contexts: [{name: c, context: {cluster: k, user: u, namespace: "
			       "ns-1}}],\n"
			       " users: [{name: u, user: {tokenFile: tok}}]}\n",
			       ca),
		0);
	cfg = parse(b.ptr, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->server, "https://[::1]:6443");
	assert_string_equal(cfg->namespace, "ns-1");
	assert_bytes(cfg->ca_pem, cfg->ca_pem_len, CA_PEM);
	assert_string_equal(cfg->tls_server_name, "kubernetes.default");
	assert_string_equal(cfg->token_file, at(fx, "tok"));
	assert_null(cfg->token);
	stk_kubeconfig_free(cfg);

	/* `kubectl config view --raw -o json` output is YAML too. */
	stk_buf_reset(&b);
	assert_int_equal(
		stk_buf_printf(&b,
			       "{\n  \"kind\": \"Config\",\n  \"apiVersion\": \"v1\",\n"
			       "  \"preferences\": {},\n"
			       "  \"clusters\": [\n    {\n      \"name\": \"j\",\n"
			       "      \"cluster\": {\n        \"server\": "
			       "\"https://10.1.2.3:443\",\n"
			       "        \"insecure-skip-tls-verify\": true\n      }\n    }\n  ],\n"
			       "  \"users\": [\n    {\n      \"name\": \"ju\",\n"
			       "      \"user\": {\n        \"token\": \"json-token\"\n      }\n"
			       "    }\n  ],\n"
			       "  \"contexts\": [\n    {\n      \"name\": \"jc\",\n"
			       "      \"context\": {\n        \"cluster\": \"j\",\n"
			       "        \"user\": \"ju\"\n      }\n    }\n  ],\n"
			       "  \"current-context\": \"jc\"\n}\n"),
		0);
	cfg = parse(b.ptr, NULL, NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->server, "https://10.1.2.3:443");
	assert_true(cfg->insecure_skip_tls_verify);
	assert_string_equal(cfg->token, "json-token");
	stk_kubeconfig_free(cfg);
	stk_buf_release(&b);
	free(ca);
}

#define FILES_KC                                            \
	"apiVersion: v1\n"                                  \
	"kind: Config\n"                                    \
	"clusters:\n"                                       \
	"- name: c\n"                                       \
	"  cluster:\n"                                      \
	"    server: https://127.0.0.1:6443\n"              \
	"    certificate-authority: pki/ca.crt\n"           \
	"users:\n"                                          \
	"- name: u\n"                                       \
	"  user:\n"                                         \
	"    client-certificate: ./pki/../pki/client.crt\n" \
	"    client-key: %s\n"                              \
	"contexts:\n"                                       \
	"- name: c\n"                                       \
	"  context: {cluster: c, user: u}\n"                \
	"current-context: c\n"

static void test_kubeconfig__relative_paths(void **state)
{
	struct fx *fx = *state;
	struct stk_kubeconfig_opts opts = STK_KUBECONFIG_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg = NULL;
	stk_buf b = STK_BUF_INIT(1 << 20);
	char cwd[PATH_MAX];
	int rc;

	put(fx, "conf/pki/ca.crt", CA_PEM);
	put(fx, "conf/pki/client.crt", CERT_PEM);
	put(fx, "keys/client.key", KEY_PEM);
	/* Relative to the kubeconfig's directory, absolute as written. */
	assert_int_equal(stk_buf_printf(&b, FILES_KC, at(fx, "keys/client.key")), 0);
	put(fx, "conf/config", b.ptr);

	cfg = parse(b.ptr, at(fx, "conf"), NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_bytes(cfg->ca_pem, cfg->ca_pem_len, CA_PEM);
	assert_bytes(cfg->client_cert_pem, cfg->client_cert_pem_len, CERT_PEM);
	assert_bytes(cfg->client_key_pem, cfg->client_key_pem_len, KEY_PEM);
	stk_kubeconfig_free(cfg);

	/* Parsed against the wrong directory, the CA is not found and the message says which. */
	cfg = parse(b.ptr, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err, "cluster \"c\": cannot read certificate-authority");
	assert_msg_has(err, at(fx, "pki/ca.crt"));

	/* load() takes the directory from the path, even a relative one. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(fx->dir), 0);
	opts.path = "conf/config";
	cfg = NULL;
	rc = stk_kubeconfig_load(&cfg, &opts, &err);
	assert_int_equal(chdir(cwd), 0);
	if (rc)
		fail_msg("load: %s", err.message);
	assert_bytes(cfg->ca_pem, cfg->ca_pem_len, CA_PEM);
	assert_bytes(cfg->client_key_pem, cfg->client_key_pem_len, KEY_PEM);
	stk_kubeconfig_free(cfg);
	stk_buf_release(&b);
}

static void test_kubeconfig__missing_context_cluster_user(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	int rc;

	parse("clusters: [{name: c, cluster: {server: https://h}}]\n"
	      "users: [{name: u, user: {token: t}}]\n"
	      "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
	      "current-context: x\n",
	      fx->dir, "nope", &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err, "context \"nope\" not found");

	parse("clusters: [{name: c, cluster: {server: https://h}}]\n"
	      "contexts: [{name: x, context: {cluster: gone, user: u}}]\n"
	      "current-context: x\n",
	      fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err, "cluster \"gone\" of context \"x\" not found");

	parse("clusters: [{name: c, cluster: {server: https://h}}]\n"
	      "users: [{name: u, user: {token: t}}]\n"
	      "contexts: [{name: x, context: {cluster: c, user: who}}]\n"
	      "current-context: x\n",
	      fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err, "user \"who\" of context \"x\" not found");

	/* No current-context and none asked for. */
	parse("clusters: []\ncontexts: [{name: x, context: {cluster: c}}]\n", fx->dir, NULL, &err,
	      &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err, "current-context");
	parse("", fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);

	/* A context that names no cluster cannot work. */
	parse("contexts: [{name: x, context: {user: u}}]\ncurrent-context: x\n", fx->dir, NULL,
	      &err, &rc);
	assert_int_equal(rc, STK_EINVAL);
	assert_msg_has(err, "context \"x\" names no cluster");
}

static void test_kubeconfig__anonymous_context_without_user(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg;
	int rc;

	cfg = parse("clusters: [{name: c, cluster: {server: https://h:1}}]\n"
		    "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
		    fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_null(cfg->token);
	assert_null(cfg->token_file);
	assert_null(cfg->client_cert_pem);
	stk_kubeconfig_free(cfg);
}

/* A kubeconfig whose single user has `user_body` (a flow mapping). */
static char *with_user(const char *user_body)
{
	stk_buf b = STK_BUF_INIT(1 << 20);

	assert_int_equal(stk_buf_printf(&b,
					"clusters: [{name: c, cluster: {server: https://h}}]\n"
					"users: [{name: dev, user: %s}]\n"
					"contexts: [{name: x, context: {cluster: c, user: dev}}]\n"
					"current-context: x\n",
					user_body),
			 0);
	return stk_buf_detach(&b, NULL);
}

/* A kubeconfig whose single cluster has `cluster_body` (a flow mapping). */
static char *with_cluster(const char *cluster_body)
{
	stk_buf b = STK_BUF_INIT(1 << 20);

	assert_int_equal(stk_buf_printf(&b,
					"clusters: [{name: prod, cluster: %s}]\n"
					"contexts: [{name: x, context: {cluster: prod}}]\n"
					"current-context: x\n",
					cluster_body),
			 0);
	return stk_buf_detach(&b, NULL);
}

static void test_kubeconfig__bad_base64(void **state)
{
	static const char *const bad[] = {
		"\"not base64!\"", "QUJD=",	"QU=D", "QUJDRA", "Q===",
		"QUJD$EFG",	   "'QUJD-_==", "=QUJ",
	};
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg;
	char body[256], *yaml;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{server: https://h, certificate-authority-data: %s}",
			 bad[i]);
		if (bad[i][0] == '\'')
			snprintf(body, sizeof(body),
				 "{server: https://h, certificate-authority-data: %s'}", bad[i]);
		yaml = with_cluster(body);
		parse(yaml, fx->dir, NULL, &err, &rc);
		if (rc != STK_EPARSE)
			fail_msg("%s: rc %d (%s)", bad[i], rc, err.message);
		assert_msg_has(err,
			       "cluster \"prod\": certificate-authority-data is not valid base64");
		free(yaml);
	}

	/* Valid base64 of something that is not PEM. */
	yaml = with_cluster("{server: https://h, certificate-authority-data: aGVsbG8=}");
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "certificate-authority-data does not hold PEM data");
	free(yaml);

	/* Padding of 0, 1 and 2 bytes decodes to the exact length, also across lines. */
	{
		static const char *const pems[] = {CA_PEM, CA_PEM "x", CA_PEM "xy"};
		for (i = 0; i < 3; i++) {
			char *enc = b64(pems[i]);
			stk_buf b = STK_BUF_INIT(1 << 20);
			size_t k;

			assert_int_equal(stk_buf_puts(&b, "{server: https://h, "
							  "certificate-authority-data: \""),
					 0);
			/* Break the base64 every 20 characters, as a literal block would. */
			for (k = 0; enc[k]; k++) {
				if (k && k % 20 == 0)
					assert_int_equal(stk_buf_puts(&b, "\\n"), 0);
				assert_int_equal(stk_buf_putc(&b, enc[k]), 0);
			}
			assert_int_equal(stk_buf_puts(&b, "\"}"), 0);
			yaml = with_cluster(b.ptr);
			cfg = parse(yaml, fx->dir, NULL, &err, &rc);
			if (rc)
				fail_msg("padding case %zu: %s", i, err.message);
			assert_bytes(cfg->ca_pem, cfg->ca_pem_len, pems[i]);
			stk_kubeconfig_free(cfg);
			free(yaml);
			free(enc);
			stk_buf_release(&b);
		}
	}

	/* The user's fields are checked the same way. */
	yaml = with_user("{client-certificate-data: '@@@@', client-key-data: QUJD}");
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "user \"dev\": client-certificate-data is not valid base64");
	free(yaml);
}

static void test_kubeconfig__unsupported_exec(void **state)
{
	static const struct {
		const char *user, *field;
	} cases[] = {
		{"{exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}}", "exec"},
		{"{auth-provider: {name: gcp, config: {}}}", "auth-provider"},
		{"{username: admin, password: hunter2}", "username"},
		{"{password: hunter2}", "password"},
		{"{token: t, as: someone-else}", "as"},
		{"{token: t, as-groups: [system:masters]}", "as-groups"},
	};
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg;
	char want[128], *yaml;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		yaml = with_user(cases[i].user);
		parse(yaml, fx->dir, NULL, &err, &rc);
		if (rc != STK_EINVAL)
			fail_msg("%s: rc %d (%s)", cases[i].user, rc, err.message);
		snprintf(want, sizeof(want), "user \"dev\": %s is not supported", cases[i].field);
		assert_msg_has(err, want);
		free(yaml);
	}
	/* Empty values are what kubectl leaves behind and mean "not set". */
	yaml = with_user("{token: t, exec: null, as-groups: [], as-user-extra: {}, username: ''}");
	cfg = parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->token, "t");
	stk_kubeconfig_free(cfg);
	free(yaml);
}

static void test_kubeconfig__cert_without_key(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	char *cert = b64(CERT_PEM), *key = b64(KEY_PEM);
	char body[512], *yaml;
	int rc;

	snprintf(body, sizeof(body), "{client-certificate-data: %s}", cert);
	yaml = with_user(body);
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EINVAL);
	assert_msg_has(err, "user \"dev\": client certificate without client key");
	free(yaml);

	snprintf(body, sizeof(body), "{client-key-data: %s}", key);
	yaml = with_user(body);
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EINVAL);
	assert_msg_has(err, "user \"dev\": client key without client certificate");
	free(yaml);

	/* A file and inline data for the same thing: kubectl refuses this too. */
	put(fx, "c.crt", CERT_PEM);
	snprintf(body, sizeof(body),
		 "{client-certificate: c.crt, client-certificate-data: %s, client-key-data: %s}",
		 cert, key);
	yaml = with_user(body);
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EINVAL);
	assert_msg_has(err, "both client-certificate and client-certificate-data");
	free(yaml);
	free(cert);
	free(key);
}

static void test_kubeconfig__token_and_token_file(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg;
	char *yaml;
	int rc;

	yaml = with_user("{token: \"eyJhbGciOi.J9.sig\"}");
	cfg = parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->token, "eyJhbGciOi.J9.sig");
	assert_null(cfg->token_file);
	stk_kubeconfig_free(cfg);
	free(yaml);

	/* Resolved against the kubeconfig's directory and recorded, not kept in memory. */
	put(fx, "secrets/token", "file-token\n");
	yaml = with_user("{tokenFile: secrets/token}");
	cfg = parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_null(cfg->token);
	assert_string_equal(cfg->token_file, at(fx, "secrets/token"));
	stk_kubeconfig_free(cfg);

	/* Checked at load time, naming the user. */
	assert_int_equal(unlink(at(fx, "secrets/token")), 0);
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err, "user \"dev\": tokenFile");
	assert_msg_has(err, at(fx, "secrets/token"));
	put(fx, "secrets/token", " \n");
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EINVAL);
	assert_msg_has(err, "is empty");
	free(yaml);

	/* A token that would break the Authorization header. */
	yaml = with_user("{token: \"abc\\ndef\"}");
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EINVAL);
	assert_msg_has(err, "user \"dev\": token contains whitespace");
	free(yaml);
}

static void test_kubeconfig__read_token(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	char *tok = NULL, *big;
	int rc;

	put(fx, "t1", "\t  tok-123 \r\n\n");
	assert_int_equal(stk_kubeconfig_read_token(&tok, at(fx, "t1"), &err), 0);
	assert_string_equal(tok, "tok-123");
	free(tok);
	tok = NULL;

	put(fx, "t2", "\n \n");
	assert_int_equal(stk_kubeconfig_read_token(&tok, at(fx, "t2"), &err), STK_EINVAL);
	assert_null(tok);
	assert_msg_has(err, "empty");

	rc = stk_kubeconfig_read_token(&tok, at(fx, "missing"), &err);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err, at(fx, "missing"));

	put(fx, "t3", "two\nlines\n");
	assert_int_equal(stk_kubeconfig_read_token(&tok, at(fx, "t3"), &err), STK_EINVAL);

	/* Exactly at the cap is fine; one byte more is not. */
	big = malloc(STK_LIMIT_TOKEN_FILE + 1);
	assert_non_null(big);
	memset(big, 'a', STK_LIMIT_TOKEN_FILE + 1);
	put_n(fx, "t4", big, STK_LIMIT_TOKEN_FILE);
	assert_int_equal(stk_kubeconfig_read_token(&tok, at(fx, "t4"), &err), 0);
	assert_int_equal(strlen(tok), STK_LIMIT_TOKEN_FILE);
	free(tok);
	tok = NULL;
	put_n(fx, "t5", big, STK_LIMIT_TOKEN_FILE + 1);
	assert_int_equal(stk_kubeconfig_read_token(&tok, at(fx, "t5"), &err), STK_ETOOBIG);
	assert_null(tok);
	free(big);

	/* A directory (or FIFO) is not a token file and must not block. */
	assert_int_equal(mkfifo(at(fx, "fifo"), 0600), 0);
	assert_int_equal(stk_kubeconfig_read_token(&tok, at(fx, "fifo"), &err), STK_ENOTFOUND);
	assert_int_equal(stk_kubeconfig_read_token(&tok, fx->dir, &err), STK_ENOTFOUND);
	assert_null(tok);
}

static void make_sa_dir(const struct fx *fx, const char *ns)
{
	put(fx, "sa/ca.crt", CA_PEM);
	put(fx, "sa/token", "sa-token\n");
	if (ns)
		put(fx, "sa/namespace", ns);
}

static void test_kubeconfig__in_cluster(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg = NULL;
	int rc;

	make_sa_dir(fx, "  stoker-system\n");
	/* Not in a cluster: both variables are needed. */
	assert_int_equal(stk_kubeconfig_in_cluster(&cfg, at(fx, "sa"), &err), STK_ENOTFOUND);
	assert_msg_has(err, "KUBERNETES_SERVICE_HOST");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	assert_int_equal(stk_kubeconfig_in_cluster(&cfg, at(fx, "sa"), &err), STK_ENOTFOUND);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);

	rc = stk_kubeconfig_in_cluster(&cfg, at(fx, "sa"), &err);
	if (rc)
		fail_msg("in_cluster: %s", err.message);
	assert_string_equal(cfg->server, "https://10.96.0.1:443");
	assert_string_equal(cfg->namespace, "stoker-system");
	assert_bytes(cfg->ca_pem, cfg->ca_pem_len, CA_PEM);
	assert_string_equal(cfg->token_file, at(fx, "sa/token"));
	assert_null(cfg->token);
	assert_true(cfg->in_cluster);
	stk_kubeconfig_free(cfg);
	cfg = NULL;

	/* IPv6 service hosts are bracketed. */
	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	assert_int_equal(stk_kubeconfig_in_cluster(&cfg, at(fx, "sa"), &err), 0);
	assert_string_equal(cfg->server, "https://[fd00:10:96::1]:6443");
	stk_kubeconfig_free(cfg);
	cfg = NULL;

	/* No namespace file: "default". */
	assert_int_equal(unlink(at(fx, "sa/namespace")), 0);
	assert_int_equal(stk_kubeconfig_in_cluster(&cfg, at(fx, "sa"), &err), 0);
	assert_string_equal(cfg->namespace, "default");
	stk_kubeconfig_free(cfg);
	cfg = NULL;

	setenv("KUBERNETES_SERVICE_PORT", "https", 1);
	assert_int_equal(stk_kubeconfig_in_cluster(&cfg, at(fx, "sa"), &err), STK_EINVAL);
	assert_msg_has(err, "KUBERNETES_SERVICE_PORT");
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);

	/* The token must be readable at load. */
	assert_int_equal(unlink(at(fx, "sa/token")), 0);
	assert_int_equal(stk_kubeconfig_in_cluster(&cfg, at(fx, "sa"), &err), STK_ENOTFOUND);
	assert_msg_has(err, "service account token");
	assert_msg_has(err, at(fx, "sa/token"));
	put(fx, "sa/token", "again");
	put(fx, "sa/ca.crt", "not a certificate");
	assert_int_equal(stk_kubeconfig_in_cluster(&cfg, at(fx, "sa"), &err), STK_EPARSE);
	assert_msg_has(err, "PEM");
	assert_int_equal(unlink(at(fx, "sa/ca.crt")), 0);
	assert_int_equal(stk_kubeconfig_in_cluster(&cfg, at(fx, "sa"), &err), STK_ENOTFOUND);
	assert_msg_has(err, at(fx, "sa/ca.crt"));
	assert_null(cfg);
}

static void test_kubeconfig__explicit_path_wins(void **state)
{
	struct fx *fx = *state;
	struct stk_kubeconfig_opts opts = STK_KUBECONFIG_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg = NULL;
	char env[PATH_MAX * 2];

	make_sa_dir(fx, "pod-ns");
	put(fx, "explicit",
	    "clusters: [{name: c, cluster: {server: https://explicit:1}}]\n"
	    "contexts: [{name: x, context: {cluster: c}},\n"
	    "           {name: y, context: {cluster: c, namespace: why}}]\n"
	    "current-context: x\n");
	put(fx, "fromenv",
	    "clusters: [{name: c, cluster: {server: https://env:2}}]\n"
	    "contexts: [{name: x, context: {cluster: c}},\n"
	    "           {name: y, context: {cluster: c, namespace: env-y}}]\n"
	    "current-context: x\n");
	put(fx, ".kube/config",
	    "clusters: [{name: c, cluster: {server: https://home:3}}]\n"
	    "contexts: [{name: x, context: {cluster: c}}]\n"
	    "current-context: x\n");
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	snprintf(env, sizeof(env), "%s", at(fx, "fromenv"));
	setenv("KUBECONFIG", env, 1);
	opts.sa_dir = at(fx, "sa");

	/* Explicit path beats in-cluster and $KUBECONFIG. */
	opts.path = at(fx, "explicit");
	assert_int_equal(stk_kubeconfig_load(&cfg, &opts, &err), 0);
	assert_string_equal(cfg->server, "https://explicit:1");
	assert_false(cfg->in_cluster);
	stk_kubeconfig_free(cfg);
	opts.context = "y";
	assert_int_equal(stk_kubeconfig_load(&cfg, &opts, &err), 0);
	assert_string_equal(cfg->namespace, "why");
	stk_kubeconfig_free(cfg);

	/* Then in-cluster beats $KUBECONFIG... */
	opts.path = NULL;
	opts.context = NULL;
	assert_int_equal(stk_kubeconfig_load(&cfg, &opts, &err), 0);
	assert_true(cfg->in_cluster);
	assert_string_equal(cfg->server, "https://10.0.0.1:443");
	assert_string_equal(cfg->namespace, "pod-ns");
	stk_kubeconfig_free(cfg);

	/* ...unless a context is asked for, which only a kubeconfig can have. */
	opts.context = "y";
	assert_int_equal(stk_kubeconfig_load(&cfg, &opts, &err), 0);
	assert_string_equal(cfg->server, "https://env:2");
	assert_string_equal(cfg->namespace, "env-y");
	stk_kubeconfig_free(cfg);
	opts.context = NULL;

	/* Then $KUBECONFIG beats ~/.kube/config. */
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(stk_kubeconfig_load(&cfg, &opts, &err), 0);
	assert_string_equal(cfg->server, "https://env:2");
	stk_kubeconfig_free(cfg);

	/* Then $HOME/.kube/config. */
	unsetenv("KUBECONFIG");
	assert_int_equal(stk_kubeconfig_load(&cfg, NULL, &err), 0);
	assert_string_equal(cfg->server, "https://home:3");
	stk_kubeconfig_free(cfg);
	cfg = NULL;

	/* Nothing at all. */
	assert_int_equal(unlink(at(fx, ".kube/config")), 0);
	assert_int_equal(stk_kubeconfig_load(&cfg, NULL, &err), STK_ENOTFOUND);
	assert_msg_has(err, ".kube/config");
	unsetenv("HOME");
	assert_int_equal(stk_kubeconfig_load(&cfg, NULL, &err), STK_ENOTFOUND);
	assert_null(cfg);

	/* An explicit path that does not exist is an error, not a fall-through. */
	opts.path = at(fx, "nope");
	assert_int_equal(stk_kubeconfig_load(&cfg, &opts, &err), STK_ENOTFOUND);
	assert_msg_has(err, at(fx, "nope"));
	assert_null(cfg);
}

static void test_kubeconfig__kubeconfig_env_list(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg = NULL;
	char env[PATH_MAX * 4];

	/* a: the current context and a user; b: the cluster (with a CA relative to b's
	 * directory), a user of the same name that must lose, and its own current-context. */
	put(fx, "a/config",
	    "current-context: dev\n"
	    "contexts: [{name: dev, context: {cluster: shared, user: me}}]\n"
	    "users: [{name: me, user: {token: from-a}}]\n");
	put(fx, "b/pki/ca.crt", CA_PEM);
	put(fx, "b/config",
	    "current-context: other\n"
	    "clusters: [{name: shared, cluster: {server: https://b:6443,\n"
	    "            certificate-authority: pki/ca.crt}}]\n"
	    "contexts: [{name: other, context: {cluster: shared}}]\n"
	    "users: [{name: me, user: {token: from-b}}]\n");
	put(fx, ".kube/config",
	    "clusters: [{name: c, cluster: {server: https://home:3}}]\n"
	    "contexts: [{name: x, context: {cluster: c}}]\n"
	    "current-context: x\n");
	/* Missing and empty entries are skipped, repeats ignored. */
	snprintf(env, sizeof(env), "%s::%s:%s:%s", at(fx, "missing"), at(fx, "a/config"),
		 at(fx, "b/config"), at(fx, "a/config"));
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(stk_kubeconfig_load(&cfg, NULL, &err), 0);
	assert_string_equal(cfg->server, "https://b:6443");
	assert_string_equal(cfg->token, "from-a");
	assert_bytes(cfg->ca_pem, cfg->ca_pem_len, CA_PEM);
	stk_kubeconfig_free(cfg);

	/* The first existing file alone, when it is complete. */
	snprintf(env, sizeof(env), "%s:%s", at(fx, "b/config"), at(fx, "a/config"));
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(stk_kubeconfig_load(&cfg, NULL, &err), 0);
	assert_string_equal(cfg->server, "https://b:6443");
	assert_null(cfg->token);
	stk_kubeconfig_free(cfg);
	cfg = NULL;

	/* A failure names the files. */
	snprintf(env, sizeof(env), "%s", at(fx, "a/config"));
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(stk_kubeconfig_load(&cfg, NULL, &err), STK_ENOTFOUND);
	assert_msg_has(err, at(fx, "a/config"));
	assert_msg_has(err, "cluster \"shared\" of context \"dev\" not found");

	/* None exists: an error, and ~/.kube/config is not consulted (as kubectl). */
	snprintf(env, sizeof(env), "%s:%s", at(fx, "x"), at(fx, "y"));
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(stk_kubeconfig_load(&cfg, NULL, &err), STK_ENOTFOUND);
	assert_msg_has(err, "$KUBECONFIG");
	assert_null(cfg);

	/* A malformed file anywhere in the list is an error naming it. */
	put(fx, "bad", "clusters: [\n");
	snprintf(env, sizeof(env), "%s:%s", at(fx, "b/config"), at(fx, "bad"));
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(stk_kubeconfig_load(&cfg, NULL, &err), STK_EPARSE);
	assert_msg_has(err, at(fx, "bad"));
	assert_null(cfg);
}

/* Writes `len` bytes of `data` into the FIFO at `path` from a child process. */
static pid_t feed_fifo(const char *path, const char *data, size_t len)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_WRONLY);
		size_t off = 0;

		signal(SIGPIPE, SIG_IGN);
		while (fd >= 0 && off < len) {
			ssize_t w = write(fd, data + off, len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		_exit(0);
	}
	return pid;
}

static void test_kubeconfig__size_cap(void **state)
{
	struct fx *fx = *state;
	struct stk_kubeconfig_opts opts = STK_KUBECONFIG_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg = NULL;
	const char *head = "current-context: x\n# ";
	const char *small = "clusters: [{name: c, cluster: {server: https://piped:1}}]\n"
			    "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n";
	size_t n = STK_LIMIT_KUBECONFIG + 1;
	char *big = malloc(n);
	char *yaml;
	pid_t pid;
	int rc, status;

	assert_non_null(big);
	memset(big, 'x', n);
	memcpy(big, head, strlen(head));
	assert_int_equal(stk_kubeconfig_parse(&cfg, big, n, fx->dir, NULL, &err), STK_ETOOBIG);
	assert_null(cfg);
	put_n(fx, "big", big, n);
	opts.path = at(fx, "big");
	assert_int_equal(stk_kubeconfig_load(&cfg, &opts, &err), STK_ETOOBIG);
	assert_msg_has(err, at(fx, "big"));
	assert_null(cfg);

	/* Through a pipe (`--kubeconfig <(...)`) the size is only known by reading. */
	assert_int_equal(mkfifo(at(fx, "pipe"), 0600), 0);
	opts.path = at(fx, "pipe");
	pid = feed_fifo(opts.path, big, n);
	assert_int_equal(stk_kubeconfig_load(&cfg, &opts, &err), STK_ETOOBIG);
	assert_null(cfg);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	pid = feed_fifo(opts.path, small, strlen(small));
	rc = stk_kubeconfig_load(&cfg, &opts, &err);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (rc)
		fail_msg("piped kubeconfig: %s", err.message);
	assert_string_equal(cfg->server, "https://piped:1");
	stk_kubeconfig_free(cfg);
	free(big);

	/* A referenced file over its cap. */
	big = malloc(STK_LIMIT_KUBECONFIG_PEM + 100);
	assert_non_null(big);
	memset(big, 'A', STK_LIMIT_KUBECONFIG_PEM + 100);
	memcpy(big, CA_PEM, strlen(CA_PEM));
	put_n(fx, "huge-ca.crt", big, STK_LIMIT_KUBECONFIG_PEM + 100);
	free(big);
	yaml = with_cluster("{server: https://h, certificate-authority: huge-ca.crt}");
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ETOOBIG);
	assert_msg_has(err, "huge-ca.crt");
	free(yaml);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_kubeconfig__alias_bomb(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg;
	stk_buf b = STK_BUF_INIT(STK_LIMIT_KUBECONFIG);
	double t0;
	size_t i;
	int rc;

	/* Billion laughs hidden in an extension: 10^9 nodes if aliases were expanded. Each
	 * alias costs what it expands to, so this is refused quickly, at its written size. */
	assert_int_equal(stk_buf_puts(&b, "lol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, "
					  "lol]\n"),
			 0);
	for (i = 1; i < 9; i++)
		assert_int_equal(stk_buf_printf(&b,
						"lol%zu: &a%zu [*a%zu, *a%zu, *a%zu, *a%zu, *a%zu, "
						"*a%zu, *a%zu, *a%zu, *a%zu, *a%zu]\n",
						i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
						i - 1, i - 1, i - 1, i - 1),
				 0);
	assert_int_equal(stk_buf_puts(&b, "clusters: [{name: c, cluster: {server: https://h,\n"
					  "  extensions: [{name: x, extension: *a8}]}}]\n"
					  "contexts: [{name: x, context: {cluster: c}}]\n"
					  "current-context: x\n"),
			 0);
	t0 = now_s();
	parse(b.ptr, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ETOOBIG);
	assert_msg_has(err, "YAML nodes");
	assert_true(now_s() - t0 < 2.0);

	/* Quadratic walks: many aliases of one wide mapping. Each alias is charged the
	 * mapping's size, so lookups over the list stay within the budget. */
	stk_buf_reset(&b);
	assert_int_equal(stk_buf_puts(&b, "wide: &w {"), 0);
	for (i = 0; i < 20000; i++)
		assert_int_equal(stk_buf_printf(&b, "k%zu: v, ", i), 0);
	assert_int_equal(stk_buf_puts(&b, "name: x}\ncontexts: ["), 0);
	for (i = 0; i < 20000; i++)
		assert_int_equal(stk_buf_puts(&b, "*w, "), 0);
	assert_int_equal(stk_buf_puts(&b, "]\ncurrent-context: x\n"), 0);
	t0 = now_s();
	parse(b.ptr, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ETOOBIG);
	assert_true(now_s() - t0 < 2.0);

	/* A flat flood of references to one scalar is charged one node each. */
	stk_buf_reset(&b);
	assert_int_equal(stk_buf_puts(&b, "a: &x y\nb: ["), 0);
	for (i = 0; i <= STK_LIMIT_KUBECONFIG_NODES; i++)
		assert_int_equal(stk_buf_puts(&b, "*x,"), 0);
	assert_int_equal(stk_buf_puts(&b, "]\n"), 0);
	parse(b.ptr, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ETOOBIG);
	assert_msg_has(err, "YAML nodes");

	/* A modest alias tree within the budget is fine (and not expanded in memory). */
	stk_buf_reset(&b);
	assert_int_equal(stk_buf_puts(&b, "l0: &b0 [x, x, x, x, x, x, x, x, x, x]\n"), 0);
	for (i = 1; i < 4; i++)
		assert_int_equal(stk_buf_printf(&b,
						"l%zu: &b%zu [*b%zu, *b%zu, *b%zu, *b%zu, *b%zu, "
						"*b%zu, *b%zu, *b%zu, *b%zu, *b%zu]\n",
						i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
						i - 1, i - 1, i - 1, i - 1),
				 0);
	assert_int_equal(stk_buf_puts(&b, "clusters: [{name: c, cluster: {server: https://h}}]\n"
					  "contexts: [{name: x, context: {cluster: c}}]\n"
					  "current-context: x\n"),
			 0);
	cfg = parse(b.ptr, fx->dir, NULL, &err, &rc);
	if (rc)
		fail_msg("modest aliases: %s", err.message);
	assert_string_equal(cfg->server, "https://h");
	stk_kubeconfig_free(cfg);

	/* Anchors used for what they are for: sharing one user definition. */
	stk_buf_reset(&b);
	assert_int_equal(stk_buf_puts(&b, "clusters:\n"
					  "- name: c\n"
					  "  cluster: &cl {server: https://shared}\n"
					  "- name: d\n"
					  "  cluster: *cl\n"
					  "contexts: [{name: x, context: {cluster: d}}]\n"
					  "current-context: x\n"),
			 0);
	cfg = parse(b.ptr, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->server, "https://shared");
	stk_kubeconfig_free(cfg);

	/* An alias to nothing, or to the node that contains it (a cycle), is malformed. */
	parse("a: *nothing\n", fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "*nothing");
	parse("a: &loop [*loop]\n", fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);

	/* Too many anchors, and nesting too deep. */
	stk_buf_reset(&b);
	for (i = 0; i <= STK_LIMIT_KUBECONFIG_ANCHORS; i++)
		assert_int_equal(stk_buf_printf(&b, "k%zu: &n%zu v\n", i, i), 0);
	parse(b.ptr, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ETOOBIG);
	assert_msg_has(err, "anchors");
	stk_buf_reset(&b);
	for (i = 0; i < 100000; i++)
		assert_int_equal(stk_buf_putc(&b, '['), 0);
	parse(b.ptr, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ETOOBIG);
	assert_msg_has(err, "deeper");
	stk_buf_release(&b);
}

/* Exactly what e2e/cluster's write_kubeconfig writes, for both of its users. */
static void e2e_kubeconfig(const struct fx *fx, const char *file, const char *user,
			   const char *cert, const char *key, int port)
{
	stk_buf b = STK_BUF_INIT(1 << 20);
	const char *name = "stoker-e2e";

	assert_int_equal(stk_buf_printf(&b,
					"apiVersion: v1\n"
					"kind: Config\n"
					"clusters:\n"
					"- name: %s\n"
					"  cluster:\n"
					"    server: https://127.0.0.1:%d\n"
					"    certificate-authority: %s/pki/ca.crt\n"
					"users:\n"
					"- name: %s\n"
					"  user:\n"
					"    client-certificate: %s\n"
					"    client-key: %s\n"
					"contexts:\n"
					"- name: %s\n"
					"  context: {cluster: %s, user: %s, namespace: default}\n"
					"current-context: %s\n",
					name, port, fx->dir, user, cert, key, name, name, user,
					name),
			 0);
	put(fx, file, b.ptr);
	assert_int_equal(chmod(at(fx, file), 0600), 0);
	stk_buf_release(&b);
}

static void test_kubeconfig__e2e_cluster_shape(void **state)
{
	struct fx *fx = *state;
	struct stk_kubeconfig_opts opts = STK_KUBECONFIG_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg = NULL;
	char cert[PATH_MAX], key[PATH_MAX];

	put(fx, "pki/ca.crt", CA_PEM);
	put(fx, "pki/admin.crt", CERT_PEM);
	put(fx, "pki/admin.key", KEY_PEM);
	put(fx, "pki/controller-manager.crt", CERT_PEM "cm");
	put(fx, "pki/controller-manager.key", KEY_PEM "cm");

	snprintf(cert, sizeof(cert), "%s", at(fx, "pki/admin.crt"));
	snprintf(key, sizeof(key), "%s", at(fx, "pki/admin.key"));
	e2e_kubeconfig(fx, "kubeconfig", "stoker-e2e-admin", cert, key, 36443);
	setenv("KUBECONFIG", at(fx, "kubeconfig"), 1);
	if (stk_kubeconfig_load(&cfg, &opts, &err) != 0)
		fail_msg("e2e kubeconfig: %s", err.message);
	assert_string_equal(cfg->server, "https://127.0.0.1:36443");
	assert_string_equal(cfg->namespace, "default");
	assert_bytes(cfg->ca_pem, cfg->ca_pem_len, CA_PEM);
	assert_bytes(cfg->client_cert_pem, cfg->client_cert_pem_len, CERT_PEM);
	assert_bytes(cfg->client_key_pem, cfg->client_key_pem_len, KEY_PEM);
	assert_null(cfg->token);
	assert_false(cfg->insecure_skip_tls_verify);
	stk_kubeconfig_free(cfg);
	cfg = NULL;

	/* The controller manager's user has a colon in its name, in a flow mapping. */
	snprintf(cert, sizeof(cert), "%s", at(fx, "pki/controller-manager.crt"));
	snprintf(key, sizeof(key), "%s", at(fx, "pki/controller-manager.key"));
	e2e_kubeconfig(fx, "controller-manager.kubeconfig", "system:kube-controller-manager", cert,
		       key, 36443);
	opts.path = at(fx, "controller-manager.kubeconfig");
	if (stk_kubeconfig_load(&cfg, &opts, &err) != 0)
		fail_msg("controller-manager kubeconfig: %s", err.message);
	assert_bytes(cfg->client_cert_pem, cfg->client_cert_pem_len, CERT_PEM "cm");
	assert_bytes(cfg->client_key_pem, cfg->client_key_pem_len, KEY_PEM "cm");
	stk_kubeconfig_free(cfg);
}

static void test_kubeconfig__server_and_tls_options(void **state)
{
	static const struct {
		const char *cluster, *server;
	} good[] = {
		{"{server: https://h:6443///}", "https://h:6443"},
		{"{server: h.example:6443}", "https://h.example:6443"},
		{"{server: HTTPS://H/prefix/}", "HTTPS://H/prefix"},
		{"{server: http://127.0.0.1:8080}", "http://127.0.0.1:8080"},
	};
	static const char *const bad[] = {
		"{}",
		"{server: ''}",
		"{server: ftp://h}",
		"{server: 'https://'}",
		"{server: 'https:///x'}",
		"{server: \"https://h\\n\"}",
		"{server: [a]}",
		"{server: https://h, proxy-url: http://proxy:3128}",
	};
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg;
	char *yaml, *ca = b64(CA_PEM), body[512];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		yaml = with_cluster(good[i].cluster);
		cfg = parse(yaml, fx->dir, NULL, &err, &rc);
		if (rc)
			fail_msg("%s: %s", good[i].cluster, err.message);
		assert_string_equal(cfg->server, good[i].server);
		stk_kubeconfig_free(cfg);
		free(yaml);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		yaml = with_cluster(bad[i]);
		parse(yaml, fx->dir, NULL, &err, &rc);
		if (rc != STK_EINVAL && rc != STK_EPARSE)
			fail_msg("%s: rc %d", bad[i], rc);
		assert_msg_has(err, "cluster \"prod\"");
		free(yaml);
	}

	/* YAML 1.1 booleans, as kubectl's YAML library reads them. */
	yaml = with_cluster("{server: https://h, insecure-skip-tls-verify: yes, tls-server-name: "
			    "api.internal}");
	cfg = parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_true(cfg->insecure_skip_tls_verify);
	assert_string_equal(cfg->tls_server_name, "api.internal");
	stk_kubeconfig_free(cfg);
	free(yaml);
	yaml = with_cluster("{server: https://h, insecure-skip-tls-verify: \"true\"}");
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "insecure-skip-tls-verify must be true or false");
	free(yaml);

	/* Skipping verification and naming a CA contradict each other. */
	snprintf(body, sizeof(body),
		 "{server: https://h, insecure-skip-tls-verify: true, certificate-authority-data: "
		 "%s}",
		 ca);
	yaml = with_cluster(body);
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EINVAL);
	assert_msg_has(err, "insecure-skip-tls-verify");
	free(yaml);
	free(ca);
}

static void test_kubeconfig__nulls_as_kubectl_writes(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg;
	int rc;

	/* `kubectl config view` prints empty sections as null; empty values mean unset. */
	cfg = parse("apiVersion: v1\n"
		    "clusters:\n"
		    "- cluster:\n"
		    "    server: https://h\n"
		    "    insecure-skip-tls-verify:\n"
		    "    certificate-authority: ~\n"
		    "  name: c\n"
		    "contexts:\n"
		    "- context:\n"
		    "    cluster: c\n"
		    "    user: u\n"
		    "    namespace:\n"
		    "  name: x\n"
		    "current-context: x\n"
		    "kind: Config\n"
		    "preferences: {}\n"
		    "extensions:\n"
		    "users:\n"
		    "- name: u\n"
		    "  user:\n"
		    "    token: NULL\n"
		    "    exec:\n"
		    "    tokenFile: Null\n",
		    fx->dir, NULL, &err, &rc);
	if (rc)
		fail_msg("%s", err.message);
	assert_string_equal(cfg->namespace, "default");
	assert_false(cfg->insecure_skip_tls_verify);
	assert_null(cfg->ca_pem);
	assert_null(cfg->token);
	assert_null(cfg->token_file);
	stk_kubeconfig_free(cfg);

	/* A quoted "null" is a string, not null. */
	cfg = parse("clusters: null\nusers:\ncontexts: [{name: x, context: {cluster: c}}]\n"
		    "current-context: x\n",
		    fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	cfg = parse("clusters: [{name: c, cluster: {server: https://h}}]\n"
		    "contexts: [{name: x, context: {cluster: c, user: 'null'}}]\n"
		    "current-context: x\n",
		    fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err, "user \"null\"");
}

static void test_kubeconfig__malformed(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	struct stk_kubeconfig *cfg;
	int rc;

	parse("clusters:\n- name: c\n  cluster: {server: [\n", fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "line ");
	parse("current-context: \"caf\xe9\"\n", fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "invalid YAML at byte 22: invalid trailing UTF-8 octet");
	parse("- just\n- a list\n", fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "not a YAML mapping");
	parse("kind: Pod\ncurrent-context: x\n", fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "kind must be Config");
	parse("clusters: {c: 1}\ncontexts: [{name: x, context: {cluster: c}}]\ncurrent-context: "
	      "x\n",
	      fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "clusters must be a list");
	parse("contexts: [notamap]\ncurrent-context: x\n", fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "contexts[0] must be a mapping");
	parse("contexts: [{name: x, context: [c]}]\ncurrent-context: x\n", fx->dir, NULL, &err,
	      &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "context \"x\": context must be a mapping");

	/* Ambiguity about where to connect or who to be is refused. */
	parse("clusters: [{name: c, cluster: {server: https://a, server: https://b}}]\n"
	      "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
	      fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "duplicate key server");
	parse("clusters: [{name: c, cluster: {server: https://a}},\n"
	      "           {name: c, cluster: {server: https://b}}]\n"
	      "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
	      fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EINVAL);
	assert_msg_has(err, "cluster \"c\" is defined twice");

	/* Names with control characters still give one-line messages. */
	parse("contexts: []\ncurrent-context: \"evil\\nname\"\n", fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err, "evil?name");
	parse("current-context: \"a\\0b\"\n", fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "NUL");

	/* Only the first document counts. */
	cfg = parse("clusters: [{name: c, cluster: {server: https://first}}]\n"
		    "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n"
		    "---\nthis: [is not read\n",
		    fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->server, "https://first");
	stk_kubeconfig_free(cfg);
}

static void test_kubeconfig__referenced_files(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	char *yaml, *ca = b64(CA_PEM), body[512];
	int rc;

	yaml = with_cluster("{server: https://h, certificate-authority: /nonexistent/ca.crt}");
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err,
		       "cluster \"prod\": cannot read certificate-authority /nonexistent/ca.crt");
	assert_msg_has(err, "/nonexistent/ca.crt");
	free(yaml);

	put(fx, "der.crt", "\x30\x82\x01\x0a binary");
	yaml = with_cluster("{server: https://h, certificate-authority: der.crt}");
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EPARSE);
	assert_msg_has(err, "does not hold PEM data");
	free(yaml);

	/* A FIFO named by the kubeconfig is refused instead of blocking the load. */
	assert_int_equal(mkfifo(at(fx, "ca.fifo"), 0600), 0);
	yaml = with_cluster("{server: https://h, certificate-authority: ca.fifo}");
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_ENOTFOUND);
	assert_msg_has(err, "not a regular file");
	free(yaml);

	put(fx, "ca.crt", CA_PEM);
	snprintf(body, sizeof(body),
		 "{server: https://h, certificate-authority: ca.crt, certificate-authority-data: "
		 "%s}",
		 ca);
	yaml = with_cluster(body);
	parse(yaml, fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EINVAL);
	assert_msg_has(err, "both certificate-authority and certificate-authority-data");
	free(yaml);
	free(ca);
}

static void test_kubeconfig__namespace(void **state)
{
	struct fx *fx = *state;
	stk_err err = STK_ERR_INIT;
	int rc;

	parse("clusters: [{name: c, cluster: {server: https://h}}]\n"
	      "contexts: [{name: x, context: {cluster: c, namespace: ../../secrets}}]\n"
	      "current-context: x\n",
	      fx->dir, NULL, &err, &rc);
	assert_int_equal(rc, STK_EINVAL);
	assert_msg_has(err, "context \"x\": namespace \"../../secrets\" is not a valid name");

	make_sa_dir(fx, "Bad_NS\n");
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	{
		struct stk_kubeconfig *cfg = NULL;
		assert_int_equal(stk_kubeconfig_in_cluster(&cfg, at(fx, "sa"), &err), STK_EINVAL);
		assert_msg_has(err, "namespace");
		assert_null(cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kubeconfig__inline_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__named_vs_current_context, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__flow_style_and_json, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__relative_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__missing_context_cluster_user,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__anonymous_context_without_user,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__bad_base64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__unsupported_exec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__cert_without_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__token_and_token_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__read_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__in_cluster, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__explicit_path_wins, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__kubeconfig_env_list, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__size_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__alias_bomb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__e2e_cluster_shape, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__server_and_tls_options, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__nulls_as_kubectl_writes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__referenced_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kubeconfig__namespace, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
