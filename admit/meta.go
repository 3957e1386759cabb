package admit

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ObjectMeta is what the rules read of an object's metadata. Rules decode it instead of
// metav1.ObjectMeta, whose name it keeps so that a DECODE denial names a field as before
// ("ObjectMeta.metadata.annotations"). managedFields, often the largest part of an object,
// are then skipped rather than decoded, and a field no rule reads cannot make a rule deny
// (the API server checks the metadata; BENCHMARKS.md §7 has the cost this saves). Labels
// are decoded though only VM-V2 reads them, so that a label that is not a string is still a
// DECODE denial for every kind, as it was with metav1.ObjectMeta.
type ObjectMeta struct {
	Name              string                  `json:"name,omitempty"`
	GenerateName      string                  `json:"generateName,omitempty"`
	Labels            map[string]string       `json:"labels,omitempty"`
	Annotations       map[string]string       `json:"annotations,omitempty"`
	OwnerReferences   []metav1.OwnerReference `json:"ownerReferences,omitempty"`
	DeletionTimestamp *metav1.Time            `json:"deletionTimestamp,omitempty"`
}

// Object is an object reduced to its metadata and a spec of type S, for the rules that read
// nothing else of it.
type Object[S any] struct {
	ObjectMeta `json:"metadata"`
	Spec       S `json:"spec"`
}

// StorageClass is what the rules read of a StorageClass in a request: the fields that
// provider profiles match on and the effective settings are computed from. Decoding it
// instead of storagev1.StorageClass skips managedFields and the fields no rule reads.
type StorageClass struct {
	ObjectMeta        `json:"metadata"`
	Provisioner       string                       `json:"provisioner"`
	Parameters        map[string]string            `json:"parameters,omitempty"`
	VolumeBindingMode *storagev1.VolumeBindingMode `json:"volumeBindingMode,omitempty"`
}

// Class is the class as the provider table and the cluster view hold it.
func (sc *StorageClass) Class() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name: sc.Name, GenerateName: sc.GenerateName, Labels: sc.Labels, Annotations: sc.Annotations,
			OwnerReferences: sc.OwnerReferences, DeletionTimestamp: sc.DeletionTimestamp,
		},
		Provisioner: sc.Provisioner, Parameters: sc.Parameters, VolumeBindingMode: sc.VolumeBindingMode,
	}
}

// DataVolumeSpec is what the rules read of a CDI DataVolume's spec, and of the spec of a
// VM's dataVolumeTemplates: the PVC it clones, and the class and size it asks for through
// spec.storage or spec.pvc. Field names and shapes are CDI's (v1beta1.DataVolumeSpec);
// decoding a whole DataVolume took 9.5 µs of the review's 70 µs of CPU (BENCHMARKS.md §7).
type DataVolumeSpec struct {
	Source *struct {
		PVC *DataVolumeSourcePVC `json:"pvc,omitempty"`
	} `json:"source,omitempty"`
	Storage *ClaimRequest `json:"storage,omitempty"`
	PVC     *ClaimRequest `json:"pvc,omitempty"`
}

// DataVolumeSourcePVC is the PVC a DataVolume clones.
type DataVolumeSourcePVC struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// ClaimRequest is the class and size a DataVolume asks for (spec.storage or spec.pvc).
type ClaimRequest struct {
	StorageClassName *string `json:"storageClassName,omitempty"`
	Resources        struct {
		Requests corev1.ResourceList `json:"requests,omitempty"`
	} `json:"resources"`
}
