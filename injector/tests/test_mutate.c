#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "lookup_fixture.h"
#include "mutate.h"
#include "stk/json.h"

#define STK(name, spec)                                                 \
	"{\"apiVersion\":\"stoker.io/"                                  \
	"v1alpha1\",\"kind\":\"Stoker\",\"metadata\":{\"name\":\"" name \
	"\",\"namespace\":\"site1\"},\"spec\":" spec "}"
#define SP(name)                                                                 \
	"{\"apiVersion\":\"stoker.io/"                                           \
	"v1alpha1\",\"kind\":\"SyncProfile\",\"metadata\":{\"name\":\"" name     \
	"\",\"namespace\":\"site1\"},\"spec\":{\"mappings\":[{\"source\":\"a\"," \
	"\"destination\":\"b\"}]}}"
#define GS(name, auth)                                                                          \
	"{\"apiVersion\":\"source.stoker.io/v1alpha1\",\"kind\":\"GitSource\",\"metadata\":{"   \
	"\"name\":\"" name "\",\"namespace\":\"site1\"},\"spec\":{\"url\":\"https://x/r.git\"," \
	"\"ref\":{\"branch\":\"main\"}" auth "}}"

/* A pod with the given annotations (JSON members) and the usual data volume. */
#define POD_ANN(ann)                                                                              \
	"{\"metadata\":{\"name\":\"gw-0\",\"namespace\":\"site1\",\"labels\":{},"                 \
	"\"annotations\":{" ann "}},\"spec\":{\"volumes\":[{\"name\":\"data\",\"emptyDir\":{}}]," \
	"\"containers\":[{\"name\":\"gateway\",\"image\":\"ignition\",\"volumeMounts\":["         \
	"{\"name\":\"data\",\"mountPath\":\"/usr/local/bin/ignition/data\"}]}]}}"

static const struct inj_config cfg = {"ghcr.io/stoker/agent:test"};

struct result {
	enum inj_result res;
	char msg[1024];
	yajl_val patch; /* the decoded JSON patch, or NULL */
};

static void run(const char *const *objs, const char *pod_json, struct result *out)
{
	struct fixture f = {objs, {0}, 0};
	struct inj_lookup lk = {fixture_get, fixture_put, fixture_each, &f};
	stk_buf patch = STK_BUF_INIT(1 << 20), msg = STK_BUF_INIT(1 << 12);
	yajl_val pod;

	fixture_load(&f);
	assert_int_equal(stk_json_parse(&pod, pod_json, strlen(pod_json), 1 << 20, NULL), 0);
	assert_int_equal(inj_mutate(&cfg, &lk, "site1", pod, &out->res, &patch, &msg, NULL), 0);
	snprintf(out->msg, sizeof(out->msg), "%s", msg.ptr ? msg.ptr : "");
	out->patch = NULL;
	if (patch.len)
		assert_int_equal(stk_json_parse(&out->patch, patch.ptr, patch.len, 1 << 20, NULL),
				 0);
	yajl_tree_free(pod);
	stk_buf_release(&patch);
	stk_buf_release(&msg);
	fixture_free(&f);
}

/* The value of the patch operation on `path` (NULL if none). */
static yajl_val op_value(yajl_val patch, const char *path, int nth)
{
	for (size_t i = 0; patch && i < patch->u.array.len; i++) {
		const char *p = stk_json_str(patch->u.array.values[i], "path", NULL);
		if (p && !strcmp(p, path) && nth-- == 0)
			return stk_json_get(patch->u.array.values[i], "value", NULL);
	}
	return NULL;
}

static const char *env(yajl_val container, const char *name)
{
	yajl_val e = stk_json_arr(container, "env", NULL);

	for (size_t i = 0; e && i < e->u.array.len; i++) {
		const char *n = stk_json_str(e->u.array.values[i], "name", NULL);
		if (n && !strcmp(n, name)) {
			const char *v = stk_json_str(e->u.array.values[i], "value", NULL);
			return v ? v
				 : stk_json_str(e->u.array.values[i], "valueFrom", "fieldRef",
						"fieldPath", NULL);
		}
	}
	return NULL;
}

static bool has_volume(yajl_val patch, const char *name)
{
	for (int i = 0; i < 16; i++) {
		yajl_val v = op_value(patch, "/spec/volumes/-", i);
		if (!v)
			return false;
		if (!strcmp(stk_json_str(v, "name", NULL), name))
			return true;
	}
	return false;
}

static void test_mutate__basic_injection(void **state)
{
	const char *const objs[] = {STK("plant",
					"{\"sourceRef\":{\"kind\":\"GitSource\",\"name\":"
					"\"repo\"},\"gateway\":{\"apiKeySecretRef\":{\"name\":"
					"\"gw-key\",\"key\":\"apiKey\"}}}"),
				    SP("site"), NULL};
	struct result r;
	yajl_val c;

	(void)state;
	run(objs,
	    POD_ANN("\"stoker.io/inject\":\"true\",\"stoker.io/cr-name\":\"plant\","
		    "\"stoker.io/sync-profile\":\"site\",\"stoker.io/gateway-name\":\"site\""),
	    &r);
	assert_int_equal(r.res, INJ_INJECTED);
	c = op_value(r.patch, "/spec/initContainers", 0);
	assert_non_null(c);
	c = c->u.array.values[0];
	assert_string_equal(stk_json_str(c, "name", NULL), "stoker-agent");
	assert_string_equal(stk_json_str(c, "image", NULL), "ghcr.io/stoker/agent:test");
	assert_string_equal(stk_json_str(c, "restartPolicy", NULL), "Always");
	assert_string_equal(env(c, "POD_NAME"), "metadata.name");
	assert_string_equal(env(c, "CR_NAME"), "plant");
	assert_string_equal(env(c, "GATEWAY_NAME"), "site");
	assert_string_equal(env(c, "SYNC_PROFILE"), "site");
	assert_string_equal(env(c, "SOURCE_MODE"), "artifact");
	assert_string_equal(env(c, "SOURCE_TOKEN_FILE"), "/var/run/secrets/stoker/token");
	assert_string_equal(env(c, "DATA_PATH"), "/usr/local/bin/ignition/data");
	assert_string_equal(env(c, "GATEWAY_PORT"), "8088");
	assert_string_equal(env(c, "GATEWAY_TLS"), "false");
	assert_string_equal(env(c, "API_KEY_FILE"), "/etc/stoker/api-key/apiKey");
	assert_null(env(c, "GIT_SSH_KEY_FILE"));
	assert_true(has_volume(r.patch, "stoker-repo"));
	assert_true(has_volume(r.patch, "stoker-api-key"));
	assert_true(has_volume(r.patch, "stoker-token"));
	assert_non_null(op_value(r.patch, "/metadata/annotations/stoker.io~1injected", 0));
	assert_null(op_value(r.patch, "/metadata/annotations/stoker.io~1cr-name", 0));
	yajl_tree_free(r.patch);
}

static void test_mutate__decision_order_and_denials(void **state)
{
	const char *const none[] = {SP("site"), NULL};
	const char *const two[] = {
		STK("a", "{\"sourceRef\":{\"kind\":\"GitSource\",\"name\":\"r\"}}"),
		STK("b", "{\"sourceRef\":{\"kind\":\"GitSource\",\"name\":\"r\"}}"), SP("site"),
		NULL};
	const char *const paused[] = {STK("plant", "{\"sourceRef\":{\"kind\":\"GitSource\","
						   "\"name\":\"r\"},\"paused\":true}"),
				      NULL};
	const char *const one[] = {STK("plant", "{\"sourceRef\":{\"kind\":\"GitSource\",\"name\":"
						"\"r\"}}"),
				   SP("site"), NULL};
	struct result r;

	(void)state;
	run(one, POD_ANN("\"other\":\"x\""), &r);
	assert_int_equal(r.res, INJ_SKIPPED);
	run(one, POD_ANN("\"stoker.io/inject\":\"false\""), &r);
	assert_int_equal(r.res, INJ_SKIPPED);
	run(one, POD_ANN("\"stoker.io/inject\":\"true\",\"stoker.io/injected\":\"true\""), &r);
	assert_int_equal(r.res, INJ_ALREADY);
	run(none, POD_ANN("\"stoker.io/inject\":\"true\",\"stoker.io/sync-profile\":\"site\""), &r);
	assert_int_equal(r.res, INJ_DENIED);
	assert_string_equal(r.msg, "no Stoker found in namespace 'site1'; create one or set "
				   "annotation stoker.io/cr-name");
	run(two, POD_ANN("\"stoker.io/inject\":\"true\",\"stoker.io/sync-profile\":\"site\""), &r);
	assert_string_equal(
		r.msg,
		"multiple Stokers in namespace 'site1' (a, b); set annotation stoker.io/cr-name");
	run(one, POD_ANN("\"stoker.io/inject\":\"true\",\"stoker.io/cr-name\":\"x\""), &r);
	assert_string_equal(r.msg, "Stoker 'x' not found in namespace 'site1'");
	run(paused, POD_ANN("\"stoker.io/inject\":\"true\""), &r);
	assert_string_equal(r.msg, "Stoker 'plant' is paused");
	run(one, POD_ANN("\"stoker.io/inject\":\"true\",\"stoker.io/sync-profile\":\"p\""), &r);
	assert_string_equal(r.msg, "SyncProfile 'p' not found in namespace 'site1'");
	run(one, POD_ANN("\"stoker.io/inject\":\"true\""), &r);
	assert_int_equal(r.res, INJ_DENIED);
	assert_non_null(strstr(r.msg, "stoker.io/sync-profile"));

	/* Auto-derived with exactly one Stoker: cr-name is written back. */
	run(one, POD_ANN("\"stoker.io/inject\":\"true\",\"stoker.io/sync-profile\":\"site\""), &r);
	assert_int_equal(r.res, INJ_INJECTED);
	assert_string_equal(
		op_value(r.patch, "/metadata/annotations/stoker.io~1cr-name", 0)->u.string,
		"plant");
	yajl_tree_free(r.patch);
}

static void test_mutate__volumes_images_and_modes(void **state)
{
	const char *const objs[] = {
		STK("plant", "{\"sourceRef\":{\"kind\":\"GitSource\",\"name\":\"repo\"},"
			     "\"gateway\":{\"port\":8043,\"tls\":true},\"agent\":{\"sourceMode\":"
			     "\"git\",\"image\":{\"repository\":\"reg/agent\",\"tag\":\"1.2\"},"
			     "\"resources\":{\"limits\":{\"memory\":\"64Mi\"}}}}"),
		STK("pub", "{\"git\":{\"repo\":\"https://x/r.git\",\"ref\":\"main\"},"
			   "\"agent\":{\"sourceMode\":\"git\"}}"),
		GS("repo", ",\"auth\":{\"sshKey\":{\"secretRef\":{\"name\":\"k\",\"key\":\"id\"}},"
			   "\"knownHosts\":{\"secretRef\":{\"name\":\"k\",\"key\":\"kh\"}}}"),
		SP("site"), NULL};
	const char *ignition_data =
		"{\"metadata\":{\"generateName\":\"gw-\",\"namespace\":\"site1\",\"annotations\":{"
		"\"stoker.io/inject\":\"true\",\"stoker.io/cr-name\":\"plant\","
		"\"stoker.io/service-path\":\"services/site\",\"stoker.io/agent-image\":\"my/"
		"agent:9\"}},"
		"\"spec\":{\"volumes\":[{\"name\":\"data\"},{\"name\":\"ignition-data\"}],"
		"\"initContainers\":[{\"name\":\"setup\"}],\"containers\":[{\"name\":\"gw\","
		"\"volumeMounts\":[{\"name\":\"ignition-data\",\"mountPath\":\"/data\"},"
		"{\"name\":\"data\",\"mountPath\":\"/other\"}]}]}}";
	struct result r;
	yajl_val c;

	(void)state;
	run(objs, ignition_data, &r);
	assert_int_equal(r.res, INJ_INJECTED);
	c = op_value(r.patch, "/spec/initContainers/-", 0); /* appended after "setup" */
	assert_non_null(c);
	assert_string_equal(stk_json_str(c, "image", NULL), "my/agent:9"); /* annotation wins */
	assert_string_equal(env(c, "DATA_PATH"), "/data");		   /* ignition-data first */
	assert_string_equal(env(c, "GATEWAY_NAME"), "metadata.name");	   /* generateName */
	assert_string_equal(env(c, "SERVICE_PATH"), "services/site");
	assert_null(env(c, "SYNC_PROFILE"));
	assert_string_equal(env(c, "SOURCE_MODE"), "git");
	assert_null(env(c, "SOURCE_TOKEN_FILE"));
	assert_string_equal(env(c, "GATEWAY_PORT"), "8043");
	assert_string_equal(env(c, "GATEWAY_TLS"), "true");
	assert_string_equal(env(c, "GIT_SSH_KEY_FILE"), "/etc/stoker/git/ssh/identity");
	assert_string_equal(env(c, "GIT_KNOWN_HOSTS_FILE"),
			    "/etc/stoker/git/known-hosts/known_hosts");
	assert_string_equal(stk_json_str(c, "resources", "limits", "memory", NULL), "64Mi");
	assert_true(has_volume(r.patch, "stoker-git-ssh"));
	assert_false(has_volume(r.patch, "stoker-token"));
	yajl_tree_free(r.patch);

	/* The Stoker's image, and a public repository in git mode: no credentials. */
	run(objs,
	    POD_ANN("\"stoker.io/inject\":\"true\",\"stoker.io/cr-name\":\"pub\","
		    "\"stoker.io/sync-profile\":\"site\""),
	    &r);
	c = op_value(r.patch, "/spec/initContainers", 0)->u.array.values[0];
	assert_string_equal(stk_json_str(c, "image", NULL), "ghcr.io/stoker/agent:test");
	assert_null(env(c, "GIT_SSH_KEY_FILE"));
	assert_null(env(c, "GIT_TOKEN_FILE"));
	assert_null(env(c, "SOURCE_TOKEN_FILE"));
	assert_false(has_volume(r.patch, "stoker-git-ssh"));
	assert_false(has_volume(r.patch, "stoker-token"));
	assert_string_equal(stk_json_str(c, "resources", "requests", "memory", NULL), "32Mi");
	yajl_tree_free(r.patch);
	run(objs,
	    "{\"metadata\":{\"name\":\"x\",\"annotations\":{\"stoker.io/inject\":\"true\","
	    "\"stoker.io/cr-name\":\"pub\",\"stoker.io/sync-profile\":\"site\"}},"
	    "\"spec\":{\"containers\":[{\"name\":\"gw\"}]}}",
	    &r);
	assert_int_equal(r.res, INJ_DENIED);
	assert_non_null(strstr(r.msg, "no volume 'ignition-data' or 'data'"));
	run(objs,
	    "{\"metadata\":{\"name\":\"x\",\"annotations\":{\"stoker.io/inject\":\"true\","
	    "\"stoker.io/cr-name\":\"pub\",\"stoker.io/sync-profile\":\"site\"}},"
	    "\"spec\":{\"volumes\":[{\"name\":\"data\"}],\"containers\":[{\"name\":\"gw\"}]}}",
	    &r);
	assert_string_equal(r.msg, "no container of the pod mounts volume 'data'");
}

static void test_mutate__review_envelope(void **state)
{
	const char *const objs[] = {STK("plant", "{\"sourceRef\":{\"kind\":\"GitSource\",\"name\":"
						 "\"r\"}}"),
				    SP("site"), NULL};
	struct fixture f = {objs, {0}, 0};
	struct inj_lookup lk = {fixture_get, fixture_put, fixture_each, &f};
	const char *review =
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
		"\"uid\":\"u-1\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
		"\"operation\":\"CREATE\",\"namespace\":\"site1\",\"object\":" POD_ANN(
			"\"stoker.io/inject\":\"true\",\"stoker.io/sync-profile\":\"site\"") "}}";
	const char *deny =
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
		"\"uid\":\"u-2\",\"kind\":{\"kind\":\"Pod\"},\"operation\":\"CREATE\","
		"\"namespace\":"
		"\"site1\",\"object\":" POD_ANN(
			"\"stoker.io/inject\":\"true\",\"stoker.io/cr-name\":"
			"\"nope\"") "}}";
	stk_buf out = STK_BUF_INIT(1 << 20);
	enum inj_result res;
	stk_err err = STK_ERR_INIT;
	yajl_val v;
	const char *b64;
	unsigned char raw[1 << 14];
	int n;

	(void)state;
	fixture_load(&f);
	assert_int_equal(inj_review(&cfg, &lk, review, strlen(review), &out, &res, &err), 0);
	assert_int_equal(res, INJ_INJECTED);
	assert_int_equal(stk_json_parse(&v, out.ptr, out.len, 1 << 20, NULL), 0);
	assert_string_equal(stk_json_str(v, "response", "uid", NULL), "u-1");
	assert_true(YAJL_IS_TRUE(stk_json_get(v, "response", "allowed", NULL)));
	assert_string_equal(stk_json_str(v, "response", "patchType", NULL), "JSONPatch");
	b64 = stk_json_str(v, "response", "patch", NULL);
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)strlen(b64));
	assert_true(n > 0 && raw[0] == '[');
	yajl_tree_free(v);

	stk_buf_reset(&out);
	assert_int_equal(inj_review(&cfg, &lk, deny, strlen(deny), &out, &res, &err), 0);
	assert_int_equal(res, INJ_DENIED);
	assert_int_equal(stk_json_parse(&v, out.ptr, out.len, 1 << 20, NULL), 0);
	assert_true(YAJL_IS_FALSE(stk_json_get(v, "response", "allowed", NULL)));
	assert_string_equal(stk_json_str(v, "response", "status", "message", NULL),
			    "Stoker 'nope' not found in namespace 'site1'");
	assert_true(stk_json_int(stk_json_get(v, "response", "status", NULL), &(int64_t){0}, "code",
				 NULL));
	yajl_tree_free(v);

	/* Not reviews: refused with a reason (the handler answers 400). */
	stk_buf_reset(&out);
	assert_int_equal(inj_review(&cfg, &lk, "{", 1, &out, &res, &err), STK_EPARSE);
	{
		const char *beta = "{\"apiVersion\":\"admission.k8s.io/v1beta1\","
				   "\"kind\":\"AdmissionReview\"}";
		const char *no_uid = "{\"apiVersion\":\"admission.k8s.io/v1\","
				     "\"kind\":\"AdmissionReview\",\"request\":{}}";
		assert_int_equal(inj_review(&cfg, &lk, beta, strlen(beta), &out, &res, &err),
				 STK_EPARSE);
		assert_int_equal(inj_review(&cfg, &lk, no_uid, strlen(no_uid), &out, &res, &err),
				 STK_EPARSE);
	}
	assert_non_null(strstr(err.message, "request.uid"));
	stk_buf_release(&out);
	fixture_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutate__basic_injection),
		cmocka_unit_test(test_mutate__decision_order_and_denials),
		cmocka_unit_test(test_mutate__volumes_images_and_modes),
		cmocka_unit_test(test_mutate__review_envelope),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
