//go:build integration

// Run by `make integration` (.ci/run runs it): it compiles cyclonus's NetworkPolicy
// matcher, a heavy test-only dependency.

// Package deploy tests the manifests in this folder that no other package reads.
package deploy

import (
	"maps"
	"os"
	"testing"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/internal/jsonpatchfile"
)

// basePolicy reads deploy/base/networkpolicy.yaml, with the JSON patch of
// components/webhook-from-apiservers applied when restricted (kustomize applies the same
// RFC 6902 patch; `make e2e` renders the component with kustomize itself).
func basePolicy(t *testing.T, restricted bool) *networkingv1.NetworkPolicy {
	t.Helper()
	doc, err := os.ReadFile("base/networkpolicy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if restricted {
		if doc, err = jsonpatchfile.Apply("base/networkpolicy.yaml", "components/webhook-from-apiservers/apiservers.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict(doc, &np); err != nil {
		t.Fatal(err)
	}
	return &np
}

// The webhook pod, as the base's Deployment labels it, with its named ports.
var webhookPod = &matcher.TrafficPeer{
	Internal: &matcher.InternalPeer{
		Namespace:       "storage-webhook",
		NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "storage-webhook"},
		PodLabels:       map[string]string{"app.kubernetes.io/name": "storage-webhook", "app.kubernetes.io/part-of": "storage-webhook"},
	},
	IP: "10.52.1.7",
}

func pod(namespace, ip string) *matcher.TrafficPeer {
	return &matcher.TrafficPeer{
		Internal: &matcher.InternalPeer{
			Namespace:       namespace,
			NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": namespace},
			PodLabels:       map[string]string{"app": "curl"},
		},
		IP: ip,
	}
}

// host is a host-network sender seen by its address only: a node's InternalIP or a node's
// tunnel address (flannel.1, tunl0), as a host-network API server's packets arrive.
func host(ip string) *matcher.TrafficPeer { return &matcher.TrafficPeer{IP: ip} }

// TestNetworkPolicy evaluates the base's NetworkPolicy, and the base with
// components/webhook-from-apiservers, with cyclonus's NetworkPolicy matcher (the engine
// behind sig-network's policy-assistant): who reaches the webhook port, the metrics port
// and any other port of the webhook pods.
func TestNetworkPolicy(t *testing.T) {
	const (
		webhook = 8443
		metrics = 8080
	)
	portNames := map[int]string{webhook: "webhook", metrics: "metrics"}
	for _, c := range []struct {
		name       string
		restricted bool // with components/webhook-from-apiservers
		from       *matcher.TrafficPeer
		port       int
		protocol   corev1.Protocol
		allowed    bool
	}{
		// The default: the webhook port is open to every address (IPv4 and IPv6).
		{"default: pod in another namespace -> webhook", false, pod("tenant-a", "10.52.2.9"), webhook, corev1.ProtocolTCP, true},
		{"default: node address -> webhook", false, host("192.0.2.10"), webhook, corev1.ProtocolTCP, true},
		{"default: tunnel address -> webhook", false, host("10.52.3.0"), webhook, corev1.ProtocolTCP, true},
		{"default: IPv6 node address -> webhook", false, host("2001:db8::10"), webhook, corev1.ProtocolTCP, true},
		{"default: node address -> webhook over UDP", false, host("192.0.2.10"), webhook, corev1.ProtocolUDP, false},
		// Narrowed to the API servers' addresses.
		{"restricted: pod in another namespace -> webhook", true, pod("tenant-a", "10.52.2.9"), webhook, corev1.ProtocolTCP, false},
		{"restricted: pod in the monitoring namespace -> webhook", true, pod("cattle-monitoring-system", "10.52.2.10"), webhook, corev1.ProtocolTCP, false},
		{"restricted: pod in the webhook's own namespace -> webhook", true, pod("storage-webhook", "10.52.2.11"), webhook, corev1.ProtocolTCP, false},
		{"restricted: control-plane node address -> webhook", true, host("192.0.2.11"), webhook, corev1.ProtocolTCP, true},
		{"restricted: control-plane tunnel address -> webhook", true, host("198.51.100.12"), webhook, corev1.ProtocolTCP, true},
		{"restricted: worker node address -> webhook", true, host("192.0.2.50"), webhook, corev1.ProtocolTCP, false},
		{"restricted: worker tunnel address -> webhook", true, host("198.51.100.50"), webhook, corev1.ProtocolTCP, false},
		{"restricted: IPv6 address -> webhook", true, host("2001:db8::10"), webhook, corev1.ProtocolTCP, false},
		// The metrics port: the monitoring namespaces only, either way.
		{"default: pod in cattle-monitoring-system -> metrics", false, pod("cattle-monitoring-system", "10.52.2.10"), metrics, corev1.ProtocolTCP, true},
		{"default: pod in monitoring -> metrics", false, pod("monitoring", "10.52.2.12"), metrics, corev1.ProtocolTCP, true},
		{"restricted: pod in cattle-monitoring-system -> metrics", true, pod("cattle-monitoring-system", "10.52.2.10"), metrics, corev1.ProtocolTCP, true},
		{"default: pod in default -> metrics", false, pod("default", "10.52.2.13"), metrics, corev1.ProtocolTCP, false},
		{"default: pod in the webhook's own namespace -> metrics", false, pod("storage-webhook", "10.52.2.11"), metrics, corev1.ProtocolTCP, false},
		{"default: remote node address -> metrics", false, host("192.0.2.10"), metrics, corev1.ProtocolTCP, false},
		// Any other port: nobody.
		{"default: pod in cattle-monitoring-system -> 9090", false, pod("cattle-monitoring-system", "10.52.2.10"), 9090, corev1.ProtocolTCP, false},
		{"default: node address -> 9090", false, host("192.0.2.10"), 9090, corev1.ProtocolTCP, false},
		{"default: node address -> 443", false, host("192.0.2.10"), 443, corev1.ProtocolTCP, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			policy := matcher.BuildNetworkPolicies(true, []*networkingv1.NetworkPolicy{basePolicy(t, c.restricted)})
			result := policy.IsTrafficAllowed(&matcher.Traffic{
				Source:           c.from,
				Destination:      webhookPod,
				ResolvedPort:     c.port,
				ResolvedPortName: portNames[c.port],
				Protocol:         c.protocol,
			})
			if got := result.Ingress.IsAllowed(); got != c.allowed {
				t.Errorf("ingress allowed %v, want %v\n%s", got, c.allowed, policy.ExplainTable())
			}
			if !result.Egress.IsAllowed() {
				t.Errorf("egress is restricted; the policy must be ingress only\n%s", policy.ExplainTable())
			}
		})
	}
}

// TestNetworkPolicySelectsTheDeployment: the policy selects the pods of the base's
// Deployment, in its namespace, and restricts ingress only.
func TestNetworkPolicySelectsTheDeployment(t *testing.T) {
	np := basePolicy(t, false)
	doc, err := os.ReadFile("base/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Metadata struct{ Namespace string }
		Spec     struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			}
			Template struct {
				Metadata struct{ Labels map[string]string }
				Spec     corev1.PodSpec
			}
		}
	}
	if err := yaml.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if np.Namespace != d.Metadata.Namespace {
		t.Errorf("policy in namespace %q, Deployment in %q", np.Namespace, d.Metadata.Namespace)
	}
	if got, want := np.Spec.PodSelector.MatchLabels, d.Spec.Selector.MatchLabels; len(np.Spec.PodSelector.MatchExpressions) > 0 || !maps.Equal(got, want) {
		t.Errorf("policy selects %v, the Deployment's selector is %v", np.Spec.PodSelector, want)
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("policyTypes %v, want [Ingress]", np.Spec.PolicyTypes)
	}
	// The named ports the policy allows are the container's ports 8443 and 8080.
	ports := map[string]int32{}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if _, ok := ports[p.Port.String()]; !ok {
				t.Errorf("the policy allows port %s, which the container does not name (it has %v)", p.Port.String(), ports)
			}
		}
	}
	if ports["webhook"] != 8443 || ports["metrics"] != 8080 {
		t.Errorf("container ports %v, want webhook 8443 and metrics 8080", ports)
	}
}
