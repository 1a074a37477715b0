#!/usr/bin/env bash
# Prints whether the running dockerd was started with the stand-in nvidia-container-runtime-hook on its
# PATH: "with", "without", or "unknown" (no dockerd, or its environment is unreadable). See docs/ci.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
dockerd_hook_mode
