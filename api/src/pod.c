#include "stk/api/pod.h"

#include <string.h>

#include "stk/api/kinds.h"
#include "stk/json.h"

static void slim_containers(yajl_val list)
{
	static const char *const keep[] = {"name", NULL};

	if (!list || !YAJL_IS_ARRAY(list))
		return;
	for (size_t i = 0; i < list->u.array.len; i++)
		stk_json_keep(list->u.array.values[i], keep);
}

/* Drops the members of `obj` whose key does not start with `prefix`. */
static void keep_prefixed(yajl_val obj, const char *prefix)
{
	size_t n = strlen(prefix), i = 0;

	if (!obj || !YAJL_IS_OBJECT(obj))
		return;
	while (i < obj->u.object.len) {
		if (!strncmp(obj->u.object.keys[i], prefix, n))
			i++;
		else
			stk_json_remove(obj, obj->u.object.keys[i]);
	}
}

void stk_api_pod_slim(yajl_val pod, void *arg)
{
	static const char *const top[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
	static const char *const meta[] = {
		"name",	      "namespace", "uid",	  "resourceVersion",
		"generation", "labels",	   "annotations", "deletionTimestamp",
		NULL};
	static const char *const spec[] = {"containers", "initContainers", NULL};
	static const char *const status[] = {"phase", NULL};
	static const char *const labels[] = {STK_LABEL_APP_NAME, NULL};
	yajl_val s;

	(void)arg;
	stk_json_keep(pod, top);
	stk_json_keep(stk_json_obj(pod, "metadata", NULL), meta);
	s = stk_json_obj(pod, "spec", NULL);
	stk_json_keep(s, spec);
	slim_containers(stk_json_arr(s, "containers", NULL));
	slim_containers(stk_json_arr(s, "initContainers", NULL));
	stk_json_keep(stk_json_obj(pod, "status", NULL), status);
	stk_json_keep(stk_json_obj(pod, "metadata", "labels", NULL), labels);
	keep_prefixed(stk_json_obj(pod, "metadata", "annotations", NULL), "stoker.io/");
}

const char *stk_api_pod_annotation(yajl_val pod, const char *key)
{
	return stk_json_str(pod, "metadata", "annotations", key, NULL);
}

const char *stk_api_gateway_name(yajl_val pod)
{
	const char *s = stk_api_pod_annotation(pod, STK_ANN_GATEWAY_NAME);

	if (!s || !*s)
		s = stk_json_str(pod, "metadata", "labels", STK_LABEL_APP_NAME, NULL);
	if (!s || !*s)
		s = stk_json_str(pod, "metadata", "name", NULL);
	return s;
}

static bool has_container(yajl_val list, const char *name)
{
	if (!list || !YAJL_IS_ARRAY(list))
		return false;
	for (size_t i = 0; i < list->u.array.len; i++) {
		const char *n = stk_json_str(list->u.array.values[i], "name", NULL);
		if (n && !strcmp(n, name))
			return true;
	}
	return false;
}

bool stk_api_pod_has_agent(yajl_val pod)
{
	return has_container(stk_json_arr(pod, "spec", "initContainers", NULL),
			     STK_AGENT_CONTAINER) ||
	       has_container(stk_json_arr(pod, "spec", "containers", NULL), STK_AGENT_CONTAINER);
}

bool stk_api_pod_running(yajl_val pod)
{
	const char *phase = stk_json_str(pod, "status", "phase", NULL);

	return phase && !strcmp(phase, "Running") &&
	       !stk_json_get(pod, "metadata", "deletionTimestamp", NULL);
}

bool stk_api_pod_alive(yajl_val pod)
{
	const char *phase = stk_json_str(pod, "status", "phase", NULL);

	if (stk_json_get(pod, "metadata", "deletionTimestamp", NULL))
		return false;
	return !phase || (strcmp(phase, "Succeeded") && strcmp(phase, "Failed"));
}
