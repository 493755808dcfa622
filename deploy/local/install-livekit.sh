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
. "$(dirname "$0")/go-tool.sh"

if [ -x "$target" ] && "$target" --version 2>/dev/null | grep -qx "livekit-server version $version"; then
  exit 0
fi
need_go "the LiveKit server $version" 1.26 "Or point LIVEKIT_URL at a LiveKit server you run yourself."
go_install_to "github.com/livekit/livekit-server/cmd/server@v$version" server "$target"
"$target" --version
