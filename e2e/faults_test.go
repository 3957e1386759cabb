//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/hcistorage/storage-webhook/internal/poll"
)

// directReview sends an AdmissionReview straight to a webhook process (not through the API
// server) and returns the answer, or the HTTP status when it is not 200.
func directReview(t *testing.T, addr, path string, object map[string]any) (*admissionv1.AdmissionResponse, int) {
	t.Helper()
	raw, err := json.Marshal(object)
	if err != nil {
		t.Fatal(err)
	}
	review, err := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": "direct-1", "operation": "CREATE", "namespace": object["metadata"].(map[string]any)["namespace"],
			"kind":     map[string]any{"group": "", "version": "v1", "kind": "PersistentVolumeClaim"},
			"resource": map[string]any{"group": "", "version": "v1", "resource": "persistentvolumeclaims"},
			"userInfo": map[string]any{"username": "e2e"}, "object": json.RawMessage(raw),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(suite.env.WebhookInstallOptions.LocalServingCAData)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Post("https://"+addr+path, "application/json", bytes.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode
	}
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Response, http.StatusOK
}

func smallDisk(ns, image string) map[string]any {
	return obj(&testing.T{}, ns, pvc("direct-small", "e2e-restart", "1Gi", "harvesterhci.io/imageId: "+ns+"/"+image)).Object
}

// TestAPIServerRestart stops the API server mid-run: the webhook keeps answering from its
// caches (and stays ready); when the API server is back, its watches resync and objects
// created after the restart are seen.
func TestAPIServerRestart(t *testing.T) {
	ns := newNamespace(t)
	restartClass := obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: e2e-restart}\nprovisioner: rbd.csi.ceph.com\n")
	if _, err := create(t, restartClass, false); err != nil {
		t.Fatal(err)
	}
	expectCreatedImage(t, ns, "before-restart")
	addr := net.JoinHostPort(suite.env.WebhookInstallOptions.LocalServingHost, fmt.Sprint(suite.env.WebhookInstallOptions.LocalServingPort))
	denied := func(image string) bool {
		resp, code := directReview(t, addr, "/validate/persistentvolumeclaims", smallDisk(ns, image))
		return code == http.StatusOK && !resp.Allowed && strings.Contains(resp.Result.Message, "[PVC-V3]")
	}
	poll.Until(t, within, func() bool { return denied("before-restart") })

	// The API server crashes (SIGKILL: a graceful stop waits out the webhook's open watches).
	apiserver := suite.env.ControlPlane.APIServer
	killAPIServer(t, apiserver.SecureServing.Port)
	stopped := time.Now()
	answered := 0
	for time.Since(stopped) < 3*time.Second { // bounded: the webhook serves from its caches meanwhile
		if !denied("before-restart") {
			t.Fatal("with the API server down, the webhook no longer answers from its caches")
		}
		answered++
	}
	if resp, err := http.Get(suite.webhook.probes + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("readiness with the API server down: %v %v (synced caches stay usable)", resp, err)
	}
	t.Logf("%d reviews answered from the caches while the API server was down", answered)

	if err := apiserver.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server back after %v", time.Since(stopped).Round(time.Millisecond))
	poll.Until(t, 30*time.Second, func() bool { _, err := suite.kube.Discovery().ServerVersion(); return err == nil })
	expectCreatedImage(t, ns, "after-restart")
	resynced := time.Now()
	poll.Until(t, 60*time.Second, func() bool { return denied("after-restart") })
	t.Logf("an image created after the restart reached the webhook's cache in %v", time.Since(resynced).Round(time.Millisecond))
}

// killAPIServer kills the kube-apiserver serving on port (found by its command line).
func killAPIServer(t *testing.T, port string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if filepath.Base(args[0]) != "kube-apiserver" || !slices.Contains(args, "--secure-port="+port) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 10*time.Second, func() bool { _, err := os.Stat(filepath.Dir(p)); return os.IsNotExist(err) || zombie(filepath.Dir(p)) })
		return
	}
	t.Fatalf("no kube-apiserver with --secure-port=%s", port)
}

func zombie(procDir string) bool {
	stat, err := os.ReadFile(procDir + "/stat")
	return err != nil || strings.Contains(string(stat), ") Z ")
}

// expectCreatedImage creates a cdi image of 10Gi on class e2e-restart, retrying while the
// webhook's cache has not seen the class yet.
func expectCreatedImage(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := obj(t, ns, image(name, "e2e-restart", "cdi"))
	_ = unstructured.SetNestedField(u.Object, map[string]any{"virtualSize": int64(10 << 30)}, "status")
	return expectCreated(t, u, anyObject)
}

// TestStartBeforeAPIServer starts a second webhook whose API server is not reachable yet
// (a closed port): it is not ready and refuses reviews with a retryable 503; once the API
// server appears (a TCP proxy to it starts listening), it syncs and answers.
func TestStartBeforeAPIServer(t *testing.T) {
	proxyPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(suite.cfg)
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = fmt.Sprintf("https://127.0.0.1:%d", proxyPort)
	kubeconfig, err := writeKubeconfig(cfg, filepath.Join(t.TempDir(), "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	webhookPort, _ := freePort()
	probePort, _ := freePort()
	certDir := suite.env.WebhookInstallOptions.LocalServingCertDir
	cmd := exec.Command(suite.bin, "serve", "--kubeconfig", kubeconfig,
		"--listen", fmt.Sprintf("127.0.0.1:%d", webhookPort), "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", probePort),
		"--tls-cert-file", filepath.Join(certDir, "tls.crt"), "--tls-key-file", filepath.Join(certDir, "tls.key"))
	logFile := filepath.Join(t.TempDir(), "webhook.log")
	log, _ := os.Create(logFile)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); log.Close() }()
	readyz := func() int {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	poll.Until(t, 30*time.Second, func() bool { return readyz() != 0 }) // probes up
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without an API server = %d, want 503", code)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", webhookPort)
	ns := newNamespace(t)
	if _, code := directReview(t, addr, "/validate/persistentvolumeclaims", smallDisk(ns, "x")); code != http.StatusServiceUnavailable {
		t.Fatalf("review before sync = HTTP %d, want 503", code)
	}

	proxy := startProxy(t, proxyPort, target.Host)
	defer proxy.Close()
	appeared := time.Now()
	poll.Until(t, 60*time.Second, func() bool { return readyz() == http.StatusOK })
	t.Logf("ready %v after the API server appeared", time.Since(appeared).Round(time.Millisecond))
	if resp, code := directReview(t, addr, "/validate/persistentvolumeclaims", smallDisk(ns, "x")); code != http.StatusOK || !resp.Allowed {
		t.Fatalf("review after sync: HTTP %d %+v\n%s", code, resp, readFile(logFile))
	}
}

// proxy forwards TCP connections from a 127.0.0.1 port to the API server.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, port int, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
