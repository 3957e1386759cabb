//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

// Storage classes of the run, one per built-in profile; created by TestRules through the
// webhook (SC-M1 runs on them).
const classes = `
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: e2e-longhorn-v2}
provisioner: driver.longhorn.io
parameters: {dataEngine: "v2"}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: e2e-lvm}
provisioner: lvm.driver.harvesterhci.io
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: e2e-rbd}
provisioner: rbd.csi.ceph.com
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: e2e-unused}
provisioner: nfs.csi.k8s.io
`

const defaultClass = `
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: e2e-longhorn
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: driver.longhorn.io
parameters: {numberOfReplicas: "3"}
`

func image(name, class, backend string) string {
	m := "apiVersion: harvesterhci.io/v1beta1\nkind: VirtualMachineImage\nmetadata:\n  name: " + name + "\n"
	if class != "" {
		m += "  annotations: {harvesterhci.io/storageClassName: " + class + "}\n"
	}
	m += "spec:\n  displayName: " + name + ".qcow2\n  sourceType: download\n  url: http://mirror.example/" + name + ".qcow2\n"
	if backend != "" {
		m += "  backend: " + backend + "\n"
	}
	return m
}

func pvc(name, class, size string, annotations string) string {
	return "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: " + name + "\n  annotations: {" + annotations + "}\n" +
		"spec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: " + class + "\n  resources: {requests: {storage: " + size + "}}\n"
}

// cdiPVC is the PVC CDI creates for the DataVolume of its name (an image's golden PVC when
// the DataVolume is the image's): owned by that DataVolume, with CDI's labels.
func cdiPVC(name, class, size string) string {
	return "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: " + name + "\n" +
		"  labels: {app: containerized-data-importer, app.kubernetes.io/component: storage, app.kubernetes.io/managed-by: cdi-controller}\n" +
		"  ownerReferences: [{apiVersion: cdi.kubevirt.io/v1beta1, kind: DataVolume, name: " + name + ", uid: 0c1d2e3f-0000-4000-8000-0000000000aa, controller: true, blockOwnerDeletion: true}]\n" +
		"spec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: " + class + "\n  resources: {requests: {storage: " + size + "}}\n"
}

// TestRules exercises every rule of SPEC §4 through a real API server: each is seen to
// allow (or mutate, with the result read back from the API server) and to deny.
func TestRules(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()

	t.Run("IMG-M1 denies an image without a class when the cluster has no default class", func(t *testing.T) {
		expectDenied(t, "IMG-M1", func(dry bool) error { _, err := create(t, obj(t, ns, image("no-class", "", "")), dry); return err })
	})

	t.Run("SC-M1 adds migratable and the clone strategy to a new Longhorn v2 class", func(t *testing.T) {
		for _, doc := range strings.Split(classes, "---") {
			if _, err := create(t, obj(t, "", doc), false); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := create(t, obj(t, "", defaultClass), false); err != nil {
			t.Fatal(err)
		}
		v2 := get(t, "StorageClass", "", "e2e-longhorn-v2")
		if str(v2, "parameters", "migratable") != "true" || v2.GetAnnotations()["cdi.kubevirt.io/clone-strategy"] != "copy" {
			t.Errorf("longhorn-v2 class = %v", v2.Object)
		}
		if l := get(t, "StorageClass", "", "e2e-longhorn"); len(l.GetAnnotations()) != 1 || str(l, "parameters", "migratable") != "" {
			t.Errorf("a Longhorn v1 class got defaults: %v", l.Object)
		}
	})
	t.Run("SC-V1 denies an unknown clone strategy", func(t *testing.T) {
		bad := obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: e2e-bad\n  annotations: {cdi.kubevirt.io/clone-strategy: rsync}\nprovisioner: nfs.csi.k8s.io\n")
		expectDenied(t, "SC-V1", func(dry bool) error { _, err := create(t, bad, dry); return err })
	})

	t.Run("SC-V3 denies invalid per-class CDI settings on create and update, and warns where CDI has no access modes", func(t *testing.T) {
		class := func(name, annotations, provisioner string) *unstructured.Unstructured {
			return obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: "+name+"\n  annotations: "+annotations+"\nprovisioner: "+provisioner+"\n")
		}
		for _, c := range []struct{ name, annotations string }{
			{"e2e-sc3-clone", `{cdi.harvesterhci.io/storageProfileCloneStrategy: rsync}`},
			{"e2e-sc3-snap", `{cdi.harvesterhci.io/storageProfileVolumeSnapshotClass: no-such-class}`},
			{"e2e-sc3-modes", `{cdi.harvesterhci.io/storageProfileVolumeModeAccessModes: '{"Block":["RWO"]}'}`},
			{"e2e-sc3-overhead", `{cdi.harvesterhci.io/filesystemOverhead: "1.5"}`},
			{"e2e-sc3-two", `{cdi.harvesterhci.io/storageProfileCloneStrategy: copy, cdi.kubevirt.io/clone-strategy: csi-clone}`},
		} {
			expectDenied(t, "SC-V3", func(dry bool) error {
				_, err := create(t, class(c.name, c.annotations, "rbd.csi.ceph.com"), dry)
				return err
			})
		}
		mark := suite.warnings.mark()
		vendor := class("e2e-sc3-vendor", `{}`, "iscsi.csi.vendor.example.com")
		if _, err := create(t, vendor, false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = suite.dyn.Resource(gvrs["StorageClass"]).Delete(ctx, "e2e-sc3-vendor", metav1.DeleteOptions{})
		})
		if w := strings.Join(suite.warnings.since(mark), "\n"); !strings.Contains(w, "[SC-V3]") || !strings.Contains(w, "CDI has no built-in access modes") {
			t.Errorf("no SC-V3 warning about access modes reached the client: %q", w)
		}
		// A day-2 change through the API server is checked too.
		got := get(t, "StorageClass", "", "e2e-sc3-vendor")
		got.SetAnnotations(map[string]string{"cdi.harvesterhci.io/filesystemOverhead": "0.0555"})
		expectDenied(t, "SC-V3", func(dry bool) error { _, err := update(t, got, dry); return err })
		got.SetAnnotations(map[string]string{"cdi.harvesterhci.io/storageProfileVolumeModeAccessModes": `{"Block":["ReadWriteOnce"]}`, "cdi.harvesterhci.io/filesystemOverhead": "0.055"})
		if _, err := update(t, got, false); err != nil {
			t.Errorf("valid settings refused: %v", err)
		}
	})
	t.Run("IMG-M1 fills the default class and IMG-M2 keeps backingimage on Longhorn v1", func(t *testing.T) {
		got := expectCreated(t, obj(t, ns, image("on-default", "", "")), func(u *unstructured.Unstructured) bool {
			return u.GetAnnotations()["harvesterhci.io/storageClassName"] == "e2e-longhorn"
		})
		if str(got, "spec", "targetStorageClassName") != "e2e-longhorn" || str(got, "spec", "backend") != "backingimage" {
			t.Errorf("image = %v", got.Object)
		}
	})
	t.Run("IMG-M2 changes the CRD-defaulted backingimage to cdi on an RBD class, with a warning", func(t *testing.T) {
		mark := suite.warnings.mark()
		got := expectCreated(t, obj(t, ns, image("on-rbd", "e2e-rbd", "")), func(u *unstructured.Unstructured) bool {
			return str(u, "spec", "backend") == "cdi"
		})
		if str(got, "spec", "targetStorageClassName") != "e2e-rbd" {
			t.Errorf("image = %v", got.Object)
		}
		if w := strings.Join(suite.warnings.since(mark), "\n"); !strings.Contains(w, "[IMG-M2]") {
			t.Errorf("no IMG-M2 warning reached the client: %q", w)
		}
	})
	t.Run("IMG-V1 denies differing annotation and spec", func(t *testing.T) {
		u := obj(t, ns, image("differ", "e2e-rbd", ""))
		_ = unstructured.SetNestedField(u.Object, "e2e-lvm", "spec", "targetStorageClassName")
		expectDenied(t, "IMG-V1", func(dry bool) error { _, err := create(t, u, dry); return err })
	})
	t.Run("IMG-V2 denies a class that does not exist", func(t *testing.T) {
		expectDenied(t, "IMG-V2", func(dry bool) error {
			_, err := create(t, obj(t, ns, image("nowhere", "no-such-class", "")), dry)
			return err
		})
	})
	// IMG-V3's denial (backingimage on a class of CDI volumes) cannot reach the API server's
	// validating phase: IMG-M2 changes such a backend to cdi first. Its fixtures show it.
	t.Run("IMG-V3 admits backend cdi on Longhorn v1, as Harvester's upgrade images use it", func(t *testing.T) {
		got := expectCreated(t, obj(t, ns, image("cdi-on-v1", "e2e-longhorn", "cdi")), anyObject)
		if str(got, "spec", "backend") != "cdi" {
			t.Errorf("image = %v", got.Object)
		}
	})
	t.Run("IMG-V4 denies changing the url and allows changing the display name", func(t *testing.T) {
		img := get(t, "VirtualMachineImage", ns, "on-rbd")
		_ = unstructured.SetNestedField(img.Object, "other.qcow2", "spec", "displayName")
		if _, err := update(t, img, false); err != nil {
			t.Fatalf("display name change: %v", err)
		}
		img = get(t, "VirtualMachineImage", ns, "on-rbd")
		_ = unstructured.SetNestedField(img.Object, "http://elsewhere/x.qcow2", "spec", "url")
		expectDenied(t, "IMG-V4", func(dry bool) error { _, err := update(t, img, dry); return err })
	})

	// The golden image: cdi on RBD with a 10Gi virtual size (the CRD has no status
	// subresource here, so the status is stored as sent).
	golden := obj(t, ns, image("golden", "e2e-rbd", "cdi"))
	_ = unstructured.SetNestedField(golden.Object, map[string]any{"size": int64(1 << 30), "virtualSize": int64(10 << 30)}, "status")
	goldenImg, err := create(t, golden, false)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("PVC-M1 marks the golden PVC", func(t *testing.T) {
		expectCreated(t, obj(t, ns, cdiPVC("golden", "e2e-rbd", "10Gi")), func(u *unstructured.Unstructured) bool {
			return u.GetAnnotations()["harvesterhci.io/goldenImage"] == "true"
		})
		if other, err := create(t, obj(t, ns, pvc("prime-1234", "e2e-rbd", "10Gi", "")), false); err != nil || len(other.GetAnnotations()) != 0 {
			t.Errorf("a CDI prime PVC was touched: %v %v", err, other)
		}
	})
	t.Run("PVC-V1 denies changing the golden mark, PVC-M1 sets a dropped one again, a label is fine", func(t *testing.T) {
		p := get(t, "PersistentVolumeClaim", ns, "golden")
		p.SetLabels(map[string]string{"team": "images"})
		if _, err := update(t, p, false); err != nil {
			t.Fatalf("label change: %v", err)
		}
		p = get(t, "PersistentVolumeClaim", ns, "golden")
		p.SetAnnotations(map[string]string{"harvesterhci.io/goldenImage": "false"})
		expectDenied(t, "PVC-V1", func(dry bool) error { _, err := update(t, p, dry); return err })
		p.SetAnnotations(nil) // a re-applied manifest without the mark
		if got, err := update(t, p, true); err != nil || got.GetAnnotations()["harvesterhci.io/goldenImage"] != "true" {
			t.Errorf("an update dropping the mark: %v, annotations %v, want the mark set again", err, got.GetAnnotations())
		}
	})
	t.Run("PVC-V2 denies deleting the golden PVC, except to the garbage collector", func(t *testing.T) {
		expectDenied(t, "PVC-V2", func(dry bool) error { return remove(t, "PersistentVolumeClaim", ns, "golden", "", dry) })
		if err := remove(t, "PersistentVolumeClaim", ns, "golden", gcUser, true); err != nil {
			t.Errorf("dry-run delete by the garbage collector: %v", err)
		}
	})
	t.Run("PVC-V3 denies a disk smaller than the image and allows one as large", func(t *testing.T) {
		ref := "harvesterhci.io/imageId: " + ns + "/golden"
		expectDenied(t, "PVC-V3", func(dry bool) error {
			_, err := create(t, obj(t, ns, pvc("disk-small", "e2e-rbd", "5Gi", ref)), dry)
			return err
		})
		if _, err := create(t, obj(t, ns, pvc("disk-ok", "e2e-rbd", "10Gi", ref)), false); err != nil {
			t.Errorf("10Gi disk: %v", err)
		}
	})
	t.Run("IMG-V5 denies exporting a PVC that does not exist and allows an idle one", func(t *testing.T) {
		export := func(name, pvcName string) *unstructured.Unstructured {
			u := obj(t, ns, image(name, "e2e-rbd", ""))
			spec := map[string]any{"displayName": name, "sourceType": "export-from-volume", "pvcNamespace": ns, "pvcName": pvcName}
			_ = unstructured.SetNestedField(u.Object, spec, "spec")
			return u
		}
		expectDenied(t, "IMG-V5", func(dry bool) error { _, err := create(t, export("export-missing", "nope"), dry); return err })
		expectCreated(t, export("export-ok", "disk-ok"), anyObject)
	})

	vm := func(name, annotations, volumes string) *unstructured.Unstructured {
		return obj(t, ns, "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata:\n  name: "+name+"\n  annotations: {"+annotations+"}\n"+
			"spec:\n  runStrategy: Halted\n  template:\n    spec:\n      domain: {devices: {}}\n      volumes: ["+volumes+"]\n")
	}
	vct := func(size string) string {
		return `harvesterhci.io/volumeClaimTemplates: '[{"metadata":{"name":"root","annotations":{"harvesterhci.io/imageId":"` + ns +
			`/golden"}},"spec":{"accessModes":["ReadWriteMany"],"storageClassName":"e2e-rbd","resources":{"requests":{"storage":"` + size + `"}}}}]'`
	}
	t.Run("VM-V1 denies a root disk smaller than the image", func(t *testing.T) {
		expectDenied(t, "VM-V1", func(dry bool) error { _, err := create(t, vm("vm-small", vct("5Gi"), ""), dry); return err })
		if _, err := create(t, vm("vm-ok", vct("20Gi"), ""), false); err != nil {
			t.Errorf("20Gi root disk: %v", err)
		}
	})
	t.Run("VM-V2 denies the golden PVC as a volume and as a hotplug through the status subresource", func(t *testing.T) {
		expectDenied(t, "VM-V2", func(dry bool) error {
			_, err := create(t, vm("vm-golden", "", "{name: d, persistentVolumeClaim: {claimName: golden}}"), dry)
			return err
		})
		imported := vm("vm-imported", "", "{name: d, persistentVolumeClaim: {claimName: golden}}")
		imported.SetLabels(map[string]string{"migration.harvesterhci.io/imported": "true"})
		if _, err := create(t, imported, false); err != nil {
			t.Errorf("imported VM: %v", err)
		}
		cur := get(t, "VirtualMachine", ns, "vm-ok")
		req := map[string]any{"addVolumeOptions": map[string]any{"name": "hot", "disk": map[string]any{"name": "hot", "disk": map[string]any{"bus": "scsi"}},
			"volumeSource": map[string]any{"persistentVolumeClaim": map[string]any{"claimName": "golden", "hotpluggable": true}}}}
		_ = unstructured.SetNestedSlice(cur.Object, []any{req}, "status", "volumeRequests")
		expectDenied(t, "VM-V2", func(dry bool) error {
			_, err := client(t, "VirtualMachine", ns, "").UpdateStatus(ctx, cur.DeepCopy(), metav1.UpdateOptions{DryRun: dryRun(dry)})
			return err
		})
	})

	dv := func(name, class, size, srcName string) *unstructured.Unstructured {
		return obj(t, ns, "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: "+name+"}\n"+
			"spec:\n  source: {pvc: {namespace: "+ns+", name: "+srcName+"}}\n  storage:\n    storageClassName: "+class+"\n    resources: {requests: {storage: "+size+"}}\n")
	}
	t.Run("DV-M1 records the LVM clone strategy and DV-M2 asks golden DataVolumes to bind at once", func(t *testing.T) {
		got := expectCreated(t, dv("clone-to-lvm", "e2e-lvm", "20Gi", "disk-ok"), func(u *unstructured.Unstructured) bool {
			return u.GetAnnotations()["cdi.kubevirt.io/cloneType"] == "snapshot"
		})
		if _, asked := got.GetAnnotations()["cdi.kubevirt.io/storage.bind.immediate.requested"]; asked {
			t.Errorf("a non-golden DataVolume asked for immediate binding: %v", got.GetAnnotations())
		}
		lvmImg, err := create(t, obj(t, ns, image("golden-lvm", "e2e-lvm", "cdi")), false)
		if err != nil {
			t.Fatal(err)
		}
		gdv := obj(t, ns, "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: golden-lvm}\n"+
			"spec:\n  source: {http: {url: http://mirror.example/golden-lvm.qcow2}}\n  storage:\n    storageClassName: e2e-lvm\n")
		gdv.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "harvesterhci.io/v1beta1", Kind: "VirtualMachineImage", Name: "golden-lvm", UID: lvmImg.GetUID(), BlockOwnerDeletion: ptr.To(true)}})
		expectCreated(t, gdv, func(u *unstructured.Unstructured) bool {
			return u.GetAnnotations()["cdi.kubevirt.io/storage.bind.immediate.requested"] == "true"
		})
	})
	t.Run("DV-M1 records a class's own clone-strategy annotation over its profile's", func(t *testing.T) {
		lvmCopy := obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: e2e-lvm-copy\n"+
			"  annotations: {cdi.harvesterhci.io/storageProfileCloneStrategy: copy}\nprovisioner: lvm.driver.harvesterhci.io\nparameters: {vgName: vg1}\n")
		sc, err := create(t, lvmCopy, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = suite.dyn.Resource(gvrs["StorageClass"]).Delete(ctx, "e2e-lvm-copy", metav1.DeleteOptions{})
		})
		if sc.GetAnnotations()["cdi.kubevirt.io/clone-strategy"] != "copy" {
			t.Errorf("SC-M1 did not give CDI's key the class's value: %v", sc.GetAnnotations())
		}
		expectCreated(t, dv("clone-to-lvm-copy", "e2e-lvm-copy", "20Gi", "disk-ok"), func(u *unstructured.Unstructured) bool {
			return u.GetAnnotations()["cdi.kubevirt.io/cloneType"] == "copy"
		})
	})
	t.Run("DV-V1 denies a clone of the golden PVC smaller than the image", func(t *testing.T) {
		expectDenied(t, "DV-V1", func(dry bool) error {
			_, err := create(t, dv("clone-small", "e2e-rbd", "5Gi", "golden"), dry)
			return err
		})
		if _, err := create(t, dv("clone-ok", "e2e-rbd", "10Gi", "golden"), false); err != nil {
			t.Errorf("10Gi clone: %v", err)
		}
	})
	t.Run("DV-V2 denies deleting the image's DataVolume, except to the garbage collector", func(t *testing.T) {
		owned := obj(t, ns, "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: golden}\nspec:\n  source: {http: {url: http://x/y}}\n  storage: {storageClassName: e2e-rbd}\n")
		owned.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "harvesterhci.io/v1beta1", Kind: "VirtualMachineImage", Name: "golden", UID: goldenImg.GetUID()}})
		if _, err := create(t, owned, false); err != nil {
			t.Fatal(err)
		}
		expectDenied(t, "DV-V2", func(dry bool) error { return remove(t, "DataVolume", ns, "golden", "", dry) })
		if err := remove(t, "DataVolume", ns, "golden", gcUser, true); err != nil {
			t.Errorf("dry-run delete by the garbage collector: %v", err)
		}
	})
	t.Run("SP-M1 fills the StorageProfile and keeps the administrator's strategy", func(t *testing.T) {
		got := expectCreated(t, obj(t, "", "apiVersion: cdi.kubevirt.io/v1beta1\nkind: StorageProfile\nmetadata: {name: e2e-lvm}\nspec: {}\n"),
			func(u *unstructured.Unstructured) bool { return str(u, "spec", "cloneStrategy") == "snapshot" })
		if str(got, "spec", "snapshotClass") != "lvm-snapshot" {
			t.Errorf("lvm profile = %v", got.Object)
		}
		got = expectCreated(t, obj(t, "", "apiVersion: cdi.kubevirt.io/v1beta1\nkind: StorageProfile\nmetadata: {name: e2e-longhorn-v2}\nspec: {cloneStrategy: csi-clone}\n"),
			func(u *unstructured.Unstructured) bool { return str(u, "spec", "snapshotClass") == "longhorn-snapshot" })
		if str(got, "spec", "cloneStrategy") != "csi-clone" {
			t.Errorf("the administrator's strategy was overwritten: %v", got.Object)
		}
	})
	t.Run("SC-V2 denies deleting a class that images use and allows an unused one", func(t *testing.T) {
		expectDenied(t, "SC-V2", func(dry bool) error { return remove(t, "StorageClass", "", "e2e-rbd", "", dry) })
		if err := remove(t, "StorageClass", "", "e2e-unused", "", false); err != nil {
			t.Errorf("delete unused class: %v", err)
		}
	})
	t.Run("VS-V1 denies a snapshot of a Longhorn v2 volume and allows one of Longhorn v1", func(t *testing.T) {
		for _, p := range []string{pvc("data-v2", "e2e-longhorn-v2", "1Gi", ""), pvc("data-v1", "e2e-longhorn", "1Gi", "")} {
			if _, err := create(t, obj(t, ns, p), false); err != nil {
				t.Fatal(err)
			}
		}
		snap := func(name, claim string) *unstructured.Unstructured {
			return obj(t, ns, "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: "+name+"}\nspec: {source: {persistentVolumeClaimName: "+claim+"}}\n")
		}
		expectDenied(t, "VS-V1", func(dry bool) error { _, err := create(t, snap("snap-v2", "data-v2"), dry); return err })
		expectCreated(t, snap("snap-v1", "data-v1"), anyObject)
	})
	t.Run("VMB-V1 denies a backup of an LVM VM and allows its snapshot", func(t *testing.T) {
		if _, err := create(t, obj(t, ns, pvc("lvm-root", "e2e-lvm", "1Gi", "")), false); err != nil {
			t.Fatal(err)
		}
		if _, err := create(t, vm("lvm-vm", "", "{name: root, persistentVolumeClaim: {claimName: lvm-root}}"), false); err != nil {
			t.Fatal(err)
		}
		backup := func(name, kind string) *unstructured.Unstructured {
			return obj(t, ns, "apiVersion: harvesterhci.io/v1beta1\nkind: VirtualMachineBackup\nmetadata: {name: "+name+"}\n"+
				"spec: {type: "+kind+", source: {apiGroup: kubevirt.io, kind: VirtualMachine, name: lvm-vm}}\n")
		}
		expectDenied(t, "VMB-V1", func(dry bool) error { _, err := create(t, backup("b1", "backup"), dry); return err })
		expectCreated(t, backup("s1", "snapshot"), anyObject)
	})
	t.Run("a dry run answers like the real request and stores nothing", func(t *testing.T) {
		got, err := create(t, obj(t, ns, image("dry", "e2e-lvm", "")), true)
		if err != nil || str(got, "spec", "backend") != "cdi" {
			t.Fatalf("dry-run create: %v %v", err, got)
		}
		if _, err := client(t, "VirtualMachineImage", ns, "").Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a dry run stored the image: %v", err)
		}
	})
}
