// Package testbin gives tests the storage-webhook binary: the one `make` built (the
// Makefile passes it as STORAGE_WEBHOOK_BIN), or one built once per test process with the
// Makefile's flags, so every build shares the same build cache entries.
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
		cmd := exec.Command("go", "build", "-trimpath", "-o", built, ".")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return built
}
