#include "config.h"

#include <stdint.h>
#include <string.h>

#include "stk/parse.h"

struct agent_var {
	const char *name;
	const char *def; /* NULL: no default */
	bool required;
	const char *help;
};

static const struct agent_var agent_vars[] = {
	{"POD_NAME", NULL, true, "this pod's name (downward API)"},
	{"POD_NAMESPACE", NULL, true, "this pod's namespace (downward API)"},
	{"CR_NAME", NULL, true, "the Stoker this gateway belongs to"},
	{"GATEWAY_NAME", NULL, false, "gateway identity (default: POD_NAME)"},
	{"SYNC_PROFILE", NULL, false, "SyncProfile to apply (unset: SERVICE_PATH mode)"},
	{"SERVICE_PATH", NULL, false,
	 "2-tier mode: repository directory mapped onto the data root"},
	{"EXCLUDE_PATTERNS", NULL, false, "extra exclude globs, comma-separated (pod annotation)"},
	{"REPO_PATH", "/repo", false, "scratch directory for fetched content"},
	{"DATA_PATH", NULL, true, "the gateway's data directory"},
	{"GATEWAY_HOST", "localhost", false, "host of the gateway's HTTP API"},
	{"GATEWAY_PORT", "8088", false, "port of the gateway's HTTP API"},
	{"GATEWAY_TLS", "false", false, "use https for the gateway API"},
	{"GATEWAY_CA_FILE", NULL, false,
	 "CA bundle to verify the gateway's TLS certificate (unset: not verified; loopback)"},
	{"API_KEY_FILE", NULL, false, "file holding the gateway API token"},
	{"STATE_PATH", NULL, false,
	 "where the sync manifest lives (default REPO_PATH/.stoker-state)"},
	{"SOURCE_MODE", "artifact", false, "artifact (download from source-controller) or git"},
	{"SOURCE_TOKEN_FILE", "/var/run/secrets/stoker/token", false,
	 "projected service-account token (artifact mode)"},
	{"GIT_SSH_KEY_FILE", NULL, false, "ssh private key (git mode)"},
	{"GIT_KNOWN_HOSTS_FILE", NULL, false, "known_hosts for ssh host verification (git mode)"},
	{"GIT_TOKEN_FILE", NULL, false, "https token (git mode)"},
	{"GIT_USERNAME_FILE", NULL, false, "https basic-auth user name (git mode)"},
	{"GIT_PASSWORD_FILE", NULL, false, "https basic-auth password (git mode)"},
	{"KUBECONFIG", NULL, false, "kubeconfig to use outside a pod (default: in-cluster)"},
};

/* The variable's value, its default, or NULL; empty strings count as unset. */
static const char *agent_var(agent_env_fn env, void *ctx, const char *name)
{
	const char *v = env(name, ctx);
	size_t i;

	if (v && *v)
		return v;
	for (i = 0; i < sizeof(agent_vars) / sizeof(agent_vars[0]); i++)
		if (!strcmp(agent_vars[i].name, name))
			return agent_vars[i].def;
	return NULL;
}

static int agent_require_abs(const char *name, const char *path, stk_err *err)
{
	if (path && path[0] != '/')
		return stk_err_set(err, STK_EINVAL, "%s must be an absolute path, got \"%.100s\"",
				   name, path);
	return 0;
}

int agent_config_load(struct agent_config *cfg, agent_env_fn env, void *ctx, stk_err *err)
{
	struct agent_config c;
	stk_err perr = STK_ERR_INIT;
	const char *v;
	int64_t port;
	size_t i;

	memset(&c, 0, sizeof(c));
	for (i = 0; i < sizeof(agent_vars) / sizeof(agent_vars[0]); i++)
		if (agent_vars[i].required && !agent_var(env, ctx, agent_vars[i].name))
			return stk_err_set(err, STK_EINVAL, "%s is not set (%s)",
					   agent_vars[i].name, agent_vars[i].help);
	c.pod_name = agent_var(env, ctx, "POD_NAME");
	c.pod_namespace = agent_var(env, ctx, "POD_NAMESPACE");
	c.cr_name = agent_var(env, ctx, "CR_NAME");
	c.gateway_name = agent_var(env, ctx, "GATEWAY_NAME");
	if (!c.gateway_name)
		c.gateway_name = c.pod_name;
	c.sync_profile = agent_var(env, ctx, "SYNC_PROFILE");
	c.service_path = agent_var(env, ctx, "SERVICE_PATH");
	c.exclude_patterns = agent_var(env, ctx, "EXCLUDE_PATTERNS");
	c.repo_path = agent_var(env, ctx, "REPO_PATH");
	c.state_path = agent_var(env, ctx, "STATE_PATH");
	c.gateway_ca_file = agent_var(env, ctx, "GATEWAY_CA_FILE");
	c.git_username_file = agent_var(env, ctx, "GIT_USERNAME_FILE");
	c.git_password_file = agent_var(env, ctx, "GIT_PASSWORD_FILE");
	c.data_path = agent_var(env, ctx, "DATA_PATH");
	c.gateway_host = agent_var(env, ctx, "GATEWAY_HOST");
	c.api_key_file = agent_var(env, ctx, "API_KEY_FILE");
	c.source_token_file = agent_var(env, ctx, "SOURCE_TOKEN_FILE");
	c.git_ssh_key_file = agent_var(env, ctx, "GIT_SSH_KEY_FILE");
	c.git_known_hosts_file = agent_var(env, ctx, "GIT_KNOWN_HOSTS_FILE");
	c.git_token_file = agent_var(env, ctx, "GIT_TOKEN_FILE");
	c.kubeconfig = agent_var(env, ctx, "KUBECONFIG");

	v = agent_var(env, ctx, "GATEWAY_PORT");
	if (stk_parse_i64(v, strlen(v), 1, 65535, &port, &perr))
		return stk_err_set(err, STK_EINVAL, "GATEWAY_PORT: %s", perr.message);
	c.gateway_port = (int)port;
	v = agent_var(env, ctx, "GATEWAY_TLS");
	if (stk_parse_bool(v, strlen(v), &c.gateway_tls, &perr))
		return stk_err_set(err, STK_EINVAL, "GATEWAY_TLS: %s", perr.message);
	v = agent_var(env, ctx, "SOURCE_MODE");
	if (!strcmp(v, "artifact"))
		c.source_mode = AGENT_SOURCE_ARTIFACT;
	else if (!strcmp(v, "git"))
		c.source_mode = AGENT_SOURCE_GIT;
	else
		return stk_err_set(err, STK_EINVAL,
				   "SOURCE_MODE must be \"artifact\" or \"git\", got \"%.40s\"", v);

	if (agent_require_abs("REPO_PATH", c.repo_path, err) ||
	    agent_require_abs("DATA_PATH", c.data_path, err) ||
	    agent_require_abs("API_KEY_FILE", c.api_key_file, err) ||
	    agent_require_abs("SOURCE_TOKEN_FILE", c.source_token_file, err) ||
	    agent_require_abs("GIT_SSH_KEY_FILE", c.git_ssh_key_file, err) ||
	    agent_require_abs("GIT_KNOWN_HOSTS_FILE", c.git_known_hosts_file, err) ||
	    agent_require_abs("GIT_TOKEN_FILE", c.git_token_file, err) ||
	    agent_require_abs("GIT_USERNAME_FILE", c.git_username_file, err) ||
	    agent_require_abs("GIT_PASSWORD_FILE", c.git_password_file, err) ||
	    agent_require_abs("STATE_PATH", c.state_path, err) ||
	    agent_require_abs("GATEWAY_CA_FILE", c.gateway_ca_file, err))
		return STK_EINVAL;
	if (!strcmp(c.repo_path, c.data_path))
		return stk_err_set(err, STK_EINVAL, "REPO_PATH and DATA_PATH must differ");
	if (!c.sync_profile && !c.service_path)
		return stk_err_set(
			err, STK_EINVAL,
			"neither SYNC_PROFILE nor SERVICE_PATH is set (one says what to sync)");
	if (!!c.git_username_file != !!c.git_password_file)
		return stk_err_set(err, STK_EINVAL,
				   "GIT_USERNAME_FILE and GIT_PASSWORD_FILE go together");
	if (c.git_known_hosts_file && !c.git_ssh_key_file)
		return stk_err_set(err, STK_EINVAL,
				   "GIT_KNOWN_HOSTS_FILE is set but GIT_SSH_KEY_FILE is not");
	*cfg = c;
	return 0;
}

void agent_config_usage(FILE *out)
{
	size_t i;

	fprintf(out, "\nEnvironment (set by the injector):\n");
	for (i = 0; i < sizeof(agent_vars) / sizeof(agent_vars[0]); i++) {
		const struct agent_var *v = &agent_vars[i];
		fprintf(out, "  %-22s %s%s", v->name, v->help, v->required ? " [required]" : "");
		if (v->def)
			fprintf(out, " (default %s)", v->def);
		fputc('\n', out);
	}
}
