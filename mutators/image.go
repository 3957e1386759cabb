// Package mutators holds the mutating rules, one file per resource. A mutator is a pure
// function of the request and the read-only environment; it returns explicit patch
// operations (and denials or warnings), never a re-serialised object.
package mutators

import (
	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// Rule IDs of this file.
const (
	RuleImageStorageClass = "IMG-M1"
	RuleImageBackend      = "IMG-M2"
)

// imageRequest decodes an image with spec as a pointer, to know whether /spec exists.
type imageRequest struct {
	Metadata admit.ObjectMeta     `json:"metadata"`
	Spec     *harvester.ImageSpec `json:"spec"`
}

// WhenImageStorageClass is when IMG-M1 can act: the annotation or the spec lacks a class.
// Harvester's own writes carry both, so they never reach the service.
var WhenImageStorageClass = admit.CELOr(
	admit.CELAnnotation(admit.CELObject, harvester.AnnStorageClassName)+" == ''",
	admit.CELField(admit.CELObject, "spec.targetStorageClassName", "''")+" == ''",
)

// WhenImageBackend is when IMG-M2 can act: on CREATE a backend that is not cdi already (cdi
// is never changed: it is valid on every class); on UPDATE a backend the update changes.
var WhenImageBackend = admit.CELOr(
	admit.CELCreate+" && "+admit.CELField(admit.CELObject, "spec.backend", "''")+" != "+admit.CELString(harvester.BackendCDI),
	admit.CELUpdate+" && "+admit.CELFieldChanged("spec.backend", "''"),
)

// Image runs IMG-M1 and IMG-M2 on a VirtualMachineImage CREATE, and again on an UPDATE that
// would undo what they set (SPEC §5.8): a re-applied manifest that lacks the class IMG-M1
// copied or defaulted, or states the backend IMG-M2 corrected, gets the stored value again,
// so the re-apply is admitted with nothing to diff. An update that changes a value to
// something else is left alone for IMG-V4 to deny.
func Image(env *admit.Env, req *admit.Request) (res admit.Result) {
	var img, old imageRequest
	if !res.Decode("VirtualMachineImage", req.Object, &img) {
		return res
	}
	update := req.Operation == admit.Update
	if update && !res.Decode("old VirtualMachineImage", req.OldObject, &old) {
		return res
	}
	name := admit.ObjectName(req, img.Metadata.Name, img.Metadata.GenerateName)
	if img.Spec == nil {
		img.Spec = &harvester.ImageSpec{}
		res.AddMember(RuleImageStorageClass, map[string]any{}, "spec")
	}
	if old.Spec == nil {
		old.Spec = &harvester.ImageSpec{}
	}

	// IMG-M1: the annotation and spec.targetStorageClassName name the same class; when
	// neither does, the cluster's default class on CREATE, the image's own class on UPDATE.
	ann, spec := img.Metadata.Annotations[harvester.AnnStorageClassName], img.Spec.TargetStorageClassName
	class := ann
	switch {
	case ann == "" && spec == "":
		class = imageClassOf(&old) // on UPDATE, the image's own class
		if !update {
			sc, ok := env.View.DefaultStorageClass()
			if !ok {
				res.Deny(RuleImageStorageClass, "image %s: no storage class is given (annotation %s or spec.targetStorageClassName) and the cluster has no default StorageClass: name a class, or mark one with %s: \"true\"",
					name, harvester.AnnStorageClassName, harvester.AnnIsDefaultClass)
				return res
			}
			class = sc.Name
		}
		if class == "" {
			return res // an image that never had a class may get one later (IMG-V4)
		}
		res.SetAnnotation(RuleImageStorageClass, img.Metadata.Annotations, harvester.AnnStorageClassName, class)
		res.SetField(RuleImageStorageClass, spec, class, "spec", "targetStorageClassName")
	case ann == "":
		class = spec
		res.SetAnnotation(RuleImageStorageClass, img.Metadata.Annotations, harvester.AnnStorageClassName, class)
	case spec == "":
		res.SetField(RuleImageStorageClass, spec, class, "spec", "targetStorageClassName")
	}

	// IMG-M2: the backend follows the class's profile. An unknown class is IMG-V2's to deny.
	cp, ok := env.Profile(class)
	if !ok {
		return res
	}
	want, backend := cp.Profile.Backend, img.Spec.Backend
	if update && (backend == old.Spec.Backend || old.Spec.Backend != want) {
		return res // unchanged, or a value IMG-M2 did not set: IMG-V4's to judge
	}
	switch {
	case backend == "":
		res.SetField(RuleImageBackend, backend, want, "spec", "backend")
	case backend == harvester.BackendBackingImage && want == harvester.BackendCDI:
		res.SetField(RuleImageBackend, backend, want, "spec", "backend")
		res.Warn(RuleImageBackend, "image %s: spec.backend changed from %q to %q: storage class %q (provisioner %s, profile %s) keeps images as CDI volumes, not Longhorn v1 backing images",
			name, backend, want, class, cp.Class.Provisioner, cp.Profile.Name)
	}
	return res
}

// imageClassOf is an image's class from the decoded request shape.
func imageClassOf(img *imageRequest) string {
	if c := img.Metadata.Annotations[harvester.AnnStorageClassName]; c != "" {
		return c
	}
	return img.Spec.TargetStorageClassName
}
