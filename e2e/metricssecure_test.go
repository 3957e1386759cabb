//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	logFile := filepath.Join(dir, "webhook.log")
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(suite.bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--metrics-listen", metricsAddr,
		"--metrics-secure", "--probes-listen", fmt.Sprintf("127.0.0.1:%d", ports[2]),
		"--tls-cert-file", filepath.Join(certDir, "tls.crt"), "--tls-key-file", filepath.Join(certDir, "tls.key"),
		"--kubeconfig", suite.kubeconfig, "--log-format", "text", "--shutdown-delay", "0s")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); log.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("webhook log:\n%s", readFile(logFile))
		}
	})
	pollUntil(t, "the webhook is ready on the plain probes port", func() error {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("webhook exited: %v; log:\n%s", err, readFile(logFile))
		default:
		}
		resp, err := http.Get(probes + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: HTTP %d", resp.StatusCode)
		}
		return nil
	})

	ns := newNamespace(t)
	reader, nobody := metricsTokens(t, ctx, ns)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(readFile(filepath.Join(certDir, "ca.crt"))))
	httpc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: "storage-webhook.storage-webhook.svc", MinVersion: tls.VersionTLS12}}}
	fetch := func(path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "https://"+metricsAddr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
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

// metricsTokens makes two service accounts in ns and returns their tokens: one bound to
// deploy/components/metrics-secure's storage-webhook-metrics-reader, one bound to nothing.
func metricsTokens(t *testing.T, ctx context.Context, ns string) (reader, nobody string) {
	t.Helper()
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal([]byte(readFile("../deploy/components/metrics-secure/metrics-reader.yaml")), &role); err != nil || role.Name != "storage-webhook-metrics-reader" {
		t.Fatalf("metrics-reader.yaml: %v %q", err, role.Name)
	}
	if _, err := suite.kube.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	token := func(name string) string {
		if _, err := suite.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := suite.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	reader, nobody = token("prometheus"), token("not-prometheus")
	if _, err := suite.kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = suite.kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), "metrics-reader-"+ns, metav1.DeleteOptions{})
	})
	return reader, nobody
}

// TestMetricsSecureComponentServerSideDryRun renders the base with the monitoring and
// metrics-secure components (in that order, as deploy/README.md says) with the pinned
// kubectl's kustomize, checks the Deployment's flags and probes, the ClusterRole and the
// HTTPS ServiceMonitor, and has the API server accept every object with a server-side dry
// run. Without monitoring the component renders too, adding no ServiceMonitor.
func TestMetricsSecureComponentServerSideDryRun(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../deploy", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy deploy/: %v %s", err, out)
	}
	render := func(name string, components ...string) string {
		t.Helper()
		overlay := filepath.Join(dir, "deploy/overlays", name)
		if err := os.MkdirAll(overlay, 0o755); err != nil {
			t.Fatal(err)
		}
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\ncomponents:\n"
		for _, c := range components {
			k += "- ../../components/" + c + "\n"
		}
		if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(suite.kubectl, "kustomize", overlay).Output()
		if err != nil {
			t.Fatalf("kustomize %v: %v", components, err)
		}
		return string(out)
	}
	rendered := render("metrics-secure-e2e", "monitoring", "metrics-secure")
	alone := render("metrics-secure-alone-e2e", "metrics-secure")
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
	_, err := suite.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "storage-webhook"}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "metrics-secure.yaml")
	if err := os.WriteFile(file, renameWebhookConfigurations(t, []byte(rendered), "storage-webhook-dryrun-metrics-secure"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := kubectl("apply", "--server-side", "--field-manager", "e2e", "--dry-run=server", "-f", file)
	if err != nil {
		t.Fatalf("server-side dry run: %v\n%s", err, out)
	}
	if n := strings.Count(out, "(server dry run)"); n != objects {
		t.Errorf("%d objects accepted, rendered %d:\n%s", n, objects, out)
	}
	t.Logf("base + monitoring + metrics-secure: %d objects accepted by server-side dry run", objects)
}
