# storage-webhook: the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BIN     ?= bin/storage-webhook
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/hcistorage/storage-webhook/cmd.version=$(VERSION) -X github.com/hcistorage/storage-webhook/cmd.commit=$(COMMIT)

.PHONY: all build run test check-example lint fmt

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

# Serve the example cluster view under examples/cluster with a throwaway self-signed
# certificate; the log prints a curl command to send it a review.
run:
	$(GO) run . serve --cluster examples/cluster --self-signed --listen 127.0.0.1:8443 --metrics-listen 127.0.0.1:8080 --log-format text

# Everything CI runs: formatting, vet, and every test with the race detector.
test: lint
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Admit the example manifests against the example cluster view.
check-example:
	$(GO) run . check --cluster examples/cluster examples/manifests/
