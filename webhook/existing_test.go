package webhook_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/webhook"
)

// TestUnchangedUpdateIsNeverDenied is SPEC §8's "existing violations": an UPDATE that does
// not change what a rule reads is never denied by it, whatever the stored object already
// violates (the audit reports it instead). Every CREATE fixture a validating webhook
// denies is replayed as an UPDATE of that same object to itself with one new label (what
// a controller's status or label write looks like), and must be allowed.
func TestUnchangedUpdateIsNeverDenied(t *testing.T) {
	files, err := filepath.Glob("../testdata/admission/*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	muxes := newFixtureMuxes(t)
	replayed := 0
	for _, file := range files {
		fx := readFixture(t, file)
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(fx.Review, &review); err != nil {
			t.Fatal(err)
		}
		req := review.Request
		if !strings.HasPrefix(fx.Webhook, "/validate/") || req.Operation != admissionv1.Create || fx.Want.Allowed || req.DryRun != nil && *req.DryRun ||
			slices.Contains(fx.Want.Rules, admit.RuleDecode) || slices.Contains(fx.Want.Rules, webhook.RuleRoute) {
			continue // an object the API server's schema would not store, or a misrouted request
		}
		var obj map[string]any
		if json.Unmarshal(req.Object.Raw, &obj) != nil {
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		if meta == nil {
			continue
		}
		replayed++
		t.Run(strings.TrimSuffix(strings.TrimPrefix(file, "../testdata/admission/"), ".json"), func(t *testing.T) {
			req.OldObject = req.Object
			labels, _ := meta["labels"].(map[string]any)
			if labels == nil {
				labels = map[string]any{}
			}
			labels["storage-webhook.test/touched"] = "true"
			meta["labels"] = labels
			var err error
			if req.Object.Raw, err = json.Marshal(obj); err != nil {
				t.Fatal(err)
			}
			req.Operation = admissionv1.Update
			body, _ := json.Marshal(&review)
			rec := post(t, muxes.For(fx.Settings, nil), fx.Webhook, string(body))
			var out admissionv1.AdmissionReview
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Response == nil {
				t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
			}
			if !out.Response.Allowed {
				t.Errorf("an UPDATE that changes only a label is denied: %s", out.Response.Result.Message)
			}
		})
	}
	if replayed < 50 {
		t.Errorf("%d CREATE denials replayed, want every one (at least 50)", replayed)
	}
}
