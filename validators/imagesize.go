package validators

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// checkImageSize is the one place a disk's requested size is held against the image
// minimum size (PVC-V3, VM-V1 and DV-V1). An image in another namespace than the request's
// is read only if the user may get it (IMG-V6). ref is an image reference
// "namespace/name"; request is the requested storage; disk names the disk in a message, and
// is called only when there is one (most disks pass, and naming a VM's disks with
// fmt.Sprintf cost a VM review 4 µs). The comparison is exact: a fraction
// of a byte short is short, and requests beyond int64 bytes are not mistaken for zero (as
// Quantity.Value would).
func checkImageSize(env *admit.Env, res *admit.Result, req *admit.Request, rule string, disk func() string, ref string, request resource.Quantity) {
	ns, imgName, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || imgName == "" || strings.Contains(imgName, "/") {
		res.Deny(rule, "%s: annotation %s is %q, which is not \"<namespace>/<image name>\": fix the image reference",
			disk(), harvester.AnnImageID, ref)
		return
	}
	if ns != req.Namespace && !mayGet(env, res, req, disk, "be a disk's image", images, ns, imgName) {
		return
	}
	img, ok := env.View.Image(ns, imgName)
	if !ok {
		res.Warn(rule, "%s: image %s is not known yet, so its size was not checked", disk(), ref)
		return
	}
	minimum := img.MinimumSize()
	if minimum == 0 {
		res.Warn(rule, "%s: the size of image %s is not known yet, so the disk size was not checked", disk(), ref)
		return
	}
	if request.Cmp(*resource.NewQuantity(minimum, resource.BinarySI)) < 0 {
		res.Deny(rule, "%s requests %s (%s bytes), less than %s (%d bytes), the minimum size of image %s: request at least %s",
			disk(), request.String(), exactBytes(request), admit.Quantity(minimum), minimum, ref, admit.Quantity(minimum))
	}
}

// exactBytes writes a quantity as its exact number of bytes, with the fraction when it has one.
func exactBytes(q resource.Quantity) string {
	if v, ok := q.AsInt64(); ok {
		return strconv.FormatInt(v, 10)
	}
	return q.AsDec().String()
}

// cloneRequest is the size a DataVolume requests: spec.storage, else spec.pvc. ok is false
// when it requests none (CDI then sizes a clone from its source).
func cloneRequest(spec *admit.DataVolumeSpec) (q resource.Quantity, ok bool) {
	switch {
	case spec.Storage != nil:
		q, ok = spec.Storage.Resources.Requests[corev1.ResourceStorage]
	case spec.PVC != nil:
		q, ok = spec.PVC.Resources.Requests[corev1.ResourceStorage]
	}
	return q, ok
}

// checkGoldenClone holds a DataVolume that clones a golden PVC (spec.source.pvc; the
// namespace defaults to ns) against the image minimum size (VM-V1, DV-V1). Clones of other
// PVCs are not this webhook's business.
func checkGoldenClone(env *admit.Env, res *admit.Result, req *admit.Request, rule string, disk func() string, ns string, spec *admit.DataVolumeSpec) {
	if spec.Source == nil || spec.Source.PVC == nil {
		return
	}
	src := spec.Source.PVC
	if src.Namespace != "" {
		ns = src.Namespace
	}
	if _, golden := env.GoldenImage(ns, src.Name, nil); !golden {
		return
	}
	if q, ok := cloneRequest(spec); ok {
		checkImageSize(env, res, req, rule, disk, ns+"/"+src.Name, q)
	}
}
