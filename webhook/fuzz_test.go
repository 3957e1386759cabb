package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/webhook"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/, so `go test` runs them as ordinary
// tests: every fixture review (FuzzAdmissionHTTP) and object (FuzzRulesDecode) of
// ../testdata/admission, plus garbage, wrong-typed annotations, extreme quantities and deep
// nesting. `go test -fuzz` writes any crasher there too; keep it as a regression seed.

// fuzzMaxBody is the body cap of FuzzAdmissionHTTP: small enough for the fuzzer to reach 413.
const fuzzMaxBody = 64 << 10

// FuzzAdmissionHTTP sends raw bytes to a webhook path (hook picks it among every hook's
// path) through the real handler. Whatever the body, the answer is a 4xx refusal or an
// admission.k8s.io/v1 AdmissionReview for the request's UID; a denial says why with a rule
// ID and a 4xx code; a mutating allow's patch applies to the request's object.
func FuzzAdmissionHTTP(f *testing.F) {
	h := testHandler(f)
	h.MaxBodyBytes = fuzzMaxBody
	mux := h.Mux()
	f.Fuzz(func(t *testing.T, body []byte, hook uint) {
		defer fuzzDeadline(fuzzTimeout, body)()
		target := h.Hooks[hook%uint(len(h.Hooks))]
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, target.ID(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		mux.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			if strings.TrimSpace(rec.Body.String()) == "" {
				t.Fatalf("HTTP %d without a message", rec.Code)
			}
			return
		default:
			t.Fatalf("HTTP %d (want 200, 400, 413 or 415): %s", rec.Code, rec.Body)
		}

		in, err := webhook.DecodeReview(body)
		if err != nil {
			t.Fatalf("HTTP 200 for a body the handler's decoder refuses: %v", err)
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("200 body does not decode as an AdmissionReview: %v\n%s", err, rec.Body)
		}
		if out.APIVersion != admissionv1.SchemeGroupVersion.String() || out.Kind != "AdmissionReview" {
			t.Fatalf("answer is %s %s, want admission.k8s.io/v1 AdmissionReview", out.APIVersion, out.Kind)
		}
		resp := out.Response
		if resp == nil || out.Request != nil {
			t.Fatalf("answer must carry a response and no request: %s", rec.Body)
		}
		if resp.UID != in.Request.UID {
			t.Fatalf("response uid %q, want the request's %q", resp.UID, in.Request.UID)
		}
		if !resp.Allowed {
			checkFuzzDenial(t, resp.Result)
			if resp.Patch != nil || resp.PatchType != nil {
				t.Fatalf("denial carries a patch: %s", resp.Patch)
			}
			return
		}
		if resp.Result != nil && resp.Result.Status == metav1.StatusFailure {
			t.Fatalf("allowed answer with a failure status: %+v", resp.Result)
		}
		if len(resp.Patch) == 0 {
			if resp.PatchType != nil {
				t.Fatalf("patchType %v without a patch", *resp.PatchType)
			}
			return
		}
		if !target.Mutating() {
			t.Fatalf("validating webhook %s returned a patch: %s", target.ID(), resp.Patch)
		}
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patchType = %v, want JSONPatch", resp.PatchType)
		}
		var ops []admit.Op
		if err := json.Unmarshal(resp.Patch, &ops); err != nil {
			t.Fatalf("patch does not decode: %v\n%s", err, resp.Patch)
		}
		if _, err := webhook.ApplyPatch(in.Request.Object.Raw, ops); err != nil {
			t.Fatalf("returned patch does not apply to the request object: %v\npatch: %s\nobject: %s", err, resp.Patch, in.Request.Object.Raw)
		}
	})
}

// checkFuzzDenial: a denial has a failure status, code 400 or 403, and a message that
// starts with a rule ID in brackets.
func checkFuzzDenial(t *testing.T, st *metav1.Status) {
	t.Helper()
	switch {
	case st == nil:
		t.Fatal("denial without a status")
	case st.Code != http.StatusBadRequest && st.Code != http.StatusForbidden:
		t.Fatalf("denial code %d, want 400 or 403: %q", st.Code, st.Message)
	case !strings.HasPrefix(st.Message, "["):
		t.Fatalf("denial message does not start with a rule ID: %q", st.Message)
	}
}

// FuzzRulesDecode places the bytes as the object of well-formed AdmissionReviews for every
// hook (CREATE; UPDATE with the same bytes as oldObject; DELETE with them as oldObject; and
// on every subresource the route accepts) and runs the hook. No object makes a rule fail or
// panic; a denial names DECODE or a rule of the hook's route; a mutating allow's patch
// applies to the object; and the answer is the same when admit.Decode uses the reference
// decoder alone, so the fast decoder changes no rule's answer for the rules' own types
// (except that it refuses a quantity beyond bounds only in a field a rule reads).
func FuzzRulesDecode(f *testing.F) {
	h := testHandler(f)
	f.Fuzz(func(t *testing.T, obj []byte) {
		defer fuzzDeadline(fuzzTimeout, obj)()
		if !json.Valid(obj) {
			return // no review can carry it (FuzzAdmissionHTTP covers such bodies)
		}
		carried, ok := fuzzCarry(t, obj)
		if !ok {
			return // nested too deep for a review to carry it
		}
		for _, hook := range h.Hooks {
			r := hook.Route
			known := []string{admit.RuleDecode}
			for _, rule := range r.Rules {
				known = append(known, rule.ID)
			}
			for _, sub := range r.SubResources {
				for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update, admissionv1.Delete} {
					req := fuzzRequest(r, sub, op, carried)
					res, err := hook.Admit(context.Background(), req)
					restore := admit.UseReferenceDecoder()
					ref, refErr := hook.Admit(context.Background(), req)
					restore()
					same := reflect.DeepEqual(res, ref) && (err == nil) == (refErr == nil)
					if !same && !admit.HoldsCostlyQuantity(obj) {
						t.Fatalf("%s %s (subresource %q): the rules answer differently with the reference decoder alone:\nfast:      %+v %v\nreference: %+v %v",
							hook.ID(), op, sub, res, err, ref, refErr)
					}
					var pe *webhook.PanicError
					if errors.As(err, &pe) {
						t.Fatalf("%s %s (subresource %q): rule panicked: %v\n%s", hook.ID(), op, sub, pe.Value, pe.Stack)
					}
					if err != nil {
						t.Fatalf("%s %s (subresource %q): %v", hook.ID(), op, sub, err)
					}
					for _, d := range res.Denials {
						if !slices.Contains(known, d.Rule) {
							t.Fatalf("%s %s: denial by unknown rule %q: %s", hook.ID(), op, d.Rule, d.Message)
						}
					}
					for _, w := range res.Warnings {
						if !slices.Contains(known, w.Rule) {
							t.Fatalf("%s %s: warning by unknown rule %q: %s", hook.ID(), op, w.Rule, w.Message)
						}
					}
					if !res.Allowed() || len(res.Patch) == 0 {
						continue
					}
					if !hook.Mutating() {
						t.Fatalf("%s %s: validating hook returned a patch %+v", hook.ID(), op, res.Patch)
					}
					if _, err := webhook.ApplyPatch(req.Object.Raw, res.Patch); err != nil {
						t.Fatalf("%s %s: patch %+v does not apply: %v", hook.ID(), op, res.Patch, err)
					}
				}
			}
		}
	})
}

// fuzzCarry is obj as a rule receives it: carried in an admission.k8s.io/v1
// AdmissionReview, encoded and read back by DecodeReview (which compacts it). It is false
// when obj is nested deeper than the API server's JSON decoders accept. One round trip per
// input: the review around obj is the same for every route and operation.
func fuzzCarry(t *testing.T, obj []byte) ([]byte, bool) {
	t.Helper()
	body, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Request:  &admissionv1.AdmissionRequest{UID: "fuzz-uid", Object: runtime.RawExtension{Raw: obj}},
	})
	if err != nil {
		t.Fatalf("review does not encode: %v", err)
	}
	review, err := webhook.DecodeReview(body)
	if err != nil && strings.Contains(err.Error(), "exceeded max depth") {
		return nil, false
	}
	if err != nil {
		t.Fatalf("well-formed review refused: %v\n%s", err, body)
	}
	return review.Request.Object.Raw, true
}

// fuzzRequest is the request of a review for route r with operation op whose objects are
// copies of carried (from fuzzCarry): a create has it as the object, a delete as the old
// object, an update as both.
func fuzzRequest(r *webhook.Route, sub string, op admissionv1.Operation, carried []byte) *admissionv1.AdmissionRequest {
	req := &admissionv1.AdmissionRequest{
		UID:         "fuzz-uid",
		Kind:        metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind},
		Resource:    metav1.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Resource},
		SubResource: sub,
		Name:        "fuzz",
		Operation:   op,
		UserInfo:    authenticationv1.UserInfo{Username: "alice"},
	}
	if r.Namespaced {
		req.Namespace = "default"
	}
	raw := func() runtime.RawExtension { return runtime.RawExtension{Raw: bytes.Clone(carried)} }
	switch op {
	case admissionv1.Create:
		req.Object = raw()
	case admissionv1.Update:
		req.Object, req.OldObject = raw(), raw()
	case admissionv1.Delete:
		req.OldObject = raw()
	}
	return req
}

// fuzzTimeout is how long one input may run, seed inputs under the race detector included.
const fuzzTimeout = 10 * time.Second

// fuzzDeadline makes one input that runs longer than d crash the fuzzing process, which
// then keeps the input as a crasher: Go's fuzzer does not notice a hang by itself (the
// first bug FuzzDecodeQuantity found was a quantity that took hours to parse).
func fuzzDeadline(d time.Duration, input any) (stop func() bool) {
	return time.AfterFunc(d, func() { panic(fmt.Sprintf("one input ran for over %v: %.200q", d, input)) }).Stop
}

// TestFuzzCorporaHoldEveryFixture: each admission fixture's review is a seed of
// FuzzAdmissionHTTP, and its object (or, for a DELETE, its old object) a seed of
// FuzzRulesDecode, so the fuzzers start from every case the rules know. A new fixture
// without its seeds fails here; UPDATE_GOLDEN=1 (make generate) writes the missing ones.
func TestFuzzCorporaHoldEveryFixture(t *testing.T) {
	hookIndex := map[string]int{}
	for i, h := range testHandler(t).Hooks {
		hookIndex[h.ID()] = i
	}
	writeSeed := func(path string, args ...string) {
		data := "go test fuzz v1\n" + strings.Join(args, "\n") + "\n"
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	update := os.Getenv("UPDATE_GOLDEN") == "1"
	files, err := filepath.Glob("../testdata/admission/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	objects := map[string]bool{}
	seeds, err := filepath.Glob("testdata/fuzz/FuzzRulesDecode/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range seeds {
		data, err := os.ReadFile(seed)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			continue
		}
		if obj, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")); err == nil {
			objects[obj] = true
		}
	}
	for _, file := range files {
		name := "fixture-" + filepath.Base(filepath.Dir(file)) + "-" + strings.TrimSuffix(filepath.Base(file), ".json")
		fx := readFixture(t, file)
		if seed := filepath.Join("testdata/fuzz/FuzzAdmissionHTTP", name); update {
			if _, err := os.Stat(seed); err != nil {
				var review bytes.Buffer
				if err := json.Compact(&review, fx.Review); err != nil {
					t.Fatal(err)
				}
				writeSeed(seed, "[]byte("+strconv.Quote(review.String())+")", fmt.Sprintf("uint(%d)", hookIndex[fx.Webhook]))
			}
		} else if _, err := os.Stat(seed); err != nil {
			t.Errorf("%s has no seed FuzzAdmissionHTTP/%s (UPDATE_GOLDEN=1 writes it)", file, name)
		}
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(fx.Review, &ar); err != nil || ar.Request == nil {
			continue // the bad-envelope fixtures carry no object
		}
		raw := ar.Request.Object.Raw
		if len(raw) == 0 {
			raw = ar.Request.OldObject.Raw
		}
		var buf bytes.Buffer
		if len(raw) == 0 || json.Compact(&buf, raw) != nil {
			continue
		}
		switch {
		case objects[buf.String()]:
		case update:
			writeSeed(filepath.Join("testdata/fuzz/FuzzRulesDecode", name+"-object"), "[]byte("+strconv.Quote(buf.String())+")")
		default:
			t.Errorf("%s: its object is no seed of FuzzRulesDecode (add %s-object; UPDATE_GOLDEN=1 writes it)", file, name)
		}
	}
}
