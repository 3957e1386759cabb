# storage-webhook: the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BIN     ?= bin/storage-webhook
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
IMAGE   ?= docker.io/hcistorage/storage-webhook:v0.1.0
LDFLAGS := -s -w -X github.com/hcistorage/storage-webhook/cmd.version=$(VERSION) -X github.com/hcistorage/storage-webhook/cmd.commit=$(COMMIT)
FUZZTIME ?= 10s
# The race detector sleeps 1 s as each test binary exits, for goroutines still running;
# a race during a test fails that test without it. Across the 19 test binaries the sleep
# cost 3.5-6.5 s of wall time (go test -race -run NONE ./...: 31.5-34.5 s with it, 28.0 s
# without).
# Set GORACE to keep the sleep.
GORACE  ?= atexit_sleep_ms=0
export GORACE

.PHONY: all build test-bin image run test integration fmt-check dashboard-test check-example lint fmt generate k8s-bins helm-bin chart deploy-manifests e2e fuzz soak bench bench-load bench-apiserver

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

# The binary the integration, soak and e2e tests run: make test's flags, linked static (the
# image test packs it into a scratch image, as `make image` packs the shipped one); race
# reports still name functions and lines without the symbol table (-s -w). internal/testbin
# runs this target when STORAGE_WEBHOOK_BIN is unset.
test-bin:
	$(TESTENV) $(GO) build -ldflags '$(LDFLAGS) -linkmode=external -extldflags=-static' -o $(TESTBIN) .

# Every test build uses make test's flags: the race detector, and the pure-Go DNS resolver and
# user lookup (netgo,osusergo) that the shipped CGO_ENABLED=0 binary has. The integration and
# e2e tests, the binary they run ($(TESTBIN), `make test-bin`), the soak tool, the dashboard
# test and the chart tests' helm (hack/helmbin, with the same k8s.io versions as go.mod) then
# reuse make test's compile of every dependency: on an empty build cache a second set of flags
# cost .ci/run a second compile of ~800 packages (README, "Tests"). Only `make build` and
# `make image`, the shipped binary, are built without the race detector.
# They are in GOFLAGS so that what the tests build themselves (internal/testbin, e2e's helm
# post-renderer) and hack/helmbin/build.sh get them too; a -tags on a go command line replaces
# GOFLAGS' one, so integration and e2e name TESTTAGS again.
# -dwarf=false: go test links test binaries without DWARF (-s -w), and test-bin and helm are
# linked so too, so the DWARF the compiler writes for every package would be thrown away; not
# writing it cut the compile of client-go's clientset by 10 % (215 → 195 CPU-s). Race reports
# and panics read the line table, which stays.
TESTTAGS := netgo,osusergo
TESTENV  := GOFLAGS='$(GOFLAGS) -race -tags=$(TESTTAGS) -gcflags=all=-dwarf=false'
TESTBIN  ?= bin/storage-webhook-race

# OCI image archive of the static binary on scratch, running as 65532:65532;
# no Docker needed. Load it with `ctr -n k8s.io images import`, `podman load`
# or `docker load`. Set SOURCE_DATE_EPOCH to stamp a creation time.
image: build
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .
	$(GO) run ./hack/image -binary $(BIN) -out bin/storage-webhook-image.tar -ref $(IMAGE)

# Serve the example cluster view under examples/cluster with a throwaway self-signed
# certificate; the log prints a curl command to send it a review.
run:
	$(GO) run . serve --cluster examples/cluster --self-signed --listen 127.0.0.1:8443 --metrics-listen 127.0.0.1:8080 --log-format text

# The README's test command: gofmt, then every hermetic test with TESTENV's race detector,
# each package vetted with every go vet check as go test compiles it (-vet=all: vet needs no
# second compile of its own). What needs a built binary, helm, or a heavy test-only
# dependency is in `make integration` (README, "Tests", has each target's cold and warm time).
test: fmt-check
	$(TESTENV) $(GO) test -vet=all -count=1 ./...

# The tests `make test` leaves out, in files tagged `integration` (each says why): the chart
# with the pinned helm, the API server's own webhook dispatcher and admission configuration
# loaders, cyclonus's NetworkPolicy matcher, the built binary (SIGTERM under load, the
# image archive) and the audit of hack/genview's 24,200-object view. Only the tests of those
# files run (make test ran the others), with make test's flags, so they add a compile of only
# what they alone import; the binary ($(TESTBIN)) and helm are built with the same flags.
# .ci/run runs it. A file tagged integration whose package is not listed here fails
# internal/testbin's test in make test.
# hack/image's test packs a 50 MB binary twice: 46 s with the race detector instrumenting
# compress/flate, 5 s without. The packer has no concurrency and its few dependencies are
# quick to compile, so it runs without the race detector.
INTEGRATION_NORACE := ./hack/image
INTEGRATION_PKGS := ./audit ./certs ./cmd ./deploy/... ./webhook $(INTEGRATION_NORACE)
INTEGRATION_TEST = test -tags=$(TESTTAGS),integration -vet=all -count=1 -run '^($(INTEGRATION_TESTS))$$'
INTEGRATION_TESTS = $(shell grep -rlx --include='*_test.go' '//go:build integration' . | xargs awk -F '[^A-Za-z0-9_]+' '/^func Test/ {print $$2}' | paste -sd'|')
integration: test-bin
	@set -e; helm=$$($(TESTENV) hack/helmbin/build.sh); \
	export HELM=$$helm STORAGE_WEBHOOK_BIN=$(CURDIR)/$(TESTBIN); \
	$(TESTENV) $(GO) $(INTEGRATION_TEST) $(filter-out $(INTEGRATION_NORACE),$(INTEGRATION_PKGS)); \
	$(GO) $(INTEGRATION_TEST) $(INTEGRATION_NORACE)

# The Grafana dashboard (deploy/components/monitoring/dashboard.json): loads in Grafana,
# every query parses with Prometheus's own PromQL parser and reads only metrics and labels
# the live registry of metrics.New() exports. A module of its own (hack/dashboardtest), so
# prometheus/prometheus's requirements never move the service's; `./...` here skips it.
dashboard-test:
	cd hack/dashboardtest && $(TESTENV) $(GO) test -vet=all -count=1 ./...

# Fuzz every fuzz target for FUZZTIME each, one after another (hack/fuzz.sh); their seed
# corpora and any crashers found (<package>/testdata/fuzz/) also run in `make test`.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) hack/fuzz.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# go vet on its own, for every build tag the tests use (make test and make integration
# already vet what they compile; this compiles a second, non-race time).
lint: fmt-check
	$(GO) vet ./... && $(GO) vet -tags integration ./... && $(GO) vet -tags e2e ./e2e

fmt:
	gofmt -w $$(git ls-files '*.go')

# Admit the example manifests against the example cluster view.
check-example:
	$(GO) run . check --cluster examples/cluster examples/manifests/

# Regenerate what is derived from the code: deploy/base/webhooks.yaml and docs/rules.md from
# the route table, and the README's quoted `check` output.
generate:
	UPDATE_GOLDEN=1 $(GO) test ./webhook -run 'TestDeployWebhooksMatchRouteTable|TestRulesDocMatchesRouteTable|TestFuzzCorporaHoldEveryFixture'
	UPDATE_GOLDEN=1 $(GO) test ./cmd -run TestCheckExamplesGolden
	UPDATE_GOLDEN=1 $(GO) test ./deploy/chart -run 'TestChartWebhooksFromRouteTable|TestChartFilesFromKustomizeBase'

# kube-apiserver, etcd and kubectl for the end-to-end tests, built from the Go module proxy
# and cached by version and go.sum hash (hack/k8sbins/build.sh prints their folder).
k8s-bins:
	@hack/k8sbins/build.sh

# Package the Helm chart into bin/chart/ (after linting it); publish with
#   helm push bin/chart/storage-webhook-<version>.tgz oci://REGISTRY/charts
# or serve the folder as a chart repository after `helm repo index bin/chart`.
chart:
	@set -e; helm=$$(hack/helmbin/build.sh); \
	$$helm lint --strict deploy/chart/storage-webhook; \
	$$helm package deploy/chart/storage-webhook -d bin/chart

# helm for the chart tests (Helm 3, as Rancher's helm-controller in Harvester), built from the
# Go module proxy and cached by version and go.sum hash (hack/helmbin/build.sh prints its path).
helm-bin:
	@hack/helmbin/build.sh

# Render both overlays with the pinned kubectl's kustomize into bin/deploy/.
deploy-manifests: build
	@set -e; bins=$$(hack/k8sbins/build.sh); mkdir -p bin/deploy; \
	if [ ! -f deploy/overlays/manual/certs/tls.crt ]; then $(BIN) certs --out deploy/overlays/manual/certs >/dev/null; fi; \
	for o in cert-manager manual; do $$bins/kubectl kustomize deploy/overlays/$$o > bin/deploy/$$o.yaml; echo "bin/deploy/$$o.yaml"; done

# End-to-end tests against a real kube-apiserver and etcd (envtest), with the real binary.
# -vet=all as in make test: go vet's results are cached by its flags too, and with go test's
# default subset vet would type-check the ~800 packages below e2e a second time.
e2e: test-bin
	@set -e; bins=$$(hack/k8sbins/build.sh); \
	helm=$$($(TESTENV) hack/helmbin/build.sh); \
	HELM=$$helm KUBEBUILDER_ASSETS=$$bins STORAGE_WEBHOOK_BIN=$(CURDIR)/$(TESTBIN) $(TESTENV) $(GO) test -tags=$(TESTTAGS),e2e -vet=all -count=1 -parallel 4 -timeout 15m ./e2e/...

# Bounded soak: a mixed stream of every fixture review at a fixed rate for a fixed time,
# reporting requests, errors, latency and RSS (fails on any error or >10 % RSS growth).
SOAK_DURATION ?= 60s
SOAK_RATE ?= 200
soak: test-bin
	$(TESTENV) $(GO) run ./hack/soak -binary $(TESTBIN) -duration $(SOAK_DURATION) -rate $(SOAK_RATE)

# Per review, in process (BENCHMARKS.md §1): the rules, the floor (the same handler with rules
# that do nothing) and kubewebhook's own handler take turns on each benchmark review and on
# the fixture stream; BENCH_COUNT runs, medians and ratios to the floor, and the 1.5x goal.
BENCH_COUNT ?= 5
bench:
	$(GO) test ./webhook -run '^$$' -bench 'BenchmarkReviews|BenchmarkFixtureMix' -benchtime 32000x -count $(BENCH_COUNT) | $(GO) run ./hack/benchratio -goal 1.5

# Load comparison: the real binary against an in-tool no-op webhook on the same TLS/HTTP stack,
# the same mixed fixture stream at 500, 1000 and 2000/s and at maximum rate, BENCH_DURATION per
# run; prints a table per step and the goals (set BENCH_FLAGS=-json FILE for BENCHMARKS.md).
BENCH_DURATION ?= 10s
bench-load: build
	$(GO) run ./hack/bench-load -binary $(BIN) -duration $(BENCH_DURATION) $(BENCH_FLAGS)

# Through a real API server (envtest): 1,000 PVC creates with storage-webhook, with no
# webhook and with a no-op webhook, in one run; and the large-view cache sync and RSS.
bench-apiserver: build
	@set -e; bins=$$(hack/k8sbins/build.sh); \
	STORAGE_WEBHOOK_BENCH=1 KUBEBUILDER_ASSETS=$$bins STORAGE_WEBHOOK_BIN=$(CURDIR)/$(BIN) \
	$(GO) test -count=1 -tags e2e -timeout 20m -run 'TestBench' -v ./e2e/ | grep -E 'BENCH|^(ok|FAIL|---)'
