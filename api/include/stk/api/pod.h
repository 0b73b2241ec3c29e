/*
 * Gateway pods as the controllers read them (DESIGN.md §4): the annotations that tie a
 * pod to a Stoker and a SyncProfile, the gateway-name precedence used everywhere
 * (annotation stoker.io/gateway-name, then label app.kubernetes.io/name, then the pod
 * name), and a transform that keeps only those parts of a Pod in an informer cache.
 */
#ifndef STK_API_POD_H
#define STK_API_POD_H

#include <stdbool.h>
#include <yajl/yajl_tree.h>

/*
 * An informer transform (struct stk_informer_opts.transform): keeps metadata name,
 * namespace, uid, resourceVersion, generation, deletionTimestamp, the label
 * app.kubernetes.io/name and the stoker.io/ annotations; the names of spec.containers and
 * spec.initContainers; status.phase. `arg` is unused.
 */
void stk_api_pod_slim(yajl_val pod, void *arg);

/* metadata.annotations[key] when it is a string, else NULL. */
const char *stk_api_pod_annotation(yajl_val pod, const char *key);

/* The gateway name by the precedence above; NULL only for a pod without a name. */
const char *stk_api_gateway_name(yajl_val pod);

/* True when spec.initContainers or spec.containers has the agent (stoker-agent). */
bool stk_api_pod_has_agent(yajl_val pod);

/* True for phase Running and no deletionTimestamp. */
bool stk_api_pod_running(yajl_val pod);

/* True for a pod that is neither finished (Succeeded, Failed) nor being deleted. */
bool stk_api_pod_alive(yajl_val pod);

#endif
