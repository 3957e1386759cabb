#!/usr/bin/env bash
# Builds helm for the chart tests from the Go module proxy (no download site is reachable,
# so get.helm.sh cannot be used) and prints the path of the binary. The binary is cached
# under $HELM_BIN_CACHE (default ~/.cache/storage-webhook/helm-bin), keyed by the Helm
# version and this module's go.sum hash: a cached build is reused as it is, anything else
# is a rebuild.
# It builds with the GOFLAGS it is given: the Makefile's test targets give make test's
# (TESTENV: the race detector, its tags, no DWARF), and this module requires the k8s.io versions go.mod does, so
# helm reuses make test's compile of client-go and the rest and compiles only its own
# packages (internal/testbin's TestHelmBuildReusesTheTestCompile keeps the versions in step).
# The flags are part of the cache key.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly"
hv=$(cd "$here" && go list -m -f '{{.Version}}' helm.sh/helm/v3)
key="$hv-$( (cat "$here/go.sum"; echo "$GOFLAGS") | sha256sum | cut -c1-12)"
out="${HELM_BIN_CACHE:-$HOME/.cache/storage-webhook/helm-bin}/$key"
if [ -x "$out/helm" ]; then
  echo "$out/helm"; exit 0
fi
cd "$here"
# As Helm's own Makefile: the version, and the default Kubernetes version that `helm
# template` and `helm lint` assume (.Capabilities.KubeVersion), taken from the client-go
# it is built with (v0.X.Y -> 1.X); without the latter a module build would assume v1.20.
kv=$(go list -m -f '{{.Version}}' k8s.io/client-go)
kmajor=$(( $(echo "${kv#v}" | cut -d. -f1) + 1 )); kminor=$(echo "$kv" | cut -d. -f2)
v=helm.sh/helm/v3/internal/version
ld="-s -w -X $v.version=$hv -X $v.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ld="$ld -X $p.k8sVersionMajor=$kmajor -X $p.k8sVersionMinor=$kminor"
done
tmp="$out.tmp.$$"; rm -rf "$tmp"; mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
go build -ldflags="$ld" -o "$tmp/helm" \
  helm.sh/helm/v3/cmd/helm >&2
"$tmp/helm" version >&2
mkdir -p "$(dirname "$out")"; rm -rf "$out"; mv "$tmp" "$out"; trap - EXIT
echo "$out/helm"
