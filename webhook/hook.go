package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/slok/kubewebhook/v2/pkg/model"
	"github.com/slok/kubewebhook/v2/pkg/webhook"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/rollout"
	"github.com/hcistorage/storage-webhook/validators"
)

// Hook is the mutating or validating webhook of one route. It is a kubewebhook
// webhook.Webhook, so kubewebhook's own handler and wrappers can serve it; this service
// serves it through Handler, which adds the envelope checks kubewebhook v2.7.0 lacks.
type Hook struct {
	Route *Route
	kind  model.WebhookKind
	rules RuleFunc
	ops   []admit.Operation
	env   *admit.Env
	// asks: IMG-V6 is one of the hook's rules (it asks the API server; see Run).
	asks bool
}

var _ webhook.Webhook = (*Hook)(nil)

// Hooks makes every webhook of the route table over one environment.
func Hooks(env *admit.Env) []*Hook {
	var hooks []*Hook
	for _, r := range Routes() {
		if r.Mutate != nil {
			hooks = append(hooks, NewHook(&r, true, r.MutateOps, r.Mutate, env))
		}
		if r.Validate != nil {
			hooks = append(hooks, NewHook(&r, false, r.ValidateOps, r.Validate, env))
		}
	}
	return hooks
}

// NewHook makes one webhook of a route with rules of the caller's choosing, run for ops, as
// Hooks makes those of the route table. Benchmarks serve a hook whose rules return an empty
// result to measure the HTTP and admission path without the rules.
func NewHook(route *Route, mutating bool, ops []admit.Operation, rules RuleFunc, env *admit.Env) *Hook {
	var kind model.WebhookKind = model.WebhookKindValidating
	if mutating {
		kind = model.WebhookKindMutating
	}
	asks := !mutating && slices.ContainsFunc(route.Rules, func(r Rule) bool { return r.ID == validators.RuleImageAccess })
	return &Hook{Route: route, kind: kind, rules: rules, ops: ops, env: env, asks: asks}
}

// ID is the webhook's HTTP path.
func (h *Hook) ID() string {
	if h.kind == model.WebhookKindMutating {
		return h.Route.MutatePath()
	}
	return h.Route.ValidatePath()
}

// Kind is mutating or validating.
func (h *Hook) Kind() model.WebhookKind { return h.kind }

// Mutating reports whether the hook is a mutating webhook.
func (h *Hook) Mutating() bool { return h.kind == model.WebhookKindMutating }

// Run applies the hook's rules to one request, then the rollout in force (SPEC §8,
// admit.Result.Apply): the one place where a rule's result becomes an answer, for serve,
// check and review alike. A denied result carries no patch: the API server applies none,
// so none is reported, logged or counted. A panic in a rule is recovered and returned as an
// error for this request only.
func (h *Hook) Run(req *admit.Request) (res admit.Result, err error) {
	if !slices.Contains(h.ops, req.Operation) {
		return res, nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	env, policy := h.env, h.env.Policy()
	var subject rollout.Subject
	if !policy.Trivial() {
		subject = rollout.Subject{Kind: h.Route.Kind, Namespace: req.Namespace, Name: req.Name,
			User: req.User.Username, Groups: req.User.Groups, Namespaces: env.View}
		// IMG-V6 Off or excepted is not evaluated at all: no SubjectAccessReview is sent, and
		// what it guards is read as for a user who may get it.
		if h.asks && policy.Decide(validators.RuleImageAccess, &subject).Skipped() {
			unasked := *env
			unasked.Access = admit.Granted{}
			env = &unasked
		}
	}
	res = h.rules(env, req)
	res.Apply(policy, &subject)
	if !res.Allowed() {
		res.Patch, res.Withheld = nil, nil
	}
	return res, nil
}

// PanicError is a recovered panic of a rule.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("internal error: rule panicked: %v", e.Value) }

// Admit checks that the request is for this hook's resource and runs the rules. A request
// for another resource is denied: the webhook configuration is wrong, and silently
// allowing would hide that.
func (h *Hook) Admit(ctx context.Context, ar *admissionv1.AdmissionRequest) (admit.Result, error) {
	r := h.Route
	if ar.Resource.Group != r.Group || ar.Resource.Resource != r.Resource || !slices.Contains(r.SubResources, ar.SubResource) {
		var res admit.Result
		res.Deny(RuleRoute, "webhook %s serves %s, not %s (subresource %q): fix the rules of the webhook configuration",
			h.ID(), r.GroupResource(), groupResource(ar.Resource.Group, ar.Resource.Resource), ar.SubResource)
		return res, nil
	}
	req := &admit.Request{
		Operation: admit.Operation(ar.Operation), Namespace: ar.Namespace, Name: ar.Name,
		SubResource: ar.SubResource, User: ar.UserInfo, DryRun: ar.DryRun != nil && *ar.DryRun,
		Object: ar.Object.Raw, OldObject: ar.OldObject.Raw, Ctx: ctx,
	}
	return h.Run(req)
}

// RuleRoute is the rule ID of a denial for a request sent to the wrong webhook.
const RuleRoute = "ROUTE"

func groupResource(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
}

// Review implements kubewebhook's webhook.Webhook for admission.k8s.io/v1 reviews.
func (h *Hook) Review(ctx context.Context, ar model.AdmissionReview) (model.AdmissionResponse, error) {
	v1, ok := ar.OriginalAdmissionReview.(*admissionv1.AdmissionReview)
	if !ok || v1.Request == nil {
		return nil, fmt.Errorf("only admission.k8s.io/v1 AdmissionReviews with a request are served")
	}
	res, err := h.Admit(ctx, v1.Request)
	if err != nil {
		return nil, err
	}
	if !h.Mutating() || !res.Allowed() {
		return &model.ValidatingAdmissionResponse{ID: ar.ID, Allowed: res.Allowed(), Message: res.Message(), Warnings: res.WarningTexts()}, nil
	}
	var patch []byte
	if len(res.Patch) > 0 {
		if patch, err = json.Marshal(res.Patch); err != nil {
			return nil, err
		}
	}
	return &model.MutatingAdmissionResponse{ID: ar.ID, JSONPatchPatch: patch, Warnings: res.WarningTexts()}, nil
}
