//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestHarvesterWritesAdmitted replays, as Harvester's, Longhorn's and CDI's service accounts
// and in the shapes their source writes (Harvester v1.7.3, CDI v1.66.0, Longhorn v1.10.2),
// the storage-path writes Harvester's controllers make, and checks each is admitted with
// only the mutations the rules name; then the same shapes carrying a real violation are
// still denied.
func TestHarvesterWritesAdmitted(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	const sys = "harvester-system"
	if _, err := suite.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sys}}, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	// createAs creates as user, retrying while the webhook's caches catch up, and returns
	// what the API server stored.
	createAs := func(t *testing.T, user, namespace, manifest string, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
		t.Helper()
		return expectCreatedAs(t, user, obj(t, namespace, manifest), ok)
	}
	updateAs := func(t *testing.T, user string, u *unstructured.Unstructured) *unstructured.Unstructured {
		t.Helper()
		got, err := client(t, u.GetKind(), u.GetNamespace(), user).Update(ctx, u, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("%s %s updated as %s: %v", u.GetKind(), u.GetName(), user, err)
		}
		return got
	}

	// Longhorn's setting controller makes longhorn-static: a Longhorn v1 class.
	ensureAs := func(user, manifest string) {
		u := obj(t, "", manifest)
		if _, err := client(t, "StorageClass", "", user).Create(ctx, u, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	ensureAs(longhornUser, "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: longhorn-static}\nprovisioner: driver.longhorn.io\nallowVolumeExpansion: true\nparameters: {staleReplicaTimeout: \"30\"}\n")
	ensureAs(someUser, "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: hv-lvm}\nprovisioner: lvm.driver.harvesterhci.io\nvolumeBindingMode: WaitForFirstConsumer\nparameters: {vgName: vg0}\n")
	ensureAs(someUser, "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: hv-longhorn}\nprovisioner: driver.longhorn.io\nparameters: {numberOfReplicas: \"3\"}\n")
	ensureAs(someUser, "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: hv-longhorn-v2}\nprovisioner: driver.longhorn.io\nparameters: {dataEngine: v2, migratable: \"true\"}\n")

	upgrade := fmt.Sprintf("hvst-upgrade-%s", ns)
	t.Run("the upgrade controller's ISO image: cdi on longhorn-static", func(t *testing.T) {
		img := createAs(t, harvesterUser, sys, `apiVersion: harvesterhci.io/v1beta1
kind: VirtualMachineImage
metadata:
  name: `+upgrade+`
  labels: {harvesterhci.io/upgrade: `+upgrade+`}
  annotations: {harvesterhci.io/os-upgrade-image: "True"}
  ownerReferences: [{apiVersion: harvesterhci.io/v1beta1, kind: Upgrade, name: `+upgrade+`, uid: 9def1496-0000-4000-8000-000000000001}]
spec:
  backend: cdi
  displayName: `+upgrade+`-v1.7.3
  sourceType: download
  pvcName: ""
  pvcNamespace: ""
  url: https://releases.rancher.com/harvester/v1.7.3/harvester-v1.7.3-amd64.iso
  checksum: ""
  storageClassParameters: null
  retry: 3
  targetStorageClassName: longhorn-static
status: {failed: 0}
`, func(u *unstructured.Unstructured) bool {
			return str(u, "spec", "backend") == "cdi" && u.GetAnnotations()["harvesterhci.io/storageClassName"] == "longhorn-static"
		})
		// The controller writes the sizes with a full update, then creates the DataVolume.
		_ = unstructured.SetNestedField(img.Object, map[string]any{"failed": int64(0), "size": int64(6012954624), "virtualSize": int64(6012954624)}, "status")
		img = updateAs(t, harvesterUser, img)
		createAs(t, harvesterUser, sys, `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: `+upgrade+`
  ownerReferences: [{apiVersion: harvesterhci.io/v1beta1, kind: VirtualMachineImage, name: `+upgrade+`, uid: `+string(img.GetUID())+`, blockOwnerDeletion: true}]
spec:
  source: {http: {url: "https://releases.rancher.com/harvester/v1.7.3/harvester-v1.7.3-amd64.iso"}}
  storage: {accessModes: [ReadWriteMany], volumeMode: Filesystem, storageClassName: longhorn-static, resources: {requests: {storage: "6012954624"}}}
`, anyObject)
		// CDI creates the DataVolume's PVC: the golden PVC of a cdi image, marked.
		createAs(t, cdiUser, sys, cdiPVC(upgrade, "longhorn-static", "6012954624"), func(u *unstructured.Unstructured) bool {
			return u.GetAnnotations()["harvesterhci.io/goldenImage"] == "true"
		})
	})

	var golden *unstructured.Unstructured
	t.Run("a cdi image on an LVM class, its DataVolume and CDI's golden PVC", func(t *testing.T) {
		// The UI creates the image as the user; Harvester's controller does the rest.
		golden = createAs(t, someUser, ns, image("image-lvm", "hv-lvm", "cdi"), func(u *unstructured.Unstructured) bool {
			return str(u, "spec", "targetStorageClassName") == "hv-lvm"
		})
		_ = unstructured.SetNestedField(golden.Object, map[string]any{"failed": int64(0), "size": int64(1 << 30), "virtualSize": int64(10 << 30)}, "status")
		golden = updateAs(t, harvesterUser, golden)
		// On a WaitForFirstConsumer class Harvester asks for immediate binding itself.
		createAs(t, harvesterUser, ns, `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: image-lvm
  annotations: {cdi.kubevirt.io/storage.bind.immediate.requested: "true"}
  ownerReferences: [{apiVersion: harvesterhci.io/v1beta1, kind: VirtualMachineImage, name: image-lvm, uid: `+string(golden.GetUID())+`, blockOwnerDeletion: true}]
spec:
  source: {http: {url: "http://mirror.example/image-lvm.qcow2"}}
  storage: {storageClassName: hv-lvm, resources: {requests: {storage: "10737418240"}}}
`, func(u *unstructured.Unstructured) bool { return len(u.GetAnnotations()) == 1 })
		createAs(t, cdiUser, ns, cdiPVC("image-lvm", "hv-lvm", "10737418240"), func(u *unstructured.Unstructured) bool {
			return u.GetAnnotations()["harvesterhci.io/goldenImage"] == "true"
		})
		// Import progress: full updates of the image, every second of an import.
		for p := range 5 {
			_ = unstructured.SetNestedField(golden.Object, int64(p*25), "status", "progress")
			golden = updateAs(t, harvesterUser, golden)
		}
	})

	t.Run("a VM from the image: the annotation, then the VM controller's DataVolume", func(t *testing.T) {
		vct := `[{"metadata":{"name":"vm1-disk-0","annotations":{"harvesterhci.io/imageId":"` + ns + `/image-lvm"}},"spec":{"accessModes":["ReadWriteMany"],"resources":{"requests":{"storage":"10Gi"}},"volumeMode":"Block","storageClassName":"hv-lvm"}}]`
		createAs(t, someUser, ns, `apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: vm1
  annotations: {harvesterhci.io/volumeClaimTemplates: '`+vct+`'}
spec:
  runStrategy: RerunOnFailure
  template:
    spec:
      domain: {devices: {disks: [{name: disk-0, disk: {bus: virtio}}]}}
      volumes: [{name: disk-0, persistentVolumeClaim: {claimName: vm1-disk-0}}]
`, anyObject)
		// The clone gets the LVM profile's clone strategy (DV-M1); it is no image's, so no
		// immediate binding from DV-M2 (Harvester asks for it itself on this class).
		createAs(t, harvesterUser, ns, `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: vm1-disk-0
  annotations: {cdi.kubevirt.io/storage.bind.immediate.requested: "true"}
spec:
  source: {pvc: {namespace: `+ns+`, name: image-lvm}}
  storage: {storageClassName: hv-lvm, resources: {requests: {storage: 10Gi}}}
`, func(u *unstructured.Unstructured) bool {
			return u.GetAnnotations()["cdi.kubevirt.io/cloneType"] == "snapshot"
		})
	})

	// The storage class controller's StorageProfile writes: TestStorageProfileSettlesUnderBothControllers.

	t.Run("the backup controller's VolumeSnapshot of a Longhorn v1 volume", func(t *testing.T) {
		createAs(t, someUser, ns, pvc("vm2-disk-0", "hv-longhorn", "10Gi", ""), anyObject)
		backup := createAs(t, harvesterUser, ns, "apiVersion: harvesterhci.io/v1beta1\nkind: VirtualMachineBackup\nmetadata: {name: mybackup}\n"+
			"spec: {source: {apiGroup: kubevirt.io, kind: VirtualMachine, name: vm2}, type: backup}\n", anyObject)
		createAs(t, harvesterUser, ns, `apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata:
  name: mybackup-volume-vm2-disk-0
  annotations: {harvesterhci.io/storageClassName: hv-longhorn, harvesterhci.io/storageProvisioner: driver.longhorn.io}
  ownerReferences: [{apiVersion: harvesterhci.io/v1beta1, kind: VirtualMachineBackup, name: mybackup, uid: `+string(backup.GetUID())+`, controller: true}]
spec:
  source: {persistentVolumeClaimName: vm2-disk-0}
  volumeSnapshotClassName: longhorn
`, anyObject)
	})

	t.Run("the same shapes with a real violation are still denied", func(t *testing.T) {
		deny := func(t *testing.T, rule, user, namespace, manifest string) {
			t.Helper()
			u := obj(t, namespace, manifest)
			expectDenied(t, rule, func(dry bool) error {
				_, err := client(t, u.GetKind(), namespace, user).Create(ctx, u.DeepCopy(), metav1.CreateOptions{DryRun: dryRun(dry)})
				return err
			})
		}
		small := `[{"metadata":{"name":"vm3-disk-0","annotations":{"harvesterhci.io/imageId":"` + ns + `/image-lvm"}},"spec":{"resources":{"requests":{"storage":"5Gi"}},"storageClassName":"hv-lvm"}}]`
		deny(t, "VM-V1", someUser, ns, "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata:\n  name: vm3\n  annotations: {harvesterhci.io/volumeClaimTemplates: '"+small+"'}\n"+
			"spec: {runStrategy: Halted, template: {spec: {domain: {devices: {}}, volumes: [{name: disk-0, persistentVolumeClaim: {claimName: vm3-disk-0}}]}}}\n")
		// Harvester's own account is privileged for deletes only: its clone below the image
		// size is refused like anyone's.
		deny(t, "DV-V1", harvesterUser, ns, "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: vm3-disk-0}\n"+
			"spec: {source: {pvc: {namespace: "+ns+", name: image-lvm}}, storage: {storageClassName: hv-lvm, resources: {requests: {storage: 5Gi}}}}\n")
		createAs(t, someUser, ns, pvc("vm4-disk-0", "hv-longhorn-v2", "10Gi", ""), anyObject)
		deny(t, "VS-V1", harvesterUser, ns, "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: mybackup-volume-vm4-disk-0}\n"+
			"spec: {source: {persistentVolumeClaimName: vm4-disk-0}, volumeSnapshotClassName: longhorn}\n")
		expectDenied(t, "DV-V2", func(dry bool) error { return remove(t, "DataVolume", ns, "image-lvm", someUser, dry) })
		expectDenied(t, "PVC-V2", func(dry bool) error { return remove(t, "PersistentVolumeClaim", ns, "image-lvm", someUser, dry) })
		// ... while Harvester deletes the image's DataVolume with the image.
		if err := remove(t, "DataVolume", ns, "image-lvm", harvesterUser, true); err != nil {
			t.Errorf("Harvester deleting the image's DataVolume: %v", err)
		}
	})
}
