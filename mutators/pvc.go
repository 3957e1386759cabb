package mutators

import (
	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// metadataOnly decodes an object's metadata: all PVC-M1 reads of a PVC, and what an update
// removes from a DataVolume.
type metadataOnly struct {
	admit.ObjectMeta `json:"metadata"`
}

// RulePVCGolden is PVC-M1: a PVC named like a cdi image is that image's golden PVC.
const RulePVCGolden = "PVC-M1"

// WhenPVCGolden is when PVC-M1 can act: CDI creates a golden PVC as the target of the
// image's DataVolume, named like it and owned by it; an update drops the mark of a marked
// PVC. Every other PVC create (plain PVCs, CDI's prime and scratch PVCs) and update never
// reaches the service.
var WhenPVCGolden = admit.CELOr(
	admit.CELAnd(admit.CELCreate,
		admit.CELOwnedByNamesake(admit.CELObject, harvester.CDIGroup, harvester.KindDataVolume),
		admit.CELAnnotation(admit.CELObject, harvester.AnnGoldenImage)+" != 'true'"),
	admit.CELAnd(admit.CELUpdate,
		admit.CELAnnotation(admit.CELOld, harvester.AnnGoldenImage)+" == 'true'",
		"!"+admit.CELHasAnnotation(admit.CELObject, harvester.AnnGoldenImage)),
)

// PVC runs PVC-M1 on a PersistentVolumeClaim CREATE. Only the PVC that CDI creates for a
// DataVolume (owned by the DataVolume of its name) with exactly the namespace and name of an
// existing cdi image is marked; CDI's prime and scratch PVCs have other names and owners
// and pass untouched. A PVC made by hand under an image's name is not CDI's and is left
// alone (SPEC §5.9: the API server only asks about DataVolume targets). On UPDATE, a mark
// the update drops is set again (SPEC §5.8: a re-applied manifest without it keeps it); one
// it changes is PVC-V1's to deny.
func PVC(env *admit.Env, req *admit.Request) (res admit.Result) {
	var pvc metadataOnly
	if !res.Decode("PersistentVolumeClaim", req.Object, &pvc) {
		return res
	}
	if req.Operation == admit.Update {
		var old metadataOnly
		if res.Decode("old PersistentVolumeClaim", req.OldObject, &old) && old.Annotations[harvester.AnnGoldenImage] == "true" {
			res.RestoreAnnotations(RulePVCGolden, pvc.Annotations, old.Annotations, harvester.AnnGoldenImage)
		}
		return res
	}
	name := pvc.Name
	if name == "" {
		name = req.Name
	}
	if !harvester.IsDataVolumeTarget(pvc.OwnerReferences, name) {
		return res
	}
	img, ok := env.View.Image(req.Namespace, name)
	if !ok || img.Spec.Backend != harvester.BackendCDI || pvc.Annotations[harvester.AnnGoldenImage] == "true" {
		return res
	}
	res.SetAnnotation(RulePVCGolden, pvc.Annotations, harvester.AnnGoldenImage, "true")
	return res
}
