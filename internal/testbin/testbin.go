// Package testbin gives tests the storage-webhook binary: the one `make test-bin` built (the
// Makefile passes it as STORAGE_WEBHOOK_BIN), or one built once per test process by `make
// test-bin` itself, so the Makefile stays the one place that says how.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

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
		cmd := exec.Command("make", "-C", root, "test-bin", "TESTBIN="+built)
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("make test-bin: %v\n%s", err, out)
	}
	return built
}
