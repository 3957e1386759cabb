package admit

import (
	"context"
	"errors"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Access answers whether a user may get one object (IMG-V6): in a cluster the API server
// says so through a SubjectAccessReview (package authz), in a file view the view's RBAC
// objects do. It is the one thing a rule may ask outside the watch caches; an error means
// the answer is unknown, and the rule refuses with a retryable denial (Result.DenyRetry).
type Access interface {
	MayGet(ctx context.Context, user authenticationv1.UserInfo, resource schema.GroupResource, namespace, name string) (bool, error)
}

// ErrCannotTell is an Access's answer when it has nothing to judge by: a file view that
// holds no RBAC objects at all (`check` on manifests without Roles). The rule then neither
// denies nor refuses: it warns that access was not checked.
var ErrCannotTell = errors.New("the cluster view holds no Roles, ClusterRoles or bindings to tell who may read what")

// Context is the request's context: it ends when the API server stops waiting.
func (r *Request) Context() context.Context {
	if r.Ctx == nil {
		return context.Background()
	}
	return r.Ctx
}

// Granted answers every question yes, asking nothing: for IMG-V6 when it is not evaluated
// (Off, or an exception skips it: webhook.Hook.Run), and for the audit, which judges
// objects already stored whose author is unknown.
type Granted struct{}

// MayGet implements Access.
func (Granted) MayGet(context.Context, authenticationv1.UserInfo, schema.GroupResource, string, string) (bool, error) {
	return true, nil
}
