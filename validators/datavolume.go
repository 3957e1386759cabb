package validators

import (
	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// Rule IDs of this file.
const (
	RuleDVCloneSize   = "DV-V1"
	RuleDVImageDelete = "DV-V2"
)

// WhenDVCloneSize is when DV-V1 can deny or warn: a PVC clone that requests a size (a
// clone without one is sized from its source by CDI).
var WhenDVCloneSize = admit.CELAnd(
	admit.CELHasField(admit.CELObject, "spec.source.pvc"),
	admit.CELOr(admit.CELHasField(admit.CELObject, "spec.storage.resources.requests.storage"),
		admit.CELHasField(admit.CELObject, "spec.pvc.resources.requests.storage")),
)

// WhenDVImageDelete is when DV-V2 can deny: an unprivileged user deletes a DataVolume owned
// by an image. Deletes of every other DataVolume never wait on the service.
var WhenDVImageDelete = admit.CELAnd(
	admit.CELUserNotIn(admit.DefaultPrivilegedUsers),
	admit.CELUpdate,
	admit.CELOwnedBy(admit.CELOld, harvester.ImageGVR.Group, harvester.KindImage),
)

// DataVolume runs DV-V1 on CREATE and DV-V2 on DELETE.
func DataVolume(env *admit.Env, req *admit.Request) (res admit.Result) {
	var dv admit.Object[admit.DataVolumeSpec]
	switch req.Operation {
	case admit.Create:
		if res.Decode("DataVolume", req.Object, &dv) {
			disk := func() string { return "DataVolume " + admit.ObjectName(req, dv.Name, dv.GenerateName) }
			checkGoldenClone(env, &res, req, RuleDVCloneSize, disk, req.Namespace, &dv.Spec)
		}
	case admit.Delete:
		// Without the old object (older API servers) the owner is unknown: allow.
		if len(req.OldObject) > 0 && res.Decode("old DataVolume", req.OldObject, &dv) {
			dataVolumeDelete(env, &res, req, &dv)
		}
	}
	return res
}

// dataVolumeDelete is DV-V2: the DataVolume of an existing image goes with the image. An
// owner reference to an image that no longer exists (or a new image of the same name,
// with another UID) is not an owner.
func dataVolumeDelete(env *admit.Env, res *admit.Result, req *admit.Request, dv *admit.Object[admit.DataVolumeSpec]) {
	if env.IsPrivileged(req) {
		return
	}
	for _, o := range dv.OwnerReferences {
		if !harvester.IsImageOwner(o) {
			continue
		}
		if img, ok := env.View.Image(req.Namespace, o.Name); ok && img.UID == o.UID {
			res.Deny(RuleDVImageDelete, "DataVolume %s belongs to image %s/%s and cannot be deleted while the image exists (user %q is not privileged): delete the image instead",
				admit.ObjectName(req, dv.Name, ""), img.Namespace, img.Name, req.User.Username)
			return
		}
	}
}
