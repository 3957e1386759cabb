package mutators

import (
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
	if wffc && !asked && goldenDataVolume(env, req, &dv) {
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

// goldenDataVolume: owned by an image, or named like a cdi image of its namespace.
func goldenDataVolume(env *admit.Env, req *admit.Request, dv *cdiv1.DataVolume) bool {
	for _, o := range dv.OwnerReferences {
		if harvester.IsImageOwner(o) {
			return true
		}
	}
	name := dv.Name
	if name == "" {
		name = req.Name
	}
	img, ok := env.View.Image(req.Namespace, name)
	return ok && img.Spec.Backend == harvester.BackendCDI
}
