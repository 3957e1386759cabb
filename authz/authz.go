// Package authz answers IMG-V6's question, whether a request's user may get an object: in a
// cluster through the API server (SubjectAccess), in a file view from its RBAC objects
// (RBAC). Both implement admit.Access.
package authz

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/cache"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/utils/clock"
)

// Defaults of SubjectAccess, and of serve's --authorization-timeout and
// --authorization-cache-ttl. The timeout stays well inside the webhooks' 3 s timeoutSeconds,
// so a slow API server gets the retryable denial, not the failurePolicy. Ten seconds of
// cache means a revoked grant may still be honoured for ten seconds, as the API server's
// own webhook authorizer caches (its defaults are five minutes allowed, thirty seconds
// denied); it spares a VM with several disks from one image, and a controller's retries, a
// review each.
const (
	DefaultTimeout  = time.Second
	DefaultCacheTTL = 10 * time.Second
	// cacheSize bounds the remembered answers (a key is a user and an object); the least
	// recently used go first.
	cacheSize = 4096
)

// SubjectAccess asks the API server with a SubjectAccessReview for the request's user, groups,
// UID and extra, bounded by a timeout, and remembers each answer (never an error) for a
// while per user and object.
type SubjectAccess struct {
	reviews authorizationclient.SubjectAccessReviewInterface
	timeout time.Duration
	ttl     time.Duration
	answers *cache.LRUExpireCache
	// Observe, if set, counts each answer: result is allowed, denied or error, cached
	// whether it came from the cache.
	Observe func(result string, cached bool)
}

// NewSubjectAccess returns a SubjectAccess; timeout and ttl of 0 take the defaults, a ttl
// below 0 turns the cache off.
func NewSubjectAccess(reviews authorizationclient.SubjectAccessReviewInterface, timeout, ttl time.Duration) *SubjectAccess {
	return newSubjectAccess(reviews, timeout, ttl, clock.RealClock{})
}

// newSubjectAccess takes the clock of the cache too, for tests.
func newSubjectAccess(reviews authorizationclient.SubjectAccessReviewInterface, timeout, ttl time.Duration, clock cache.Clock) *SubjectAccess {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	return &SubjectAccess{reviews: reviews, timeout: timeout, ttl: ttl, answers: cache.NewLRUExpireCacheWithClock(cacheSize, clock)}
}

// MayGet implements admit.Access.
func (a *SubjectAccess) MayGet(ctx context.Context, user authenticationv1.UserInfo, resource schema.GroupResource, namespace, name string) (bool, error) {
	attrs := authorizationv1.ResourceAttributes{Verb: "get", Group: resource.Group, Resource: resource.Resource, Namespace: namespace, Name: name}
	key := cacheKey(user, &attrs)
	if a.ttl > 0 {
		if v, ok := a.answers.Get(key); ok {
			a.observe(v.(bool), nil, true)
			return v.(bool), nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: &attrs, User: user.Username, UID: user.UID, Groups: user.Groups, Extra: Extra(user.Extra),
	}}
	out, err := a.reviews.Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		a.observe(false, err, false)
		return false, fmt.Errorf("SubjectAccessReview: %w", err)
	}
	// Not allowed is no, even with an evaluationError: that is how the API server itself
	// treats the user's own requests, and RBAC reports one for every binding to a deleted
	// role, which would otherwise refuse retryably forever.
	if a.ttl > 0 {
		a.answers.Add(key, out.Status.Allowed, a.ttl)
	}
	a.observe(out.Status.Allowed, nil, false)
	return out.Status.Allowed, nil
}

func (a *SubjectAccess) observe(allowed bool, err error, cached bool) {
	if a.Observe == nil {
		return
	}
	result := "denied"
	switch {
	case err != nil:
		result = "error"
	case allowed:
		result = "allowed"
	}
	a.Observe(result, cached)
}

// Extra is an authenticated user's extra, as a SubjectAccessReview carries it.
func Extra(in map[string]authenticationv1.ExtraValue) map[string]authorizationv1.ExtraValue {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]authorizationv1.ExtraValue, len(in))
	for k, v := range in {
		out[k] = authorizationv1.ExtraValue(v)
	}
	return out
}

// cacheKey is the user (name, UID, groups and extra, in a fixed order) and the object asked
// about. Fields are separated by a NUL byte, which no user name, group or object name holds,
// and lists are preceded by their length.
func cacheKey(user authenticationv1.UserInfo, attrs *authorizationv1.ResourceAttributes) string {
	b := make([]byte, 0, 128)
	field := func(s string) { b = append(append(b, s...), 0) }
	count := func(n int) { b = append(strconv.AppendInt(b, int64(n), 10), 0) }
	field(user.Username)
	field(user.UID)
	groups := user.Groups
	if !slices.IsSorted(groups) {
		groups = slices.Sorted(slices.Values(groups))
	}
	count(len(groups))
	for _, g := range groups {
		field(g)
	}
	count(len(user.Extra))
	if len(user.Extra) > 0 {
		keys := slices.Sorted(maps.Keys(user.Extra))
		for _, k := range keys {
			field(k)
			count(len(user.Extra[k]))
			for _, v := range user.Extra[k] {
				field(v)
			}
		}
	}
	for _, f := range []string{attrs.Verb, attrs.Group, attrs.Resource, attrs.Namespace, attrs.Name} {
		field(f)
	}
	return string(b)
}
