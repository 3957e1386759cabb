package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/providers"
)

var orNow = time.Date(2026, 8, 14, 9, 30, 15, 123456789, time.UTC)

// pvcFinding and scFinding are findings as Auditor.Object makes them.
func pvcFinding(ns, name, rule string, sev Severity) Finding {
	return Finding{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: name, UID: types.UID("uid-" + name),
		Rule: rule, Severity: sev, Message: rule + " on " + name, Fix: "fix " + rule}
}

func scFinding(name, rule string, sev Severity) Finding {
	return Finding{Kind: "StorageClass", APIVersion: "storage.k8s.io/v1", Name: name, UID: types.UID("uid-" + name),
		Rule: rule, Severity: sev, Message: rule + " on " + name, Fix: "fix " + rule}
}

// decodeDocs splits the output as kubectl does and decodes each document.
func decodeDocs(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	var docs []map[string]any
	for {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("read document: %v\n%s", err, out)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			t.Fatalf("empty document in\n%s", out)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("document does not parse: %v\n%s", err, raw)
		}
		docs = append(docs, doc)
	}
}

func render(t *testing.T, fs []Finding) []map[string]any {
	t.Helper()
	out, err := OpenReports(fs, orNow)
	if err != nil {
		t.Fatal(err)
	}
	return decodeDocs(t, out)
}

// get follows a path of map keys and slice indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func TestOpenReportsMapping(t *testing.T) {
	for _, tc := range []struct {
		name     string
		finding  Finding
		result   string
		severity string
		scored   bool
		category string
	}{
		{"violation is a high fail", pvcFinding("ns", "a", "PVC-V3", Violation), "fail", "high", true, "PersistentVolumeClaim"},
		{"drift is a medium warn", pvcFinding("ns", "a", "PVC-M1", Drift), "warn", "medium", false, "PersistentVolumeClaim"},
		{"warning is a low warn", scFinding("c", "SC-V3", Warning), "warn", "low", false, "StorageClass"},
		{"category is the rule's resource", func() Finding { f := scFinding("c", "SC-M1", Drift); f.Kind = "Thing"; return f }(), "warn", "medium", false, "StorageClass"},
		{"a rule outside the table takes the object's kind", pvcFinding("ns", "a", "XX-V9", Violation), "fail", "high", true, "PersistentVolumeClaim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs := render(t, []Finding{tc.finding})
			if len(docs) != 1 {
				t.Fatalf("%d documents, want 1", len(docs))
			}
			f := tc.finding
			wantRes := map[string]any{
				"policy": "storage-webhook", "source": "storage-webhook", "rule": f.Rule,
				"result": tc.result, "severity": tc.severity, "scored": tc.scored, "category": tc.category,
				"message":    f.Message,
				"properties": map[string]any{"fix": f.Fix, "severity": string(f.Severity)},
				"resources": []any{func() map[string]any {
					ref := map[string]any{"apiVersion": f.APIVersion, "kind": f.Kind, "name": f.Name, "uid": string(f.UID)}
					if f.Namespace != "" {
						ref["namespace"] = f.Namespace
					}
					return ref
				}()},
				"timestamp": map[string]any{"seconds": float64(orNow.Unix()), "nanos": float64(123456789)},
			}
			if got := get(docs[0], "results", 0); !reflect.DeepEqual(got, wantRes) {
				t.Errorf("result\n got %v\nwant %v", got, wantRes)
			}
		})
	}
}

func TestOpenReportsGroupsByNamespace(t *testing.T) {
	fs := []Finding{
		pvcFinding("zeta", "z1", "PVC-V3", Violation),
		scFinding("gold", "SC-M1", Drift),
		pvcFinding("alpha", "a2", "PVC-M1", Drift),
		{Kind: "StorageProfile", APIVersion: "cdi.kubevirt.io/v1beta1", Name: "gold", Rule: "SP-M1", Severity: Drift, Message: "m"},
		pvcFinding("alpha", "a1", "PVC-V3", Violation),
		{Kind: "VirtualMachine", APIVersion: "kubevirt.io/v1", Namespace: "alpha", Name: "vm", Rule: "VM-V1", Severity: Violation, Message: "m"},
	}
	docs := render(t, fs)
	type key struct{ kind, ns string }
	var got []key
	for _, d := range docs {
		if d["apiVersion"] != "openreports.io/v1alpha1" {
			t.Errorf("apiVersion %v", d["apiVersion"])
		}
		if get(d, "metadata", "name") != "storage-webhook" || d["source"] != "storage-webhook" {
			t.Errorf("metadata.name %v, source %v", get(d, "metadata", "name"), d["source"])
		}
		if get(d, "metadata", "labels", "app.kubernetes.io/managed-by") != "storage-webhook" {
			t.Errorf("labels %v", get(d, "metadata", "labels"))
		}
		ns, _ := get(d, "metadata", "namespace").(string)
		got = append(got, key{d["kind"].(string), ns})
		for _, r := range d["results"].([]any) {
			if rns, _ := get(r, "resources", 0, "namespace").(string); rns != ns {
				t.Errorf("%s %s holds a result for namespace %q", d["kind"], ns, rns)
			}
		}
	}
	want := []key{{"ClusterReport", ""}, {"Report", "alpha"}, {"Report", "zeta"}}
	if !slices.Equal(got, want) {
		t.Fatalf("documents %v, want %v", got, want)
	}
	// Within a report, results follow Sort: kind, namespace, name, rule.
	var alpha []string
	for _, r := range docs[1]["results"].([]any) {
		alpha = append(alpha, fmt.Sprint(get(r, "resources", 0, "kind"), "/", get(r, "resources", 0, "name"), " ", get(r, "rule")))
	}
	if w := []string{"PersistentVolumeClaim/a1 PVC-V3", "PersistentVolumeClaim/a2 PVC-M1", "VirtualMachine/vm VM-V1"}; !slices.Equal(alpha, w) {
		t.Errorf("alpha results %v, want %v", alpha, w)
	}
	var cluster []string
	for _, r := range docs[0]["results"].([]any) {
		cluster = append(cluster, fmt.Sprint(get(r, "resources", 0, "kind")))
	}
	if w := []string{"StorageClass", "StorageProfile"}; !slices.Equal(cluster, w) {
		t.Errorf("cluster results %v, want %v", cluster, w)
	}
	// The StorageProfile finding has no UID: the reference leaves it out.
	if ref := get(docs[0], "results", 1, "resources", 0).(map[string]any); ref["uid"] != nil || ref["namespace"] != nil {
		t.Errorf("reference %v has an empty uid or namespace", ref)
	}
}

func TestOpenReportsSummary(t *testing.T) {
	type counts struct{ pass, fail, warn, errs, skip float64 }
	for _, tc := range []struct {
		name string
		sevs []Severity
		want counts
	}{
		{"one violation", []Severity{Violation}, counts{fail: 1}},
		{"drift and warnings are warns", []Severity{Drift, Warning, Warning}, counts{warn: 3}},
		{"mixed", []Severity{Violation, Drift, Violation, Warning}, counts{fail: 2, warn: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fs []Finding
			for i, s := range tc.sevs {
				fs = append(fs, pvcFinding("ns", fmt.Sprintf("p%d", i), "PVC-V3", s))
			}
			docs := render(t, fs)
			if len(docs) != 1 {
				t.Fatalf("%d documents, want 1", len(docs))
			}
			s := docs[0]["summary"]
			got := counts{get(s, "pass").(float64), get(s, "fail").(float64), get(s, "warn").(float64), get(s, "error").(float64), get(s, "skip").(float64)}
			if got != tc.want {
				t.Errorf("summary %+v, want %+v", got, tc.want)
			}
			if n := len(docs[0]["results"].([]any)); n != len(tc.sevs) {
				t.Errorf("%d results, want %d", n, len(tc.sevs))
			}
		})
	}
}

func TestOpenReportsIsDeterministic(t *testing.T) {
	fs := []Finding{
		pvcFinding("b", "p1", "PVC-V3", Violation),
		pvcFinding("a", "p2", "PVC-M1", Drift),
		pvcFinding("a", "p1", "PVC-V3", Warning),
		scFinding("gold", "SC-M1", Drift),
		scFinding("gold", "SC-V3", Warning),
		scFinding("bronze", "SC-V1", Violation),
	}
	orig := slices.Clone(fs)
	first, err := OpenReports(fs, orNow)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fs, orig) {
		t.Error("OpenReports changed its input")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		shuffled := slices.Clone(fs)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again, err := OpenReports(shuffled, orNow)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("order %d gives other bytes:\n%s\n---- vs ----\n%s", i, first, again)
		}
	}
	// Documents are separated by "---\n", with none before the first or after the last.
	if n := bytes.Count(first, []byte("\n---\n")); n != 2 || bytes.HasPrefix(first, []byte("---")) || bytes.HasSuffix(first, []byte("---\n")) {
		t.Errorf("%d separators in\n%s", n, first)
	}
	// Only the timestamps depend on now.
	later, err := OpenReports(fs, orNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(b []byte, t time.Time) string {
		return strings.ReplaceAll(string(b), fmt.Sprintf("seconds: %d", t.Unix()), "seconds: S")
	}
	if bytes.Equal(first, later) || stamp(first, orNow) != stamp(later, orNow.Add(time.Hour)) {
		t.Error("a later now changes more than the timestamps")
	}
}

func TestOpenReportsWithoutFindingsIsEmpty(t *testing.T) {
	for _, fs := range [][]Finding{nil, {}} {
		out, err := OpenReports(fs, orNow)
		if err != nil || len(out) != 0 {
			t.Errorf("OpenReports(%#v) = %q, %v; want no output", fs, out, err)
		}
	}
}

func TestOpenReportsRefusesWhatItCannotMap(t *testing.T) {
	for _, f := range []Finding{
		pvcFinding("ns", "a", "PVC-V3", "error"),
		pvcFinding("ns", "a", "", Violation),
	} {
		if out, err := OpenReports([]Finding{f}, orNow); err == nil {
			t.Errorf("finding %+v rendered:\n%s", f, out)
		}
	}
}

// TestOpenReportsMatchesTheCRDSchemas checks the output against the structural schemas of
// the vendored OpenReports CRDs (the e2e suite has the API server check them too): no field
// the schema lacks, the enums, the required fields and the types.
func TestOpenReportsMatchesTheCRDSchemas(t *testing.T) {
	schemas := map[string]map[string]any{
		"Report":        crdSchema(t, "reports"),
		"ClusterReport": crdSchema(t, "clusterreports"),
	}
	fs := []Finding{
		pvcFinding("ns", "a", "PVC-V3", Violation),
		pvcFinding("ns", "b", "PVC-M1", Drift),
		pvcFinding("other", "c", "PVC-V3", Warning),
		scFinding("gold", "SC-M1", Drift),
	}
	docs := render(t, fs)
	if len(docs) != 3 {
		t.Fatalf("%d documents, want 3", len(docs))
	}
	for _, d := range docs {
		if errs := checkSchema("", d, schemas[d["kind"].(string)]); len(errs) > 0 {
			t.Errorf("%s %v:\n%s", d["kind"], get(d, "metadata", "namespace"), strings.Join(errs, "\n"))
		}
	}
	// The check itself refuses what the API server would.
	for name, breakIt := range map[string]func(d map[string]any){
		"result bad":       func(d map[string]any) { get(d, "results", 0).(map[string]any)["result"] = "bad" },
		"severity urgent":  func(d map[string]any) { get(d, "results", 0).(map[string]any)["severity"] = "urgent" },
		"no policy":        func(d map[string]any) { delete(get(d, "results", 0).(map[string]any), "policy") },
		"unknown field":    func(d map[string]any) { get(d, "results", 0).(map[string]any)["fixes"] = "x" },
		"timestamp string": func(d map[string]any) { get(d, "results", 0).(map[string]any)["timestamp"] = "now" },
	} {
		d := render(t, fs)[1]
		breakIt(d)
		if errs := checkSchema("", d, schemas["Report"]); len(errs) == 0 {
			t.Errorf("%s: the schema check passes it", name)
		}
	}
}

// TestOpenReportsOfPlantedFindings renders what audit finds in testdata/audit: every finding
// becomes one result, in a report the CRD schema accepts.
func TestOpenReportsOfPlantedFindings(t *testing.T) {
	view, err := cluster.LoadFiles("../testdata/audit")
	if err != nil {
		t.Fatal(err)
	}
	findings, errs := New(&admit.Env{View: view, Providers: providers.NewStore(nil)}).All(view)
	if len(errs) > 0 || len(findings) == 0 {
		t.Fatalf("audit: %d findings, errors %v", len(findings), errs)
	}
	docs := render(t, findings)
	schemas := map[string]map[string]any{"Report": crdSchema(t, "reports"), "ClusterReport": crdSchema(t, "clusterreports")}
	var results int
	for _, d := range docs {
		if errs := checkSchema("", d, schemas[d["kind"].(string)]); len(errs) > 0 {
			t.Errorf("%s %v:\n%s", d["kind"], get(d, "metadata", "namespace"), strings.Join(errs, "\n"))
		}
		results += len(d["results"].([]any))
	}
	if results != len(findings) {
		t.Errorf("%d results for %d findings", results, len(findings))
	}
}

// crdSchema is the openAPIV3Schema of a vendored OpenReports CRD.
func crdSchema(t *testing.T, plural string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../e2e/testdata/crds/upstream/openreports-openreports.io_" + plural + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	s, ok := get(crd, "spec", "versions", 0, "schema", "openAPIV3Schema").(map[string]any)
	if !ok || get(crd, "spec", "versions", 0, "name") != "v1alpha1" {
		t.Fatalf("%s: no v1alpha1 schema", plural)
	}
	return s
}

// checkSchema is the part of structural-schema validation the output can break: types,
// enums, required fields and unknown fields (which the API server prunes or, with strict
// field validation, refuses).
func checkSchema(path string, v any, s map[string]any) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("%T, want an object", v)
			return errs
		}
		props, _ := s["properties"].(map[string]any)
		additional, _ := s["additionalProperties"].(map[string]any)
		for _, r := range asSlice(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				bad("required field %s missing", r)
			}
		}
		for k, val := range m {
			switch {
			case props[k] != nil:
				errs = append(errs, checkSchema(path+"."+k, val, props[k].(map[string]any))...)
			case additional != nil:
				errs = append(errs, checkSchema(path+"."+k, val, additional)...)
			case props != nil:
				bad("unknown field %s", k)
			}
		}
	case "array":
		items, _ := s["items"].(map[string]any)
		for i, e := range asSlice(v) {
			errs = append(errs, checkSchema(fmt.Sprintf("%s[%d]", path, i), e, items)...)
		}
		if _, ok := v.([]any); !ok {
			bad("%T, want an array", v)
		}
	case "string":
		if _, ok := v.(string); !ok {
			bad("%T, want a string", v)
		}
	case "integer":
		if n, ok := v.(float64); !ok || n != float64(int64(n)) {
			bad("%v, want an integer", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("%T, want a boolean", v)
		}
	}
	if enum := asSlice(s["enum"]); enum != nil && !slices.Contains(enum, v) {
		bad("%v not in %v", v, enum)
	}
	return errs
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
