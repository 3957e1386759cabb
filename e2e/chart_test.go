//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
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
	createNamespaces(t, "storage-webhook", "cattle-dashboards") // monitoring.dashboard's ConfigMap goes to cattle-dashboards
	addonValues := filepath.Join(t.TempDir(), "addon-values.yaml")
	if err := os.WriteFile(addonValues, []byte(addonSpec(t)["valuesContent"].(string)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"cert-manager monitoring exclusions privileged users", []string{"--set", "certificate.source=cert-manager,monitoring.serviceMonitor=true,monitoring.prometheusRule=true,monitoring.dashboard=true",
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

// TestChartInstall: `helm install` with --set values yields webhooks that admit and deny as
// the kustomize ones do. envtest runs no pods, so a post-renderer (testdata/postrender) points
// the chart's webhook configurations at the suite's webhook process under names of their own;
// the API server's own counters then show the chart's webhooks deciding: a StorageClass with
// an unknown clone strategy is refused by the chart's validating webhook (SC-V1), a PVC is
// reviewed in an ordinary namespace and never in the namespace --set excludedNamespaces
// names. helm uninstall removes them.
func TestChartInstall(t *testing.T) {
	helm := helmBin(t)
	ctx := context.Background()
	post := filepath.Join(t.TempDir(), "postrender")
	if out, err := exec.Command("go", "build", "-o", post, "./testdata/postrender").CombinedOutput(); err != nil {
		t.Fatalf("build the post-renderer: %v\n%s", err, out)
	}
	opts := suite.env.WebhookInstallOptions
	ca := base64.StdEncoding.EncodeToString(opts.LocalServingCAData)
	const release, prefix, excluded = "storage-webhook-e2e", "helm-e2e", "helm-e2e-excluded"
	install := exec.Command(helm, "install", release, "../deploy/chart/storage-webhook", "--kubeconfig", suite.kubeconfig,
		"--namespace", "helm-e2e", "--create-namespace", "--post-renderer", post,
		"--set", "certificate.source=secret,certificate.secret.name=storage-webhook-tls,certificate.secret.caBundle="+ca,
		"--set", "excludedNamespaces={"+excluded+"},replicas=1,log.level=debug")
	install.Env = append(os.Environ(), "POSTRENDER_URL=https://"+net.JoinHostPort(opts.LocalServingHost, fmt.Sprint(opts.LocalServingPort)),
		"POSTRENDER_CA="+ca, "POSTRENDER_PREFIX="+prefix)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	uninstalled := false
	t.Cleanup(func() {
		if !uninstalled {
			_ = exec.Command(helm, "uninstall", release, "--kubeconfig", suite.kubeconfig, "--namespace", "helm-e2e").Run()
		}
	})
	calls := func(webhook, rejected string) float64 {
		return sum(scrape(t, ""), "apiserver_admission_webhook_request_total", func(l map[string]string) bool {
			return l["name"] == prefix+"."+webhook && (rejected == "" || l["rejected"] == rejected)
		})
	}
	const scValidate = "storageclasses.validate.storage-webhook.hcistorage.io"
	const pvcValidate = "persistentvolumeclaims.validate.storage-webhook.hcistorage.io"

	denied := calls(scValidate, "true")
	bad := obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: e2e-helm-rsync\n  annotations: {cdi.kubevirt.io/clone-strategy: rsync}\nprovisioner: nfs.csi.k8s.io\n")
	expectDenied(t, "SC-V1", func(dry bool) error { _, err := create(t, bad, dry); return err })
	if got := calls(scValidate, "true"); got <= denied {
		t.Errorf("the chart's %s refused nothing (%v before, %v after)", scValidate, denied, got)
	}

	ns := newNamespace(t)
	if _, err := suite.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: excluded}}, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	reviewed := calls(pvcValidate, "")
	for _, namespace := range []string{ns, excluded} {
		u := obj(t, namespace, pvc("helm-disk", "e2e-helm-none", "1Gi", "harvesterhci.io/imageId: "+namespace+"/no-such-image"))
		if _, err := client(t, "PersistentVolumeClaim", namespace, "").Create(ctx, u, metav1.CreateOptions{DryRun: dryRun(true)}); err != nil {
			t.Fatalf("PVC in %s: %v", namespace, err)
		}
		want := reviewed + 1 // the ordinary namespace is reviewed, the excluded one is not
		if got := calls(pvcValidate, ""); got != want {
			t.Errorf("after a PVC in %s the chart's %s has been called %v times since the first PVC, want %v", namespace, pvcValidate, got-reviewed, want-reviewed)
		}
	}

	if out, err := exec.Command(helm, "uninstall", release, "--kubeconfig", suite.kubeconfig, "--namespace", "helm-e2e").CombinedOutput(); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	uninstalled = true
	if _, err := suite.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, prefix+"-storage-webhook", metav1.GetOptions{}); err == nil {
		t.Error("helm uninstall left the chart's ValidatingWebhookConfiguration")
	}
}
