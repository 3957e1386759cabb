//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestLiveCheck runs `storage-webhook check --kubeconfig`: the cluster view comes from the
// live API server (read-only), and the old object of an UPDATE is read from it.
func TestLiveCheck(t *testing.T) {
	ns := newNamespace(t)
	if _, err := create(t, obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: e2e-live}\nprovisioner: rbd.csi.ceph.com\n"), false); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	img := obj(t, ns, image("live-img", "e2e-live", "cdi"))
	_ = unstructured.SetNestedField(img.Object, map[string]any{"virtualSize": int64(10 << 30)}, "status")
	expectCreated(t, img, anyObject)
	expectCreated(t, obj(t, ns, cdiPVC("live-img", "e2e-live", "10Gi")), func(u *unstructured.Unstructured) bool {
		return u.GetAnnotations()["harvesterhci.io/goldenImage"] == "true"
	})

	dir := t.TempDir()
	write := func(name, manifest string) string {
		path := filepath.Join(dir, name)
		u := obj(t, ns, manifest)
		data, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	small := write("small.yaml", pvc("live-disk", "e2e-live", "5Gi", "harvesterhci.io/imageId: "+ns+"/live-img"))
	fine := write("fine.yaml", pvc("live-disk", "e2e-live", "10Gi", "harvesterhci.io/imageId: "+ns+"/live-img"))
	unmarked := write("unmarked.yaml", pvc("live-img", "e2e-live", "10Gi", "harvesterhci.io/goldenImage: \"false\""))

	cases := []struct {
		name     string
		args     []string
		wantExit int
		wantRule string
	}{
		{"a disk smaller than the live image is denied", []string{small}, 1, "PVC-V3"},
		{"a disk as large as the image is allowed", []string{fine}, 0, ""},
		{"changing the live golden PVC's mark is denied (old object read from the cluster)", []string{"--operation", "UPDATE", unmarked}, 1, "PVC-V1"},
		{"deleting the live golden PVC is denied", []string{"--operation", "DELETE", unmarked}, 1, "PVC-V2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			results, code := checkJSON(t, c.args...)
			if len(results) != 1 {
				t.Fatalf("%d answers, want 1: %+v", len(results), results)
			}
			if code != c.wantExit || (c.wantRule != "" && (len(results[0].Rules) == 0 || results[0].Rules[0] != c.wantRule)) {
				t.Errorf("exit %d rules %v, want %d %s: %s", code, results[0].Rules, c.wantExit, c.wantRule, results[0].Message)
			}
		})
	}
}
