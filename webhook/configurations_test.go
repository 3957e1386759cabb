package webhook

import (
	"github.com/hcistorage/storage-webhook/internal/golden"
	"testing"

	"sigs.k8s.io/yaml"
)

// renderConfigurations is deploy/base/webhooks.yaml: the route table as webhook
// configurations.
func renderConfigurations(t *testing.T) []byte {
	t.Helper()
	m, v := Configurations(DefaultRegistration)
	my, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	vy, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := "# Generated from webhook/routes.go by `make generate`: edit the route table, not this file.\n"
	return []byte(out + string(my) + "---\n" + string(vy))
}

// TestDeployWebhooksMatchRouteTable: the webhook configurations shipped in deploy/base are
// exactly what the route table says (UPDATE_GOLDEN=1 rewrites them).
func TestDeployWebhooksMatchRouteTable(t *testing.T) {
	golden.Check(t, "../deploy/base/webhooks.yaml", renderConfigurations(t), "it is out of date with the route table: run `make generate`")
}

// TestConfigurationsCoverEveryHook: one webhook per hook, each pointing at its path, with
// the settings every webhook needs.
func TestConfigurationsCoverEveryHook(t *testing.T) {
	m, v := Configurations(DefaultRegistration)
	paths := map[string]bool{}
	for _, w := range m.Webhooks {
		paths[*w.ClientConfig.Service.Path] = true
		if w.FailurePolicy == nil || *w.SideEffects != "None" || *w.TimeoutSeconds != TimeoutSeconds[*w.FailurePolicy] || w.AdmissionReviewVersions[0] != "v1" || *w.MatchPolicy != "Equivalent" {
			t.Errorf("%s: %+v", w.Name, w)
		}
	}
	for _, w := range v.Webhooks {
		paths[*w.ClientConfig.Service.Path] = true
		if w.FailurePolicy == nil || *w.SideEffects != "None" || *w.TimeoutSeconds != TimeoutSeconds[*w.FailurePolicy] || w.AdmissionReviewVersions[0] != "v1" || *w.MatchPolicy != "Equivalent" {
			t.Errorf("%s: %+v", w.Name, w)
		}
	}
	for _, h := range Hooks(nil) {
		if !paths[h.ID()] {
			t.Errorf("no webhook configuration for %s", h.ID())
		}
	}
	if len(paths) != len(Hooks(nil)) {
		t.Errorf("%d configured paths, %d hooks", len(paths), len(Hooks(nil)))
	}
}
