// Package webhook connects the rules to admission: one route table (resource → mutating and
// validating rules), a kubewebhook webhook per route and kind, and the HTTP handler that
// guards them. The same table drives `serve`, `check`, `review` and the rule reference.
package webhook

import (
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/mutators"
	"github.com/hcistorage/storage-webhook/rollout"
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
	// When is a CEL expression (SPEC §5.9) that holds for every request of Operations the
	// rule can deny, warn about or mutate; "" is every such request. It lives next to the
	// rule's code; the webhook's matchCondition is the disjunction over its rules, so the
	// API server calls this service only when some rule can act.
	When string
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
	Rules                          []Rule
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
			Mutate:       mutators.Image, MutateOps: createUpdate, MutateFailure: fail,
			Validate: validators.Image, ValidateOps: createUpdate, ValidateFailure: fail,
			Rules: []Rule{
				{mutators.RuleImageStorageClass, "mutating", createUpdate, "fill the image storage class (annotation and spec.targetStorageClassName) from each other or the default StorageClass; deny when there is none; on update, set again what a re-applied manifest lacks", mutators.WhenImageStorageClass},
				{mutators.RuleImageBackend, "mutating", createUpdate, "set spec.backend from the class's profile; change a defaulted backingimage to cdi with a warning; on update, set again the backend it set", mutators.WhenImageBackend},
				{validators.RuleImageClassesAgree, "validating", create, "deny when the annotation and spec.targetStorageClassName differ", ""},
				{validators.RuleImageClassExists, "validating", create, "deny when the image storage class does not exist", ""},
				{validators.RuleImageBackend, "validating", create, "deny backend backingimage on a class whose profile keeps CDI volumes; cdi is valid on every class", ""},
				{validators.RuleImageImmutable, "validating", update, "deny changes to the storage class, backend, sourceType, url, pvcName and pvcNamespace once set", validators.WhenImageImmutable},
				{validators.RuleImageExport, "validating", create, "export-from-volume: the source PVC must exist, a CDI volume cannot become a Longhorn v1 backing image, and the PVC must not be in use by a running pod (whose names are given only in the image's own namespace)", ""},
				{validators.RuleImageAccess, "validating", create, "the request's user must be allowed to get what the request names elsewhere: an export's source PVC, or a disk's image in another namespace (PVC-V3, VM-V1, DV-V1); asked with a SubjectAccessReview, cached briefly, and refused with a retryable 503 when it cannot be known", ""},
				{validators.RuleImageDisplayName, "validating", create, "from Harvester v1.9: deny a spec.displayName that is not a valid label value", ""},
			},
		},
		{
			Version: "v1", Resource: "persistentvolumeclaims", Kind: "PersistentVolumeClaim", Namespaced: true,
			SubResources: []string{""},
			// The mark is defence in depth (PVC-V2 also protects CDI's unmarked target PVC of
			// an image's DataVolume), and failing PVC creates while the service is down costs more.
			Mutate: mutators.PVC, MutateOps: createUpdate, MutateFailure: ignore,
			Validate: validators.PVC, ValidateOps: all, ValidateFailure: fail,
			Rules: []Rule{
				{mutators.RulePVCGolden, "mutating", createUpdate, "mark CDI's PVC of the DataVolume named like a cdi image with harvesterhci.io/goldenImage: \"true\"; on update, set again a mark the update drops", mutators.WhenPVCGolden},
				{validators.RulePVCGoldenMark, "validating", update, "deny removing or changing the golden annotation", validators.WhenPVCGoldenMark},
				{validators.RulePVCGoldenDelete, "validating", del, "deny deleting a golden PVC (marked, or CDI's PVC of a cdi image's DataVolume) while its image exists and it is not Lost, unless the user is privileged", validators.WhenPVCGoldenDelete},
				{validators.RulePVCImageSize, "validating", create, "deny a PVC with an image reference that requests less than the image minimum size", validators.WhenPVCImageSize},
				{validators.RulePVCImageClass, "validating", create, "deny a PVC on a Longhorn backing-image class whose image reference names another image than the class's", validators.WhenPVCImageSize},
				{validators.RuleImageAccess, "validating", create, "an image reference to another namespace: the request's user must be allowed to get that image (SubjectAccessReview)", validators.WhenPVCImageSize},
			},
		},
		{
			Group: "kubevirt.io", Version: "v1", Resource: "virtualmachines", Kind: "VirtualMachine", Namespaced: true,
			// hotplug requests arrive as UPDATEs of the status subresource
			SubResources: []string{"", "status"},
			Validate:     validators.VirtualMachine, ValidateOps: createUpdate, ValidateFailure: fail,
			Rules: []Rule{
				{validators.RuleVMDiskSize, "validating", createUpdate, "deny a disk from an image (volumeClaimTemplates entry with an image reference, or dataVolumeTemplate cloning a golden PVC) smaller than the image minimum size; deny a volumeClaimTemplates annotation that does not parse", validators.WhenVMDiskSize},
				{validators.RuleImageAccess, "validating", createUpdate, "a disk whose image (image reference, or golden PVC cloned) is in another namespace: the request's user must be allowed to get that image (SubjectAccessReview)", validators.WhenVMDiskSize},
				{validators.RuleVMGoldenVolumes, "validating", createUpdate, "deny a golden PVC as a VM volume or hotplug request (status subresource too); imported VMs are exempt", validators.WhenVMGoldenVolumes},
				{validators.RuleVMShareableDisks, "validating", createUpdate, "from Harvester v1.9: deny a shareable disk that boots, has a cache mode other than none, or is not backed by an existing ReadWriteMany Block PVC of a provisioner other than Longhorn", validators.WhenVMShareableDisks},
				{validators.RuleVMImageClass, "validating", createUpdate, "deny a volumeClaimTemplates entry on a Longhorn backing-image class whose image reference names another image than the class's; an entry without one is sized (VM-V1) and authorized (IMG-V6) against the class's image", validators.WhenVMDiskSize},
			},
		},
		{
			Group: "cdi.kubevirt.io", Version: "v1beta1", Resource: "datavolumes", Kind: "DataVolume", Namespaced: true,
			SubResources: []string{""},
			Mutate:       mutators.DataVolume, MutateOps: createUpdate, MutateFailure: fail,
			Validate: validators.DataVolume, ValidateOps: createDelete, ValidateFailure: fail,
			Rules: []Rule{
				{mutators.RuleDVCloneStrategy, "mutating", createUpdate, "annotate a PVC clone with cdi.kubevirt.io/cloneType from the target class's effective clone strategy, unless one is set; on update, set again one the update drops", mutators.WhenDVCloneStrategy},
				{mutators.RuleDVImmediateBind, "mutating", createUpdate, "ask an image's DataVolume on a WaitForFirstConsumer class for immediate binding; on update, ask again when the update drops the request", mutators.WhenDVImmediateBind},
				{validators.RuleDVCloneSize, "validating", create, "deny a clone of a golden PVC smaller than the image minimum size", validators.WhenDVCloneSize},
				{validators.RuleImageAccess, "validating", create, "a clone of a golden PVC in another namespace: the request's user must be allowed to get its image (SubjectAccessReview)", validators.WhenDVCloneSize},
				{validators.RuleDVImageDelete, "validating", del, "deny deleting the DataVolume of an existing image, unless the user is privileged", validators.WhenDVImageDelete},
			},
		},
		{
			Group: "cdi.kubevirt.io", Version: "v1beta1", Resource: "storageprofiles", Kind: "StorageProfile",
			SubResources: []string{""},
			// CDI's controller creates StorageProfiles and must never wait on this service. A
			// missed fill costs little: CDI falls back to the class's clone-strategy annotation
			// (SC-M1), and in Harvester its storage class controller copies the class's
			// annotations (SC-M1 writes them) into the profile anyway.
			Mutate: mutators.StorageProfile, MutateOps: createUpdate, MutateFailure: ignore,
			Rules: []Rule{
				{mutators.RuleStorageProfile, "mutating", createUpdate, "fill unset spec.cloneStrategy, spec.snapshotClass and spec.claimPropertySets from the effective settings of the class of the same name", mutators.WhenStorageProfile},
			},
		},
		{
			Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses", Kind: "StorageClass",
			SubResources: []string{""},
			Mutate:       mutators.StorageClass, MutateOps: createUpdate, MutateFailure: fail,
			Validate: validators.StorageClass, ValidateOps: all, ValidateFailure: fail,
			Rules: []Rule{
				{mutators.RuleStorageClassDefaults, "mutating", createUpdate, "write the effective clone strategy, snapshot class and access modes as Harvester's annotations and the clone strategy as cdi.kubevirt.io/clone-strategy, and the profile's default parameters, where absent; on update, set again those the update drops, and keep the two clone-strategy annotations equal", mutators.WhenStorageClassDefaults},
				{validators.RuleStorageClassCloneStrategy, "validating", createUpdate, "deny a cdi.kubevirt.io/clone-strategy annotation other than copy, snapshot or csi-clone, on create or when an update sets or changes it", validators.WhenStorageClassCloneStrategy},
				{validators.RuleStorageClassCDISettings, "validating", createUpdate, "deny invalid per-class CDI settings (format, a missing VolumeSnapshotClass, clone strategy snapshot without a snapshot class, two clone strategies, any on a Longhorn v1 class), on create or when an update changes them; warn when CDI has no access modes for the class", validators.WhenStorageClassCDISettings},
				{validators.RuleStorageClassInUse, "validating", del, "deny deleting a class that images use, saying how many and how to list them (not their names: they are in namespaces the deleter may not read)", ""},
			},
		},
		{
			Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots", Kind: "VolumeSnapshot", Namespaced: true,
			SubResources: []string{""},
			Validate:     validators.VolumeSnapshot, ValidateOps: create, ValidateFailure: fail,
			Rules: []Rule{
				{validators.RuleVolumeSnapshot, "validating", create, "deny a snapshot of a PVC whose profile does not allow volume snapshots on the Harvester release in force, or (from v1.9) that a VM uses as a shareable disk; warn when the PVC does not exist yet", validators.WhenVolumeSnapshot},
			},
		},
		{
			Group: "harvesterhci.io", Version: "v1beta1", Resource: "virtualmachinebackups", Kind: "VirtualMachineBackup", Namespaced: true,
			SubResources: []string{""},
			Validate:     validators.VirtualMachineBackup, ValidateOps: create, ValidateFailure: fail,
			Rules: []Rule{
				{validators.RuleVMBackup, "validating", create, "deny a backup or snapshot of a VM as Harvester's release in force does: a PVC volume whose profile does not allow the type or whose provisioner csi-driver-config does not configure for it, a shareable disk (from v1.9), a backup without a backup target", ""},
			},
		},
	}
}

// Catalogue is what the providers file's rollout is checked against: every rule ID, with
// whether it is a mutating rule, and the kinds of the route table.
func Catalogue() rollout.Catalogue {
	cat := rollout.Catalogue{Mutating: map[string]bool{}}
	for _, r := range Routes() {
		cat.Kinds = append(cat.Kinds, r.Kind)
		for _, rule := range r.Rules {
			cat.Mutating[rule.ID] = rule.Webhook == "mutating"
		}
	}
	return cat
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

// RolloutTable is each rule's action in force under a rollout (`storage-webhook rules
// --providers FILE`), one row per rule ID in the route table's order: its action where no
// override applies, its overrides in the order they are tried, and the exceptions that
// name it, those expired at now marked so.
func RolloutTable(p *rollout.Policy, now time.Time) string {
	var b strings.Builder
	b.WriteString("| ID | webhook | action | overrides (first match wins) | exceptions |\n|---|---|---|---|---|\n")
	seen := map[string]bool{}
	for _, r := range Routes() {
		for _, rule := range r.Rules {
			if seen[rule.ID] {
				continue
			}
			seen[rule.ID] = true
			var overrides, names []string
			for _, o := range p.Overrides(rule.ID) {
				overrides = append(overrides, string(o.Action)+" in "+o.Where)
			}
			for _, e := range p.ExceptionsOf(rule.ID) {
				state := "until "
				if e.Expired(now) {
					state = "expired "
				}
				names = append(names, e.Name+" ("+state+e.Expires.UTC().Format(time.RFC3339)+")")
			}
			cell := func(parts []string) string { return strings.ReplaceAll(strings.Join(parts, "; "), "|", "\\|") }
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", rule.ID, rule.Webhook, p.Action(rule.ID), cell(overrides), cell(names))
		}
	}
	return b.String()
}

// Condition is the CEL matchCondition of a route's mutating or validating webhook: the
// disjunction, over the webhook's rules, of "the operation is one of the rule's and its When
// holds", with rules of the same operations grouped. "" means the webhook is called for every
// request its operations match.
func (r *Route) Condition(mutating bool) string {
	kind, webhookOps := "validating", r.ValidateOps
	if mutating {
		kind, webhookOps = "mutating", r.MutateOps
	}
	type group struct {
		ops    []admit.Operation
		whens  []string
		always bool // a rule of these operations acts on every request
	}
	var groups []*group
	covered := map[admit.Operation]bool{}
	for _, rule := range r.Rules {
		if rule.Webhook != kind {
			continue
		}
		i := slices.IndexFunc(groups, func(g *group) bool { return slices.Equal(g.ops, rule.Operations) })
		if i < 0 {
			groups = append(groups, &group{ops: rule.Operations})
			i = len(groups) - 1
		}
		g := groups[i]
		if rule.When == "" {
			g.always = true
			for _, o := range rule.Operations {
				covered[o] = true
			}
		} else if !slices.Contains(g.whens, rule.When) {
			g.whens = append(g.whens, rule.When)
		}
	}
	if !slices.ContainsFunc(webhookOps, func(o admit.Operation) bool { return !covered[o] }) {
		return "" // every request the webhook's operations match can be acted on
	}
	terms := make([]string, len(groups))
	for i, g := range groups {
		ops := make([]string, len(g.ops))
		for j, op := range g.ops {
			ops[j] = string(op)
		}
		term := "request.operation in " + admit.CELList(ops)
		if len(ops) == 1 {
			term = "request.operation == " + admit.CELString(ops[0])
		}
		if !g.always {
			term = admit.CELAnd(term, admit.CELOr(g.whens...))
		}
		terms[i] = term
	}
	return admit.CELOr(terms...)
}
