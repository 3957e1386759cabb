package audit_test

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

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
	store := providers.NewStore(nil)
	store.UseHarvester(view, "", nil) // the view's Harvester, v1.9.0
	return &admit.Env{View: view, Providers: store}, view
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

// refusingAccess fails the test on any IMG-V6 question.
type refusingAccess struct{ t *testing.T }

func (a refusingAccess) MayGet(_ context.Context, user authenticationv1.UserInfo, r schema.GroupResource, ns, name string) (bool, error) {
	a.t.Errorf("the audit asked whether %s may get %s %s/%s", user.Username, r, ns, name)
	return false, context.DeadlineExceeded
}

// TestAuditAsksNoOneWhoMayRead: a stored disk whose image is in another namespace is held
// against that image's size (PVC-V3) without an IMG-V6 question, even when the environment's
// authorizer would refuse: the audit judges stored objects, whose author is unknown.
func TestAuditAsksNoOneWhoMayRead(t *testing.T) {
	objs, err := cluster.DecodeManifests([]byte(`
apiVersion: harvesterhci.io/v1beta1
kind: VirtualMachineImage
metadata: {name: base, namespace: images}
spec: {backend: cdi, displayName: base, sourceType: download, url: http://mirror.example/base.qcow2}
status: {size: 1073741824, virtualSize: 10737418240}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: small-disk
  namespace: team-a
  annotations: {harvesterhci.io/imageId: images/base}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`))
	if err != nil {
		t.Fatal(err)
	}
	view, err := cluster.NewFiles(objs)
	if err != nil {
		t.Fatal(err)
	}
	env := &admit.Env{View: view, Providers: providers.NewStore(nil), Access: refusingAccess{t}}
	findings, errs := audit.New(env).All(view)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(findings) != 1 || findings[0].Rule != "PVC-V3" || findings[0].Name != "small-disk" {
		t.Errorf("findings = %+v, want PVC-V3 on small-disk only", findings)
	}
}
