package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/internal/poll"
)

// TestInformersFillTheView: the informer-backed view answers the same lookups as the
// file-backed one, through the same transforms and indexes, and follows changes.
func TestInformersFillTheView(t *testing.T) {
	kube := kubefake.NewClientset(
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "rbd", Annotations: map[string]string{harvester.AnnIsDefaultClass: "true"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}, Provisioner: "rbd.csi.ceph.com"},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "img", Namespace: "default"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "vm", Namespace: "default"},
			Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "img"}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}},
	)
	image := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "harvesterhci.io/v1beta1", "kind": "VirtualMachineImage",
		"metadata": map[string]any{"name": "img", "namespace": "default"},
		"spec":     map[string]any{"backend": "cdi", "checksum": "abc"},
		"status":   map[string]any{"size": int64(100), "virtualSize": int64(2048)},
	}}
	vm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
		"metadata": map[string]any{"name": "web", "namespace": "default"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"domain": map[string]any{"cpu": map[string]any{"cores": int64(2)}},
			"volumes": []any{
				map[string]any{"name": "root", "persistentVolumeClaim": map[string]any{"claimName": "web-root"}},
				map[string]any{"name": "data", "dataVolume": map[string]any{"name": "web-data"}},
				map[string]any{"name": "cloudinit", "cloudInitNoCloud": map[string]any{"userData": "#cloud-config"}},
			}}}},
	}}
	vsc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
		"metadata": map[string]any{"name": "rbd-snap", "annotations": map[string]any{AnnDefaultSnapshotClass: "true"}},
		"driver":   "rbd.csi.ceph.com", "deletionPolicy": "Delete", "parameters": map[string]any{"clusterID": "c1"},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{harvester.ImageGVR: "VirtualMachineImageList", VirtualMachineGVR: "VirtualMachineList",
			VolumeSnapshotClassGVR: "VolumeSnapshotClassList", StorageProfileGVR: "StorageProfileList", VolumeSnapshotGVR: "VolumeSnapshotList"}, image, vm, vsc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := StartInformersFrom(ctx, kube, dyn)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() bool { ok, _ := c.Synced(); return ok })

	if sc, ok := c.DefaultStorageClass(); !ok || sc.Name != "rbd" || sc.ManagedFields != nil {
		t.Errorf("default class = %+v, %v (managedFields must be dropped)", sc, ok)
	}
	if img, ok := c.Image("default", "img"); !ok || img.MinimumSize() != 2048 || img.Spec.Backend != "cdi" {
		t.Errorf("image = %+v, %v", img, ok)
	}
	if got, ok := c.VirtualMachine("default", "web"); !ok || len(got.Spec.Template.Spec.Volumes) != 2 ||
		got.Spec.Template.Spec.Volumes[1].DataVolume.Name != "web-data" || got.Spec.Template.Spec.Domain.CPU != nil {
		t.Errorf("vm = %+v, %v (only claim volumes are kept)", got, ok)
	}
	if got, ok := c.VolumeSnapshotClass("rbd-snap"); !ok || got.Driver != "rbd.csi.ceph.com" {
		t.Errorf("snapshot class = %+v, %v", got, ok)
	}
	if got := c.VolumeSnapshotClassesOfDriver("rbd.csi.ceph.com"); !slices.Equal(got, []string{"rbd-snap"}) {
		t.Errorf("snapshot classes of rbd = %v", got)
	}
	if got := c.DefaultVolumeSnapshotClasses("rbd.csi.ceph.com"); !slices.Equal(got, []string{"rbd-snap"}) {
		t.Errorf("default snapshot classes of rbd = %v", got)
	}
	if imgs := c.ImagesUsingStorageClass(""); len(imgs) != 0 {
		t.Errorf("images of no class = %v", imgs)
	}
	if _, ok := c.PVC("default", "img"); !ok {
		t.Error("pvc not in view")
	}
	if pods := c.RunningPodsUsingPVC("default", "img"); len(pods) != 1 || pods[0] != "vm" {
		t.Errorf("pods = %v", pods)
	}
	if err := kube.CoreV1().Pods("default").Delete(ctx, "vm", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() bool { return len(c.RunningPodsUsingPVC("default", "img")) == 0 })
}
