package mutators

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// RulePVCGolden is PVC-M1: a PVC named like a cdi image is that image's golden PVC.
const RulePVCGolden = "PVC-M1"

// WhenPVCGolden is when PVC-M1 can act: CDI creates a golden PVC as the target of the
// image's DataVolume, named like it and owned by it. Every other PVC create (plain PVCs,
// CDI's prime and scratch PVCs) never reaches the service.
var WhenPVCGolden = admit.CELAnd(
	admit.CELOwnedByNamesake(admit.CELObject, harvester.CDIGroup, harvester.KindDataVolume),
	admit.CELAnnotation(admit.CELObject, harvester.AnnGoldenImage)+" != 'true'",
)

// PVC runs PVC-M1 on a PersistentVolumeClaim CREATE. Only the PVC that CDI creates for a
// DataVolume (owned by the DataVolume of its name) with exactly the namespace and name of an
// existing cdi image is marked; CDI's prime and scratch PVCs have other names and owners
// and pass untouched. A PVC made by hand under an image's name is not CDI's and is left
// alone (SPEC §5.9: the API server only asks about DataVolume targets).
func PVC(env *admit.Env, req *admit.Request) (res admit.Result) {
	if req.Operation != admit.Create {
		return res
	}
	var pvc corev1.PersistentVolumeClaim
	if !res.Decode("PersistentVolumeClaim", req.Object, &pvc) {
		return res
	}
	name := pvc.Name
	if name == "" {
		name = req.Name
	}
	if !harvester.IsDataVolumeTarget(&pvc.ObjectMeta, name) {
		return res
	}
	img, ok := env.View.Image(req.Namespace, name)
	if !ok || img.Spec.Backend != harvester.BackendCDI || pvc.Annotations[harvester.AnnGoldenImage] == "true" {
		return res
	}
	res.SetAnnotation(RulePVCGolden, pvc.Annotations, harvester.AnnGoldenImage, "true")
	return res
}
