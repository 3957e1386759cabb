// Package golden compares generated output with its stored copy in tests: the files that
// `make generate` writes (UPDATE_GOLDEN=1) and a test keeps current.
package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Check fails t unless the file at path holds got; with UPDATE_GOLDEN=1 it writes got there
// first. hint says how to regenerate it.
func Check(t testing.TB, path string, got []byte, hint string) {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: %s", err, hint)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: %s", path, hint)
	}
}
