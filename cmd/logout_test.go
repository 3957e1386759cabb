package cmd

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hcistorage/storage-webhook/internal/poll"
)

// TestLineBuffer: lines written by many goroutines arrive whole and all of them, within the
// flush interval while flushing runs, and at once on Flush.
func TestLineBuffer(t *testing.T) {
	var out syncWriter // serve_test.go
	b := newLineBuffer(&out)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.flushEvery(ctx, 20*time.Millisecond); close(done) }()

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				fmt.Fprintf(b, "{\"g\":%d,\"i\":%d,\"pad\":%q}\n", g, i, strings.Repeat("x", 100))
			}
		}()
	}
	wg.Wait()
	poll.Until(t, 5*time.Second, func() bool { return strings.Count(out.String(), "\n") == 4000 })
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if !strings.HasPrefix(line, `{"g":`) || !strings.HasSuffix(line, `"}`) {
			t.Fatalf("a line was split or mixed: %q", line)
		}
	}

	fmt.Fprintln(b, "last")
	cancel()
	<-done
	if !strings.HasSuffix(out.String(), "last\n") {
		t.Errorf("the last line was not flushed when flushing stopped")
	}
	fmt.Fprintln(b, "after")
	if err := b.Flush(); err != nil || !strings.HasSuffix(out.String(), "after\n") {
		t.Errorf("Flush did not write the waiting line (%v)", err)
	}
}
