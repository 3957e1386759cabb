#!/usr/bin/env bash
# How long each test step takes on this machine, cold and warm (README, "Tests"): cold is an
# empty Go build cache and empty helm and k8s-bins caches, with the module cache kept (what a
# contributor has after `go mod download`); warm is the same steps again right after. Steps
# run in the order given, sharing the caches as they do in CI, and each is timed on its own.
#
#   hack/testtime.sh                          # make test, then the other .ci/run targets
#   hack/testtime.sh 'make test' 'go vet ./...'  # any commands, each one step
#   KEEP_K8S_BINS=1 hack/testtime.sh             # cold but for the k8s bins
#
# Prints a Markdown table: step, cold seconds, warm seconds, and their sums.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=("$@")
# The steps of .ci/run, each alone (.ci/run runs make fuzz beside the others).
[ ${#steps[@]} -gt 0 ] || steps=("make test" "make integration" "make dashboard-test" \
	"make soak SOAK_DURATION=20s" "make e2e" "make fuzz FUZZTIME=5s")
scratch=$(mktemp -d)
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT
export GOCACHE="$scratch/gocache" HELM_BIN_CACHE="$scratch/helm-bin" GOFLAGS=-mod=readonly
# KEEP_K8S_BINS=1 keeps the machine's kube-apiserver, etcd and kubectl (built once per
# version, as a CI runner keeps setup-envtest's downloads); by default they are rebuilt too.
[ "${KEEP_K8S_BINS:-0}" = 1 ] || export K8S_BINS_CACHE="$scratch/k8s-bins"
declare -A cold warm
for pass in cold warm; do
	for s in "${steps[@]}"; do
		start=$(date +%s)
		if ! bash -c "$s" >"$scratch/log" 2>&1; then
			echo "testtime: $s failed ($pass):" >&2; tail -30 "$scratch/log" >&2; exit 1
		fi
		took=$(( $(date +%s) - start ))
		if [ $pass = cold ]; then cold[$s]=$took; else warm[$s]=$took; fi
		echo "testtime: $s $pass ${took}s" >&2
	done
done
printf '| step | cold | warm |\n|---|---|---|\n'
total_cold=0 total_warm=0
for s in "${steps[@]}"; do
	printf '| `%s` | %d s | %d s |\n' "$s" "${cold[$s]}" "${warm[$s]}"
	total_cold=$((total_cold + cold[$s])) total_warm=$((total_warm + warm[$s]))
done
printf '| all of them | %d s | %d s |\n' "$total_cold" "$total_warm"
