#!/usr/bin/env bash
# The injector needs either mounted TLS files or self-managed TLS settings.
set -u
bin=$1
fails=0
expect_usage() { # message-fragment args...
	local want=$1 out rc
	shift
	out=$("$bin" "$@" 2>&1 >/dev/null); rc=$?
	if [ $rc -eq 2 ] && grep -q -- "$want" <<<"$out"; then
		echo "ok - $* -> $out"
	else
		echo "not ok - $* -> rc=$rc: $out (wanted '$want')"
		fails=$((fails + 1))
	fi
}
expect_usage "go together" --tls-cert-file=/c.pem
expect_usage "go together" --tls-key-file=/k.pem
expect_usage "--webhook-config-name" --leader-elect=false
expect_usage "--cert-dns-names" --webhook-config-name=stoker-injector
[ $fails -eq 0 ]
