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

// vmFromUnstructured keeps a VM's identity and the volumes that name a claim (PVC and
// DataVolume volumes), which is what the backup rule reads. A VM that does not convert
// keeps its identity and no volumes.
func vmFromUnstructured(u *unstructured.Unstructured) *kubevirtv1.VirtualMachine {
	out := &kubevirtv1.VirtualMachine{
		TypeMeta:   metav1.TypeMeta{APIVersion: u.GetAPIVersion(), Kind: u.GetKind()},
		ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), Namespace: u.GetNamespace(), UID: u.GetUID(), ResourceVersion: u.GetResourceVersion()},
	}
	vols, found, err := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "volumes")
	if err != nil || !found {
		return out
	}
	var keep []kubevirtv1.Volume
	for _, v := range vols {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		var vol kubevirtv1.Volume
		if runtime.DefaultUnstructuredConverter.FromUnstructured(m, &vol) != nil {
			continue
		}
		if vol.PersistentVolumeClaim != nil || vol.DataVolume != nil {
			keep = append(keep, kubevirtv1.Volume{Name: vol.Name, VolumeSource: kubevirtv1.VolumeSource{
				PersistentVolumeClaim: vol.PersistentVolumeClaim, DataVolume: vol.DataVolume}})
		}
	}
	if len(keep) > 0 {
		out.Spec.Template = &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{Volumes: keep}}
	}
	return out
}
