//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// reapplyCase is a manifest of a kind a mutator touches, and the fields the service owns on
// it: their values after the create must survive every re-apply.
type reapplyCase struct {
	name     string
	manifest func(ns, name string) string // name is unique per run and combination
	owned    [][]string                   // paths of the fields a mutator sets
	// corrects is the field the manifest states and a mutator corrects, if any
	corrects string
}

var reapplyCases = []reapplyCase{
	{name: "image stating the backingimage that IMG-M2 corrects, without the annotation IMG-M1 adds",
		manifest: func(ns, name string) string {
			return "apiVersion: harvesterhci.io/v1beta1\nkind: VirtualMachineImage\nmetadata: {name: " + name + ", namespace: " + ns + "}\n" +
				"spec: {displayName: d.qcow2, sourceType: download, url: \"http://mirror.example/d.qcow2\", backend: backingimage, targetStorageClassName: ra-lvm}\n"
		},
		owned: [][]string{{"spec", "backend"}, {"metadata", "annotations", "harvesterhci.io/storageClassName"}}, corrects: ".spec.backend"},
	{name: "image omitting every defaulted field (class, backend)",
		manifest: func(ns, name string) string {
			return "apiVersion: harvesterhci.io/v1beta1\nkind: VirtualMachineImage\nmetadata: {name: " + name + ", namespace: " + ns + "}\n" +
				"spec: {displayName: d.qcow2, sourceType: download, url: \"http://mirror.example/d.qcow2\"}\n"
		},
		owned: [][]string{{"spec", "backend"}, {"spec", "targetStorageClassName"}, {"metadata", "annotations", "harvesterhci.io/storageClassName"}}},
	{name: "CDI's PVC of a cdi image's DataVolume, without the golden mark",
		manifest: func(ns, name string) string {
			return strings.Replace(cdiPVC("ra-golden", "ra-lvm", "10Gi"), "name: ra-golden\n", "name: ra-golden\n  namespace: "+ns+"\n", 1)
		},
		owned: [][]string{{"metadata", "annotations", "harvesterhci.io/goldenImage"}}},
	{name: "an image's DataVolume cloning a PVC into a WaitForFirstConsumer LVM class, without clone type or binding request",
		manifest: func(ns, name string) string {
			return "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\n" +
				"  ownerReferences: [{apiVersion: harvesterhci.io/v1beta1, kind: VirtualMachineImage, name: " + name + ", uid: 4e9a6f41-0000-4000-8000-0000000000ff}]\n" +
				"spec: {source: {pvc: {namespace: " + ns + ", name: src}}, storage: {storageClassName: ra-lvm, resources: {requests: {storage: 1Gi}}}}\n"
		},
		owned: [][]string{{"metadata", "annotations", "cdi.kubevirt.io/cloneType"}, {"metadata", "annotations", "cdi.kubevirt.io/storage.bind.immediate.requested"}}},
	{name: "Longhorn v2 StorageClass without migratable or the clone strategy",
		manifest: func(_, name string) string {
			return "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: " + name + "}\nprovisioner: driver.longhorn.io\nparameters: {dataEngine: v2}\n"
		},
		owned: [][]string{{"parameters", "migratable"}, {"metadata", "annotations", "cdi.kubevirt.io/clone-strategy"}}},
	{name: "StorageProfile with an empty spec, as CDI creates it",
		manifest: func(_, name string) string {
			return "apiVersion: cdi.kubevirt.io/v1beta1\nkind: StorageProfile\nmetadata: {name: " + name + "}\nspec: {}\n"
		},
		owned: [][]string{{"spec", "cloneStrategy"}, {"spec", "snapshotClass"}}},
}

// TestReapplyMatrix: for every kind a mutator touches, an object created by kubectl create,
// client-side apply and server-side apply is re-applied twice by each of client-side apply,
// server-side apply and kubectl replace of the original manifest (SPEC §5.8). Every
// re-apply is admitted and the fields the service set keep their values; then
// `kubectl diff --server-side` of the manifest shows nothing (beyond kubectl's own
// last-applied bookkeeping, see TestReapplyDiffBaseline), and `storage-webhook check
// --operation UPDATE` of the manifest against the live object answers as the API server did.
//
// One combination meets a conflict that is server-side apply's, not the service's: a
// manifest stating a value a mutator corrects (backend backingimage on an LVM class), applied
// server-side over an object that another field manager (kubectl create, client-side apply)
// wrote with that value. The other manager owns the field and the live value differs, so
// the apply reports a conflict on exactly that field; with --force-conflicts (as Flux and
// Argo CD's server-side apply do) it is admitted, and re-applies after it report none.
func TestReapplyMatrix(t *testing.T) {
	ensure(t, obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: ra-lvm}\nprovisioner: lvm.driver.harvesterhci.io\nvolumeBindingMode: WaitForFirstConsumer\n"))
	defaultClassFor(t, "ra-default")
	dir := t.TempDir()
	creates := []struct {
		how  string
		args []string
	}{{"create", []string{"create"}}, {"client-side apply", []string{"apply"}}, {"server-side apply", []string{"apply", "--server-side"}}}
	reapplies := []struct {
		how  string
		args []string
	}{{"client-side apply", []string{"apply"}}, {"server-side apply", []string{"apply", "--server-side"}}, {"replace", []string{"replace"}}}
	n := 0
	for _, c := range reapplyCases {
		for _, cr := range creates {
			for _, re := range reapplies {
				n++
				name := fmt.Sprintf("ra-%d", n)
				t.Run(fmt.Sprintf("%s/created by %s/re-applied by %s", c.name, cr.how, re.how), func(t *testing.T) {
					t.Parallel() // each combination has objects and a namespace of its own
					// A namespace each: PVC-M1 marks only the PVC named like its image.
					ns := newNamespace(t)
					if strings.Contains(c.name, "golden") {
						name = "ra-golden"
						expectCreated(t, obj(t, ns, image(name, "ra-lvm", "cdi")), anyObject)
					}
					manifest := c.manifest(ns, name)
					u := obj(t, "", manifest)
					if u.GetKind() == "StorageProfile" { // named like its class
						ensure(t, obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: "+name+"}\nprovisioner: lvm.driver.harvesterhci.io\n"))
					}
					file := filepath.Join(dir, name+"-"+ns+".yaml")
					if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
						t.Fatal(err)
					}
					retry(t, func() error { // the webhook's caches may not hold the image and classes yet
						if out, err := kubectl(append(cr.args, "-f", file)...); err != nil {
							return fmt.Errorf("%v: %s", err, out)
						}
						return nil
					})
					want := ownedValues(t, get(t, u.GetKind(), u.GetNamespace(), name), c.owned)
					// Server-side apply's own conflict (see above): expected exactly there.
					conflict := c.corrects != "" && re.how == "server-side apply" && cr.how != "server-side apply"
					for i := range 2 {
						out, err := kubectl(append(re.args, "-f", file)...)
						if conflict && i == 0 {
							if err == nil || !strings.Contains(out, "Apply failed with 1 conflict") || !strings.Contains(out, c.corrects) {
								t.Fatalf("want server-side apply's conflict on %s alone, got %v:\n%s", c.corrects, err, out)
							}
							out, err = kubectl(append(re.args, "--force-conflicts", "-f", file)...)
						}
						if err != nil {
							t.Fatalf("re-apply %d refused: %v\n%s", i+1, err, out)
						}
						if got := ownedValues(t, get(t, u.GetKind(), u.GetNamespace(), name), c.owned); got != want {
							t.Fatalf("after re-apply %d the service's fields are %s, want %s", i+1, got, want)
						}
					}
					diffArgs := []string{"diff", "--server-side"}
					if c.corrects != "" {
						// the manager that applies the manifest next takes the corrected field
						diffArgs = append(diffArgs, "--force-conflicts")
					}
					if out, err := kubectl(append(diffArgs, "-f", file)...); err != nil && len(changedLines(out)) > 0 {
						t.Errorf("kubectl diff --server-side is not empty (%v):\n%s", err, out)
					}
					// check answers the same re-apply (the manifest as a replace) as the API server did.
					results, _ := checkJSON(t, "--operation", "UPDATE", file)
					checked := &unstructured.Unstructured{Object: results[0].Object}
					if !results[0].Allowed || ownedValues(t, checked, c.owned) != want {
						t.Errorf("check --operation UPDATE answers allowed %v with %s, the API server admitted it with %s: %s",
							results[0].Allowed, ownedValues(t, checked, c.owned), want, results[0].Message)
					}
				})
			}
		}
	}
}

// defaultClassFor makes a Longhorn v1 class the cluster's default for the test, and no
// longer the default afterwards: TestRules needs a cluster without one to see IMG-M1 deny.
func defaultClassFor(t *testing.T, name string) {
	t.Helper()
	ensure(t, obj(t, "", strings.Replace(defaultClass, "name: e2e-longhorn", "name: "+name, 1)))
	t.Cleanup(func() {
		u := get(t, "StorageClass", "", name)
		u.SetAnnotations(map[string]string{"storageclass.kubernetes.io/is-default-class": "false"})
		if _, err := update(t, u, false); err != nil {
			t.Errorf("un-default %s: %v", name, err)
		}
	})
}

// TestReapplyRealChangesDenied: re-applying a manifest that really changes an image's class
// or backend is still denied (IMG-V4), by every way of applying it.
func TestReapplyRealChangesDenied(t *testing.T) {
	ns := newNamespace(t)
	ensure(t, obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: ra-lvm}\nprovisioner: lvm.driver.harvesterhci.io\nvolumeBindingMode: WaitForFirstConsumer\n"))
	ensure(t, obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: ra-rbd}\nprovisioner: rbd.csi.ceph.com\n"))
	ensure(t, obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: ra-longhorn}\nprovisioner: driver.longhorn.io\n"))
	dir := t.TempDir()
	write := func(name, spec string) string {
		file := filepath.Join(dir, name+".yaml")
		m := "apiVersion: harvesterhci.io/v1beta1\nkind: VirtualMachineImage\nmetadata: {name: " + name + ", namespace: " + ns + "}\n" +
			"spec: {displayName: d.qcow2, sourceType: download, url: \"http://mirror.example/d.qcow2\", " + spec + "}\n"
		if err := os.WriteFile(file, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	cases := []struct{ name, created, changed, field string }{
		{"another storage class", "targetStorageClassName: ra-lvm", "targetStorageClassName: ra-rbd", "spec.targetStorageClassName"},
		{"another backend on Longhorn v1", "targetStorageClassName: ra-longhorn, backend: backingimage", "targetStorageClassName: ra-longhorn, backend: cdi", "spec.backend"},
	}
	for _, c := range cases {
		for _, how := range [][]string{{"apply"}, {"apply", "--server-side", "--force-conflicts"}, {"replace"}} {
			t.Run(c.name+"/"+strings.Join(how, " "), func(t *testing.T) {
				name := fmt.Sprintf("ra-change-%d", nsCounter.Add(1))
				retry(t, func() error {
					if out, err := kubectl("apply", "--server-side", "-f", write(name, c.created)); err != nil {
						return fmt.Errorf("%v: %s", err, out)
					}
					return nil
				})
				out, err := kubectl(append(how, "-f", write(name, c.changed))...)
				if err == nil || !strings.Contains(out, "[IMG-V4]") || !strings.Contains(out, c.field+" is immutable") {
					t.Errorf("want IMG-V4 to deny the change of %s, got %v:\n%s", c.field, err, out)
				}
			})
		}
	}
}

// TestReapplyDiffBaseline: the one difference `kubectl diff --server-side` shows for an
// object last written by client-side apply is kubectl's own last-applied annotation (its
// server-side form leaves out the empty annotations map the client-side form has), with no
// webhook involved: a ConfigMap shows the same. TestReapplyMatrix leaves those lines out.
func TestReapplyDiffBaseline(t *testing.T) {
	ns := newNamespace(t)
	file := filepath.Join(t.TempDir(), "cm.yaml")
	if err := os.WriteFile(file, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: baseline, namespace: "+ns+"}\ndata: {a: b}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := kubectl("apply", "-f", file); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	out, err := kubectl("diff", "--server-side", "-f", file)
	if err == nil || !strings.Contains(out, "last-applied-configuration") {
		t.Fatalf("kubectl no longer rewrites last-applied on a server-side diff (%v): drop changedLines' filter\n%s", err, out)
	}
	if lines := changedLines(out); len(lines) != 0 {
		t.Errorf("a ConfigMap's diff has more than the last-applied annotation: %q", lines)
	}
}

// changedLines is the +/- lines of a unified diff, without the file headers and without
// kubectl's last-applied annotation value (a line holding the whole object as JSON).
func changedLines(diff string) []string {
	var out []string
	for _, l := range strings.Split(diff, "\n") {
		switch {
		case strings.HasPrefix(l, "+++ "), strings.HasPrefix(l, "--- "):
		case !strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "-"):
		case strings.HasPrefix(strings.TrimSpace(l[1:]), `{"apiVersion":`):
		default:
			out = append(out, l)
		}
	}
	return out
}

// ownedValues renders the values at paths, to compare before and after.
func ownedValues(t *testing.T, u *unstructured.Unstructured, paths [][]string) string {
	t.Helper()
	var parts []string
	for _, p := range paths {
		v, found, _ := unstructured.NestedFieldNoCopy(u.Object, p...)
		if !found {
			t.Fatalf("%s is not set: %v", strings.Join(p, "."), u.Object)
		}
		parts = append(parts, fmt.Sprintf("%s=%v", strings.Join(p, "."), v))
	}
	return strings.Join(parts, ", ")
}
