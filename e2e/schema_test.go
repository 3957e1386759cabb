//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// schemaCase is one object in the shape the rules read, and the paths whose values the
// rules read (dot-separated; numbers index lists).
type schemaCase struct {
	name     string
	manifest string
	status   map[string]any // written through the status subresource afterwards, if set
	keeps    []string
	defaults map[string]any // paths the CRD fills in, and their values
}

// TestRealSchemasKeepWhatTheRulesRead: the real upstream CRDs neither prune nor reject a
// field a rule reads, and their defaults are what the rules assume. Objects go to
// kube-system, which every webhook leaves out, so only the API server's schema acts on them.
func TestRealSchemasKeepWhatTheRulesRead(t *testing.T) {
	const ns = "kube-system"
	cases := []schemaCase{
		{name: "image: class, backend, source and sizes (IMG-*, PVC-V3, VM-V1, DV-V1, SC-V2)", manifest: `
apiVersion: harvesterhci.io/v1beta1
kind: VirtualMachineImage
metadata: {name: schema-img, annotations: {harvesterhci.io/storageClassName: rbd-fast}}
spec: {backend: cdi, displayName: d.qcow2, sourceType: export-from-volume, url: "", pvcName: data, pvcNamespace: default, targetStorageClassName: rbd-fast}
status: {size: 412090368, virtualSize: 10737418240, storageClassName: rbd-fast}
`, keeps: []string{"metadata.annotations.harvesterhci.io/storageClassName", "spec.backend", "spec.sourceType", "spec.pvcName",
			"spec.pvcNamespace", "spec.targetStorageClassName", "status.size", "status.virtualSize"}},
		{name: "image: the CRD defaults backend to backingimage (what IMG-M2 corrects)", manifest: `
apiVersion: harvesterhci.io/v1beta1
kind: VirtualMachineImage
metadata: {name: schema-img-default}
spec: {displayName: d.qcow2, sourceType: download, url: "http://mirror.example/d.qcow2"}
`, keeps: []string{"spec.url"}, defaults: map[string]any{"spec.backend": "backingimage"}},
		{name: "VM: volumeClaimTemplates, volumes, dataVolumeTemplates and hotplug requests (VM-V1, VM-V2, VMB-V1)", manifest: `
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: schema-vm
  labels: {migration.harvesterhci.io/imported: "true"}
  annotations: {harvesterhci.io/volumeClaimTemplates: '[{"metadata":{"name":"d","annotations":{"harvesterhci.io/imageId":"default/img"}}}]'}
spec:
  runStrategy: Halted
  dataVolumeTemplates:
  - metadata: {name: schema-vm-root}
    spec:
      source: {pvc: {namespace: default, name: image-debian12}}
      storage: {storageClassName: rbd-fast, resources: {requests: {storage: 20Gi}}}
  - metadata: {name: schema-vm-data}
    spec:
      source: {pvc: {namespace: default, name: image-debian12}}
      pvc: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 30Gi}}}
  template:
    spec:
      domain: {devices: {}}
      volumes:
      - {name: a, persistentVolumeClaim: {claimName: web-disk}}
      - {name: b, dataVolume: {name: schema-vm-root}}
`, status: map[string]any{"volumeRequests": []any{
			map[string]any{"addVolumeOptions": map[string]any{"name": "hot-pvc", "disk": map[string]any{"name": "hot-pvc", "disk": map[string]any{"bus": "scsi"}},
				"volumeSource": map[string]any{"persistentVolumeClaim": map[string]any{"claimName": "golden", "hotpluggable": true}}}},
			map[string]any{"addVolumeOptions": map[string]any{"name": "hot-dv", "disk": map[string]any{"name": "hot-dv", "disk": map[string]any{"bus": "scsi"}},
				"volumeSource": map[string]any{"dataVolume": map[string]any{"name": "golden", "hotpluggable": true}}}}}},
			keeps: []string{"metadata.labels.migration.harvesterhci.io/imported", "metadata.annotations.harvesterhci.io/volumeClaimTemplates",
				"spec.dataVolumeTemplates.0.metadata.name", "spec.dataVolumeTemplates.0.spec.source.pvc.namespace", "spec.dataVolumeTemplates.0.spec.source.pvc.name",
				"spec.dataVolumeTemplates.0.spec.storage.resources.requests.storage", "spec.dataVolumeTemplates.1.spec.pvc.resources.requests.storage",
				"spec.template.spec.volumes.0.persistentVolumeClaim.claimName", "spec.template.spec.volumes.1.dataVolume.name",
				"status.volumeRequests.0.addVolumeOptions.name", "status.volumeRequests.0.addVolumeOptions.volumeSource.persistentVolumeClaim.claimName",
				"status.volumeRequests.1.addVolumeOptions.volumeSource.dataVolume.name"}},
		{name: "DataVolume: clone source, class, size and owner (DV-M1, DV-M2, DV-V1, DV-V2)", manifest: `
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: schema-dv
  annotations: {cdi.kubevirt.io/cloneType: snapshot, cdi.kubevirt.io/storage.bind.immediate.requested: "true"}
  ownerReferences: [{apiVersion: harvesterhci.io/v1beta1, kind: VirtualMachineImage, name: img, uid: 4e9a6f41-0000-4000-8000-000000000001, blockOwnerDeletion: true}]
spec:
  source: {pvc: {namespace: default, name: image-debian12}}
  storage: {storageClassName: lvm-striped, resources: {requests: {storage: 20Gi}}}
`, keeps: []string{"metadata.annotations.cdi.kubevirt.io/cloneType", "metadata.annotations.cdi.kubevirt.io/storage.bind.immediate.requested",
			"metadata.ownerReferences.0.kind", "metadata.ownerReferences.0.uid", "spec.source.pvc.namespace", "spec.source.pvc.name",
			"spec.storage.storageClassName", "spec.storage.resources.requests.storage"}},
		{name: "DataVolume: the pvc form of the target (DV-V1)", manifest: `
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: schema-dv-pvc}
spec:
  source: {pvc: {namespace: default, name: image-debian12}}
  pvc: {storageClassName: rbd-fast, accessModes: [ReadWriteOnce], resources: {requests: {storage: 20Gi}}}
`, keeps: []string{"spec.pvc.storageClassName", "spec.pvc.resources.requests.storage"}},
		{name: "StorageProfile: clone strategy and snapshot class (SP-M1)", manifest: `
apiVersion: cdi.kubevirt.io/v1beta1
kind: StorageProfile
metadata: {name: schema-profile}
spec: {cloneStrategy: csi-clone, snapshotClass: rbd-snap, claimPropertySets: [{accessModes: [ReadWriteOnce], volumeMode: Block}]}
`, keeps: []string{"spec.cloneStrategy", "spec.snapshotClass", "spec.claimPropertySets.0.volumeMode"}},
		{name: "VolumeSnapshot: the source PVC (VS-V1)", manifest: `
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: schema-snap}
spec: {source: {persistentVolumeClaimName: data-v2}, volumeSnapshotClassName: longhorn}
`, keeps: []string{"spec.source.persistentVolumeClaimName"}},
		{name: "VirtualMachineBackup: the CRD defaults type to backup (VMB-V1 reads absent as backup too)", manifest: `
apiVersion: harvesterhci.io/v1beta1
kind: VirtualMachineBackup
metadata: {name: schema-backup}
spec: {source: {apiGroup: kubevirt.io, kind: VirtualMachine, name: web-1}}
`, keeps: []string{"spec.source.kind", "spec.source.name"}, defaults: map[string]any{"spec.type": "backup"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := obj(t, ns, c.manifest)
			want := u.DeepCopy()
			got, err := create(t, u, false)
			if err != nil && isAlreadyExists(err) {
				got, err = client(t, u.GetKind(), u.GetNamespace(), "").Get(context.Background(), u.GetName(), metav1.GetOptions{})
			}
			if err != nil {
				t.Fatalf("the real schema refuses the shape the rules read: %v", err)
			}
			if c.status != nil {
				_ = unstructured.SetNestedMap(got.Object, c.status, "status")
				_ = unstructured.SetNestedMap(want.Object, c.status, "status")
				if got, err = client(t, u.GetKind(), u.GetNamespace(), "").UpdateStatus(context.Background(), got, metav1.UpdateOptions{}); err != nil {
					t.Fatalf("the real schema refuses the status the rules read: %v", err)
				}
			}
			for _, path := range c.keeps {
				sent, ok := at(want.Object, path)
				if !ok {
					t.Fatalf("test case sends no %s", path)
				}
				if kept, ok := at(got.Object, path); !ok || !sameJSON(kept, sent) {
					t.Errorf("%s: sent %v, stored %v (present %v)", path, sent, kept, ok)
				}
			}
			for path, value := range c.defaults {
				if got, ok := at(got.Object, path); !ok || !sameJSON(got, value) {
					t.Errorf("%s defaults to %v (present %v), want %v", path, got, ok, value)
				}
			}
		})
	}
}

// sameJSON compares values as JSON: YAML manifests decode numbers as float64, the API server
// returns integers as int64.
func sameJSON(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(x) == string(y)
}

// at reads a dot-separated path (numbers index lists; annotation and label keys, which
// contain dots, are the rest of the path after "annotations." or "labels.").
func at(obj map[string]any, path string) (any, bool) {
	var cur any = obj
	parts := strings.Split(path, ".")
	for i := 0; i < len(parts); i++ {
		key := parts[i]
		if i > 0 && (parts[i-1] == "annotations" || parts[i-1] == "labels") {
			key = strings.Join(parts[i:], ".")
			i = len(parts)
		}
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[key]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			n, err := strconv.Atoi(key)
			if err != nil || n >= len(c) {
				return nil, false
			}
			cur = c[n]
		default:
			return nil, false
		}
	}
	return cur, true
}
