/*
 * The REST client against a real API server: CRUD, paging, every patch type, the status
 * subresource, and each typed error produced by a real request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "itest.h"
#include "stk/json.h"

static stk_kube *k;
static const char *ns;

static int setup(void **state)
{
	(void)state;
	k = itest_client();
	ns = itest_namespace(k, "itest-rest");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	itest_delete_namespace(k, ns);
	stk_kube_free(k);
	return 0;
}

static char *rv_of(yajl_val obj)
{
	return strdup(stk_json_str(obj, "metadata", "resourceVersion", NULL));
}

static void test_kube_rest__configmap_crud_and_conflicts(void **state)
{
	stk_err err = STK_ERR_INIT;
	yajl_val obj = NULL;
	char *rv, *uid, body[512];
	(void)state;

	itest_create_cm(k, ns, "crud", "v1", NULL);
	assert_int_equal(stk_kube_get(k, &STK_GVR_CONFIGMAPS, ns, "crud", &obj, &err), 0);
	assert_string_equal(stk_json_str(obj, "data", "k", NULL), "v1");
	rv = rv_of(obj);
	uid = strdup(stk_json_str(obj, "metadata", "uid", NULL));
	yajl_tree_free(obj);

	/* PUT with the current resourceVersion succeeds... */
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"crud\","
		 "\"resourceVersion\":\"%s\"},\"data\":{\"k\":\"v2\"}}",
		 rv);
	assert_int_equal(stk_kube_update(k, &STK_GVR_CONFIGMAPS, ns, "crud", NULL, body,
					 strlen(body), &obj, &err),
			 0);
	assert_string_equal(stk_json_str(obj, "data", "k", NULL), "v2");
	yajl_tree_free(obj);
	/* ...and the same PUT again is stale: 409 Conflict. */
	assert_int_equal(stk_kube_update(k, &STK_GVR_CONFIGMAPS, ns, "crud", NULL, body,
					 strlen(body), NULL, &err),
			 STK_ECONFLICT);
	assert_int_equal(err.http_status, 409);
	assert_string_equal(err.reason, "Conflict");
	assert_non_null(strstr(err.message, "the object has been modified"));

	/* Creating it twice: 409 AlreadyExists. */
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"crud\"}}");
	assert_int_equal(
		stk_kube_create(k, &STK_GVR_CONFIGMAPS, ns, body, strlen(body), NULL, &err),
		STK_EEXIST);
	assert_string_equal(err.reason, "AlreadyExists");

	/* Delete with a precondition on another uid: refused with a conflict. */
	struct stk_delete_opts d = STK_DELETE_OPTS_INIT;
	d.precondition_uid = "00000000-0000-0000-0000-000000000000";
	assert_int_equal(stk_kube_delete(k, &STK_GVR_CONFIGMAPS, ns, "crud", &d, &err),
			 STK_ECONFLICT);
	if (!strstr(err.message, "recondition"))
		fail_msg("unexpected message: %s", err.message);
	d.precondition_uid = uid;
	d.propagation_policy = "Background";
	assert_int_equal(stk_kube_delete(k, &STK_GVR_CONFIGMAPS, ns, "crud", &d, &err), 0);

	/* Gone: 404 NotFound. */
	assert_int_equal(stk_kube_get(k, &STK_GVR_CONFIGMAPS, ns, "crud", &obj, &err),
			 STK_ENOTFOUND);
	assert_int_equal(err.http_status, 404);
	assert_non_null(strstr(err.message, "\"crud\" not found"));
	free(rv);
	free(uid);
}

struct counted {
	int items;
	int unlabeled;
};

static int count_item(yajl_val item, void *arg)
{
	struct counted *c = arg;
	const char *app = stk_json_str(item, "metadata", "labels", "app", NULL);
	c->items++;
	if (!app || strcmp(app, "paging"))
		c->unlabeled++;
	return 0;
}

static void test_kube_rest__paged_list_with_selectors(void **state)
{
	struct stk_list_opts lo = STK_LIST_OPTS_INIT;
	struct counted c = {0, 0};
	stk_err err = STK_ERR_INIT;
	char name[32], *rv = NULL;
	int pages = 0;
	(void)state;

	for (int i = 0; i < 25; i++) {
		snprintf(name, sizeof(name), "page-%02d", i);
		itest_create_cm(k, ns, name, "x", "{\"app\":\"paging\"}");
	}
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "other-%d", i);
		itest_create_cm(k, ns, name, "x", "{\"app\":\"other\"}");
	}
	lo.label_selector = "app=paging";
	lo.limit = 10;
	assert_int_equal(
		stk_kube_list_all(k, &STK_GVR_CONFIGMAPS, ns, &lo, count_item, &c, &rv, &err), 0);
	assert_int_equal(c.items, 25);
	assert_int_equal(c.unlabeled, 0);
	assert_non_null(rv);
	assert_true(strlen(rv) > 0);
	free(rv);

	/* Page by hand: 10 + 10 + 5, the last without a continue token. */
	char *cont = NULL;
	do {
		yajl_val page = NULL;
		const char *next;
		lo.continue_token = cont;
		assert_int_equal(stk_kube_list(k, &STK_GVR_CONFIGMAPS, ns, &lo, &page, &err), 0);
		pages++;
		free(cont);
		cont = NULL;
		next = stk_json_str(page, "metadata", "continue", NULL);
		if (next && *next)
			cont = strdup(next);
		if (pages < 3)
			assert_int_equal(stk_json_arr(page, "items", NULL)->u.array.len, 10);
		else
			assert_int_equal(stk_json_arr(page, "items", NULL)->u.array.len, 5);
		yajl_tree_free(page);
	} while (cont);
	assert_int_equal(pages, 3);

	/* Field selector on the name. */
	memset(&c, 0, sizeof(c));
	lo.label_selector = NULL;
	lo.continue_token = NULL;
	lo.field_selector = "metadata.name=other-1";
	assert_int_equal(
		stk_kube_list_all(k, &STK_GVR_CONFIGMAPS, ns, &lo, count_item, &c, NULL, &err), 0);
	assert_int_equal(c.items, 1);
}

static void test_kube_rest__every_patch_type(void **state)
{
	struct stk_patch_opts po = STK_PATCH_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	yajl_val obj = NULL;
	const char *merge = "{\"data\":{\"merged\":\"yes\"}}";
	const char *jp = "[{\"op\":\"replace\",\"path\":\"/data/k\",\"value\":\"json\"}]";
	const char *smp = "{\"metadata\":{\"labels\":{\"smp\":\"1\"}}}";
	(void)state;

	itest_create_cm(k, ns, "patched", "orig", NULL);
	assert_int_equal(stk_kube_patch(k, &STK_GVR_CONFIGMAPS, ns, "patched", STK_PATCH_MERGE,
					merge, strlen(merge), NULL, NULL, &err),
			 0);
	assert_int_equal(stk_kube_patch(k, &STK_GVR_CONFIGMAPS, ns, "patched", STK_PATCH_JSON, jp,
					strlen(jp), NULL, NULL, &err),
			 0);
	assert_int_equal(stk_kube_patch(k, &STK_GVR_CONFIGMAPS, ns, "patched", STK_PATCH_STRATEGIC,
					smp, strlen(smp), NULL, &obj, &err),
			 0);
	assert_string_equal(stk_json_str(obj, "data", "merged", NULL), "yes");
	assert_string_equal(stk_json_str(obj, "data", "k", NULL), "json");
	assert_string_equal(stk_json_str(obj, "metadata", "labels", "smp", NULL), "1");
	yajl_tree_free(obj);

	/* A JSON patch whose test fails is rejected by the server. */
	const char *bad = "[{\"op\":\"test\",\"path\":\"/data/k\",\"value\":\"nope\"}]";
	assert_int_not_equal(stk_kube_patch(k, &STK_GVR_CONFIGMAPS, ns, "patched", STK_PATCH_JSON,
					    bad, strlen(bad), NULL, NULL, &err),
			     0);

	/* Server-side apply: create, then a second manager conflicts unless it forces. */
	const char *applied = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
			      "{\"name\":\"applied\"},\"data\":{\"owner\":\"a\"}}";
	const char *takeover = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
			       "{\"name\":\"applied\"},\"data\":{\"owner\":\"b\"}}";
	po.field_manager = "itest-a";
	assert_int_equal(stk_kube_patch(k, &STK_GVR_CONFIGMAPS, ns, "applied", STK_PATCH_APPLY,
					applied, strlen(applied), &po, NULL, &err),
			 0);
	po.field_manager = "itest-b";
	assert_int_equal(stk_kube_patch(k, &STK_GVR_CONFIGMAPS, ns, "applied", STK_PATCH_APPLY,
					takeover, strlen(takeover), &po, NULL, &err),
			 STK_ECONFLICT);
	assert_non_null(strstr(err.message, "itest-a"));
	po.force = true;
	assert_int_equal(stk_kube_patch(k, &STK_GVR_CONFIGMAPS, ns, "applied", STK_PATCH_APPLY,
					takeover, strlen(takeover), &po, &obj, &err),
			 0);
	assert_string_equal(stk_json_str(obj, "data", "owner", NULL), "b");
	yajl_tree_free(obj);
	/* Apply without a field manager is refused before any request. */
	po.field_manager = NULL;
	assert_int_equal(stk_kube_patch(k, &STK_GVR_CONFIGMAPS, ns, "applied", STK_PATCH_APPLY,
					takeover, strlen(takeover), &po, NULL, &err),
			 STK_EINVAL);
}

static const char widget_crd[] =
	"{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
	"\"metadata\":{\"name\":\"gadgets.itest.stoker.io\"},\"spec\":{\"group\":"
	"\"itest.stoker.io\",\"names\":{\"kind\":\"Gadget\",\"plural\":\"gadgets\"},"
	"\"scope\":\"Namespaced\",\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":"
	"true,\"subresources\":{\"status\":{}},\"schema\":{\"openAPIV3Schema\":{\"type\":"
	"\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":{\"size\":"
	"{\"type\":\"integer\",\"maximum\":10}}},\"status\":{\"type\":\"object\","
	"\"properties\":{\"observedGeneration\":{\"type\":\"integer\",\"format\":\"int64\"}"
	"}}}}}}]}}";

static const struct stk_gvr gadgets = {"itest.stoker.io", "v1", "gadgets"};

static void test_kube_rest__custom_resource_status_subresource(void **state)
{
	stk_err err = STK_ERR_INIT;
	yajl_val obj = NULL;
	int64_t gen = 0, og = -1;
	int rc, tries;
	(void)state;

	rc = stk_kube_create(k, &STK_GVR_CRDS, NULL, widget_crd, strlen(widget_crd), NULL, &err);
	assert_true(rc == 0 || rc == STK_EEXIST);
	/* The new resource is served once the CRD is established. */
	const char *g = "{\"apiVersion\":\"itest.stoker.io/v1\",\"kind\":\"Gadget\","
			"\"metadata\":{\"name\":\"g1\"},\"spec\":{\"size\":3},"
			"\"status\":{\"observedGeneration\":99}}";
	for (tries = 0; tries < 100; tries++) {
		rc = stk_kube_create(k, &gadgets, ns, g, strlen(g), &obj, &err);
		if (rc != STK_ENOTFOUND)
			break;
		usleep(100000);
	}
	assert_int_equal(rc, 0);
	/* Status sent to the main resource is dropped. */
	assert_false(stk_json_int(obj, &og, "status", "observedGeneration", NULL));
	assert_true(stk_json_int(obj, &gen, "metadata", "generation", NULL));
	yajl_tree_free(obj);

	struct stk_patch_opts po = STK_PATCH_OPTS_INIT;
	char status[128];
	snprintf(status, sizeof(status), "{\"status\":{\"observedGeneration\":%lld}}",
		 (long long)gen);
	po.subresource = "status";
	assert_int_equal(stk_kube_patch(k, &gadgets, ns, "g1", STK_PATCH_MERGE, status,
					strlen(status), &po, &obj, &err),
			 0);
	assert_true(stk_json_int(obj, &og, "status", "observedGeneration", NULL));
	assert_int_equal(og, gen);
	/* A status write does not change the generation; a spec write through /status is ignored.
	 */
	int64_t gen2 = 0;
	assert_true(stk_json_int(obj, &gen2, "metadata", "generation", NULL));
	assert_int_equal(gen2, gen);
	yajl_tree_free(obj);
	const char *spec = "{\"spec\":{\"size\":9}}";
	assert_int_equal(stk_kube_patch(k, &gadgets, ns, "g1", STK_PATCH_MERGE, spec, strlen(spec),
					&po, &obj, &err),
			 0);
	int64_t size = 0;
	assert_true(stk_json_int(obj, &size, "spec", "size", NULL));
	assert_int_equal(size, 3);
	yajl_tree_free(obj);

	/* Schema validation: 422 Invalid with the field named. */
	const char *big = "{\"spec\":{\"size\":11}}";
	assert_int_equal(stk_kube_patch(k, &gadgets, ns, "g1", STK_PATCH_MERGE, big, strlen(big),
					NULL, NULL, &err),
			 STK_EINVALID);
	assert_int_equal(err.http_status, 422);
	assert_string_equal(err.reason, "Invalid");
	assert_non_null(strstr(err.message, "spec.size"));
}

static void test_kube_rest__invalid_object_names_its_field(void **state)
{
	stk_err err = STK_ERR_INIT;
	const char *bad = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
			  "{\"name\":\"Not_A_Valid_Name\"}}";
	(void)state;
	assert_int_equal(stk_kube_create(k, &STK_GVR_CONFIGMAPS, ns, bad, strlen(bad), NULL, &err),
			 STK_EINVALID);
	assert_int_equal(err.http_status, 422);
	assert_non_null(strstr(err.message, "metadata.name"));
	/* Names that would change the URL never reach the server. */
	assert_int_equal(stk_kube_get(k, &STK_GVR_CONFIGMAPS, ns, "../secrets", NULL, &err),
			 STK_EINVAL);
	assert_int_equal(stk_kube_get(k, &STK_GVR_CONFIGMAPS, ns, "a?b", NULL, &err), STK_EINVAL);
}

static void test_kube_rest__expired_resource_version_is_gone(void **state)
{
	struct stk_list_opts lo = STK_LIST_OPTS_INIT;
	stk_err err = STK_ERR_INIT;
	yajl_val obj = NULL;
	char *rv;
	(void)state;

	if (!getenv("STOKER_E2E_ETCD")) {
		skip();
		return;
	}
	/*
	 * An exact-version list of a version etcd compacted away (the test cluster sends
	 * exact-version reads to etcd, not to the watch cache).
	 */
	itest_create_cm(k, ns, "newer", "1", NULL);
	itest_compact_etcd();
	rv = strdup("2");
	(void)obj;
	lo.resource_version = rv;
	lo.resource_version_match = "Exact";
	assert_int_equal(stk_kube_list(k, &STK_GVR_CONFIGMAPS, ns, &lo, &obj, &err), STK_EGONE);
	assert_int_equal(err.http_status, 410);
	assert_string_equal(err.reason, "Expired");
	free(rv);
}

static void test_kube_rest__unauthorized_and_forbidden(void **state)
{
	stk_err err = STK_ERR_INIT;
	yajl_val obj = NULL;
	char body[256], path[256];
	stk_kube *anon, *weak;
	(void)state;

	anon = itest_client_with_token("not-a-real-token");
	assert_int_equal(stk_kube_list(anon, &STK_GVR_CONFIGMAPS, ns, NULL, NULL, &err), STK_EAUTH);
	assert_int_equal(err.http_status, 401);
	stk_kube_free(anon);

	/* A real token of a service account that no role grants anything. */
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":"
		 "\"nobody\"}}");
	assert_int_equal(
		stk_kube_create(k, &STK_GVR_SERVICEACCOUNTS, ns, body, strlen(body), NULL, &err),
		0);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/nobody/token", ns);
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\","
		 "\"spec\":{\"expirationSeconds\":600}}");
	struct stk_kube_request req = {"POST", path, NULL, NULL, body, strlen(body), 0};
	assert_int_equal(stk_kube_do(k, &req, &obj, &err), 0);
	weak = itest_client_with_token(stk_json_str(obj, "status", "token", NULL));
	yajl_tree_free(obj);
	assert_int_equal(stk_kube_list(weak, &STK_GVR_CONFIGMAPS, ns, NULL, NULL, &err),
			 STK_EFORBIDDEN);
	assert_int_equal(err.http_status, 403);
	assert_non_null(strstr(err.message, "system:serviceaccount:"));
	assert_non_null(strstr(err.message, ":nobody"));
	stk_kube_free(weak);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kube_rest__configmap_crud_and_conflicts),
		cmocka_unit_test(test_kube_rest__paged_list_with_selectors),
		cmocka_unit_test(test_kube_rest__every_patch_type),
		cmocka_unit_test(test_kube_rest__custom_resource_status_subresource),
		cmocka_unit_test(test_kube_rest__invalid_object_names_its_field),
		cmocka_unit_test(test_kube_rest__expired_resource_version_is_gone),
		cmocka_unit_test(test_kube_rest__unauthorized_and_forbidden),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
