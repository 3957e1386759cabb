//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// monitoringObject is the part of a rendered object the monitoring checks read.
type monitoringObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		// Service
		Ports []servicePort `json:"ports"`
		// ServiceMonitor
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
		// PrometheusRule
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

type servicePort struct {
	Name string `json:"name"`
}

// TestMonitoringComponentServerSideDryRun renders the base with the monitoring component
// (deploy/components/monitoring) with the pinned kubectl's kustomize, checks the
// ServiceMonitor selects the Service's metrics port and the PrometheusRule holds the
// alerts, and has the API server accept every object with a server-side dry run. Each
// shipped overlay must render with the component too.
func TestMonitoringComponentServerSideDryRun(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../deploy", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy deploy/: %v %s", err, out)
	}
	overlay := filepath.Join(dir, "deploy/overlays/monitoring-e2e")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	kustomization := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
		"resources:\n- ../../base\ncomponents:\n- ../../components/monitoring\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	rendered, err := exec.Command(suite.kubectl, "kustomize", overlay).Output()
	if err != nil {
		t.Fatalf("kustomize: %v", err)
	}
	objects := checkMonitoring(t, rendered)

	_, err = suite.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "storage-webhook"}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "monitoring.yaml")
	if err := os.WriteFile(file, renameWebhookConfigurations(t, rendered, "storage-webhook-dryrun-monitoring"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := kubectl("apply", "--server-side", "--field-manager", "e2e", "--dry-run=server", "-f", file)
	if err != nil {
		t.Fatalf("server-side dry run: %v\n%s", err, out)
	}
	if n := strings.Count(out, "(server dry run)"); n != objects {
		t.Errorf("%d objects accepted, rendered %d:\n%s", n, objects, out)
	}
	for _, want := range []string{"servicemonitor.monitoring.coreos.com/storage-webhook ", "prometheusrule.monitoring.coreos.com/storage-webhook "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the dry run does not mention %s:\n%s", strings.TrimSpace(want), out)
		}
	}
	t.Logf("base + monitoring: %d objects accepted by server-side dry run", objects)

	// deploy/README.md: either overlay takes the component with one `components:` entry.
	certs := filepath.Join(dir, "deploy/overlays/manual/certs")
	if out, err := exec.Command(suite.bin, "certs", "--out", certs).CombinedOutput(); err != nil {
		t.Fatalf("storage-webhook certs: %v %s", err, out)
	}
	for _, name := range []string{"cert-manager", "manual"} {
		t.Run(name, func(t *testing.T) {
			k := filepath.Join(dir, "deploy/overlays", name, "kustomization.yaml")
			data, err := os.ReadFile(k)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, "\ncomponents:\n- ../../components/monitoring\n"...)
			if err := os.WriteFile(k, data, 0o644); err != nil {
				t.Fatal(err)
			}
			rendered, err := exec.Command(suite.kubectl, "kustomize", filepath.Dir(k)).Output()
			if err != nil {
				t.Fatalf("kustomize: %v", err)
			}
			checkMonitoring(t, rendered)
		})
	}
}

// checkMonitoring checks the ServiceMonitor and PrometheusRule of a rendering and returns
// how many objects it holds.
func checkMonitoring(t *testing.T, rendered []byte) int {
	t.Helper()
	var service, monitor, rule *monitoringObject
	objects := 0
	for _, doc := range strings.Split(string(rendered), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		objects++
		var o monitoringObject
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		switch o.APIVersion + " " + o.Kind {
		case "v1 Service":
			service = &o
		case "monitoring.coreos.com/v1 ServiceMonitor":
			monitor = &o
		case "monitoring.coreos.com/v1 PrometheusRule":
			rule = &o
		}
	}
	if service == nil || monitor == nil || rule == nil {
		t.Fatalf("rendering lacks the Service, the ServiceMonitor or the PrometheusRule (monitoring.coreos.com/v1):\n%s", rendered)
	}
	if monitor.Metadata.Namespace != "storage-webhook" || !slices.Equal(monitor.Spec.NamespaceSelector.MatchNames, []string{"storage-webhook"}) {
		t.Errorf("ServiceMonitor in %q watching %v, want storage-webhook", monitor.Metadata.Namespace, monitor.Spec.NamespaceSelector.MatchNames)
	}
	for k, v := range monitor.Spec.Selector.MatchLabels {
		if service.Metadata.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s; the Service has labels %v", k, v, service.Metadata.Labels)
		}
	}
	if monitor.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "storage-webhook" {
		t.Errorf("ServiceMonitor selector %v, want app.kubernetes.io/name: storage-webhook", monitor.Spec.Selector.MatchLabels)
	}
	if len(monitor.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints: %+v, want one", monitor.Spec.Endpoints)
	}
	ep := monitor.Spec.Endpoints[0]
	if ep.Port != "metrics" || ep.Path != "/metrics" || ep.Interval != "30s" {
		t.Errorf("ServiceMonitor endpoint %+v, want port metrics, path /metrics, every 30s", ep)
	}
	if !slices.ContainsFunc(service.Spec.Ports, func(p servicePort) bool { return p.Name == ep.Port }) {
		t.Errorf("the Service has no port named %q: %+v", ep.Port, service.Spec.Ports)
	}
	var alerts []string
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
		}
	}
	for _, a := range []string{"StorageWebhookHighLatency", "StorageWebhookDenialsSpike", "StorageWebhookCachesNotSynced",
		"StorageWebhookCertificateExpiring", "StorageWebhookPanics", "StorageWebhookProviderReloadFailed"} {
		if !slices.Contains(alerts, a) {
			t.Errorf("PrometheusRule lacks alert %s (it has %v)", a, alerts)
		}
	}
	return objects
}
