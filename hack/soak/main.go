// Command soak drives a running storage-webhook binary with a mixed stream of
// AdmissionReviews (every fixture under testdata/admission) at a fixed rate for a fixed time,
// on 127.0.0.1 only, and reports requests, errors, latency and the server's RSS at the start
// and the end of the measured window. It exits 1 when any request failed or RSS grew by more
// than -max-rss-growth.
//
//	go run ./hack/soak -binary bin/storage-webhook -duration 60s -rate 200
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hcistorage/storage-webhook/internal/loadtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run() error {
	binary := flag.String("binary", "bin/storage-webhook", "the storage-webhook binary")
	duration := flag.Duration("duration", 60*time.Second, "how long to send reviews")
	rate := flag.Int("rate", 200, "reviews per second")
	warmup := flag.Duration("warmup", 5*time.Second, "load before the first RSS reading (heap and caches settle)")
	maxGrowth := flag.Float64("max-rss-growth", 10, "largest RSS growth in percent from the first reading to the last")
	fixtures := flag.String("fixtures", "testdata/admission", "folder of JSON fixtures (webhook path + review)")
	flag.Parse()
	if *duration <= *warmup || *rate <= 0 {
		return fmt.Errorf("-duration must exceed -warmup and -rate must be positive")
	}
	reviews, err := loadtest.Reviews(*fixtures)
	if err != nil {
		return err
	}
	port, err := loadtest.FreePort()
	if err != nil {
		return err
	}
	probe, err := loadtest.FreePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(*binary, "serve", "--cluster", "testdata/cluster", "--self-signed",
		"--listen", "127.0.0.1:"+strconv.Itoa(port), "--metrics-listen", "127.0.0.1:"+strconv.Itoa(probe),
		"--log-level", "error", "--shutdown-delay", "0s")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	if err := waitReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", probe)); err != nil {
		return err
	}

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the server's throwaway certificate
		MaxIdleConnsPerHost: 64,
	}}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	var sent, failed atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	start := time.Now()
	var rssStart int64
	ticker := time.NewTicker(time.Second / time.Duration(*rate))
	defer ticker.Stop()
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
		case <-ticker.C:
			if rssStart == 0 && time.Since(start) >= *warmup {
				rssStart, _ = loadtest.RSS(cmd.Process.Pid)
			}
			r := reviews[i%len(reviews)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				err := loadtest.Send(client, base+r.Path, r.Body)
				d := time.Since(t0)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				mu.Lock()
				latencies = append(latencies, d)
				mu.Unlock()
			}()
			continue
		}
		break
	}
	wg.Wait()
	elapsed := time.Since(start)
	rssEnd, _ := loadtest.RSS(cmd.Process.Pid)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	growth := 100 * float64(rssEnd-rssStart) / float64(rssStart)
	fmt.Printf("soak: %d reviews (%d kinds of fixture) in %v at %d/s target, %.0f/s achieved\n", sent.Load(), len(reviews), elapsed.Round(time.Millisecond), *rate, float64(sent.Load())/elapsed.Seconds())
	fmt.Printf("soak: errors %d\n", failed.Load())
	fmt.Printf("soak: latency p50 %v p99 %v max %v\n", pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), latencies[len(latencies)-1].Round(time.Microsecond))
	fmt.Printf("soak: RSS %.1f MiB after %v warm-up, %.1f MiB at the end (%+.1f%%)\n", float64(rssStart)/(1<<20), *warmup, float64(rssEnd)/(1<<20), growth)
	if e := firstErr.Load(); e != nil {
		fmt.Printf("soak: first error: %s\n", e)
	}
	if failed.Load() > 0 {
		return fmt.Errorf("%d of %d reviews failed", failed.Load(), sent.Load())
	}
	if growth > *maxGrowth {
		return fmt.Errorf("RSS grew %.1f%%, more than %.1f%%", growth, *maxGrowth)
	}
	return nil
}

func waitReady(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("server not ready within 30s")
}
