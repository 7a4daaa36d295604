#!/usr/bin/env bash
# The file set of the FROM-scratch image, from its one list: image/files.txt.
#
#   tools/image_files.sh list
#       prints the image's paths, one a line
#   tools/image_files.sh assemble ROOT EXECUTABLE
#       lays out in ROOT (new or empty) exactly those files: EXECUTABLE as /kubernetes-pod-discovery
#       and every other path copied from the same path of this machine (symlinks followed); checks
#       first that the libraries in the list are exactly those `ldd EXECUTABLE` resolves, the
#       loader included; prints each file with its size and the total
#   tools/image_files.sh dockerfile
#       prints the final stage's COPY lines, as the Dockerfile must have them between its
#       "image/files.txt" markers (tests/image_test.ts checks that it does)
#
# The Dockerfile's build stage runs `assemble /rootfs /rootfs/kubernetes-pod-discovery`, so the
# ldd check runs there on the real compiled executable; tests/image_test.ts runs it with the deno
# binary standing in for it (denort, the base of compiled executables, links the same libraries).
set -euo pipefail
root_dir="$(cd "$(dirname "$0")/.." && pwd)"
# IMAGE_FILES: another list, for tests of this script.
list="${IMAGE_FILES:-$root_dir/image/files.txt}"
exe_path=/kubernetes-pod-discovery

paths() {
  sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$list"
}

# The shared objects `ldd` resolves for $1, the loader included (not the kernel's vDSO).
linked() {
  ldd "$1" | awk '
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $2 == "=>" { print "MISSING:" $1; next }
    $1 ~ /^\// { print $1 }'
}

case "${1:-}" in
list)
  paths
  ;;
dockerfile)
  paths | while IFS= read -r p; do echo "COPY --from=build /rootfs$p $p"; done
  ;;
assemble)
  root="${2:?usage: tools/image_files.sh assemble ROOT EXECUTABLE}"
  exe="${3:?usage: tools/image_files.sh assemble ROOT EXECUTABLE}"
  want="$(paths | grep -E '\.so(\.[0-9]+)*$' | sort)"
  have="$(linked "$exe" | sort -u)"
  if [ "$want" != "$have" ]; then
    echo "tools/image_files.sh: the libraries in $list are not those $exe links against:" >&2
    diff <(echo "$want") <(echo "$have") |
      sed -n 's/^< /  listed, not linked: /p; s/^> /  linked, not listed: /p' >&2
    exit 1
  fi
  mkdir -p "$root"
  if [ -n "$(find "$root" -mindepth 1 -maxdepth 1 ! -name kubernetes-pod-discovery)" ]; then
    echo "tools/image_files.sh: $root must be empty (or hold only the executable)" >&2
    exit 1
  fi
  total=0
  while IFS= read -r p; do
    src="$p"
    [ "$p" = "$exe_path" ] && src="$exe"
    mkdir -p "$root$(dirname "$p")"
    if [ ! "$src" -ef "$root$p" ]; then
      cp -L "$src" "$root$p"
    fi
    # Readable (and the executable and libraries runnable) by the image's non-root user.
    if [ -x "$root$p" ]; then chmod 0555 "$root$p"; else chmod 0444 "$root$p"; fi
    size="$(stat -c %s "$root$p")"
    total=$((total + size))
    printf '%12d  %s\n' "$size" "$p"
  done < <(paths)
  find "$root" -type d -exec chmod 0755 {} +
  printf '%12d  total\n' "$total"
  ;;
*)
  echo "usage: tools/image_files.sh list | assemble ROOT EXECUTABLE | dockerfile" >&2
  exit 2
  ;;
esac
