package cmd

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestReviewAnswersLikeTheServer: `review` prints the response AdmissionReview of the
// chosen webhook, and refuses input that the server would refuse.
func TestReviewAnswersLikeTheServer(t *testing.T) {
	code, out, errOut := run(t, "", "review", "--webhook", "mutating", "--cluster", "../examples/cluster", "../examples/reviews/image-create.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var resp admissionv1.AdmissionReview
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatal(err)
	}
	if !resp.Response.Allowed || len(resp.Response.Patch) == 0 || len(resp.Response.Warnings) != 1 {
		t.Errorf("response = %+v", resp.Response)
	}

	review, _ := os.ReadFile("../examples/reviews/pvc-too-small.json")
	code, out, _ = run(t, string(review), "review", "--cluster", "../examples/cluster", "-")
	if code != 0 || !strings.Contains(out, `"allowed":false`) || !strings.Contains(out, "[PVC-V3]") {
		t.Errorf("stdin review: exit %d, %s", code, out)
	}

	for _, c := range []struct{ name, stdin, want string }{
		{"not a review", `{"kind":"Pod"}`, "not an admission.k8s.io/v1 AdmissionReview"},
		{"no webhook for the resource", strings.Replace(string(review), "persistentvolumeclaims", "configmaps", 1), "no validating webhook serves"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, c.stdin, "review", "-")
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d %q, want 2 containing %q", code, errOut, c.want)
			}
		})
	}
}

// TestCertsPrintsSecretAndCABundle: `certs` prints a TLS Secret and a caBundle, or writes
// the files with --out.
func TestCertsPrintsSecretAndCABundle(t *testing.T) {
	code, out, errOut := run(t, "", "certs", "--service", "sw", "--namespace", "storage")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	docs := strings.SplitN(out, "---\n", 2)
	var secret corev1.Secret
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &secret); err != nil {
		t.Fatal(err)
	}
	if secret.Namespace != "storage" || secret.Type != corev1.SecretTypeTLS || len(secret.Data["ca.crt"]) == 0 {
		t.Errorf("secret = %+v", secret)
	}
	bundle := strings.TrimSpace(strings.TrimPrefix(strings.Split(docs[1], "\n")[1], "#"))
	if ca, err := base64.StdEncoding.DecodeString(bundle); err != nil || string(ca) != string(secret.Data["ca.crt"]) {
		t.Errorf("caBundle %q does not decode to ca.crt: %v", bundle, err)
	}

	dir := t.TempDir()
	if code, _, errOut := run(t, "", "certs", "--out", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if code, _, errOut := run(t, "", "certs", "--namespace", "Bad_NS"); code != 2 || !strings.Contains(errOut, "Bad_NS") {
		t.Errorf("bad namespace: exit %d %q", code, errOut)
	}
}

// TestFlagsReadEnvironment: every flag reads STORAGE_WEBHOOK_<FLAG>; the command line wins;
// lists split on commas; a bad value is a usage error naming the variable.
func TestFlagsReadEnvironment(t *testing.T) {
	t.Setenv("STORAGE_WEBHOOK_OPERATION", "DELETE")
	t.Setenv("STORAGE_WEBHOOK_CLUSTER", "../testdata/cluster")
	t.Setenv("STORAGE_WEBHOOK_PRIVILEGED_USER", "bob, carol")
	if code, out, errOut := run(t, "", "check", "--user", "carol", "../testdata/check/golden-pvc-unmarked.yaml"); code != 0 {
		t.Errorf("carol is privileged through the environment: exit %d %s %s", code, out, errOut)
	}
	if code, _, _ := run(t, "", "check", "--user", "alice", "../testdata/check/golden-pvc-unmarked.yaml"); code != 1 {
		t.Errorf("alice is not privileged: exit %d, want 1", code)
	}
	if code, _, _ := run(t, "", "check", "--operation", "CREATE", "--user", "alice", "../testdata/check/golden-pvc-unmarked.yaml"); code != 0 {
		t.Errorf("the command line wins over the environment: exit %d", code)
	}
	t.Setenv("STORAGE_WEBHOOK_MAX_BODY_BYTES", "lots")
	if code, _, errOut := run(t, "", "serve"); code != 2 || !strings.Contains(errOut, "STORAGE_WEBHOOK_MAX_BODY_BYTES") {
		t.Errorf("bad env value: exit %d %q", code, errOut)
	}
}
