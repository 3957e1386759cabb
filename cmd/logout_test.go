package cmd

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hcistorage/storage-webhook/internal/poll"
)

// syncBuffer is a bytes.Buffer safe to read while lineBuffer writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestLineBuffer: lines written by many goroutines arrive whole and all of them, within the
// flush interval while flushing runs, and at once on Flush.
func TestLineBuffer(t *testing.T) {
	var out syncBuffer
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
