// Package testbin gives tests the storage-webhook binary: the one `make test-bin` built (the
// Makefile passes it as STORAGE_WEBHOOK_BIN), or one built once per test process as `make
// test-bin` builds it, so every build shares make test's build cache entries.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Tags are the build tags of every test build, the Makefile's TESTTAGS: the pure-Go DNS
// resolver and user lookup of the shipped CGO_ENABLED=0 binary, which also let the race-built
// binary link statically.
const Tags = "netgo,osusergo"

var (
	once  sync.Once
	built string
	err   error
	out   []byte
)

// Path returns the binary, building it on first use when STORAGE_WEBHOOK_BIN is unset.
func Path(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("STORAGE_WEBHOOK_BIN"); bin != "" {
		return bin
	}
	once.Do(func() {
		dir, e := os.MkdirTemp("", "storage-webhook-bin-")
		if e != nil {
			err = e
			return
		}
		built = filepath.Join(dir, "storage-webhook")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-race", "-tags="+Tags,
			"-ldflags=-linkmode=external -extldflags=-static", "-o", built, ".")
		cmd.Dir = root
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return built
}
