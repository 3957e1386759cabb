// Package chart tests the Helm chart in deploy/chart/storage-webhook: the files generated
// from the kustomize base and the route table (one source of truth, two packagings), and,
// with a real helm binary ($HELM, `make integration` builds it), lint and renders.
package chart

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	goldenfile "github.com/hcistorage/storage-webhook/internal/golden"
	"github.com/hcistorage/storage-webhook/webhook"
)

const chartDir = "storage-webhook"

// golden compares a generated chart file with its stored copy; UPDATE_GOLDEN=1 rewrites it.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	goldenfile.Check(t, path, got, "run `make generate`")
}

// releaseNamespace stands for {{ .Release.Namespace }} in the generated webhooks template;
// it sorts after kube-system, as storage-webhook does in deploy/base.
const releaseNamespace = "release-namespace-placeholder"

// TestChartWebhooksFromRouteTable: templates/webhooks.yaml is the route table's
// configurations (as deploy/base/webhooks.yaml is), with the release's namespace, the extra
// excluded namespaces, the caBundle or cert-manager's CA injection, and the chart's labels.
func TestChartWebhooksFromRouteTable(t *testing.T) {
	m, v := webhook.Configurations(webhook.Registration{Name: "storage-webhook", Namespace: releaseNamespace})
	var docs []string
	for _, obj := range []any{m, v} {
		out, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		s := string(out)
		s = strings.Replace(s, "metadata:\n  name: storage-webhook\n", "metadata:\n  name: storage-webhook\n"+
			"  labels: {{- include \"storage-webhook.labels\" . | nindent 4 }}\n"+
			"  {{- if eq .Values.certificate.source \"cert-manager\" }}\n"+
			"  annotations:\n    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/storage-webhook-serving\n  {{- end }}\n", 1)
		s = strings.ReplaceAll(s, "\n  clientConfig:\n", "\n  clientConfig:\n    {{- with $caBundle }}\n    caBundle: {{ . }}\n    {{- end }}\n")
		s = regexp.MustCompile(`(?m)^(\s*)- `+releaseNamespace+`$`).ReplaceAllString(s,
			"$1- {{ .Release.Namespace }}\n$1{{- range .Values.excludedNamespaces }}\n$1- {{ . | quote }}\n$1{{- end }}")
		s = strings.ReplaceAll(s, "namespace: "+releaseNamespace, "namespace: {{ .Release.Namespace }}")
		if strings.Contains(s, releaseNamespace) {
			t.Fatalf("a namespace placeholder is left in:\n%s", s)
		}
		docs = append(docs, s)
	}
	header := `# Generated from webhook/routes.go by ` + "`make generate`" + `: edit the route table, not this file.
# The serving certificate's CA goes into every webhook's caBundle: the generated one (made
# here, in the same file, so the Secret and the caBundle are one certificate), the one given
# with an existing Secret, or none when cert-manager's cainjector fills it.
{{- $caBundle := "" }}
{{- if eq .Values.certificate.source "generate" }}
{{- $tls := include "storage-webhook.generatedTLS" . | fromYaml }}
{{- $caBundle = $tls.caBundle }}
apiVersion: v1
kind: Secret
metadata:
  name: storage-webhook-tls
  namespace: {{ .Release.Namespace }}
  labels: {{- include "storage-webhook.labels" . | nindent 4 }}
type: kubernetes.io/tls
data:
  tls.crt: {{ $tls.cert }}
  tls.key: {{ $tls.key }}
  ca.crt: {{ $tls.caBundle }}
---
{{- else if eq .Values.certificate.source "secret" }}
{{- $caBundle = required "certificate.secret.caBundle is required when certificate.source is secret: the base64 PEM of the CA that signed the Secret's certificate" .Values.certificate.secret.caBundle }}
{{- end }}
`
	golden(t, chartDir+"/templates/webhooks.yaml", []byte(header+docs[0]+"---\n"+docs[1]))
}

// TestChartFilesFromKustomizeBase: the ClusterRole rules, the alerts and the Grafana
// dashboard the chart installs are the kustomize base's and the monitoring component's,
// copied by `make generate`.
func TestChartFilesFromKustomizeBase(t *testing.T) {
	rbac, err := os.ReadFile("../base/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules []byte
	for _, doc := range strings.Split(string(rbac), "\n---\n") {
		var role struct {
			Kind     string
			Metadata struct{ Name string }
			Rules    []any
		}
		if yaml.Unmarshal([]byte(doc), &role) == nil && role.Kind == "ClusterRole" && role.Metadata.Name == "storage-webhook" {
			if rules, err = yaml.Marshal(role.Rules); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rules == nil {
		t.Fatal("deploy/base/rbac.yaml has no ClusterRole storage-webhook")
	}
	golden(t, chartDir+"/files/clusterrole-rules.yaml", rules)

	pr, err := os.ReadFile("../components/monitoring/prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rule struct{ Spec any }
	if err := yaml.Unmarshal(pr, &rule); err != nil {
		t.Fatal(err)
	}
	spec, err := yaml.Marshal(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, chartDir+"/files/prometheusrule-spec.yaml", spec)

	// The dashboard is copied byte for byte: hack/dashboardtest checks the component's file.
	dashboard, err := os.ReadFile("../components/monitoring/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, chartDir+"/files/dashboard.json", dashboard)
}

func yamlUnmarshal(s string, v any) error { return yaml.Unmarshal([]byte(s), v) }
