#!/usr/bin/env bash
# Instructions per review of the rules, of the rules under the bench rollout (20 overrides,
# 100 exceptions: testdata/bench/rollout.yaml) and of the floor (BENCHMARKS.md §9, §10), counted by
# valgrind's callgrind, which counts the same for the same binary and input whatever else the
# machine does: the CPU-time ratios of `make bench` move by ±0.08 from run to run here.
# Usage: hack/benchir.sh [REVIEW...] (names of BenchmarkReviews, default VMWith8Disks GoldenPVCDelete).
# Needs valgrind (Debian's package). Each figure is (count at 2200 reviews - count at 200) / 2000,
# one process per count, GOMAXPROCS=1 and asynchronous preemption off (callgrind does not
# handle Go's preemption signal).
set -euo pipefail
cd "$(dirname "$0")/.."
reviews=("$@")
[ ${#reviews[@]} -gt 0 ] || reviews=(VMWith8Disks GoldenPVCDelete)
bin=$(mktemp -d)/webhook.test
go test -c -o "$bin" ./webhook
count() { # BENCH N
	(cd webhook && GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		"$bin" -test.run '^$' -test.bench "^$1\$" -test.benchtime "$2x" 2>&1 | grep -o 'Collected : [0-9]*' | awk '{print $3}')
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
printf '| review | rules: instructions | rollout: instructions | floor: instructions | rules / floor | rollout / floor |\n|---|---|---|---|---|---|\n'
for r in "${reviews[@]}"; do
	rules=$(( ($(count "BenchmarkRules/$r" 2200) - $(count "BenchmarkRules/$r" 200)) / 2000 ))
	rollout=$(( ($(count "BenchmarkRollout/$r" 2200) - $(count "BenchmarkRollout/$r" 200)) / 2000 ))
	floor=$(( ($(count "BenchmarkFloor/$r" 2200) - $(count "BenchmarkFloor/$r" 200)) / 2000 ))
	printf '| %s | %d | %d | %d | %s | %s |\n' "$r" "$rules" "$rollout" "$floor" "$(ratio "$rules" "$floor")" "$(ratio "$rollout" "$floor")"
done
