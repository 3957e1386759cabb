// Package webhook connects the rules to admission: one route table (resource → mutating and
// validating rules), a kubewebhook webhook per route and kind, and the HTTP handler that
// guards them. The same table drives `serve`, `check`, `review` and the rule reference.
package webhook

import (
	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/mutators"
	"github.com/hcistorage/storage-webhook/validators"
)

// RuleFunc is a mutator or validator.
type RuleFunc func(*admit.Env, *admit.Request) admit.Result

// Rule documents one rule of SPEC §4.
type Rule struct {
	ID         string
	Webhook    string // "mutating" or "validating"
	Operations []admit.Operation
	Summary    string
}

// Route is one resource the webhook serves.
type Route struct {
	Group, Version, Resource, Kind string
	Namespaced                     bool
	// SubResources that the route also accepts ("" is the resource itself).
	SubResources []string
	Mutate       RuleFunc
	MutateOps    []admit.Operation
	Validate     RuleFunc
	ValidateOps  []admit.Operation
	Rules        []Rule
}

// MutatePath and ValidatePath are the HTTP paths of a route's webhooks.
func (r *Route) MutatePath() string   { return "/mutate/" + r.Resource }
func (r *Route) ValidatePath() string { return "/validate/" + r.Resource }

// GroupResource is "resource.group" (just "resource" for the core group), for labels.
func (r *Route) GroupResource() string {
	if r.Group == "" {
		return r.Resource
	}
	return r.Resource + "." + r.Group
}

var (
	create       = []admit.Operation{admit.Create}
	createUpdate = []admit.Operation{admit.Create, admit.Update}
	all          = []admit.Operation{admit.Create, admit.Update, admit.Delete}
)

// Routes is the route table: every resource, its webhooks and its rules.
func Routes() []Route {
	return []Route{
		{
			Group: harvester.ImageGVR.Group, Version: harvester.ImageGVR.Version, Resource: harvester.ImageGVR.Resource, Kind: "VirtualMachineImage", Namespaced: true,
			SubResources: []string{""},
			Mutate:       mutators.Image, MutateOps: create,
			Validate: validators.Image, ValidateOps: createUpdate,
			Rules: []Rule{
				{mutators.RuleImageStorageClass, "mutating", create, "fill the image storage class (annotation and spec.targetStorageClassName) from each other or the default StorageClass; deny when there is none"},
				{mutators.RuleImageBackend, "mutating", create, "set spec.backend from the class's profile; change a defaulted backingimage to cdi with a warning"},
				{validators.RuleImageClassesAgree, "validating", create, "deny when the annotation and spec.targetStorageClassName differ"},
				{validators.RuleImageClassExists, "validating", create, "deny when the image storage class does not exist"},
				{validators.RuleImageBackend, "validating", create, "deny backend cdi on a class whose profile keeps backing images"},
				{validators.RuleImageImmutable, "validating", []admit.Operation{admit.Update}, "deny changes to the storage class, backend, sourceType, url, pvcName and pvcNamespace once set"},
				{validators.RuleImageExport, "validating", create, "export-from-volume: the source PVC must exist, a CDI volume cannot go to a Longhorn v1 class, and the PVC must not be in use by a running pod"},
			},
		},
		{
			Version: "v1", Resource: "persistentvolumeclaims", Kind: "PersistentVolumeClaim", Namespaced: true,
			SubResources: []string{""},
			Mutate:       mutators.PVC, MutateOps: create,
			Validate: validators.PVC, ValidateOps: all,
			Rules: []Rule{
				{mutators.RulePVCGolden, "mutating", create, "mark the PVC named like a cdi image with harvesterhci.io/goldenImage: \"true\""},
				{validators.RulePVCGoldenMark, "validating", []admit.Operation{admit.Update}, "deny removing or changing the golden annotation"},
				{validators.RulePVCGoldenDelete, "validating", []admit.Operation{admit.Delete}, "deny deleting a golden PVC while its image exists and it is not Lost, unless the user is privileged"},
				{validators.RulePVCImageSize, "validating", create, "deny a PVC with an image reference that requests less than the image minimum size"},
			},
		},
	}
}
