#!/usr/bin/env bash
# Installs the anvil EVM dev node (Foundry) from its npm platform package, for kdfd's EVM tests.
# Idempotent: when the pinned version is already in the cache it only prints the path.
# Network: the npm registry only (the package ships the prebuilt binary).
# Prints the absolute path of the anvil binary on stdout (and nothing else there).
set -euo pipefail

VERSION="${KDFD_ANVIL_VERSION:-1.7.1}"
PKG="@foundry-rs/anvil-linux-amd64"
DIR="${XDG_CACHE_HOME:-$HOME/.cache}/kdfd-anvil"
BIN="$DIR/node_modules/$PKG/bin/anvil"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "install.sh: only linux x86_64 is supported (package $PKG)" >&2
  exit 1
fi

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "anvil Version: $VERSION"; then
  echo "$BIN"
  exit 0
fi

command -v npm >/dev/null || { echo "install.sh: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$DIR"
# A private package.json keeps npm from walking up to some other project's.
[ -f "$DIR/package.json" ] || echo '{"name":"kdfd-anvil","private":true}' > "$DIR/package.json"
npm install --prefix "$DIR" --no-audit --no-fund --no-save --loglevel=error "$PKG@$VERSION" >&2
chmod +x "$BIN"
"$BIN" --version | grep -q "anvil Version: $VERSION" || { echo "install.sh: $BIN is not anvil $VERSION" >&2; exit 1; }
echo "$BIN"
