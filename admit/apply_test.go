package admit_test

import (
	"encoding/json"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/rollout"
	"github.com/hcistorage/storage-webhook/webhook"
)

func policy(t *testing.T, file string) *rollout.Policy {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	f, err := providers.Parse(js, webhook.Catalogue())
	if err != nil {
		t.Fatal(err)
	}
	return f.Policy()
}

// results are the rules' results before the rollout: VM-V1 and IMG-V6 (retryable) deny,
// VM-V1 and VM-V3 warn.
func results() admit.Result {
	var r admit.Result
	r.Deny("VM-V1", "disk too small")
	r.DenyRetry("IMG-V6", "cannot tell yet")
	r.Warn("VM-V1", "a VM-V1 warning")
	r.Warn("VM-V3", "a VM-V3 warning")
	return r
}

// TestApplyActions: what each action makes of denials and warnings, in one place.
func TestApplyActions(t *testing.T) {
	subject := &rollout.Subject{Kind: "VirtualMachine", Namespace: "legacy", Name: "web", User: "alice"}
	cases := []struct {
		name, file                   string
		allowed, retryable           bool
		denials, warnings, recorded  []string
		recordedAction               []rollout.Action
		recordedException, wouldDeny []string
	}{
		{name: "no rollout: as the rules said", file: "providers: []",
			denials: []string{"[VM-V1] disk too small", "[IMG-V6] cannot tell yet"}, warnings: []string{"[VM-V1] a VM-V1 warning", "[VM-V3] a VM-V3 warning"}},
		{name: "Warn: the denial becomes a warning, the request is allowed", file: "rules: {VM-V1: {action: Warn}, IMG-V6: {action: Warn}}", allowed: true,
			warnings: []string{"[VM-V1] a VM-V1 warning", "[VM-V3] a VM-V3 warning", "[VM-V1] disk too small", "[IMG-V6] cannot tell yet"}},
		{name: "Audit: the denial is recorded, the rule's own warning stays", file: "rules: {VM-V1: {action: Audit}}", retryable: true,
			denials: []string{"[IMG-V6] cannot tell yet"}, warnings: []string{"[VM-V1] a VM-V1 warning", "[VM-V3] a VM-V3 warning"},
			recorded: []string{"[VM-V1] disk too small"}, recordedAction: []rollout.Action{rollout.Audit}, recordedException: []string{""}},
		{name: "a retryable denial left alone is no longer the only one", file: "rules: {IMG-V6: {action: Audit}}",
			denials: []string{"[VM-V1] disk too small"}, warnings: []string{"[VM-V1] a VM-V1 warning", "[VM-V3] a VM-V3 warning"},
			recorded: []string{"[IMG-V6] cannot tell yet"}, recordedAction: []rollout.Action{rollout.Audit}, recordedException: []string{""}},
		{name: "Off: no trace", file: "rules: {default: {action: Off}}", allowed: true},
		{name: "an exception: everything of the rule is recorded, naming it", retryable: true,
			file:    "exceptions: [{name: legacy, rules: [VM-V1], namespaces: [legacy], expires: '2999-01-01T00:00:00Z', reason: r}]",
			denials: []string{"[IMG-V6] cannot tell yet"}, warnings: []string{"[VM-V3] a VM-V3 warning"},
			recorded: []string{"[VM-V1] a VM-V1 warning", "[VM-V1] disk too small"}, recordedAction: []rollout.Action{rollout.Enforce, rollout.Enforce},
			recordedException: []string{"legacy", "legacy"}},
		{name: "an expired exception matches nothing",
			file:    "exceptions: [{name: legacy, rules: [VM-V1], expires: '2020-01-01T00:00:00Z', reason: r}]",
			denials: []string{"[VM-V1] disk too small", "[IMG-V6] cannot tell yet"}, warnings: []string{"[VM-V1] a VM-V1 warning", "[VM-V3] a VM-V3 warning"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := results()
			r.Apply(policy(t, c.file), subject)
			texts := func(fs []admit.Finding) []string {
				var out []string
				for _, f := range fs {
					out = append(out, f.String())
				}
				return out
			}
			if r.Allowed() != c.allowed || r.Retryable() != c.retryable {
				t.Errorf("allowed %v retryable %v, want %v %v", r.Allowed(), r.Retryable(), c.allowed, c.retryable)
			}
			if got := texts(r.Denials); !slices.Equal(got, c.denials) {
				t.Errorf("denials %q, want %q", got, c.denials)
			}
			if got := r.WarningTexts(); !slices.Equal(got, c.warnings) && (len(got) > 0 || len(c.warnings) > 0) {
				t.Errorf("warnings %q, want %q", got, c.warnings)
			}
			if got := texts(r.Recorded); !slices.Equal(got, c.recorded) {
				t.Errorf("recorded %q, want %q", got, c.recorded)
			}
			for i, f := range r.Recorded {
				if f.Action != c.recordedAction[i] || f.Exception != c.recordedException[i] {
					t.Errorf("recorded %d: action %s exception %q, want %s %q", i, f.Action, f.Exception, c.recordedAction[i], c.recordedException[i])
				}
			}
			for _, f := range append(append([]admit.Finding{}, r.Warnings...), r.Recorded...) {
				if f.Denial != (f.Message == "disk too small" || f.Message == "cannot tell yet") {
					t.Errorf("%s: Denial = %v", f, f.Denial)
				}
			}
		})
	}
}

// TestApplyPatches: a mutating rule in Audit or excepted patches nothing and its operations
// are withheld; the operations left still apply to the object, even those that added to a
// member only a withheld operation made.
func TestApplyPatches(t *testing.T) {
	subject := &rollout.Subject{Kind: "DataVolume", Namespace: "default", Name: "disk"}
	for _, object := range []string{
		`{"metadata":{"name":"disk"},"spec":{}}`, // DV-M1 adds the annotations map, DV-M2 adds to it
		`{"spec":{}}`,                            // DV-M1 adds /metadata itself
		`{"metadata":{"name":"disk","annotations":{"a":"b"}},"spec":{}}`, // both add to a map that exists
	} {
		mutate := func() admit.Result {
			var r admit.Result
			var obj struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
			}
			if !r.Decode("DataVolume", []byte(object), &obj) {
				t.Fatal(r.Message())
			}
			r.SetAnnotation("DV-M1", obj.Metadata.Annotations, "cdi.kubevirt.io/cloneType", "snapshot")
			r.SetAnnotation("DV-M2", obj.Metadata.Annotations, "cdi.kubevirt.io/storage.bind.immediate.requested", "true")
			return r
		}
		for _, c := range []struct {
			file     string
			kept     map[string]string // annotation → value in the patched object
			withheld []string
		}{
			{"providers: []", map[string]string{"cdi.kubevirt.io/cloneType": "snapshot", "cdi.kubevirt.io/storage.bind.immediate.requested": "true"}, nil},
			{"rules: {DV-M1: {action: Audit}}", map[string]string{"cdi.kubevirt.io/storage.bind.immediate.requested": "true"}, []string{"DV-M1"}},
			{"rules: {DV-M2: {action: Audit}}", map[string]string{"cdi.kubevirt.io/cloneType": "snapshot"}, []string{"DV-M2"}},
			{"rules: {DV-M1: {action: Off}}", map[string]string{"cdi.kubevirt.io/storage.bind.immediate.requested": "true"}, nil},
			{"exceptions: [{name: x, rules: [DV-*], expires: '2999-01-01T00:00:00Z', reason: r}]", nil, []string{"DV-M1", "DV-M2"}},
		} {
			r := mutate()
			r.Apply(policy(t, c.file), subject)
			out := []byte(object)
			if len(r.Patch) > 0 {
				var err error
				if out, err = webhook.ApplyPatch([]byte(object), r.Patch); err != nil {
					t.Fatalf("%s on %s: the operations left do not apply: %v", c.file, object, err)
				}
			}
			var got struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range c.kept {
				if got.Metadata.Annotations[k] != v {
					t.Errorf("%s on %s: annotation %s = %q, want %q (object %s)", c.file, object, k, got.Metadata.Annotations[k], v, out)
				}
			}
			for _, k := range []string{"cdi.kubevirt.io/cloneType", "cdi.kubevirt.io/storage.bind.immediate.requested"} {
				if _, ok := c.kept[k]; !ok && got.Metadata.Annotations[k] != "" {
					t.Errorf("%s on %s: annotation %s was set", c.file, object, k)
				}
			}
			var withheld []string
			for _, w := range r.WithheldPatches() {
				withheld = append(withheld, w.Rule)
			}
			if !slices.Equal(withheld, c.withheld) {
				t.Errorf("%s on %s: withheld %v, want %v", c.file, object, withheld, c.withheld)
			}
		}
	}
}

// TestApplyMutatingRuleWarningInAudit: a mutating rule's warning says what its patch did,
// so in Audit, with the patch withheld, it is recorded rather than shown; in Enforce it
// stays.
func TestApplyMutatingRuleWarningInAudit(t *testing.T) {
	subject := &rollout.Subject{Kind: "VirtualMachineImage", Namespace: "default", Name: "img"}
	for file, shown := range map[string]bool{"rules: {IMG-M2: {action: Audit}}": false, "rules: {IMG-M1: {action: Audit}}": true} {
		var r admit.Result
		r.Warn("IMG-M2", "spec.backend changed from backingimage to cdi")
		r.AddMember("IMG-M2", "cdi", "spec", "backend")
		r.Apply(policy(t, file), subject)
		if got := len(r.Warnings) == 1; got != shown {
			t.Errorf("%s: warnings %q, want shown %v", file, r.WarningTexts(), shown)
		}
		if got := len(r.Recorded) == 1 && !r.Recorded[0].Denial; got == shown {
			t.Errorf("%s: recorded %+v", file, r.Recorded)
		}
	}
}
