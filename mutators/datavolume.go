package mutators

import (
	"slices"

	storagev1 "k8s.io/api/storage/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// Rule IDs of this file.
const (
	RuleDVCloneStrategy = "DV-M1"
	RuleDVImmediateBind = "DV-M2"
)

// WhenDVCloneStrategy is when DV-M1 can act: a PVC clone created without a recorded clone
// type, or an update that drops the recorded one. Imports (http, registry, upload, blank)
// and CDI's own updates never reach the service.
var WhenDVCloneStrategy = admit.CELOr(
	admit.CELAnd(admit.CELCreate, admit.CELHasField(admit.CELObject, "spec.source.pvc"),
		"!"+admit.CELHasAnnotation(admit.CELObject, harvester.AnnCDICloneType)),
	dropped(harvester.AnnCDICloneType),
)

// WhenDVImmediateBind is when DV-M2 can act: a DataVolume owned by an image (Harvester's
// image controller makes the image its owner) created without asking for a binding mode,
// or an update that drops the request.
var WhenDVImmediateBind = admit.CELOr(
	admit.CELAnd(admit.CELCreate, admit.CELOwnedBy(admit.CELObject, harvester.ImageGVR.Group, harvester.KindImage),
		"!"+admit.CELHasAnnotation(admit.CELObject, harvester.AnnCDIImmediateBinding)),
	dropped(harvester.AnnCDIImmediateBinding),
)

// dropped is CEL for: an update removes annotation key.
func dropped(key string) string {
	return admit.CELAnd(admit.CELUpdate, admit.CELHasAnnotation(admit.CELOld, key), "!"+admit.CELHasAnnotation(admit.CELObject, key))
}

// DataVolume runs DV-M1 and DV-M2 on a DataVolume CREATE. On UPDATE it sets again an
// annotation of theirs that the update drops (SPEC §5.8).
func DataVolume(env *admit.Env, req *admit.Request) (res admit.Result) {
	var dv admit.Object[admit.DataVolumeSpec]
	if !res.Decode("DataVolume", req.Object, &dv) {
		return res
	}
	if req.Operation == admit.Update {
		var old metadataOnly
		if res.Decode("old DataVolume", req.OldObject, &old) {
			res.RestoreAnnotations(RuleDVCloneStrategy, dv.Annotations, old.Annotations, harvester.AnnCDICloneType)
			res.RestoreAnnotations(RuleDVImmediateBind, dv.Annotations, old.Annotations, harvester.AnnCDIImmediateBinding)
		}
		return res
	}
	cp, ok := env.Profile(dataVolumeClass(env, &dv.Spec))
	if !ok {
		return res
	}
	// DV-M1: a clone records the target class's effective clone strategy (its annotations,
	// else its profile), unless one is recorded already.
	_, recorded := dv.Annotations[harvester.AnnCDICloneType]
	if dv.Spec.Source != nil && dv.Spec.Source.PVC != nil && !recorded {
		if clone := cp.Settings().CloneStrategy; clone != "" {
			res.SetAnnotation(RuleDVCloneStrategy, dv.Annotations, harvester.AnnCDICloneType, clone)
		}
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
func dataVolumeClass(env *admit.Env, spec *admit.DataVolumeSpec) string {
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
func goldenDataVolume(dv *admit.Object[admit.DataVolumeSpec]) bool {
	return slices.ContainsFunc(dv.OwnerReferences, harvester.IsImageOwner)
}
