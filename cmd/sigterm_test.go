//go:build integration

// Run by `make integration` (.ci/run runs it): it runs the built binary (STORAGE_WEBHOOK_BIN,
// or one testbin builds).

package cmd

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hcistorage/storage-webhook/certs"
	"github.com/hcistorage/storage-webhook/internal/poll"
	"github.com/hcistorage/storage-webhook/internal/testbin"
)

// TestSIGTERMDuringLoad runs the real binary, sends it SIGTERM while reviews flow, and
// checks that readiness drops first, requests keep being answered during the shutdown
// delay, in-flight requests finish, and no request fails. The load plays the API server
// behind a Service: it keeps sending for half the delay after readiness drops (the time
// endpoints take to drop the pod), then sends nothing new.
func TestSIGTERMDuringLoad(t *testing.T) {
	bin := testbin.Path(t)
	dir := t.TempDir()
	bundle, err := certs.Generate(certs.Options{Service: "storage-webhook", Namespace: "test", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteFiles(bundle, dir); err != nil {
		t.Fatal(err)
	}
	webhookPort, probePort := freePort(t), freePort(t)
	cmd := exec.Command(bin, "serve", "--cluster", "../testdata/cluster",
		"--listen", fmt.Sprintf("127.0.0.1:%d", webhookPort), "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", probePort),
		"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key"),
		"--shutdown-delay", "1s", "--log-format", "text")
	var logs syncWriter
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	probe := fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)
	readyz := func() int {
		resp, err := http.Get(probe)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	poll.Until(t, 30*time.Second, func() bool { return readyz() == http.StatusOK })

	newClient, _ := serviceClients(bundle.CACert)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan *loadResult, 1)
	url := fmt.Sprintf("https://127.0.0.1:%d/mutate/virtualmachineimages", webhookPort)
	go func() { done <- runLoad(ctx, 4, newClient, url, review(t, imageFixture), nil) }()
	time.Sleep(300 * time.Millisecond) // bounded: some load before the signal

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	poll.Until(t, 10*time.Second, func() bool { return readyz() == http.StatusServiceUnavailable })
	notReady := time.Since(signalled)
	time.Sleep(500 * time.Millisecond) // endpoints propagation: half the 1 s shutdown delay
	cancel()                           // no new requests; those in flight finish
	r := <-done
	var exitErr error
	select {
	case exitErr = <-exited:
	case <-time.After(40 * time.Second):
		t.Fatal("the server did not exit within 40s of SIGTERM")
	}
	stopped := time.Since(signalled)
	t.Logf("readiness off after %v, exit after %v; %d reviews answered (during the delay too), %d failed", notReady.Round(time.Millisecond), stopped.Round(time.Millisecond), r.ok.Load(), r.failed.Load())
	if exitErr != nil {
		t.Errorf("exit: %v\n%s", exitErr, logs.String())
	}
	if notReady >= stopped || stopped < time.Second {
		t.Errorf("readiness off after %v, exit after %v: want readiness to drop first and the 1 s delay to be served", notReady, stopped)
	}
	if r.failed.Load() != 0 || r.ok.Load() == 0 {
		t.Fatalf("%d accepted requests failed (%v), %d answered", r.failed.Load(), r.errs, r.ok.Load())
	}
}
