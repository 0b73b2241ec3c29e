#!/usr/bin/env bash
# The Dockerfile's runtime stage installs the Debian package of every shared library the
# six daemons link directly (their DT_NEEDED entries; libc6 is in every Debian image), so
# an image cannot start without a library the build machine happened to have. Checked
# without Docker, against the binaries of a build tree.
#   scripts/check-image-libs.sh BUILD_DIR [DOCKERFILE]
set -euo pipefail
bindir=$1/bin
dockerfile=${2:-$(cd "$(dirname "$0")/.." && pwd)/Dockerfile}
daemons="source-controller profile-controller sync-controller notification-controller injector agent"

# The package names of the `apt-get install` in the stage after "AS runtime".
listed=$(awk '/^FROM .* AS runtime/ {r=1; next} /^FROM / {r=0} r' "$dockerfile" |
	sed -n '/apt-get install/,/rm -rf/p' | tr ' \t\\' '\n\n\n' |
	grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|rm|update|DEBIAN_FRONTEND.*)$' | sort -u)
[ -n "$listed" ] || { echo "not ok - no runtime apt-get install found in $dockerfile"; exit 1; }
fail=0
for d in $daemons; do
	[ -x "$bindir/$d" ] || { echo "not ok - $bindir/$d missing"; fail=1; continue; }
	for lib in $(objdump -p "$bindir/$d" | awk '/NEEDED/ {print $2}'); do
		# (awk reads to the end: an early exit would break the pipe under pipefail)
		path=$(PATH=$PATH:/sbin:/usr/sbin ldconfig -p | awk -v l="$lib" '!p && $1 == l {p = $NF} END {print p}')
		[ -n "$path" ] || { echo "not ok - $d: $lib is not known to ldconfig"; fail=1; continue; }
		pkg=$( { dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true; } |
			awk -F: 'NR == 1 {print $1}')
		[ -n "$pkg" ] || { echo "not ok - $d: no Debian package owns $path"; fail=1; continue; }
		if [ "$pkg" = libc6 ] || grep -qx "$pkg" <<<"$listed"; then
			echo "ok - $d: $lib ($pkg)"
		else
			echo "not ok - $d: $lib comes from $pkg, which the Dockerfile's runtime stage does not install"
			fail=1
		fi
	done
done
exit $fail
