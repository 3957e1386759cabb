// Package webhook connects the rules to admission: one route table (resource → mutating and
// validating rules), a kubewebhook webhook per route and kind, and the HTTP handler that
// guards them. The same table drives `serve`, `check`, `review` and the rule reference.
package webhook

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

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
	// MutateFailure and ValidateFailure are the webhooks' failurePolicy: what the API
	// server does when this service cannot answer (deploy/README.md explains each choice).
	MutateFailure, ValidateFailure admissionregistrationv1.FailurePolicyType
	// ValidateWhen, when set, is a CEL matchCondition of the validating webhook: the API
	// server calls it only for requests where the expression is true. It must hold for
	// every request a rule of the route could deny or warn about.
	ValidateWhen string
	Rules        []Rule
}

var (
	fail   = admissionregistrationv1.Fail
	ignore = admissionregistrationv1.Ignore
)

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
	update       = []admit.Operation{admit.Update}
	del          = []admit.Operation{admit.Delete}
	createUpdate = []admit.Operation{admit.Create, admit.Update}
	createDelete = []admit.Operation{admit.Create, admit.Delete}
	all          = []admit.Operation{admit.Create, admit.Update, admit.Delete}
)

// Routes is the route table: every resource, its webhooks and its rules.
func Routes() []Route {
	return []Route{
		{
			Group: harvester.ImageGVR.Group, Version: harvester.ImageGVR.Version, Resource: harvester.ImageGVR.Resource, Kind: "VirtualMachineImage", Namespaced: true,
			SubResources: []string{""},
			Mutate:       mutators.Image, MutateOps: create, MutateFailure: fail,
			Validate: validators.Image, ValidateOps: createUpdate, ValidateFailure: fail,
			Rules: []Rule{
				{mutators.RuleImageStorageClass, "mutating", create, "fill the image storage class (annotation and spec.targetStorageClassName) from each other or the default StorageClass; deny when there is none"},
				{mutators.RuleImageBackend, "mutating", create, "set spec.backend from the class's profile; change a defaulted backingimage to cdi with a warning"},
				{validators.RuleImageClassesAgree, "validating", create, "deny when the annotation and spec.targetStorageClassName differ"},
				{validators.RuleImageClassExists, "validating", create, "deny when the image storage class does not exist"},
				{validators.RuleImageBackend, "validating", create, "deny backend cdi on a class whose profile keeps backing images"},
				{validators.RuleImageImmutable, "validating", update, "deny changes to the storage class, backend, sourceType, url, pvcName and pvcNamespace once set"},
				{validators.RuleImageExport, "validating", create, "export-from-volume: the source PVC must exist, a CDI volume cannot go to a Longhorn v1 class, and the PVC must not be in use by a running pod"},
			},
		},
		{
			Version: "v1", Resource: "persistentvolumeclaims", Kind: "PersistentVolumeClaim", Namespaced: true,
			SubResources: []string{""},
			// The mark is defence in depth (PVC-V2 also protects an unmarked PVC named like a
			// cdi image), and failing every PVC create while the service is down costs more.
			Mutate: mutators.PVC, MutateOps: create, MutateFailure: ignore,
			Validate: validators.PVC, ValidateOps: all, ValidateFailure: fail,
			// Most PVCs are plain: PVC-V3 reads only PVCs with an image reference, PVC-V1 only
			// updates of a marked PVC, so the API server skips the call (and its latency, and
			// its failurePolicy) for every other CREATE and UPDATE. DELETE always asks: an
			// unmarked PVC can be golden by its name (PVC-V2).
			ValidateWhen: `request.operation == 'DELETE' || ` +
				`(request.operation == 'CREATE' && has(object.metadata.annotations) && '` + harvester.AnnImageID + `' in object.metadata.annotations) || ` +
				`(request.operation == 'UPDATE' && has(oldObject.metadata.annotations) && '` + harvester.AnnGoldenImage + `' in oldObject.metadata.annotations && oldObject.metadata.annotations['` + harvester.AnnGoldenImage + `'] == 'true')`,
			Rules: []Rule{
				{mutators.RulePVCGolden, "mutating", create, "mark the PVC named like a cdi image with harvesterhci.io/goldenImage: \"true\""},
				{validators.RulePVCGoldenMark, "validating", update, "deny removing or changing the golden annotation"},
				{validators.RulePVCGoldenDelete, "validating", del, "deny deleting a golden PVC while its image exists and it is not Lost, unless the user is privileged"},
				{validators.RulePVCImageSize, "validating", create, "deny a PVC with an image reference that requests less than the image minimum size"},
			},
		},
		{
			Group: "kubevirt.io", Version: "v1", Resource: "virtualmachines", Kind: "VirtualMachine", Namespaced: true,
			// hotplug requests arrive as UPDATEs of the status subresource
			SubResources: []string{"", "status"},
			Validate:     validators.VirtualMachine, ValidateOps: createUpdate, ValidateFailure: fail,
			Rules: []Rule{
				{validators.RuleVMDiskSize, "validating", createUpdate, "deny a disk from an image (volumeClaimTemplates entry with an image reference, or dataVolumeTemplate cloning a golden PVC) smaller than the image minimum size; deny a volumeClaimTemplates annotation that does not parse"},
				{validators.RuleVMGoldenVolumes, "validating", createUpdate, "deny a golden PVC as a VM volume or hotplug request (status subresource too); imported VMs are exempt"},
			},
		},
		{
			Group: "cdi.kubevirt.io", Version: "v1beta1", Resource: "datavolumes", Kind: "DataVolume", Namespaced: true,
			SubResources: []string{""},
			Mutate:       mutators.DataVolume, MutateOps: create, MutateFailure: fail,
			Validate: validators.DataVolume, ValidateOps: createDelete, ValidateFailure: fail,
			Rules: []Rule{
				{mutators.RuleDVCloneStrategy, "mutating", create, "annotate a PVC clone with cdi.kubevirt.io/cloneType from the target class's profile, unless one is set"},
				{mutators.RuleDVImmediateBind, "mutating", create, "ask a golden DataVolume on a WaitForFirstConsumer class for immediate binding"},
				{validators.RuleDVCloneSize, "validating", create, "deny a clone of a golden PVC smaller than the image minimum size"},
				{validators.RuleDVImageDelete, "validating", del, "deny deleting the DataVolume of an existing image, unless the user is privileged"},
			},
		},
		{
			Group: "cdi.kubevirt.io", Version: "v1beta1", Resource: "storageprofiles", Kind: "StorageProfile",
			SubResources: []string{""},
			// CDI's controller writes StorageProfiles all the time and CDI falls back to the
			// class's clone-strategy annotation (SC-M1): a missed default costs little.
			Mutate: mutators.StorageProfile, MutateOps: createUpdate, MutateFailure: ignore,
			Rules: []Rule{
				{mutators.RuleStorageProfile, "mutating", createUpdate, "fill unset spec.cloneStrategy and spec.snapshotClass from the profile of the class of the same name"},
			},
		},
		{
			Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses", Kind: "StorageClass",
			SubResources: []string{""},
			Mutate:       mutators.StorageClass, MutateOps: create, MutateFailure: fail,
			Validate: validators.StorageClass, ValidateOps: all, ValidateFailure: fail,
			Rules: []Rule{
				{mutators.RuleStorageClassDefaults, "mutating", create, "add the profile's cdi.kubevirt.io/clone-strategy annotation and default parameters where absent"},
				{validators.RuleStorageClassCloneStrategy, "validating", createUpdate, "deny a cdi.kubevirt.io/clone-strategy annotation other than copy, snapshot or csi-clone"},
				{validators.RuleStorageClassInUse, "validating", del, "deny deleting a class that images use, listing up to 10 and the total"},
			},
		},
		{
			Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots", Kind: "VolumeSnapshot", Namespaced: true,
			SubResources: []string{""},
			Validate:     validators.VolumeSnapshot, ValidateOps: create, ValidateFailure: fail,
			Rules: []Rule{
				{validators.RuleVolumeSnapshot, "validating", create, "deny a snapshot of a PVC whose profile does not allow volume snapshots; warn when the PVC does not exist yet"},
			},
		},
		{
			Group: "harvesterhci.io", Version: "v1beta1", Resource: "virtualmachinebackups", Kind: "VirtualMachineBackup", Namespaced: true,
			SubResources: []string{""},
			Validate:     validators.VirtualMachineBackup, ValidateOps: create, ValidateFailure: fail,
			Rules: []Rule{
				{validators.RuleVMBackup, "validating", create, "deny a backup or snapshot of a VM with a PVC volume whose profile does not allow that type"},
			},
		},
	}
}

// RulesTable is the rule reference as a Markdown table: `storage-webhook rules` prints it
// and the README carries it (a test keeps them equal).
func RulesTable() string {
	var b strings.Builder
	b.WriteString("| ID | resource | webhook | operations | what it does |\n|---|---|---|---|---|\n")
	for _, r := range Routes() {
		for _, rule := range r.Rules {
			ops := make([]string, len(rule.Operations))
			for i, op := range rule.Operations {
				ops[i] = string(op)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", rule.ID, r.GroupResource(), rule.Webhook, strings.Join(ops, ", "), rule.Summary)
		}
	}
	return b.String()
}
