#!/usr/bin/env bash
# Restarts dockerd with or without the stand-in nvidia-container-runtime-hook on its PATH.
#
#   scripts/ci/restart-docker.sh --with-nvidia-hook      # GPU requests (--gpus, DeviceRequests) start
#   scripts/ci/restart-docker.sh --without-nvidia-hook   # they fail: could not select device driver "nvidia"
#
# Does nothing when the running dockerd is already in the asked mode. A restart stops every running
# container (dockerd here has no live-restore) and keeps images; it takes about a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

case "${1:-}" in
  --with-nvidia-hook) mode=with ;;
  --without-nvidia-hook) mode=without ;;
  *) die "usage: $0 --with-nvidia-hook | --without-nvidia-hook" ;;
esac

lock_dockerd

if docker_ping && [ "$(dockerd_hook_mode)" = "$mode" ]; then
  log "dockerd is already running with the nvidia hook mode '$mode'"
  exit 0
fi

if pid="$(dockerd_pid)"; then
  log "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  # dockerd gives running containers their stop timeout (10 s by default) before it exits.
  if ! wait_until 45 "dockerd pid $pid exiting" bash -c "! [ -d /proc/$pid ]"; then
    log "dockerd pid $pid did not exit after SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 10 "dockerd pid $pid exiting after SIGKILL" bash -c "! [ -d /proc/$pid ]"
  fi
elif docker_ping; then
  die "a Docker engine answers on $DOCKER_SOCKET but no dockerd pid is in $DOCKER_PIDFILE; restart it by hand"
fi

exec "$here/start-docker.sh" "--$mode-nvidia-hook"
