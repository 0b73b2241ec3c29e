# Helpers for end-to-end cases written in bash. Source it first thing in a case:
#   . "$(dirname "$0")/../lib/testlib.sh"
# It loads the cluster's env (e2e/cluster env), creates a namespace of the case's own
# (E2E_NS, deleted on exit, with whatever the case registered with `on_exit`), and
# offers assertions that print TAP-style lines. The case fails if any assertion failed.
set -uo pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
E2E_CASE=$(basename "$0" .sh)
eval "$("$E2E_ROOT/cluster" env)" || { echo "not ok - cluster is not up" >&2; exit 1; }
k() { "$STOKER_KUBECTL" "$@"; }

E2E_PASSED=0
E2E_FAILED=0
E2E_WORK=$(mktemp -d "/tmp/stoker-$E2E_CASE.XXXXXX")
E2E_NS="e2e-$(echo "$E2E_CASE" | tr '_' '-' | cut -c1-40)-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
_e2e_exit_hooks=()

on_exit() { _e2e_exit_hooks+=("$*"); }

# After a failure, the end of each log the case's processes wrote into E2E_WORK, so that a
# CI transcript alone shows why a daemon died or did not answer.
_e2e_log_tails() {
	local f
	while IFS= read -r f; do
		echo "# --- last lines of ${f#"$E2E_WORK"/}"
		tail -n 25 "$f" | sed 's/^/#   /'
	done < <(find "$E2E_WORK" -maxdepth 3 -name '*.log' -type f -size +0 2>/dev/null | sort)
}

_e2e_finish() {
	local i
	for ((i = ${#_e2e_exit_hooks[@]} - 1; i >= 0; i--)); do
		eval "${_e2e_exit_hooks[$i]}" >/dev/null 2>&1 || true
	done
	k delete namespace "$E2E_NS" --wait=false >/dev/null 2>&1 || true
	[ "$E2E_FAILED" -eq 0 ] || _e2e_log_tails
	if [ -n "${E2E_KEEP_WORK:-}" ]; then
		echo "# kept $E2E_WORK (E2E_KEEP_WORK)"
	else
		rm -rf "$E2E_WORK"
	fi
	echo "$E2E_CASE: $E2E_PASSED passed, $E2E_FAILED failed"
	[ "$E2E_FAILED" -eq 0 ] && [ "$E2E_PASSED" -gt 0 ]
}
trap '_e2e_finish; exit $?' EXIT

ok() { echo "ok - $*"; E2E_PASSED=$((E2E_PASSED + 1)); }
not_ok() { echo "not ok - $*"; E2E_FAILED=$((E2E_FAILED + 1)); }

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
	local what=$1
	shift
	if "$@" >/dev/null; then ok "$what"; else not_ok "$what"; fi
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: expected '$2', got '$3'"; fi
}

# expect_contains DESCRIPTION NEEDLE HAYSTACK
expect_contains() {
	if [[ $3 == *"$2"* ]]; then ok "$1"; else not_ok "$1: '$2' not in: $3"; fi
}

# expect_absent DESCRIPTION HAYSTACK NEEDLE...: passes when HAYSTACK is not empty and holds
# none of the needles. An empty haystack fails: it usually means that the command that
# produced it failed, which must not pass for "nothing found".
expect_absent() {
	local what=$1 hay=$2 n
	shift 2
	if [ -z "$hay" ]; then
		not_ok "$what: nothing to look in"
		return
	fi
	for n in "$@"; do
		if [[ $hay == *"$n"* ]]; then
			not_ok "$what: found '$n'"
			return
		fi
	done
	ok "$what"
}

# wait_for SECONDS COMMAND...: retries every 0.2 s until the command succeeds.
wait_for() {
	local deadline=$(($(date +%s) + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.2
	done
}

# delete_namespaces NAMESPACE...: deletes the namespaces (not waiting for them), their
# Deployments first, in the foreground so that their ReplicaSets and pods go with them.
# While a namespace terminates, a ReplicaSet still in it replaces the pods the namespace
# controller deletes; the controller-manager counts a create refused as "namespace
# terminating" as done and waits (up to 5 minutes) to see that pod. A ReplicaSet of the
# same name in the namespace created again (the next case installing the same Deployments)
# can then get no pods. For cases that install workloads into fixed namespaces.
delete_namespaces() {
	local n
	for n in "$@"; do
		k delete deployments --all -n "$n" --cascade=foreground --wait=true --timeout=60s \
			>/dev/null 2>&1 || true
	done
	k delete namespace "$@" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}

# namespaces_gone NAMESPACE...: none of them exists, not even terminating. Only the API
# server's NotFound counts: a failed request is not "gone".
namespaces_gone() {
	local n out
	for n in "$@"; do
		out=$(k get namespace "$n" -o name 2>&1) && return 1
		[[ $out == *NotFound* ]] || return 1
	done
}

# free_port: one free TCP port on the host address the API server can reach.
free_port() { python3 "$E2E_ROOT/../scripts/free-ports" 1 "$STOKER_E2E_HOST"; }

# A CA and a serving certificate for the host address, for webhooks the API server calls.
# Writes $1/ca.crt, $1/tls.crt, $1/tls.key.
make_serving_cert() {
	local d=$1 san
	mkdir -p "$d"
	san="IP:$STOKER_E2E_HOST"
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$d/ca.key" -days 2 -subj /CN=e2e-webhook-ca -out "$d/ca.crt" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/tls.key" 2>/dev/null
	openssl req -new -key "$d/tls.key" -subj /CN=e2e-webhook -out "$d/tls.csr" 2>/dev/null
	printf 'subjectAltName=%s,DNS:localhost\nextendedKeyUsage=serverAuth\n' "$san" >"$d/ext"
	openssl x509 -req -in "$d/tls.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/ext" -out "$d/tls.crt" 2>/dev/null
}

k create namespace "$E2E_NS" >/dev/null || { not_ok "create namespace $E2E_NS"; exit 1; }
k label namespace "$E2E_NS" stoker.io/e2e-case="$E2E_CASE" >/dev/null
