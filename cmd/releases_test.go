package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hcistorage/storage-webhook/cluster"
)

// TestCheckAnswersAsHarvesterOnEachRelease: on the same requests (testdata/check/releases.yaml)
// and the same cluster view (testdata/cluster), `check` allows and denies what Harvester's
// own webhooks (and, for VS-V1 on v1.5/v1.6, its documented limits) do on each release,
// whether the release comes from the view's server-version Setting or from
// --harvester-version; and a view without Harvester's Settings gets the newest release's
// rules with Harvester's default csi-driver-config and no backup target.
func TestCheckAnswersAsHarvesterOnEachRelease(t *testing.T) {
	type answer struct{ v16, v18, v19, none bool } // allowed on v1.6, v1.8, v1.9, without Harvester
	want := map[string]answer{
		// VS-V1: Longhorn v2 volume snapshots, from v1.7 (5940cb6c).
		"snap-longhorn-v2": {false, true, true, true},
		// VMB-V1: ability matrix {false,false} until v1.6, {true,true} on v1.7/v1.8
		// (snapshot.go), refused from v1.9 (a857860e); no backup target without Harvester.
		"backup-longhorn-v2-vm":   {false, true, false, false},
		"snapshot-longhorn-v2-vm": {false, true, false, false},
		// Third party: the matrix default {snapshot: true, backup: false} until v1.8; from
		// v1.9 (50ba20f1) csi-driver-config alone decides, and testdata/cluster's names
		// lvm's classes. Harvester's default csi-driver-config names only Longhorn.
		"backup-lvm-vm":   {false, false, true, false},
		"snapshot-lvm-vm": {true, true, true, false},
		// Longhorn v1 is {true,true} on every release; without Harvester no backup target.
		"backup-longhorn-v1-vm": {true, true, true, false},
		// Shareable disks, from v1.9 (ba08b5d8): no VM snapshot, no volume snapshot, and a
		// shareable disk needs a ReadWriteMany volume.
		"snapshot-vm-with-shareable-disk": {true, true, false, false},
		"snap-shareable-pvc":              {true, true, false, false},
		"vm-shareable-disk-on-rwo-volume": {true, true, false, false},
		// IMG-V7, from v1.9 (89116a65).
		"image-display-name-not-a-label-value": {true, true, false, false},
		// SC-M1 never denies; what it writes is checked below.
		"new-longhorn-v2": {true, true, true, true},
		// VM-V4 holds on every release (Harvester master 02043a37).
		"vm-image-id-not-the-classes-image": {false, false, false, false},
	}
	clone := map[string]string{"v1.6": "copy", "v1.8": "copy", "v1.9": "csi-clone", "none": "csi-clone"}

	noHarvester := viewWith(t, func(u *unstructured.Unstructured) bool { return u.GetKind() != "Setting" })
	serverVersion := func(v string) string {
		return viewWith(t, func(u *unstructured.Unstructured) bool {
			if u.GetKind() == "Setting" && u.GetName() == "server-version" {
				u.Object["value"] = v
			}
			return true
		})
	}

	for _, c := range []struct {
		name string
		args []string
		pick func(answer) bool
	}{
		{"v1.6", []string{"--cluster", "../testdata/cluster"}, func(a answer) bool { return a.v16 }}, // the view's server-version v1.6.1
		{"v1.8", []string{"--cluster", serverVersion("v1.8.2")}, func(a answer) bool { return a.v18 }},
		{"v1.9", []string{"--cluster", serverVersion("v1.9.0-rc6")}, func(a answer) bool { return a.v19 }},
		{"v1.8 pinned", []string{"--cluster", "../testdata/cluster", "--harvester-version", "v1.8.2"}, func(a answer) bool { return a.v18 }},
		{"v1.9 pinned", []string{"--cluster", "../testdata/cluster", "--harvester-version", "v1.9"}, func(a answer) bool { return a.v19 }},
		{"none", []string{"--cluster", noHarvester}, func(a answer) bool { return a.none }},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{"check", "-o", "json"}, c.args...), "../testdata/check/releases.yaml")
			_, out, errOut := run(t, "", args...)
			var results []CheckResult
			if err := json.Unmarshal([]byte(out), &results); err != nil {
				t.Fatalf("%v: %s", err, errOut)
			}
			if len(results) != len(want) {
				t.Fatalf("%d results, want %d", len(results), len(want))
			}
			for _, r := range results {
				a, ok := want[r.Name]
				if !ok {
					t.Fatalf("no expectation for %s", r.Name)
				}
				if r.Allowed != c.pick(a) {
					t.Errorf("%s: allowed = %v, want %v (%s)", r.Name, r.Allowed, c.pick(a), r.Message)
				}
				if r.Name == "new-longhorn-v2" {
					var sc struct {
						Metadata struct {
							Annotations map[string]string `json:"annotations"`
						} `json:"metadata"`
					}
					release := strings.Fields(c.name)[0]
					if err := json.Unmarshal(r.Object, &sc); err != nil || sc.Metadata.Annotations["cdi.kubevirt.io/clone-strategy"] != clone[release] {
						t.Errorf("new Longhorn v2 class on %s = %s, want clone strategy %s", c.name, r.Object, clone[release])
					}
				}
			}
		})
	}
}

// viewWith writes testdata/cluster's objects, each passed through edit (which changes it in
// place, and drops it by returning false), to a folder of the test's and returns the folder.
func viewWith(t *testing.T, edit func(u *unstructured.Unstructured) bool) string {
	t.Helper()
	objs, err := cluster.ReadManifests("../testdata/cluster")
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, u := range objs {
		if !edit(u) {
			continue
		}
		b, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		data = append(append(data, b...), '\n')
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
