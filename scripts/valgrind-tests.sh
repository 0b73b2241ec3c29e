#!/usr/bin/env bash
# Runs every cmocka unit test binary in DIR under valgrind; any memory error or leak
# fails the run.
#   scripts/valgrind-tests.sh DIR
set -uo pipefail
dir=$1
command -v valgrind >/dev/null || { echo "valgrind-tests: valgrind is not installed" >&2; exit 1; }
fails=0 count=0
for t in "$dir"/test_*; do
	[ -x "$t" ] || continue
	count=$((count + 1))
	if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--show-leak-kinds=definite,indirect "$t" >"$t.valgrind.log" 2>&1; then
		echo "valgrind ok - $(basename "$t")"
	else
		echo "valgrind FAILED - $(basename "$t")"
		tail -n 40 "$t.valgrind.log"
		fails=$((fails + 1))
	fi
done
[ $count -gt 0 ] || { echo "valgrind-tests: no test binaries in $dir" >&2; exit 1; }
echo "valgrind: $((count - fails)) passed, $fails failed"
[ $fails -eq 0 ]
