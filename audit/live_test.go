package audit_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/audit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/internal/poll"
	"github.com/hcistorage/storage-webhook/metrics"
	"github.com/hcistorage/storage-webhook/providers"
)

// TestLiveFollowsInformerEvents: the live audit of watch caches finds a PVC smaller than
// its image when the image's size arrives after the PVC (an event of the image re-audits
// the PVCs that reference it), drops the finding when the PVC is deleted, and keeps the
// gauge equal to the findings; the audited-object counter shows that an event re-audits
// its dependents, not the cluster.
func TestLiveFollowsInformerEvents(t *testing.T) {
	class := "rbd"
	kube := kubefake.NewClientset(
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: "rbd.csi.ceph.com"},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "disk", Namespace: "default", Annotations: map[string]string{harvester.AnnImageID: "default/ubuntu"}},
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class, Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}}}},
	)
	for i := range 50 { // bystanders an image event must not re-audit
		kube.Tracker().Add(&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "other-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Namespace: "default"},
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class}})
	}
	image := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "harvesterhci.io/v1beta1", "kind": "VirtualMachineImage",
		"metadata": map[string]any{"name": "ubuntu", "namespace": "default", "annotations": map[string]any{harvester.AnnStorageClassName: class}},
		"spec":     map[string]any{"backend": "cdi", "targetStorageClassName": class},
	}}
	gvrs := map[schema.GroupVersionResource]string{harvester.ImageGVR: "VirtualMachineImageList", cluster.VirtualMachineGVR: "VirtualMachineList",
		cluster.VolumeSnapshotClassGVR: "VolumeSnapshotClassList", cluster.StorageProfileGVR: "StorageProfileList", cluster.VolumeSnapshotGVR: "VolumeSnapshotList"}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), gvrs, image)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	metaScheme := metadatafake.NewTestScheme()
	_ = metav1.AddMetaToScheme(metaScheme)
	view, err := cluster.StartInformersFrom(ctx, kube, dyn, metadatafake.NewSimpleMetadataClient(metaScheme))
	if err != nil {
		t.Fatal(err)
	}
	env := &admit.Env{View: view, Providers: providers.NewStore(nil)}
	gauge := metrics.NewGaugeFunc("f", "findings", "rule", "severity", "action")
	audited := prometheus.NewCounter(prometheus.CounterOpts{Name: "a"})
	log := logrus.New()
	live := audit.NewLive(audit.New(env), view, gauge, audited, log)
	live.Start(ctx)
	poll.Until(t, 10*time.Second, func() bool { ok, _ := view.Synced(); return ok })

	pvcV3 := func() []audit.Finding {
		return slices.DeleteFunc(live.Findings(), func(f audit.Finding) bool { return f.Rule != "PVC-V3" })
	}
	// The image's size is not known yet: PVC-V3 warns.
	poll.Until(t, 10*time.Second, func() bool { fs := pvcV3(); return len(fs) == 1 && fs[0].Severity == audit.Warning })
	// The initial audit is done: the class, the image and the 51 PVCs audited, nothing queued.
	poll.Until(t, 10*time.Second, func() bool { return testutil.ToFloat64(audited) >= 53 && live.Pending() == 0 })
	before := testutil.ToFloat64(audited)

	// The image controller writes the size: the PVC is re-audited and is now too small.
	_ = unstructured.SetNestedField(image.Object, map[string]any{"virtualSize": int64(10 << 30)}, "status")
	if _, err := dyn.Resource(harvester.ImageGVR).Namespace("default").Update(ctx, image, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() bool { fs := pvcV3(); return len(fs) == 1 && fs[0].Severity == audit.Violation })
	if got := gaugeSamples(t, gauge)["action=Enforce,rule=PVC-V3,severity=violation"]; got != 1 {
		t.Errorf("gauge PVC-V3 violation = %v, want 1", got)
	}
	if n := testutil.ToFloat64(audited) - before; n > 3 {
		t.Errorf("an image event re-audited %v objects, want the image, its golden PVC name and the PVC that references it (at most 3), not the 51 PVCs", n)
	}

	if err := kube.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "disk", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() bool { return len(pvcV3()) == 0 })
	if got := gaugeSamples(t, gauge)["action=Enforce,rule=PVC-V3,severity=violation"]; got != 0 {
		t.Errorf("gauge after the delete = %v, want 0", got)
	}
}

// TestLiveOverFilesEqualsAll: a file view has no events; Live audits it once, and finds
// what All finds.
func TestLiveOverFilesEqualsAll(t *testing.T) {
	env, view := plantedEnv(t)
	live := audit.NewLive(audit.New(env), view.Cache, nil, nil, logrus.New())
	live.Start(context.Background())
	all, _ := audit.New(env).All(view)
	if got := live.Findings(); len(got) != len(all) || !slices.EqualFunc(got, all, func(a, b audit.Finding) bool { return a == b }) {
		t.Errorf("live %d findings, All %d", len(got), len(all))
	}
}
