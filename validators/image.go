// Package validators holds the validating rules, one file per resource. A validator is a
// pure function of the request and the read-only environment; it never modifies its input
// and reports every violation it finds, each tagged with its rule ID.
package validators

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// Rule IDs of this file.
const (
	RuleImageClassesAgree = "IMG-V1"
	RuleImageClassExists  = "IMG-V2"
	RuleImageBackend      = "IMG-V3"
	RuleImageImmutable    = "IMG-V4"
	RuleImageExport       = "IMG-V5"
	// RuleImageAccess is IMG-V6: the request's user may read what the request names in
	// another place (access.go); PVC-V3, VM-V1 and DV-V1 ask it too.
	RuleImageAccess      = "IMG-V6"
	RuleImageDisplayName = "IMG-V7"
)

// Image runs IMG-V1..IMG-V7 on a VirtualMachineImage CREATE or UPDATE.
func Image(env *admit.Env, req *admit.Request) (res admit.Result) {
	var img harvester.VirtualMachineImage
	switch req.Operation {
	case admit.Create:
		if !res.Decode("VirtualMachineImage", req.Object, &img) {
			return res
		}
		name := admit.ObjectName(req, img.Name, img.GenerateName)
		imageClass(env, &res, name, &img)
		imageDisplayName(env, &res, name, &img)
		if img.Spec.SourceType == harvester.SourceExportFromVolume {
			imageExport(env, &res, req, name, &img)
		}
	case admit.Update:
		var old harvester.VirtualMachineImage
		if !res.Decode("VirtualMachineImage", req.Object, &img) || !res.Decode("old VirtualMachineImage", req.OldObject, &old) {
			return res
		}
		imageImmutable(&res, admit.ObjectName(req, img.Name, ""), &old, &img)
	}
	return res
}

// imageClass is IMG-V1, IMG-V2 and IMG-V3.
func imageClass(env *admit.Env, res *admit.Result, name string, img *harvester.VirtualMachineImage) {
	ann, spec := img.Annotations[harvester.AnnStorageClassName], img.Spec.TargetStorageClassName
	if ann != "" && spec != "" && ann != spec {
		res.Deny(RuleImageClassesAgree, "image %s: annotation %s is %q but spec.targetStorageClassName is %q: they must name the same class; set both to one value",
			name, harvester.AnnStorageClassName, ann, spec)
		return
	}
	class := img.StorageClassName()
	if class == "" {
		return // IMG-M1 fills or denies it; with no mutating webhook the image keeps its own default
	}
	cp, ok := env.Profile(class)
	if !ok {
		res.Deny(RuleImageClassExists, "image %s: storage class %q does not exist: create it first or name an existing class", name, class)
		return
	}
	// Backend cdi is valid on every class: CDI can fill a PVC of any class, and Harvester
	// itself makes cdi images on the Longhorn v1 class longhorn-static (its upgrade images).
	// Only a backing image on a class that cannot hold one is refused.
	if img.Spec.Backend == harvester.BackendBackingImage && cp.Profile.Backend != harvester.BackendBackingImage {
		res.Deny(RuleImageBackend, "image %s: spec.backend %q is not supported by storage class %q (provisioner %s, profile %s keeps images as CDI volumes, not Longhorn v1 backing images): use backend %q, or a Longhorn v1 class for a backing image",
			name, img.Spec.Backend, class, cp.Class.Provisioner, cp.Profile.Name, harvester.BackendCDI)
	}
}

// imageDisplayName is IMG-V7, on the releases whose Behaviour has DisplayNameLabelValue
// (v1.9, 89116a65): Harvester writes the displayName into a label, so it must be a valid
// label value. Like Harvester, only a new image is checked; "displayName is required" and
// the uniqueness of display names stay Harvester's own checks.
func imageDisplayName(env *admit.Env, res *admit.Result, name string, img *harvester.VirtualMachineImage) {
	if !env.Harvester().DisplayNameLabelValue {
		return
	}
	if errs := validation.IsValidLabelValue(img.Spec.DisplayName); len(errs) > 0 {
		res.Deny(RuleImageDisplayName, "image %s: displayName is not a valid Kubernetes label value: %s: use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
			name, strings.Join(errs, "; "))
	}
}

// imageExport is IMG-V5 and IMG-V6: exporting a volume into an image. Harvester's
// controllers copy the volume with their own rights, so the requester must be allowed to
// read it (IMG-V6, as Harvester's own webhook checks); until that is known, nothing about
// the PVC is read or said.
func imageExport(env *admit.Env, res *admit.Result, req *admit.Request, name string, img *harvester.VirtualMachineImage) {
	ns, pvcName := img.Spec.PVCNamespace, img.Spec.PVCName
	if ns == "" || pvcName == "" {
		res.Deny(RuleImageExport, "image %s: spec.pvcNamespace and spec.pvcName are required for sourceType %s (got %q and %q): name the PVC to export",
			name, harvester.SourceExportFromVolume, ns, pvcName)
		return
	}
	if !mayGet(env, res, req, func() string { return "image " + name }, "export it", pvcs, ns, pvcName, pvcs.named(ns, pvcName)) {
		return
	}
	pvc, ok := env.View.PVC(ns, pvcName)
	if !ok {
		res.Deny(RuleImageExport, "image %s: source PVC %s/%s does not exist: export an existing volume", name, ns, pvcName)
		return
	}
	source, sourceKnown := env.Profile(ptr.Deref(pvc.Spec.StorageClassName, ""))
	target, targetKnown := env.Profile(img.StorageClassName())
	// What cannot take a CDI volume is a Longhorn v1 backing image; a cdi image on the same
	// class is a PVC that CDI fills, which any class can hold.
	if sourceKnown && targetKnown && source.Profile.Backend == harvester.BackendCDI &&
		img.Spec.Backend == harvester.BackendBackingImage && !target.Profile.ExportTarget {
		res.Deny(RuleImageExport, "image %s: source PVC %s/%s is a CDI volume of class %q (profile %s) and cannot be exported into a backing image on class %q (profile %s): set spec.backend %q to export it to a CDI image on the same class, or choose a target class of a CDI provider",
			name, ns, pvcName, source.Class.Name, source.Profile.Name, target.Class.Name, target.Profile.Name, harvester.BackendCDI)
	}
	bothV1 := sourceKnown && targetKnown &&
		source.Profile.Backend == harvester.BackendBackingImage && target.Profile.Backend == harvester.BackendBackingImage
	if bothV1 {
		return // Longhorn v1 exports from a snapshot and may read a volume in use
	}
	pods := env.View.RunningPodsUsingPVC(ns, pvcName)
	switch {
	case len(pods) == 0:
	case ns == req.Namespace:
		res.Deny(RuleImageExport, "image %s: source PVC %s/%s is mounted by running pod(s) %s: stop the VM or workload that uses it, then export",
			name, ns, pvcName, strings.Join(pods, ", "))
	default:
		// The pods are objects of another namespace: say that the PVC is in use, not by whom.
		res.Deny(RuleImageExport, "image %s: source PVC %s/%s is mounted by a running pod in namespace %s: stop the VM or workload that uses it, then export",
			name, ns, pvcName, ns)
	}
}

// WhenImageImmutable is when IMG-V4 can deny: an update that changes a field it guards.
// Harvester's image controller writes the whole image (the CRD has no status subresource)
// every second of an import; those writes change none of them and never reach the service.
var WhenImageImmutable = admit.CELOr(
	admit.CELAnnotationChanged(harvester.AnnStorageClassName),
	admit.CELFieldChanged("spec.targetStorageClassName", "''"), admit.CELFieldChanged("spec.backend", "''"),
	admit.CELFieldChanged("spec.sourceType", "''"), admit.CELFieldChanged("spec.url", "''"),
	admit.CELFieldChanged("spec.pvcName", "''"), admit.CELFieldChanged("spec.pvcNamespace", "''"),
)

// imageImmutable is IMG-V4: once set, these fields never change. The storage class is set
// when either the annotation or spec.targetStorageClassName names it; filling in the other
// one later must name that same class, or the image would change class.
func imageImmutable(res *admit.Result, name string, old, img *harvester.VirtualMachineImage) {
	oldClass := old.StorageClassName()
	fields := []struct {
		field, old, new string
		class           bool
	}{
		{"metadata.annotations[" + harvester.AnnStorageClassName + "]", old.Annotations[harvester.AnnStorageClassName], img.Annotations[harvester.AnnStorageClassName], true},
		{"spec.targetStorageClassName", old.Spec.TargetStorageClassName, img.Spec.TargetStorageClassName, true},
		{"spec.backend", old.Spec.Backend, img.Spec.Backend, false},
		{"spec.sourceType", old.Spec.SourceType, img.Spec.SourceType, false},
		{"spec.url", old.Spec.URL, img.Spec.URL, false},
		{"spec.pvcName", old.Spec.PVCName, img.Spec.PVCName, false},
		{"spec.pvcNamespace", old.Spec.PVCNamespace, img.Spec.PVCNamespace, false},
	}
	for _, f := range fields {
		switch {
		case f.old != "" && f.new != f.old:
			res.Deny(RuleImageImmutable, "image %s: %s is immutable once set (was %q, now %q): create a new image instead",
				name, f.field, f.old, f.new)
		case f.class && f.old == "" && f.new != "" && oldClass != "" && f.new != oldClass:
			res.Deny(RuleImageImmutable, "image %s: %s is set to %q but the image's storage class is %q, which is immutable once set: set it to %q or create a new image instead",
				name, f.field, f.new, oldClass, oldClass)
		}
	}
}
