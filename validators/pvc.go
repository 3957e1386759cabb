package validators

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// Rule IDs of this file.
const (
	RulePVCGoldenMark   = "PVC-V1"
	RulePVCGoldenDelete = "PVC-V2"
	RulePVCImageSize    = "PVC-V3"
	RulePVCImageClass   = "PVC-V4"
)

// WhenPVCGoldenMark is when PVC-V1 can deny: an update of a marked PVC that removes or
// changes the mark. Binding, resizing and finalizer updates of golden PVCs never reach the
// service.
var WhenPVCGoldenMark = admit.CELAnd(
	admit.CELAnnotation(admit.CELOld, harvester.AnnGoldenImage)+" == 'true'",
	admit.CELAnnotation(admit.CELObject, harvester.AnnGoldenImage)+" != 'true'",
)

// WhenPVCGoldenDelete is when PVC-V2 can deny: an unprivileged user deletes a PVC that is
// not Lost and is marked golden or is the target of the DataVolume of its name (an image's
// golden PVC is both). Deleting a plain PVC, or any PVC as the garbage collector or the
// namespace controller, never waits on the service. An API server that sends no old object
// on DELETE (none does since Kubernetes 1.15) is asked every time.
var WhenPVCGoldenDelete = admit.CELAnd(
	admit.CELUserNotIn(admit.DefaultPrivilegedUsers),
	admit.CELOr(
		admit.CELCreate,
		admit.CELAnd(
			admit.CELField(admit.CELOld, "status.phase", "''")+" != 'Lost'",
			admit.CELOr(
				admit.CELAnnotation(admit.CELOld, harvester.AnnGoldenImage)+" == 'true'",
				admit.CELOwnedByNamesake(admit.CELOld, harvester.CDIGroup, harvester.KindDataVolume),
			),
		),
	),
)

// WhenPVCImageSize is when PVC-V3 and PVC-V4 can deny or warn: the PVC has an image reference.
var WhenPVCImageSize = admit.CELHasAnnotation(admit.CELObject, harvester.AnnImageID)

// persistentVolumeClaim is a PVC reduced to what PVC-V1, PVC-V3 and PVC-V4 read.
type persistentVolumeClaim struct {
	admit.ObjectMeta `json:"metadata"`
	Spec             struct {
		StorageClassName string `json:"storageClassName"`
		Resources        struct {
			Requests corev1.ResourceList `json:"requests"`
		} `json:"resources"`
	} `json:"spec"`
}

// storedPVC is a PVC reduced to what PVC-V2 reads of the PVC being deleted, as stored: its
// name, golden mark, owners and phase. The mark is one field tagged with its key rather than
// the whole annotation map: a PVC CDI made carries a dozen annotations and labels, and
// building the maps was most of a delete's rule cost. TestAnnotationTagsAreTheKeys checks the tag.
type storedPVC struct {
	Metadata struct {
		Name        string `json:"name"`
		Annotations struct {
			Golden string `json:"harvesterhci.io/goldenImage"`
		} `json:"annotations"`
		OwnerReferences []metav1.OwnerReference `json:"ownerReferences"`
	} `json:"metadata"`
	Status struct {
		Phase corev1.PersistentVolumeClaimPhase `json:"phase"`
	} `json:"status"`
}

// PVC runs PVC-V1..PVC-V3 on a PersistentVolumeClaim CREATE, UPDATE or DELETE.
func PVC(env *admit.Env, req *admit.Request) (res admit.Result) {
	var pvc persistentVolumeClaim
	switch req.Operation {
	case admit.Create:
		if res.Decode("PersistentVolumeClaim", req.Object, &pvc) {
			pvcImageSize(env, &res, req, admit.ObjectName(req, pvc.Name, pvc.GenerateName), &pvc)
		}
	case admit.Update:
		var old persistentVolumeClaim
		if res.Decode("PersistentVolumeClaim", req.Object, &pvc) && res.Decode("old PersistentVolumeClaim", req.OldObject, &old) {
			pvcGoldenMark(&res, admit.ObjectName(req, pvc.Name, ""), &old, &pvc)
		}
	case admit.Delete:
		pvcGoldenDelete(env, &res, req)
	}
	return res
}

// pvcGoldenMark is PVC-V1: the golden annotation, once "true", stays "true".
func pvcGoldenMark(res *admit.Result, name string, old, pvc *persistentVolumeClaim) {
	if old.Annotations[harvester.AnnGoldenImage] != "true" {
		return
	}
	if v, ok := pvc.Annotations[harvester.AnnGoldenImage]; !ok || v != "true" {
		res.Deny(RulePVCGoldenMark, "PVC %s: annotation %s cannot be removed or changed (was \"true\", now %s): it marks the golden PVC of an image; delete the image instead",
			name, harvester.AnnGoldenImage, describeValue(v, ok))
	}
}

// pvcGoldenDelete is PVC-V2: a golden PVC lives as long as its image, unless it is Lost.
// The old object is the PVC as stored; API servers that omit it on DELETE fall back to the
// cluster view. A PVC counts when it carries the mark or is CDI's target of the DataVolume
// of its name; an unmarked PVC made by hand under an image's name is not protected, because
// the API server does not ask about it (WhenPVCGoldenDelete).
func pvcGoldenDelete(env *admit.Env, res *admit.Result, req *admit.Request) {
	var pvc storedPVC
	if len(req.OldObject) > 0 {
		if !res.Decode("old PersistentVolumeClaim", req.OldObject, &pvc) {
			return
		}
	} else if p, ok := env.View.PVC(req.Namespace, req.Name); ok {
		m := &pvc.Metadata
		m.Name, m.Annotations.Golden, m.OwnerReferences, pvc.Status.Phase = p.Name, p.Annotations[harvester.AnnGoldenImage], p.OwnerReferences, p.Status.Phase
	} else {
		return
	}
	marked := pvc.Metadata.Annotations.Golden == "true"
	if !marked && !harvester.IsDataVolumeTarget(pvc.Metadata.OwnerReferences, req.Name) {
		return
	}
	img, golden := env.GoldenImage(req.Namespace, req.Name, &marked)
	if !golden || pvc.Status.Phase == corev1.ClaimLost || env.IsPrivileged(req) {
		return
	}
	res.Deny(RulePVCGoldenDelete, "PVC %s is the golden PVC of image %s/%s and cannot be deleted while the image exists (user %q is not privileged): delete the image, and its PVC goes with it",
		admit.ObjectName(req, pvc.Metadata.Name, ""), img.Namespace, img.Name, req.User.Username)
}

// pvcImageSize is PVC-V4, then PVC-V3: a disk with an image reference on a backing-image
// class names the class's image, and is at least as large as its image. A PVC without an
// image reference never reaches the service (WhenPVCImageSize: the API server cannot tell a
// backing-image class), so it is not checked here either and `check` answers as the cluster.
func pvcImageSize(env *admit.Env, res *admit.Result, req *admit.Request, name string, pvc *persistentVolumeClaim) {
	ref, ok := pvc.Annotations[harvester.AnnImageID]
	if !ok {
		return
	}
	disk := func() string { return "PVC " + name }
	if ref, _, ok = checkClassImage(env, res, req, RulePVCImageClass, disk, ref, true, pvc.Spec.StorageClassName); ok {
		checkImageSize(env, res, req, RulePVCImageSize, disk, ref, "", pvc.Spec.Resources.Requests[corev1.ResourceStorage])
	}
}

func describeValue(v string, present bool) string {
	if !present {
		return "absent"
	}
	return `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
}
