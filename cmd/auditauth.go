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
)

// auditReviewTimeout bounds each of the two reviews /audit asks the API server for.
const auditReviewTimeout = 10 * time.Second

// guardedAudit puts /audit behind the API server's authentication and authorization, the
// two reviews controller-runtime's metrics filters make: a TokenReview of the caller's
// bearer token, then a SubjectAccessReview of get on the non-resource URL /audit for the
// user it names. Findings name objects in every namespace, so an anonymous or unauthorized
// caller never gets them. The reviews are made here with client-go rather than through
// controller-runtime's filters package, which pulls k8s.io/apiserver's authentication stack
// into the binary (72.1 MB instead of 33.9 MB, idle RSS 44 instead of 28 MiB; BENCHMARKS.md §6) for one rarely called endpoint; there
// is no cache, so a revoked token or role is refused at once. With a file view there is no
// API server to ask, and /audit refuses every caller.
func guardedAudit(cfg *rest.Config, h http.Handler) (http.Handler, error) {
	if cfg == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "/audit needs an API server to authenticate callers, and this server reads files: run storage-webhook audit --cluster PATH", http.StatusForbidden)
		}), nil
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			http.Error(w, "Unauthorized: send a bearer token the API server accepts", http.StatusUnauthorized)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), auditReviewTimeout)
		defer cancel()
		tr, err := kube.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			http.Error(w, "authentication failed: the token review did not complete", http.StatusInternalServerError)
			return
		}
		if !tr.Status.Authenticated {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		u := tr.Status.User
		extra := make(map[string]authorizationv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			extra[k] = authorizationv1.ExtraValue(v)
		}
		sar, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: r.URL.Path, Verb: strings.ToLower(r.Method)},
		}}, metav1.CreateOptions{})
		if err != nil {
			http.Error(w, "authorization failed: the subject access review did not complete", http.StatusInternalServerError)
			return
		}
		if !sar.Status.Allowed {
			http.Error(w, "Forbidden: "+u.Username+" may not get /audit (bind ClusterRole storage-webhook-audit-reader)", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}
