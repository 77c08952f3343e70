#!/usr/bin/env bash
# Copies into STAGING what a PostgreSQL server with contrib and pgBackRest needs at run time, and nothing else:
# the server's bin/lib/share trees, pgbackrest, and every shared library they load that the base image lacks.
# The LLVM JIT provider (llvmjit.so and its ~120 MB of LLVM libraries) is left out; the config sets jit = off.
set -euo pipefail
pg_major=$1
staging=$2
mkdir -p "$staging"

# Bookworm has merged /usr: /lib is a symlink to usr/lib. Stage under /usr so that COPY never turns the /lib
# symlink of the runtime image into a directory.
canon() { case $1 in /lib/*|/lib64/*|/bin/*|/sbin/*) echo "/usr$1" ;; *) echo "$1" ;; esac; }
copy() {  # copy paths (files, symlinks, dirs) with their parents into the staging tree
  for p in "$@"; do cp -a --parents "$(canon "$p")" "$staging/"; done
}

copy "/usr/lib/postgresql/$pg_major" "/usr/share/postgresql/$pg_major" /usr/bin/pgbackrest
rm -f "$staging/usr/lib/postgresql/$pg_major/lib/llvmjit.so" "$staging/usr/lib/postgresql/$pg_major/lib/llvmjit_types.bc"
rm -rf "$staging/usr/lib/postgresql/$pg_major/lib/bitcode" "$staging/usr/share/postgresql/$pg_major/man"

# Shared libraries: the transitive closure of what the staged ELF files load, minus what the base image
# already provides (those come from base-debian at run time and are kept up to date there).
mapfile -t elves < <(find "$staging" -type f \( -perm -u+x -o -name '*.so*' \) -exec sh -c 'head -c4 "$1" | grep -q ELF && echo "$1"' _ {} \;)
declare -A libs=()
for elf in "${elves[@]}"; do
  while read -r lib; do libs["$lib"]=1; done < <(ldd "$elf" | awk '/=> \// {print $3}')
done
for lib in "${!libs[@]}"; do
  owner=""
  for candidate in "$lib" "$(canon "$lib")" "${lib#/usr}" "$(readlink -f "$lib")"; do
    owner=$(dpkg -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$owner" ] && break
  done
  # Libraries of packages that base-debian installed stay where they are.
  if [ -n "$owner" ] && grep -qx "$owner" /var/lib/poststack/base-packages; then continue; fi
  copy "$lib" "$(readlink -f "$lib")"
done
echo "staged $(du -sh "$staging" | cut -f1) into $staging"
