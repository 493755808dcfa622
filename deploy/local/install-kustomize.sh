#!/usr/bin/env bash
# Builds the pinned kustomize from its Go module into BIN_DIR/kustomize, for `make lint`'s
# check of deploy/k8s (python -m veche.local.check_k8s).
#
#   deploy/local/install-kustomize.sh VERSION BIN_DIR
#
# Skips the build when BIN_DIR/kustomize already reports VERSION. Needs Go (the version its
# go.mod names: 1.26 for 5.8.2) and the Go module proxy; nothing else is downloaded.
set -euo pipefail
version="${1:?usage: install-kustomize.sh VERSION BIN_DIR}"
bin_dir="${2:?usage: install-kustomize.sh VERSION BIN_DIR}"
target="$bin_dir/kustomize"
. "$(dirname "$0")/go-tool.sh"

if [ -x "$target" ] && [ "$("$target" version 2>/dev/null)" = "v$version" ]; then
  exit 0
fi
need_go "kustomize $version" 1.26
go_install_to "sigs.k8s.io/kustomize/kustomize/v5@v$version" kustomize "$target"
"$target" version
