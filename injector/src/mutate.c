#include "mutate.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "stk/alloc.h"
#include "stk/base64.h"
#include "stk/json.h"
#include "stk/limits.h"

#define INJ_REPO_PATH	 "/repo"
#define INJ_TOKEN_DIR	 "/var/run/secrets/stoker"
#define INJ_API_KEY_DIR	 "/etc/stoker/api-key"
#define INJ_GIT_DIR	 "/etc/stoker/git"
#define INJ_HEALTH_PORT	 8082
#define INJ_METRICS_PORT 8083
#define INJ_MAX_NAME	 254
#define INJ_MAX_LISTED	 5 /* Stokers named in the "multiple Stokers" denial */

const char *inj_result_name(enum inj_result r)
{
	switch (r) {
	case INJ_SKIPPED:
		return "skipped";
	case INJ_ALREADY:
		return "already";
	case INJ_INJECTED:
		return "injected";
	case INJ_DENIED:
		return "denied";
	}
	return "unknown";
}

/* ---- small JSON writers -------------------------------------------------------------- */

static void put_str(stk_buf *b, const char *s)
{
	s = s ? s : "";
	stk_buf_put_json_string(b, s, strlen(s));
}

static void env_value(stk_buf *b, bool *first, const char *name, const char *value)
{
	stk_buf_printf(b, "%s{\"name\":\"%s\",\"value\":", *first ? "" : ",", name);
	put_str(b, value);
	stk_buf_putc(b, '}');
	*first = false;
}

static void env_field(stk_buf *b, bool *first, const char *name, const char *path)
{
	stk_buf_printf(b, "%s{\"name\":\"%s\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"%s\"}}}",
		       *first ? "" : ",", name, path);
	*first = false;
}

/* ---- what the pod and its Stoker say ------------------------------------------------- */

struct plan {
	const char *ns;
	yajl_val pod;
	const char *cr;		  /* the Stoker's name */
	bool cr_derived;	  /* cr-name to be written back */
	const char *profile;	  /* may be NULL (2-tier) */
	const char *service_path; /* may be NULL */
	const char *data_volume;  /* "ignition-data" or "data" */
	const char *data_path;	  /* its mount path in the gateway container */
	struct stk_stoker stk;
	yajl_val stk_root;
	bool git_mode;
	const struct stk_git_auth *auth; /* git mode credentials, or NULL */
	struct stk_gitsource gs;	 /* the referenced GitSource (git mode) */
	bool gs_decoded;
};

static const char *annotation(yajl_val pod, const char *key)
{
	return stk_api_pod_annotation(pod, key);
}

static bool has_container(yajl_val list, const char *name)
{
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
		const char *n = stk_json_str(list->u.array.values[i], "name", NULL);
		if (n && !strcmp(n, name))
			return true;
	}
	return false;
}

struct names {
	char items[INJ_MAX_LISTED][INJ_MAX_NAME];
	size_t n;
};

static int collect_name(yajl_val obj, void *arg)
{
	struct names *nm = arg;
	const char *name = stk_json_str(obj, "metadata", "name", NULL);

	if (!name)
		return 0;
	if (nm->n < INJ_MAX_LISTED)
		snprintf(nm->items[nm->n], INJ_MAX_NAME, "%s", name);
	nm->n++;
	return 0;
}

/* The data volume and where the gateway container mounts it. */
static const char *find_data_volume(yajl_val pod, const char **mount)
{
	static const char *const wanted[] = {"ignition-data", "data"};
	yajl_val vols = stk_json_arr(pod, "spec", "volumes", NULL);
	yajl_val ctrs = stk_json_arr(pod, "spec", "containers", NULL);

	for (size_t w = 0; w < 2; w++) {
		bool found = false;
		for (size_t i = 0; vols && i < vols->u.array.len && !found; i++) {
			const char *n = stk_json_str(vols->u.array.values[i], "name", NULL);
			found = n && !strcmp(n, wanted[w]);
		}
		if (!found)
			continue;
		for (size_t c = 0; ctrs && c < ctrs->u.array.len; c++) {
			yajl_val mounts =
				stk_json_arr(ctrs->u.array.values[c], "volumeMounts", NULL);
			for (size_t m = 0; mounts && m < mounts->u.array.len; m++) {
				const char *n =
					stk_json_str(mounts->u.array.values[m], "name", NULL);
				const char *p =
					stk_json_str(mounts->u.array.values[m], "mountPath", NULL);
				if (n && p && !strcmp(n, wanted[w]) && p[0] == '/') {
					*mount = p;
					return wanted[w];
				}
			}
		}
		*mount = NULL;
		return wanted[w];
	}
	*mount = NULL;
	return NULL;
}

/* ---- the sidecar ------------------------------------------------------------------------ */

/* Image precedence: the pod's annotation, the Stoker's spec.agent.image, the default. */
static void put_image(stk_buf *b, const struct inj_config *cfg, const struct plan *p)
{
	const char *ann = annotation(p->pod, STK_ANN_AGENT_IMAGE);
	const struct stk_agent_image *im = &p->stk.spec.agent.image;
	stk_buf img = STK_BUF_INIT(2048);

	if (ann && *ann) {
		put_str(b, ann);
		return;
	}
	if (!im->present || !im->repository || !*im->repository) {
		put_str(b, cfg->default_image);
		return;
	}
	stk_buf_puts(&img, im->repository);
	if (im->digest && *im->digest)
		stk_buf_printf(&img, "@%s", im->digest);
	else if (im->tag && *im->tag)
		stk_buf_printf(&img, ":%s", im->tag);
	put_str(b, img.ptr);
	stk_buf_release(&img);
}

/* A Secret volume exposing one key as file `file`. */
static void secret_volume(stk_buf *b, const char *vol, const char *secret, const char *key,
			  const char *file)
{
	stk_buf_printf(b,
		       ",{\"op\":\"add\",\"path\":\"/spec/volumes/-\",\"value\":{\"name\":\"%s\","
		       "\"secret\":{\"secretName\":",
		       vol);
	put_str(b, secret);
	stk_buf_puts(b, ",\"defaultMode\":288,\"items\":[{\"key\":");
	put_str(b, key);
	stk_buf_printf(b, ",\"path\":\"%s\"}]}}}", file);
}

struct git_creds {
	const char *ssh_secret, *ssh_key, *kh_secret, *kh_key, *token_secret, *token_key;
	const char *basic_secret;
};

static void git_creds(const struct plan *p, struct git_creds *g)
{
	const struct stk_git_auth *a = p->auth;

	memset(g, 0, sizeof(*g));
	if (!a || !a->present)
		return;
	if (a->ssh_key.present) {
		g->ssh_secret = a->ssh_key.secret_ref.name;
		g->ssh_key = a->ssh_key.secret_ref.key;
	}
	if (a->known_hosts.present) {
		g->kh_secret = a->known_hosts.secret_ref.name;
		g->kh_key = a->known_hosts.secret_ref.key;
	}
	if (a->token.present) {
		g->token_secret = a->token.secret_ref.name;
		g->token_key = a->token.secret_ref.key;
	}
	if (a->basic.present)
		g->basic_secret = a->basic.secret_ref.name;
}

static void put_container(stk_buf *b, const struct inj_config *cfg, const struct plan *p,
			  const struct git_creds *g)
{
	const struct stk_stoker_spec *s = &p->stk.spec;
	const char *gw = annotation(p->pod, STK_ANN_GATEWAY_NAME);
	const char *excl = annotation(p->pod, STK_ANN_EXCLUDE_PATTERNS);
	const char *pod_name = stk_json_str(p->pod, "metadata", "name", NULL);
	yajl_val resources = stk_json_obj(p->stk_root, "spec", "agent", "resources", NULL);
	const char *key =
		s->gateway.api_key_secret_ref.present ? s->gateway.api_key_secret_ref.key : NULL;
	char port[32];
	bool first = true;

	if (!gw || !*gw)
		gw = stk_json_str(p->pod, "metadata", "labels", STK_LABEL_APP_NAME, NULL);
	stk_buf_puts(b, "{\"name\":\"" STK_AGENT_CONTAINER "\",\"image\":");
	put_image(b, cfg, p);
	if (s->agent.image.pull_policy && *s->agent.image.pull_policy) {
		stk_buf_puts(b, ",\"imagePullPolicy\":");
		put_str(b, s->agent.image.pull_policy);
	}
	stk_buf_puts(b, ",\"restartPolicy\":\"Always\",\"env\":[");
	env_field(b, &first, "POD_NAME", "metadata.name");
	env_field(b, &first, "POD_NAMESPACE", "metadata.namespace");
	env_value(b, &first, "CR_NAME", p->cr);
	if (gw && *gw)
		env_value(b, &first, "GATEWAY_NAME", gw);
	else if (pod_name && *pod_name)
		env_value(b, &first, "GATEWAY_NAME", pod_name);
	else /* generateName: the name is known only once the pod is stored */
		env_field(b, &first, "GATEWAY_NAME", "metadata.name");
	if (p->profile)
		env_value(b, &first, "SYNC_PROFILE", p->profile);
	if (p->service_path)
		env_value(b, &first, "SERVICE_PATH", p->service_path);
	if (excl && *excl)
		env_value(b, &first, "EXCLUDE_PATTERNS", excl);
	env_value(b, &first, "SOURCE_MODE", p->git_mode ? "git" : "artifact");
	if (!p->git_mode)
		env_value(b, &first, "SOURCE_TOKEN_FILE", INJ_TOKEN_DIR "/token");
	env_value(b, &first, "REPO_PATH", INJ_REPO_PATH);
	env_value(b, &first, "DATA_PATH", p->data_path);
	snprintf(port, sizeof(port), "%lld",
		 (long long)(s->gateway.port.set ? s->gateway.port.v : 8088));
	env_value(b, &first, "GATEWAY_PORT", port);
	env_value(b, &first, "GATEWAY_TLS",
		  s->gateway.tls.set && s->gateway.tls.v ? "true" : "false");
	if (key) {
		stk_buf kb = STK_BUF_INIT(1024);
		stk_buf_printf(&kb, INJ_API_KEY_DIR "/%s", key);
		env_value(b, &first, "API_KEY_FILE", kb.ptr);
		stk_buf_release(&kb);
	}
	if (g->ssh_secret)
		env_value(b, &first, "GIT_SSH_KEY_FILE", INJ_GIT_DIR "/ssh/identity");
	if (g->kh_secret)
		env_value(b, &first, "GIT_KNOWN_HOSTS_FILE",
			  INJ_GIT_DIR "/known-hosts/known_hosts");
	if (g->token_secret)
		env_value(b, &first, "GIT_TOKEN_FILE", INJ_GIT_DIR "/token/token");
	if (g->basic_secret) {
		env_value(b, &first, "GIT_USERNAME_FILE", INJ_GIT_DIR "/basic/username");
		env_value(b, &first, "GIT_PASSWORD_FILE", INJ_GIT_DIR "/basic/password");
	}
	stk_buf_printf(b,
		       "],\"ports\":[{\"name\":\"health\",\"containerPort\":%d},"
		       "{\"name\":\"metrics\",\"containerPort\":%d}]",
		       INJ_HEALTH_PORT, INJ_METRICS_PORT);
	stk_buf_printf(b,
		       ",\"startupProbe\":{\"httpGet\":{\"path\":\"/startupz\",\"port\":%d},"
		       "\"periodSeconds\":2,\"failureThreshold\":150}"
		       ",\"readinessProbe\":{\"httpGet\":{\"path\":\"/readyz\",\"port\":%d},"
		       "\"periodSeconds\":5}"
		       ",\"livenessProbe\":{\"httpGet\":{\"path\":\"/healthz\",\"port\":%d},"
		       "\"periodSeconds\":10}",
		       INJ_HEALTH_PORT, INJ_HEALTH_PORT, INJ_HEALTH_PORT);
	stk_buf_puts(b,
		     ",\"securityContext\":{\"runAsNonRoot\":true,\"readOnlyRootFilesystem\":true,"
		     "\"allowPrivilegeEscalation\":false,\"capabilities\":{\"drop\":[\"ALL\"]},"
		     "\"seccompProfile\":{\"type\":\"RuntimeDefault\"}}");
	stk_buf_puts(b, ",\"resources\":");
	if (resources && YAJL_IS_OBJECT(resources) && resources->u.object.len)
		stk_json_write(b, resources);
	else
		stk_buf_puts(b, "{\"requests\":{\"cpu\":\"20m\",\"memory\":\"32Mi\"},"
				"\"limits\":{\"memory\":\"128Mi\"}}");
	stk_buf_puts(b,
		     ",\"volumeMounts\":[{\"name\":\"stoker-repo\",\"mountPath\":\"" INJ_REPO_PATH
		     "\"},{\"name\":");
	put_str(b, p->data_volume);
	stk_buf_puts(b, ",\"mountPath\":");
	put_str(b, p->data_path);
	stk_buf_putc(b, '}');
	if (key)
		stk_buf_puts(b, ",{\"name\":\"stoker-api-key\",\"mountPath\":\"" INJ_API_KEY_DIR
				"\",\"readOnly\":true}");
	if (!p->git_mode)
		stk_buf_puts(b, ",{\"name\":\"stoker-token\",\"mountPath\":\"" INJ_TOKEN_DIR
				"\",\"readOnly\":true}");
	if (g->ssh_secret)
		stk_buf_puts(b, ",{\"name\":\"stoker-git-ssh\",\"mountPath\":\"" INJ_GIT_DIR
				"/ssh\",\"readOnly\":true}");
	if (g->kh_secret)
		stk_buf_puts(b, ",{\"name\":\"stoker-git-known-hosts\",\"mountPath\":\"" INJ_GIT_DIR
				"/known-hosts\",\"readOnly\":true}");
	if (g->token_secret)
		stk_buf_puts(b, ",{\"name\":\"stoker-git-token\",\"mountPath\":\"" INJ_GIT_DIR
				"/token\",\"readOnly\":true}");
	if (g->basic_secret)
		stk_buf_puts(b, ",{\"name\":\"stoker-git-basic\",\"mountPath\":\"" INJ_GIT_DIR
				"/basic\",\"readOnly\":true}");
	stk_buf_puts(b, "]}");
}

static void build_patch(stk_buf *b, const struct inj_config *cfg, const struct plan *p)
{
	yajl_val init = stk_json_arr(p->pod, "spec", "initContainers", NULL);
	const struct stk_stoker_spec *s = &p->stk.spec;
	struct git_creds g;

	git_creds(p, &g);
	stk_buf_putc(b, '[');
	/* Volumes first: an empty list is created with the first one. */
	if (stk_json_arr(p->pod, "spec", "volumes", NULL))
		stk_buf_puts(b, "{\"op\":\"add\",\"path\":\"/spec/volumes/-\",\"value\":"
				"{\"name\":\"stoker-repo\",\"emptyDir\":{}}}");
	else /* unreachable today: the data volume is required */
		stk_buf_puts(b, "{\"op\":\"add\",\"path\":\"/spec/volumes\",\"value\":"
				"[{\"name\":\"stoker-repo\",\"emptyDir\":{}}]}");
	if (s->gateway.api_key_secret_ref.present) {
		stk_buf_puts(b, ",{\"op\":\"add\",\"path\":\"/spec/volumes/-\",\"value\":{\"name\":"
				"\"stoker-api-key\",\"secret\":{\"secretName\":");
		put_str(b, s->gateway.api_key_secret_ref.name);
		stk_buf_puts(b, ",\"defaultMode\":288}}}");
	}
	if (!p->git_mode)
		stk_buf_puts(
			b, ",{\"op\":\"add\",\"path\":\"/spec/volumes/-\",\"value\":{\"name\":"
			   "\"stoker-token\",\"projected\":{\"sources\":[{\"serviceAccountToken\":"
			   "{\"audience\":\"" STK_SOURCE_AUDIENCE "\",\"expirationSeconds\":3600,"
			   "\"path\":\"token\"}}]}}}");
	if (g.ssh_secret)
		secret_volume(b, "stoker-git-ssh", g.ssh_secret, g.ssh_key, "identity");
	if (g.kh_secret)
		secret_volume(b, "stoker-git-known-hosts", g.kh_secret, g.kh_key, "known_hosts");
	if (g.token_secret)
		secret_volume(b, "stoker-git-token", g.token_secret, g.token_key, "token");
	if (g.basic_secret) {
		stk_buf_puts(b, ",{\"op\":\"add\",\"path\":\"/spec/volumes/-\",\"value\":{\"name\":"
				"\"stoker-git-basic\",\"secret\":{\"secretName\":");
		put_str(b, g.basic_secret);
		stk_buf_puts(b, ",\"defaultMode\":288,\"items\":[{\"key\":\"username\",\"path\":"
				"\"username\"},{\"key\":\"password\",\"path\":\"password\"}]}}}");
	}
	if (init && YAJL_IS_ARRAY(init))
		stk_buf_puts(b, ",{\"op\":\"add\",\"path\":\"/spec/initContainers/-\",\"value\":");
	else
		stk_buf_puts(b, ",{\"op\":\"add\",\"path\":\"/spec/initContainers\",\"value\":[");
	put_container(b, cfg, p, &g);
	stk_buf_puts(b, init && YAJL_IS_ARRAY(init) ? "}" : "]}");
	/* The annotations object exists: stoker.io/inject is in it. */
	stk_buf_puts(b, ",{\"op\":\"add\",\"path\":\"/metadata/annotations/");
	stk_buf_put_json_pointer_token(b, STK_ANN_INJECTED);
	stk_buf_puts(b, "\",\"value\":\"true\"}");
	if (p->cr_derived) {
		stk_buf_puts(b, ",{\"op\":\"add\",\"path\":\"/metadata/annotations/");
		stk_buf_put_json_pointer_token(b, STK_ANN_CR_NAME);
		stk_buf_puts(b, "\",\"value\":");
		put_str(b, p->cr);
		stk_buf_putc(b, '}');
	}
	stk_buf_putc(b, ']');
}

/* ---- decision --------------------------------------------------------------------------- */

static void plan_release(struct plan *p, const struct inj_lookup *lk, void *stk_ref)
{
	stk_api_release(&stk_api_stoker_type, &p->stk);
	if (p->gs_decoded)
		stk_api_release(&stk_api_gitsource_type, &p->gs);
	if (stk_ref)
		lk->put(lk->arg, stk_ref);
}

int inj_mutate(const struct inj_config *cfg, const struct inj_lookup *lk, const char *ns,
	       yajl_val pod, enum inj_result *res, stk_buf *patch, stk_buf *msg, stk_err *err)
{
	const char *inject = annotation(pod, STK_ANN_INJECT);
	const char *injected = annotation(pod, STK_ANN_INJECTED);
	struct plan p;
	struct names nm;
	void *stk_ref = NULL, *ref = NULL;
	yajl_val obj;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	p.ns = ns;
	p.pod = pod;
	*res = INJ_SKIPPED;
	if (!inject || strcmp(inject, "true"))
		return 0;
	if ((injected && !strcmp(injected, "true")) ||
	    has_container(stk_json_arr(pod, "spec", "initContainers", NULL), STK_AGENT_CONTAINER) ||
	    has_container(stk_json_arr(pod, "spec", "containers", NULL), STK_AGENT_CONTAINER)) {
		*res = INJ_ALREADY;
		return 0;
	}
	*res = INJ_DENIED;
	p.cr = annotation(pod, STK_ANN_CR_NAME);
	if (!p.cr || !*p.cr) {
		memset(&nm, 0, sizeof(nm));
		lk->each(lk->arg, STK_KIND_STOKER, ns, collect_name, &nm);
		if (nm.n == 0) {
			stk_buf_printf(msg,
				       "no Stoker found in namespace '%s'; create one or set "
				       "annotation " STK_ANN_CR_NAME,
				       ns);
			return 0;
		}
		if (nm.n > 1) {
			stk_buf_printf(msg, "multiple Stokers in namespace '%s' (", ns);
			for (size_t i = 0; i < nm.n && i < INJ_MAX_LISTED; i++)
				stk_buf_printf(msg, "%s%s", i ? ", " : "", nm.items[i]);
			if (nm.n > INJ_MAX_LISTED)
				stk_buf_printf(msg, ", and %zu more", nm.n - INJ_MAX_LISTED);
			stk_buf_puts(msg, "); set annotation " STK_ANN_CR_NAME);
			return 0;
		}
		p.cr = nm.items[0];
		p.cr_derived = true;
	}
	obj = lk->get(lk->arg, STK_KIND_STOKER, ns, p.cr, &stk_ref);
	if (!obj || stk_json_get(obj, "metadata", "deletionTimestamp", NULL)) {
		stk_buf_printf(msg, "Stoker '%s' not found in namespace '%s'", p.cr, ns);
		goto out;
	}
	p.stk_root = obj;
	if (stk_api_decode(&stk_api_stoker_type, &p.stk, obj, "", NULL)) {
		stk_buf_printf(msg, "Stoker '%s' in namespace '%s' cannot be read", p.cr, ns);
		goto out;
	}
	stk_api_default(&stk_api_stoker_spec_type, &p.stk.spec);
	if (p.stk.spec.paused.set && p.stk.spec.paused.v) {
		stk_buf_printf(msg, "Stoker '%s' is paused", p.cr);
		goto out;
	}
	p.profile = annotation(pod, STK_ANN_SYNC_PROFILE);
	if (p.profile && !*p.profile)
		p.profile = NULL;
	p.service_path = annotation(pod, STK_ANN_SERVICE_PATH);
	if (p.service_path && !*p.service_path)
		p.service_path = NULL;
	if (p.profile) {
		if (!lk->get(lk->arg, STK_KIND_SYNCPROFILE, ns, p.profile, &ref)) {
			stk_buf_printf(msg, "SyncProfile '%s' not found in namespace '%s'",
				       p.profile, ns);
			goto out;
		}
		lk->put(lk->arg, ref);
	} else if (!p.service_path) {
		stk_buf_puts(msg, "set annotation " STK_ANN_SYNC_PROFILE
				  " (a SyncProfile) or " STK_ANN_SERVICE_PATH
				  " (a repository directory) to say what to sync");
		goto out;
	}
	p.data_volume = find_data_volume(pod, &p.data_path);
	if (!p.data_volume) {
		stk_buf_puts(msg,
			     "the pod has no volume 'ignition-data' or 'data' for the gateway's "
			     "data directory");
		goto out;
	}
	if (!p.data_path) {
		stk_buf_printf(msg, "no container of the pod mounts volume '%s'", p.data_volume);
		goto out;
	}
	p.git_mode = p.stk.spec.agent.source_mode && !strcmp(p.stk.spec.agent.source_mode, "git");
	if (p.git_mode && p.stk.spec.git.present) {
		p.auth = &p.stk.spec.git.auth;
	} else if (p.git_mode && p.stk.spec.source_ref.name) {
		obj = lk->get(lk->arg, STK_KIND_GITSOURCE, ns, p.stk.spec.source_ref.name, &ref);
		if (obj) {
			p.gs_decoded = true;
			if (stk_api_decode(&stk_api_gitsource_type, &p.gs, obj, "", NULL) == 0)
				p.auth = &p.gs.spec.auth;
			else
				p.auth = NULL;
			lk->put(lk->arg, ref);
		}
		/* A missing GitSource is the sync-controller's to report (SourceNotFound). */
	}
	build_patch(patch, cfg, &p);
	if (patch->len && patch->ptr[patch->len - 1] != ']')
		rc = stk_err_set(err, STK_ETOOBIG, "patch too large");
	else
		*res = INJ_INJECTED;
out:
	plan_release(&p, lk, stk_ref);
	return rc;
}

/* ---- AdmissionReview ---------------------------------------------------------------- */

int inj_review(const struct inj_config *cfg, const struct inj_lookup *lk, const char *body,
	       size_t len, stk_buf *out, enum inj_result *res, stk_err *err)
{
	yajl_val v = NULL, req, pod;
	const char *uid, *ns, *op, *kind;
	stk_buf patch = STK_BUF_INIT(1 << 20), msg = STK_BUF_INIT(1 << 12);
	int rc;

	*res = INJ_SKIPPED;
	rc = stk_json_parse(&v, body, len, STK_LIMIT_API_BODY, err);
	if (rc)
		return rc == STK_ETOOBIG ? rc : stk_err_set(err, STK_EPARSE, "%s", err->message);
	if (!stk_json_str(v, "apiVersion", NULL) ||
	    strcmp(stk_json_str(v, "apiVersion", NULL), "admission.k8s.io/v1") ||
	    !stk_json_str(v, "kind", NULL) ||
	    strcmp(stk_json_str(v, "kind", NULL), "AdmissionReview")) {
		rc = stk_err_set(err, STK_EPARSE, "not an admission.k8s.io/v1 AdmissionReview");
		goto out;
	}
	req = stk_json_obj(v, "request", NULL);
	uid = stk_json_str(req, "uid", NULL);
	if (!uid || !*uid) {
		rc = stk_err_set(err, STK_EPARSE, "AdmissionReview without request.uid");
		goto out;
	}
	ns = stk_json_str(req, "namespace", NULL);
	op = stk_json_str(req, "operation", NULL);
	kind = stk_json_str(req, "kind", "kind", NULL);
	pod = stk_json_obj(req, "object", NULL);
	if (!pod) {
		rc = stk_err_set(err, STK_EPARSE, "AdmissionReview without request.object");
		goto out;
	}
	if (!ns || !*ns)
		ns = stk_json_str(pod, "metadata", "namespace", NULL);
	/* Only Pod CREATE is ours; anything else the configuration sends is let through. */
	if (ns && *ns && op && !strcmp(op, "CREATE") && kind && !strcmp(kind, "Pod")) {
		rc = inj_mutate(cfg, lk, ns, pod, res, &patch, &msg, err);
		if (rc)
			goto out;
	}
	stk_buf_puts(out, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
			  "\"response\":{\"uid\":");
	put_str(out, uid);
	if (*res == INJ_DENIED) {
		stk_buf_puts(out, ",\"allowed\":false,\"status\":{\"code\":403,\"reason\":"
				  "\"Forbidden\",\"message\":");
		put_str(out, msg.ptr ? msg.ptr : "");
		stk_buf_puts(out, "}}}");
	} else if (*res == INJ_INJECTED) {
		char *b64 = stk_base64_encode(patch.ptr, patch.len);
		stk_buf_puts(out, ",\"allowed\":true,\"patchType\":\"JSONPatch\",\"patch\":\"");
		stk_buf_puts(out, b64);
		stk_buf_puts(out, "\"}}");
		free(b64);
	} else {
		stk_buf_puts(out, ",\"allowed\":true}}");
	}
	if (out->len && out->ptr[out->len - 1] != '}')
		rc = stk_err_set(err, STK_ETOOBIG, "response too large");
out:
	stk_buf_release(&patch);
	stk_buf_release(&msg);
	yajl_tree_free(v);
	return rc;
}
