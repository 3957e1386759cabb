// Package mutators holds the mutating rules, one file per resource. A mutator is a pure
// function of the request and the read-only environment; it returns explicit patch
// operations (and denials or warnings), never a re-serialised object.
package mutators

import (
	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Rule IDs of this file.
const (
	RuleImageStorageClass = "IMG-M1"
	RuleImageBackend      = "IMG-M2"
)

// imageRequest decodes an image with spec as a pointer, to know whether /spec exists.
type imageRequest struct {
	Metadata metav1.ObjectMeta    `json:"metadata"`
	Spec     *harvester.ImageSpec `json:"spec"`
}

// WhenImageStorageClass is when IMG-M1 can act: the annotation or the spec lacks a class.
var WhenImageStorageClass = admit.CELOr(
	admit.CELAnnotation(admit.CELObject, harvester.AnnStorageClassName)+" == ''",
	admit.CELField(admit.CELObject, "spec.targetStorageClassName", "''")+" == ''",
)

// WhenImageBackend is when IMG-M2 can act: the backend is not cdi already (cdi is never
// changed: it is valid on every class).
var WhenImageBackend = admit.CELField(admit.CELObject, "spec.backend", "''") + " != " + admit.CELString(harvester.BackendCDI)

// Image runs IMG-M1 and IMG-M2 on a VirtualMachineImage CREATE.
func Image(env *admit.Env, req *admit.Request) (res admit.Result) {
	if req.Operation != admit.Create {
		return res
	}
	var img imageRequest
	if !res.Decode("VirtualMachineImage", req.Object, &img) {
		return res
	}
	name := admit.ObjectName(req, img.Metadata.Name, img.Metadata.GenerateName)
	if img.Spec == nil {
		img.Spec = &harvester.ImageSpec{}
		res.AddObject(RuleImageStorageClass, map[string]any{}, "spec")
	}

	// IMG-M1: the annotation and spec.targetStorageClassName name the same class; the
	// cluster's default class when neither does.
	ann, spec := img.Metadata.Annotations[harvester.AnnStorageClassName], img.Spec.TargetStorageClassName
	class := ann
	switch {
	case ann == "" && spec == "":
		sc, ok := env.View.DefaultStorageClass()
		if !ok {
			res.Deny(RuleImageStorageClass, "image %s: no storage class is given (annotation %s or spec.targetStorageClassName) and the cluster has no default StorageClass: name a class, or mark one with %s: \"true\"",
				name, harvester.AnnStorageClassName, harvester.AnnIsDefaultClass)
			return res
		}
		class = sc.Name
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
	want := cp.Profile.Backend
	switch backend := img.Spec.Backend; {
	case backend == "":
		res.SetField(RuleImageBackend, backend, want, "spec", "backend")
	case backend == harvester.BackendBackingImage && want == harvester.BackendCDI:
		res.SetField(RuleImageBackend, backend, want, "spec", "backend")
		res.Warn(RuleImageBackend, "image %s: spec.backend changed from %q to %q: storage class %q (provisioner %s, profile %s) keeps images as CDI volumes, not Longhorn v1 backing images",
			name, backend, want, class, cp.Class.Provisioner, cp.Profile.Name)
	}
	return res
}
