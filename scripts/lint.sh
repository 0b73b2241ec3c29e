#!/usr/bin/env bash
# Style checks of STYLE.md: clang-format, banned functions, a module's .c includes its own
# header first, shell scripts parse.
set -uo pipefail
cd "$(git rev-parse --show-toplevel)"
fails=0
mapfile -t cfiles < <(git ls-files '*.c' '*.h')

for f in "${cfiles[@]}"; do
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "lint: not clang-formatted: $f (make fmt)"; fails=$((fails + 1)); }
done

banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strncat|strtok|gets|atoi|atol|system|popen|rand)[[:space:]]*\('
if hits=$(grep -nE "$banned" "${cfiles[@]}" | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*)'); then
	echo "lint: banned functions (STYLE.md):"
	echo "$hits"
	fails=$((fails + 1))
fi

for f in $(git ls-files 'runtime/src/*.c' 'api/src/*.c'); do
	mod=$(basename "$f" .c)
	first=$(grep -m1 '^#include' "$f")
	case $first in
	*"/$mod.h\""*) ;;
	*) echo "lint: $f must include its own header first (found: $first)"; fails=$((fails + 1)) ;;
	esac
done

for f in $(git ls-files '*.sh' 'e2e/cluster' '.ci/run'); do
	bash -n "$f" || { echo "lint: shell syntax: $f"; fails=$((fails + 1)); }
done

if [ $fails -eq 0 ]; then echo "lint: ok (${#cfiles[@]} C files)"; fi
[ $fails -eq 0 ]
