#!/usr/bin/env bash
# Starts Debian's docker-registry on 127.0.0.1:5000 with its own config, unless one already answers.
# Safe to re-run. The packaged /etc/docker/registry/config.yml is not used: it turns on htpasswd auth
# and listens on all interfaces. This one is loopback only, no auth, storage under $CI_STATE_DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

command -v docker-registry >/dev/null || die "docker-registry is not installed (apt-get install docker-registry)"

status="$(registry_status)"
case "$status" in
  200) log "registry already answers on http://$REGISTRY_ADDR/v2/"; exit 0 ;;
  401) die "something on $REGISTRY_ADDR asks for credentials: probably Debian's packaged docker-registry service with htpasswd auth. Stop it (service docker-registry stop) and re-run." ;;
  000) ;;
  *) die "$REGISTRY_ADDR answers /v2/ with HTTP $status: it is not a usable registry. Free the port and re-run." ;;
esac

registry_dir="$CI_STATE_DIR/registry"
config="$registry_dir/config.yml"
registry_log="$CI_LOG_DIR/registry.log"
mkdir -p "$registry_dir/storage" "$CI_LOG_DIR"
cat >"$config" <<YAML
# Written by scripts/ci/start-registry.sh: loopback only, no auth.
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $registry_dir/storage
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
YAML

log "starting docker-registry on $REGISTRY_ADDR (config $config, log $registry_log)"
printf '\n==== %s start-registry.sh: starting docker-registry\n' "$(date -u +%FT%TZ)" >>"$registry_log"
setsid docker-registry serve "$config" >>"$registry_log" 2>&1 </dev/null &
echo $! >"$registry_dir/registry.pid"

registry_up() { [ "$(registry_status)" = 200 ]; }
if ! wait_until 30 "the registry answering on http://$REGISTRY_ADDR/v2/" registry_up; then
  echo "--- last lines of $registry_log:" >&2
  tail -n 30 "$registry_log" >&2 || true
  exit 1
fi
log "registry answers (pid $(cat "$registry_dir/registry.pid"))"
