package mutators

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// RulePVCGolden is PVC-M1: a PVC named like a cdi image is that image's golden PVC.
const RulePVCGolden = "PVC-M1"

// PVC runs PVC-M1 on a PersistentVolumeClaim CREATE. Only a PVC with exactly the namespace
// and name of an existing cdi image is marked; CDI's prime and scratch PVCs have other
// names and pass untouched.
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
	img, ok := env.View.Image(req.Namespace, name)
	if !ok || img.Spec.Backend != harvester.BackendCDI || pvc.Annotations[harvester.AnnGoldenImage] == "true" {
		return res
	}
	res.SetAnnotation(RulePVCGolden, pvc.Annotations, harvester.AnnGoldenImage, "true")
	return res
}
