#!/usr/bin/env bash
# Two clusters started at the same time are independent, and `down` leaves no process
# and no listening port behind. Runs only on the local control plane.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${E2E_CLUSTER:-local}" != local ]; then
	echo "ok - skipped: E2E_CLUSTER=${E2E_CLUSTER} (parallel local clusters only)"
	exit 0
fi
suffix=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
a=par-a-$suffix
b=par-b-$suffix
passed=0 failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
cleanup() { "$here/cluster" down --name "$a" --quiet; "$here/cluster" down --name "$b" --quiet; } 2>/dev/null
trap cleanup EXIT

"$here/cluster" up --name "$a" --quiet >/dev/null 2>"/tmp/$a.up.log" &
pa=$!
"$here/cluster" up --name "$b" --quiet >/dev/null 2>"/tmp/$b.up.log" &
pb=$!
wait $pa && ok "cluster $a came up" || { not_ok "cluster $a came up"; cat "/tmp/$a.up.log"; }
wait $pb && ok "cluster $b came up" || { not_ok "cluster $b came up"; cat "/tmp/$b.up.log"; }
rm -f "/tmp/$a.up.log" "/tmp/$b.up.log"

kc() { (eval "$("$here/cluster" env --name "$1")" && "$STOKER_KUBECTL" "${@:2}"); }
server() { (eval "$("$here/cluster" env --name "$1")" && sed -n 's/.*server: //p' "$KUBECONFIG"); }
[ "$(server "$a")" != "$(server "$b")" ] && ok "different API server addresses" ||
	not_ok "different API server addresses"
kc "$a" create namespace only-in-a >/dev/null
if kc "$a" get namespace only-in-a >/dev/null 2>&1 && ! kc "$b" get namespace only-in-a >/dev/null 2>&1; then
	ok "an object created in one cluster is absent from the other"
else
	not_ok "an object created in one cluster is absent from the other"
fi

# Remember what cluster a runs (pids and ports), then take it down.
dir_a=/tmp/stoker-e2e/$a
[ -n "${STOKER_E2E_ROOT:-}" ] && dir_a=$STOKER_E2E_ROOT/$a
pids=$(cat "$dir_a"/pids/* 2>/dev/null | tr '\n' ' ')
ports=$(for p in $pids; do ss -Htlnp 2>/dev/null | grep "pid=$p," | awk '{print $4}' | sed 's/.*://'; done | sort -u | tr '\n' ' ')
[ -n "$pids" ] && [ -n "$ports" ] && ok "cluster $a runs pids $pids on ports $ports" ||
	not_ok "found the processes and ports of cluster $a"
"$here/cluster" down --name "$a" --quiet
left=""
for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
[ -z "$left" ] && ok "down: no process left" || not_ok "down: processes left:$left"
busy=""
for port in $ports; do ss -Htln "sport = :$port" | grep -q . && busy="$busy $port"; done
[ -z "$busy" ] && ok "down: no port left listening" || not_ok "down: ports still listening:$busy"
[ ! -e "$dir_a" ] && ok "down: state directory removed" || not_ok "down: $dir_a still exists"
kc "$b" get --raw /readyz >/dev/null 2>&1 && ok "the other cluster is unaffected" ||
	not_ok "the other cluster is unaffected"

echo "parallel_clusters: $passed passed, $failed failed"
[ $failed -eq 0 ]
