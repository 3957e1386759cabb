package providers_test

import (
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/webhook"
)

// TestDeployedConfigMapParses: the providers file shipped in deploy/ is valid and its row
// wins over the built-in catch-all.
func TestDeployedConfigMapParses(t *testing.T) {
	data, err := os.ReadFile("../deploy/base/providers-configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(data, &cm); err != nil {
		t.Fatal(err)
	}
	file, err := providers.Parse([]byte(cm.Data["providers.yaml"]), webhook.Catalogue())
	if err != nil {
		t.Fatal(err)
	}
	table := file.Table(providers.BehaviourOf(providers.Newest()))
	if p, _ := table.Match(&storagev1.StorageClass{Provisioner: "rbd.csi.ceph.com"}); p.Name != "ceph-rbd" || p.CloneStrategy != "csi-clone" {
		t.Errorf("rbd class got profile %+v", p)
	}
	// Its abilities follow the release, as Harvester's: no Ceph VM backups until v1.9.
	for _, r := range providers.Releases {
		p, _ := file.Table(providers.BehaviourOf(r)).Match(&storagev1.StorageClass{Provisioner: "rbd.csi.ceph.com"})
		if p.VMBackups != (r == providers.V1_9) || !p.VMSnapshots || !p.VolumeSnapshots || p.FromRelease != (providers.AbilitiesSet{true, true, true}) {
			t.Errorf("on %s the shipped ceph-rbd row is %+v", r, p)
		}
	}
}
