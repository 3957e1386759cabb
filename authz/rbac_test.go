package authz

import (
	"context"
	"errors"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/cluster"
)

// TestRBACReadsBindingsLikeTheAPIServer: who may get what, from the Roles, ClusterRoles
// and bindings of testdata/rbac.yaml.
func TestRBACReadsBindingsLikeTheAPIServer(t *testing.T) {
	objs, err := cluster.ReadManifests("testdata/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewRBAC(objs)
	if err != nil {
		t.Fatal(err)
	}
	images := schema.GroupResource{Group: "harvesterhci.io", Resource: "virtualmachineimages"}
	user := func(name string, groups ...string) authenticationv1.UserInfo {
		return authenticationv1.UserInfo{Username: name, Groups: groups}
	}
	for _, tc := range []struct {
		name     string
		user     authenticationv1.UserInfo
		resource schema.GroupResource
		ns, obj  string
		want     bool
	}{
		{"a group of a ClusterRoleBinding, any namespace", user("erin", "auditors"), pvcs, "vault", "x", true},
		{"a User of a RoleBinding to a ClusterRole, in its namespace", user("carol"), pvcs, "team-a", "x", true},
		{"the same RoleBinding grants nothing elsewhere", user("carol"), pvcs, "vault", "x", false},
		{"a ServiceAccount subject defaults to the binding's namespace", user("system:serviceaccount:team-a:exporter"), pvcs, "team-a", "x", true},
		{"a service account of another namespace is not that subject", user("system:serviceaccount:team-b:exporter"), pvcs, "team-a", "x", false},
		{"resourceNames: the named image", user("carol"), images, "images", "golden", true},
		{"resourceNames: not another image", user("carol"), images, "images", "other", false},
		{"list is not get", user("carol"), images, "images", "", false},
		{"the rule's resource only: PVC reader may not get images", user("erin", "auditors"), images, "images", "golden", false},
		{"wildcards", user("system:serviceaccount:kube-system:ops"), images, "anywhere", "any", true},
		{"system:masters may do anything", user("root", "system:masters"), images, "x", "y", true},
		{"a binding to a missing role grants nothing", user("dave"), pvcs, "team-a", "x", false},
		{"nobody else", user("mallory", "system:authenticated"), pvcs, "team-a", "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.MayGet(context.Background(), tc.user, tc.resource, tc.ns, tc.obj)
			if err != nil || got != tc.want {
				t.Errorf("MayGet = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestRBACRefusesBrokenObjects: an RBAC object that does not convert is an error that names it.
func TestRBACRefusesBrokenObjects(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
		"metadata": map[string]any{"name": "broken", "namespace": "x"},
		"rules":    "not a list",
	}}
	if _, err := NewRBAC([]*unstructured.Unstructured{u}); err == nil || !strings.Contains(err.Error(), "Role x/broken") {
		t.Fatalf("err = %v, want one naming Role x/broken", err)
	}
}

// TestRBACWithoutObjectsCannotTell: a view with no RBAC objects at all is a view of
// manifests, not of a cluster's authorization: it answers admit.ErrCannotTell (IMG-V6 then
// warns), but for system:masters, who may do anything.
func TestRBACWithoutObjectsCannotTell(t *testing.T) {
	a, err := NewRBAC(nil)
	if err != nil {
		t.Fatal(err)
	}
	pvcs := schema.GroupResource{Resource: "persistentvolumeclaims"}
	if ok, err := a.MayGet(context.Background(), authenticationv1.UserInfo{Username: "bob"}, pvcs, "team-b", "data"); ok || !errors.Is(err, admit.ErrCannotTell) {
		t.Errorf("bob: %v, %v; want admit.ErrCannotTell", ok, err)
	}
	if ok, err := a.MayGet(context.Background(), authenticationv1.UserInfo{Username: "root", Groups: []string{"system:masters"}}, pvcs, "team-b", "data"); !ok || err != nil {
		t.Errorf("system:masters: %v, %v", ok, err)
	}
}
