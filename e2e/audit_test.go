//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
	role := clusterRoleFrom(t, "../deploy/base/rbac.yaml", "storage-webhook-audit-reader")
	reader, nobody := roleTokens(t, ctx, ns, role, "audit-reader", "audit-nobody")
	addr := net.JoinHostPort(suite.env.WebhookInstallOptions.LocalServingHost, fmt.Sprint(suite.env.WebhookInstallOptions.LocalServingPort))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(suite.env.WebhookInstallOptions.LocalServingCAData)
	httpc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	fetch := func(token string) (int, []byte) { return getWithToken(t, httpc, "https://"+addr+"/audit", token) }

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
