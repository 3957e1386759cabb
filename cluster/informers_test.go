package cluster

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
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
	metadatafake "k8s.io/client-go/metadata/fake"

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
	ns := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"env": "prod"}, Annotations: map[string]string{"note": "dropped"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	meta := metadataClient(ns)
	c, err := StartInformersFrom(ctx, kube, dyn, meta)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() bool { ok, _ := c.Synced(); return ok })

	// Namespaces: metadata only, slimmed to name and labels, and followed.
	if l, ok := c.NamespaceLabels("team-a"); !ok || l["env"] != "prod" {
		t.Errorf("namespace team-a labels = %v, %v", l, ok)
	}
	if obj, _, _ := c.namespaces.GetByKey("team-a"); obj.(*metav1.PartialObjectMetadata).Annotations != nil || obj.(*metav1.PartialObjectMetadata).ManagedFields != nil {
		t.Errorf("namespace kept more than its labels: %+v", obj)
	}
	if _, ok := c.NamespaceLabels("team-b"); ok {
		t.Error("an unknown namespace has labels")
	}
	relabelled := ns.DeepCopy()
	relabelled.Labels = map[string]string{"env": "test"}
	if _, err := meta.Resource(NamespaceGVR).(metadatafake.MetadataClient).UpdateFake(relabelled, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() bool { l, _ := c.NamespaceLabels("team-a"); return l["env"] == "test" })

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

// TestSettingsFollowHarvester: on a cluster whose API serves Harvester's Settings, each
// Setting the service reads is watched, kept reduced (no other field, no credential), and
// every change moves the generation and calls the change hook; a cluster without them
// (no Setting CRD in discovery) syncs without watching any.
func TestSettingsFollowHarvester(t *testing.T) {
	setting := func(name, value string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting",
			"metadata": map[string]any{"name": name}, "value": value, "default": "dev", "customized": false,
		}}
	}
	listKinds := map[schema.GroupVersionResource]string{harvester.ImageGVR: "VirtualMachineImageList", VirtualMachineGVR: "VirtualMachineList",
		VolumeSnapshotClassGVR: "VolumeSnapshotClassList", StorageProfileGVR: "StorageProfileList", VolumeSnapshotGVR: "VolumeSnapshotList",
		harvester.SettingGVR: "SettingList"}

	t.Run("harvester", func(t *testing.T) {
		kube := kubefake.NewClientset()
		kube.Resources = []*metav1.APIResourceList{{GroupVersion: "harvesterhci.io/v1beta1", APIResources: []metav1.APIResource{{Name: "settings", Kind: "Setting"}}}}
		dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds,
			setting(harvester.SettingServerVersion, "v1.8.2"), setting(harvester.SettingBackupTarget, `{"type":"s3","secretAccessKey":"s3cr3t"}`))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c, err := StartInformersFrom(ctx, kube, dyn, metadataClient())
		if err != nil {
			t.Fatal(err)
		}
		var changes atomic.Int32
		c.OnSettingsChange(func() { changes.Add(1) })
		poll.Until(t, 10*time.Second, func() bool { ok, _ := c.Synced(); return ok })
		if !c.HarvesterInstalled() {
			t.Fatal("a cluster with the Setting CRD is not a Harvester cluster")
		}
		s, ok := c.HarvesterSetting(harvester.SettingServerVersion)
		if !ok || s.Get() != "v1.8.2" {
			t.Fatalf("server-version = %+v, %v", s, ok)
		}
		if bt, _ := c.HarvesterSetting(harvester.SettingBackupTarget); strings.Contains(bt.Value, "s3cr3t") {
			t.Errorf("backup-target kept a credential: %s", bt.Value)
		}
		gen := c.SettingsGeneration()
		if gen == 0 {
			t.Error("the initial list did not move the generation")
		}
		if _, err := dyn.Resource(harvester.SettingGVR).Update(ctx, setting(harvester.SettingServerVersion, "v1.9.0"), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 10*time.Second, func() bool {
			s, _ := c.HarvesterSetting(harvester.SettingServerVersion)
			return s.Get() == "v1.9.0" && c.SettingsGeneration() > gen && changes.Load() > 0
		})
	})
	t.Run("plain KubeVirt/CDI cluster", func(t *testing.T) {
		dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c, err := StartInformersFrom(ctx, kubefake.NewClientset(), dyn, metadataClient())
		if err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 10*time.Second, func() bool { ok, _ := c.Synced(); return ok })
		if c.HarvesterInstalled() {
			t.Error("a cluster without the Setting CRD is a Harvester cluster")
		}
		if _, ok := c.HarvesterSetting(harvester.SettingServerVersion); ok {
			t.Error("a Setting without Harvester")
		}
	})
}

// metadataClient is a fake metadata client holding objs (namespaces).
func metadataClient(objs ...runtime.Object) *metadatafake.FakeMetadataClient {
	scheme := metadatafake.NewTestScheme()
	_ = metav1.AddMetaToScheme(scheme)
	return metadatafake.NewSimpleMetadataClient(scheme, objs...)
}
