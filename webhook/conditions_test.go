//go:build integration

// Run by `make integration` (.ci/run runs it): the API server's dispatcher and CEL
// (k8s.io/apiserver) are a large dependency tree, which `make test` and the instrumented
// fuzzing build (hack/fuzz.sh) leave out.

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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	celplugin "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/predicates/rules"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/hcistorage/storage-webhook/webhook"
)

// apiServerMatcher answers, with the API server's own code, whether it would call a webhook
// of deploy/base for a request. The webhook's rules go through k8s.io/apiserver's rules
// matcher and its matchConditions through the API server's CEL compiler, environment and
// cost budget (the matchconditions package its dispatcher uses); the selectors are the
// label selectors they are (the dispatcher's own namespace and object matchers need an
// informer factory and a client, which is most of this test's compile time for nothing).
type apiServerMatcher struct {
	hooks map[string]*hookMatcher // by path
}

// hookMatcher is one webhook as the API server's dispatcher sees it.
type hookMatcher struct {
	name       string
	rules      []admissionregistrationv1.RuleWithOperations
	namespaces labels.Selector
	objects    labels.Selector
	conditions matchconditions.Matcher // nil without matchConditions
}

// newAPIServerMatcher matches against deploy/base's configurations; without conditions, their
// matchConditions are left out (what the API server would call without the narrowing).
func newAPIServerMatcher(t *testing.T, conditions bool) *apiServerMatcher {
	t.Helper()
	compiler := celplugin.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	m := &apiServerMatcher{hooks: map[string]*hookMatcher{}}
	add := func(name, kind, path string, rules []admissionregistrationv1.RuleWithOperations, ns, obj *metav1.LabelSelector,
		mcs []admissionregistrationv1.MatchCondition, failure *admissionregistrationv1.FailurePolicyType) {
		h := &hookMatcher{name: name, rules: rules, namespaces: selector(t, ns), objects: selector(t, obj)}
		if conditions && len(mcs) > 0 {
			exprs := make([]celplugin.ExpressionAccessor, len(mcs))
			for i, mc := range mcs {
				exprs[i] = &matchconditions.MatchCondition{Name: mc.Name, Expression: mc.Expression}
			}
			// As the API server's webhook accessors compile them.
			h.conditions = matchconditions.NewMatcher(compiler.CompileCondition(exprs,
				celplugin.OptionalVariableDeclarations{HasAuthorizer: true}, environment.StoredExpressions), failure, "webhook", kind, name)
		}
		m.hooks[path] = h
	}
	mutating, validating := webhook.Configurations(webhook.DefaultRegistration)
	for _, w := range mutating.Webhooks {
		add(w.Name, "admit", *w.ClientConfig.Service.Path, w.Rules, w.NamespaceSelector, w.ObjectSelector, w.MatchConditions, w.FailurePolicy)
	}
	for _, w := range validating.Webhooks {
		add(w.Name, "validating", *w.ClientConfig.Service.Path, w.Rules, w.NamespaceSelector, w.ObjectSelector, w.MatchConditions, w.FailurePolicy)
	}
	return m
}

// selector is a webhook's label selector as the API server stores it: absent is {}, which
// selects everything.
func selector(t *testing.T, s *metav1.LabelSelector) labels.Selector {
	t.Helper()
	if s == nil {
		s = &metav1.LabelSelector{}
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// calls reports whether the API server calls the webhook at path for the request. An error
// evaluating the webhook's conditions fails the test: under failurePolicy Fail the API
// server would refuse the request.
func (m *apiServerMatcher) calls(t *testing.T, path string, req *admissionv1.AdmissionRequest) bool {
	t.Helper()
	h, ok := m.hooks[path]
	if !ok {
		t.Fatalf("no webhook serves %s", path)
	}
	attr := attributes(t, req)
	// namespaceSelector: only namespaced requests; every namespace carries its name as a label.
	if req.Namespace != "" && !h.namespaces.Matches(labels.Set{corev1.LabelMetadataName: req.Namespace}) {
		return false
	}
	// objectSelector: the object's or the old object's labels.
	if !h.objects.Empty() && !matchesLabels(h.objects, attr.GetObject()) && !matchesLabels(h.objects, attr.GetOldObject()) {
		return false
	}
	if !slices.ContainsFunc(h.rules, func(r admissionregistrationv1.RuleWithOperations) bool {
		return (&rules.Matcher{Rule: r, Attr: attr}).Matches()
	}) {
		return false
	}
	if h.conditions == nil {
		return true
	}
	versioned := &admission.VersionedAttributes{Attributes: attr, VersionedKind: attr.GetKind(),
		VersionedObject: admission.NewLazyObject(attr.GetObject()), VersionedOldObject: admission.NewLazyObject(attr.GetOldObject())}
	result := h.conditions.Match(context.Background(), versioned, nil, nil)
	if result.Error != nil {
		t.Fatalf("the API server cannot decide whether to call %s: %v", h.name, result.Error)
	}
	return result.Matches
}

func matchesLabels(sel labels.Selector, obj runtime.Object) bool {
	u, ok := obj.(*unstructured.Unstructured)
	return ok && sel.Matches(labels.Set(u.GetLabels()))
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

// attributes is the request as the API server's admission chain sees it.
func attributes(t *testing.T, req *admissionv1.AdmissionRequest) admission.Attributes {
	t.Helper()
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
	mux := newFixtureMuxes(t)
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
