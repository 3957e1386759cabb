//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/internal/poll"
)

// TestLiveAudit: the running service audits what is stored, from its watch caches, and
// keeps it current: a PVC admitted while its image's size was unknown becomes a PVC-V3
// violation when Harvester writes the size (an event of the image re-audits the PVCs that
// reference it), shown by GET /audit and storage_webhook_audit_findings, and goes away
// with the PVC. /audit answers only a caller the API server authenticates and authorizes
// with deploy/base's storage-webhook-audit-reader role: not an anonymous one (401), not a
// service account without the role (403).
func TestLiveAudit(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	reader, nobody := auditTokens(t, ns)
	addr := net.JoinHostPort(suite.env.WebhookInstallOptions.LocalServingHost, fmt.Sprint(suite.env.WebhookInstallOptions.LocalServingPort))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(suite.env.WebhookInstallOptions.LocalServingCAData)
	httpc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	fetch := func(token string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/audit", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}

	t.Run("only an authorized caller reads /audit", func(t *testing.T) {
		if code, _ := fetch(""); code != http.StatusUnauthorized {
			t.Errorf("anonymous: %d, want 401", code)
		}
		if code, _ := fetch(nobody); code != http.StatusForbidden {
			t.Errorf("a service account without the role: %d, want 403", code)
		}
		code, body := fetch(reader)
		var findings []map[string]any
		if code != http.StatusOK || json.Unmarshal(body, &findings) != nil {
			t.Errorf("the reader: %d %s, want 200 and a JSON array", code, body)
		}
	})

	t.Run("an image's size arriving turns its disk into a PVC-V3 violation", func(t *testing.T) {
		class := obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: e2e-audit-rbd}\nprovisioner: rbd.csi.ceph.com\n")
		ensure(t, class)
		expectCreated(t, obj(t, ns, image("sized-later", "e2e-audit-rbd", "cdi")), anyObject)
		expectCreated(t, obj(t, ns, pvc("disk-of-sized-later", "e2e-audit-rbd", "5Gi", "harvesterhci.io/imageId: "+ns+"/sized-later")), anyObject)
		finding := func(severity string) bool {
			_, body := fetch(reader)
			var findings []struct{ Namespace, Name, Rule, Severity string }
			_ = json.Unmarshal(body, &findings)
			for _, f := range findings {
				if f.Namespace == ns && f.Name == "disk-of-sized-later" && f.Rule == "PVC-V3" {
					return f.Severity == severity
				}
			}
			return severity == ""
		}
		poll.Until(t, within, func() bool { return finding("warning") }) // size unknown yet
		violations := func() float64 {
			return sum(scrape(t, suite.webhook.probes+"/metrics"), "storage_webhook_audit_findings", func(l map[string]string) bool {
				return l["rule"] == "PVC-V3" && l["severity"] == "violation"
			})
		}
		before := violations()
		img := get(t, "VirtualMachineImage", ns, "sized-later")
		_ = unstructured.SetNestedField(img.Object, map[string]any{"size": int64(1 << 30), "virtualSize": int64(10 << 30)}, "status")
		if _, err := client(t, "VirtualMachineImage", ns, harvesterUser).Update(ctx, img, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, within, func() bool { return finding("violation") })
		if after := violations(); after != before+1 {
			t.Errorf("storage_webhook_audit_findings{rule=PVC-V3,severity=violation} went from %v to %v, want +1", before, after)
		}
		if err := remove(t, "PersistentVolumeClaim", ns, "disk-of-sized-later", "", false); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, within, func() bool { return finding("") })
	})
}

// auditTokens makes two service accounts in ns and returns their tokens: one bound to
// deploy/base's storage-webhook-audit-reader ClusterRole, one bound to nothing.
func auditTokens(t *testing.T, ns string) (reader, nobody string) {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile("../deploy/base/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role *rbacv1.ClusterRole
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var r rbacv1.ClusterRole
		if yaml.Unmarshal([]byte(doc), &r) == nil && r.Kind == "ClusterRole" && r.Name == "storage-webhook-audit-reader" {
			role = &r
		}
	}
	if role == nil {
		t.Fatal("deploy/base/rbac.yaml has no ClusterRole storage-webhook-audit-reader")
	}
	if _, err := suite.kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	token := func(name string) string {
		if _, err := suite.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := suite.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	reader, nobody = token("audit-reader"), token("audit-nobody")
	if _, err := suite.kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "audit-reader-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "audit-reader", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return reader, nobody
}
