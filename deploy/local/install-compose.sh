#!/usr/bin/env bash
# Builds the pinned Docker Compose v2 from its Go module into BIN_DIR/docker-compose, for
# `make lint` (veche.local.check_compose validates deploy/compose*.yaml with it; no Docker
# engine is needed for `docker-compose config`).
#
#   deploy/local/install-compose.sh VERSION BIN_DIR        (VERSION without the v: 2.40.3)
#
# `make install` pins 2.40.3: the last release of the v2 module (github.com/docker/compose/v2;
# later releases are the /v5 module), which builds with Go 1.24 or newer.
#
# Skips the build when BIN_DIR/docker-compose already reports VERSION. Needs Go (1.24 or newer
# for 2.40.3) and the Go module proxy; nothing else is downloaded.
#
# `go install github.com/docker/compose/v2/cmd@vVERSION` refuses this module (its go.mod has
# `exclude` directives, which `go install pkg@version` does not allow), so the module is
# fetched from the proxy (`go mod download`), copied out of the read-only module cache and
# built there as the main module, with its own go.mod and go.sum, like its Makefile does.
set -euo pipefail
version="${1:?usage: install-compose.sh VERSION BIN_DIR}"
bin_dir="${2:?usage: install-compose.sh VERSION BIN_DIR}"
target="$bin_dir/docker-compose"
module="github.com/docker/compose/v2"
. "$(dirname "$0")/go-tool.sh"

if [ -x "$target" ] && [ "$("$target" version --short 2>/dev/null)" = "$version" ]; then
  exit 0
fi

need_go "Docker Compose $version (for make lint)" 1.24

echo "building docker-compose $version with $(go version | cut -d' ' -f3) (once; a few minutes) …"
mkdir -p "$bin_dir"
tmp="$(mktemp -d)"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
# GOFLAGS from the caller's environment could change the build (e.g. -mod=vendor): not wanted.
export GOFLAGS=
src="$(go mod download -json "$module@v$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [ -z "$src" ] || [ ! -f "$src/go.mod" ]; then
  echo "install-compose.sh: go mod download $module@v$version gave no source directory" >&2
  exit 1
fi
cp -R "$src" "$tmp/src"
chmod -R u+w "$tmp/src"
(cd "$tmp/src" && CGO_ENABLED=0 go build -mod=mod -trimpath \
  -ldflags "-w -X $module/internal.Version=v$version" -o "$tmp/docker-compose" ./cmd)
mv "$tmp/docker-compose" "$target"
"$target" version
