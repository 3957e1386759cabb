//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestRolloutEndToEnd rolls rules out on the suite's webhook through its providers file,
// mounted as the kubelet mounts deploy/base's ConfigMap and changed as the kubelet changes
// it: a rule in Warn answers kubectl with a warning and admits; a rule in Audit admits and
// its audit annotation reaches the API server's audit log; an override by namespace label
// follows the namespace's labels; an exception that expires during the test stops matching
// with no reload; a broken file leaves the previous configuration in force; a new file is
// followed. Every entry names only this test's namespaces, so other tests see no change.
func TestRolloutEndToEnd(t *testing.T) {
	ctx := context.Background()
	legacy, other := newNamespace(t), newNamespace(t)
	label := "storage-webhook.e2e/tier-" + legacy
	setLabels := func(ns string, labels map[string]string) {
		t.Helper()
		n, err := suite.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Labels = labels
		if _, err := suite.kube.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setLabels(legacy, map[string]string{label: "legacy", "kubernetes.io/metadata.name": legacy})
	t.Cleanup(func() {
		if err := suite.providers.write(baseProviders()); err != nil {
			t.Errorf("restore the providers file: %v", err)
		}
	})

	// A class, and in each namespace a cdi image of 10Gi that a 5Gi disk is too small for.
	if _, err := create(t, obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: e2e-rollout-rbd}\nprovisioner: rbd.csi.ceph.com\n"), false); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, ns := range []string{legacy, other} {
		img := obj(t, ns, image("golden", "e2e-rollout-rbd", "cdi"))
		_ = unstructured.SetNestedField(img.Object, map[string]any{"size": int64(1 << 30), "virtualSize": int64(10 << 30)}, "status")
		expectCreated(t, img, anyObject)
	}
	vmFile := func(ns, name string) string {
		path := filepath.Join(t.TempDir(), name+".yaml")
		manifest := "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\n" +
			`  annotations: {harvesterhci.io/volumeClaimTemplates: '[{"metadata":{"name":"root","annotations":{"harvesterhci.io/imageId":"` + ns +
			`/golden"}},"spec":{"accessModes":["ReadWriteMany"],"storageClassName":"e2e-rollout-rbd","resources":{"requests":{"storage":"5Gi"}}}}]'}` + "\n" +
			"spec:\n  runStrategy: Halted\n  template:\n    spec:\n      domain: {devices: {}}\n"
		if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// kubectlCreate creates a small-disk VM with kubectl (a server-side dry run unless real)
	// and returns kubectl's output and whether it succeeded.
	kubectlCreate := func(ns, name string, real bool) (string, bool) {
		args := []string{"create", "-f", vmFile(ns, name)}
		if !real {
			args = append(args, "--dry-run=server")
		}
		out, err := kubectl(args...)
		return out, err == nil
	}
	// answers polls until kubectl's answer for the VM passes check.
	answers := func(what, ns, name string, check func(out string, ok bool) bool) string {
		t.Helper()
		var out string
		pollUntil(t, what, func() error {
			var ok bool
			if out, ok = kubectlCreate(ns, name, false); !check(out, ok) {
				return fmt.Errorf("kubectl answered (ok %v): %s", ok, out)
			}
			return nil
		})
		return out
	}
	warned := func(out string, ok bool) bool { return ok && strings.Contains(out, "Warning: [VM-V1]") }
	denied := func(out string, ok bool) bool {
		return !ok && strings.Contains(out, "[VM-V1]") && strings.Contains(out, "denied the request")
	}
	admittedQuietly := func(out string, ok bool) bool { return ok && !strings.Contains(out, "Warning") }

	// Before any rollout: enforced everywhere.
	answers("VM-V1 enforced before the rollout", legacy, "web", denied)

	expires := time.Now().Add(10 * time.Second).Truncate(time.Second)
	rollout := fmt.Sprintf(`%s
rules:
  VM-V1:
    overrides:
    - action: Warn
      namespaceSelector: {matchLabels: {%s: legacy}}
  PVC-V3:
    overrides:
    - {action: Audit, namespaces: [%s]}
exceptions:
- name: %s-old-web
  rules: [VM-*]
  namespaces: [%s]
  names: [old-web]
  kinds: [VirtualMachine]
  expires: %q
  reason: old-web is rebuilt from a larger image this week
  ticket: E2E-1
`, baseProviders(), label, other, other, other, expires.Format(time.RFC3339))
	if err := suite.providers.write(rollout); err != nil {
		t.Fatal(err)
	}

	t.Run("Warn: kubectl shows the rule's warning and the VM is created", func(t *testing.T) {
		out := answers("VM-V1 in Warn in the labelled namespace", legacy, "web", warned)
		if !strings.Contains(out, "requests 5Gi") || !strings.Contains(out, "less than 10Gi") {
			t.Errorf("the warning is not the rule's message: %s", out)
		}
		if out, ok := kubectlCreate(legacy, "web", true); !warned(out, ok) {
			t.Errorf("the real create: %s", out)
		}
		// The unlabelled namespace keeps the rule's action.
		answers("VM-V1 enforced in the other namespace", other, "web", denied)
	})

	t.Run("Audit: admitted, and the annotation is in the API server's audit log", func(t *testing.T) {
		ref := "harvesterhci.io/imageId: " + other + "/golden"
		small := obj(t, other, pvc("disk-small", "e2e-rollout-rbd", "5Gi", ref))
		expectCreated(t, small, anyObject)
		pollUntil(t, "the audit-PVC-V3 annotation in the audit log", func() error {
			for _, e := range auditEvents(t) {
				if e.ObjectRef.Namespace == other && e.ObjectRef.Name == "disk-small" && e.Verb == "create" {
					for k, v := range e.Annotations {
						if strings.HasSuffix(k, "/audit-PVC-V3") && strings.HasPrefix(v, "would deny: PVC "+other+"/disk-small requests 5Gi") {
							return nil
						}
					}
					return fmt.Errorf("the create's event has annotations %v", e.Annotations)
				}
			}
			return fmt.Errorf("no audit event for the create of %s/disk-small yet", other)
		})
		if n := sum(scrape(t, suite.webhook.probes+"/metrics"), "storage_webhook_rule_would_deny_total", func(l map[string]string) bool {
			return l["rule"] == "PVC-V3" && l["action"] == "Audit" && l["namespace"] == other
		}); n != 2 {
			t.Errorf("would-deny for PVC-V3 in %s = %v, want 2 (expectCreated's dry run and the create)", other, n)
		}
	})

	t.Run("an override by namespace label follows the namespace's labels", func(t *testing.T) {
		setLabels(legacy, map[string]string{"kubernetes.io/metadata.name": legacy})
		answers("VM-V1 enforced once the label is gone", legacy, "web-2", denied)
		setLabels(legacy, map[string]string{label: "legacy", "kubernetes.io/metadata.name": legacy})
		answers("VM-V1 in Warn again with the label back", legacy, "web-2", warned)
	})

	t.Run("an exception matches until the second it expires, with no reload", func(t *testing.T) {
		if time.Until(expires) < 3*time.Second {
			t.Fatalf("the test reached the exception only %v before it expires; the steps before took too long", time.Until(expires))
		}
		answers("old-web excepted", other, "old-web", admittedQuietly)
		answers("another VM of the namespace is not", other, "young-web", denied)
		deadline := time.Now().Add(time.Until(expires) + within)
		for {
			out, ok := kubectlCreate(other, "old-web", false)
			if denied(out, ok) {
				if time.Now().Before(expires) {
					t.Fatalf("denied at %s, before the exception expires at %s", time.Now().Format(time.RFC3339Nano), expires.Format(time.RFC3339))
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still admitted %v after the exception expired: %s", time.Since(expires), out)
			}
			time.Sleep(200 * time.Millisecond)
		}
		pollUntil(t, "the expiry logged", func() error {
			if log := readFile(filepath.Join(suite.tmp, "webhook.log")); !strings.Contains(log, "exception expired") || !strings.Contains(log, "exception="+other+"-old-web") {
				return fmt.Errorf("no expiry line for %s-old-web", other)
			}
			return nil
		})
	})

	t.Run("a broken file leaves the previous configuration in force", func(t *testing.T) {
		before := sum(scrape(t, suite.webhook.probes+"/metrics"), "storage_webhook_provider_reloads_total", func(l map[string]string) bool { return l["result"] == "failure" })
		if err := suite.providers.write(baseProviders() + "rules:\n  VM-V9: {action: Audit}\n"); err != nil {
			t.Fatal(err)
		}
		pollUntil(t, "the refusal", func() error {
			after := sum(scrape(t, suite.webhook.probes+"/metrics"), "storage_webhook_provider_reloads_total", func(l map[string]string) bool { return l["result"] == "failure" })
			if after <= before || !strings.Contains(readFile(filepath.Join(suite.tmp, "webhook.log")), "rules.VM-V9: no such rule") {
				return fmt.Errorf("failures %v → %v, and the log does not name rules.VM-V9", before, after)
			}
			return nil
		})
		if out, ok := kubectlCreate(legacy, "web-3", false); !warned(out, ok) {
			t.Errorf("after a refused file, VM-V1 no longer warns in %s: %s", legacy, out)
		}
	})

	t.Run("a ConfigMap change is followed", func(t *testing.T) {
		next := strings.Replace(rollout, "action: Warn", "action: Off", 1)
		if err := suite.providers.write(next); err != nil {
			t.Fatal(err)
		}
		answers("VM-V1 Off in the labelled namespace", legacy, "web-4", admittedQuietly)
	})
}

// auditEvent is what the tests read of an audit.k8s.io/v1 Event.
type auditEvent struct {
	Verb      string `json:"verb"`
	ObjectRef struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
	Annotations map[string]string `json:"annotations"`
}

// auditEvents reads the API server's audit log (one JSON event per line).
func auditEvents(t *testing.T) []auditEvent {
	t.Helper()
	data, err := os.ReadFile(suite.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditEvent
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e auditEvent
		if len(line) > 0 && json.Unmarshal(line, &e) == nil {
			out = append(out, e)
		}
	}
	return out
}
