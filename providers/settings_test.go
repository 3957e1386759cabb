package providers

import (
	"encoding/json"
	"strings"
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hcistorage/storage-webhook/harvester"
)

func annotated(provisioner string, params, ann map[string]string) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc", Annotations: ann}, Provisioner: provisioner, Parameters: params}
}

// TestEffectivePrecedence: Harvester's annotation over CDI's over the profile; invalid
// annotations are skipped and reported; Longhorn v1 classes ignore Harvester's.
func TestEffectivePrecedence(t *testing.T) {
	v2 := map[string]string{"dataEngine": "v2"}
	cases := []struct {
		name               string
		sc                 *storagev1.StorageClass
		clone, from, snap  string
		accessModes, errIn string
	}{
		{"profile only", annotated(LonghornProvisioner, v2, nil), "copy", "profile longhorn-v2", "longhorn-snapshot", "", ""},
		{"harvester annotation wins", annotated(LonghornProvisioner, v2, map[string]string{harvester.AnnClassCloneStrategy: "csi-clone", harvester.AnnCDIClassCloneStrategy: "snapshot"}),
			"csi-clone", harvester.AnnClassCloneStrategy, "longhorn-snapshot", "", ""},
		{"cdi annotation over profile", annotated(LonghornProvisioner, v2, map[string]string{harvester.AnnCDIClassCloneStrategy: "snapshot"}),
			"snapshot", harvester.AnnCDIClassCloneStrategy, "longhorn-snapshot", "", ""},
		{"invalid harvester value falls to cdi", annotated(LonghornProvisioner, v2, map[string]string{harvester.AnnClassCloneStrategy: "rsync", harvester.AnnCDIClassCloneStrategy: "snapshot"}),
			"snapshot", harvester.AnnCDIClassCloneStrategy, "longhorn-snapshot", "", `"rsync" is not a CDI clone strategy`},
		{"snapshot class annotation", annotated("lvm.driver.harvesterhci.io", nil, map[string]string{harvester.AnnClassSnapshotClass: "thin"}),
			"snapshot", "profile lvm", "thin", `{"Block":["ReadWriteOnce"]}`, ""},
		{"access modes annotation over profile", annotated("lvm.driver.harvesterhci.io", nil, map[string]string{harvester.AnnClassAccessModes: `{"Filesystem":["ReadWriteOnce"]}`}),
			"snapshot", "profile lvm", "lvm-snapshot", `{"Filesystem":["ReadWriteOnce"]}`, ""},
		{"bad access modes fall to profile", annotated("lvm.driver.harvesterhci.io", nil, map[string]string{harvester.AnnClassAccessModes: `{"Block":"ReadWriteOnce"}`}),
			"snapshot", "profile lvm", "lvm-snapshot", `{"Block":["ReadWriteOnce"]}`, "is not a JSON object"},
		{"longhorn v1 ignores harvester keys but not cdi's", annotated(LonghornProvisioner, map[string]string{"dataEngine": "v1"},
			map[string]string{harvester.AnnClassCloneStrategy: "csi-clone", harvester.AnnCDIClassCloneStrategy: "copy"}),
			"copy", harvester.AnnCDIClassCloneStrategy, "", "", "is ignored: Longhorn v1"},
		{"other profile, nothing set", annotated("rbd.csi.ceph.com", nil, nil), "", "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _ := Builtins(BehaviourOf(V1_5)).Match(c.sc) // the SPEC table's values
			s, errs := Effective(c.sc, p)
			am := ""
			if s.AccessModes != nil {
				am = s.AccessModes.String()
			}
			if s.CloneStrategy != c.clone || s.From["cloneStrategy"] != c.from || s.SnapshotClass != c.snap || am != c.accessModes {
				t.Errorf("got %+v (access modes %s)", s, am)
			}
			joined := ""
			for _, e := range errs {
				joined += e.Error() + "\n"
			}
			if (c.errIn == "") != (joined == "") || !strings.Contains(joined, c.errIn) {
				t.Errorf("errors %q, want one containing %q", joined, c.errIn)
			}
		})
	}
}

// TestClaimPropertySetsInHarvesterOrder: sets by volume mode, access modes sorted, as
// Harvester's controller normalises them before comparing, so it finds nothing to change.
func TestClaimPropertySetsInHarvesterOrder(t *testing.T) {
	m, err := ParseAccessModes(`{"Filesystem":["ReadWriteOnce","ReadWriteMany"],"Block":["ReadWriteOnce","ReadOnlyMany","ReadWriteMany"]}`)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(m.ClaimPropertySets())
	want := `[{"accessModes":["ReadOnlyMany","ReadWriteMany","ReadWriteOnce"],"volumeMode":"Block"},{"accessModes":["ReadWriteMany","ReadWriteOnce"],"volumeMode":"Filesystem"}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestCDIAccessModesOfRealProvisioners: the provisioners of real clusters, as CDI v1.65.0's
// storagecapabilities knows them.
func TestCDIAccessModesOfRealProvisioners(t *testing.T) {
	cases := []struct {
		provisioner string
		params      map[string]string
		known       bool
	}{
		{"driver.longhorn.io", map[string]string{"dataEngine": "v2"}, true},
		{"rbd.csi.ceph.com", nil, true},
		{"rook-ceph.rbd.csi.ceph.com", nil, true},
		{"nfs.csi.k8s.io", nil, true},
		{"csi.trident.netapp.io", map[string]string{"backendType": "ontap-san"}, true},
		{"ebs.csi.aws.com", map[string]string{"type": "gp3"}, true},
		{"topolvm.io", nil, true},
		{"kubernetes.io/no-provisioner", nil, true},
		{"lvm.driver.harvesterhci.io", nil, false}, // Harvester's LVM addon: why its mutator adds access modes
		{"local.csi.openebs.io", nil, false},
		{"smb.csi.k8s.io", nil, false},
	}
	for _, c := range cases {
		if got := CDIAccessModes(annotated(c.provisioner, c.params, nil)); (got != "") != c.known {
			t.Errorf("%s: %q, want known=%v", c.provisioner, got, c.known)
		}
	}
}
