package validators

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/providers"
)

// TestSnapshotClassMissingFromTheView: in a cluster without VolumeSnapshotClasses, a class
// whose snapshot class is its profile's own default (which SC-M1 writes) is admitted with a
// warning; any other missing snapshot class is denied.
func TestSnapshotClassMissingFromTheView(t *testing.T) {
	view, err := cluster.NewFiles(nil)
	if err != nil {
		t.Fatal(err)
	}
	env := &admit.Env{View: view, Providers: providers.NewStore(nil)}
	cases := []struct {
		snapshotClass string
		allowed       bool
		says          string
	}{
		{"lvm-snapshot", true, `"lvm-snapshot", the default of profile lvm, which does not exist yet`},
		{"lvm-retain", false, `VolumeSnapshotClass "lvm-retain" does not exist: create it first`},
	}
	for _, c := range cases {
		t.Run(c.snapshotClass, func(t *testing.T) {
			obj, _ := json.Marshal(map[string]any{
				"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "lvm.driver.harvesterhci.io",
				"metadata": map[string]any{"name": "lvm", "annotations": map[string]string{
					"cdi.harvesterhci.io/storageProfileVolumeSnapshotClass": c.snapshotClass}},
			})
			res := StorageClass(env, &admit.Request{Operation: admit.Create, Name: "lvm", Object: obj})
			got := res.Message() + strings.Join(res.WarningTexts(), "")
			if res.Allowed() != c.allowed || !strings.Contains(got, c.says) || !strings.Contains(got, "[SC-V3]") {
				t.Errorf("allowed %v, %q; want allowed %v saying %q", res.Allowed(), got, c.allowed, c.says)
			}
		})
	}
}
