#!/usr/bin/env bash
# The agent refuses to start on a missing or malformed environment, naming the variable.
set -u
bin=$1
fails=0
expect_usage() { # message-fragment env-assignments...
	local want=$1 out rc
	shift
	out=$(env -i "$@" "$bin" 2>&1 >/dev/null); rc=$?
	if [ $rc -eq 2 ] && grep -q -- "$want" <<<"$out"; then
		echo "ok - $* -> $out"
	else
		echo "not ok - $* -> rc=$rc: $out (wanted '$want')"
		fails=$((fails + 1))
	fi
}
base=(POD_NAME=gw-0 POD_NAMESPACE=site1 CR_NAME=plant DATA_PATH=/data)
expect_usage "POD_NAME is not set" POD_NAMESPACE=x CR_NAME=y DATA_PATH=/d
expect_usage "GATEWAY_PORT" "${base[@]}" GATEWAY_PORT=http
expect_usage "SOURCE_MODE" "${base[@]}" SOURCE_MODE=svn
expect_usage "neither SYNC_PROFILE nor SERVICE_PATH" "${base[@]}"
[ $fails -eq 0 ]
