package validators

import (
	"slices"
	"strings"

	storagev1 "k8s.io/api/storage/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/providers"
)

// Rule IDs of this file.
const (
	RuleStorageClassCloneStrategy = "SC-V1"
	RuleStorageClassInUse         = "SC-V2"
)

// maxListed bounds the names a denial lists; the total is always given.
const maxListed = 10

// WhenStorageClassCloneStrategy is when SC-V1 can deny: a class created with the
// clone-strategy annotation, or an update that sets or changes it.
var WhenStorageClassCloneStrategy = admit.CELAnd(
	admit.CELHasAnnotation(admit.CELObject, harvester.AnnCDIClassCloneStrategy),
	admit.CELCreate+" || "+admit.CELAnnotationChanged(harvester.AnnCDIClassCloneStrategy),
)

// StorageClass runs SC-V1 on CREATE and UPDATE, SC-V2 on DELETE. On UPDATE, SC-V1 checks the
// annotation only when the update sets or changes it: a class admitted before this webhook
// is never blocked by a value it already had.
func StorageClass(env *admit.Env, req *admit.Request) (res admit.Result) {
	switch req.Operation {
	case admit.Create, admit.Update:
		var sc, old storagev1.StorageClass
		if !res.Decode("StorageClass", req.Object, &sc) {
			return res
		}
		if req.Operation == admit.Update && !res.Decode("old StorageClass", req.OldObject, &old) {
			return res
		}
		v, ok := sc.Annotations[harvester.AnnCDIClassCloneStrategy]
		if was, had := old.Annotations[harvester.AnnCDIClassCloneStrategy]; ok && had && was == v {
			return res
		}
		if ok && !slices.Contains(providers.CloneStrategies, v) {
			res.Deny(RuleStorageClassCloneStrategy, "StorageClass %s: annotation %s is %q, which CDI does not know: use one of %s",
				admit.ObjectName(req, sc.Name, sc.GenerateName), harvester.AnnCDIClassCloneStrategy, v, strings.Join(providers.CloneStrategies, ", "))
		}
	case admit.Delete:
		images := env.View.ImagesUsingStorageClass(req.Name)
		if len(images) == 0 {
			return res
		}
		listed := images[:min(len(images), maxListed)]
		more := ""
		if len(images) > maxListed {
			more = ", ..."
		}
		res.Deny(RuleStorageClassInUse, "StorageClass %s is the storage class of %d image(s) (%s%s): delete or move those images first",
			req.Name, len(images), strings.Join(listed, ", "), more)
	}
	return res
}
