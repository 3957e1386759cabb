//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// TestFailurePolicies stops the webhook and checks what deploy/README.md promises: a
// request to a Fail webhook is refused by the API server, a request to an Ignore webhook is
// admitted unmutated. Then the webhook comes back and answers again.
func TestFailurePolicies(t *testing.T) {
	ns := newNamespace(t)
	suite.webhook.stop()
	defer func() {
		if err := suite.webhook.start(); err != nil {
			t.Fatalf("restart webhook: %v", err)
		}
	}()

	cases := []struct {
		name     string
		manifest string
		refused  bool
	}{
		{"mutate virtualmachineimages is Fail", image("down-image", "e2e-rbd", ""), true},
		{"validate persistentvolumeclaims is Fail", pvc("down-pvc", "e2e-rbd", "1Gi", "harvesterhci.io/imageId: default/some-image"), true},
		// The validating matchCondition leaves plain PVCs out, and the mutating webhook is
		// Ignore: creating an ordinary PVC never depends on this service.
		{"a plain PVC is created without the webhook", pvc("down-plain", "e2e-rbd", "1Gi", ""), false},
		{"validate virtualmachines is Fail", "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: down-vm}\nspec: {template: {spec: {domain: {devices: {}}}}}\n", true},
		{"mutate datavolumes is Fail", "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: down-dv}\nspec: {source: {http: {url: http://x/y}}, storage: {storageClassName: e2e-rbd}}\n", true},
		{"validate volumesnapshots is Fail", "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: down-snap}\nspec: {source: {persistentVolumeClaimName: data-v1}}\n", true},
		{"validate virtualmachinebackups is Fail", "apiVersion: harvesterhci.io/v1beta1\nkind: VirtualMachineBackup\nmetadata: {name: down-b}\nspec: {source: {name: x}}\n", true},
		{"mutate storageclasses is Fail", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: e2e-down}\nprovisioner: nfs.csi.k8s.io\n", true},
		{"mutate storageprofiles is Ignore", "apiVersion: cdi.kubevirt.io/v1beta1\nkind: StorageProfile\nmetadata: {name: e2e-rbd}\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := obj(t, "", c.manifest)
			if _, cluster := map[string]bool{"StorageClass": true, "StorageProfile": true}[u.GetKind()]; !cluster {
				u.SetNamespace(ns)
			}
			got, err := create(t, u, true)
			switch {
			case c.refused && (err == nil || !strings.Contains(err.Error(), "failed calling webhook")):
				t.Errorf("want the API server to refuse while the webhook is down, got %v", err)
			case !c.refused && err != nil:
				t.Errorf("want an unmutated allow, got %v", err)
			case !c.refused && (str(got, "spec", "cloneStrategy") != "" || len(got.GetAnnotations()) != 0):
				t.Errorf("admitted object was mutated: %v", got.Object)
			}
		})
	}
}

// TestOverlaysServerSideDryRun renders both overlays with the pinned kubectl's kustomize
// and has the API server accept every object with a server-side dry run.
func TestOverlaysServerSideDryRun(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../deploy", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy deploy/: %v %s", err, out)
	}
	certs := filepath.Join(dir, "deploy/overlays/manual/certs")
	if out, err := exec.Command(suite.bin, "certs", "--out", certs).CombinedOutput(); err != nil {
		t.Fatalf("storage-webhook certs: %v %s", err, out)
	}
	// Namespaced objects need their namespace to exist for a dry run; it is excluded from
	// the webhooks' namespaceSelector anyway.
	_, err := suite.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "storage-webhook"}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, overlay := range []string{"cert-manager", "manual"} {
		t.Run(overlay, func(t *testing.T) {
			rendered, err := exec.Command(suite.kubectl, "kustomize", filepath.Join(dir, "deploy/overlays", overlay)).Output()
			if err != nil {
				t.Fatalf("kustomize: %v", err)
			}
			checkRendered(t, overlay, rendered)
			file := filepath.Join(dir, overlay+".yaml")
			if err := os.WriteFile(file, renameWebhookConfigurations(t, rendered, "storage-webhook-dryrun-"+overlay), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			out, err := exec.Command(suite.kubectl, "--kubeconfig", suite.kubeconfig, "apply", "--server-side",
				"--field-manager", "e2e", "--dry-run=server", "-f", file).CombinedOutput()
			if err != nil {
				t.Fatalf("server-side dry run: %v\n%s", err, out)
			}
			if n := strings.Count(string(out), "(server dry run)"); n != strings.Count(string(rendered), "\nkind: ")+boolInt(strings.HasPrefix(string(rendered), "kind: ")) {
				t.Errorf("%d objects accepted, rendered %d:\n%s", n, strings.Count(string(rendered), "\nkind: "), out)
			}
			t.Logf("%s: %d objects accepted by server-side dry run in %v", overlay, strings.Count(string(out), "(server dry run)"), time.Since(start).Round(time.Millisecond))
		})
	}
}

// renameWebhookConfigurations gives the configurations a name of their own: the ones
// envtest installed for the other tests are named storage-webhook already, and an apply
// would merge with them instead of trying a fresh install.
func renameWebhookConfigurations(t *testing.T, rendered []byte, name string) []byte {
	t.Helper()
	docs := strings.Split(string(rendered), "\n---\n")
	for i, doc := range docs {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		if kind, _ := o["kind"].(string); !strings.HasSuffix(kind, "WebhookConfiguration") {
			continue
		}
		o["metadata"].(map[string]any)["name"] = name
		out, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		docs[i] = string(out)
	}
	return []byte(strings.Join(docs, "\n---\n"))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkRendered: each overlay wires the serving certificate into both configurations.
func checkRendered(t *testing.T, overlay string, rendered []byte) {
	t.Helper()
	for _, doc := range strings.Split(string(rendered), "\n---\n") {
		var o struct {
			Kind     string
			Metadata struct{ Annotations map[string]string }
			Webhooks []struct {
				ClientConfig struct{ CABundle []byte } `json:"clientConfig"`
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(o.Kind, "WebhookConfiguration") {
			continue
		}
		for i, w := range o.Webhooks {
			switch overlay {
			case "manual":
				if !strings.Contains(string(w.ClientConfig.CABundle), "BEGIN CERTIFICATE") {
					t.Errorf("%s webhook %d: caBundle is not the CA", o.Kind, i)
				}
			case "cert-manager":
				if o.Metadata.Annotations["cert-manager.io/inject-ca-from"] != "storage-webhook/storage-webhook-serving" {
					t.Errorf("%s: no CA injection annotation", o.Kind)
				}
			}
		}
	}
}
