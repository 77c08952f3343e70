#!/usr/bin/env bash
# A private Docker engine for tests and labs, beside whatever the host runs and without touching it: Debian's
# docker.io (scripts/bootstrap.sh --for-tests installs it without starting its service), with its own data
# root, exec root and socket under $POSTSTACK_CACHE/docker-engine, and neither iptables rules nor IP masquerading
# (podman's networks and the host firewall stay as they are; builds need --network host for apt, see
# docs/runtime.md). Use it with DOCKER_HOST=unix://$POSTSTACK_CACHE/docker-engine/docker.sock.
#   scripts/docker-engine.sh start    start it unless it answers; prints the DOCKER_HOST line
#   scripts/docker-engine.sh stop     stop it (only the engine this script started)
#   scripts/docker-engine.sh status   exit 0 when it answers
set -euo pipefail
cache=${POSTSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/poststack}
dir="$cache/docker-engine"
sock="$dir/docker.sock"
pidfile="$dir/docker.pid"
export DOCKER_HOST="unix://$sock"

answers() { [ -S "$sock" ] && docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# The dockerd this script started: the pid file's process, if it still is a dockerd (after a reboot the number
# may belong to another program).
engine_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

# One start or stop at a time (test workers may ask at once).
mkdir -p "$dir"
exec 9>"$dir/lock"
flock 9

case "${1:-}" in
  start)
    if answers; then echo "DOCKER_HOST=$DOCKER_HOST"; exit 0; fi
    command -v dockerd >/dev/null || { echo "dockerd is not installed: run scripts/bootstrap.sh --for-tests as root" >&2; exit 1; }
    command -v docker >/dev/null || { echo "the docker client is not installed: run scripts/bootstrap.sh --for-tests as root" >&2; exit 1; }
    mkdir -p "$dir/data" "$dir/exec"
    engine_pid >/dev/null || rm -f "$pidfile"   # stale: dockerd refuses to start while its pid file names a live process
    rm -f "$sock"
    # setsid: the engine outlives the shell that started it, until `stop`
    setsid dockerd --iptables=false --ip-masq=false --data-root "$dir/data" --exec-root "$dir/exec" \
      -H "unix://$sock" --pidfile "$pidfile" >"$dir/dockerd.log" 2>&1 </dev/null 9>&- &
    for _ in $(seq 100); do
      if answers; then echo "DOCKER_HOST=$DOCKER_HOST"; exit 0; fi
      sleep 0.2
    done
    echo "the private Docker engine did not answer within 20 s; its log ($dir/dockerd.log) ends with:" >&2
    tail -n 15 "$dir/dockerd.log" >&2
    exit 1
    ;;
  stop)
    pid=$(engine_pid) || { rm -f "$pidfile"; exit 0; }
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile" "$sock"
    ;;
  status) answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
