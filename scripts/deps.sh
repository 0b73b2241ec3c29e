#!/usr/bin/env bash
# Installs every Debian package Stoker needs to build, test, fuzz and benchmark.
# Idempotent: installs only what is missing, and touches apt only then.
#   scripts/deps.sh          install what is missing
#   scripts/deps.sh --check  exit 1 (listing them) if anything is missing
set -euo pipefail

packages=(
	# build
	cmake ninja-build make gcc pkg-config
	# libraries (DESIGN.md §10)
	libgit2-dev libcurl4-openssl-dev libyajl-dev libyaml-dev libssl-dev
	libwebsockets-dev libwebsockets-evlib-uv libuv1-dev zlib1g-dev
	libcmocka-dev
	# lint, fuzz, sanitizers, memory checks
	clang clang-format libclang-rt-14-dev libfuzzer-14-dev llvm valgrind
	# test environment: git servers, TLS, fixtures, benchmark baselines
	git openssh-server openssh-client openssl curl python3 python3-prometheus-client python3-yaml
	rsync tar gzip
	procps iproute2
)

missing=()
for p in "${packages[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "${1:-}" = --check ]; then
	echo "missing packages: ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}" >&2
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $sudo apt-get update -qq || { sleep 5; $sudo apt-get update -qq; }; } >"$log" 2>&1 ||
	! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
	cat "$log" >&2
	echo "deps: apt-get failed" >&2
	exit 1
fi
echo "deps: installed ${#missing[@]} packages" >&2
