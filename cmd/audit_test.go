package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestAuditCommand: `audit` finds the planted findings of testdata/audit in every output
// format and exits 1; a clean view exits 0; usage errors exit 2.
func TestAuditCommand(t *testing.T) {
	code, out, errOut := run(t, "", "audit", "-o", "json", "--cluster", "../testdata/audit")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (findings); stderr %s", code, errOut)
	}
	var findings []map[string]any
	if err := json.Unmarshal([]byte(out), &findings); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	if len(findings) != 16 {
		t.Errorf("%d findings, want the 16 planted", len(findings))
	}
	want := []string{"action", "fix", "kind", "message", "name", "namespace", "rule", "severity"}
	for _, f := range findings {
		var keys []string
		for k := range f {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("finding fields %v, want exactly %v", keys, want)
		}
	}

	code, out, _ = run(t, "", "audit", "--cluster", "../testdata/audit")
	if code != 1 || !strings.Contains(out, "16 finding(s) in 16 object(s): 12 violation(s), 3 drift, 1 warning(s)") ||
		!strings.Contains(out, "drift     PVC-M1  PersistentVolumeClaim default/pvc-m1-golden-unmarked") || !strings.Contains(out, "  fix: kubectl patch persistentvolumeclaims pvc-m1-golden-unmarked -n default --type=json") {
		t.Errorf("text output (exit %d):\n%s", code, out)
	}

	code, out, errOut = run(t, "", "audit", "-o", "openreports", "--cluster", "../testdata/audit")
	if code != 1 {
		t.Fatalf("openreports: exit %d: %s", code, errOut)
	}
	kinds := map[string]int{}
	for _, doc := range strings.Split(out, "\n---\n") {
		var obj struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj.APIVersion != "openreports.io/v1alpha1" {
			t.Fatalf("document %q: %v", doc, err)
		}
		kinds[obj.Kind]++
	}
	if kinds["ClusterReport"] != 1 || kinds["Report"] != 2 { // namespaces default and team-a
		t.Errorf("reports %v, want one ClusterReport and a Report for each of the 2 namespaces", kinds)
	}

	clean := filepath.Join(t.TempDir(), "clean.yaml")
	if err := os.WriteFile(clean, []byte("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: longhorn}\nprovisioner: driver.longhorn.io\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "", "audit", "-o", "json", "--cluster", clean); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("clean view: exit %d, %q %s", code, out, errOut)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no view", []string{"audit"}, "give --cluster PATH or --kubeconfig FILE"},
		{"both views", []string{"audit", "--cluster", clean, "--kubeconfig", "x"}, "alternatives"},
		{"bad output", []string{"audit", "-o", "yaml", "--cluster", clean}, `-o "yaml"`},
		{"manifests given", []string{"audit", "--cluster", clean, "x.yaml"}, "not manifests"},
		{"missing path", []string{"audit", "--cluster", "/nonexistent"}, "nonexistent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, "", c.args...)
			if code != 2 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Errorf("exit %d, stderr %q; want 2 and one line containing %q", code, errOut, c.want)
			}
		})
	}
}
