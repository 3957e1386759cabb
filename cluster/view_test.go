package cluster

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func load(t *testing.T, yaml string) (*Files, error) {
	t.Helper()
	objs, err := DecodeManifests([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return NewFiles(objs)
}

const defaults = `
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: old, creationTimestamp: "2025-01-01T00:00:00Z", annotations: {storageclass.kubernetes.io/is-default-class: "true"}}
provisioner: a
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: new-b, creationTimestamp: "2026-01-01T00:00:00Z", annotations: {storageclass.kubernetes.io/is-default-class: "true"}}
provisioner: a
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: new-a, creationTimestamp: "2026-01-01T00:00:00Z", annotations: {storageclass.kubernetes.io/is-default-class: "true"}}
provisioner: a
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: newest-not-default, creationTimestamp: "2027-01-01T00:00:00Z", annotations: {storageclass.kubernetes.io/is-default-class: "false"}}
provisioner: a
`

// TestDefaultStorageClassIsNewestThenByName: with several default classes, the newest wins,
// ties go to the first name, and a class marked "false" is not a default.
func TestDefaultStorageClassIsNewestThenByName(t *testing.T) {
	f, err := load(t, defaults)
	if err != nil {
		t.Fatal(err)
	}
	sc, ok := f.DefaultStorageClass()
	if !ok || sc.Name != "new-a" {
		t.Fatalf("default = %v, want new-a", sc)
	}
	empty, _ := NewFiles(nil)
	if _, ok := empty.DefaultStorageClass(); ok {
		t.Error("an empty view has a default class")
	}
}

// TestRunningPodsUsingPVC: only Running pods of the same namespace count, sorted by name.
func TestRunningPodsUsingPVC(t *testing.T) {
	pod := func(ns, name, phase, claim string) string {
		return "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n  containers: [{name: c, image: i}]\n  volumes: [{name: v, persistentVolumeClaim: {claimName: " + claim + "}}]\nstatus: {phase: " + phase + "}\n"
	}
	f, err := load(t, pod("ns-a", "zeta", "Running", "data")+pod("ns-a", "alpha", "Running", "data")+pod("ns-a", "done", "Succeeded", "data")+
		pod("ns-b", "other-ns", "Running", "data")+pod("ns-a", "other-claim", "Running", "other"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.RunningPodsUsingPVC("ns-a", "data"); !slices.Equal(got, []string{"alpha", "zeta"}) {
		t.Errorf("got %v, want [alpha zeta]", got)
	}
}

// TestNewFilesRefusesDuplicates: a view holding one object twice is an input error.
func TestNewFilesRefusesDuplicates(t *testing.T) {
	_, err := load(t, "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: pvc-1, namespace: ns-1}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: pvc-1, namespace: ns-1}\n")
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("err = %v", err)
	}
}

// TestTransformKeepsWhatRulesRead: pods keep identity, phase and PVC volumes only; PVCs and
// images lose managedFields and kubectl's last-applied copy.
func TestTransformKeepsWhatRulesRead(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", Labels: map[string]string{"a": "b"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}, Volumes: []corev1.Volume{
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
			{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
		}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	out, _ := Transform(pod)
	slim := out.(*corev1.Pod)
	if slim.Labels != nil || slim.ManagedFields != nil || len(slim.Spec.Containers) != 0 || slim.Status.PodIP != "" ||
		len(slim.Spec.Volumes) != 1 || slim.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "data" || slim.Status.Phase != corev1.PodRunning {
		t.Errorf("slim pod = %+v", slim)
	}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "p", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}},
		Annotations: map[string]string{lastApplied: "{...}", "keep": "me"}},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	out, _ = Transform(pvc)
	got := out.(*corev1.PersistentVolumeClaim)
	if got.ManagedFields != nil || len(got.Annotations) != 1 || got.Annotations["keep"] != "me" || got.Spec.Resources.Requests.Storage().String() != "1Gi" {
		t.Errorf("slim pvc = %+v", got)
	}
}

// TestImageWithBadFieldKeepsItsMetadata: one image whose status has the wrong type does not
// break the view; it is kept with an unknown size.
func TestImageWithBadFieldKeepsItsMetadata(t *testing.T) {
	f, err := load(t, "apiVersion: harvesterhci.io/v1beta1\nkind: VirtualMachineImage\nmetadata: {name: img, namespace: ns-1}\nspec: {backend: cdi}\nstatus: {virtualSize: huge}\n")
	if err != nil {
		t.Fatal(err)
	}
	img, ok := f.Image("ns-1", "img")
	if !ok || img.MinimumSize() != 0 || img.Name != "img" {
		t.Fatalf("image = %+v, %v", img, ok)
	}
}

// TestImageDependentsReadOnlyTheTemplatesImages: a VM is a dependent of the image its
// volumeClaimTemplates name even when an entry's other fields do not parse (the index reads
// only the image annotation; it parses no quantity a stored VM may hold).
func TestImageDependentsReadOnlyTheTemplatesImages(t *testing.T) {
	view, err := load(t, `
apiVersion: harvesterhci.io/v1beta1
kind: VirtualMachineImage
metadata: {name: img, namespace: default}
spec: {displayName: img, sourceType: download}
---
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: vm
  namespace: default
  annotations:
    harvesterhci.io/volumeClaimTemplates: '[{"metadata":{"name":"d","annotations":{"harvesterhci.io/imageId":"default/img"}},"spec":{"resources":{"requests":{"storage":"ten gigs"}},"accessModes":5}}]'
spec: {}
`)
	if err != nil {
		t.Fatal(err)
	}
	img, ok := view.Image("default", "img")
	if !ok {
		t.Fatal("image not in the view")
	}
	deps := view.Dependents("virtualmachineimages", img)
	if !slices.Contains(deps, Key{"virtualmachines", "default", "vm"}) {
		t.Errorf("dependents of the image %v, want the VM among them", deps)
	}
}
