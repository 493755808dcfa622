#!/usr/bin/env bash
# Builds the pinned LiveKit server from its Go module into BIN_DIR/livekit-server.
#
#   deploy/local/install-livekit.sh VERSION BIN_DIR
#
# Skips the build when BIN_DIR/livekit-server already reports VERSION. Needs Go (the version
# LiveKit's go.mod names, 1.26 for 1.13.5) and the Go module proxy; nothing else is downloaded.
set -euo pipefail
version="${1:?usage: install-livekit.sh VERSION BIN_DIR}"
bin_dir="${2:?usage: install-livekit.sh VERSION BIN_DIR}"
target="$bin_dir/livekit-server"

if [ -x "$target" ] && "$target" --version 2>/dev/null | grep -qx "livekit-server version $version"; then
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
make install: Go is needed to build the LiveKit server $version, and 'go' is not on PATH.
  Install Go 1.26 or newer (https://go.dev/doc/install; Debian's 'golang' package is too old),
  then run 'make install' again. Or point LIVEKIT_URL at a LiveKit server you run yourself.
MSG
  exit 1
fi

echo "building livekit-server $version with $(go version | cut -d' ' -f3) (once; a few minutes) …"
mkdir -p "$bin_dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# GOFLAGS from the caller's environment could change the build (e.g. -mod=vendor): not wanted.
GOBIN="$tmp" GOFLAGS=-trimpath go install "github.com/livekit/livekit-server/cmd/server@v$version"
mv "$tmp/server" "$target"
"$target" --version
