// Package admit is the vocabulary of the rules: the request a rule sees, the environment it
// reads, and the result it returns (denials, warnings and patch operations, each tagged with
// its rule ID). Rules are plain functions in mutators/ and validators/; package webhook
// connects them to HTTP.
package admit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/rollout"
)

// Operation is an admission operation.
type Operation string

const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
	Delete Operation = "DELETE"
)

// Request is what a rule knows about one admission request.
type Request struct {
	Operation   Operation
	Namespace   string
	Name        string
	SubResource string
	User        authenticationv1.UserInfo
	DryRun      bool
	// Object and OldObject are the raw JSON of the object after and before the request
	// (OldObject is empty for CREATE, Object for DELETE).
	Object, OldObject []byte
	// Ctx is the context of the HTTP request (nil: none); read it with Context. Only
	// IMG-V6's SubjectAccessReview uses it.
	Ctx context.Context
}

// Env is what rules read besides the request: the cluster view, the configuration in force
// (the provider table and the Harvester release it follows) and the privileged users. It is
// read-only.
type Env struct {
	View cluster.View
	// Providers is the configuration in force: read the table with Table (through Profile),
	// the Harvester release and its Settings with Harvester.
	Providers  *providers.Store
	Privileged map[string]bool
	// Access answers IMG-V6's question; nil answers every question with an error, so a
	// rule that needs it refuses (retryably) rather than allows.
	Access Access
	// EnforceAll answers as if every rule were Enforce with no exception, whatever the
	// providers file's rollout says: `check --enforce-all`, and the audit, which applies
	// the rollout to its findings when they are read.
	EnforceAll bool
}

// Policy is the rollout in force (nil with EnforceAll).
func (e *Env) Policy() *rollout.Policy {
	if e.EnforceAll {
		return nil
	}
	return e.Providers.Policy()
}

// DefaultPrivilegedUsers are the users of SPEC §5.4, and the namespace controller: deleting
// a namespace deletes its images with their golden PVCs and DataVolumes, and must not wait
// on this service (SPEC §5.9). The webhooks' matchConditions leave these users' deletes out.
var DefaultPrivilegedUsers = []string{
	"system:serviceaccount:kube-system:generic-garbage-collector",
	"system:serviceaccount:harvester-system:harvester",
	"system:serviceaccount:kube-system:namespace-controller",
}

// Harvester is the Harvester the rules run beside: what its release does (Behaviour) and
// the Settings VMB-V1 reads. Rules read release-dependent behaviour here, never a version.
func (e *Env) Harvester() *providers.Harvester { return e.Providers.Harvester() }

// IsPrivileged reports whether the request's user may delete protected objects.
func (e *Env) IsPrivileged(r *Request) bool { return e.Privileged[r.User.Username] }

// ClassProfile is a storage class with its provider profile. Rules read a clone strategy,
// snapshot class or access modes from Settings, never from Profile, so that a class's own
// annotations win everywhere (SPEC §3).
type ClassProfile struct {
	Class   *storagev1.StorageClass
	Profile providers.Profile
}

// Settings are the class's effective CDI settings. They are computed when a rule asks (most
// rules read only the profile): invalid per-class settings are skipped here; SC-V3 refuses
// them and `storage-webhook profiles` lists them.
func (cp ClassProfile) Settings() providers.Settings {
	s, _ := providers.Effective(cp.Class, cp.Profile)
	return s
}

// Profile looks up a storage class and its profile. ok is false when the class is not in the
// view or no profile matches it.
func (e *Env) Profile(className string) (ClassProfile, bool) {
	sc, ok := e.View.StorageClass(className)
	if !ok {
		return ClassProfile{}, false
	}
	return e.ProfileOf(sc)
}

// ProfileOf is Profile for a class at hand (the object of a StorageClass request).
func (e *Env) ProfileOf(sc *storagev1.StorageClass) (ClassProfile, bool) {
	p, ok := e.Providers.Table().Match(sc)
	return ClassProfile{Class: sc, Profile: p}, ok
}

// ProfileWhy names a class's profile and where the ability that decides a denial comes
// from: the Harvester release in force (fromRelease: a built-in row's, or one a providers
// file's row leaves unset, Profile.FromRelease), or the providers file's row.
func (e *Env) ProfileWhy(cp ClassProfile, fromRelease bool) string {
	if fromRelease {
		return "profile " + cp.Profile.Name + " as on " + e.Harvester().String()
	}
	return "profile " + cp.Profile.Name + " of the providers file"
}

// Finding is a denial or warning of one rule, and what the rollout made of it (Apply).
type Finding struct {
	Rule    string
	Message string
	// Action is the rule's action for the object ("" before Apply, which is Enforce);
	// Exception names the exception that let the object skip the rule.
	Action    rollout.Action
	Exception string
	// Denial marks, in Warnings and Recorded, a denial that the rollout did not enforce: a
	// request the rule would deny in Enforce.
	Denial bool
	// retry marks a denial that a retry may lift (DenyRetry).
	retry bool
}

func (f Finding) String() string { return "[" + f.Rule + "] " + f.Message }

// Result is what the rules of one webhook decided, and after Apply, what the rollout made
// of it: Denials, Warnings and Patch are the answer; Recorded and Withheld are kept out of
// it and only recorded (audit annotations, metrics, log lines).
type Result struct {
	Denials  []Finding
	Warnings []Finding
	Patch    []Op
	// Recorded are the denials of rules in Audit and every result an exception skipped;
	// Withheld are the operations of mutating rules in Audit or excepted: the would-be patch.
	Recorded []Finding
	Withheld []Op
	// decoded is the object Decode read first, for SetAnnotation to see whether it has metadata.
	decoded []byte
}

// Deny records a denial of rule id.
func (r *Result) Deny(rule, format string, args ...any) {
	r.Denials = append(r.Denials, Finding{Rule: rule, Message: fmt.Sprintf(format, args...)})
}

// Warn records a warning of rule id.
func (r *Result) Warn(rule, format string, args ...any) {
	r.Warnings = append(r.Warnings, Finding{Rule: rule, Message: fmt.Sprintf(format, args...)})
}

// DenyRetry records a denial of rule id that a retry may turn into an allow: the question
// could not be answered now. It never allows (SPEC IMG-V6).
func (r *Result) DenyRetry(rule, format string, args ...any) {
	r.Deny(rule, format, args...)
	r.Denials[len(r.Denials)-1].retry = true
}

// Retryable reports whether every denial is one a retry may lift: the response then says
// 503 with a Retry-After, which clients such as client-go retry.
func (r *Result) Retryable() bool {
	return len(r.Denials) > 0 && !slices.ContainsFunc(r.Denials, func(d Finding) bool { return !d.retry })
}

// Allowed reports whether no rule denied.
func (r *Result) Allowed() bool { return len(r.Denials) == 0 }

// Message joins every denial, each prefixed with its rule ID, as the API server shows it.
func (r *Result) Message() string {
	msgs := make([]string, len(r.Denials))
	for i, d := range r.Denials {
		msgs[i] = d.String()
	}
	return strings.Join(msgs, "; ")
}

// WarningTexts returns the warnings as the API server passes them to clients.
func (r *Result) WarningTexts() []string {
	out := make([]string, len(r.Warnings))
	for i, w := range r.Warnings {
		out[i] = w.String()
	}
	return out
}

// Apply makes the rules' results what the rollout p decides for the object s (SPEC §8),
// and is the only place where actions take effect. A rule Off leaves no trace. An excepted
// rule's results go to Recorded (and its operations to Withheld) with the exception's name.
// Otherwise, by action: Enforce leaves them; Warn turns a denial into a warning; Audit moves
// a denial to Recorded and operations to Withheld. A validating rule's own warnings stay
// warnings in Enforce, Warn and Audit; a mutating rule's describe the patch it makes ("spec.
// backend changed"), so in Audit they are recorded with the patch withheld. The operations
// left are rebased so that they apply without the withheld ones (keep).
func (r *Result) Apply(p *rollout.Policy, s *rollout.Subject) {
	if p.Trivial() || len(r.Denials)+len(r.Warnings)+len(r.Patch) == 0 {
		return
	}
	var memo [4]struct {
		rule string
		d    rollout.Decision
	} // the results of one request come from a few rules
	n := 0
	decide := func(rule string) rollout.Decision {
		for i := range n {
			if memo[i].rule == rule {
				return memo[i].d
			}
		}
		d := p.Decide(rule, s)
		if n < len(memo) {
			memo[n].rule, memo[n].d = rule, d
			n++
		}
		return d
	}
	// Filtered in place: what is kept is written at or before where it was read.
	denials, warnings := r.Denials, r.Warnings
	r.Denials, r.Warnings = denials[:0], warnings[:0]
	for _, w := range warnings {
		d := decide(w.Rule)
		w.Action, w.Exception = d.Action, d.Exception
		switch {
		case d.Action == rollout.Off:
		case d.Exception != "" || d.Action == rollout.Audit && p.Mutating(w.Rule):
			r.Recorded = append(r.Recorded, w)
		default:
			r.Warnings = append(r.Warnings, w)
		}
	}
	for _, f := range denials {
		d := decide(f.Rule)
		f.Action, f.Exception, f.Denial = d.Action, d.Exception, true
		switch {
		case d.Action == rollout.Off:
		case d.Exception != "" || d.Action == rollout.Audit:
			r.Recorded = append(r.Recorded, f)
		case d.Action == rollout.Warn:
			r.Warnings = append(r.Warnings, f)
		default:
			f.Denial = false
			r.Denials = append(r.Denials, f)
		}
	}
	var kept []bool // made only when an operation is withheld
	for i := range r.Patch {
		op := &r.Patch[i]
		d := decide(op.Rule)
		op.Action, op.Exception = d.Action, d.Exception
		if d.Action == rollout.Enforce && d.Exception == "" {
			if kept != nil {
				kept[i] = true
			}
			continue
		}
		if kept == nil {
			kept = make([]bool, len(r.Patch))
			for j := range i {
				kept[j] = true
			}
		}
		if d.Action != rollout.Off {
			r.Withheld = append(r.Withheld, *op)
		}
	}
	if kept != nil {
		r.Patch = keep(r.Patch, kept)
	}
}

// RecordTexts are what the rollout kept out of the answer, as `check` and the audit
// annotations show it: audit, the denials and would-be patches of rules in Audit; skipped,
// every result an exception skipped, naming the exception. The would-be patch of a rule
// is one text of its operations as JSON.
func (r *Result) RecordTexts() (audit, skipped []string) {
	for _, f := range r.Recorded {
		if f.Exception != "" {
			skipped = append(skipped, "["+f.Rule+"] skipped by exception "+f.Exception+": "+f.Message)
		} else {
			audit = append(audit, f.String())
		}
	}
	for _, w := range r.WithheldPatches() {
		if w.Exception != "" {
			skipped = append(skipped, "["+w.Rule+"] skipped by exception "+w.Exception+": would patch "+w.Patch)
		} else {
			audit = append(audit, "["+w.Rule+"] would patch "+w.Patch)
		}
	}
	return audit, skipped
}

// RulePatch is one rule's withheld operations (its would-be patch) as a JSON patch.
type RulePatch struct {
	Rule, Exception, Patch string
	Action                 rollout.Action
}

// WithheldPatches groups Withheld by rule, in the order of the rules' first operations.
func (r *Result) WithheldPatches() []RulePatch {
	var out []RulePatch
	for _, rule := range ruleIDs(r.Withheld, func(op Op) string { return op.Rule }) {
		var ops []Op
		w := RulePatch{Rule: rule}
		for _, op := range r.Withheld {
			if op.Rule == rule {
				ops, w.Exception, w.Action = append(ops, op), op.Exception, op.Action
			}
		}
		patch, _ := json.Marshal(ops) // ops hold strings and string maps only
		w.Patch = string(patch)
		out = append(out, w)
	}
	return out
}

// Rules lists the IDs that denied or warned, each once, denials first.
func (r *Result) Rules() []string {
	return ruleIDs(append(append([]Finding{}, r.Denials...), r.Warnings...), func(f Finding) string { return f.Rule })
}

// Mutations lists the IDs that patched, each once.
func (r *Result) Mutations() []string {
	return ruleIDs(r.Patch, func(op Op) string { return op.Rule })
}

func ruleIDs[T any](items []T, id func(T) string) []string {
	var ids []string
	for _, it := range items {
		if !slices.Contains(ids, id(it)) {
			ids = append(ids, id(it))
		}
	}
	return ids
}

// GoldenImage returns the image whose golden PVC is namespace/name, if that PVC is golden:
// an image of the same namespace and name exists and either has backend cdi (CDI fills a
// PVC of its name) or the PVC carries the golden mark. marked says whether the PVC carries
// the mark; pass nil to read it from the cluster view.
func (e *Env) GoldenImage(namespace, name string, marked *bool) (*harvester.VirtualMachineImage, bool) {
	img, ok := e.View.Image(namespace, name)
	if !ok {
		return nil, false
	}
	if img.Spec.Backend == harvester.BackendCDI {
		return img, true
	}
	if marked == nil {
		pvc, ok := e.View.PVC(namespace, name)
		m := ok && pvc.Annotations[harvester.AnnGoldenImage] == "true"
		marked = &m
	}
	return img, *marked
}
