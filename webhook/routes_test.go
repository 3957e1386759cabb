package webhook

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hcistorage/storage-webhook/validators"
)

// TestRouteTableIsConsistent: every rule lives in one route (but IMG-V6, which SPEC applies
// to the image references of PVC-V3, VM-V1 and DV-V1 too), names a webhook the route has,
// and runs only on operations that webhook receives.
func TestRouteTableIsConsistent(t *testing.T) {
	seen := map[string]string{}
	for _, r := range Routes() {
		for _, rule := range r.Rules {
			if prev, dup := seen[rule.ID]; dup && rule.ID != validators.RuleImageAccess {
				t.Errorf("%s is in %s and %s", rule.ID, prev, r.Resource)
			}
			seen[rule.ID] = r.Resource
			ops := r.ValidateOps
			if rule.Webhook == "mutating" {
				ops = r.MutateOps
				if r.Mutate == nil {
					t.Errorf("%s: mutating rule on a route without a mutating webhook", rule.ID)
				}
			} else if r.Validate == nil {
				t.Errorf("%s: validating rule on a route without a validating webhook", rule.ID)
			}
			for _, op := range rule.Operations {
				if !slices.Contains(ops, op) {
					t.Errorf("%s runs on %s, which its webhook on %s does not receive", rule.ID, op, r.Resource)
				}
			}
		}
	}
	if len(seen) != 29 {
		t.Errorf("%d rules, want the 29 of SPEC §4", len(seen))
	}
}

// TestReadmeRuleTableMatchesRules: the README's rule table is `storage-webhook rules`.
func TestReadmeRuleTableMatchesRules(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), RulesTable()) {
		t.Errorf("README.md's rule table differs from `storage-webhook rules`; paste this in:\n%s", RulesTable())
	}
}
