#!/usr/bin/env bash
# The main job: a local Kubernetes control plane with Stoker's API installed, and the
# daemons built, with instructions for using them. Stays up until `make run-down`.
set -euo pipefail
cd "$(dirname "$0")/.."
name=run
e2e/cluster up --name "$name" --quiet >/dev/null
eval "$(e2e/cluster env --name "$name")"
k() { "$STOKER_KUBECTL" "$@"; }

installed=()
if [ -f config/crd/kustomization.yaml ]; then
	k apply -k config/crd/ >/dev/null
	k wait --for=condition=Established --timeout=60s crd/gitsources.source.stoker.io \
		crd/syncprofiles.stoker.io crd/stokers.stoker.io crd/alerts.notification.stoker.io \
		>/dev/null
	installed+=("the CRDs (kubectl get crd | grep stoker)")
fi

cat <<TXT
Stoker $(build/bin/source-controller --version | cut -d' ' -f2) on a local control plane (Kubernetes $(k version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')).

Control plane:  $(e2e/cluster status --name "$name")
Installed:      ${installed[*]:-nothing yet}
Binaries:       $(ls build/bin | tr '\n' ' ')

Use it from another shell:
  $(e2e/cluster env --name "$name" | sed -n 's/^export KUBECONFIG=/export KUBECONFIG=/p')
  export PATH=$(dirname "$STOKER_KUBECTL"):\$PATH
  kubectl apply -f config/samples/valid/stoker-my-sync.yaml   # a sample Stoker
  kubectl get stk,sp,gitsrc,alerts
  kubectl explain stoker.spec.gateway
  build/bin/source-controller --help      # every daemon lists its flags

Stop it with: make run-down
TXT
k get namespaces
