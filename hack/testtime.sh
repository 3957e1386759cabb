#!/usr/bin/env bash
# How long each test step takes on this machine, cold and warm (README, "Tests"): cold is an
# empty Go build cache and empty helm and k8s-bins caches, with the module cache kept (what a
# contributor has after `go mod download`); warm is the same steps again right after. Steps
# run in the order given, sharing the caches as they do in CI, and each is timed on its own.
#
#   hack/testtime.sh                         # make test, then the other .ci/run targets
#   hack/testtime.sh 'vet=go vet ./...' ...  # any NAME=COMMAND steps
#
# Prints a Markdown table: step, cold seconds, warm seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("make test=make test" "make integration=make integration" "make dashboard-test=make dashboard-test" \
	"make fuzz FUZZTIME=5s=make fuzz FUZZTIME=5s" "make soak SOAK_DURATION=20s=make soak SOAK_DURATION=20s" "make e2e=make e2e")
scratch=$(mktemp -d)
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT
export GOCACHE="$scratch/gocache" HELM_BIN_CACHE="$scratch/helm-bin" K8S_BINS_CACHE="$scratch/k8s-bins" GOFLAGS=-mod=readonly
declare -A cold warm
for pass in cold warm; do
	for s in "${steps[@]}"; do
		name="${s%%=*}" cmd="${s#*=}"
		start=$(date +%s)
		if ! bash -c "$cmd" >"$scratch/log" 2>&1; then
			echo "testtime: $name failed ($pass):" >&2; tail -30 "$scratch/log" >&2; exit 1
		fi
		took=$(( $(date +%s) - start ))
		if [ $pass = cold ]; then cold[$name]=$took; else warm[$name]=$took; fi
		echo "testtime: $name $pass ${took}s" >&2
	done
done
printf '| step | cold | warm |\n|---|---|---|\n'
for s in "${steps[@]}"; do
	name="${s%%=*}"
	printf '| `%s` | %d s | %d s |\n' "$name" "${cold[$name]}" "${warm[$name]}"
done
