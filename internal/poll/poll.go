// Package poll waits for a condition in tests, with a deadline instead of fixed sleeps.
package poll

import (
	"testing"
	"time"
)

// Until calls cond every few milliseconds until it is true, failing the test after within.
func Until(t testing.TB, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
