/* Shared helpers of the runtime's integration tests (run against the e2e cluster). */
#ifndef ITEST_H
#define ITEST_H

#include <stdbool.h>
#include <stdint.h>

#include "stk/kube.h"
#include "stk/loop.h"

/* A client for $KUBECONFIG; fails the test on error. */
stk_kube *itest_client(void);

/* A client authenticating with `token` against the cluster of $KUBECONFIG. */
stk_kube *itest_client_with_token(const char *token);

/* Creates a namespace named "<prefix>-<random>" and returns it (static storage). */
const char *itest_namespace(stk_kube *k, const char *prefix);

/* Deletes a namespace (best effort). */
void itest_delete_namespace(stk_kube *k, const char *ns);

/* Runs e2e/cluster with the given arguments; returns its exit status. */
int itest_cluster(const char *const *args);

/* True when the cluster is the local control plane (so the API server can be stopped). */
bool itest_local_cluster(void);

/* Creates a ConfigMap {"k": value} with the given labels JSON (or NULL). */
void itest_create_cm(stk_kube *k, const char *ns, const char *name, const char *value,
		     const char *labels_json);

/* Compacts etcd at its current revision (local cluster: $STOKER_E2E_ETCD). */
void itest_compact_etcd(void);

/* Loop helpers: see support/testloop.h. */
#include "testloop.h"

#endif
