package cmd

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"
)

// logFlushInterval bounds how long a line waits in serve's log buffer.
const logFlushInterval = 100 * time.Millisecond

// lineBuffer is serve's log output: lines reach the real output in batches, when 64 KiB are
// waiting, at most logFlushInterval after they were logged, and when serve returns. With one
// write(2) per line, the log lines took 5.9 % of serve's CPU under load, half of it in the
// system call (a profile of serve in make bench-load, BENCHMARKS.md §7). A crash can lose
// the last logFlushInterval of lines; what they said is also in the API server's audit log
// (the rules and reason audit annotations) and in the rule metrics.
type lineBuffer struct {
	mu  sync.Mutex
	buf *bufio.Writer
}

func newLineBuffer(out io.Writer) *lineBuffer {
	return &lineBuffer{buf: bufio.NewWriterSize(out, 64<<10)}
}

// Write buffers p (logrus writes one whole line per call, under its own lock).
func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Flush writes out what is waiting.
func (b *lineBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Flush()
}

// flushEvery flushes every interval until ctx is done, then once more.
func (b *lineBuffer) flushEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = b.Flush()
			return
		case <-t.C:
			_ = b.Flush()
		}
	}
}
