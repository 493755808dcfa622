#!/usr/bin/env bash
# Shared by the install-*.sh scripts that build a pinned tool from its Go module into .bin/
# (only the Go module proxy is reached; nothing else is downloaded). Source it, then:
#
#   need_go "the LiveKit server 1.13.5" 1.26 ["an extra hint"]   exits 1 without Go
#   go_install_to MODULE/PATH@vVERSION BUILT_NAME TARGET           go install, then move

need_go() {
  if command -v go >/dev/null 2>&1; then
    return 0
  fi
  cat >&2 <<MSG
make install: Go is needed to build $1, and 'go' is not on PATH.
  Install Go $2 or newer (https://go.dev/doc/install; Debian's 'golang' package is too old),
  then run 'make install' again.${3:+ $3}
MSG
  exit 1
}

go_install_to() {
  local package="$1" built="$2" target="$3" tmp
  echo "building $(basename "$target") ${package##*@} with $(go version | cut -d' ' -f3) (once; a few minutes) …"
  mkdir -p "$(dirname "$target")"
  tmp="$(mktemp -d)"
  # GOFLAGS from the caller's environment could change the build (e.g. -mod=vendor): not wanted.
  GOBIN="$tmp" GOFLAGS=-trimpath go install "$package"
  mv "$tmp/$built" "$target"
  rm -rf "$tmp"
}
