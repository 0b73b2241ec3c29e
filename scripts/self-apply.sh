#!/usr/bin/env bash
# Stoker managing its own install with GitOps: applies the kustomization at PATH inside
# the artifact of a GitSource each time the GitSource stores a new revision.
#
#   self-apply.sh --namespace NS --gitsource NAME --path PATH [--token-file FILE]
#                 [--interval SECONDS] [--once] [--server-side]
#
# Each round: read the GitSource's status.artifact (url, digest, revision); when the
# revision differs from the last one applied, download the artifact with the token
# (a service-account token with audience stoker-source of a service account in NS; the
# artifact server allows only its own namespace), check its sha256 against the digest,
# unpack it into a fresh temporary directory (the packer writes regular files and
# directories only, no absolute or '..' paths), and `kubectl apply -k` the PATH inside
# it with the field manager stoker-self-apply. A failure leaves the last applied
# revision in place and is retried next round. --once applies at most one revision and
# exits (0 applied or up to date, 1 failure). Needs kubectl, curl, sha256sum, tar.
set -euo pipefail
ns= src= path= token_file=/var/run/secrets/stoker/token interval=10 once=0 ssa=()
while [ $# -gt 0 ]; do
	case $1 in
	--namespace) ns=$2; shift 2 ;;
	--gitsource) src=$2; shift 2 ;;
	--path) path=$2; shift 2 ;;
	--token-file) token_file=$2; shift 2 ;;
	--interval) interval=$2; shift 2 ;;
	--once) once=1; shift ;;
	--server-side) ssa=(--server-side --force-conflicts); shift ;;
	*) echo "self-apply: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$ns" ] && [ -n "$src" ] && [ -n "$path" ] || {
	echo "usage: self-apply.sh --namespace NS --gitsource NAME --path PATH [--token-file F] [--interval S] [--once] [--server-side]" >&2
	exit 2
}
case $path in /* | *..*) echo "self-apply: --path must be relative without '..'" >&2; exit 2 ;; esac
kubectl=${KUBECTL:-kubectl}
log() { printf '{"ts":"%s","level":"%s","msg":"%s"%s}\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" "${3:-}"; }
last=

apply_once() {
	local out rev url digest work rc=0
	out=$("$kubectl" get gitsource "$src" -n "$ns" \
		-o jsonpath='{.status.artifact.revision}{"\n"}{.status.artifact.url}{"\n"}{.status.artifact.digest}') || return 1
	{ read -r rev; read -r url; read -r digest; } <<<"$out"
	if [ -z "$rev" ] || [ -z "$url" ]; then
		log info "no artifact yet" ",\"gitsource\":\"$ns/$src\""
		return 0
	fi
	[ "$rev" = "$last" ] && return 0
	work=$(mktemp -d)
	if ! curl -fsS --max-time 300 -H "Authorization: Bearer $(cat "$token_file")" -o "$work/a.tgz" "$url"; then
		log error "download failed" ",\"revision\":\"$rev\""
		rc=1
	elif [ "sha256:$(sha256sum "$work/a.tgz" | cut -d' ' -f1)" != "$digest" ]; then
		log error "artifact digest mismatch" ",\"revision\":\"$rev\""
		rc=1
	elif ! mkdir "$work/tree" || ! tar -xzf "$work/a.tgz" -C "$work/tree" --no-same-owner --no-same-permissions; then
		log error "cannot unpack the artifact" ",\"revision\":\"$rev\""
		rc=1
	elif [ ! -f "$work/tree/$path/kustomization.yaml" ]; then
		log error "no kustomization.yaml at the path" ",\"revision\":\"$rev\",\"path\":\"$path\""
		rc=1
	elif ! "$kubectl" apply -k "$work/tree/$path" --field-manager stoker-self-apply "${ssa[@]}" >"$work/apply.log" 2>&1; then
		log error "kubectl apply failed" ",\"revision\":\"$rev\",\"output\":$(tail -c 2000 "$work/apply.log" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"
		rc=1
	else
		log info "applied" ",\"revision\":\"$rev\",\"changed\":$(grep -cv ' unchanged$' "$work/apply.log" || true)"
		last=$rev
	fi
	rm -rf "$work"
	return $rc
}

if [ $once -eq 1 ]; then
	apply_once
	exit $?
fi
trap 'exit 0' TERM INT
while :; do
	apply_once || true
	sleep "$interval" &
	wait $! || true
done
