package rollout_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
			labels := namespaceLabels(fx.Namespaces)
			for i, c := range fx.Cases {
				now := c.Now
				if now.IsZero() {
					now = fx.Now
				}
				p.Now = func() time.Time { return now }
				s := rollout.Subject{Kind: c.Subject.Kind, Namespace: c.Subject.Namespace, Name: c.Subject.Name,
					User: c.Subject.User, Groups: c.Subject.Groups, Stored: c.Subject.Stored, Namespaces: labels}
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

// namespaceLabels is a rollout.Namespaces over a map.
type namespaceLabels map[string]map[string]string

func (n namespaceLabels) NamespaceLabels(ns string) (map[string]string, bool) {
	l, ok := n[ns]
	return l, ok
}

// TestDecideConcurrently: decisions from many goroutines over many namespaces (the memo of
// candidates per namespace fills as they run) answer as one goroutine does; `make test`
// runs it with the race detector.
func TestDecideConcurrently(t *testing.T) {
	p, err := parse(t, []byte(`rules:
  VM-V1:
    overrides:
    - {action: Audit, namespaces: [team-1*]}
exceptions:
- {name: odd, rules: [VM-V1], namespaces: [team-*1, team-*3], expires: '2999-01-01T00:00:00Z', reason: r}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := func(i int) rollout.Decision {
		d := rollout.Decision{Action: rollout.Enforce}
		if fmt.Sprint(i)[0] == '1' {
			d.Action = rollout.Audit
		}
		if i%10 == 1 || i%10 == 3 {
			d.Exception = "odd"
		}
		return d
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				n := (i*7 + g) % 500
				s := rollout.Subject{Kind: "VirtualMachine", Namespace: fmt.Sprintf("team-%d", n), Name: "web"}
				if got := p.Decide("VM-V1", &s); got != want(n) {
					t.Errorf("team-%d: %+v, want %+v", n, got, want(n))
					return
				}
			}
		}()
	}
	wg.Wait()
}
