package rollout_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/rollout"
	"github.com/hcistorage/storage-webhook/webhook"
)

// parse reads a providers file that holds a rollout, and returns its policy.
func parse(t *testing.T, data []byte) (*rollout.Policy, error) {
	t.Helper()
	f, err := providers.Parse(data, webhook.Catalogue())
	if err != nil {
		return nil, err
	}
	return f.Policy(), nil
}

// strictYAML decodes YAML as providers.Parse does: to JSON, then strictly (unknown,
// duplicate and wrongly-cased fields are errors), through the types' own UnmarshalJSON.
func strictYAML(data []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(js, v)
	if err == nil && len(strict) > 0 {
		err = errors.Join(strict...)
	}
	return err
}

// TestRefused: every file under testdata/refused is refused with an error containing the
// text of its first line ("# error: ..."), which names the entry.
func TestRefused(t *testing.T) {
	files, _ := filepath.Glob("testdata/refused/*.yaml")
	if len(files) < 20 {
		t.Fatalf("%d refused fixtures, want every kind of bad configuration", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := bytes.Cut(data, []byte("\n"))
			want, ok := strings.CutPrefix(string(first), "# error: ")
			if !ok {
				t.Fatal(`the first line must be "# error: <what the error says>"`)
			}
			p, err := parse(t, data)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v\nwant one containing %q", err, want)
			}
			if p != nil {
				t.Error("a policy came with the error")
			}
		})
	}
}

// decideFixture is one file under testdata/decide: a configuration, the namespaces' labels,
// and decisions for subjects.
type decideFixture struct {
	Config     rollout.Config               `json:"config"`
	Namespaces map[string]map[string]string `json:"namespaces"`
	Now        time.Time                    `json:"now"` // for cases without their own
	Cases      []struct {
		Rule    string `json:"rule"`
		Subject struct {
			Kind      string   `json:"kind"`
			Namespace string   `json:"namespace"`
			Name      string   `json:"name"`
			User      string   `json:"user"`
			Groups    []string `json:"groups"`
			Stored    bool     `json:"stored"`
		} `json:"subject"`
		Now       time.Time      `json:"now"`
		Want      rollout.Action `json:"want"`
		Exception string         `json:"exception"`
	} `json:"cases"`
}

// TestDecide: each case of testdata/decide gets the action and exception it names.
func TestDecide(t *testing.T) {
	files, _ := filepath.Glob("testdata/decide/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var fx decideFixture
			if err := strictYAML(data, &fx); err != nil {
				t.Fatal(err)
			}
			p, err := rollout.Compile(fx.Config, webhook.Catalogue())
			if err != nil {
				t.Fatal(err)
			}
			labels := func(ns string) (map[string]string, bool) { l, ok := fx.Namespaces[ns]; return l, ok }
			for i, c := range fx.Cases {
				now := c.Now
				if now.IsZero() {
					now = fx.Now
				}
				p.Now = func() time.Time { return now }
				s := rollout.Subject{Kind: c.Subject.Kind, Namespace: c.Subject.Namespace, Name: c.Subject.Name,
					User: c.Subject.User, Groups: c.Subject.Groups, Stored: c.Subject.Stored, NamespaceLabels: labels}
				got := p.Decide(c.Rule, &s)
				if got.Action != c.Want || got.Exception != c.Exception {
					t.Errorf("case %d: %s for %+v at %s = %+v, want %s with exception %q", i, c.Rule, c.Subject, now.Format(time.RFC3339), got, c.Want, c.Exception)
				}
			}
		})
	}
}

// TestEmptyAndNilPolicies: no configuration, and the nil policy, enforce every rule with
// no exception, and say so with Trivial (Apply then does nothing).
func TestEmptyAndNilPolicies(t *testing.T) {
	empty, err := rollout.Compile(rollout.Config{}, webhook.Catalogue())
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*rollout.Policy{"empty": empty, "nil": nil} {
		if !p.Trivial() || p.Action("VM-V1") != rollout.Enforce || len(p.Exceptions()) != 0 {
			t.Errorf("%s policy: trivial %v, VM-V1 %s, %d exceptions", name, p.Trivial(), p.Action("VM-V1"), len(p.Exceptions()))
		}
		if d := p.Decide("VM-V1", &rollout.Subject{Kind: "VirtualMachine", Namespace: "default", Name: "web"}); d != (rollout.Decision{Action: rollout.Enforce}) {
			t.Errorf("%s policy decides %+v", name, d)
		}
	}
	audit, err := parse(t, []byte("rules: {VM-V1: {action: Audit}}"))
	if err != nil || audit.Trivial() {
		t.Errorf("a rule in Audit: trivial %v, %v", audit.Trivial(), err)
	}
}
