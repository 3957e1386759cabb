//go:build integration

// Run by `make integration` (.ci/run runs it): it needs the pinned helm (HELM, built by
// hack/helmbin).

package chart

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/rollout"
	"github.com/hcistorage/storage-webhook/webhook"
)

// helm runs the pinned helm binary ($HELM; `make integration` builds it with hack/helmbin).
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		t.Skip("HELM is not set: `make integration` builds the pinned helm (hack/helmbin) and sets it")
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

func render(t *testing.T, set ...string) []*unstructured.Unstructured {
	t.Helper()
	var args []string
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return renderArgs(t, args...)
}

// renderArgs renders the chart with helm template's own flags (--set-json, -f, ...).
func renderArgs(t *testing.T, flags ...string) []*unstructured.Unstructured {
	t.Helper()
	args := append([]string{"template", "storage-webhook", chartDir, "--namespace", "storage-webhook"}, flags...)
	out, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", flags, err, out)
	}
	objs, err := cluster.DecodeManifests([]byte(out))
	if err != nil {
		t.Fatalf("rendered chart: %v\n%s", err, out)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// TestHelmLint: helm lint passes, strict (warnings are failures too).
func TestHelmLint(t *testing.T) {
	if out, err := helm(t, "lint", "--strict", chartDir); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s", err, out)
	}
}

// normalized drops what the two packagings legitimately differ in: labels (kustomize adds
// two, Helm adds its own) and the caBundle (an overlay or the chart's certificate source
// sets it).
func normalized(u *unstructured.Unstructured) map[string]any {
	o := u.DeepCopy()
	unstructured.RemoveNestedField(o.Object, "metadata", "labels")
	if hooks, ok, _ := unstructured.NestedSlice(o.Object, "webhooks"); ok {
		for _, h := range hooks {
			if cc, ok := h.(map[string]any)["clientConfig"].(map[string]any); ok {
				delete(cc, "caBundle")
			}
		}
		_ = unstructured.SetNestedSlice(o.Object, hooks, "webhooks")
	}
	return o.Object
}

// TestDefaultRenderMatchesKustomizeBase: with default values, the chart installs the
// kustomize base's webhook configurations, RBAC, Deployment, Service, PodDisruptionBudget,
// NetworkPolicy and providers ConfigMap, object for object (one source of truth, two
// packagings).
func TestDefaultRenderMatchesKustomizeBase(t *testing.T) {
	chart := render(t)
	var base []*unstructured.Unstructured
	for _, f := range []string{"namespace", "rbac", "providers-configmap", "deployment", "service", "pdb", "networkpolicy", "webhooks"} { // kustomization.yaml's resources
		objs, err := cluster.ReadManifests("../base/" + f + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		base = append(base, objs...)
	}
	compared := 0
	for _, b := range base {
		if b.GetKind() == "Namespace" || b.GetKind() == "Kustomization" {
			continue // the release's namespace is Helm's (--create-namespace)
		}
		c := find(chart, b.GetKind(), b.GetName())
		if c == nil {
			t.Errorf("the chart has no %s %s", b.GetKind(), b.GetName())
			continue
		}
		if b.GetKind() == "ConfigMap" { // the providers file: compare it as YAML
			var bp, cp map[string]any
			_ = yamlUnmarshal(b.Object["data"].(map[string]any)["providers.yaml"].(string), &bp)
			_ = yamlUnmarshal(c.Object["data"].(map[string]any)["providers.yaml"].(string), &cp)
			if !reflect.DeepEqual(bp, cp) {
				t.Errorf("providers.yaml differs:\nchart %v\nbase  %v", cp, bp)
			}
			compared++
			continue
		}
		if got, want := normalized(c), normalized(b); !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s differs from the kustomize base:\nchart %v\nbase  %v", b.GetKind(), b.GetName(), got, want)
		}
		compared++
	}
	if compared < 10 {
		t.Errorf("compared %d objects, want every object of deploy/base", compared)
	}
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		hooks, _, _ := unstructured.NestedSlice(find(chart, kind, "storage-webhook").Object, "webhooks")
		for _, h := range hooks {
			if ca, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle"); ca == "" {
				t.Errorf("%s: a webhook without the generated caBundle", kind)
			}
		}
	}
	if find(chart, "Secret", "storage-webhook-tls") == nil {
		t.Error("certificate.source generate made no Secret storage-webhook-tls")
	}
}

// TestNonDefaultValues: each value lands where it should.
func TestNonDefaultValues(t *testing.T) {
	objs := render(t, "replicas=3", "image.tag=v9.9.9", "log.format=text", "log.level=debug",
		"privilegedUsers={bob,system:serviceaccount:ops:cleaner}", "excludedNamespaces={longhorn-system,cattle-system}",
		"monitoring.serviceMonitor=true", "monitoring.prometheusRule=true", "monitoring.dashboard=true", "certificate.source=cert-manager",
		"providers.builtins=false", "providers.providers[0].name=nfs", "providers.providers[0].provisioner=nfs.csi.k8s.io", "providers.providers[0].backend=cdi")
	d := find(objs, "Deployment", "storage-webhook")
	if r, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(r) != "3" {
		t.Errorf("replicas %v", r)
	}
	c, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	container := c[0].(map[string]any)
	args := strings.Join(toStrings(container["args"]), " ")
	for _, want := range []string{"--log-format=text", "--log-level=debug", "--privileged-user=bob", "--privileged-user=system:serviceaccount:ops:cleaner"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	if container["image"] != "docker.io/hcistorage/storage-webhook:v9.9.9" {
		t.Errorf("image %v", container["image"])
	}
	hooks, _, _ := unstructured.NestedSlice(find(objs, "ValidatingWebhookConfiguration", "storage-webhook").Object, "webhooks")
	sel := hooks[0].(map[string]any)["namespaceSelector"].(map[string]any)["matchExpressions"].([]any)[0].(map[string]any)["values"]
	if got := strings.Join(toStrings(sel), ","); got != "kube-system,storage-webhook,longhorn-system,cattle-system" {
		t.Errorf("excluded namespaces %s", got)
	}
	v := find(objs, "ValidatingWebhookConfiguration", "storage-webhook")
	if v.GetAnnotations()["cert-manager.io/inject-ca-from"] != "storage-webhook/storage-webhook-serving" || find(objs, "Certificate", "storage-webhook-serving") == nil ||
		find(objs, "Secret", "storage-webhook-tls") != nil {
		t.Errorf("cert-manager source: annotations %v", v.GetAnnotations())
	}
	if find(objs, "ServiceMonitor", "storage-webhook") == nil || find(objs, "PrometheusRule", "storage-webhook") == nil {
		t.Error("monitoring objects missing")
	}
	checkDashboardConfigMap(t, find(objs, "ConfigMap", "storage-webhook-dashboard"))
	cm := find(objs, "ConfigMap", "storage-webhook-providers").Object["data"].(map[string]any)["providers.yaml"].(string)
	if !strings.Contains(cm, "builtins: false") || !strings.Contains(cm, "provisioner: nfs.csi.k8s.io") {
		t.Errorf("providers.yaml %s", cm)
	}
}

// checkDashboardConfigMap: monitoring.dashboard's ConfigMap is where Rancher Monitoring's
// Grafana sidecar looks (namespace cattle-dashboards, label grafana_dashboard "1", whatever
// the release's namespace) and holds files/dashboard.json unchanged.
func checkDashboardConfigMap(t *testing.T, cm *unstructured.Unstructured) {
	t.Helper()
	if cm == nil {
		t.Fatal("monitoring.dashboard: no ConfigMap storage-webhook-dashboard")
	}
	if cm.GetNamespace() != "cattle-dashboards" || cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap in namespace %q with labels %v, want cattle-dashboards and grafana_dashboard: \"1\"", cm.GetNamespace(), cm.GetLabels())
	}
	want, err := os.ReadFile(chartDir + "/files/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(cm.Object, "data", "storage-webhook.json"); got != string(want) {
		t.Errorf("dashboard ConfigMap's storage-webhook.json differs from files/dashboard.json:\n%.300s", got)
	}
}

// TestDashboardValue: the dashboard is off by default and, on, needs no other monitoring value.
func TestDashboardValue(t *testing.T) {
	if find(render(t, "monitoring.serviceMonitor=true", "monitoring.prometheusRule=true"), "ConfigMap", "storage-webhook-dashboard") != nil {
		t.Error("the dashboard is rendered without monitoring.dashboard")
	}
	checkDashboardConfigMap(t, find(renderArgs(t, "--set", "monitoring.dashboard=true", "--namespace", "elsewhere"), "ConfigMap", "storage-webhook-dashboard"))
}

// TestRolloutValues: providers.rules and providers.exceptions reach the providers file as
// the service reads it, an unquoted Off included (YAML's false), and the Harvester Addon's
// values install every rule in Audit.
func TestRolloutValues(t *testing.T) {
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(`providers:
  rules:
    default: {action: Audit}
    VM-V3: {action: Off}
    PVC-V2:
      action: Enforce
      overrides:
      - {action: Warn, namespaceSelector: {matchLabels: {tier: legacy}}}
  exceptions:
  - name: web-2-rebuild
    rules: [VM-V1]
    names: [web-2]
    expires: 2027-01-31T00:00:00Z
    reason: rebuilt from a larger image
`), 0o644); err != nil {
		t.Fatal(err)
	}
	parse := func(objs []*unstructured.Unstructured) *rollout.Policy {
		t.Helper()
		data, _, _ := unstructured.NestedString(find(objs, "ConfigMap", "storage-webhook-providers").Object, "data", "providers.yaml")
		f, err := providers.Parse([]byte(data), webhook.Catalogue())
		if err != nil {
			t.Fatalf("the rendered providers file is refused: %v\n%s", err, data)
		}
		return f.Policy()
	}
	p := parse(renderArgs(t, "--values", values))
	if p.Action("VM-V3") != rollout.Off || p.Action("IMG-M1") != rollout.Audit || p.Action("PVC-V2") != rollout.Enforce ||
		len(p.Overrides("PVC-V2")) != 1 || len(p.Exceptions()) != 1 || p.Exceptions()[0].Expires.Year() != 2027 {
		t.Errorf("rendered rollout: VM-V3 %s, IMG-M1 %s, PVC-V2 %s %v, exceptions %v", p.Action("VM-V3"), p.Action("IMG-M1"), p.Action("PVC-V2"), p.Overrides("PVC-V2"), p.Exceptions())
	}

	// The Addon's values merge into the chart's: its providers rows stay.
	objs := renderArgs(t, "--values", addonValues(t))
	if p := parse(objs); p.Action("VM-V1") != rollout.Audit || p.Action("SC-M1") != rollout.Audit {
		t.Errorf("the Harvester Addon's values: VM-V1 %s, SC-M1 %s; want every rule in Audit", p.Action("VM-V1"), p.Action("SC-M1"))
	}
	if data, _, _ := unstructured.NestedString(find(objs, "ConfigMap", "storage-webhook-providers").Object, "data", "providers.yaml"); !strings.Contains(data, "name: ceph-rbd") {
		t.Errorf("the Addon's values dropped the chart's providers rows:\n%s", data)
	}
}

// TestSchemaRefusesBadValues: a wrong value fails at install with a message naming it.
func TestSchemaRefusesBadValues(t *testing.T) {
	for _, c := range []struct{ set, want string }{
		{"replicas=0", "at '/replicas'"},
		{"certificate.source=vault", "at '/certificate/source': value must be one of 'generate', 'cert-manager', 'secret'"},
		{"log.format=xml", "at '/log/format'"},
		{"excludedNamespaces={Not_A_Namespace}", "at '/excludedNamespaces/0'"},
		{"providers.providers[0].backend=longhorn", "at '/providers/providers/0"},
		{"imagee.tag=x", "imagee"},
		{"certificate.source=secret", "is required when certificate.source is secret"},
		{"networkPolicy.webhookFrom=null", "networkPolicy.webhookFrom must list at least one peer"},
		{"networkPolicy.metricsFrom=null", "networkPolicy.metricsFrom must list at least one peer"},
		{"networkPolicy.webhookFrom[0].ipBlock.cidrs=10.0.0.1/32", "at '/networkPolicy/webhookFrom/0/ipBlock'"},
		{"networkPolicy.metricsFrom[0].namespaceSelector.matchExpressions[0].operator=Equals", "at '/networkPolicy/metricsFrom/0/namespaceSelector/matchExpressions/0/operator'"},
		{"certificate.source=secret,certificate.secret.name=tls", "certificate.secret.caBundle is required"},
		{"clientAuth.enabled=true", "clientAuth.caSecret or clientAuth.caBundle is required when clientAuth.enabled is true"},
		{"clientAuth.enabled=true,clientAuth.caSecret=ca,clientAuth.caBundle=Zm9v", "clientAuth: set caSecret or caBundle, not both"},
		{"clientAuth.caSecret=Not_A_Name", "at '/clientAuth/caSecret'"},
		{"clientAuth.caBundle=not base64!", "at '/clientAuth/caBundle'"},
		{"clientAuth.enable=true", "enable"},
		{"monitoring.dashboard=yes", "at '/monitoring/dashboard'"},
		{"providers.rules.VM-V1.action=Dryrun", "at '/providers/rules/VM-V1/action'"},
		{"providers.rules.vm-v1.action=Audit", "'vm-v1' does not match pattern"},
		{"providers.rules.VM-V1.overrides[0].action=Warn", "at '/providers/rules/VM-V1/overrides/0'"},
		{"providers.exceptions[0].name=x,providers.exceptions[0].rules={VM-V1},providers.exceptions[0].reason=r", "at '/providers/exceptions/0'"},
		{"providers.exceptions[0].name=x,providers.exceptions[0].rules={VM-V1},providers.exceptions[0].reason=r,providers.exceptions[0].expires=2027-01-31", "at '/providers/exceptions/0/expires'"},
	} {
		t.Run(c.set, func(t *testing.T) {
			out, err := helm(t, "template", "storage-webhook", chartDir, "--set", c.set)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("helm template --set %s: err %v, output %q; want an error naming %q", c.set, err, out, c.want)
			}
		})
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestClientAuthValues: clientAuth off (the default) adds nothing; on, the pods get
// --client-ca-file and the CA's Secret mounted where the flag points: the chart's own Secret
// from caBundle (with a checksum that rolls the pods when the CA changes) or an existing one.
func TestClientAuthValues(t *testing.T) {
	const bundle = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==" // a stand-in; the chart does not parse it
	tests := []struct {
		name       string
		set        []string
		wantSecret string // the Secret mounted at /etc/storage-webhook/client-ca; "" for none
		wantOwn    bool   // the chart makes storage-webhook-client-ca
	}{
		{"off by default", nil, "", false},
		{"caBundle: the chart's Secret", []string{"clientAuth.enabled=true", "clientAuth.caBundle=" + bundle}, "storage-webhook-client-ca", true},
		{"caSecret: an existing Secret", []string{"clientAuth.enabled=true", "clientAuth.caSecret=apiserver-client-ca"}, "apiserver-client-ca", false},
		{"a caBundle without enabled is ignored", []string{"clientAuth.caBundle=" + bundle}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := render(t, tt.set...)
			d := find(objs, "Deployment", "storage-webhook")
			pod, _, _ := unstructured.NestedMap(d.Object, "spec", "template")
			spec := pod["spec"].(map[string]any)
			container := spec["containers"].([]any)[0].(map[string]any)
			args := toStrings(container["args"])
			hasFlag := false
			for _, a := range args {
				hasFlag = hasFlag || a == "--client-ca-file=/etc/storage-webhook/client-ca/ca.crt"
			}
			mounted := ""
			for _, m := range container["volumeMounts"].([]any) {
				if m := m.(map[string]any); m["mountPath"] == "/etc/storage-webhook/client-ca" {
					for _, v := range spec["volumes"].([]any) {
						if v := v.(map[string]any); v["name"] == m["name"] {
							mounted, _, _ = unstructured.NestedString(v, "secret", "secretName")
						}
					}
				}
			}
			if hasFlag != (tt.wantSecret != "") || mounted != tt.wantSecret {
				t.Errorf("--client-ca-file %v, Secret mounted %q; want %q (args %v)", hasFlag, mounted, tt.wantSecret, args)
			}
			own := find(objs, "Secret", "storage-webhook-client-ca")
			if (own != nil) != tt.wantOwn {
				t.Fatalf("chart's Secret storage-webhook-client-ca made: %v, want %v", own != nil, tt.wantOwn)
			}
			checksum, _, _ := unstructured.NestedString(pod, "metadata", "annotations", "checksum/client-ca")
			if (checksum != "") != tt.wantOwn {
				t.Errorf("checksum/client-ca %q, want one only with the chart's Secret", checksum)
			}
			if own != nil {
				if ca, _, _ := unstructured.NestedString(own.Object, "data", "ca.crt"); ca != bundle {
					t.Errorf("Secret ca.crt %q, want the caBundle", ca)
				}
			}
		})
	}
}

// TestMetricsSecureValues: metrics.secure off (the default) adds nothing; on, it renders
// what deploy/components/metrics-secure adds to the base: the flags, the probes port the
// probes use, the ClusterRole storage-webhook-metrics-reader, and an HTTPS ServiceMonitor.
func TestMetricsSecureValues(t *testing.T) {
	container := func(objs []*unstructured.Unstructured) map[string]any {
		c, _, _ := unstructured.NestedSlice(find(objs, "Deployment", "storage-webhook").Object, "spec", "template", "spec", "containers")
		return c[0].(map[string]any)
	}
	off := render(t, "monitoring.serviceMonitor=true")
	if args := strings.Join(toStrings(container(off)["args"]), " "); strings.Contains(args, "--metrics-secure") {
		t.Errorf("default args %q", args)
	}
	if find(off, "ClusterRole", "storage-webhook-metrics-reader") != nil {
		t.Error("the default renders storage-webhook-metrics-reader")
	}
	if s, _, _ := unstructured.NestedSlice(find(off, "ServiceMonitor", "storage-webhook").Object, "spec", "endpoints"); s[0].(map[string]any)["scheme"] != "http" {
		t.Errorf("default ServiceMonitor endpoint %v", s[0])
	}

	on := render(t, "metrics.secure=true", "monitoring.serviceMonitor=true")
	c := container(on)
	args := strings.Join(toStrings(c["args"]), " ")
	for _, want := range []string{"--metrics-secure", "--probes-listen=:8081"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	hasProbes := false
	for _, p := range c["ports"].([]any) {
		p := p.(map[string]any)
		hasProbes = hasProbes || (p["name"] == "probes" && fmt.Sprint(p["containerPort"]) == "8081")
	}
	if !hasProbes {
		t.Errorf("ports %v lack probes 8081", c["ports"])
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		if port, _, _ := unstructured.NestedString(c, probe, "httpGet", "port"); port != "probes" {
			t.Errorf("%s on port %q, want probes", probe, port)
		}
	}
	role := find(on, "ClusterRole", "storage-webhook-metrics-reader")
	if role == nil {
		t.Fatal("no ClusterRole storage-webhook-metrics-reader")
	}
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	if got := fmt.Sprint(rules); got != "[map[nonResourceURLs:[/metrics /audit] verbs:[get]]]" {
		t.Errorf("rules %s", got)
	}
	eps, _, _ := unstructured.NestedSlice(find(on, "ServiceMonitor", "storage-webhook").Object, "spec", "endpoints")
	ep := eps[0].(map[string]any)
	ca, _, _ := unstructured.NestedString(ep, "tlsConfig", "ca", "secret", "name")
	server, _, _ := unstructured.NestedString(ep, "tlsConfig", "serverName")
	if ep["scheme"] != "https" || ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" || ca != "storage-webhook-tls" || server != "storage-webhook.storage-webhook.svc" {
		t.Errorf("secure ServiceMonitor endpoint %v", ep)
	}
}

// addonValues writes the valuesContent of deploy/harvester-addon.yaml's Addon to a values
// file and returns its path.
func addonValues(t *testing.T) string {
	t.Helper()
	objs, err := cluster.ReadManifests("../harvester-addon.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() == "Addon" {
			content, _, _ := unstructured.NestedString(u.Object, "spec", "valuesContent")
			path := filepath.Join(t.TempDir(), "addon-values.yaml")
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}
	}
	t.Fatal("deploy/harvester-addon.yaml has no Addon")
	return ""
}
