// Package harvester holds the few Harvester API shapes and names the rules read.
//
// Harvester's Go types live in a module that pulls in half of Rancher, so this package
// declares only the fields the rules need. The structs are used for reading only: the
// webhooks never serialise them back, so fields they omit are never lost (mutations are
// explicit JSON patch operations on the request's own JSON).
package harvester

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Annotation and label keys shared by the rules (SPEC §2).
const (
	AnnStorageClassName     = "harvesterhci.io/storageClassName"
	AnnGoldenImage          = "harvesterhci.io/goldenImage"
	AnnImageID              = "harvesterhci.io/imageId"
	AnnVolumeClaimTemplates = "harvesterhci.io/volumeClaimTemplates"
	LabelImported           = "migration.harvesterhci.io/imported"
	AnnIsDefaultClass       = "storageclass.kubernetes.io/is-default-class"
)

// Image backends (spec.backend).
const (
	BackendBackingImage = "backingimage"
	BackendCDI          = "cdi"
)

// SourceExportFromVolume is the spec.sourceType of an image exported from a PVC.
const SourceExportFromVolume = "export-from-volume"

// ParamBackingImage is the StorageClass parameter of Longhorn that makes every volume of the
// class from a backing image; Harvester gives each backingimage image such a class.
const ParamBackingImage = "backingImage"

// Provisioner annotations of a PVC: the CSI driver that provisions it, beta key first, as
// Harvester's GetProvisionedPVCProvisioner reads them before falling back to the class.
const (
	AnnBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
	AnnStorageProvisioner     = "volume.kubernetes.io/storage-provisioner"
)

// KindImage is the kind of an image.
const KindImage = "VirtualMachineImage"

// ImageGVR is the resource of VirtualMachineImage.
var ImageGVR = schema.GroupVersionResource{Group: "harvesterhci.io", Version: "v1beta1", Resource: "virtualmachineimages"}

// VirtualMachineImage is harvesterhci.io/v1beta1 VirtualMachineImage, reduced to what the rules read.
type VirtualMachineImage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ImageSpec   `json:"spec,omitempty"`
	Status            ImageStatus `json:"status,omitempty"`
}

// ImageSpec is the part of an image's spec the rules read.
type ImageSpec struct {
	Backend                string `json:"backend,omitempty"`
	DisplayName            string `json:"displayName,omitempty"`
	SourceType             string `json:"sourceType,omitempty"`
	URL                    string `json:"url,omitempty"`
	PVCName                string `json:"pvcName,omitempty"`
	PVCNamespace           string `json:"pvcNamespace,omitempty"`
	TargetStorageClassName string `json:"targetStorageClassName,omitempty"`
}

// ImageStatus is the part of an image's status the rules read.
type ImageStatus struct {
	Size             int64  `json:"size,omitempty"`
	VirtualSize      int64  `json:"virtualSize,omitempty"`
	StorageClassName string `json:"storageClassName,omitempty"`
}

// MinimumSize is the image minimum size of SPEC §2: max(status.virtualSize, status.size)
// in bytes; 0 means not yet known.
func (img *VirtualMachineImage) MinimumSize() int64 {
	return max(img.Status.VirtualSize, img.Status.Size, 0)
}

// StorageClassName is the image storage class: the annotation, else spec.targetStorageClassName.
func (img *VirtualMachineImage) StorageClassName() string {
	if sc := img.Annotations[AnnStorageClassName]; sc != "" {
		return sc
	}
	return img.Spec.TargetStorageClassName
}

// DeepCopyObject implements runtime.Object so images can live in client-go caches.
func (img *VirtualMachineImage) DeepCopyObject() runtime.Object {
	if img == nil {
		return nil
	}
	out := *img
	img.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return &out
}

// CDI annotation names the rules set or read.
const (
	AnnCDICloneType          = "cdi.kubevirt.io/cloneType"
	AnnCDIImmediateBinding   = "cdi.kubevirt.io/storage.bind.immediate.requested"
	AnnCDIClassCloneStrategy = "cdi.kubevirt.io/clone-strategy"
)

// Harvester's per-class CDI settings (SPEC §3): StorageClass annotations that its UI
// writes and its storage class controller copies into the class's StorageProfile (the
// first three) and into the CDI resource's per-class filesystem overhead (the last).
const (
	AnnClassCloneStrategy      = "cdi.harvesterhci.io/storageProfileCloneStrategy"
	AnnClassSnapshotClass      = "cdi.harvesterhci.io/storageProfileVolumeSnapshotClass"
	AnnClassAccessModes        = "cdi.harvesterhci.io/storageProfileVolumeModeAccessModes"
	AnnClassFilesystemOverhead = "cdi.harvesterhci.io/filesystemOverhead"
)

// ClassSettingKeys are the four per-class CDI setting annotations, in SPEC order.
var ClassSettingKeys = []string{AnnClassCloneStrategy, AnnClassSnapshotClass, AnnClassAccessModes, AnnClassFilesystemOverhead}

// ClassCDIKeys are every annotation that sets a class's CDI settings: CDI's own clone
// strategy and Harvester's four.
var ClassCDIKeys = append([]string{AnnCDIClassCloneStrategy}, ClassSettingKeys...)

// BackupTypes of a VirtualMachineBackup's spec.type.
const (
	BackupTypeBackup   = "backup"
	BackupTypeSnapshot = "snapshot"
)

// CDI's API group and the kind whose target PVCs it creates.
const (
	CDIGroup       = "cdi.kubevirt.io"
	KindDataVolume = "DataVolume"
)

// IsDataVolumeTarget reports whether a PVC named name is the one CDI creates for a
// DataVolume: CDI names it like the DataVolume and makes the DataVolume its owner.
func IsDataVolumeTarget(owners []metav1.OwnerReference, name string) bool {
	return slices.ContainsFunc(owners, func(o metav1.OwnerReference) bool {
		return o.Name == name && isOwner(o, CDIGroup, KindDataVolume)
	})
}

// IsImageOwner reports whether an owner reference names a VirtualMachineImage.
func IsImageOwner(ref metav1.OwnerReference) bool { return isOwner(ref, ImageGVR.Group, KindImage) }

func isOwner(ref metav1.OwnerReference, group, kind string) bool {
	g, _, _ := strings.Cut(ref.APIVersion, "/")
	return ref.Kind == kind && g == group
}
