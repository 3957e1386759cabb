//go:build e2e

package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"

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
	// ConfigMap
	Data map[string]string `json:"data"`
}

type servicePort struct {
	Name string `json:"name"`
}

// TestMonitoringComponentServerSideDryRun renders the base with the monitoring component
// (deploy/components/monitoring) with the pinned kubectl's kustomize, checks the
// ServiceMonitor selects the Service's metrics port, the PrometheusRule holds the alerts and
// the dashboard's ConfigMap is where Rancher Monitoring looks, and has the API server accept
// every object with a server-side dry run. Each shipped overlay must render with the
// component too, its dashboard still in cattle-dashboards.
func TestMonitoringComponentServerSideDryRun(t *testing.T) {
	dir := copyDeploy(t)
	rendered := kustomizeComponents(t, dir, "monitoring-e2e", "monitoring")
	objects := checkMonitoring(t, rendered)
	out := serverSideDryRun(t, rendered, "storage-webhook-dryrun-monitoring", objects)
	for _, want := range []string{"servicemonitor.monitoring.coreos.com/storage-webhook ", "prometheusrule.monitoring.coreos.com/storage-webhook ",
		"configmap/storage-webhook-dashboard "} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run does not mention %s:\n%s", strings.TrimSpace(want), out)
		}
	}
	t.Logf("base + monitoring: %d objects accepted by server-side dry run", objects)

	// deploy/README.md: either overlay takes the component with one `components:` entry.
	for _, name := range []string{"cert-manager", "manual"} {
		t.Run(name, func(t *testing.T) {
			checkMonitoring(t, kustomizeOverlayWith(t, dir, name, "monitoring"))
		})
	}
}

// checkMonitoring checks the ServiceMonitor, the PrometheusRule and the dashboard's
// ConfigMap of a rendering and returns how many objects it holds.
func checkMonitoring(t *testing.T, rendered []byte) int {
	t.Helper()
	var service, monitor, rule, dashboard *monitoringObject
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
		case "v1 ConfigMap":
			if o.Metadata.Name == "storage-webhook-dashboard" {
				dashboard = &o
			}
		}
	}
	checkDashboard(t, dashboard)
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

// checkDashboard: the component's dashboard ConfigMap keeps its namespace, cattle-dashboards
// (a `namespace:` of the base or an overlay would move it), its label grafana_dashboard "1"
// (Rancher Monitoring's Grafana sidecar loads what has both), its fixed name (no hash
// suffix) and dashboard.json unchanged.
func checkDashboard(t *testing.T, cm *monitoringObject) {
	t.Helper()
	if cm == nil {
		t.Fatal("rendering lacks the ConfigMap storage-webhook-dashboard")
	}
	if cm.Metadata.Namespace != "cattle-dashboards" {
		t.Errorf("dashboard ConfigMap in namespace %q, want cattle-dashboards", cm.Metadata.Namespace)
	}
	if cm.Metadata.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v, want grafana_dashboard: \"1\"", cm.Metadata.Labels)
	}
	want, err := os.ReadFile("../deploy/components/monitoring/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["storage-webhook.json"]; got != string(want) {
		t.Errorf("dashboard ConfigMap's storage-webhook.json (%d bytes) is not dashboard.json (%d bytes)", len(got), len(want))
	}
}
