#!/usr/bin/env bash
# Compiles the sidecar into the one executable the image ships (the Dockerfile runs this script):
#   1. `deno bundle` main.ts and lib/ into one JavaScript file, leaving @kubernetes/client-node
#      (types only) and the YAML parser out. The parser is imported only in kubeconfig mode,
#      which the image cannot use anyway (it may read nothing but the service-account mount).
#   2. `deno compile --no-config` that file with the flags in image/deno-flags.txt (permissions,
#      V8 heap limit), which tests/image_test.ts also runs its stand-in with.
#
# Usage: tools/compile.sh [OUTPUT]      (default: .cache/build/kubernetes-pod-discovery)
#        tools/compile.sh --bundle FILE  (step 1 only: the JavaScript file the executable embeds;
#                                        tests/image_test.ts runs it)
# Environment: DENO, the deno to run (default: tools/deno, the pinned one); DENORT_BIN, a local
# copy of Deno's runtime base `denort` of the same version, so nothing is downloaded.
#
# `deno compile` downloads denort from Deno's own download site. Where that site cannot be
# reached, this script says so in one line and exits 3: there is no executable, and nothing must
# look as if there were. Under CI=true it exits 0 after that line instead ("skipped"): everything
# before the download (bundling, flag parsing, the module graph) has then been checked, and the
# rest is checked by building the image. Any other failure exits non-zero in CI too.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deno="${DENO:-$root/tools/deno}"

bundle() {
  local file
  file="$(realpath -m "$1")"
  (cd "$root" && "$deno" bundle --quiet --platform=deno --external=@kubernetes/client-node \
    --external=yaml \
    --output="$file" main.ts)
}

if [ "${1:-}" = "--bundle" ]; then
  bundle "${2:?usage: tools/compile.sh --bundle FILE}"
  exit 0
fi
out="${1:-$root/.cache/build/kubernetes-pod-discovery}"

flags=()
while IFS= read -r line; do
  line="${line%%#*}"
  line="$(echo "$line" | tr -d '[:space:]')"
  [ -n "$line" ] && flags+=("$line")
done <"$root/image/deno-flags.txt"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

bundle "$work/kubernetes-pod-discovery.js"

# --no-config: the bundle needs no import map, and without deno.json nothing of the npm snapshot
# in deno.lock is embedded. Run from the work dir so the executable's embedded path is short.
set +e
(cd "$work" && "$deno" compile --quiet --no-config "${flags[@]}" --output="$out" \
  kubernetes-pod-discovery.js) 2>"$work/stderr"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  if grep -q 'denort' "$work/stderr" &&
    grep -qiE 'error sending request|dns error|connect' "$work/stderr"; then
    what="deno compile cannot download its runtime base (denort) from Deno's download site here"
    if [ "${CI:-}" = "true" ]; then
      echo "tools/compile.sh: skipped: $what; bundle and flags are fine" \
        "(set DENORT_BIN to a local denort to compile)" >&2
      exit 0
    fi
    version="$("$deno" --version | head -1 | cut -d' ' -f2)"
    echo "tools/compile.sh: $what: no executable made; set DENORT_BIN to a local denort" \
      "$version, or build the Dockerfile where that site is reachable" >&2
    exit 3
  fi
  cat "$work/stderr" >&2
  exit "$status"
fi
echo "$out"
