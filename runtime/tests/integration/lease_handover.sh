#!/usr/bin/env bash
# Two (then three) processes contend for one Lease: exactly one leads; SIGTERM to the
# leader hands over well within the lease duration (it releases the lease); SIGKILL hands
# over only once the lease has expired.
#   lease_handover.sh LEASE_DEMO_BINARY
set -uo pipefail
demo=$1
. "$(dirname "$0")/../../../e2e/lib/testlib.sh"
lease_ms=6000 renew_ms=4000 retry_ms=300
out=$E2E_WORK
pids=()
on_exit 'kill -9 ${pids[*]}'

start() { # identity
	"$demo" "$E2E_NS" handover "$1" $lease_ms $renew_ms $retry_ms >"$out/$1.log" 2>&1 &
	pids+=($!)
	eval "pid_$1=$!"
}
leading() { grep -l '^leading' "$out"/*.log 2>/dev/null | xargs -r -n1 basename | sed 's/\.log$//' | tr '\n' ' '; }
now_ms() { date +%s%3N; }
holder() { k get lease handover -n "$E2E_NS" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }

start a
start b
wait_for 20 bash -c "grep -q '^leading' $out/a.log $out/b.log"
sleep 1.5 # several retry periods: a second leader would have shown up by now
first=$(leading)
expect_eq "exactly one of two candidates leads" 1 "$(wc -w <<<"$first")"
first=${first% }
expect_eq "the Lease names the leader" "$first" "$(holder)"
other=a
[ "$first" = a ] && other=b

# SIGTERM: the leader releases, the follower takes over at its next poll.
t0=$(now_ms)
eval "kill -TERM \$pid_$first"
wait_for 10 grep -q '^leading' "$out/$other.log"
dt=$(($(now_ms) - t0))
check "after SIGTERM the follower leads within the lease duration (${dt} ms < ${lease_ms} ms)" test $dt -lt $lease_ms
check "the old leader reported it stopped and exited" grep -q '^exited' "$out/$first.log"
expect_eq "the Lease names the new leader" "$other" "$(holder)"

# SIGKILL: nobody releases; a new candidate waits for the lease to expire.
start c
sleep 1
check "the newcomer does not lead while the lease is renewed" bash -c "! grep -q '^leading' $out/c.log"
t0=$(now_ms)
eval "kill -KILL \$pid_$other"
wait_for 20 grep -q '^leading' "$out/c.log"
dt=$(($(now_ms) - t0))
check "after SIGKILL the newcomer waits for expiry (${dt} ms >= $((lease_ms - 2 * retry_ms)) ms)" \
	test $dt -ge $((lease_ms - 2 * retry_ms))
check "and then leads (${dt} ms <= $((lease_ms + 3000)) ms)" test $dt -le $((lease_ms + 3000))
expect_eq "the Lease names the newcomer" c "$(holder)"
