package validators

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/providers"
)

// checkImageSize is the one place a disk's requested size is held against the image
// minimum size (PVC-V3, VM-V1 and DV-V1). An image in another namespace than the request's
// is read only if the user may get it (IMG-V6). ref is an image reference
// "namespace/name"; viaClass is "" when the request names ref, else the backing-image
// storage class whose image ref is (VM-V4), and then an image of another namespace is not
// named in a message; request is the requested storage; disk names the disk in a message, and
// is called only when there is one (most disks pass, and naming a VM's disks with
// fmt.Sprintf cost a VM review 4 µs). The comparison is exact: a fraction
// of a byte short is short, and requests beyond int64 bytes are not mistaken for zero (as
// Quantity.Value would).
func checkImageSize(env *admit.Env, res *admit.Result, req *admit.Request, rule string, disk func() string, ref, viaClass string, request resource.Quantity) {
	ns, imgName, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || imgName == "" || strings.Contains(imgName, "/") {
		res.Deny(rule, "%s: annotation %s is %q, which is not \"<namespace>/<image name>\": fix the image reference",
			disk(), harvester.AnnImageID, ref)
		return
	}
	// How a message names the image, written only for a message (most disks pass): its
	// reference, unless the class supplied it from another namespace.
	hidden := viaClass != "" && ns != req.Namespace
	shown := func() string {
		if hidden {
			return fmt.Sprintf("the image of storage class %q", viaClass)
		}
		return "image " + ref
	}
	if ns != req.Namespace {
		asked := shown()
		if !hidden {
			asked = images.named(ns, imgName)
		}
		if !mayGet(env, res, req, disk, "be a disk's image", images, ns, imgName, asked) {
			return
		}
	}
	img, ok := env.View.Image(ns, imgName)
	if !ok {
		res.Warn(rule, "%s: %s is not known yet, so its size was not checked", disk(), shown())
		return
	}
	minimum := img.MinimumSize()
	if minimum == 0 {
		res.Warn(rule, "%s: the size of %s is not known yet, so the disk size was not checked", disk(), shown())
		return
	}
	if request.Cmp(*resource.NewQuantity(minimum, resource.BinarySI)) < 0 {
		res.Deny(rule, "%s requests %s (%s bytes), less than %s (%d bytes), the minimum size of %s: request at least %s",
			disk(), request.String(), exactBytes(request), admit.Quantity(minimum), minimum, shown(), admit.Quantity(minimum))
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
		checkImageSize(env, res, req, rule, disk, ns+"/"+src.Name, "", q)
	}
}

// classImage is the image a Longhorn backing-image class is made from (VM-V4, PVC-V4): a
// class of Longhorn's driver with a backingImage parameter makes every volume from that
// backing image, whatever the volume's image reference says. Harvester makes one such class
// per backingimage image and records it in the image's status.storageClassName; it resolves
// the same image through the BackingImage's imageId annotation, which this service does not
// read (Longhorn internals, SPEC §6). ok is false for any other class, and for one whose
// image is not in the view.
func classImage(env *admit.Env, class string) (ref string, ok bool) {
	if class == "" {
		return "", false
	}
	sc, ok := env.View.StorageClass(class)
	if !ok || sc.Provisioner != providers.LonghornProvisioner || sc.Parameters[harvester.ParamBackingImage] == "" {
		return "", false
	}
	img, ok := env.View.ImageOfClass(class)
	if !ok {
		return "", false
	}
	return img.Namespace + "/" + img.Name, true
}

// checkClassImage is VM-V4 and PVC-V4: a disk on a backing-image class whose image reference
// names another image than the class's is denied (Harvester master 02043a37), because the
// size and access rules would read the wrong image. It returns the reference the size and
// access rules read, and the class when the class supplied it: the class's image for a disk
// without a reference, ref itself otherwise; ok is false after a denial.
func checkClassImage(env *admit.Env, res *admit.Result, req *admit.Request, rule string, disk func() string, ref string, hasRef bool, class string) (use, viaClass string, ok bool) {
	want, isImageClass := classImage(env, class)
	switch {
	case !isImageClass:
		return ref, "", true
	case !hasRef:
		return want, class, true
	case ref == want:
		return ref, "", true
	}
	expected := fmt.Sprintf("%q", want)
	fix := fmt.Sprintf("set %s to %q", harvester.AnnImageID, want)
	if ns, _, _ := strings.Cut(want, "/"); ns != req.Namespace {
		// The class's image is in another namespace: the message does not name it.
		expected, fix = "the image the class was made for, in another namespace", "name the image the class was made for"
	}
	res.Deny(rule, "%s: imageId %q does not match backing image of storage class %q (expected %s): %s, or use a storage class without a %s parameter",
		disk(), ref, class, expected, fix, harvester.ParamBackingImage)
	return "", "", false
}
