//go:build !fuzzing

// The API server's dispatcher (k8s.io/apiserver) is a large dependency tree: hack/fuzz.sh
// builds with -tags fuzzing to leave this file out of the instrumented fuzzing build.

package webhook_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/admission"
	apiwebhook "k8s.io/apiserver/pkg/admission/plugin/webhook"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/generic"
	"k8s.io/apiserver/pkg/authentication/user"
	webhookutil "k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/hcistorage/storage-webhook/webhook"
)

// apiServerMatcher answers, with the API server's own code, whether it would call a webhook
// of deploy/base for a request: k8s.io/apiserver's generic webhook dispatcher decides from
// the webhook's rules, namespaceSelector, objectSelector and matchConditions (compiled and
// evaluated by the API server's CEL environment and cost budget).
type apiServerMatcher struct {
	dispatcher *generic.Webhook
	hooks      map[string]apiwebhook.WebhookAccessor // by path
	namespaces cache.Indexer
	oi         admission.ObjectInterfaces
}

// newAPIServerMatcher matches against deploy/base's configurations; without conditions, their
// matchConditions are left out (what the API server would call without the narrowing).
func newAPIServerMatcher(t *testing.T, conditions bool) *apiServerMatcher {
	t.Helper()
	handler := admission.NewHandler(admission.Create, admission.Update, admission.Delete, admission.Connect)
	// No configuration source and no dispatcher: only ShouldCallHook is used.
	d, err := generic.NewWebhook(handler, nil,
		func(informers.SharedInformerFactory, sets.Set[schema.GroupResource]) generic.Source { return nil },
		func(*webhookutil.ClientManager) generic.Dispatcher { return nil })
	if err != nil {
		t.Fatal(err)
	}
	// The namespace lister is filled by hand (the factory is never started).
	factory := informers.NewSharedInformerFactory(nil, 0)
	nsInformer := factory.Core().V1().Namespaces()
	d.SetExternalKubeInformerFactory(factory)
	m := &apiServerMatcher{
		dispatcher: d,
		hooks:      map[string]apiwebhook.WebhookAccessor{},
		namespaces: nsInformer.Informer().GetIndexer(),
		oi:         admission.NewObjectInterfacesFromScheme(runtime.NewScheme()),
	}
	mutating, validating := webhook.Configurations(webhook.DefaultRegistration)
	// A webhook as the API server stores it: an absent selector is defaulted to {}
	// (everything; the accessors read an absent one as nothing).
	asStored := func(ns, obj **metav1.LabelSelector, mc *[]admissionregistrationv1.MatchCondition) {
		for _, s := range []**metav1.LabelSelector{ns, obj} {
			if *s == nil {
				*s = &metav1.LabelSelector{}
			}
		}
		if !conditions {
			*mc = nil
		}
	}
	for i := range mutating.Webhooks {
		w := &mutating.Webhooks[i]
		asStored(&w.NamespaceSelector, &w.ObjectSelector, &w.MatchConditions)
		m.hooks[*w.ClientConfig.Service.Path] = apiwebhook.NewMutatingWebhookAccessor(w.Name, mutating.Name, w)
	}
	for i := range validating.Webhooks {
		w := &validating.Webhooks[i]
		asStored(&w.NamespaceSelector, &w.ObjectSelector, &w.MatchConditions)
		m.hooks[*w.ClientConfig.Service.Path] = apiwebhook.NewValidatingWebhookAccessor(w.Name, validating.Name, w)
	}
	return m
}

// calls reports whether the API server calls the webhook at path for the request. An error
// evaluating the webhook's conditions fails the test: under failurePolicy Fail the API
// server would refuse the request.
func (m *apiServerMatcher) calls(t *testing.T, path string, req *admissionv1.AdmissionRequest) bool {
	t.Helper()
	hook, ok := m.hooks[path]
	if !ok {
		t.Fatalf("no webhook serves %s", path)
	}
	attr := m.attributes(t, req)
	inv, err := m.dispatcher.ShouldCallHook(context.Background(), hook, attr, m.oi, versioned{attr})
	if err != nil {
		t.Fatalf("the API server cannot decide whether to call %s: %v", hook.GetName(), err)
	}
	return inv != nil
}

// callsAny is the webhooks of deploy/base the API server calls for the request.
func (m *apiServerMatcher) callsAny(t *testing.T, req *admissionv1.AdmissionRequest) []string {
	t.Helper()
	var called []string
	for path := range m.hooks {
		if m.calls(t, path, req) {
			called = append(called, path)
		}
	}
	sort.Strings(called)
	return called
}

func (m *apiServerMatcher) attributes(t *testing.T, req *admissionv1.AdmissionRequest) admission.Attributes {
	t.Helper()
	if req.Namespace != "" {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: req.Namespace, Labels: map[string]string{corev1.LabelMetadataName: req.Namespace}}}
		if err := m.namespaces.Add(ns); err != nil {
			t.Fatal(err)
		}
	}
	userInfo := &user.DefaultInfo{Name: req.UserInfo.Username, UID: req.UserInfo.UID, Groups: req.UserInfo.Groups}
	if len(req.UserInfo.Extra) > 0 {
		userInfo.Extra = map[string][]string{}
		for k, v := range req.UserInfo.Extra {
			userInfo.Extra[k] = v
		}
	}
	return admission.NewAttributesRecord(object(t, req.Object.Raw), object(t, req.OldObject.Raw),
		schema.GroupVersionKind(req.Kind), req.Namespace, req.Name, schema.GroupVersionResource(req.Resource),
		req.SubResource, admission.Operation(req.Operation), nil, req.DryRun != nil && *req.DryRun, userInfo)
}

// object is the request's JSON object as the API server hands it to CEL; nil when absent.
func object(t *testing.T, raw []byte) runtime.Object {
	t.Helper()
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(raw, &u.Object); err != nil {
		return nil // not an object: a DECODE case, which the API server's schema never lets through
	}
	return u
}

// versioned hands the request's own objects to the matchConditions (the request is already
// in the version the webhook registered).
type versioned struct{ attr admission.Attributes }

func (v versioned) VersionedAttribute(gvk schema.GroupVersionKind) (*admission.VersionedAttributes, error) {
	return &admission.VersionedAttributes{Attributes: v.attr, VersionedKind: gvk,
		VersionedObject: admission.NewLazyObject(v.attr.GetObject()), VersionedOldObject: admission.NewLazyObject(v.attr.GetOldObject())}, nil
}

// acted names the rules that denied, warned or patched in an answer: what a narrowing must
// never skip. Answers with DECODE (an object the API server's schema would not have let
// through) or ROUTE (a request the generated configuration never sends) are left out.
func acted(resp *admissionv1.AdmissionResponse) []string {
	var ids []string
	for _, key := range []string{"rules", "mutated-by"} {
		for _, id := range strings.Split(resp.AuditAnnotations[key], ",") {
			if id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// TestConditionsLetThroughEveryRequestARuleActsOn: for every fixture that a rule denies,
// warns about or mutates, the API server (its own dispatcher code, on deploy/base's
// configurations) calls the webhook, so narrowing can never skip a rule. Fixtures no rule
// acts on are counted: the narrowing keeps most of them away from the service.
func TestConditionsLetThroughEveryRequestARuleActsOn(t *testing.T) {
	m := newAPIServerMatcher(t, true)
	mux := testHandler(t).Mux()
	var actedOn, idle, idleSkipped int
	for _, fx := range loadDocFixtures(t) {
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(fx.Review, &review); err != nil || review.Request == nil {
			t.Fatalf("%s: %v", fx.name, err)
		}
		resp := docAnswer(t, mux, fx)
		if strings.Contains(resp.AuditAnnotations["rules"], "DECODE") || strings.Contains(resp.AuditAnnotations["rules"], webhook.RuleRoute) {
			continue // not a request an API server sends (see acted)
		}
		rules := acted(resp)
		called := m.calls(t, fx.Webhook, review.Request)
		switch {
		case len(rules) > 0:
			actedOn++
			if !called {
				t.Errorf("%s: %v acted on it, but the API server would not call %s", fx.name, rules, fx.Webhook)
			}
		case called:
			idle++
		default:
			idle++
			idleSkipped++
		}
	}
	if actedOn == 0 {
		t.Fatal("no fixture was acted on: the fixtures did not load")
	}
	t.Logf("%d fixtures acted on, all called; %d not acted on, of which the API server skips %d", actedOn, idle, idleSkipped)
}

// TestConditionsSkipOrdinaryTraffic: what KubeVirt, CDI, Harvester, Kubernetes' own
// controllers and users write all day (testdata/traffic, one AdmissionReview per file, in
// the shapes their source writes) never reaches any webhook of deploy/base. Without the
// matchConditions, most of it would.
func TestConditionsSkipOrdinaryTraffic(t *testing.T) {
	narrowed, unnarrowed := newAPIServerMatcher(t, true), newAPIServerMatcher(t, false)
	files, err := filepath.Glob("../testdata/traffic/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no traffic reviews: %v", err)
	}
	var avoided int
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(data, &review); err != nil || review.Request == nil {
				t.Fatalf("not an AdmissionReview: %v", err)
			}
			if called := narrowed.callsAny(t, review.Request); len(called) > 0 {
				t.Errorf("the API server would call %v", called)
			}
			if len(unnarrowed.callsAny(t, review.Request)) > 0 {
				avoided++
			}
		})
	}
	if avoided == 0 {
		t.Error("no traffic review matches a webhook's rules: the table proves nothing about the conditions")
	}
	t.Logf("%d ordinary requests: none reaches the service; without the matchConditions %d would", len(files), avoided)
}
