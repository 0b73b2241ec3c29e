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
	char *server;    /* "https://host:port", no trailing slash */
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

	char *token;      /* a static bearer token, or NULL */
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

#define STK_KUBECONFIG_OPTS_INIT {NULL, NULL, NULL}

/*
 * Resolves the configuration the way DESIGN.md §11 says: `opts->path` if given; else the
 * in-cluster config when KUBERNETES_SERVICE_HOST is set; else $KUBECONFIG (first existing
 * file of a colon-separated list); else ~/.kube/config. On success *out is a new config
 * the caller frees with stk_kubeconfig_free. Errors: STK_ENOTFOUND (no configuration
 * anywhere, named context/cluster/user missing, unreadable referenced file), STK_EPARSE
 * (malformed YAML or base64), STK_EINVAL (no server, unsupported auth such as exec or
 * auth-provider, named in the message), STK_ETOOBIG (file over STK_LIMIT_KUBECONFIG).
 * Any thread.
 */
int stk_kubeconfig_load(struct stk_kubeconfig **out, const struct stk_kubeconfig_opts *opts,
			stk_err *err);

/* Parses kubeconfig YAML held in memory; `dir` resolves relative file paths. */
int stk_kubeconfig_parse(struct stk_kubeconfig **out, const char *yaml, size_t len,
			 const char *dir, const char *context, stk_err *err);

/*
 * In-cluster configuration: server from KUBERNETES_SERVICE_HOST/PORT (IPv6 hosts
 * bracketed), CA from `sa_dir`/ca.crt, token_file `sa_dir`/token, namespace from
 * `sa_dir`/namespace. `sa_dir` NULL means the standard path.
 */
int stk_kubeconfig_in_cluster(struct stk_kubeconfig **out, const char *sa_dir, stk_err *err);

/*
 * Reads a token file into a new NUL-terminated string with surrounding whitespace
 * trimmed. 0, STK_ENOTFOUND, STK_EIO, STK_EINVAL (empty) or STK_ETOOBIG (over 64 KiB).
 */
int stk_kubeconfig_read_token(char **out, const char *path, stk_err *err);

/* Wipes the secrets and frees. NULL-safe. */
void stk_kubeconfig_free(struct stk_kubeconfig *cfg);

#endif
