/* The agent's configuration, read from the environment the injector sets (DESIGN.md §11). */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "stk/err.h"

enum agent_source_mode {
	AGENT_SOURCE_ARTIFACT,
	AGENT_SOURCE_GIT,
};

/* Every string points into the environment (or the defaults); nothing is owned. */
struct agent_config {
	const char *pod_name;
	const char *pod_namespace;
	const char *cr_name;
	const char *gateway_name;     /* GATEWAY_NAME, else POD_NAME */
	const char *sync_profile;     /* NULL: 2-tier service-path mode */
	const char *service_path;     /* SERVICE_PATH (2-tier mode), or NULL */
	const char *exclude_patterns; /* comma list from the pod annotation, or NULL */
	const char *state_path;	      /* NULL: REPO_PATH/.stoker-state */
	const char *gateway_ca_file;  /* verify the gateway's certificate with it, or NULL */
	const char *git_username_file, *git_password_file;
	const char *repo_path;
	const char *data_path;
	const char *gateway_host;
	int gateway_port;
	bool gateway_tls;
	const char *api_key_file;
	enum agent_source_mode source_mode;
	const char *source_token_file;
	const char *git_ssh_key_file;
	const char *git_known_hosts_file;
	const char *git_token_file;
	const char *kubeconfig;
};

/* A getenv-shaped lookup, so tests can supply their own environment. */
typedef const char *(*agent_env_fn)(const char *name, void *ctx);

/*
 * Fills `cfg` from `env` with the defaults of DESIGN.md §11 and checks it: required
 * variables present, numbers and booleans well-formed, paths absolute, the mode's
 * credentials given. 0 or STK_EINVAL with a message naming the variable. Any thread.
 */
int agent_config_load(struct agent_config *cfg, agent_env_fn env, void *ctx, stk_err *err);

/* Writes the list of variables, with defaults, for --help. */
void agent_config_usage(FILE *out);

#endif
