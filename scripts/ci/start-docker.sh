#!/usr/bin/env bash
# Starts dockerd unless one already answers on the socket. Safe to re-run.
#
#   scripts/ci/start-docker.sh [--without-nvidia-hook | --with-nvidia-hook]
#
# The flag only matters when dockerd has to be started: it decides whether the stand-in
# nvidia-container-runtime-hook is on dockerd's PATH, which is what makes dockerd register its "nvidia"
# device driver (see docs/ci.md). Default: without. To switch a running dockerd, use restart-docker.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

mode=without
case "${1:-}" in
  ''|--without-nvidia-hook) mode=without ;;
  --with-nvidia-hook) mode=with ;;
  *) die "unknown argument '$1' (expected --with-nvidia-hook or --without-nvidia-hook)" ;;
esac

command -v dockerd >/dev/null || die "dockerd is not installed (apt-get install docker.io)"
command -v curl >/dev/null || die "curl is not installed (apt-get install curl)"

lock_dockerd

if docker_ping; then
  log "dockerd already answers on $DOCKER_SOCKET (nvidia hook: $(dockerd_hook_mode))"
  exit 0
fi

mkdir -p "$CI_LOG_DIR"
dockerd_log="$CI_LOG_DIR/dockerd.log"

if pid="$(dockerd_pid)"; then
  # A dockerd is alive but not answering yet (starting, or busy): never start a second one.
  log "dockerd (pid $pid) is running but not answering yet; waiting"
  wait_until 60 "an answer from dockerd pid $pid" docker_ping || { tail -n 30 "$dockerd_log" >&2 || true; exit 1; }
  exit 0
fi

# A killed dockerd leaves its pid file behind, and the next start then fails at once with
# "pid file found, ensure docker is not running".
if [ -e "$DOCKER_PIDFILE" ]; then
  log "removing stale $DOCKER_PIDFILE (no dockerd is running)"
  rm -f "$DOCKER_PIDFILE"
fi

dockerd_path="$(dockerd_search_path "$mode")"
log "starting dockerd (nvidia hook: $mode), log: $dockerd_log"
printf '\n==== %s start-docker.sh: starting dockerd (nvidia hook: %s) PATH=%s\n' "$(date -u +%FT%TZ)" "$mode" "$dockerd_path" >>"$dockerd_log"
# setsid: dockerd outlives this script and the shell job that ran it.
setsid env -u CS_LLM_CI_DOCKERD_LOCK_HELD PATH="$dockerd_path" \
  dockerd --host "unix://$DOCKER_SOCKET" --pidfile "$DOCKER_PIDFILE" >>"$dockerd_log" 2>&1 </dev/null 9>&- &

started=$SECONDS
if ! wait_until 60 "dockerd answering on $DOCKER_SOCKET" docker_ping; then
  echo "--- last lines of $dockerd_log:" >&2
  tail -n 30 "$dockerd_log" >&2 || true
  exit 1
fi
log "dockerd answers after $((SECONDS - started))s (pid $(dockerd_pid || echo '?'))"
