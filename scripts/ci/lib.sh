# Shared by the scripts in scripts/ci/: logging, timeouts and the paths CI state lives under.
# Sourced, not run. Every path can be moved with an environment variable so a second checkout can
# reuse the same dockerd and registry (they are machine-wide on purpose: one dockerd per machine).

CI_STATE_DIR="${CS_LLM_CI_STATE_DIR:-/var/lib/cs-llm-ci}"
CI_LOG_DIR="${CS_LLM_CI_LOG_DIR:-/var/log/cs-llm-ci}"
DOCKER_SOCKET="${CS_LLM_CI_DOCKER_SOCKET:-/var/run/docker.sock}"
DOCKER_PIDFILE="${CS_LLM_CI_DOCKER_PIDFILE:-/var/run/docker.pid}"
REGISTRY_ADDR="${CS_LLM_CI_REGISTRY:-127.0.0.1:5000}"

log() { printf '    %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# docker_ping: true when the engine answers /_ping on the socket within 2 s.
docker_ping() {
  [ -S "$DOCKER_SOCKET" ] && curl -fsS --max-time 2 --unix-socket "$DOCKER_SOCKET" http://localhost/_ping >/dev/null 2>&1
}

# registry_status: prints the HTTP status of GET /v2/ (000 when nothing answers).
registry_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$REGISTRY_ADDR/v2/" 2>/dev/null || true
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s; returns 1 on timeout.
wait_until() {
  local limit="$1" what="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf 'ERROR: %s did not happen within %ss\n' "$what" "$limit" >&2
      return 1
    fi
    sleep 0.2
  done
}

# dockerd_pid: the pid of the running dockerd, from its pid file, if that process is alive.
dockerd_pid() {
  local pid
  [ -f "$DOCKER_PIDFILE" ] || return 1
  pid="$(cat "$DOCKER_PIDFILE" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -q dockerd "/proc/$pid/comm" 2>/dev/null && echo "$pid"
}

# Where the stand-in hook is installed for dockerd. A copy outside the checkout, so a dockerd started
# in hook mode keeps working when the clone it came from is deleted (dockerd runs the hook by path).
NVIDIA_HOOK_DIR="$CI_STATE_DIR/nvidia-hook"
NVIDIA_HOOK_NAME=nvidia-container-runtime-hook

# install_nvidia_hook SOURCE_DIR: copies the stand-in hook to NVIDIA_HOOK_DIR.
install_nvidia_hook() {
  mkdir -p "$NVIDIA_HOOK_DIR"
  install -m 0755 "$1/$NVIDIA_HOOK_NAME" "$NVIDIA_HOOK_DIR/$NVIDIA_HOOK_NAME"
}

# dockerd_search_path with|without: the PATH dockerd gets. "without" drops every directory that holds
# a hook (including one installed by hand in /usr/local/bin), so that mode is really without.
dockerd_search_path() {
  local mode="$1" dir out=""
  local IFS=:
  for dir in $PATH /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    [ -n "$dir" ] || continue
    [ -x "$dir/$NVIDIA_HOOK_NAME" ] && continue
    case ":$out:" in *":$dir:"*) continue ;; esac
    out="${out:+$out:}$dir"
  done
  if [ "$mode" = with ]; then
    install_nvidia_hook "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/nvidia-hook"
    out="$NVIDIA_HOOK_DIR:$out"
  fi
  printf '%s' "$out"
}

# dockerd_hook_mode: "with" or "without", read from the running dockerd's own PATH (what it saw at
# start-up is what decided whether the nvidia driver was registered); "unknown" when unreadable.
dockerd_hook_mode() {
  local pid path dir
  pid="$(dockerd_pid)" || { echo unknown; return; }
  path="$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^PATH=//p')" || { echo unknown; return; }
  [ -n "$path" ] || { echo unknown; return; }
  local IFS=:
  for dir in $path; do
    if [ -n "$dir" ] && [ -x "$dir/$NVIDIA_HOOK_NAME" ]; then echo with; return; fi
  done
  echo without
}

# lock_dockerd: serialises starts and restarts of dockerd between processes (two test runs switching the
# nvidia hook at once would otherwise stop each other's dockerd half-way). Held until the script exits;
# a script exec'd by the holder inherits it. dockerd itself must not inherit fd 9 (it would hold the lock
# for its whole life), so it is started with 9>&-.
lock_dockerd() {
  if [ "${CS_LLM_CI_DOCKERD_LOCK_HELD:-}" = "$$" ]; then return 0; fi
  mkdir -p "$CI_STATE_DIR"
  exec 9>"$CI_STATE_DIR/dockerd.lock"
  flock -w 180 9 || die "another start or restart of dockerd has held $CI_STATE_DIR/dockerd.lock for over 180 s"
  export CS_LLM_CI_DOCKERD_LOCK_HELD=$$
}
