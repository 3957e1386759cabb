package validators

import (
	"strings"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// checkImageSize is the one place a disk's requested size is held against the image
// minimum size (PVC-V3, and later VM-V1 and DV-V1). ref is an image reference
// "namespace/name"; size is in bytes, shown is how the request wrote it.
func checkImageSize(env *admit.Env, res *admit.Result, rule, disk, ref string, size int64, shown string) {
	ns, imgName, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || imgName == "" || strings.Contains(imgName, "/") {
		res.Deny(rule, "%s: annotation %s is %q, which is not \"<namespace>/<image name>\": fix the image reference",
			disk, harvester.AnnImageID, ref)
		return
	}
	img, ok := env.View.Image(ns, imgName)
	if !ok {
		res.Warn(rule, "%s: image %s is not known yet, so its size was not checked", disk, ref)
		return
	}
	minimum := img.MinimumSize()
	if minimum == 0 {
		res.Warn(rule, "%s: the size of image %s is not known yet, so the disk size was not checked", disk, ref)
		return
	}
	if size < minimum {
		res.Deny(rule, "%s requests %s (%d bytes), less than %s (%d bytes), the minimum size of image %s: request at least %s",
			disk, shown, size, admit.Quantity(minimum), minimum, ref, admit.Quantity(minimum))
	}
}
