package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/webhook"
)

// fixture is one case under testdata/admission: an AdmissionReview sent to a webhook path
// and what must come back.
type fixture struct {
	Webhook string `json:"webhook"` // the path, e.g. /mutate/virtualmachineimages
	// Settings replace Harvester Settings of the test cluster view (testdata/cluster, whose
	// Harvester is v1.6.1) for this fixture: a string is the Setting's value (its default
	// stays), null removes the Setting. A fixture of another release sets server-version.
	Settings map[string]*string `json:"settings"`
	// Providers is the providers file in force for this fixture (as JSON), with a rollout
	// (README "Rolling out"); absent: the built-in table, every rule enforced.
	Providers json.RawMessage `json:"providers"`
	Review    json.RawMessage `json:"review"`
	Want      struct {
		Allowed bool `json:"allowed"`
		// Code is the status code of a denial.
		Code int32 `json:"code"`
		// Rules that denied or warned, and rules that patched.
		Rules     []string `json:"rules"`
		MutatedBy []string `json:"mutatedBy"`
		// MessageContains are substrings of the denial message.
		MessageContains []string `json:"messageContains"`
		// Warnings are substrings, one per expected warning (the count must match).
		Warnings []string `json:"warnings"`
		// Object is the request object after applying the returned patch, compared as JSON.
		// Absent for validating webhooks and denials; for a mutating allow with no patch it
		// must equal the request object.
		Object json.RawMessage `json:"object"`
		// Patch, when present, must equal the returned operations exactly.
		Patch json.RawMessage `json:"patch"`
		// Recorded are the audit annotations of what the rollout kept out of the answer
		// (audit-<rule>, skipped-<rule>): the keys exactly, a substring of each value.
		Recorded map[string]string `json:"recorded"`
	} `json:"want"`
}

func testHandler(t testing.TB) *webhook.Handler {
	t.Helper()
	objs, err := testClusterObjects()
	if err != nil {
		t.Fatal(err)
	}
	copies := make([]*unstructured.Unstructured, len(objs))
	for i, u := range objs {
		copies[i] = u.DeepCopy()
	}
	view, err := cluster.NewFiles(copies)
	if err != nil {
		t.Fatal(err)
	}
	env := benchEnv(view)
	log := logrus.New()
	log.SetOutput(io.Discard)
	return &webhook.Handler{Hooks: webhook.Hooks(env), Log: log}
}

// readFixture reads one fixture file; a field the fixture type does not know is an error, so
// a misspelt expectation cannot pass unchecked.
func readFixture(t testing.TB, file string) fixture {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fx); err != nil {
		t.Fatalf("%s does not parse: %v", file, err)
	}
	return fx
}

// testClusterObjects parses testdata/cluster once per test binary (the YAML is most of a
// handler's set-up); each handler gets its own copies, so no test sees another's changes.
var testClusterObjects = sync.OnceValues(func() ([]*unstructured.Unstructured, error) {
	return cluster.ReadManifests("../testdata/cluster")
})

// fixtureMuxes serve each fixture with the handler of its cluster view: testdata/cluster
// with the fixture's Settings in place of the view's; one handler per distinct Settings.
type fixtureMuxes struct {
	t     testing.TB
	base  []*unstructured.Unstructured
	byKey map[string]http.Handler
}

func newFixtureMuxes(t testing.TB) *fixtureMuxes {
	t.Helper()
	objs, err := cluster.ReadManifests("../testdata/cluster")
	if err != nil {
		t.Fatal(err)
	}
	return &fixtureMuxes{t: t, base: objs, byKey: map[string]http.Handler{}}
}

// For is the handler of the view with settings (nil: testdata/cluster as it is) and the
// providers file file (nil: none).
func (m *fixtureMuxes) For(settings map[string]*string, file json.RawMessage) http.Handler {
	m.t.Helper()
	key, _ := json.Marshal(settings) // map keys sorted
	key = append(append(key, '|'), file...)
	if h, ok := m.byKey[string(key)]; ok {
		return h
	}
	objs := make([]*unstructured.Unstructured, 0, len(m.base)+len(settings))
	left := maps.Clone(settings)
	for _, u := range m.base {
		v, replaced := settings[u.GetName()]
		switch {
		case u.GetKind() != "Setting" || !replaced:
			objs = append(objs, u)
		case v != nil:
			u = u.DeepCopy()
			u.Object["value"] = *v
			objs = append(objs, u)
		}
		if u.GetKind() == "Setting" {
			delete(left, u.GetName())
		}
	}
	for name, v := range left {
		if v != nil {
			objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting", "metadata": map[string]any{"name": name}, "value": *v}})
		}
	}
	view, err := cluster.NewFiles(objs)
	if err != nil {
		m.t.Fatal(err)
	}
	env := benchEnv(view)
	if file != nil {
		f, err := providers.Parse(file, webhook.Catalogue())
		if err != nil {
			m.t.Fatalf("providers: %v", err)
		}
		env.Providers = providers.NewStore(f)
		env.Providers.UseHarvester(view, "", nil)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	h := (&webhook.Handler{Hooks: webhook.Hooks(env), Log: log}).Mux()
	m.byKey[string(key)] = h
	return h
}

// TestAdmissionFixtures sends every fixture through the real HTTP handler: the rules'
// (testdata/admission) and the rollout's (testdata/rollout, each with its providers file).
func TestAdmissionFixtures(t *testing.T) {
	files, err := filepath.Glob("../testdata/admission/*/*.json")
	rollouts, err2 := filepath.Glob("../testdata/rollout/*.json")
	if err != nil || err2 != nil || len(files) == 0 || len(rollouts) == 0 {
		t.Fatalf("no fixtures found: %v %v", err, err2)
	}
	files = append(files, rollouts...)
	muxes := newFixtureMuxes(t)
	foreign := namespacedObjects(t)
	for _, file := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(file, "../testdata/admission/"), "../testdata/"), ".json")
		t.Run(name, func(t *testing.T) {
			fx := readFixture(t, file)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, fx.Webhook, bytes.NewReader(fx.Review))
			req.Header.Set("Content-Type", "application/json")
			muxes.For(fx.Settings, fx.Providers).ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
			}
			var in, out admissionv1.AdmissionReview
			if err := json.Unmarshal(fx.Review, &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			checkResponse(t, &fx, in.Request, out.Response)
			checkNamesNoForeignObject(t, foreign, in.Request, out.Response)
		})
	}
}

// namespacedObjects are the names of the test cluster view's namespaced objects, by namespace.
func namespacedObjects(t *testing.T) map[string][]string {
	t.Helper()
	view, err := cluster.LoadFiles("../testdata/cluster")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, u := range view.Objects() {
		if ns := u.GetNamespace(); ns != "" {
			out[ns] = append(out[ns], u.GetName())
		}
	}
	return out
}

// checkNamesNoForeignObject: an answer (denial message and warnings) names no object of a
// namespace other than the request's, unless the request itself names it (an image
// reference, an export's source PVC): a caller learns nothing of what it did not ask about
// (issue 16). A cluster-scoped request has no namespace of its own.
func checkNamesNoForeignObject(t *testing.T, objects map[string][]string, req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse) {
	t.Helper()
	text := strings.Join(resp.Warnings, "\n")
	if resp.Result != nil {
		text += "\n" + resp.Result.Message
	}
	asked := string(req.Object.Raw) + string(req.OldObject.Raw)
	for ns, names := range objects {
		if ns == req.Namespace {
			continue
		}
		for _, name := range names {
			named := strings.Contains(asked, `"`+name+`"`) || strings.Contains(asked, "/"+name+`"`) ||
				strings.Contains(asked, "/"+name+`\"`) // inside an annotation that holds JSON
			if !named && namesToken(text, name) {
				t.Errorf("the answer names %s/%s, an object of another namespace the request does not name: %q", ns, name, text)
			}
		}
	}
}

// namesToken reports whether name occurs in text as a whole name (not inside a longer one).
func namesToken(text, name string) bool {
	isNameByte := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' }
	for i := 0; ; {
		j := strings.Index(text[i:], name)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(name)
		if (start == 0 || !isNameByte(text[start-1])) && (end == len(text) || !isNameByte(text[end])) {
			return true
		}
		i = start + 1
	}
}

func checkResponse(t *testing.T, fx *fixture, req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse) {
	t.Helper()
	w := fx.Want
	if resp.UID != req.UID {
		t.Errorf("uid = %q, want the request's %q", resp.UID, req.UID)
	}
	if resp.Allowed != w.Allowed {
		t.Fatalf("allowed = %v, want %v (result: %+v)", resp.Allowed, w.Allowed, resp.Result)
	}
	if !w.Allowed {
		if resp.Result == nil || resp.Result.Code != w.Code {
			t.Errorf("denial status = %+v, want code %d", resp.Result, w.Code)
		}
		for _, s := range w.MessageContains {
			if resp.Result == nil || !strings.Contains(resp.Result.Message, s) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, s)
			}
		}
		if resp.Patch != nil {
			t.Errorf("a denial carries a patch: %s", resp.Patch)
		}
	}
	checkRulesAndWarnings(t, resp, w.Rules, w.MutatedBy, w.Warnings)
	recorded := map[string]string{}
	for k, v := range resp.AuditAnnotations {
		if strings.HasPrefix(k, "audit-") || strings.HasPrefix(k, "skipped-") {
			recorded[k] = v
		}
	}
	if len(recorded) != len(w.Recorded) {
		t.Errorf("recorded audit annotations %q, want keys %q", recorded, slices.Sorted(maps.Keys(w.Recorded)))
	}
	for k, want := range w.Recorded {
		if !strings.Contains(recorded[k], want) {
			t.Errorf("audit annotation %s = %q, want it to contain %q", k, recorded[k], want)
		}
	}
	if w.Patch != nil && !jsonEqual(t, resp.Patch, w.Patch) {
		t.Errorf("patch = %s\nwant %s", resp.Patch, w.Patch)
	}
	if w.Object != nil {
		got := req.Object.Raw
		if len(resp.Patch) > 0 {
			if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
				t.Fatalf("patchType = %v, want JSONPatch", resp.PatchType)
			}
			var ops []admit.Op
			if err := json.Unmarshal(resp.Patch, &ops); err != nil {
				t.Fatal(err)
			}
			var err error
			if got, err = webhook.ApplyPatch(req.Object.Raw, ops); err != nil {
				t.Fatalf("returned patch %s: %v", resp.Patch, err)
			}
		}
		if !jsonEqual(t, got, w.Object) {
			t.Errorf("object after patch = %s\nwant %s", got, w.Object)
		}
	}
}

// checkRulesAndWarnings checks the audit annotations that name the rules which denied or
// warned and those which patched, and one warning containing each expected fragment.
func checkRulesAndWarnings(t *testing.T, resp *admissionv1.AdmissionResponse, rules, mutatedBy, warnings []string) {
	t.Helper()
	if got := splitIDs(resp.AuditAnnotations["rules"]); !sameSet(got, rules) {
		t.Errorf("rules = %v, want %v", got, rules)
	}
	if got := splitIDs(resp.AuditAnnotations["mutated-by"]); !sameSet(got, mutatedBy) {
		t.Errorf("mutated by = %v, want %v", got, mutatedBy)
	}
	if len(resp.Warnings) != len(warnings) {
		t.Errorf("warnings = %q, want %d containing %q", resp.Warnings, len(warnings), warnings)
		return
	}
	for i, s := range warnings {
		if !strings.Contains(resp.Warnings[i], s) {
			t.Errorf("warning %q does not contain %q", resp.Warnings[i], s)
		}
	}
}

func splitIDs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func sameSet(a, b []string) bool {
	a, b = append([]string{}, a...), append([]string{}, b...)
	sort.Strings(a)
	sort.Strings(b)
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
