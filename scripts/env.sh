# shellcheck shell=bash
# Environment shared by the Makefile, .ci/run and the test scripts. Source it; it changes nothing on disk.
#
#   POSTSTACK_CACHE   machine-wide cache (venv, collections, base image tarball, pip wheels), kept between
#                     clean clones so that a second `make test` on the same machine starts fast.
#   POSTSTACK_PYTHON  interpreter for the project venv (default: python3.11, else python3).

POSTSTACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export POSTSTACK_ROOT
export POSTSTACK_CACHE="${POSTSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/poststack}"
if [ -z "${POSTSTACK_PYTHON:-}" ]; then
  if command -v python3.11 >/dev/null 2>&1; then POSTSTACK_PYTHON=python3.11; else POSTSTACK_PYTHON=python3; fi
fi
export POSTSTACK_PYTHON

# The venv is keyed by the interpreter and the pinned requirements, so changing a pin builds a new one. On a new
# host Python may not be installed yet: then the venv is named once bootstrap.sh has installed it (it sources this
# file again).
__poststack_venv_key() {
  { "$POSTSTACK_PYTHON" -c 'import sys; print(sys.version)'; cat "$POSTSTACK_ROOT/requirements.txt" "$POSTSTACK_ROOT/constraints.txt"; } \
    | sha256sum | cut -c1-16
}
if [ -z "${POSTSTACK_VENV:-}" ] && command -v "$POSTSTACK_PYTHON" >/dev/null 2>&1; then
  POSTSTACK_VENV="$POSTSTACK_CACHE/venv-$(__poststack_venv_key)"
fi
export POSTSTACK_VENV="${POSTSTACK_VENV:-}"

# Collections live in .collections/ansible_collections: poststack/core is a symlink to this checkout, the
# dependencies are symlinks into the cache (extracted from PyPI's `ansible` wheel).
export ANSIBLE_COLLECTIONS_PATH="$POSTSTACK_ROOT/.collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_CONFIG="$POSTSTACK_ROOT/ansible.cfg"
if [ -n "$POSTSTACK_VENV" ]; then
  case ":$PATH:" in *":$POSTSTACK_VENV/bin:"*) ;; *) export PATH="$POSTSTACK_VENV/bin:$PATH" ;; esac
fi
# bin/poststack: the poststack command (docs/cli.md) of this checkout
case ":$PATH:" in *":$POSTSTACK_ROOT/bin:"*) ;; *) export PATH="$POSTSTACK_ROOT/bin:$PATH" ;; esac
export PYTHONDONTWRITEBYTECODE=1

# Podman on some hosts (cgroup v1 hybrid, low hard rlimits) needs runc and lower default ulimits.
# bootstrap.sh detects that once and records it; only then is CONTAINERS_CONF set.
if [ -f "$POSTSTACK_ROOT/.cache/podman-needs-conf" ] && [ -z "${CONTAINERS_CONF:-}" ]; then
  export CONTAINERS_CONF="$POSTSTACK_ROOT/scripts/podman/containers.conf"
fi

# Podman 5 (Debian 13) warns on every command of a cgroup v1 host; the warning would be mixed into every output
# poststack reads and shows. bootstrap.sh says it once instead.
export PODMAN_IGNORE_CGROUPSV1_WARNING=1

# Base image for our Containerfiles: the official one for real users, a local mmdebstrap import where no
# registry answers (bootstrap.sh decides and records it).
if [ -z "${POSTSTACK_BASE_IMAGE:-}" ] && [ -f "$POSTSTACK_ROOT/.cache/base-image" ]; then
  POSTSTACK_BASE_IMAGE="$(cat "$POSTSTACK_ROOT/.cache/base-image")"
fi
export POSTSTACK_BASE_IMAGE="${POSTSTACK_BASE_IMAGE:-docker.io/library/debian:bookworm-slim}"
