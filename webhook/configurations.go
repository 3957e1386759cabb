package webhook

import (
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hcistorage/storage-webhook/admit"
)

// Registration names the objects the webhook configurations point at.
type Registration struct {
	Name      string // of the configurations and the Service
	Namespace string // of the Service, also left out of the namespaceSelector
}

// DefaultRegistration is what deploy/base uses.
var DefaultRegistration = Registration{Name: "storage-webhook", Namespace: "storage-webhook"}

// TimeoutSeconds bounds each call by the webhook's failurePolicy; when it passes, the API
// server applies that policy. Measured through a real API server (make e2e, TestClusterLife),
// 98.7-100 % of calls take under 5 ms (89-93 % on a busy machine) and all under 25 ms, so
// both leave two orders of magnitude for a slow node, and only a hung service ever reaches
// them (deploy/README.md): then a Fail webhook's caller is refused after 3 s instead of the
// API server's default 10 s, and an Ignore webhook's caller (CDI creating a PVC, CDI or
// Harvester writing a StorageProfile) goes on unmutated after 1 s.
var TimeoutSeconds = map[admissionregistrationv1.FailurePolicyType]int32{
	admissionregistrationv1.Fail:   3,
	admissionregistrationv1.Ignore: 1,
}

// Configurations renders the Mutating- and ValidatingWebhookConfiguration of the route
// table: one webhook per route and kind, with the route's operations, subresources and
// failurePolicy. deploy/base/webhooks.yaml is this output (a test keeps them equal).
func Configurations(reg Registration) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: reg.Name},
	}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: reg.Name},
	}
	for _, r := range Routes() {
		if r.Mutate != nil {
			w := common(reg, &r, "mutate", r.MutatePath(), r.MutateOps, r.MutateFailure)
			mutating.Webhooks = append(mutating.Webhooks, admissionregistrationv1.MutatingWebhook{
				Name: w.name, ClientConfig: w.client, Rules: w.rules, FailurePolicy: w.failure,
				MatchPolicy: w.match, NamespaceSelector: w.namespaces, SideEffects: w.sideEffects,
				TimeoutSeconds: w.timeout, AdmissionReviewVersions: w.versions,
				// Our patches never depend on another webhook's, and one pass is cheaper.
				ReinvocationPolicy: ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
				MatchConditions:    matchConditions(r.Condition(true)),
			})
		}
		if r.Validate != nil {
			w := common(reg, &r, "validate", r.ValidatePath(), r.ValidateOps, r.ValidateFailure)
			vw := admissionregistrationv1.ValidatingWebhook{
				Name: w.name, ClientConfig: w.client, Rules: w.rules, FailurePolicy: w.failure,
				MatchPolicy: w.match, NamespaceSelector: w.namespaces, SideEffects: w.sideEffects,
				TimeoutSeconds: w.timeout, AdmissionReviewVersions: w.versions,
			}
			vw.MatchConditions = matchConditions(r.Condition(false))
			validating.Webhooks = append(validating.Webhooks, vw)
		}
	}
	return mutating, validating
}

// matchConditions is the webhook's one matchCondition, none when it is called for every
// request its rules match.
func matchConditions(expr string) []admissionregistrationv1.MatchCondition {
	if expr == "" {
		return nil
	}
	return []admissionregistrationv1.MatchCondition{{Name: "storage-rules-apply", Expression: expr}}
}

type webhookFields struct {
	name        string
	client      admissionregistrationv1.WebhookClientConfig
	rules       []admissionregistrationv1.RuleWithOperations
	failure     *admissionregistrationv1.FailurePolicyType
	match       *admissionregistrationv1.MatchPolicyType
	namespaces  *metav1.LabelSelector
	sideEffects *admissionregistrationv1.SideEffectClass
	timeout     *int32
	versions    []string
}

func common(reg Registration, r *Route, verb, path string, ops []admit.Operation, failure admissionregistrationv1.FailurePolicyType) webhookFields {
	resources := make([]string, 0, len(r.SubResources))
	for _, sub := range r.SubResources {
		if sub == "" {
			resources = append(resources, r.Resource)
		} else {
			resources = append(resources, r.Resource+"/"+sub)
		}
	}
	operations := make([]admissionregistrationv1.OperationType, len(ops))
	for i, op := range ops {
		operations[i] = admissionregistrationv1.OperationType(op)
	}
	scope := admissionregistrationv1.ClusterScope
	if r.Namespaced {
		scope = admissionregistrationv1.NamespacedScope
	}
	return webhookFields{
		name: r.Resource + "." + verb + ".storage-webhook.hcistorage.io",
		client: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
			Namespace: reg.Namespace, Name: reg.Name, Path: ptr.To(path), Port: ptr.To[int32](443),
		}},
		rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: operations,
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{r.Group}, APIVersions: []string{r.Version}, Resources: resources, Scope: &scope,
			},
		}},
		failure: ptr.To(failure),
		// Equivalent: a request through another version of the resource is converted to
		// ours, so the rules see the shape they decode.
		match: ptr.To(admissionregistrationv1.Equivalent),
		// The control plane's own namespace and ours are left out, so the cluster (and this
		// service) can always recover.
		namespaces: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
			Values: slices.Sorted(slices.Values([]string{"kube-system", reg.Namespace})),
		}}},
		sideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone),
		timeout:     ptr.To(TimeoutSeconds[failure]),
		versions:    []string{"v1"},
	}
}
