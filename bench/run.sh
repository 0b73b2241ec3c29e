#!/usr/bin/env bash
# Runs every benchmark (bench/*/run.sh, each given the build directory). Each prints its
# figures beside a baseline measured in the same run; nothing here asserts on time.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")"
found=0
for b in */run.sh; do
	[ -f "$b" ] || continue
	found=1
	echo "== bench/$(dirname "$b")"
	bash "$b" "$build"
done
[ $found -eq 1 ] || echo "bench: no benchmarks in bench/*/run.sh"
