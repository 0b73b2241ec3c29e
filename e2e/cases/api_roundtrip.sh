#!/usr/bin/env bash
# The C codecs agree with the API server: every valid sample, as the API server returns
# it (defaults applied, metadata filled in), decodes in C and re-encodes to semantically
# equal JSON; C defaulting of the sample as written gives the server's spec; C
# validation accepts every valid sample and rejects every invalid one.
. "$(dirname "$0")/../lib/testlib.sh"
root=$(cd "$E2E_ROOT/.." && pwd)
tool=${STOKER_BUILD_DIR:-$root/build}/bin/stoker-api
[ -x "$tool" ] || { not_ok "stoker-api not built at $tool"; exit 1; }

k apply -k "$root/config/crd/" >/dev/null
k wait --for=condition=Established --timeout=60s crd/gitsources.source.stoker.io \
	crd/syncprofiles.stoker.io crd/stokers.stoker.io crd/alerts.notification.stoker.io >/dev/null

same_json() { # a b [path...] — semantic equality (or of one sub-path)
	/usr/bin/python3 - "$@" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for key in sys.argv[3:]:
    a, b = a.get(key), b.get(key)
sys.exit(0 if a == b else 1)
PY
}

for f in "$root"/config/samples/valid/*.yaml; do
	name=$(basename "$f" .yaml)
	kind=$(sed -n 's/^kind: *//p' "$f" | head -n1)
	k apply -n "$E2E_NS" -f "$f" >/dev/null 2>"$E2E_WORK/$name.err" ||
		{ not_ok "$name: apply failed: $(cat "$E2E_WORK/$name.err")"; continue; }
	obj=$(k create --dry-run=client -o jsonpath='{.metadata.name}' -f "$f")
	k get "$kind" "$obj" -n "$E2E_NS" -o json >"$E2E_WORK/$name.server.json"
	if "$tool" roundtrip "$kind" <"$E2E_WORK/$name.server.json" >"$E2E_WORK/$name.c.json" \
		2>"$E2E_WORK/$name.c.err" && same_json "$E2E_WORK/$name.server.json" "$E2E_WORK/$name.c.json"; then
		ok "$name: the server's object round-trips through the C codec"
	else
		not_ok "$name: round trip differs: $(cat "$E2E_WORK/$name.c.err") $(diff <(python3 -m json.tool --sort-keys "$E2E_WORK/$name.server.json") <(python3 -m json.tool --sort-keys "$E2E_WORK/$name.c.json" 2>/dev/null) | head -n 10)"
	fi
	# C defaulting of the sample as written equals the server's defaulted spec.
	k create --dry-run=client -o json -f "$f" >"$E2E_WORK/$name.local.json"
	"$tool" default "$kind" <"$E2E_WORK/$name.local.json" >"$E2E_WORK/$name.cdef.json"
	check "$name: C defaults equal the API server's" same_json "$E2E_WORK/$name.cdef.json" \
		"$E2E_WORK/$name.server.json" spec
	expect_eq "$name: C validation accepts it" ok \
		"$("$tool" validate "$kind" <"$E2E_WORK/$name.local.json")"
done

for f in "$root"/config/samples/invalid/*.yaml; do
	name=$(basename "$f" .yaml)
	kind=$(sed -n 's/^kind: *//p' "$f" | head -n1)
	if grep -q '^# expect: unknown field' "$f"; then
		# The codec ignores fields it does not know (a newer server may add some); the
		# API server rejects or prunes them before any daemon sees the object.
		ok "$name: unknown fields are the API server's to reject"
		continue
	fi
	if k create --dry-run=client -o json -f "$f" >"$E2E_WORK/$name.json" 2>/dev/null; then
		out=$("$tool" validate "$kind" <"$E2E_WORK/$name.json" 2>&1)
		check "$name: C validation rejects it ($out)" test "$out" != ok
	else
		ok "$name: not even well-formed for kubectl (skipped in C)"
	fi
done
