//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hcistorage/storage-webhook/audit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/webhook"
)

// strictDryRun is how the reports are tried: the API server validates them against the real
// OpenReports CRDs (testdata/crds/upstream) and refuses unknown fields instead of pruning
// them, and stores nothing.
var strictDryRun = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}

// reportDocs splits `audit -o openreports` output into its documents, as check does.
func reportDocs(t *testing.T, out []byte) []*unstructured.Unstructured {
	t.Helper()
	docs, err := cluster.DecodeManifests(out)
	if err != nil {
		t.Fatalf("documents: %v\n%s", err, out)
	}
	return docs
}

// dryRunReport creates a report with strictDryRun and checks the API server kept every field
// as sent: nothing pruned, nothing defaulted away.
func dryRunReport(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	got, err := client(t, u.GetKind(), u.GetNamespace(), "").Create(context.Background(), u.DeepCopy(), strictDryRun)
	if err != nil {
		raw, _ := json.MarshalIndent(u.Object, "", "  ")
		t.Fatalf("%s %s/%s refused: %v\n%s", u.GetKind(), u.GetNamespace(), u.GetName(), err, raw)
	}
	for _, field := range []string{"apiVersion", "kind", "source", "summary", "results"} {
		sent, _ := json.Marshal(u.Object[field])
		kept, _ := json.Marshal(got.Object[field])
		if !bytes.Equal(sent, kept) {
			t.Errorf("%s %s/%s: the API server changed %s\nsent %s\nkept %s", u.GetKind(), u.GetNamespace(), u.GetName(), field, sent, kept)
		}
	}
	if got.GetName() != audit.OpenReportsName || got.GetNamespace() != u.GetNamespace() {
		t.Errorf("stored as %s/%s", got.GetNamespace(), got.GetName())
	}
}

// TestOpenReports: the reports audit.OpenReports renders for a PVC finding of each severity
// and a StorageClass finding are objects the real OpenReports CRDs accept as they are, and
// the same CRDs refuse a report that breaks their schema, so the check can fail.
func TestOpenReports(t *testing.T) {
	ns := newNamespace(t)
	class := "openreports-" + ns
	pvc := func(name, rule string, sev audit.Severity, msg, fix string) audit.Finding {
		return audit.Finding{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: name,
			UID: types.UID("uid-" + name), Rule: rule, Severity: sev, Message: msg, Fix: fix}
	}
	findings := []audit.Finding{
		pvc("disk-0", "PVC-V3", audit.Violation,
			`[PVC-V3] PersistentVolumeClaim `+ns+`/disk-0: spec.resources.requests.storage "1Gi", at least the image's 10Gi: request at least 10Gi`,
			webhook.RuleFixes["PVC-V3"]),
		pvc("golden", "PVC-M1", audit.Drift,
			"PersistentVolumeClaim "+ns+`/golden lacks what PVC-M1 sets on new objects: annotation harvesterhci.io/goldenImage = "true"`,
			`kubectl patch persistentvolumeclaims golden -n `+ns+` --type=json -p '[{"op":"add","path":"/metadata/annotations/harvesterhci.io~1goldenImage","value":"true"}]'`),
		pvc("scratch", "PVC-V3", audit.Warning, "a warning\nover two lines: with a colon, # and ---", ""),
		{Kind: "StorageClass", APIVersion: "storage.k8s.io/v1", Name: class, UID: "9d1e7c2b-0000-4000-8000-000000000001",
			Rule: "SC-M1", Severity: audit.Drift, Message: "StorageClass " + class + " lacks what SC-M1 sets on new objects: annotation cdi.kubevirt.io/clone-strategy = \"snapshot\"",
			Fix: webhook.RuleFixes["SC-M1"]},
	}
	out, err := audit.OpenReports(findings, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("audit -o openreports:\n%s", out)
	docs := reportDocs(t, out)
	var kinds []string
	for _, d := range docs {
		kinds = append(kinds, d.GetKind()+" "+d.GetNamespace())
	}
	if want := "ClusterReport |Report " + ns; strings.Join(kinds, "|") != want {
		t.Fatalf("documents %q, want %q", kinds, want)
	}
	if n := len(docs[1].Object["results"].([]any)); n != 3 {
		t.Errorf("the Report has %d results, want 3", n)
	}
	for _, d := range docs {
		dryRunReport(t, d)
	}

	// What the schema refuses: each break of the Report is refused, with the field named.
	for _, tc := range []struct {
		name  string
		bad   func(result map[string]any)
		want  func(error) bool
		field string
	}{
		{"result bad", func(r map[string]any) { r["result"] = "bad" }, apierrors.IsInvalid, "results[0].result"},
		{"severity urgent", func(r map[string]any) { r["severity"] = "urgent" }, apierrors.IsInvalid, "results[0].severity"},
		{"no policy", func(r map[string]any) { delete(r, "policy") }, apierrors.IsInvalid, "results[0].policy"},
		{"timestamp without nanos", func(r map[string]any) { delete(r["timestamp"].(map[string]any), "nanos") }, apierrors.IsInvalid, "results[0].timestamp.nanos"},
		{"property not a string", func(r map[string]any) { r["properties"].(map[string]any)["severity"] = int64(3) }, apierrors.IsInvalid, "results[0].properties.severity"},
		{"unknown field", func(r map[string]any) { r["fixes"] = "x" }, apierrors.IsBadRequest, `unknown field "results[0].fixes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := docs[1].DeepCopy()
			tc.bad(u.Object["results"].([]any)[0].(map[string]any))
			_, err := client(t, u.GetKind(), u.GetNamespace(), "").Create(context.Background(), u, strictDryRun)
			if err == nil || !tc.want(err) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("want a refusal naming %s, got %v", tc.field, err)
			}
		})
	}
}

// TestOpenReportsOfTheAuditCommand: the binary's `audit -o openreports` over the planted
// findings of testdata/audit prints one result per finding of `audit -o json`, in reports
// the real CRDs accept.
func TestOpenReportsOfTheAuditCommand(t *testing.T) {
	run := func(output string) []byte {
		out, err := exec.Command(suite.bin, "audit", "--cluster", "../testdata/audit", "-o", output).Output()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("audit -o %s: want exit status 1 (findings), got %v\n%s", output, err, out)
		}
		return out
	}
	var findings []audit.Finding
	if err := json.Unmarshal(run("json"), &findings); err != nil || len(findings) == 0 {
		t.Fatalf("audit -o json: %d findings, %v", len(findings), err)
	}
	docs := reportDocs(t, run("openreports"))
	results := 0
	for _, d := range docs {
		if ns := d.GetNamespace(); ns != "" {
			ensure(t, obj(t, "", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns))
		}
		dryRunReport(t, d)
		results += len(d.Object["results"].([]any))
	}
	if results != len(findings) {
		t.Errorf("%d results in %d reports for %d findings", results, len(docs), len(findings))
	}
}
