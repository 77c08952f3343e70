#!/usr/bin/env bash
# Runs molecule with a private HOME, so that molecule's copy of the collection and its caches never touch the
# user's ~/.ansible, and with our collections path first.
set -euo pipefail
cd "$POSTSTACK_ROOT"
# Scenarios use fixed instance and container names: one molecule run at a time on the whole machine.
exec 9>"$POSTSTACK_CACHE/molecule.lock"
flock 9
home="$POSTSTACK_ROOT/.cache/molecule-home"
mkdir -p "$home"
# podman and ansible-test keep state under HOME: share podman's image store with the real user.
export XDG_DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
export XDG_CONFIG_HOME="${XDG_CONFIG_HOME:-$HOME/.config}"
export HOME="$home"
export MOLECULE_NO_LOG=false NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
# The scenarios with instance containers reach them with podman_pipelined (one podman exec per task, where
# containers.podman.podman runs six): their molecule.yml sets ansible_connection for each instance.
export ANSIBLE_CONNECTION_PLUGINS="$POSTSTACK_ROOT/tests/ansible_plugins/connection${ANSIBLE_CONNECTION_PLUGINS:+:$ANSIBLE_CONNECTION_PLUGINS}"
# A scenario may need images built first (molecule's create cannot build without a registry): prebuild.yml.
# It also clears instances left by an interrupted run, so only the commands that create instances run it
# (`converge`, `verify`, `login` ... keep working on instances that are up).
case "${1:-}" in
  test|create)
    for arg in "$@"; do
      if [ "${prev:-}" = "-s" ] && [ -f "molecule/$arg/prebuild.yml" ]; then
        ansible-playbook "molecule/$arg/prebuild.yml"
      fi
      prev=$arg
    done ;;
esac
exec molecule "$@"
