#!/usr/bin/env bash
# Prints the name of a local minimal Debian image for SUITE (bookworm, trixie), localhost/debian:SUITE-slim,
# imported from an mmdebstrap tarball made once in $POSTSTACK_CACHE: the same sources and dpkg excludes as the
# official slim images, for hosts that reach Debian's mirror but no container registry.
#   scripts/debian-image.sh trixie
set -euo pipefail
suite=${1:?usage: scripts/debian-image.sh SUITE}
image="localhost/debian:${suite}-slim"
cache="${POSTSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/poststack}"
if ! podman image exists "$image"; then
  tar="$cache/debian-$suite-minbase.tar"
  if [ ! -f "$tar" ]; then
    mkdir -p "$cache"
    mmdebstrap --quiet --format=tar --variant=minbase --components=main \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      "$suite" "$tar.partial" \
      "deb http://deb.debian.org/debian $suite main" \
      "deb http://deb.debian.org/debian $suite-updates main" \
      "deb http://deb.debian.org/debian-security $suite-security main" >&2
    mv "$tar.partial" "$tar"
  fi
  podman import -q "$tar" "$image" >/dev/null
fi
echo "$image"
