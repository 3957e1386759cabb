//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestImageAccess: IMG-V6 through a real API server, whose RBAC answers the webhook's
// SubjectAccessReviews. bob may work in his own namespace only; carol may also read the
// vault namespace. An export of a vault PVC, and a disk from a vault image, are denied to
// bob without a word about the object, and admitted for carol.
func TestImageAccess(t *testing.T) {
	ctx := context.Background()
	team, vault := newNamespace(t), newNamespace(t)
	ensure(t, obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: e2e-access-rbd}\nprovisioner: rbd.csi.ceph.com\n"))
	if _, err := create(t, obj(t, vault, pvc("secret-data", "e2e-access-rbd", "5Gi", "")), false); err != nil {
		t.Fatal(err)
	}
	base := obj(t, vault, image("base", "e2e-access-rbd", "cdi"))
	_ = unstructured.SetNestedField(base.Object, map[string]any{"size": int64(1 << 30), "virtualSize": int64(10 << 30)}, "status")
	if _, err := create(t, base, false); err != nil {
		t.Fatal(err)
	}
	grant := func(ns, name string, rules []rbacv1.PolicyRule, users ...string) {
		t.Helper()
		rbac := suite.kube.RbacV1()
		if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}}
		for _, u := range users {
			b.Subjects = append(b.Subjects, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: u})
		}
		if _, err := rbac.RoleBindings(ns).Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	storage := func(verbs ...string) []rbacv1.PolicyRule {
		return []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: verbs},
			{APIGroups: []string{"harvesterhci.io"}, Resources: []string{"virtualmachineimages"}, Verbs: verbs},
		}
	}
	grant(team, "author", storage("get", "list", "create"), "bob", "carol")
	grant(vault, "reader", storage("get"), "carol")

	export := func(name string) *unstructured.Unstructured {
		u := obj(t, team, image(name, "e2e-access-rbd", "cdi"))
		_ = unstructured.SetNestedField(u.Object, map[string]any{"displayName": name, "sourceType": "export-from-volume",
			"pvcNamespace": vault, "pvcName": "secret-data", "backend": "cdi"}, "spec")
		return u
	}
	disk := func(name string) *unstructured.Unstructured {
		return obj(t, team, pvc(name, "e2e-access-rbd", "5Gi", "harvesterhci.io/imageId: "+vault+"/base"))
	}
	// deniedAs retries a dry run as user until the answer is a webhook denial by rule (RBAC
	// and the webhook's caches take a moment to see the objects above), then checks the
	// real request and returns its message.
	deniedAs := func(t *testing.T, user, rule string, u *unstructured.Unstructured) string {
		t.Helper()
		c := client(t, u.GetKind(), u.GetNamespace(), user)
		deadline := time.Now().Add(within)
		for {
			_, err := c.Create(ctx, u.DeepCopy(), metav1.CreateOptions{DryRun: dryRun(true)})
			if deniedBy(err, rule) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not denied by %s within %v; last answer: %v", user, rule, within, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, err := c.Create(ctx, u.DeepCopy(), metav1.CreateOptions{})
		if !deniedBy(err, rule) {
			t.Fatalf("%s: the dry run was denied by %s, the real request answered %v", user, rule, err)
		}
		return err.Error()
	}

	t.Run("bob may not export a vault PVC, and learns nothing about it", func(t *testing.T) {
		msg := deniedAs(t, "bob", "IMG-V6", export("bob-export"))
		if !strings.Contains(msg, fmt.Sprintf(`user "bob" may not get PersistentVolumeClaim %s/secret-data`, vault)) || strings.Contains(msg, "rbd") {
			t.Errorf("message %q: want the refusal, without the PVC's class", msg)
		}
	})
	t.Run("carol, who may read the vault, exports it", func(t *testing.T) {
		expectCreatedAs(t, "carol", export("carol-export"), anyObject)
	})
	t.Run("bob may not make a disk from a vault image, and learns not its size", func(t *testing.T) {
		msg := deniedAs(t, "bob", "IMG-V6", disk("bob-disk"))
		if strings.Contains(msg, "10Gi") || strings.Contains(msg, "10737418240") {
			t.Errorf("message %q names the image's size", msg)
		}
	})
	t.Run("carol's disk from the vault image is checked against its size", func(t *testing.T) {
		deniedAs(t, "carol", "PVC-V3", disk("carol-small-disk"))
		big := disk("carol-disk")
		_ = unstructured.SetNestedField(big.Object, "10Gi", "spec", "resources", "requests", "storage")
		expectCreatedAs(t, "carol", big, anyObject)
	})
	t.Run("the answers were SubjectAccessReviews, counted by result", func(t *testing.T) {
		m := scrape(t, suite.webhook.probes+"/metrics")
		for _, result := range []string{"allowed", "denied"} {
			if n := sum(m, "storage_webhook_access_reviews_total", func(l map[string]string) bool { return l["result"] == result }); n < 1 {
				t.Errorf("storage_webhook_access_reviews_total{result=%q} = %v, want at least 1", result, n)
			}
		}
	})
}
