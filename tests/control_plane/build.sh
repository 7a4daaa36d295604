#!/usr/bin/env bash
# Builds the control-plane binary into .cache/bin/control-plane (ignored by git) with the version
# ldflags that make /version report the pinned release. A second build reuses Go's build cache.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version=$(cat "$here/KUBERNETES_VERSION")
minor=${version#v1.}
minor=${minor%%.*}
out="$root/.cache/bin/control-plane"
ld=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
mkdir -p "$(dirname "$out")"
cd "$here"
GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w $ld" -o "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
