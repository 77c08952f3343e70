#!/usr/bin/env bash
# Sets up everything `make run` and `make test` need on a fresh Debian 12 host, and does nothing when it is
# already there (a warm run takes about a second):
#   1. Debian packages (podman with netavark, aardvark-dns and catatonit, buildah, mmdebstrap, btrfs-progs, runc,
#      Python's venv, the release's PostgreSQL for the test fixtures, ...)
#   2. the podman checks: whether scripts/podman/containers.conf is needed (runc, ulimits), and that containers on
#      a podman network reach each other by name and start with --init
#   3. the project venv with pinned versions (machine-wide cache, keyed by the pins)
#   4. the Ansible collections we depend on, from PyPI's `ansible` wheel (Galaxy is not needed)
#   5. ansible-test's offline pip bootstrap
#   6. the base image: the official debian:bookworm-slim when a registry answers, else a local mmdebstrap import
# With --for-tests (make test passes it) also what only the tests use: Debian's docker.io, without starting its
# service (the tests run a private engine of their own, scripts/docker-engine.sh, and never touch a Docker the host
# runs), and the other tools the tests compare with or adopt from (Sqitch).
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "$0")/env.sh"
cd "$POSTSTACK_ROOT"
mkdir -p "$POSTSTACK_CACHE" .cache

ANSIBLE_WHEEL_VERSION="12.3.0"
PIP_STANDIN_VERSION="24.2"
# Collections taken from the `ansible` wheel: what we use plus what they need.
COLLECTIONS=(containers/podman community/docker community/postgresql community/general community/crypto
  ansible/posix community/library_inventory_filtering_v1)
APT_PACKAGES="podman netavark aardvark-dns catatonit iptables nftables buildah mmdebstrap btrfs-progs runc uidmap fuse-overlayfs slirp4netns
python3 python3-venv postgresql postgresql-client openssl rsync git make curl ca-certificates iproute2 util-linux shellcheck age"
# Only for the tests (--for-tests): a real Sqitch, whose registry the migrations tests adopt.
TEST_APT_PACKAGES="sqitch libdbd-pg-perl"

# pip warns about every find-links location that does not exist on this host; keep real errors.
quiet_pip() { "$POSTSTACK_VENV/bin/pip" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
log() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

step_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages (${missing[*]}); run as root or install them: apt-get install ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  # No distribution-managed cluster on 5432: tests and inventories start their own PostgreSQL.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# docker.io's maintainer scripts start dockerd unless policy-rc.d says no (101), and enable its units for the next
# boot: neither is left to happen. The host's services stay as they are; only scripts/docker-engine.sh starts an
# engine, with its own sockets and directories. (A docker.io that is already installed is not touched.)
restore_policy() {
  local policy=/usr/sbin/policy-rc.d
  if [ -e "$policy.poststack-saved" ]; then mv "$policy.poststack-saved" "$policy"; else rm -f "$policy"; fi
}
step_docker() {
  dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q "install ok installed" && return 0
  [ "$(id -u)" -eq 0 ] || die "docker.io is not installed; run as root or install it: apt-get install docker.io"
  log "installing docker.io (its service is neither started nor enabled)"
  local policy=/usr/sbin/policy-rc.d rc=0
  [ -e "$policy" ] && cp -p "$policy" "$policy.poststack-saved"
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null; } || rc=$?
  restore_policy
  trap - EXIT
  [ "$rc" -eq 0 ] || die "apt-get install docker.io failed (rc=$rc)"
  # systemctl disable only edits the unit links, with or without a running systemd
  systemctl disable --quiet docker.service docker.socket containerd.service 2>/dev/null \
    || rm -f /etc/systemd/system/multi-user.target.wants/docker.service \
      /etc/systemd/system/sockets.target.wants/docker.socket \
      /etc/systemd/system/multi-user.target.wants/containerd.service
}

step_venv() {
  if [ -x "$POSTSTACK_VENV/bin/ansible-playbook" ] && [ -f "$POSTSTACK_VENV/.complete" ]; then
    ln -sfn "$POSTSTACK_VENV" .venv
    return 0
  fi
  log "creating venv $POSTSTACK_VENV"
  rm -rf "$POSTSTACK_VENV"
  "$POSTSTACK_PYTHON" -m venv "$POSTSTACK_VENV"
  quiet_pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
  touch "$POSTSTACK_VENV/.complete"
  ln -sfn "$POSTSTACK_VENV" .venv
}

step_collections() {
  local dest="$POSTSTACK_CACHE/collections-ansible-$ANSIBLE_WHEEL_VERSION"
  if [ ! -f "$dest/.complete" ]; then
    log "extracting collections from ansible==$ANSIBLE_WHEEL_VERSION"
    mkdir -p "$POSTSTACK_CACHE/wheels"
    quiet_pip download -q --disable-pip-version-check --no-deps -d "$POSTSTACK_CACHE/wheels" \
      "ansible==$ANSIBLE_WHEEL_VERSION"
    rm -rf "$dest"
    "$POSTSTACK_VENV/bin/python" - "$POSTSTACK_CACHE/wheels/ansible-$ANSIBLE_WHEEL_VERSION-py3-none-any.whl" "$dest" "${COLLECTIONS[@]}" <<'PY'
import sys, zipfile
wheel, dest, *wanted = sys.argv[1:]
prefixes = tuple(f"ansible_collections/{c}/" for c in wanted)
with zipfile.ZipFile(wheel) as zf:
    members = [m for m in zf.namelist() if m.startswith(prefixes)]
    missing = [c for c, p in zip(wanted, prefixes) if not any(m.startswith(p) for m in members)]
    if missing:
        sys.exit(f"collections not found in {wheel}: {missing}")
    zf.extractall(dest, members)
PY
    touch "$dest/.complete"
  fi
  mkdir -p .collections/ansible_collections/poststack
  ln -sfn ../../.. .collections/ansible_collections/poststack/core
  for c in "${COLLECTIONS[@]}"; do
    mkdir -p ".collections/ansible_collections/${c%/*}"
    ln -sfn "$dest/ansible_collections/$c" ".collections/ansible_collections/$c"
  done
}

step_ansible_test() {
  # ansible-test fetches get-pip.py from a host that may be unreachable; this stand-in installs pip from the
  # pip wheel on PyPI instead.
  local cache="$HOME/.ansible/test/cache"
  local wheel="$POSTSTACK_CACHE/wheels/pip-$PIP_STANDIN_VERSION-py3-none-any.whl"
  [ -f "$wheel" ] || quiet_pip download -q --disable-pip-version-check --no-deps \
    -d "$POSTSTACK_CACHE/wheels" "pip==$PIP_STANDIN_VERSION"
  mkdir -p "$cache"
  sed "s|@PIP_WHEEL@|$wheel|" scripts/get_pip_standin.py >"$cache/get_pip_${PIP_STANDIN_VERSION//./_}.py.new"
  mv "$cache/get_pip_${PIP_STANDIN_VERSION//./_}.py.new" "$cache/get_pip_${PIP_STANDIN_VERSION//./_}.py"
}

# A container, and a build step: buildah applies its own rlimits and runs RUN steps on the default network, so a
# host where `podman run` works may still fail to build (seen with podman 5 on Debian 13).
podman_smoke() {
  local dir id rc=0
  podman run --rm --pull=never --network none "$1" true >/dev/null 2>&1 || return 1
  dir="$(mktemp -d)"
  printf 'FROM %s\nRUN true\n' "$1" >"$dir/Containerfile"
  id="$(podman build --pull=never -q "$dir" 2>/dev/null)" || rc=$?
  rm -rf "$dir"
  [ -z "$id" ] || podman rmi -f "$id" >/dev/null 2>&1 || true
  return "$rc"
}

step_base_image() {
  local local_image="localhost/debian:bookworm-slim"
  local chosen="${POSTSTACK_BASE_IMAGE_OVERRIDE:-}"
  if [ -z "$chosen" ]; then
    if podman image exists "$local_image"; then
      chosen="$local_image"
    elif curl -s -m 5 -o /dev/null https://registry-1.docker.io/v2/; then
      chosen="docker.io/library/debian:bookworm-slim"
      podman image exists "$chosen" || podman pull -q "$chosen" >/dev/null
    else
      log "no registry answers: building $local_image with mmdebstrap"
      chosen="$(scripts/debian-image.sh bookworm)"
    fi
  fi
  echo "$chosen" >.cache/base-image
  export POSTSTACK_BASE_IMAGE="$chosen"
}

# Decided once per podman version (.cache/podman-conf-checked); `make clean` forgets it.
step_podman_conf() {
  local stamp
  stamp="$(podman --version)"
  [ -f .cache/podman-conf-checked ] && [ "$(cat .cache/podman-conf-checked)" = "$stamp" ] && return 0
  if podman_smoke "$POSTSTACK_BASE_IMAGE"; then
    rm -f .cache/podman-needs-conf
  elif CONTAINERS_CONF="$POSTSTACK_ROOT/scripts/podman/containers.conf" podman_smoke "$POSTSTACK_BASE_IMAGE"; then
    log "podman needs scripts/podman/containers.conf on this host (runc, ulimits); CONTAINERS_CONF will point at it"
    touch .cache/podman-needs-conf
  else
    podman run --rm --pull=never --network none "$POSTSTACK_BASE_IMAGE" true || true
    die "podman cannot run or build a container here, even with scripts/podman/containers.conf (runc, nofile and
  nproc limits of 20000; see the error above). Check 'podman info' and the limits of this host (ulimit -Hn)."
  fi
  echo "$stamp" >.cache/podman-conf-checked
}

# Project containers reach PostgreSQL by name on the project network, and tests run containers with --init: check
# both once per podman version (a real network and two containers, ~3 s), before any playbook relies on them.
step_podman_network() {
  local stamp backend net="poststack-check-$$" output rc=0
  stamp="$(podman --version) $(command -v catatonit || true)"
  [ -f .cache/podman-network-checked ] && [ "$(cat .cache/podman-network-checked)" = "$stamp" ] && return 0
  backend="$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo unknown)"
  if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ] && podman --version | grep -q ' [5-9]\.'; then
    log "note: this host has cgroups v1, which podman 5 deprecates (it still works; env.sh silences the warning)"
  fi
  if ! output="$(podman network create --label io.poststack.check=true "$net" 2>&1)"; then
    rc=1
  elif ! output="$(podman run -d --rm --init --name "$net-a" --network "$net" --pull=never "$POSTSTACK_BASE_IMAGE" \
                     sleep 60 2>&1)"; then
    rc=1
  elif ! output="$(podman run --rm --init --network "$net" --pull=never "$POSTSTACK_BASE_IMAGE" \
                     getent hosts "$net-a" 2>&1)"; then
    rc=1
  fi
  podman rm -f -t 0 "$net-a" >/dev/null 2>&1 || true
  podman network rm -f "$net" >/dev/null 2>&1 || true
  if [ "$rc" -ne 0 ]; then
    case "$output" in
      *container-init*|*catatonit*)
        die "podman cannot start containers with --init: ${output}
  Install catatonit (apt-get install catatonit; scripts/bootstrap.sh does so as root) and run again." ;;
    esac
    if [ "$backend" != netavark ] && ! ls /usr/lib/podman/netavark /usr/libexec/podman/netavark >/dev/null 2>&1; then
      die "containers on a podman network here cannot reach each other by name, so project containers would not
  find PostgreSQL (podman's network backend is '$backend' because netavark is not installed; getent said:
  ${output:-nothing}). Install it: apt-get install netavark aardvark-dns (bootstrap.sh does so when run as root)."
    fi
    if [ "$backend" != netavark ]; then
      die "containers on a podman network here cannot reach each other by name, so project containers would not
  find PostgreSQL (podman's network backend is '$backend'; getent said: ${output:-nothing}).
  Podman kept CNI because this host already had podman containers, images or networks when netavark was
  installed (it records the choice in $(podman info --format '{{.Store.GraphRoot}}' 2>/dev/null)/defaultNetworkBackend).
  Nothing of yours was changed. Either:
    - give CNI networks DNS: apt-get install golang-github-containernetworking-plugin-dnsname
      (networks created after that resolve names; remove poststack's project networks, <project>-net, so that
      they are created again), or
    - move podman to netavark: set network_backend = \"netavark\" in the [network] section of
      /etc/containers/containers.conf, then re-create your own networks and containers (podman network ls)."
    fi
    die "containers on a podman network here cannot reach each other by name (backend '$backend'), so project
  containers would not find PostgreSQL: ${output:-no output}
  Check that aardvark-dns is installed (apt-get install aardvark-dns) and that 'podman network create' works."
  fi
  echo "$stamp" >.cache/podman-network-checked
}

# The example projects' settings: each .env is made from the tracked example.env (no secret in it: a name and
# ports), so that no .env is tracked; one already there is left as the user changed it.
step_example_settings() {
  local example
  for example in examples/*/example.env; do
    [ -e "$(dirname "$example")/.env" ] || cp "$example" "$(dirname "$example")/.env"
  done
}

for_tests=false
for arg in "$@"; do
  case $arg in
    --for-tests) for_tests=true ;;
    *) die "unknown option $arg (bootstrap.sh [--for-tests])" ;;
  esac
done

start=$(date +%s)
step_example_settings
# One apt-get update and install for everything missing (the tests' packages too with --for-tests).
packages=$APT_PACKAGES
if $for_tests; then packages="$packages $TEST_APT_PACKAGES"; fi
# shellcheck disable=SC2086
step_apt $packages
if $for_tests; then step_docker; fi
# Python (and so the venv's name) may have arrived with the packages: name the venv now.
if [ -z "$POSTSTACK_VENV" ]; then
  # shellcheck source=scripts/env.sh
  . "$POSTSTACK_ROOT/scripts/env.sh"
  [ -n "$POSTSTACK_VENV" ] || die "no Python found ($POSTSTACK_PYTHON) after installing python3; set POSTSTACK_PYTHON"
fi
step_venv
step_collections
step_ansible_test
# The smoke test runs without CONTAINERS_CONF so that the decision is made afresh on every host. The first podman
# command on a new host picks the network backend and warns about the CNI file Debian's podman ships, which
# netavark does not use: make that choice here, quietly (once: the network check below records that it ran).
unset CONTAINERS_CONF
[ -f .cache/podman-network-checked ] || podman info >/dev/null 2>&1 || true
step_base_image
step_podman_conf
[ -f .cache/podman-needs-conf ] && export CONTAINERS_CONF="$POSTSTACK_ROOT/scripts/podman/containers.conf"
step_podman_network
log "ready in $(( $(date +%s) - start )) s (venv $POSTSTACK_VENV, base image $POSTSTACK_BASE_IMAGE)"
