package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/hcistorage/storage-webhook/audit"
	"github.com/hcistorage/storage-webhook/internal/poll"
	"github.com/hcistorage/storage-webhook/webhook"
)

// providersFile writes a providers file for one test and returns its path.
func providersFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	pvcV3Audit     = "rules: {PVC-V3: {action: Audit}}\n"
	pvcV3Exception = "exceptions: [{name: web-2-disk, rules: [PVC-*], names: [web-2-disk-*], expires: '2999-01-01T00:00:00Z', reason: rebuilt next sprint}]\n"
	pvcV3Expired   = "exceptions: [{name: web-2-disk, rules: [PVC-*], names: [web-2-disk-*], expires: '2020-01-01T00:00:00Z', reason: rebuilt next sprint}]\n"
)

// TestCheckUnderARollout: `check` answers as serve would with the same providers file, and
// --enforce-all as if every rule were Enforce with no exception.
func TestCheckUnderARollout(t *testing.T) {
	pvc := "../examples/manifests/pvc-too-small.yaml"
	for _, c := range []struct {
		name, file string
		args       []string
		code       int
		out        []string
	}{
		{"a rule in Audit allows and says what it would have denied", pvcV3Audit, nil, 0,
			[]string{"allowed CREATE PersistentVolumeClaim default/web-2-disk-0", "  audit: [PVC-V3] PVC default/web-2-disk-0 requests 5Gi"}},
		{"every rule in Audit: the examples' first install", "", []string{"--providers", "../examples/rollout/audit-first.yaml"}, 0,
			[]string{"allowed CREATE PersistentVolumeClaim", "  audit: [PVC-V3]"}},
		{"--enforce-all previews the switch", pvcV3Audit, []string{"--enforce-all"}, 1,
			[]string{"DENIED CREATE PersistentVolumeClaim default/web-2-disk-0: [PVC-V3]"}},
		{"an exception skips the rule for the object it names", pvcV3Exception, nil, 0,
			[]string{"allowed CREATE", "  skipped: [PVC-V3] skipped by exception web-2-disk: PVC default/web-2-disk-0 requests 5Gi"}},
		{"--enforce-all ignores exceptions", pvcV3Exception, []string{"--enforce-all"}, 1, []string{"DENIED"}},
		{"an expired exception matches nothing", pvcV3Expired, nil, 1, []string{"DENIED CREATE PersistentVolumeClaim default/web-2-disk-0: [PVC-V3]"}},
		{"a rule in Warn allows with the denial as a warning", "rules: {PVC-V3: {action: Warn}}", nil, 0,
			[]string{"allowed CREATE", "  warning: [PVC-V3] PVC default/web-2-disk-0 requests 5Gi"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"check", "--cluster", "../testdata/cluster"}
			if c.file != "" {
				args = append(args, "--providers", providersFile(t, c.file))
			}
			code, out, errOut := run(t, "", append(append(args, c.args...), pvc)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s%s", code, c.code, out, errOut)
			}
			for _, want := range c.out {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}

	// -o json carries what the rollout kept out of the answer.
	code, out, _ := run(t, "", "check", "-o", "json", "--cluster", "../testdata/cluster", "--providers", providersFile(t, pvcV3Audit+pvcV3Exception), pvc)
	var results []CheckResult
	if code != 0 || json.Unmarshal([]byte(out), &results) != nil || len(results) != 1 {
		t.Fatalf("exit %d: %s", code, out)
	}
	if r := results[0]; !r.Allowed || len(r.Audit) != 0 || len(r.Skipped) != 1 || !strings.HasPrefix(r.Skipped[0], "[PVC-V3] skipped by exception web-2-disk: ") {
		t.Errorf("an exception and Audit on one rule: the exception wins; got %+v", r)
	}
}

// TestReviewUnderARolloutAnswersAsTheHandler: for every rollout fixture, `review` with its
// providers file answers what the fixture says the real handler answers.
func TestReviewUnderARolloutAnswersAsTheHandler(t *testing.T) {
	files, _ := filepath.Glob("../testdata/rollout/*.json")
	if len(files) == 0 {
		t.Fatal("no rollout fixtures")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var fx struct {
				Webhook   string          `json:"webhook"`
				Providers json.RawMessage `json:"providers"`
				Review    json.RawMessage `json:"review"`
				Want      struct {
					Allowed  bool              `json:"allowed"`
					Warnings []string          `json:"warnings"`
					Recorded map[string]string `json:"recorded"`
				} `json:"want"`
			}
			if err := json.Unmarshal(data, &fx); err != nil {
				t.Fatal(err)
			}
			kind := "validating"
			if strings.HasPrefix(fx.Webhook, "/mutate/") {
				kind = "mutating"
			}
			code, out, errOut := run(t, string(fx.Review), "review", "--webhook", kind, "--cluster", "../testdata/cluster",
				"--providers", providersFile(t, string(fx.Providers)), "-")
			var got admissionv1.AdmissionReview
			if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Response == nil {
				t.Fatalf("exit %d: %s %s", code, out, errOut)
			}
			r := got.Response
			if r.Allowed != fx.Want.Allowed || len(r.Warnings) != len(fx.Want.Warnings) {
				t.Errorf("allowed %v, warnings %q; the handler answers %v, %q", r.Allowed, r.Warnings, fx.Want.Allowed, fx.Want.Warnings)
			}
			for k, v := range fx.Want.Recorded {
				if !strings.Contains(r.AuditAnnotations[k], v) {
					t.Errorf("audit annotation %s = %q, want it to contain %q", k, r.AuditAnnotations[k], v)
				}
			}
		})
	}
}

// TestAuditUnderARollout: the audit's findings carry their rule's action; a rule Off has
// none; an excepted object's finding is a skip naming the exception, in JSON and in
// OpenReports, and is not what audit exits 1 for; an expired exception is named on stderr
// and skips nothing.
func TestAuditUnderARollout(t *testing.T) {
	file := providersFile(t, `rules:
  VM-V1: {action: Audit}
  SC-V1: {action: Off}
exceptions:
- {name: old-vm, rules: [VM-V2], names: [vm-v2-*], expires: '2999-01-01T00:00:00Z', reason: r, ticket: T-1}
- {name: long-gone, rules: [VM-V3], expires: '2020-01-01T00:00:00Z', reason: r}
`)
	code, out, errOut := run(t, "", "audit", "-o", "json", "--cluster", "../testdata/audit", "--providers", file)
	var findings []audit.Finding
	if code != 1 || json.Unmarshal([]byte(out), &findings) != nil {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	byRule := map[string]audit.Finding{}
	for _, f := range findings {
		byRule[f.Rule] = f
	}
	if f := byRule["VM-V1"]; f.Severity != audit.Violation || f.Action != "Audit" {
		t.Errorf("VM-V1 in Audit: %+v", f)
	}
	if f, ok := byRule["SC-V1"]; ok {
		t.Errorf("SC-V1 is Off but has a finding: %+v", f)
	}
	if f := byRule["VM-V2"]; f.Severity != audit.Skip || f.Exception != "old-vm" || f.Action != "Enforce" {
		t.Errorf("VM-V2 excepted: %+v", f)
	}
	if f := byRule["VM-V3"]; f.Severity != audit.Violation || f.Exception != "" {
		t.Errorf("VM-V3 under an expired exception: %+v", f)
	}
	if !strings.Contains(errOut, "warning: exception long-gone (rules VM-V3) expired at 2020-01-01T00:00:00Z") {
		t.Errorf("stderr does not name the expired exception: %q", errOut)
	}

	_, out, _ = run(t, "", "audit", "-o", "openreports", "--cluster", "../testdata/audit", "--providers", file)
	if !strings.Contains(out, "result: skip") || !strings.Contains(out, "exception: old-vm") || !strings.Contains(out, "action: Audit") || !strings.Contains(out, "skip: 1") {
		t.Errorf("OpenReports without the skip, its exception or the actions:\n%s", out)
	}

	// Only excepted findings: nothing to exit 1 for.
	only := providersFile(t, "exceptions: [{name: all, rules: ['*'], expires: '2999-01-01T00:00:00Z', reason: r}]\n")
	code, out, _ = run(t, "", "audit", "--cluster", "../testdata/audit", "--providers", only)
	if code != 0 || !strings.Contains(out, "16 skipped by exceptions") {
		t.Errorf("every finding excepted: exit %d\n%s", code, out)
	}
}

// TestRulesCommand: `rules` prints the reference; with --providers, each rule's action,
// overrides and exceptions; a bad file is a usage error naming the entry.
func TestRulesCommand(t *testing.T) {
	code, out, _ := run(t, "", "rules")
	if code != 0 || out != webhook.RulesTable() {
		t.Errorf("rules: exit %d\n%s", code, out)
	}
	file := providersFile(t, `rules:
  default: {action: Audit}
  VM-V1:
    action: Enforce
    overrides:
    - {action: Warn, namespaceSelector: {matchLabels: {tier: legacy}}}
    - {action: Off, namespaces: [sandbox-*]}
exceptions:
- {name: web-2, rules: [VM-V1], expires: '2999-01-01T00:00:00Z', reason: r}
- {name: old, rules: [VM-*], expires: '2020-01-01T00:00:00Z', reason: r}
`)
	code, out, _ = run(t, "", "rules", "--providers", file)
	for _, want := range []string{
		"| VM-V1 | validating | Enforce | Warn in namespaceSelector tier=legacy; Off in namespaces sandbox-* | web-2 (until 2999-01-01T00:00:00Z); old (expired 2020-01-01T00:00:00Z) |",
		"| VM-V2 | validating | Audit |  | old (expired 2020-01-01T00:00:00Z) |",
		"| IMG-M1 | mutating | Audit |  |  |",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("rules --providers: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
	if strings.Count(out, "| IMG-V6 |") != 1 {
		t.Errorf("a rule of several routes is not one row:\n%s", out)
	}
	code, _, errOut := run(t, "", "rules", "--providers", providersFile(t, "rules: {VM-V9: {action: Audit}}"))
	if code != 2 || !strings.Contains(errOut, "rules.VM-V9: no such rule") {
		t.Errorf("bad file: exit %d %q", code, errOut)
	}
}

// TestExamplesOfRolloutParse: the README's example files are valid.
func TestExamplesOfRolloutParse(t *testing.T) {
	files, _ := filepath.Glob("../examples/rollout/*.yaml")
	if len(files) < 2 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		if _, err := readProviders(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestServeFollowsExceptionExpiry: serve's metrics read the rollout in force at each scrape:
// each rule's action, the exceptions by state and each one's expiry, and the audit's
// findings as the rollout decides them now. An exception that expires while serve runs is
// counted expired, stops skipping its finding and is logged once, with no reload.
func TestServeFollowsExceptionExpiry(t *testing.T) {
	expires := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	file := providersFile(t, fmt.Sprintf(`rules: {VM-V2: {action: Audit}}
exceptions:
- {name: soon, rules: [VM-V1], names: [vm-v1-*], expires: %q, reason: r}
- {name: later, rules: [VM-V3], expires: '2999-01-01T00:00:00Z', reason: r}
`, expires.Format(time.RFC3339)))
	ts := startServe(t, "--cluster", "../testdata/audit", "--providers", file)
	scrape := func() string {
		resp, err := http.Get("http://" + ts.probe + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	before := scrape()
	for _, want := range []string{
		`storage_webhook_exceptions{state="active"} 2`, `storage_webhook_exceptions{state="expired"} 0`,
		`storage_webhook_exception_expiry_timestamp_seconds{exception="soon"} ` + strconv.FormatFloat(float64(expires.Unix()), 'g', -1, 64),
		`storage_webhook_rule_action{action="Audit",rule="VM-V2"} 1`, `storage_webhook_rule_action{action="Enforce",rule="VM-V1"} 1`,
		`storage_webhook_audit_findings{action="Enforce",rule="VM-V1",severity="skip"} 1`,
		`storage_webhook_audit_findings{action="Audit",rule="VM-V2",severity="violation"} 1`,
	} {
		if time.Now().Before(expires) && !strings.Contains(before, want) {
			t.Errorf("before the expiry, metrics lack %s", want)
		}
	}
	poll.Until(t, 20*time.Second, func() bool {
		return strings.Contains(scrape(), `storage_webhook_exceptions{state="expired"} 1`)
	})
	if time.Now().Before(expires) {
		t.Fatalf("counted expired before %s", expires)
	}
	// The registry collects a scrape's metrics concurrently, so the scrape that first shows
	// the expiry may have read the findings an instant before it; the next one is wholly after.
	after := scrape()
	for _, want := range []string{`storage_webhook_exceptions{state="active"} 1`, `storage_webhook_audit_findings{action="Enforce",rule="VM-V1",severity="violation"} 1`} {
		if !strings.Contains(after, want) {
			t.Errorf("after the expiry, metrics lack %s", want)
		}
	}
	poll.Until(t, 10*time.Second, func() bool { return strings.Contains(ts.logs.String(), `"exception":"soon"`) })
	if n := strings.Count(ts.logs.String(), "exception expired"); n != 1 {
		t.Errorf("%d expiry log lines, want 1:\n%s", n, ts.logs)
	}
}
