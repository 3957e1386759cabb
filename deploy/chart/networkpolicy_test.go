//go:build integration

// Run by `make integration` (.ci/run runs it): it needs the pinned helm (HELM, built by
// hack/helmbin).

package chart

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/internal/jsonpatchfile"
)

// TestNetworkPolicyValues: networkPolicy.enabled=false renders no NetworkPolicy, and
// networkPolicy.webhookFrom set to the peers of components/webhook-from-apiservers renders
// the base's policy with that component applied: the chart value and the kustomize
// component narrow the webhook port the same way. (The default render equals the base's
// policy: TestDefaultRenderMatchesKustomizeBase.)
func TestNetworkPolicyValues(t *testing.T) {
	if np := find(render(t, "networkPolicy.enabled=false"), "NetworkPolicy", "storage-webhook"); np != nil {
		t.Errorf("networkPolicy.enabled=false rendered a NetworkPolicy: %v", np.Object)
	}
	// An empty peer list would allow every source: the schema refuses it.
	for _, v := range []string{"webhookFrom", "metricsFrom"} {
		out, err := helm(t, "template", "storage-webhook", chartDir, "--set-json", "networkPolicy."+v+"=[]")
		if want := "at '/networkPolicy/" + v + "': minItems"; err == nil || !strings.Contains(out, want) {
			t.Errorf("networkPolicy.%s=[]: err %v, output %q; want an error naming %q", v, err, out, want)
		}
	}

	// The base's policy with the component's JSON patch applied (as kustomize applies it).
	patched, err := jsonpatchfile.Apply("../base/networkpolicy.yaml", "../components/webhook-from-apiservers/apiservers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	patchYAML, err := os.ReadFile("../components/webhook-from-apiservers/apiservers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	patchJSON, err := yaml.YAMLToJSON(patchYAML)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(patched, &want); err != nil {
		t.Fatal(err)
	}
	var ops []struct {
		Op    string
		Path  string
		Value json.RawMessage
	}
	if err := json.Unmarshal(patchJSON, &ops); err != nil {
		t.Fatal(err)
	}
	var peers json.RawMessage
	for _, op := range ops {
		if op.Op == "replace" && op.Path == "/spec/ingress/0/from" {
			peers = op.Value
		}
	}
	if peers == nil {
		t.Fatal("components/webhook-from-apiservers replaces no /spec/ingress/0/from")
	}

	np := find(renderArgs(t, "--set-json", "networkPolicy.webhookFrom="+string(peers)), "NetworkPolicy", "storage-webhook")
	if np == nil {
		t.Fatal("no NetworkPolicy with a custom networkPolicy.webhookFrom")
	}
	if got := normalized(np); !reflect.DeepEqual(got, want) {
		t.Errorf("chart with webhookFrom %s:\n%v\nbase with components/webhook-from-apiservers:\n%v", peers, got, want)
	}
}
