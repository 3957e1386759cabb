//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// TestNetworkPolicyServerSideDryRun renders the base with
// components/webhook-from-apiservers with the pinned kubectl's kustomize, checks that the
// NetworkPolicy's webhook rule holds exactly the component's peers (what the unit test
// deploy.TestNetworkPolicy evaluates, applying the same patch itself), and has the API
// server, which validates NetworkPolicies (CIDRs, named ports, selectors), accept every
// object with a server-side dry run. It also shows that a peer the API server would refuse
// (a CIDR without its mask, through the chart) fails the install instead of installing
// something else.
func TestNetworkPolicyServerSideDryRun(t *testing.T) {
	rendered := kustomizeComponents(t, copyDeploy(t), "netpol-e2e", "webhook-from-apiservers")

	// The component's peers, from its patch file.
	patchYAML, err := os.ReadFile("../deploy/components/webhook-from-apiservers/apiservers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := yaml.Unmarshal(patchYAML, &ops); err != nil {
		t.Fatal(err)
	}
	var want []networkingv1.NetworkPolicyPeer
	for _, op := range ops {
		if op.Op == "replace" && op.Path == "/spec/ingress/0/from" {
			if err := json.Unmarshal(op.Value, &want); err != nil {
				t.Fatal(err)
			}
		}
	}
	var np *networkingv1.NetworkPolicy
	objects := 0
	for _, doc := range strings.Split(string(rendered), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		objects++
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == "NetworkPolicy" {
			np = &networkingv1.NetworkPolicy{}
			if err := yaml.UnmarshalStrict([]byte(doc), np); err != nil {
				t.Fatal(err)
			}
		}
	}
	if np == nil {
		t.Fatal("the base with the component renders no NetworkPolicy")
	}
	if len(np.Spec.Ingress) != 2 || np.Spec.Ingress[0].Ports[0].Port.String() != "webhook" || len(want) == 0 || !reflect.DeepEqual(np.Spec.Ingress[0].From, want) {
		got, _ := json.Marshal(np.Spec.Ingress)
		t.Errorf("rendered ingress %s, want the webhook rule's peers to be the component's %v", got, want)
	}

	out := serverSideDryRun(t, rendered, "storage-webhook-dryrun-netpol", objects)
	if !strings.Contains(out, "networkpolicy.networking.k8s.io/storage-webhook ") {
		t.Errorf("the dry run does not mention the NetworkPolicy:\n%s", out)
	}

	// The chart, narrowed the same way, is accepted; a CIDR without its mask is refused by
	// the API server (the chart's schema only checks the shape of a peer).
	helm := helmBin(t)
	for _, c := range []struct {
		name, peers, refusal string
	}{
		{"chart narrowed to control-plane addresses", `[{"ipBlock":{"cidr":"192.0.2.10/32"}},{"ipBlock":{"cidr":"10.52.0.0/32"}}]`, ""},
		{"chart with a CIDR without its mask", `[{"ipBlock":{"cidr":"192.0.2.10"}}]`, "spec.ingress[0].from[0].ipBlock.cidr"},
	} {
		t.Run(c.name, func(t *testing.T) {
			chart, err := exec.Command(helm, "template", "storage-webhook", "../deploy/chart/storage-webhook", "--namespace", "storage-webhook",
				"--show-only", "templates/networkpolicy.yaml", "--set-json", "networkPolicy.webhookFrom="+c.peers).CombinedOutput()
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, chart)
			}
			f := filepath.Join(t.TempDir(), "np.yaml")
			if err := os.WriteFile(f, chart, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := kubectl("apply", "--server-side", "--field-manager", "e2e", "--dry-run=server", "-f", f)
			switch {
			case c.refusal == "" && err != nil:
				t.Fatalf("server-side dry run: %v\n%s", err, out)
			case c.refusal != "" && (err == nil || !strings.Contains(out, c.refusal)):
				t.Fatalf("server-side dry run: err %v, output %q; want a refusal naming %s", err, out, c.refusal)
			}
		})
	}
}
