package cluster

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/hcistorage/storage-webhook/harvester"
)

// lastApplied is kubectl's copy of the whole object; no rule reads it.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Transform reduces an object to what the rules read before it enters a cache, so that
// memory follows the number of objects rather than their size. It is the informers'
// TransformFunc and is applied to file-loaded objects too. Objects it does not know pass
// through (client-go hands it DeletedFinalStateUnknown tombstones as well).
func Transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return slimPod(o), nil
	case *corev1.PersistentVolumeClaim:
		o.ObjectMeta = slimMeta(o.ObjectMeta)
		o.Spec.DataSource, o.Spec.DataSourceRef, o.Spec.Selector = nil, nil, nil
		o.Status = corev1.PersistentVolumeClaimStatus{Phase: o.Status.Phase}
		return o, nil
	case *storagev1.StorageClass:
		o.ObjectMeta = slimMeta(o.ObjectMeta)
		return o, nil
	case *unstructured.Unstructured:
		switch o.GroupVersionKind().GroupKind() {
		case schema.GroupKind{Group: harvester.ImageGVR.Group, Kind: "VirtualMachineImage"}:
			return imageFromUnstructured(o), nil
		case schema.GroupKind{Group: VirtualMachineGVR.Group, Kind: "VirtualMachine"}:
			return vmFromUnstructured(o), nil
		case schema.GroupKind{Group: VolumeSnapshotClassGVR.Group, Kind: "VolumeSnapshotClass"}:
			return snapshotClassFromUnstructured(o), nil
		case schema.GroupKind{Group: StorageProfileGVR.Group, Kind: "StorageProfile"}:
			return slimUnstructured(o, "spec"), nil
		case schema.GroupKind{Group: VolumeSnapshotGVR.Group, Kind: "VolumeSnapshot"}:
			return slimUnstructured(o, "spec"), nil
		case schema.GroupKind{Group: harvester.SettingGVR.Group, Kind: "Setting"}:
			return harvester.SettingFromUnstructured(o), nil
		}
	}
	return obj, nil
}

func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	m.ManagedFields = nil
	if _, ok := m.Annotations[lastApplied]; ok {
		ann := make(map[string]string, len(m.Annotations)-1)
		for k, v := range m.Annotations {
			if k != lastApplied {
				ann[k] = v
			}
		}
		m.Annotations = ann
	}
	return m
}

// slimPod keeps a pod's identity, phase and PVC volumes only.
func slimPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
		},
		Status: corev1.PodStatus{Phase: p.Status.Phase},
	}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out.Spec.Volumes = append(out.Spec.Volumes, corev1.Volume{
				Name:         v.Name,
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: v.PersistentVolumeClaim},
			})
		}
	}
	return out
}

// imageFromUnstructured converts an image. One image with a field of the wrong type must
// not break the whole cache, so on a conversion error the image keeps its metadata and
// empty spec and status (its size then reads as unknown, which the rules warn about).
func imageFromUnstructured(u *unstructured.Unstructured) *harvester.VirtualMachineImage {
	img := &harvester.VirtualMachineImage{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, img); err != nil {
		img = &harvester.VirtualMachineImage{}
		if meta, ok := u.Object["metadata"].(map[string]any); ok {
			_ = runtime.DefaultUnstructuredConverter.FromUnstructured(meta, &img.ObjectMeta)
		}
		img.TypeMeta = metav1.TypeMeta{APIVersion: u.GetAPIVersion(), Kind: u.GetKind()}
	}
	img.ObjectMeta = slimMeta(img.ObjectMeta)
	return img
}

// VirtualMachineGVR is KubeVirt's VirtualMachine resource.
var VirtualMachineGVR = schema.GroupVersionResource{Group: "kubevirt.io", Version: "v1", Resource: "virtualmachines"}

// vmFromUnstructured keeps what VM-V1..VM-V4, VS-V1 and VMB-V1 read: the VM's metadata (its
// volumeClaimTemplates annotation, the imported label, the deletion timestamp), the
// volumes that name a claim (PVC and DataVolume volumes), each disk's name, shareable flag,
// boot order and cache mode, the dataVolumeTemplates and the hotplug requests. A part that
// does not convert is left out; the rest is kept.
func vmFromUnstructured(u *unstructured.Unstructured) *kubevirtv1.VirtualMachine {
	out := &kubevirtv1.VirtualMachine{TypeMeta: metav1.TypeMeta{APIVersion: u.GetAPIVersion(), Kind: u.GetKind()}}
	if meta, ok := u.Object["metadata"].(map[string]any); !ok || runtime.DefaultUnstructuredConverter.FromUnstructured(meta, &out.ObjectMeta) != nil {
		out.ObjectMeta = metav1.ObjectMeta{Name: u.GetName(), Namespace: u.GetNamespace(), UID: u.GetUID(), ResourceVersion: u.GetResourceVersion()}
	}
	out.ObjectMeta = slimMeta(out.ObjectMeta)
	var keep []kubevirtv1.Volume
	for _, m := range nestedMaps(u, "spec", "template", "spec", "volumes") {
		var vol kubevirtv1.Volume
		if runtime.DefaultUnstructuredConverter.FromUnstructured(m, &vol) != nil {
			continue
		}
		if vol.PersistentVolumeClaim != nil || vol.DataVolume != nil {
			keep = append(keep, kubevirtv1.Volume{Name: vol.Name, VolumeSource: kubevirtv1.VolumeSource{
				PersistentVolumeClaim: vol.PersistentVolumeClaim, DataVolume: vol.DataVolume}})
		}
	}
	var disks []kubevirtv1.Disk
	for _, m := range nestedMaps(u, "spec", "template", "spec", "domain", "devices", "disks") {
		var d kubevirtv1.Disk
		if runtime.DefaultUnstructuredConverter.FromUnstructured(m, &d) != nil {
			continue
		}
		// What VM-V3, VS-V1 and VMB-V1 read of a disk: which it is, whether it is shareable,
		// whether it boots and its cache mode.
		disks = append(disks, kubevirtv1.Disk{Name: d.Name, Shareable: d.Shareable, BootOrder: d.BootOrder, Cache: d.Cache})
	}
	if len(keep) > 0 || len(disks) > 0 {
		out.Spec.Template = &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{Volumes: keep}}
		out.Spec.Template.Spec.Domain.Devices.Disks = disks
	}
	for _, m := range nestedMaps(u, "spec", "dataVolumeTemplates") {
		var dvt kubevirtv1.DataVolumeTemplateSpec
		if runtime.DefaultUnstructuredConverter.FromUnstructured(m, &dvt) == nil {
			out.Spec.DataVolumeTemplates = append(out.Spec.DataVolumeTemplates, dvt)
		}
	}
	for _, m := range nestedMaps(u, "status", "volumeRequests") {
		var r kubevirtv1.VirtualMachineVolumeRequest
		if runtime.DefaultUnstructuredConverter.FromUnstructured(m, &r) == nil {
			out.Status.VolumeRequests = append(out.Status.VolumeRequests, r)
		}
	}
	return out
}

// nestedMaps is the list at fields, keeping only its object items.
func nestedMaps(u *unstructured.Unstructured, fields ...string) []map[string]any {
	items, found, err := unstructured.NestedSlice(u.Object, fields...)
	if err != nil || !found {
		return nil
	}
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// StorageProfileGVR is CDI's StorageProfile resource.
var StorageProfileGVR = schema.GroupVersionResource{Group: "cdi.kubevirt.io", Version: "v1beta1", Resource: "storageprofiles"}

// VolumeSnapshotGVR is external-snapshotter's VolumeSnapshot resource.
var VolumeSnapshotGVR = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}

// slimUnstructured keeps an object's identity, annotations, labels and owners, and the
// named top-level fields (a StorageProfile's spec, a VolumeSnapshot's spec): what `audit`
// reads of kinds no admission rule looks up.
func slimUnstructured(u *unstructured.Unstructured, fields ...string) *unstructured.Unstructured {
	out := &unstructured.Unstructured{Object: map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind()}}
	meta := map[string]any{"name": u.GetName()}
	if ns := u.GetNamespace(); ns != "" {
		meta["namespace"] = ns
	}
	src, _ := u.Object["metadata"].(map[string]any)
	for _, k := range []string{"uid", "resourceVersion", "annotations", "labels", "ownerReferences", "deletionTimestamp", "creationTimestamp"} {
		if v, ok := src[k]; ok {
			meta[k] = v
		}
	}
	if ann, ok := meta["annotations"].(map[string]any); ok {
		if _, has := ann[lastApplied]; has {
			slim := make(map[string]any, len(ann))
			for k, v := range ann {
				if k != lastApplied {
					slim[k] = v
				}
			}
			meta["annotations"] = slim
		}
	}
	out.Object["metadata"] = meta
	for _, f := range fields {
		if v, ok := u.Object[f]; ok {
			out.Object[f] = v
		}
	}
	return out
}
