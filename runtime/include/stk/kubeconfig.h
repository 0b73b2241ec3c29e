/*
 * Where and how to reach the API server: a kubeconfig file (current or named context) or
 * the in-cluster service account. Credentials are held in memory only, never written to
 * disk; files a kubeconfig names are read at load time (paths relative to the
 * kubeconfig's directory), except a token file, which the client re-reads.
 */
#ifndef STK_KUBECONFIG_H
#define STK_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "stk/err.h"

struct stk_kubeconfig {
	char *server;	 /* "https://host:port", no trailing slash */
	char *namespace; /* the context's namespace, or the pod's; "default" if none */

	/* PEM bytes; NULL means "not given". The client passes them to curl as blobs. */
	char *ca_pem;
	size_t ca_pem_len;
	char *client_cert_pem;
	size_t client_cert_pem_len;
	char *client_key_pem;
	size_t client_key_pem_len;
	bool insecure_skip_tls_verify;
	char *tls_server_name; /* SNI/verification name override, or NULL */

	char *token;	  /* a static bearer token, or NULL */
	char *token_file; /* re-read periodically and after a 401, or NULL */
	bool in_cluster;
};

/* Options for stk_kubeconfig_load. */
struct stk_kubeconfig_opts {
	const char *path;    /* explicit kubeconfig (--kubeconfig), or NULL */
	const char *context; /* context name, or NULL for current-context */
	/* Root of the service-account files for in-cluster config; NULL means
	 * "/var/run/secrets/kubernetes.io/serviceaccount" (tests point it elsewhere). */
	const char *sa_dir;
};

#define STK_KUBECONFIG_OPTS_INIT \
	{                        \
		NULL, NULL, NULL \
	}

/*
 * Resolves the configuration the way DESIGN.md §11 says: `opts->path` if given; else the
 * in-cluster config when KUBERNETES_SERVICE_HOST is set; else $KUBECONFIG (first existing
 * file of a colon-separated list); else ~/.kube/config. On success *out is a new config
 * the caller frees with stk_kubeconfig_free. Errors: STK_ENOTFOUND (no configuration
 * anywhere, named context/cluster/user missing, unreadable referenced file), STK_EPARSE
 * (malformed YAML or base64), STK_EINVAL (no server, unsupported auth such as exec or
 * auth-provider, named in the message), STK_ETOOBIG (file over STK_LIMIT_KUBECONFIG).
 * Any thread.
 *
 * Details: when $KUBECONFIG lists several existing files they are merged as kubectl
 * merges them: the first file that defines a context, cluster or user name (or sets
 * current-context) wins, whole entries are never mixed, and relative paths resolve
 * against the directory of the file that holds the entry; with one existing file this is
 * exactly "the first existing file". Missing files in the list are skipped; if none
 * exists the result is STK_ENOTFOUND and ~/.kube/config is not consulted (as kubectl).
 * A non-NULL `opts->context` skips the in-cluster step, since a context can only come
 * from a kubeconfig. Also STK_EIO (read error). Every message is one line and names the
 * file and the context, cluster or user at fault.
 */
int stk_kubeconfig_load(struct stk_kubeconfig **out, const struct stk_kubeconfig_opts *opts,
			stk_err *err);

/*
 * Parses kubeconfig YAML held in memory; `dir` resolves relative file paths.
 * `yaml[0..len)` is one kubeconfig (block or flow style, JSON included; only the
 * first YAML document is read; aliases are shared, never expanded). `dir` NULL means
 * relative paths are used as written (relative to the working directory). `context`
 * NULL or "" selects current-context. Files the config names are read now (each capped
 * at STK_LIMIT_KUBECONFIG_PEM); a tokenFile is only checked readable and recorded. On
 * success *out is a new config freed with stk_kubeconfig_free; on failure *out is left
 * alone. Errors as stk_kubeconfig_load (STK_ETOOBIG also for more than
 * STK_LIMIT_KUBECONFIG_NODES nodes, STK_LIMIT_KUBECONFIG_DEPTH levels or
 * STK_LIMIT_KUBECONFIG_ANCHORS anchors). Any thread.
 */
int stk_kubeconfig_parse(struct stk_kubeconfig **out, const char *yaml, size_t len, const char *dir,
			 const char *context, stk_err *err);

/*
 * In-cluster configuration: server from KUBERNETES_SERVICE_HOST/PORT (IPv6 hosts
 * bracketed), CA from `sa_dir`/ca.crt, token_file `sa_dir`/token, namespace from
 * `sa_dir`/namespace. `sa_dir` NULL means the standard path.
 * The CA must be readable PEM and the token file readable and non-empty at this call;
 * a missing or empty namespace file means "default". On success *out is a new config
 * (in_cluster true, token NULL) freed with stk_kubeconfig_free. Errors: STK_ENOTFOUND
 * (either variable unset, CA or token file missing), STK_EINVAL (bad port or host,
 * empty token, invalid namespace), STK_EPARSE (CA not PEM), STK_EIO, STK_ETOOBIG. Any
 * thread (reads the environment).
 */
int stk_kubeconfig_in_cluster(struct stk_kubeconfig **out, const char *sa_dir, stk_err *err);

/*
 * Reads a token file into a new NUL-terminated string with surrounding whitespace
 * trimmed. 0, STK_ENOTFOUND, STK_EIO, STK_EINVAL (empty) or STK_ETOOBIG (over 64 KiB).
 * STK_EINVAL also when the token itself holds whitespace or control bytes (it goes into
 * an HTTP header), and STK_ENOTFOUND for anything but a regular file. The caller owns
 * *out and should wipe it before freeing. Any thread.
 */
int stk_kubeconfig_read_token(char **out, const char *path, stk_err *err);

/*
 * Wipes the secrets and frees. NULL-safe.
 * Every string and PEM buffer is wiped with OPENSSL_cleanse. Any thread, once.
 */
void stk_kubeconfig_free(struct stk_kubeconfig *cfg);

#endif
