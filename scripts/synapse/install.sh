#!/usr/bin/env bash
# Installs Synapse (matrix-synapse from Debian unstable) into a private prefix, for the
# real-Synapse integration test (apps/media-server/test/synapse/). Nothing is installed system-wide:
# the unstable suite is read with a private apt sources list and state directory, the packages
# are fetched with `apt-get download` and unpacked with `dpkg-deb -x`. Synapse's compiled
# extensions are built for unstable's Python (and C library), so unstable's python3.x, libc and
# libraries come too; `bin/python` runs that interpreter through the unpacked dynamic loader.
#
# Idempotent: a finished install (the `ok` stamp) is reused. Prints the path of the launcher
# (`<prefix>/bin/python`) on its last line; exits non-zero with the reason otherwise.
#
# Usage: scripts/synapse/install.sh [CACHE_DIR]   (default: ${XDG_CACHE_HOME:-~/.cache}/hsmedia-synapse)
set -euo pipefail

CACHE="${1:-${HSMEDIA_SYNAPSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hsmedia-synapse}}"
MIRROR="${HSMEDIA_SYNAPSE_MIRROR:-http://deb.debian.org/debian}"
SUITE="${HSMEDIA_SYNAPSE_SUITE:-unstable}"
ROOT="$CACHE/root"
LAUNCHER="$CACHE/bin/python"

if [ -f "$CACHE/ok" ] && [ -x "$LAUNCHER" ]; then
  echo "$LAUNCHER"
  exit 0
fi

for tool in apt-get apt-cache dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "install.sh: $tool is needed (Debian or Ubuntu)" >&2; exit 1; }
done
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$KEYRING" ] || { echo "install.sh: $KEYRING is missing (apt-get install debian-archive-keyring)" >&2; exit 1; }

APT="$CACHE/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main" > "$APT/sources.list"
: > "$APT/empty-status"
# A private apt: only the unstable list, its own state, and an empty dpkg status, so the
# dependency closure is computed as for an empty system (nothing of the host is assumed).
OPTS=(
  -o "Dir::Etc::sourcelist=$APT/sources.list" -o Dir::Etc::sourceparts=-
  -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
  -o "Dir::State::status=$APT/empty-status" -o APT::Install-Recommends=false
  -o Debug::NoLocking=true -o APT::Sandbox::User=root
)

echo "install.sh: reading the $SUITE package list from $MIRROR" >&2
apt-get "${OPTS[@]}" -qq update
apt-cache "${OPTS[@]}" show matrix-synapse >/dev/null 2>&1 \
  || { echo "install.sh: no matrix-synapse package in $SUITE" >&2; exit 1; }

apt-get "${OPTS[@]}" -s install matrix-synapse | awk '/^Inst /{print $2}' > "$APT/closure.txt"
[ -s "$APT/closure.txt" ] || { echo "install.sh: could not compute the dependencies of matrix-synapse" >&2; exit 1; }
echo "install.sh: downloading $(wc -l < "$APT/closure.txt") packages" >&2
( cd "$APT/debs" && rm -f ./*.deb && apt-get "${OPTS[@]}" -qq download $(cat "$APT/closure.txt") )

rm -rf "$ROOT.new" && mkdir -p "$ROOT.new"
for deb in "$APT/debs"/*.deb; do dpkg-deb -x "$deb" "$ROOT.new"; done
rm -rf "$ROOT" && mv "$ROOT.new" "$ROOT"

PYTHON="$(cd "$ROOT/usr/bin" && ls python3.[0-9]* | grep -E '^python3\.[0-9]+$' | sort -V | tail -1)"
[ -n "$PYTHON" ] || { echo "install.sh: no python3.x interpreter in the unpacked packages" >&2; exit 1; }
LOADER="$ROOT/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
[ -x "$LOADER" ] || LOADER="$(ls "$ROOT"/usr/lib/*/ld-linux*.so.* 2>/dev/null | head -1)"
[ -n "$LOADER" ] || { echo "install.sh: no dynamic loader in the unpacked libc6" >&2; exit 1; }
LIBS="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu"

mkdir -p "$CACHE/bin"
cat > "$LAUNCHER" <<LAUNCH
#!/bin/sh
# Unstable's $PYTHON with unstable's C library and dependencies (see scripts/synapse/install.sh).
PYTHONHOME="$ROOT/usr" exec "$LOADER" --library-path "$LIBS" "$ROOT/usr/bin/$PYTHON" "\$@"
LAUNCH
chmod +x "$LAUNCHER"

VERSION="$("$LAUNCHER" -c 'import synapse, synapse.synapse_rust, nacl, cryptography, lxml, yaml, PIL.Image; print(synapse.__version__)')" \
  || { echo "install.sh: the unpacked Synapse does not import" >&2; exit 1; }
echo "$VERSION" > "$CACHE/version"
touch "$CACHE/ok"
echo "install.sh: Synapse $VERSION ready" >&2
echo "$LAUNCHER"
