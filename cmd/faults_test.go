package cmd

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/hcistorage/storage-webhook/certs"
	"github.com/hcistorage/storage-webhook/internal/loadtest"
	"github.com/hcistorage/storage-webhook/internal/poll"
)

// review reads the AdmissionReview of a fixture.
func review(t testing.TB, fixture string) []byte {
	t.Helper()
	var fx struct{ Review json.RawMessage }
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatal(err)
	}
	return fx.Review
}

const (
	imageFixture = "../testdata/admission/virtualmachineimages/m2-crd-defaulted-backingimage-on-rbd-becomes-cdi.json"
	pvcFixture   = "../testdata/admission/persistentvolumeclaims/v3-deny-request-below-image-virtual-size.json"
)

// serviceClients returns a maker of HTTP clients that trust the CAs and name the test
// Service, as the API server does, and the CA pool.
func serviceClients(caPEMs ...[]byte) (func() *http.Client, *x509.CertPool) {
	pool := x509.NewCertPool()
	for _, pem := range caPEMs {
		pool.AppendCertsFromPEM(pem)
	}
	return func() *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "storage-webhook.test.svc", MinVersion: tls.VersionTLS12}}}
	}, pool
}

// loadResult counts a bounded load run.
type loadResult struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []error
}

func (r *loadResult) fail(err error) {
	r.failed.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 5 {
		r.errs = append(r.errs, err)
	}
}

// runLoad sends reviews from workers until ctx ends (tests bound it). newClient is called
// per worker, and again every 25 requests, so new TLS connections keep being made.
func runLoad(ctx context.Context, workers int, newClient func() *http.Client, url string, body []byte, skip func(error) bool) *loadResult {
	r := &loadResult{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newClient()
			for i := 0; ctx.Err() == nil; i++ {
				if i%25 == 0 {
					client.CloseIdleConnections()
					client = newClient()
				}
				switch err := loadtest.Send(client, url, body); {
				case err == nil:
					r.ok.Add(1)
				case skip != nil && skip(err):
				default:
					r.fail(err)
				}
			}
		}()
	}
	wg.Wait()
	return r
}

// TestCertificateRotatedDuringLoad: the serving certificate is replaced on disk while
// reviews flow; new connections get the new certificate and no request fails.
func TestCertificateRotatedDuringLoad(t *testing.T) {
	ts := startServe(t)
	next, err := certs.Generate(certs.Options{Service: "storage-webhook", Namespace: "test", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The API server's caBundle holds both CAs during a rotation.
	newClient, pool := serviceClients(ts.bundle.CACert, next.CACert)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan *loadResult, 1)
	go func() {
		done <- runLoad(ctx, 4, newClient, "https://"+ts.webhook+"/validate/persistentvolumeclaims", review(t, pvcFixture), nil)
	}()

	servedSerial := func() *big.Int {
		conn, err := tls.Dial("tcp", ts.webhook, &tls.Config{RootCAs: pool, ServerName: "storage-webhook.test.svc"})
		if err != nil {
			return nil
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	before := servedSerial()
	if err := certs.WriteFiles(next, ts.dir); err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	poll.Until(t, 30*time.Second, func() bool { s := servedSerial(); return s != nil && s.Cmp(before) != 0 })
	t.Logf("new certificate served %v after the files changed", time.Since(rotated).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // keep the load on the new certificate for a moment (bounded)
	cancel()
	r := <-done
	t.Logf("%d reviews answered during the rotation, %d failed", r.ok.Load(), r.failed.Load())
	if r.failed.Load() != 0 || r.ok.Load() == 0 {
		t.Fatalf("%d failed (%v), %d answered", r.failed.Load(), r.errs, r.ok.Load())
	}
}

// TestProvidersFileReplacedByGarbage: a broken providers file is refused, logged and
// counted, and the previous table stays in force.
func TestProvidersFileReplacedByGarbage(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "providers.yaml")
	if err := os.WriteFile(file, []byte("providers:\n- {name: nfs, provisioner: nfs.csi.k8s.io, backend: cdi, cloneStrategy: csi-clone}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServe(t, "--providers", file)
	sc := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"sc-1",
	 "kind":{"group":"storage.k8s.io","version":"v1","kind":"StorageClass"},
	 "resource":{"group":"storage.k8s.io","version":"v1","resource":"storageclasses"},
	 "name":"nfs","operation":"CREATE","userInfo":{"username":"admin"},
	 "object":{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"nfs"},"provisioner":"nfs.csi.k8s.io"}}}`)
	patch := func() string {
		resp, err := ts.client.Post("https://"+ts.webhook+"/mutate/storageclasses", "application/json", bytes.NewReader(sc))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return string(out.Response.Patch)
	}
	if p := patch(); !strings.Contains(p, "csi-clone") {
		t.Fatalf("the file's profile is not in force: %s", p)
	}
	if err := os.WriteFile(file+".tmp", []byte("providers: [ {name: \x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, func() bool {
		return strings.Contains(scrape(t, ts.probe), `storage_webhook_provider_reloads_total{result="failure"} 1`)
	})
	if !strings.Contains(ts.logs.String(), "providers file refused; the previous table stays in force") {
		t.Errorf("no log line for the refused file: %s", ts.logs.String())
	}
	if p := patch(); !strings.Contains(p, "csi-clone") {
		t.Errorf("the previous table is not in force after a garbage file: %s", p)
	}
}

func scrape(t *testing.T, probe string) string {
	t.Helper()
	resp, err := http.Get("http://" + probe + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestStartWhileAPIServerUnreachable: with no API server to sync from, /readyz fails and
// reviews are refused with a retryable 503, never answered from an empty cache.
func TestStartWhileAPIServerUnreachable(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	// A port nothing listens on: 127.0.0.1:1 is reserved and refused at once.
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"+
		"users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := parseServeFlags([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--self-signed",
		"--kubeconfig", kubeconfig, "--shutdown-delay", "0s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addrs := make(chan [2]string, 1)
	f.started = func(w, p net.Addr) { addrs <- [2]string{w.String(), p.String()} }
	log, _ := newLogger("json", "error", io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, f, log) }()
	defer func() { cancel(); <-done }()
	a := <-addrs
	resp, err := http.Get("http://" + a[1] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d, want 503", resp.StatusCode)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err = client.Post("https://"+a[0]+"/validate/persistentvolumeclaims", "application/json", bytes.NewReader(review(t, pvcFixture)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "not synced") {
		t.Errorf("review before sync: %d %q Retry-After=%q, want 503 naming the caches", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := loadtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestHardenedTLS: TLS 1.2 minimum (1.3 on request), HTTP/2 only when enabled, a header
// cap, and client certificates when --client-ca-file is set.
func TestHardenedTLS(t *testing.T) {
	t.Run("TLS 1.2 is the default minimum and HTTP/2 is off", func(t *testing.T) {
		ts := startServe(t)
		cfg := ts.tlsConfig()
		cfg.MaxVersion, cfg.NextProtos = tls.VersionTLS12, []string{"h2", "http/1.1"}
		conn, err := tls.Dial("tcp", ts.webhook, cfg)
		if err != nil {
			t.Fatalf("TLS 1.2 client: %v", err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
			t.Errorf("negotiated %q, want http/1.1", p)
		}
		cfg = ts.tlsConfig()
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
		if c, err := tls.Dial("tcp", ts.webhook, cfg); err == nil {
			c.Close()
			t.Error("a TLS 1.1 client was accepted")
		}
	})
	t.Run("--enable-http2 offers h2", func(t *testing.T) {
		ts := startServe(t, "--enable-http2")
		cfg := ts.tlsConfig()
		cfg.NextProtos = []string{"h2", "http/1.1"}
		conn, err := tls.Dial("tcp", ts.webhook, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Errorf("negotiated %q, want h2", p)
		}
	})
	t.Run("--tls-min-version 1.3 refuses TLS 1.2", func(t *testing.T) {
		ts := startServe(t, "--tls-min-version", "1.3")
		cfg := ts.tlsConfig()
		cfg.MaxVersion = tls.VersionTLS12
		if c, err := tls.Dial("tcp", ts.webhook, cfg); err == nil {
			c.Close()
			t.Error("a TLS 1.2 client was accepted")
		}
	})
	t.Run("headers over 64 KiB get 431", func(t *testing.T) {
		ts := startServe(t)
		req, _ := http.NewRequest(http.MethodPost, "https://"+ts.webhook+"/validate/persistentvolumeclaims", bytes.NewReader(review(t, pvcFixture)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Padding", strings.Repeat("a", 80<<10))
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("got %d, want 431", resp.StatusCode)
		}
	})
	t.Run("--client-ca-file requires a client certificate from that CA", func(t *testing.T) {
		caPEM, clientCert := clientCA(t)
		caFile := filepath.Join(t.TempDir(), "client-ca.crt")
		if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		ts := startServe(t, "--client-ca-file", caFile)
		url := "https://" + ts.webhook + "/validate/persistentvolumeclaims"
		if err := loadtest.Send(ts.client, url, review(t, pvcFixture)); err == nil {
			t.Error("a client without a certificate was answered")
		}
		cfg := ts.tlsConfig()
		cfg.Certificates = []tls.Certificate{clientCert}
		with := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		if err := loadtest.Send(with, url, review(t, pvcFixture)); err != nil {
			t.Errorf("a client with a certificate from the CA: %v", err)
		}
	})
}

// clientCA makes a CA and a client certificate it signs (ExtKeyUsageClientAuth), as the
// API server's --proxy-client or webhook client certificate would be.
func clientCA(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client-ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	ckey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &ckey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: ckey}
}
