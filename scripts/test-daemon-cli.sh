#!/usr/bin/env bash
# Checks a daemon's command line (DESIGN.md §11): --help lists every expected flag or
# variable, --version prints "<name> <version>", unknown flags and bad values fail with
# exit 2 and exactly one line on stderr that names the flag.
#   test-daemon-cli.sh BINARY EXPECTED_HELP_WORD...
set -u
bin=$1
shift
name=$(basename "$bin")
fails=0
check() { # description, then a command that must succeed
	local what=$1
	shift
	if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fails=$((fails + 1)); fi
}

help=$("$bin" --help); rc=$?
check "--help exits 0" test $rc -eq 0
for word in "$@"; do
	check "--help mentions $word" grep -q -- "$word" <<<"$help"
done

ver=$("$bin" --version); rc=$?
check "--version exits 0" test $rc -eq 0
check "--version prints '$name <semver>'" grep -Eq "^$name [0-9]+\.[0-9]+\.[0-9]+$" <<<"$ver"

bad() { # args... ; expects exit 2, one stderr line containing $expect
	local out rc
	out=$("$bin" "$@" 2>&1 >/dev/null); rc=$?
	check "'$*' exits 2 (got $rc)" test $rc -eq 2
	check "'$*' prints one line" test "$(printf '%s\n' "$out" | wc -l)" -eq 1
	check "'$*' message names the problem: $out" grep -q -- "$expect" <<<"$out"
}
expect="unknown flag --no-such-flag"; bad --no-such-flag
expect="--log-level"; bad --log-level=loud
expect="--metrics-bind-address"; bad --metrics-bind-address=8080
expect="unexpected argument"; bad stray
if grep -q -- --concurrent <<<"$help"; then
	expect="--concurrent"; bad --concurrent=0
	expect="--leader-elect"; bad --leader-elect=sometimes
fi

[ $fails -eq 0 ]
