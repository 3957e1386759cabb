#!/usr/bin/env bash
# Runs every native Go fuzz target (func FuzzXxx in a _test.go file) for $FUZZTIME each
# (default 10s), one after another: go test fuzzes one target of a package at a time.
# Stops at the first failure; go test then has written the crashing input to
# <package>/testdata/fuzz/<FuzzXxx>/, where it stays as a regression seed that `go test`
# runs with the rest of the seed corpus. Prints the number of execs of each target.
#
# -vet=off: make test vets these packages with every check. go test's own vet would
# type-check all ~780 packages below them again (vet's cache entries are keyed by the
# compile, and the fuzzer's instrumented compile is another one): minutes of CPU when the
# build cache is empty. -dwarf=false: the fuzz binary is linked without DWARF (as every test
# binary is), so the compiler need not write it for each package (10 % of the compile).
#
# FUZZMINIMIZETIME (default 5s) bounds each minimization: at go test's 60s default,
# minimizing one new input can take a whole short run.
#
#   hack/fuzz.sh                 # every target, 10s each
#   FUZZTIME=60s hack/fuzz.sh    # longer
#   hack/fuzz.sh FuzzParse       # only the named targets
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-5s}

# "package-dir target" pairs, found in the test files rather than listed here.
mapfile -t targets < <(
	find . \( -path ./.git -o -path ./e2e -o -path ./hack -o -path ./bin \) -prune -o -name '*_test.go' -print0 |
		xargs -0 grep -H -o '^func Fuzz[A-Za-z0-9_]*(' |
		sed -E 's#^\./(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#' |
		sort
)
if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

summary=()
for entry in "${targets[@]}"; do
	read -r dir name <<<"$entry"
	if [ "$#" -gt 0 ] && [[ " $* " != *" $name "* ]]; then
		continue
	fi
	echo "=== $name (./$dir, $FUZZTIME)"
	log=$(mktemp)
	note=""
	# Without the integration tag, the tests that pull in large dependency trees
	# (webhook/conditions_test.go links k8s.io/apiserver) are left out: building them with
	# fuzzing instrumentation took 6 minutes on a cold cache.
	if ! "$GO" test "./$dir" -vet=off -gcflags=all=-dwarf=false -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" 2>&1 | tee "$log"; then
		# Go 1.26's fuzz coordinator can fail a run at the -fuzztime deadline with a bare
		# "context deadline exceeded" and no input (go.dev/issue/75804, fixed in Go 1.27),
		# most often on a loaded machine. That is not a crash: note it and go on.
		if [ "$(grep -c -- '--- FAIL' "$log")" = 1 ] && grep -A1 -- "^--- FAIL: $name " "$log" | grep -qx '    context deadline exceeded' &&
			! grep -q 'Failing input written' "$log"; then
			note=" (ended by go.dev/issue/75804, no crash)"
		else
			rm -f "$log"
			echo "fuzz.sh: $name in ./$dir failed; a crashing input is kept in $dir/testdata/fuzz/$name/" >&2
			exit 1
		fi
	fi
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
	rm -f "$log"
	summary+=("$(printf '%-22s %-12s %s execs%s' "$name" "./$dir" "${execs:-?}" "$note")")
done

if [ "${#summary[@]}" -eq 0 ]; then
	echo "fuzz.sh: no fuzz target named $*" >&2
	exit 1
fi
echo "=== fuzzed for $FUZZTIME each"
printf '%s\n' "${summary[@]}"
