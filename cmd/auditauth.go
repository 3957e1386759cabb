package cmd

import (
	"context"
	"net/http"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hcistorage/storage-webhook/authz"
)

// reviewTimeout bounds each of the two reviews a guarded request asks the API server for.
const reviewTimeout = 10 * time.Second

// apiGuard puts endpoints behind the API server's authentication and authorization, the two
// reviews controller-runtime's metrics filters make: a TokenReview of the caller's bearer
// token, then a SubjectAccessReview of the request's verb (get) on the request's path as a
// non-resource URL (/audit, /metrics) for the user it names. /audit's findings name objects
// in every namespace and /metrics shows what the service sees, so an anonymous or
// unauthorized caller gets neither. The reviews are made here with client-go rather than
// through controller-runtime's filters package, which pulls k8s.io/apiserver's
// authentication stack into the binary (72.1 MB instead of 33.9 MB, idle RSS 44 instead of
// 28 MiB; BENCHMARKS.md §6) for endpoints Prometheus calls twice a minute; there is no
// cache, so a revoked token or role is refused at once (two small API calls per scrape).
// One guard serves every guarded path, so the logic lives in one place.
type apiGuard struct {
	kube kubernetes.Interface // nil: a file view, no API server to ask
}

// newAPIGuard returns the guard for cfg; a nil cfg (a file view) refuses every caller.
func newAPIGuard(cfg *rest.Config) (*apiGuard, error) {
	if cfg == nil {
		return &apiGuard{}, nil
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &apiGuard{kube: kube}, nil
}

// wrap answers only callers the API server authenticates and authorizes for the request's
// verb and path; role names the ClusterRole the 403 tells the caller to bind.
func (g *apiGuard) wrap(h http.Handler, role string) http.Handler {
	if g.kube == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, r.URL.Path+" needs an API server to authenticate callers, and this server reads files: run storage-webhook audit --cluster PATH", http.StatusForbidden)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			http.Error(w, "Unauthorized: send a bearer token the API server accepts", http.StatusUnauthorized)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), reviewTimeout)
		defer cancel()
		tr, err := g.kube.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			http.Error(w, "authentication failed: the token review did not complete", http.StatusInternalServerError)
			return
		}
		if !tr.Status.Authenticated {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		u := tr.Status.User
		sar, err := g.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: authz.Extra(u.Extra),
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: r.URL.Path, Verb: strings.ToLower(r.Method)},
		}}, metav1.CreateOptions{})
		if err != nil {
			http.Error(w, "authorization failed: the subject access review did not complete", http.StatusInternalServerError)
			return
		}
		if !sar.Status.Allowed {
			http.Error(w, "Forbidden: "+u.Username+" may not "+strings.ToLower(r.Method)+" "+r.URL.Path+" (bind ClusterRole "+role+")", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
