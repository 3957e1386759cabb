package audit_test

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/audit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/providers"
)

func plantedEnv(t testing.TB) (*admit.Env, *cluster.Files) {
	t.Helper()
	view, err := cluster.LoadFiles("../testdata/audit")
	if err != nil {
		t.Fatal(err)
	}
	return &admit.Env{View: view, Providers: providers.NewStatic(providers.Builtins())}, view
}

// TestAuditFindsExactlyThePlantedFindings: in testdata/audit every object named after a rule
// breaks that rule, and every clean-* object breaks none. Audit finds each planted rule, on
// the object planted for it, and nothing else.
func TestAuditFindsExactlyThePlantedFindings(t *testing.T) {
	env, view := plantedEnv(t)
	findings, errs := audit.New(env).All(view)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	seen := map[string]bool{}
	for _, f := range findings {
		t.Logf("%s %s %s %s/%s: %s", f.Severity, f.Rule, f.Kind, f.Namespace, f.Name, f.Message)
		if !strings.HasPrefix(f.Name, strings.ToLower(f.Rule)+"-") {
			t.Errorf("finding on an object not planted for %s: %+v", f.Rule, f)
		}
		if f.Message == "" || f.Fix == "" || f.APIVersion == "" {
			t.Errorf("finding without message, fix or apiVersion: %+v", f)
		}
		seen[f.Rule] = true
	}
	for _, rule := range audit.Rules {
		if !seen[rule] {
			t.Errorf("no finding of %s, which testdata/audit plants", rule)
		}
	}
	want := map[string]audit.Severity{"IMG-V1": audit.Violation, "PVC-M1": audit.Drift, "SC-M1": audit.Drift, "SP-M1": audit.Drift, "VS-V1": audit.Violation}
	for _, f := range findings {
		if sev, ok := want[f.Rule]; ok && f.Severity != sev {
			t.Errorf("%s is a %s, want %s", f.Rule, f.Severity, sev)
		}
	}
	if !slices.IsSortedFunc(findings, func(a, b audit.Finding) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name), strings.Compare(a.Rule, b.Rule))
	}) {
		t.Error("findings are not sorted by kind, namespace and name")
	}
}
