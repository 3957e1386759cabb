package webhook_test

import (
	"encoding/json"
	"os"
	"slices"
	"sort"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/admit"
)

// TestGitOpsExampleIgnoresEveryFieldTheServiceSets: the Argo CD example's ignoreDifferences
// (examples/gitops/argocd-application.yaml, quoted by the README) lists exactly the fields
// the mutating fixtures patch, per kind: none is missing (Argo CD would report drift on it)
// and none is stale.
func TestGitOpsExampleIgnoresEveryFieldTheServiceSets(t *testing.T) {
	data, err := os.ReadFile("../examples/gitops/argocd-application.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Spec struct {
			IgnoreDifferences []struct {
				Group, Kind  string
				JSONPointers []string `json:"jsonPointers"`
			} `json:"ignoreDifferences"`
		}
	}
	if err := yaml.Unmarshal(data, &app); err != nil {
		t.Fatal(err)
	}
	listed := map[string][]string{} // "group/kind" -> pointers
	for _, d := range app.Spec.IgnoreDifferences {
		listed[d.Group+"/"+d.Kind] = append(listed[d.Group+"/"+d.Kind], d.JSONPointers...)
	}

	patched := map[string][]string{}
	mux := newFixtureMuxes(t)
	for _, fx := range loadDocFixtures(t) {
		resp := docAnswer(t, mux, fx)
		if len(resp.Patch) == 0 {
			continue
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(fx.Review, &review); err != nil {
			t.Fatal(err)
		}
		var ops []admit.Op
		if err := json.Unmarshal(resp.Patch, &ops); err != nil {
			t.Fatal(err)
		}
		kind := review.Request.Kind.Group + "/" + review.Request.Kind.Kind
		for _, op := range ops {
			for _, leaf := range leaves(op.Path, op.Value) {
				if !slices.Contains(patched[kind], leaf) {
					patched[kind] = append(patched[kind], leaf)
				}
			}
		}
	}
	for kind, pointers := range patched {
		sort.Strings(pointers)
		for _, p := range pointers {
			if !slices.Contains(listed[kind], p) {
				t.Errorf("%s: the service sets %s, which the example does not ignore", kind, p)
			}
		}
	}
	for kind, pointers := range listed {
		for _, p := range pointers {
			if !slices.Contains(patched[kind], p) {
				t.Errorf("%s: the example ignores %s, which no fixture shows the service setting", kind, p)
			}
		}
	}
}

// leaves expands a patch operation into the JSON pointers of the scalar values it sets: an
// added object (a new annotations map, parameters, spec) sets each of its members.
func leaves(path string, value any) []string {
	m, ok := value.(map[string]any)
	if !ok {
		return []string{path}
	}
	var out []string
	for k, v := range m {
		out = append(out, leaves(path+admit.Pointer(k), v)...)
	}
	return out
}
