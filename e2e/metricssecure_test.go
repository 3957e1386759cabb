//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestMetricsSecure runs the webhook binary with --metrics-secure against the suite's API
// server and scrapes it with real service-account tokens (TokenRequest) and real RBAC:
// a service account bound to deploy/components/metrics-secure's
// storage-webhook-metrics-reader reads /metrics (Prometheus text) and /audit over HTTPS
// (200), one without the binding gets 403, no token 401, plain HTTP no metrics; the probes
// answer plain HTTP 200 on --probes-listen without a token.
func TestMetricsSecure(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if out, err := exec.Command(suite.bin, "certs", "--out", certDir).CombinedOutput(); err != nil {
		t.Fatalf("storage-webhook certs: %v %s", err, out)
	}
	ports := make([]int, 3)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	metricsAddr, probes := fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	startTestWebhook(t, filepath.Join(dir, "webhook.log"), probes+"/readyz",
		"--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--metrics-listen", metricsAddr,
		"--metrics-secure", "--probes-listen", fmt.Sprintf("127.0.0.1:%d", ports[2]),
		"--tls-cert-file", filepath.Join(certDir, "tls.crt"), "--tls-key-file", filepath.Join(certDir, "tls.key"),
		"--kubeconfig", suite.kubeconfig, "--log-format", "text", "--shutdown-delay", "0s")

	ns := newNamespace(t)
	// deploy/components/metrics-secure's role, as Prometheus would be bound to it.
	role := clusterRoleFrom(t, "../deploy/components/metrics-secure/metrics-reader.yaml", "storage-webhook-metrics-reader")
	reader, nobody := roleTokens(t, ctx, ns, role, "prometheus", "not-prometheus")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(readFile(filepath.Join(certDir, "ca.crt"))))
	httpc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: "storage-webhook.storage-webhook.svc", MinVersion: tls.VersionTLS12}}}
	fetch := func(path, token string) (int, string) {
		t.Helper()
		code, body := getWithToken(t, httpc, "https://"+metricsAddr+path, token)
		return code, string(body)
	}
	for _, c := range []struct {
		name, path, token string
		code              int
	}{
		{"no token", "/metrics", "", http.StatusUnauthorized},
		{"a forged token", "/metrics", "not-a-token", http.StatusUnauthorized},
		{"a service account without the binding", "/metrics", nobody, http.StatusForbidden},
		{"the metrics reader", "/metrics", reader, http.StatusOK},
		{"the metrics reader reads /audit", "/audit", reader, http.StatusOK},
		{"/audit without the binding", "/audit", nobody, http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := fetch(c.path, c.token)
			if code != c.code {
				t.Errorf("GET %s: %d %.200q, want %d", c.path, code, body, c.code)
			}
			if c.path == "/metrics" && (code == http.StatusOK) != strings.Contains(body, "# TYPE storage_webhook_cache_synced gauge") {
				t.Errorf("GET /metrics %d: Prometheus text only when allowed: %.200q", code, body)
			}
		})
	}
	t.Run("plain HTTP to the metrics port gets no metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "storage_webhook_") {
			t.Errorf("plain HTTP: %d %.200q", resp.StatusCode, body)
		}
	})
	t.Run("probes are plain HTTP without a token", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(probes + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %d, want 200", p, resp.StatusCode)
			}
		}
	})
}

// TestMetricsSecureComponentServerSideDryRun renders the base with the monitoring and
// metrics-secure components (in that order, as deploy/README.md says) with the pinned
// kubectl's kustomize, checks the Deployment's flags and probes, the ClusterRole and the
// HTTPS ServiceMonitor, and has the API server accept every object with a server-side dry
// run. Without monitoring the component renders too, adding no ServiceMonitor.
func TestMetricsSecureComponentServerSideDryRun(t *testing.T) {
	dir := copyDeploy(t)
	rendered := string(kustomizeComponents(t, dir, "metrics-secure-e2e", "monitoring", "metrics-secure"))
	alone := string(kustomizeComponents(t, dir, "metrics-secure-alone-e2e", "metrics-secure"))
	if strings.Contains(alone, "kind: ServiceMonitor") || !strings.Contains(alone, "--metrics-secure") {
		t.Error("metrics-secure alone: want the flag and no ServiceMonitor")
	}
	objects := 0
	for _, doc := range strings.Split(rendered, "\n---\n") {
		var o struct {
			Kind     string
			Metadata struct{ Name string }
			Spec     map[string]any
			Rules    []rbacv1.PolicyRule
		}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil || o.Kind == "" {
			continue
		}
		objects++
		switch {
		case o.Kind == "Deployment":
			d := doc
			for _, want := range []string{"- --metrics-secure", "- --probes-listen=:8081", "containerPort: 8081", "name: probes"} {
				if !strings.Contains(d, want) {
					t.Errorf("Deployment lacks %q", want)
				}
			}
			if strings.Count(d, "port: probes") != 2 {
				t.Errorf("want both probes on the probes port:\n%s", d)
			}
		case o.Kind == "ClusterRole" && o.Metadata.Name == "storage-webhook-metrics-reader":
			if len(o.Rules) != 1 || strings.Join(o.Rules[0].NonResourceURLs, ",") != "/metrics,/audit" || strings.Join(o.Rules[0].Verbs, ",") != "get" {
				t.Errorf("metrics-reader rules %+v", o.Rules)
			}
		case o.Kind == "ServiceMonitor":
			ep := o.Spec["endpoints"].([]any)[0].(map[string]any)
			tlsc, _ := ep["tlsConfig"].(map[string]any)
			if ep["scheme"] != "https" || ep["port"] != "metrics" || ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" ||
				tlsc["serverName"] != "storage-webhook.storage-webhook.svc" {
				t.Errorf("ServiceMonitor endpoint %v", ep)
			}
		}
	}
	if !strings.Contains(rendered, "name: storage-webhook-metrics-reader") {
		t.Error("no storage-webhook-metrics-reader")
	}
	serverSideDryRun(t, []byte(rendered), "storage-webhook-dryrun-metrics-secure", objects)
	t.Logf("base + monitoring + metrics-secure: %d objects accepted by server-side dry run", objects)
}
