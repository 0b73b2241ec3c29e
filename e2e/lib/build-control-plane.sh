#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, kubectl, etcd)
# from their Go modules at pinned versions, once, into a cache outside the repository.
# Prints the directory holding the binaries. Reuses a complete earlier build.
#
# k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the staging modules
# with local paths), so a throwaway wrapper module requires it and pins every staging
# module named in its replace block to the matching v0.x release. etcd gets the same
# treatment for the same reason.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

cache=${STOKER_CACHE:-$HOME/.cache/stoker}
out="$cache/control-plane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
bins=(kube-apiserver kube-controller-manager kubectl etcd)

complete() {
	local b
	for b in "${bins[@]}"; do [ -x "$out/bin/$b" ] || return 1; done
	[ -f "$out/.complete" ]
}
if complete; then
	echo "$out/bin"
	exit 0
fi

command -v go >/dev/null || { echo "build-control-plane: go is required" >&2; exit 1; }

export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
work="$cache/control-plane/.work-k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$work/k8s" "$work/etcd" "$out/bin"

log() { echo "build-control-plane: $*" >&2; }

# --- Kubernetes ---------------------------------------------------------------------
minor=${K8S_VERSION#v1.}
staging_v="v0.${minor}"
cd "$work/k8s"
if [ ! -f go.mod ]; then
	log "resolving k8s.io/kubernetes $K8S_VERSION"
	gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
	[ -f "$gomod" ] || { log "cannot download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
	goline=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod" | head -n1)
	{
		echo "module stoker.local/controlplane"
		echo
		echo "go $goline"
		echo
		echo "require k8s.io/kubernetes $K8S_VERSION"
		echo
		echo "replace ("
		# Every "k8s.io/x => ./staging/src/k8s.io/x" line becomes "k8s.io/x => k8s.io/x v0.N.P".
		sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*$#\1#p' "$gomod" |
			while read -r m; do echo "	$m => $m $staging_v"; done
		echo ")"
	} >go.mod.tmp
	cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
	mv go.mod.tmp go.mod
fi
log "fetching modules for Kubernetes $K8S_VERSION (first run only)"
go mod tidy >&2
ldflags="-s -w"
for kv in "gitVersion=$K8S_VERSION" "gitMajor=1" "gitMinor=${minor%%.*}" "gitTreeState=clean" \
	"buildDate=1970-01-01T00:00:00Z"; do
	ldflags="$ldflags -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
done
for b in kube-apiserver kube-controller-manager kubectl; do
	[ -x "$out/bin/$b" ] && continue
	log "building $b $K8S_VERSION"
	go build -trimpath -ldflags "$ldflags" -o "$out/bin/$b.tmp" "k8s.io/kubernetes/cmd/$b" >&2
	mv "$out/bin/$b.tmp" "$out/bin/$b"
done

# --- etcd ---------------------------------------------------------------------------
cd "$work/etcd"
if [ ! -f go.mod ]; then
	log "resolving etcd $ETCD_VERSION"
	gomod=$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
	[ -f "$gomod" ] || { log "cannot download etcd $ETCD_VERSION"; exit 1; }
	goline=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod" | head -n1)
	{
		echo "module stoker.local/etcd"
		echo
		echo "go $goline"
		echo
		echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
		echo
		echo "replace ("
		sed -n 's#^[[:space:]]*\(go\.etcd\.io/etcd/[a-z0-9/-]*\) => \.\./.*$#\1#p' "$gomod" |
			while read -r m; do echo "	$m => $m $ETCD_VERSION"; done
		echo ")"
	} >go.mod.tmp
	cat >tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
	mv go.mod.tmp go.mod
fi
log "fetching modules for etcd $ETCD_VERSION (first run only)"
go mod tidy >&2
if [ ! -x "$out/bin/etcd" ]; then
	log "building etcd $ETCD_VERSION"
	go build -trimpath -ldflags "-s -w" -o "$out/bin/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
	mv "$out/bin/etcd.tmp" "$out/bin/etcd"
fi

touch "$out/.complete"
echo "$out/bin"
