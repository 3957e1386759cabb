package authz

import (
	"context"
	"fmt"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hcistorage/storage-webhook/admit"
)

// RBAC answers IMG-V6 from the Roles, ClusterRoles and their bindings of a file view (`serve
// --cluster`, `check`, `review` and the tests), the way the API server's RBAC authorizer
// reads them for `get` on a named object: a ClusterRoleBinding grants its ClusterRole's
// rules everywhere, a RoleBinding its Role's or ClusterRole's rules in its namespace; the
// group system:masters may do anything. Not read: aggregationRule (list the rules in the
// ClusterRole itself) and every other authorizer a cluster may chain. A view with no RBAC
// objects at all cannot tell (admit.ErrCannotTell): it is a view of manifests, not of a
// cluster's authorization, and IMG-V6 warns instead of denying.
type RBAC struct {
	clusterRoles map[string][]rbacv1.PolicyRule
	roles        map[string][]rbacv1.PolicyRule // by "namespace/name"
	bindings     []binding
}

// binding is a RoleBinding (namespace set) or ClusterRoleBinding, with its role resolved
// when it is asked.
type binding struct {
	namespace string
	role      rbacv1.RoleRef
	subjects  []rbacv1.Subject
}

// NewRBAC reads the RBAC objects among objs; other kinds are skipped.
func NewRBAC(objs []*unstructured.Unstructured) (*RBAC, error) {
	a := &RBAC{clusterRoles: map[string][]rbacv1.PolicyRule{}, roles: map[string][]rbacv1.PolicyRule{}}
	for _, u := range objs {
		if u.GroupVersionKind().Group != rbacv1.GroupName {
			continue
		}
		var err error
		switch u.GetKind() {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			if err = from(u, &r); err == nil {
				a.clusterRoles[r.Name] = r.Rules
			}
		case "Role":
			var r rbacv1.Role
			if err = from(u, &r); err == nil {
				a.roles[r.Namespace+"/"+r.Name] = r.Rules
			}
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			if err = from(u, &b); err == nil {
				a.bindings = append(a.bindings, binding{role: b.RoleRef, subjects: b.Subjects})
			}
		case "RoleBinding":
			var b rbacv1.RoleBinding
			if err = from(u, &b); err == nil {
				a.bindings = append(a.bindings, binding{namespace: b.Namespace, role: b.RoleRef, subjects: b.Subjects})
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	return a, nil
}

func from(u *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)
}

// MayGet implements admit.Access.
func (a *RBAC) MayGet(_ context.Context, user authenticationv1.UserInfo, resource schema.GroupResource, namespace, name string) (bool, error) {
	if slices.Contains(user.Groups, "system:masters") {
		return true, nil
	}
	if len(a.bindings) == 0 && len(a.roles) == 0 && len(a.clusterRoles) == 0 {
		return false, admit.ErrCannotTell
	}
	for _, b := range a.bindings {
		if b.namespace != "" && b.namespace != namespace || !slices.ContainsFunc(b.subjects, func(s rbacv1.Subject) bool { return isSubject(s, b.namespace, user) }) {
			continue
		}
		rules := a.clusterRoles[b.role.Name]
		if b.role.Kind == "Role" {
			rules = a.roles[b.namespace+"/"+b.role.Name]
		}
		if slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool { return allowsGet(r, resource, name) }) {
			return true, nil
		}
	}
	return false, nil
}

// isSubject: a User by name, a Group the user is in, a ServiceAccount by its user name
// (its namespace defaults to a RoleBinding's own).
func isSubject(s rbacv1.Subject, bindingNamespace string, user authenticationv1.UserInfo) bool {
	switch s.Kind {
	case rbacv1.UserKind:
		return s.Name == user.Username
	case rbacv1.GroupKind:
		return slices.Contains(user.Groups, s.Name)
	case rbacv1.ServiceAccountKind:
		ns := s.Namespace
		if ns == "" {
			ns = bindingNamespace
		}
		return "system:serviceaccount:"+ns+":"+s.Name == user.Username // the API server's naming
	}
	return false
}

func allowsGet(r rbacv1.PolicyRule, resource schema.GroupResource, name string) bool {
	has := func(list []string, v string) bool {
		return slices.Contains(list, v) || slices.Contains(list, rbacv1.ResourceAll)
	}
	return has(r.Verbs, "get") && has(r.APIGroups, resource.Group) && has(r.Resources, resource.Resource) &&
		(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name))
}
