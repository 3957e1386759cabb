//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hcistorage/storage-webhook/cluster"
)

// helmBin is the pinned helm (hack/helmbin; `make e2e` sets HELM).
func helmBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		t.Fatal("HELM is not set: `make e2e` builds the pinned helm (hack/helmbin) and sets it")
	}
	return bin
}

// TestChartServerSideDryRun: the chart rendered with default values, with non-default ones
// (cert-manager, monitoring, exclusions, privileged users) and with the Harvester Addon's
// values passes a server-side dry run against the real API server and CRDs, every object.
func TestChartServerSideDryRun(t *testing.T) {
	helm := helmBin(t)
	if _, err := suite.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "storage-webhook"}}, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	addonValues := filepath.Join(t.TempDir(), "addon-values.yaml")
	if err := os.WriteFile(addonValues, []byte(addonSpec(t)["valuesContent"].(string)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"cert-manager monitoring exclusions privileged users", []string{"--set", "certificate.source=cert-manager,monitoring.serviceMonitor=true,monitoring.prometheusRule=true",
			"--set", "excludedNamespaces={longhorn-system},privilegedUsers={bob},replicas=3,log.format=text"}},
		{"the Harvester Addon's values", []string{"-f", addonValues}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"template", "storage-webhook", "../deploy/chart/storage-webhook", "--namespace", "storage-webhook"}, c.args...)
			rendered, err := exec.Command(helm, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, rendered)
			}
			objs, err := cluster.DecodeManifests(rendered)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "chart.yaml")
			if err := os.WriteFile(file, renameWebhookConfigurations(t, rendered, "storage-webhook-chart-dryrun"), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := kubectl("apply", "--server-side", "--field-manager", "e2e", "--dry-run=server", "-f", file)
			if err != nil {
				t.Fatalf("server-side dry run: %v\n%s", err, out)
			}
			if n := strings.Count(out, "(server dry run)"); n != len(objs) {
				t.Errorf("%d objects accepted, rendered %d:\n%s", n, len(objs), out)
			}
		})
	}
}

// TestHarvesterAddonServerSideDryRun: deploy/harvester-addon.yaml's Addon passes a strict
// server-side dry run against Harvester's real Addon CRD.
func TestHarvesterAddonServerSideDryRun(t *testing.T) {
	objs, err := cluster.ReadManifests("../deploy/harvester-addon.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, u := range objs {
		kinds = append(kinds, u.GetKind())
		ri := suite.dyn.Resource(gvrs[u.GetKind()])
		if u.GetNamespace() != "" {
			if _, err := suite.kube.CoreV1().Namespaces().Create(context.Background(),
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: u.GetNamespace()}}, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
				t.Fatal(err)
			}
			if _, err := ri.Namespace(u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{DryRun: []string{"All"}, FieldValidation: "Strict"}); err != nil {
				t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
			continue
		}
		if _, err := ri.Create(context.Background(), u, metav1.CreateOptions{DryRun: []string{"All"}, FieldValidation: "Strict"}); err != nil && !isAlreadyExists(err) {
			t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	if strings.Join(kinds, ",") != "Namespace,Addon" {
		t.Errorf("deploy/harvester-addon.yaml holds %v, want a Namespace and an Addon", kinds)
	}
}

// addonSpec is the spec of deploy/harvester-addon.yaml's Addon.
func addonSpec(t *testing.T) map[string]any {
	t.Helper()
	objs, err := cluster.ReadManifests("../deploy/harvester-addon.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() == "Addon" {
			return u.Object["spec"].(map[string]any)
		}
	}
	t.Fatal("deploy/harvester-addon.yaml has no Addon")
	return nil
}
