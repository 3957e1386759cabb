//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestOverlaysServerSideDryRun renders both overlays with the pinned kubectl's kustomize
// and has the API server accept every object with a server-side dry run.
func TestOverlaysServerSideDryRun(t *testing.T) {
	dir := copyDeploy(t)
	for _, overlay := range []string{"cert-manager", "manual"} {
		t.Run(overlay, func(t *testing.T) {
			rendered := kustomizeOverlayWith(t, dir, overlay)
			checkRendered(t, overlay, rendered)
			objects := strings.Count(string(rendered), "\nkind: ") + boolInt(strings.HasPrefix(string(rendered), "kind: "))
			start := time.Now()
			out := serverSideDryRun(t, rendered, "storage-webhook-dryrun-"+overlay, objects)
			t.Logf("%s: %d objects accepted by server-side dry run in %v", overlay, strings.Count(out, "(server dry run)"), time.Since(start).Round(time.Millisecond))
		})
	}
}

// renameWebhookConfigurations gives the configurations a name of their own: the ones
// envtest installed for the other tests are named storage-webhook already, and an apply
// would merge with them instead of trying a fresh install.
func renameWebhookConfigurations(t *testing.T, rendered []byte, name string) []byte {
	t.Helper()
	docs := strings.Split(string(rendered), "\n---\n")
	for i, doc := range docs {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		if kind, _ := o["kind"].(string); !strings.HasSuffix(kind, "WebhookConfiguration") {
			continue
		}
		o["metadata"].(map[string]any)["name"] = name
		out, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		docs[i] = string(out)
	}
	return []byte(strings.Join(docs, "\n---\n"))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkRendered: each overlay wires the serving certificate into both configurations.
func checkRendered(t *testing.T, overlay string, rendered []byte) {
	t.Helper()
	for _, doc := range strings.Split(string(rendered), "\n---\n") {
		var o struct {
			Kind     string
			Metadata struct{ Annotations map[string]string }
			Webhooks []struct {
				ClientConfig struct{ CABundle []byte } `json:"clientConfig"`
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(o.Kind, "WebhookConfiguration") {
			continue
		}
		for i, w := range o.Webhooks {
			switch overlay {
			case "manual":
				if !strings.Contains(string(w.ClientConfig.CABundle), "BEGIN CERTIFICATE") {
					t.Errorf("%s webhook %d: caBundle is not the CA", o.Kind, i)
				}
			case "cert-manager":
				if o.Metadata.Annotations["cert-manager.io/inject-ca-from"] != "storage-webhook/storage-webhook-serving" {
					t.Errorf("%s: no CA injection annotation", o.Kind)
				}
			}
		}
	}
}
