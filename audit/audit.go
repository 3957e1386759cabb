// Package audit evaluates objects that are already stored against the rules that can hold
// for a stored object (SPEC §7 `audit`): the same rule functions the webhooks run, given
// each stored object as a CREATE of itself. A validating rule's denial is a violation, its
// warning a warning, and what a mutating rule would set is drift. `storage-webhook audit`
// runs it once over files or a live cluster; `serve` keeps it current from its watch
// caches (live.go).
package audit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/rollout"
	"github.com/hcistorage/storage-webhook/webhook"
)

// Severity of a finding.
type Severity string

const (
	Violation Severity = "violation" // a validating rule would deny the object
	Drift     Severity = "drift"     // a mutating rule would add or change a field
	Warning   Severity = "warning"   // a rule would warn
	// Skip is a finding an unexpired exception lets the object have (Finding.Exception
	// names it); an expired one matches nothing, and the finding is what it was.
	Skip Severity = "skip"
)

// Finding is one rule that does not hold for one stored object.
type Finding struct {
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Rule      string   `json:"rule"`
	Severity  Severity `json:"severity"`
	// Action is the rule's action for the object (SPEC §8): Enforce, Warn or Audit; a rule
	// Off has no findings. Exception names the exception of a skipped finding.
	Action    rollout.Action `json:"action"`
	Exception string         `json:"exception,omitempty"`
	Message   string         `json:"message"`
	Fix       string         `json:"fix"`
	// APIVersion and UID identify the object in an OpenReports result.
	APIVersion string    `json:"-"`
	UID        types.UID `json:"-"`
}

// Rules are the rules that can hold for a stored object, with what they find there. The
// others cannot (README, "Audit"): IMG-M1, IMG-M2 and IMG-V4 concern a value an image can
// no longer change (IMG-V3 reports a wrong backend); IMG-V5 and IMG-V6 check an export and
// its requester at the moment of creation; IMG-V7, like Harvester's own check, judges only
// a new image's display name, which cannot change after; PVC-V1 and VM-V2's hotplug-by-update are
// transitions; PVC-V2, DV-V2 and SC-V2 guard deletes; DV-M1, DV-M2 and DV-V1 act on
// DataVolumes, which are short-lived and not cached (their PVCs are checked by PVC-V3 and
// the VMs that clone by VM-V1); VMB-V1 judges a backup about to be taken.
var Rules = []string{"IMG-V1", "IMG-V2", "IMG-V3", "PVC-M1", "PVC-V3", "PVC-V4", "VM-V1", "VM-V2", "VM-V3", "VM-V4", "SC-M1", "SC-V1", "SC-V3", "SP-M1", "VS-V1"}

// User is the request user of the reviews audit makes; no rule audit runs reads it.
const User = "system:storage-webhook:audit"

// Auditor evaluates stored objects with the rules of Rules.
type Auditor struct {
	routes map[string]route // by resource
	env    *admit.Env       // the rollout in force and the namespaces' labels
}

type route struct {
	gvk                  schema.GroupVersionKind
	mutating, validating *webhook.Hook
}

// New makes an Auditor over the hooks of env (webhook.Hooks). They run with every rule
// enforced (the rollout is applied when findings are read: Decide), and IMG-V6's question
// answered yes: the audit judges objects already stored, whose author is unknown, and asks
// the API server nothing.
func New(env *admit.Env) *Auditor {
	a := &Auditor{routes: map[string]route{}, env: env}
	stored := *env
	stored.Access, stored.EnforceAll = admit.Granted{}, true
	hooks := webhook.Hooks(&stored)
	for _, r := range webhook.Routes() {
		m, v := webhook.Chain(hooks, schema.GroupKind{Group: r.Group, Kind: r.Kind})
		a.routes[r.Resource] = route{gvk: schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}, mutating: m, validating: v}
	}
	return a
}

// Resources are the resources audit reads, in the route table's order.
func (a *Auditor) Resources() []string {
	var out []string
	for _, r := range webhook.Routes() {
		out = append(out, r.Resource)
	}
	return out
}

// Object audits one stored object of resource, with every rule enforced: Decide applies
// the rollout. An error is an internal failure of a rule (a recovered panic), never a
// finding.
func (a *Auditor) Object(resource string, obj any) ([]Finding, error) {
	r, ok := a.routes[resource]
	if !ok {
		return nil, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", resource, err)
	}
	if m.GetDeletionTimestamp() != nil {
		return nil, nil // on its way out: nothing to fix
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.gvk.Kind, cluster.NamespacedName(m.GetNamespace(), m.GetName()), err)
	}
	req := admit.Request{Operation: admit.Create, Namespace: m.GetNamespace(), Name: m.GetName(), Object: raw}
	req.User.Username = User
	base := Finding{Kind: r.gvk.Kind, APIVersion: r.gvk.GroupVersion().String(), Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID()}
	var out []Finding
	add := func(rule string, sev Severity, msg, fix string) {
		if slices.Contains(Rules, rule) {
			f := base
			f.Rule, f.Severity, f.Message, f.Fix = rule, sev, msg, fix
			out = append(out, f)
		}
	}
	// The stored object as it is, not as the mutators would leave it: what is wrong with it
	// now. The mutators' patches are the drift.
	for _, h := range []*webhook.Hook{r.mutating, r.validating} {
		if h == nil {
			continue
		}
		res, err := h.Run(&req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.gvk.Kind, cluster.NamespacedName(base.Namespace, base.Name), err)
		}
		for _, d := range res.Denials {
			add(d.Rule, Violation, d.Message, webhook.RuleFixes[d.Rule])
		}
		for _, w := range res.Warnings {
			add(w.Rule, Warning, w.Message, webhook.RuleFixes[w.Rule])
		}
		for _, rule := range res.Mutations() {
			var ops []admit.Op
			for _, op := range res.Patch {
				if op.Rule == rule {
					ops = append(ops, op)
				}
			}
			add(rule, Drift, drift(&base, rule, ops), driftFix(&base, resource, ops))
		}
	}
	return out, nil
}

// drift says what a mutating rule would set.
func drift(f *Finding, rule string, ops []admit.Op) string {
	parts := make([]string, len(ops))
	for i, op := range ops {
		v, _ := json.Marshal(op.Value)
		parts[i] = describePath(op.Path) + " = " + string(v)
	}
	return fmt.Sprintf("%s %s lacks what %s sets on new objects: %s", f.Kind, cluster.NamespacedName(f.Namespace, f.Name), rule, strings.Join(parts, "; "))
}

// describePath names a patch path for people: an annotation, a parameter or a field.
func describePath(path string) string {
	switch {
	case strings.HasPrefix(path, "/metadata/annotations/"):
		return "annotation " + admit.PointerUnescape(strings.TrimPrefix(path, "/metadata/annotations/"))
	case path == "/metadata/annotations":
		return "annotations"
	case strings.HasPrefix(path, "/parameters/"):
		return "parameter " + admit.PointerUnescape(strings.TrimPrefix(path, "/parameters/"))
	}
	return strings.ReplaceAll(strings.TrimPrefix(admit.PointerUnescape(path), "/"), "/", ".")
}

// driftFix is the command that makes the stored object what the mutator would have made
// it: a JSON patch of exactly the mutator's operations. A StorageClass's parameters cannot
// change after creation, so for those the fix is to recreate the class.
func driftFix(f *Finding, resource string, ops []admit.Op) string {
	if slices.ContainsFunc(ops, func(op admit.Op) bool { return strings.HasPrefix(op.Path, "/parameters") }) {
		return "StorageClass parameters cannot change: recreate the class with them (kubectl get storageclass " + f.Name +
			" -o yaml, add them, kubectl replace --force); the annotations can be patched with kubectl annotate"
	}
	patch, _ := json.Marshal(ops) // admit.Op marshals to op, path and value only
	cmd := "kubectl patch " + resource + " " + f.Name
	if f.Namespace != "" {
		cmd += " -n " + f.Namespace
	}
	return cmd + " --type=json -p '" + string(patch) + "'"
}

// Lister is what audit reads: every stored object of a resource.
type Lister interface {
	List(resource string) []any
}

var _ Lister = (*cluster.Cache)(nil)

// Decide applies the rollout in force now to findings of Object (SPEC §8), into a new
// slice: a rule Off has no findings, an unexpired exception makes a finding a skip naming
// it, and every finding carries its rule's action for the object. It runs when findings are
// read, so an exception stops matching at the second it expires, with no event.
func (a *Auditor) Decide(fs []Finding) []Finding {
	out := make([]Finding, 0, len(fs))
	policy := a.env.Policy()
	for _, f := range fs {
		d := policy.Decide(f.Rule, &rollout.Subject{Kind: f.Kind, Namespace: f.Namespace, Name: f.Name, Stored: true,
			Namespaces: a.env.View})
		if d.Action == rollout.Off {
			continue
		}
		f.Action = d.Action
		if d.Exception != "" {
			f.Severity, f.Exception = Skip, d.Exception
		}
		out = append(out, f)
	}
	return out
}

// All audits every object of view and decides the findings (Decide), sorted by kind,
// namespace, name and rule. The errors are the objects a rule failed on; the rest are
// still audited.
func (a *Auditor) All(view Lister) ([]Finding, []error) {
	var out []Finding
	var errs []error
	for _, res := range a.Resources() {
		for _, obj := range view.List(res) {
			fs, err := a.Object(res, obj)
			if err != nil {
				errs = append(errs, err)
			}
			out = append(out, fs...)
		}
	}
	out = a.Decide(out)
	Sort(out)
	return out, errs
}

// Sort orders findings by kind, namespace, name, rule, severity and message.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name),
			strings.Compare(a.Rule, b.Rule), strings.Compare(string(a.Severity), string(b.Severity)), strings.Compare(a.Message, b.Message))
	})
}
