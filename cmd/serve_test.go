package cmd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/hcistorage/storage-webhook/certs"
)

// testServer is `serve` running in-process on 127.0.0.1 with certificate files in dir.
type testServer struct {
	dir            string
	bundle         *certs.Bundle
	webhook, probe string // addresses: the webhook and metrics listeners
	plainProbes    string // the --probes-listen address (with --metrics-secure)
	logs           *syncWriter
	client         *http.Client
}

// startServe runs serve with the given extra flags until the test ends. The serving
// certificate is made by certs.Generate for storage-webhook.test.svc.
func startServe(t *testing.T, extra ...string) *testServer {
	t.Helper()
	ts := &testServer{dir: t.TempDir(), logs: &syncWriter{}}
	var err error
	if ts.bundle, err = certs.Generate(certs.Options{Service: "storage-webhook", Namespace: "test", Validity: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteFiles(ts.bundle, ts.dir); err != nil {
		t.Fatal(err)
	}
	args := []string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--tls-cert-file", filepath.Join(ts.dir, "tls.crt"), "--tls-key-file", filepath.Join(ts.dir, "tls.key"), "--shutdown-delay", "0s"}
	if !slices.Contains(extra, "--cluster") && !slices.Contains(extra, "--kubeconfig") {
		args = append(args, "--cluster", "../testdata/cluster")
	}
	args = append(args, extra...)
	f, err := parseServeFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addrs := make(chan [2]net.Addr, 1)
	probesAddr := make(chan net.Addr, 1)
	f.started = func(w, p net.Addr) { addrs <- [2]net.Addr{w, p} }
	f.probesStarted = func(p net.Addr) { probesAddr <- p }
	log, err := newLogger("json", "info", ts.logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, f, log) }()
	select {
	case a := <-addrs:
		ts.webhook, ts.probe = a[0].String(), a[1].String()
		if f.metricsSecure {
			ts.plainProbes = (<-probesAddr).String()
		}
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve returned %v", err)
			}
		})
	case err := <-done:
		cancel()
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start within 30s")
	}
	ts.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ts.tlsConfig()}}
	return ts
}

// tlsConfig trusts the test CA and names the Service, as the API server does.
func (ts *testServer) tlsConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ts.bundle.CACert)
	return &tls.Config{RootCAs: pool, ServerName: "storage-webhook.test.svc", MinVersion: tls.VersionTLS12}
}

// TestServeOverTLS starts `serve` on 127.0.0.1 with certificate files and a file-backed
// cluster view, and sends it real AdmissionReviews over TLS: a mutation, a denial, a
// malformed body and an oversized one; then checks the probes and metrics.
func TestServeOverTLS(t *testing.T) {
	ts := startServe(t, "--max-body-bytes", "65536")
	client, webhookAddr, probeAddr, logs := ts.client, ts.webhook, ts.probe, ts.logs
	base := "https://" + webhookAddr
	send := func(path string, body []byte) (int, string) {
		t.Helper()
		resp, err := client.Post(base+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	fixture := func(name string) []byte {
		var fx struct{ Review json.RawMessage }
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &fx); err != nil {
			t.Fatal(err)
		}
		return fx.Review
	}

	t.Run("mutation is a JSONPatch", func(t *testing.T) {
		code, body := send("/mutate/virtualmachineimages", fixture("../testdata/admission/virtualmachineimages/m2-crd-defaulted-backingimage-on-rbd-becomes-cdi.json"))
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal([]byte(body), &out); err != nil || code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		if !out.Response.Allowed || out.Response.PatchType == nil || len(out.Response.Warnings) != 1 {
			t.Fatalf("response = %+v", out.Response)
		}
	})
	t.Run("denial is HTTP 200 with allowed false", func(t *testing.T) {
		code, body := send("/validate/persistentvolumeclaims", fixture("../testdata/admission/persistentvolumeclaims/v3-deny-request-below-image-virtual-size.json"))
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal([]byte(body), &out); err != nil || code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		if out.Response.Allowed || out.Response.Result.Code != 403 || !strings.Contains(out.Response.Result.Message, "[PVC-V3]") {
			t.Fatalf("response = %+v", out.Response)
		}
	})
	t.Run("malformed body is 400", func(t *testing.T) {
		if code, body := send("/validate/persistentvolumeclaims", []byte(`{"apiVersion":`)); code != 400 {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("oversized body is 413", func(t *testing.T) {
		if code, body := send("/validate/persistentvolumeclaims", bytes.Repeat([]byte(" "), 65<<10)); code != 413 {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("unknown path is 404", func(t *testing.T) {
		if code, _ := send("/validate/pods", []byte(`{}`)); code != 404 {
			t.Fatalf("code %d", code)
		}
	})
	t.Run("probes and metrics", func(t *testing.T) {
		probe := "http://" + probeAddr
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(probe + p)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %v %v", p, resp, err)
			}
			resp.Body.Close()
		}
		resp, err := http.Get(probe + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`storage_webhook_requests_total{operation="CREATE",outcome="denied",resource="persistentvolumeclaims",webhook="/validate/persistentvolumeclaims"} 1`,
			`storage_webhook_rule_results_total{action="Enforce",result="deny",rule="PVC-V3"} 1`,
			`storage_webhook_requests_total{operation="unknown",outcome="rejected",resource="persistentvolumeclaims",webhook="/validate/persistentvolumeclaims"} 2`,
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		expiry := "storage_webhook_serving_certificate_expiry_timestamp_seconds "
		if !strings.Contains(string(b), expiry) || strings.Contains(string(b), expiry+"0\n") {
			t.Errorf("the serving certificate's expiry is not exported")
		}
	})
	if !strings.Contains(logs.String(), `"rule":"PVC-V3"`) {
		t.Errorf("no log line for the denial: %s", logs.String())
	}
}

// syncWriter is a log buffer safe for the server's goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestServeAuditOverFiles: serve audits its file view once at start and exposes the counts
// as storage_webhook_audit_findings; /audit refuses every caller, because a file view has
// no API server to authenticate them.
func TestServeAuditOverFiles(t *testing.T) {
	ts := startServe(t, "--cluster", "../testdata/audit")
	resp, err := ts.client.Get("https://" + ts.webhook + "/audit")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "needs an API server to authenticate callers") {
		t.Errorf("/audit = %d %q, want 403", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + ts.probe + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(body)
	for _, want := range []string{`storage_webhook_audit_findings{action="Enforce",rule="PVC-V3",severity="violation"} 1`, `storage_webhook_audit_findings{action="Enforce",rule="SC-M1",severity="drift"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, `rule="DV-V1",severity=`) {
		t.Error("a series for DV-V1, which audit does not run")
	}
}
