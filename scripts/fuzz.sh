#!/usr/bin/env bash
# Runs every libFuzzer target of a STK_FUZZ build for SECONDS each, starting from a copy
# of its seed corpus (new inputs stay in BUILD/fuzz-corpus, not in the repository).
# Crashes are left in BUILD/fuzz-artifacts and fail the run.
#   scripts/fuzz.sh BUILD SECONDS
set -euo pipefail
build=$1
secs=$2
list=$build/fuzzers.txt
[ -s "$list" ] || { echo "fuzz: no fuzz targets in $build (configure with -DSTK_FUZZ=ON)" >&2; exit 1; }
mkdir -p "$build/fuzz-artifacts"
status=0
while IFS='|' read -r name corpus; do
	[ -n "$name" ] || continue
	work=$build/fuzz-corpus/$name
	mkdir -p "$work"
	cp -n "$corpus"/* "$work"/ 2>/dev/null || true
	echo "fuzz: $name for ${secs}s"
	if ! "$build/fuzz/$name" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$build/fuzz-artifacts/$name-" "$work" 2>"$build/fuzz-$name.log"; then
		echo "fuzz: $name FAILED; see $build/fuzz-$name.log and $build/fuzz-artifacts" >&2
		tail -n 30 "$build/fuzz-$name.log" >&2
		status=1
	else
		grep -E 'stat::number_of_executed_units|cov:' "$build/fuzz-$name.log" | tail -n 2
	fi
done <"$list"
exit $status
