#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine.h"
#include "stk/alloc.h"
#include "stk/api/api.h"
#include "stk/json.h"
#include "stk/yaml.h"

#define CLI_MAX_LIST 256

static volatile sig_atomic_t cli_stop;

static void on_term(int sig)
{
	(void)sig;
	cli_stop = 1;
}

static void usage(FILE *out)
{
	fputs("usage:\n"
	      "  agent sync --repo DIR --data DIR (--profile FILE | --service-path PATH)\n"
	      "             [--state DIR] [--dry-run] [--gateway-name N] [--pod-name N]\n"
	      "             [--namespace N] [--cr-name N] [--ref R] [--commit SHA]\n"
	      "             [--label k=v ...] [--var k=v ...] [--exclude GLOB ...]\n"
	      "  agent drift --data DIR [--state DIR]\n"
	      "\n"
	      "sync makes DIR --data match the mapped part of the checkout in --repo, as the\n"
	      "sidecar does: --profile is a SyncProfile (YAML or JSON; the whole object or its\n"
	      "spec), or --service-path maps one repository directory onto the data root.\n"
	      "Templates in mappings see the gateway/pod/namespace/CR/ref/commit names given\n"
	      "here, --label and the profile's vars (a --var overrides one). --exclude adds a\n"
	      "pattern (the Stoker's and annotation's tiers); .resources, .git and\n"
	      ".sync-staging are always excluded. --dry-run prints the diff and touches\n"
	      "nothing. The manifest of what was written lives in --state (default\n"
	      "<data>.stoker-state, beside the data directory, never in it).\n"
	      "drift compares the data directory with that manifest.\n"
	      "Both print the result as JSON on stdout; exit 0, 1 on failure (the message on\n"
	      "stderr), 2 for bad usage.\n",
	      out);
}

struct kv {
	char *items[CLI_MAX_LIST];
	size_t n;
};

static const char *kv_get(const struct kv *l, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = l->n; i-- > 0;)
		if (!strncmp(l->items[i], key, klen) && l->items[i][klen] == '=')
			return l->items[i] + klen + 1;
	return NULL;
}

struct cli {
	const char *repo, *data, *state, *profile, *service_path;
	const char *gateway, *pod, *ns, *cr, *ref, *commit;
	bool dry_run;
	struct kv labels, vars;
	struct kv excludes;
	struct stk_syncprofile_spec spec;
};

static const char *label_of(const char *key, void *arg)
{
	return kv_get(&((struct cli *)arg)->labels, key);
}

static const char *var_of(const char *name, void *arg)
{
	struct cli *c = arg;
	const char *v = kv_get(&c->vars, name);

	if (v)
		return v;
	for (size_t i = 0; i < c->spec.vars.len; i++)
		if (!strcmp(c->spec.vars.keys[i], name))
			return c->spec.vars.values[i];
	return NULL;
}

static int bad(const char *msg, const char *arg)
{
	fprintf(stderr, "agent: %s%s%s\n", msg, arg ? " " : "", arg ? arg : "");
	return 2;
}

static int load_profile(struct cli *c, stk_err *err)
{
	FILE *f = fopen(c->profile, "re");
	stk_buf b = STK_BUF_INIT(1 << 22);
	char chunk[8192];
	size_t n;
	yajl_val v = NULL, spec;
	int rc;

	if (!f)
		return stk_err_errno(err, errno, "cannot read %s", c->profile);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (stk_buf_put(&b, chunk, n)) {
			fclose(f);
			stk_buf_release(&b);
			return stk_err_set(err, STK_ETOOBIG, "%s is larger than 4 MiB", c->profile);
		}
	fclose(f);
	rc = stk_yaml_parse(&v, b.ptr ? b.ptr : "", b.len, err); /* JSON is YAML too */
	stk_buf_release(&b);
	/*
	 * Fix: this was stk_err_set(err, rc, "%s: %s", c->profile, err->message), which
	 * formats err->message into itself (the message came out garbled); wrap keeps it.
	 */
	if (rc) {
		stk_err_wrap(err, "%s", c->profile);
		return rc;
	}
	spec = stk_json_obj(v, "spec", NULL);
	rc = stk_api_decode(&stk_api_syncprofile_spec_type, &c->spec, spec ? spec : v, "spec", err);
	if (!rc)
		stk_api_default(&stk_api_syncprofile_spec_type, &c->spec);
	if (!rc && !c->spec.mappings.len)
		rc = stk_err_set(err, STK_EINVAL, "%s: spec.mappings is empty", c->profile);
	yajl_tree_free(v);
	return rc;
}

/*
 * <data>.stoker-state, beside the data directory. Fix: with "--data /x/data/" this was
 * /x/data/.stoker-state, inside the data directory (a 2-tier sync then deleted its own
 * manifest as an orphan on every run); trailing slashes are dropped first.
 */
static void default_state(char *out, size_t size, const char *data)
{
	size_t n = strlen(data);

	while (n > 1 && data[n - 1] == '/')
		n--;
	snprintf(out, size, "%.*s.stoker-state", (int)n, data);
}

static int cli_sync(struct cli *c)
{
	struct stk_template_vars tv = {c->gateway, c->pod,    NULL,	c->ns,	c->cr,
				       c->ref,	   c->commit, label_of, var_of, c};
	struct agent_plan plan;
	struct agent_sync_opts so;
	struct agent_result res;
	char state[4096], ordinal[32];
	stk_buf out = STK_BUF_INIT(1 << 24);
	stk_err err = STK_ERR_INIT;
	const char *dash;
	int rc;

	if (c->pod && (dash = strrchr(c->pod, '-')) && dash[1] &&
	    strspn(dash + 1, "0123456789") == strlen(dash + 1)) {
		snprintf(ordinal, sizeof(ordinal), "%s", dash + 1);
		tv.pod_ordinal = ordinal;
	}
	if (c->profile && (rc = load_profile(c, &err))) {
		fprintf(stderr, "agent: %s\n", err.message);
		return 1;
	}
	rc = agent_plan_build(&plan, c->profile ? &c->spec : NULL, c->service_path, &tv,
			      (const char *const *)c->excludes.items, c->excludes.n, NULL, 0, &err);
	if (rc) {
		fprintf(stderr, "agent: %s\n", err.message);
		return 1;
	}
	default_state(state, sizeof(state), c->data);
	memset(&so, 0, sizeof(so));
	so.repo = c->repo;
	so.data = c->data;
	so.state = c->state ? c->state : state;
	so.dry_run = c->dry_run;
	so.plan = &plan;
	so.stop = &cli_stop;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	rc = agent_sync(&so, &res, &err);
	agent_plan_release(&plan);
	if (rc) {
		fprintf(stderr, "agent: sync failed: %s\n", err.message);
		agent_result_release(&res);
		return 1;
	}
	agent_result_json(&res, &out);
	printf("%s\n", out.ptr);
	stk_buf_release(&out);
	agent_result_release(&res);
	return 0;
}

static int cli_drift(struct cli *c)
{
	struct agent_result res;
	char state[4096];
	stk_buf out = STK_BUF_INIT(1 << 24);
	stk_err err = STK_ERR_INIT;

	default_state(state, sizeof(state), c->data);
	if (agent_drift(c->data, c->state ? c->state : state, &res, &err)) {
		fprintf(stderr, "agent: drift: %s\n", err.message);
		return 1;
	}
	agent_result_json(&res, &out);
	printf("%s\n", out.ptr);
	stk_buf_release(&out);
	agent_result_release(&res);
	return 0;
}

static int add_kv(struct kv *l, const char *flag, const char *v, bool need_eq)
{
	if (l->n == CLI_MAX_LIST)
		return bad("too many", flag);
	if (need_eq && (!strchr(v, '=') || v[0] == '='))
		return bad("expects key=value:", flag);
	l->items[l->n++] = (char *)v;
	return 0;
}

int agent_cli_main(int argc, char **argv)
{
	struct cli c;
	const char *cmd = argv[1];
	int rc = 0;

	memset(&c, 0, sizeof(c));
	for (int i = 2; i < argc && !rc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **target = NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--dry-run")) {
			c.dry_run = true;
			continue;
		}
		if (!strcmp(a, "--repo"))
			target = &c.repo;
		else if (!strcmp(a, "--data"))
			target = &c.data;
		else if (!strcmp(a, "--state"))
			target = &c.state;
		else if (!strcmp(a, "--profile"))
			target = &c.profile;
		else if (!strcmp(a, "--service-path"))
			target = &c.service_path;
		else if (!strcmp(a, "--gateway-name"))
			target = &c.gateway;
		else if (!strcmp(a, "--pod-name"))
			target = &c.pod;
		else if (!strcmp(a, "--namespace"))
			target = &c.ns;
		else if (!strcmp(a, "--cr-name"))
			target = &c.cr;
		else if (!strcmp(a, "--ref"))
			target = &c.ref;
		else if (!strcmp(a, "--commit"))
			target = &c.commit;
		else if (strcmp(a, "--var") && strcmp(a, "--label") && strcmp(a, "--exclude"))
			return bad("unknown flag", a);
		if (!v)
			return bad("missing value for", a);
		i++;
		if (target)
			*target = v;
		else if (!strcmp(a, "--var"))
			rc = add_kv(&c.vars, a, v, true);
		else if (!strcmp(a, "--label"))
			rc = add_kv(&c.labels, a, v, true);
		else
			rc = add_kv(&c.excludes, a, v, false);
	}
	if (rc)
		return rc;
	if (!c.data)
		return bad("--data is required", NULL);
	if (!strcmp(cmd, "drift"))
		return cli_drift(&c);
	if (!c.repo)
		return bad("--repo is required", NULL);
	if (!c.profile == !c.service_path)
		return bad("give exactly one of --profile and --service-path", NULL);
	if (!c.gateway)
		c.gateway = c.pod;
	rc = cli_sync(&c);
	stk_api_release(&stk_api_syncprofile_spec_type, &c.spec);
	return rc;
}
