package mutators

import (
	"slices"

	storagev1 "k8s.io/api/storage/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// Rule IDs of this file.
const (
	RuleDVCloneStrategy = "DV-M1"
	RuleDVImmediateBind = "DV-M2"
)

// WhenDVCloneStrategy is when DV-M1 can act: a PVC clone without a recorded clone type.
// Imports (http, registry, upload, blank) never reach the service.
var WhenDVCloneStrategy = admit.CELAnd(
	admit.CELHasField(admit.CELObject, "spec.source.pvc"),
	"!"+admit.CELHasAnnotation(admit.CELObject, harvester.AnnCDICloneType),
)

// WhenDVImmediateBind is when DV-M2 can act: a DataVolume owned by an image (Harvester's
// image controller makes the image its owner) that does not ask for a binding mode yet.
var WhenDVImmediateBind = admit.CELAnd(
	admit.CELOwnedBy(admit.CELObject, harvester.ImageGVR.Group, harvester.KindImage),
	"!"+admit.CELHasAnnotation(admit.CELObject, harvester.AnnCDIImmediateBinding),
)

// DataVolume runs DV-M1 and DV-M2 on a DataVolume CREATE.
func DataVolume(env *admit.Env, req *admit.Request) (res admit.Result) {
	if req.Operation != admit.Create {
		return res
	}
	var dv cdiv1.DataVolume
	if !res.Decode("DataVolume", req.Object, &dv) {
		return res
	}
	cp, ok := env.Profile(dataVolumeClass(env, &dv.Spec))
	if !ok {
		return res
	}
	// DV-M1: a clone records the target class's strategy, unless one is recorded already.
	_, recorded := dv.Annotations[harvester.AnnCDICloneType]
	if dv.Spec.Source != nil && dv.Spec.Source.PVC != nil && cp.Profile.CloneStrategy != "" && !recorded {
		res.SetAnnotation(RuleDVCloneStrategy, dv.Annotations, harvester.AnnCDICloneType, cp.Profile.CloneStrategy)
	}
	// DV-M2: a golden DataVolume is never consumed by a pod, so on a WaitForFirstConsumer
	// class it must ask for immediate binding or it never fills.
	_, asked := dv.Annotations[harvester.AnnCDIImmediateBinding]
	wffc := cp.Class.VolumeBindingMode != nil && *cp.Class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
	if wffc && !asked && goldenDataVolume(&dv) {
		res.SetAnnotation(RuleDVImmediateBind, dv.Annotations, harvester.AnnCDIImmediateBinding, "true")
	}
	return res
}

// dataVolumeClass is the class a DataVolume's PVC will get: spec.storage's, else spec.pvc's,
// else the default class.
func dataVolumeClass(env *admit.Env, spec *cdiv1.DataVolumeSpec) string {
	var class *string
	switch {
	case spec.Storage != nil:
		class = spec.Storage.StorageClassName
	case spec.PVC != nil:
		class = spec.PVC.StorageClassName
	}
	if class != nil && *class != "" {
		return *class
	}
	if sc, ok := env.View.DefaultStorageClass(); ok {
		return sc.Name
	}
	return ""
}

// goldenDataVolume: owned by an image, as Harvester's image controller makes the image's
// DataVolume. A DataVolume merely named like an image is not asked about (WhenDVImmediateBind):
// the image controller would create the image's own DataVolume under that name.
func goldenDataVolume(dv *cdiv1.DataVolume) bool {
	return slices.ContainsFunc(dv.OwnerReferences, harvester.IsImageOwner)
}
