# Pinned versions of the test control plane. Changing one rebuilds into a new cache key.
K8S_VERSION=${STOKER_K8S_VERSION:-v1.34.4}
ETCD_VERSION=${STOKER_ETCD_VERSION:-v3.6.16}
