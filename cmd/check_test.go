package cmd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hcistorage/storage-webhook/internal/golden"
)

func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestCheckJSONShape: `check -o json` prints one element per object, in input order, with
// exactly the fields of SPEC §7.1, and exits 1 when any object is denied.
func TestCheckJSONShape(t *testing.T) {
	code, out, errOut := run(t, "", "check", "-o", "json", "--cluster", "../testdata/cluster",
		"../examples/manifests/image-defaulted-backend.yaml", "../examples/manifests/pvc-too-small.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one denial); stderr %s", code, errOut)
	}
	var results []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, out)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	keys := []string{"kind", "namespace", "name", "operation", "allowed", "message", "warnings", "rules", "patch", "object"}
	for i, r := range results {
		if len(r) != len(keys) {
			t.Errorf("result %d has %d fields, want %d: %s", i, len(r), len(keys), out)
		}
		for _, k := range keys {
			if _, ok := r[k]; !ok {
				t.Errorf("result %d lacks %q", i, k)
			}
		}
	}
	var image, pvc CheckResult
	_ = json.Unmarshal(mustMarshal(t, results[0]), &image)
	_ = json.Unmarshal(mustMarshal(t, results[1]), &pvc)
	if !image.Allowed || image.Kind != "VirtualMachineImage" || len(image.Patch) != 2 || len(image.Warnings) != 1 || image.Rules[0] != "IMG-M2" {
		t.Errorf("image result = %+v", image)
	}
	if !strings.Contains(string(image.Object), `"backend":"cdi"`) {
		t.Errorf("image object is not the mutated one: %s", image.Object)
	}
	if pvc.Allowed || pvc.Rules[0] != "PVC-V3" || !strings.Contains(pvc.Message, "request at least 10Gi") {
		t.Errorf("pvc result = %+v", pvc)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckExitCodes: 0 when all are allowed, 1 when any is denied, 2 on input or usage
// errors with a one-line reason.
func TestCheckExitCodes(t *testing.T) {
	cases := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"allowed", "", []string{"--cluster", "../testdata/cluster", "../examples/manifests/image-defaulted-backend.yaml"}, 0, ""},
		{"denied", "", []string{"--cluster", "../testdata/cluster", "../examples/manifests/pvc-too-small.yaml"}, 1, ""},
		{"update denied against the view's old object", "", []string{"--operation", "UPDATE", "--cluster", "../testdata/cluster", "../testdata/check/golden-pvc-mark-false.yaml"}, 1, ""},
		{"update dropping the mark allowed: PVC-M1 sets it again", "", []string{"--operation", "UPDATE", "--cluster", "../testdata/cluster", "../testdata/check/golden-pvc-unmarked.yaml"}, 0, ""},
		{"delete of the golden PVC denied", "", []string{"--operation", "delete", "--cluster", "../testdata/cluster", "../testdata/check/golden-pvc-unmarked.yaml"}, 1, ""},
		{"delete by the garbage collector allowed", "", []string{"--operation", "DELETE", "--user", "system:serviceaccount:kube-system:generic-garbage-collector", "--cluster", "../testdata/cluster", "../testdata/check/golden-pvc-unmarked.yaml"}, 0, ""},
		{"export by a user who may not read the PVC denied (IMG-V6)", "", []string{"--user", "bob", "--cluster", "../testdata/cluster", "../testdata/check/export-from-team-b.yaml"}, 1, ""},
		{"stdin", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", []string{"-"}, 0, ""},
		{"no files", "", []string{"--cluster", "../testdata/cluster"}, 2, "no manifest FILE"},
		{"bad output", "", []string{"-o", "yaml", "x.yaml"}, 2, "-o \"yaml\""},
		{"bad operation", "", []string{"--operation", "PATCH", "x.yaml"}, 2, "--operation"},
		{"update without old object", "", []string{"--operation", "UPDATE", "../examples/manifests/pvc-too-small.yaml"}, 2, "needs the old object"},
		{"file does not parse", "", []string{"../testdata/check/not-yaml.yaml"}, 2, "not-yaml.yaml"},
		{"file missing", "", []string{"../testdata/check/nope.yaml"}, 2, "nope.yaml"},
		{"object without name", "apiVersion: v1\nkind: ConfigMap\n", []string{"-"}, 2, "metadata.name are required"},
		{"bad cluster view", "", []string{"--cluster", "../testdata/check/not-yaml.yaml", "../examples/manifests/pvc-too-small.yaml"}, 2, "not-yaml.yaml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, c.stdin, append([]string{"check"}, c.args...)...)
			if code != c.wantCode || !strings.Contains(errOut, c.wantErr) {
				t.Errorf("exit %d stderr %q, want %d containing %q", code, errOut, c.wantCode, c.wantErr)
			}
			if c.wantCode == 2 && strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("the reason is not one line: %q", errOut)
			}
		})
	}
}

// TestCheckAsUserAndGroups: --user and --group are the request's user, whose access to an
// export's source PVC IMG-V6 reads from the view's RBAC objects.
func TestCheckAsUserAndGroups(t *testing.T) {
	for _, c := range []struct {
		args []string
		rule string
	}{
		{[]string{"--user", "bob"}, "[IMG-V6]"},
		{[]string{"--user", "bob", "--group", "system:masters"}, "[IMG-V5]"}, // may read it: the next rule speaks
		{[]string{"--user", "alice"}, "[IMG-V5]"},
	} {
		args := append(append([]string{"check", "--cluster", "../testdata/cluster"}, c.args...), "../testdata/check/export-from-team-b.yaml")
		code, out, errOut := run(t, "", args...)
		if code != 1 || !strings.Contains(out, c.rule) || strings.Contains(out, "team-b-secret-worker-0") {
			t.Errorf("%v: exit %d, %q %q; want 1 with %s and no pod name", c.args, code, out, errOut, c.rule)
		}
	}
}

// TestCheckExamplesGolden: `check` on the examples prints testdata/check/examples.golden
// (regenerate with UPDATE_GOLDEN=1), and the README quotes that output.
func TestCheckExamplesGolden(t *testing.T) {
	code, out, errOut := run(t, "", "check", "--cluster", "../examples/cluster", "../examples/manifests/")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	golden.Check(t, "../testdata/check/examples.golden", []byte(out), "check's output differs: UPDATE_GOLDEN=1 rewrites it")
}

// TestCheckWithoutRBACWarnsInsteadOfDenying: a cluster view that holds no RBAC objects at all
// cannot say who may read what, so IMG-V6 warns that it did not check rather than denying
// every export (the next rule, IMG-V5, still speaks); a view with RBAC objects is judged as
// before (TestCheckAsUserAndGroups).
func TestCheckWithoutRBACWarnsInsteadOfDenying(t *testing.T) {
	dir := viewWith(t, func(u *unstructured.Unstructured) bool {
		return u.GroupVersionKind().Group != "rbac.authorization.k8s.io"
	})
	code, out, errOut := run(t, "", "check", "--cluster", dir, "--user", "bob", "../testdata/check/export-from-team-b.yaml")
	denial, _, _ := strings.Cut(out, "\n")
	if code != 1 || strings.Contains(denial, "[IMG-V6]") || !strings.Contains(denial, "[IMG-V5]") ||
		!strings.Contains(out, "warning: [IMG-V6]") || !strings.Contains(out, "was not checked: the cluster view holds no Roles, ClusterRoles or bindings") {
		t.Errorf("exit %d, %q %q; want IMG-V5's denial and IMG-V6's warning only", code, out, errOut)
	}
}
