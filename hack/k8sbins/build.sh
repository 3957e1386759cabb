#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd for the end-to-end tests from the Go module proxy
# (no download site is reachable, so setup-envtest cannot fetch them) and prints the folder
# holding them. The binaries are cached under $K8S_BINS_CACHE (default
# ~/.cache/storage-webhook/k8s-bins), keyed by the Kubernetes version and this module's
# go.sum hash: a cached set is reused as it is, anything else is a rebuild.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kv=$(cd "$here" && GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' k8s.io/kubernetes)
minor=$(echo "$kv" | cut -d. -f2)
key="$kv-$(sha256sum "$here/go.sum" | cut -c1-12)"
out="${K8S_BINS_CACHE:-$HOME/.cache/storage-webhook/k8s-bins}/$key"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -x "$out/kubectl" ]; then
  echo "$out"; exit 0
fi
cd "$here"
etcdv=$(GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
v=k8s.io/component-base/version; cv=k8s.io/client-go/pkg/version
ld="-s -w -X $v.gitVersion=$kv -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
ld="$ld -X $cv.gitVersion=$kv -X $cv.gitMajor=1 -X $cv.gitMinor=$minor -X $cv.gitTreeState=clean"
ld="$ld -X go.etcd.io/etcd/api/v3/version.GitSHA=$etcdv"
tmp="$out.tmp.$$"; rm -rf "$tmp"; mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
# One go build for all three keeps both cores busy across the whole package graph.
GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags="$ld" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3 >&2
for name in server v3; do [ -x "$tmp/$name" ] && mv "$tmp/$name" "$tmp/etcd"; done
"$tmp/kube-apiserver" --version >&2
mkdir -p "$(dirname "$out")"; rm -rf "$out"; mv "$tmp" "$out"; trap - EXIT
echo "$out"
