package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	kwhhttp "github.com/slok/kubewebhook/v2/pkg/http"
	"github.com/slok/kubewebhook/v2/pkg/model"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/metrics"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/webhook"
)

const pvcReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1",
 "kind":{"group":"","version":"v1","kind":"PersistentVolumeClaim"},
 "resource":{"group":"","version":"v1","resource":"persistentvolumeclaims"},
 "namespace":"default","name":"x","operation":"CREATE","userInfo":{"username":"alice"},
 "object":{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"x","namespace":"default",
  "ownerReferences":[{"apiVersion":"cdi.kubevirt.io/v1beta1","kind":"DataVolume","name":"x","uid":"u-dv","controller":true}]}}}}`

// TestHandlerRefusesBadEnvelopes: every request that is not a usable AdmissionReview gets a
// precise 4xx status and a message, never a crash or an allow.
func TestHandlerRefusesBadEnvelopes(t *testing.T) {
	h := testHandler(t)
	h.MaxBodyBytes = 4096
	mux := h.Mux()
	cases := []struct {
		name, method, contentType, body string
		wantCode                        int
		wantText                        string
	}{
		{"not JSON", "POST", "application/json", "hello", 400, "not an AdmissionReview"},
		{"truncated JSON", "POST", "application/json", pvcReview[:80], 400, "not an AdmissionReview"},
		{"empty body", "POST", "application/json", "", 400, "body is empty"},
		{"whitespace body", "POST", "application/json", "  \n", 400, "body is empty"},
		{"wrong content type", "POST", "text/plain", pvcReview, 415, "text/plain"},
		{"missing content type", "POST", "", pvcReview, 415, "Content-Type is missing"},
		{"GET", "GET", "application/json", "", 405, "method GET"},
		{"over the body cap", "POST", "application/json", `{"x":"` + strings.Repeat("a", 5000) + `"}`, 413, "larger than 4096 bytes"},
		{"v1beta1 review", "POST", "application/json", strings.Replace(pvcReview, "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1), 400, `"admission.k8s.io/v1beta1"`},
		{"not a review", "POST", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}`, 400, `"Pod", not an admission.k8s.io/v1 AdmissionReview`},
		{"no request", "POST", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400, "has no request"},
		{"no uid", "POST", "application/json", strings.Replace(pvcReview, `"uid":"u-1",`, "", 1), 400, "has no uid"},
		{"JSON array", "POST", "application/json", `[1,2]`, 400, "not an AdmissionReview"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(c.method, "/validate/persistentvolumeclaims", strings.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			mux.ServeHTTP(rec, req)
			if rec.Code != c.wantCode || !strings.Contains(rec.Body.String(), c.wantText) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body, c.wantCode, c.wantText)
			}
		})
	}
}

func post(t *testing.T, h http.Handler, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	h.ServeHTTP(rec, req)
	return rec
}

// TestHandlerNotReadyAnswers503: before the caches have synced, requests are refused with a
// retryable error, never answered from an empty cache.
func TestHandlerNotReadyAnswers503(t *testing.T) {
	h := testHandler(t)
	ready := false
	h.Ready = func() bool { return ready }
	rec := post(t, h.Mux(), "/validate/persistentvolumeclaims", pvcReview)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("not ready: got %d %q, want 503 with Retry-After", rec.Code, rec.Body)
	}
	ready = true
	if rec := post(t, h.Mux(), "/validate/persistentvolumeclaims", pvcReview); rec.Code != http.StatusOK {
		t.Fatalf("ready: got %d %q, want 200", rec.Code, rec.Body)
	}
}

// TestHandlerRecoversRulePanic: a panicking rule fails its own request with 500, is counted,
// and the next request is answered normally.
func TestHandlerRecoversRulePanic(t *testing.T) {
	h := testHandler(t)
	h.Metrics = metrics.New()
	env := &admit.Env{} // no view: the PVC rule dereferences it and panics
	hooks := webhook.Hooks(env)
	h.Hooks = hooks
	rec := post(t, h.Mux(), "/mutate/persistentvolumeclaims", pvcReview)
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "rule panicked") {
		t.Fatalf("got %d %q, want 500 naming the panic", rec.Code, rec.Body)
	}
	if got := testutil.ToFloat64(h.Metrics.PanicsRecovered); got != 1 {
		t.Errorf("panics recovered = %v, want 1", got)
	}
	h.Hooks = testHandler(t).Hooks
	if rec := post(t, h.Mux(), "/mutate/persistentvolumeclaims", pvcReview); rec.Code != http.StatusOK {
		t.Errorf("after the panic: got %d, want 200", rec.Code)
	}
}

// TestHandlerDryRunAnswersTheSame: dryRun does not change the answer.
func TestHandlerDryRunAnswersTheSame(t *testing.T) {
	mux := testHandler(t).Mux()
	review := strings.ReplaceAll(pvcReview, `"name":"x"`, `"name":"image-debian12"`)
	dry := strings.Replace(review, `"operation":"CREATE"`, `"operation":"CREATE","dryRun":true`, 1)
	a := post(t, mux, "/mutate/persistentvolumeclaims", review)
	b := post(t, mux, "/mutate/persistentvolumeclaims", dry)
	if a.Code != 200 || a.Body.String() != b.Body.String() {
		t.Fatalf("dry run answered differently:\n%s\n%s", a.Body, b.Body)
	}
	if !strings.Contains(a.Body.String(), `"patchType":"JSONPatch"`) {
		t.Fatalf("expected the golden mark patch, got %s", a.Body)
	}
}

// TestHookServesThroughKubewebhook: each hook is a kubewebhook webhook.Webhook, and
// kubewebhook's own handler answers with exactly our patch.
func TestHookServesThroughKubewebhook(t *testing.T) {
	var hook *webhook.Hook
	for _, h := range testHandler(t).Hooks {
		if h.ID() == "/mutate/persistentvolumeclaims" {
			hook = h
		}
	}
	kh := kwhhttp.MustHandlerFor(kwhhttp.HandlerConfig{Webhook: hook})
	review := strings.ReplaceAll(pvcReview, `"name":"x"`, `"name":"image-debian12"`)
	rec := post(t, kh, "/", review)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	want := `[{"op":"add","path":"/metadata/annotations","value":{"harvesterhci.io/goldenImage":"true"}}]`
	if !out.Response.Allowed || string(out.Response.Patch) != want {
		t.Fatalf("patch = %s, want %s", out.Response.Patch, want)
	}
	if _, err := hook.Review(context.Background(), model.AdmissionReview{}); err == nil {
		t.Error("a review without a v1 request must be an error")
	}
}

// TestMuxCleansPathsWithoutRedirect: a doubled slash (as envtest registers URLs) reaches the
// hook instead of a redirect, which an API server would not follow; unknown paths are 404.
func TestMuxCleansPathsWithoutRedirect(t *testing.T) {
	mux := testHandler(t).Mux()
	if rec := post(t, mux, "//validate/persistentvolumeclaims", pvcReview); rec.Code != http.StatusOK {
		t.Errorf("//validate/...: got %d %s", rec.Code, rec.Body)
	}
	if rec := post(t, mux, "/validate/pods", pvcReview); rec.Code != http.StatusNotFound {
		t.Errorf("/validate/pods: got %d", rec.Code)
	}
}

// failingAccess answers every IMG-V6 question with an error, as an API server that is down.
type failingAccess struct{}

func (failingAccess) MayGet(context.Context, authenticationv1.UserInfo, schema.GroupResource, string, string) (bool, error) {
	return false, context.DeadlineExceeded
}

// TestHandlerRetryableDenialAnswers503: when IMG-V6 cannot ask the API server, the request
// is denied (never allowed) with code 503 and a retry delay, which the API server passes to
// the client as Retry-After; a permanent denial in the same answer keeps 403.
func TestHandlerRetryableDenialAnswers503(t *testing.T) {
	h := testHandler(t)
	files, err := cluster.LoadFiles("../testdata/cluster")
	if err != nil {
		t.Fatal(err)
	}
	env := benchEnv(files)
	env.Access = failingAccess{}
	h.Hooks = webhook.Hooks(env)
	pvc := func(ref, size string) string {
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-9",
 "kind":{"group":"","version":"v1","kind":"PersistentVolumeClaim"},
 "resource":{"group":"","version":"v1","resource":"persistentvolumeclaims"},
 "namespace":"default","name":"d","operation":"CREATE","userInfo":{"username":"bob"},
 "object":{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"d","namespace":"default",
  "annotations":{"harvesterhci.io/imageId":"` + ref + `"}},"spec":{"resources":{"requests":{"storage":"` + size + `"}}}}}}`
	}
	for _, tc := range []struct {
		name, review string
		code         int32
		retry        int32
	}{
		{"only the unanswered question", pvc("images/nfs-image-00", "1Gi"), http.StatusServiceUnavailable, 1},
		{"a same-namespace reference needs no answer", pvc("default/image-ubuntu", "1Gi"), http.StatusForbidden, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := post(t, h.Mux(), "/validate/persistentvolumeclaims", tc.review)
			var out admissionv1.AdmissionReview
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Response == nil {
				t.Fatalf("got HTTP %d %s, want 200 with a review", rec.Code, rec.Body)
			}
			r := out.Response
			if r.Allowed || r.Result == nil || r.Result.Code != tc.code {
				t.Fatalf("allowed %v, result %+v; want a denial with code %d", r.Allowed, r.Result, tc.code)
			}
			var retry int32
			if r.Result.Details != nil {
				retry = r.Result.Details.RetryAfterSeconds
			}
			if retry != tc.retry {
				t.Errorf("retryAfterSeconds = %d, want %d", retry, tc.retry)
			}
		})
	}
}

// TestHandlerCountsRolloutResults: each rule result is counted with its result and action
// (deny, warn, audit, skip, patch: once per rule and request), and a denial of a rule in
// Warn or Audit also as a request it would have denied, in its namespace.
func TestHandlerCountsRolloutResults(t *testing.T) {
	files, err := cluster.LoadFiles("../testdata/cluster")
	if err != nil {
		t.Fatal(err)
	}
	type count struct {
		rule, result, action string
		n                    float64
	}
	for _, tc := range []struct {
		fixture   string
		results   []count
		wouldDeny []count // rule, namespace (in result), action
	}{
		{"vm-v1-warn-allows-and-returns-the-denial-as-a-warning", []count{{"VM-V1", "warn", "Warn", 1}, {"VM-V1", "deny", "Enforce", 0}}, []count{{"VM-V1", "default", "Warn", 1}}},
		{"vm-v1-audit-allows-silently-and-records-the-denial", []count{{"VM-V1", "audit", "Audit", 1}, {"VM-V1", "deny", "Enforce", 0}}, []count{{"VM-V1", "default", "Audit", 1}}},
		{"vm-v1-own-enforce-entry-wins-over-default-audit", []count{{"VM-V1", "deny", "Enforce", 1}}, []count{{"VM-V1", "default", "Enforce", 0}}},
		{"vm-v1-exception-skips-the-named-vm", []count{{"VM-V1", "skip", "Enforce", 1}, {"VM-V1", "deny", "Enforce", 0}}, []count{{"VM-V1", "default", "Enforce", 0}}},
		{"vm-v1-off-leaves-no-trace", []count{{"VM-V1", "deny", "Enforce", 0}, {"VM-V1", "audit", "Off", 0}}, nil},
		{"img-m2-audit-patches-nothing-and-records-the-would-be-patch-and-its-warning", []count{{"IMG-M1", "patch", "Enforce", 1}, {"IMG-M2", "audit", "Audit", 2}, {"IMG-M2", "patch", "Enforce", 0}}, []count{{"IMG-M2", "default", "Audit", 0}}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			fx := readFixture(t, "../testdata/rollout/"+tc.fixture+".json")
			f, err := providers.Parse(fx.Providers, webhook.Catalogue())
			if err != nil {
				t.Fatal(err)
			}
			env := benchEnv(files)
			env.Providers = providers.NewStore(f)
			h := testHandler(t)
			h.Hooks, h.Metrics = webhook.Hooks(env), metrics.New()
			if rec := post(t, h.Mux(), fx.Webhook, string(fx.Review)); rec.Code != http.StatusOK {
				t.Fatalf("HTTP %d", rec.Code)
			}
			for _, c := range tc.results {
				if got := testutil.ToFloat64(h.Metrics.RuleResults.WithLabelValues(c.rule, c.result, c.action)); got != c.n {
					t.Errorf("rule_results_total{rule=%s,result=%s,action=%s} = %v, want %v", c.rule, c.result, c.action, got, c.n)
				}
			}
			for _, c := range tc.wouldDeny {
				if got := testutil.ToFloat64(h.Metrics.WouldDeny.WithLabelValues(c.rule, c.action, c.result)); got != c.n {
					t.Errorf("rule_would_deny_total{rule=%s,action=%s,namespace=%s} = %v, want %v", c.rule, c.action, c.result, got, c.n)
				}
			}
		})
	}
}
