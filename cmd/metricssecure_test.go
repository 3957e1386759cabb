package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// fakeAuthAPIServer answers the two reviews the guard makes, as an API server would:
// TokenReview authenticates the token "reader" as system:serviceaccount:monitoring:reader
// and "nobody" as system:serviceaccount:monitoring:nobody, and no other token;
// SubjectAccessReview allows get on /metrics and /audit to the reader only. Everything else
// (the informers' lists and watches) is 404. It records every SubjectAccessReview.
type fakeAuthAPIServer struct {
	*httptest.Server
	mu   sync.Mutex
	sars []authorizationv1.SubjectAccessReviewSpec
}

func newFakeAuthAPIServer(t *testing.T) *fakeAuthAPIServer {
	t.Helper()
	f := &fakeAuthAPIServer{}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/apis/authentication.k8s.io/v1/tokenreviews":
			var tr authenticationv1.TokenReview
			if err := decodeReview(r, &tr); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			tr.APIVersion, tr.Kind = "authentication.k8s.io/v1", "TokenReview"
			switch tr.Spec.Token {
			case "reader", "nobody":
				tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{
					Username: "system:serviceaccount:monitoring:" + tr.Spec.Token, UID: "uid-" + tr.Spec.Token,
					Groups: []string{"system:serviceaccounts", "system:authenticated"},
				}}
			default:
				tr.Status = authenticationv1.TokenReviewStatus{Authenticated: false, Error: "invalid bearer token"}
			}
			_ = json.NewEncoder(w).Encode(&tr)
		case r.Method == http.MethodPost && r.URL.Path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
			var sar authorizationv1.SubjectAccessReview
			if err := decodeReview(r, &sar); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			f.mu.Lock()
			f.sars = append(f.sars, sar.Spec)
			f.mu.Unlock()
			sar.APIVersion, sar.Kind = "authorization.k8s.io/v1", "SubjectAccessReview"
			na := sar.Spec.NonResourceAttributes
			sar.Status.Allowed = sar.Spec.User == "system:serviceaccount:monitoring:reader" && na != nil && na.Verb == "get" && (na.Path == "/metrics" || na.Path == "/audit")
			_ = json.NewEncoder(w).Encode(&sar)
		default:
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// decodeReview reads a review as client-go sends it (protobuf for built-in types, or JSON).
func decodeReview(r *http.Request, into runtime.Object) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	_, _, err = scheme.Codecs.UniversalDeserializer().Decode(body, nil, into)
	return err
}

// kubeconfig writes a kubeconfig for the fake API server into dir.
func (f *fakeAuthAPIServer) kubeconfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: '%s', insecure-skip-tls-verify: true}}]\n"+
		"users: [{name: u, user: {token: webhook}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n", f.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeMetricsSecure: with --metrics-secure, /metrics and /audit on the metrics
// listener are HTTPS with the webhooks' serving certificate and answer only a caller the API
// server authenticates (TokenReview) and authorizes for get on that path
// (SubjectAccessReview); plain HTTP to that port gets no metrics; /healthz and /readyz are
// plain HTTP on --probes-listen, with no token.
func TestServeMetricsSecure(t *testing.T) {
	api := newFakeAuthAPIServer(t)
	ts := startServe(t, "--kubeconfig", api.kubeconfig(t, t.TempDir()), "--metrics-secure", "--probes-listen", "127.0.0.1:0")
	get := func(url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/metrics", "/audit"} {
		for _, tc := range []struct {
			name, token string
			code        int
			body        string
		}{
			{"no token", "", http.StatusUnauthorized, "Unauthorized"},
			{"a token the API server rejects", "forged", http.StatusUnauthorized, "Unauthorized"},
			{"authenticated, not authorized", "nobody", http.StatusForbidden, "storage-webhook-metrics-reader"},
			{"authorized", "reader", http.StatusOK, ""},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				code, body := get("https://"+ts.probe+path, tc.token)
				if path == "/audit" && tc.code == http.StatusOK {
					// Authorized; the fake API server serves no lists, so the caches never
					// sync and the audit answers 503, not an answer from empty caches.
					if code != http.StatusServiceUnavailable {
						t.Errorf("%d %q, want 503 (authorized, caches not synced)", code, body)
					}
					return
				}
				if code != tc.code || !strings.Contains(body, tc.body) {
					t.Errorf("%d %q, want %d containing %q", code, body, tc.code, tc.body)
				}
				if tc.code == http.StatusOK && !strings.Contains(body, "storage_webhook_serving_certificate_expiry_timestamp_seconds") {
					t.Errorf("authorized /metrics is not Prometheus text: %.200q", body)
				}
				if tc.code != http.StatusOK && strings.Contains(body, "storage_webhook_") {
					t.Errorf("a refused caller got metrics: %.200q", body)
				}
			})
		}
	}
	t.Run("the reviews name the caller, the verb and the path", func(t *testing.T) {
		api.mu.Lock()
		defer api.mu.Unlock()
		seen := map[string]bool{}
		for _, s := range api.sars {
			if s.NonResourceAttributes == nil || s.NonResourceAttributes.Verb != "get" || s.UID == "" || len(s.Groups) == 0 {
				t.Errorf("review %+v", s)
				continue
			}
			seen[s.User+" "+s.NonResourceAttributes.Path] = true
		}
		for _, want := range []string{"system:serviceaccount:monitoring:reader /metrics", "system:serviceaccount:monitoring:nobody /metrics", "system:serviceaccount:monitoring:reader /audit"} {
			if !seen[want] {
				t.Errorf("no SubjectAccessReview for %s; saw %v", want, seen)
			}
		}
	})
	t.Run("plain HTTP to the metrics port gets no metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + ts.probe + "/metrics")
		if err != nil {
			return // refused: fine
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS server") {
			t.Errorf("plain HTTP: %d %.200q, want Go's 400 for an HTTP request to an HTTPS server", resp.StatusCode, b)
		}
	})
	t.Run("probes are plain HTTP on --probes-listen, without a token", func(t *testing.T) {
		resp, err := http.Get("http://" + ts.plainProbes + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz = %d, want 200", resp.StatusCode)
		}
		resp, err = http.Get("http://" + ts.plainProbes + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The fake API server serves no lists: not ready, and saying why (e2e's
		// TestMetricsSecure sees 200 against a real API server).
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "not synced") {
			t.Errorf("/readyz = %d %q, want 503 naming the caches", resp.StatusCode, b)
		}
		for _, path := range []string{"/metrics", "/audit"} {
			resp, err = http.Get("http://" + ts.plainProbes + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s on the probes port = %d, want 404", path, resp.StatusCode)
			}
		}
	})
	t.Run("the webhook port still guards /audit", func(t *testing.T) {
		if code, _ := get("https://"+ts.webhook+"/audit", ""); code != http.StatusUnauthorized {
			t.Errorf("anonymous /audit on the webhook port = %d, want 401", code)
		}
		if code, body := get("https://"+ts.webhook+"/audit", "nobody"); code != http.StatusForbidden || !strings.Contains(body, "storage-webhook-audit-reader") {
			t.Errorf("/audit on the webhook port = %d %q, want 403 naming storage-webhook-audit-reader", code, body)
		}
	})
}

// TestServeMetricsSecureUsage: --metrics-secure needs an API server; with --cluster files it
// is a one-line usage error (exit 2), also through the environment.
func TestServeMetricsSecureUsage(t *testing.T) {
	code, _, errOut := run(t, "", "serve", "--cluster", "../testdata/cluster", "--metrics-secure", "--self-signed")
	if code != 2 || !strings.Contains(errOut, "--metrics-secure needs an API server") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("exit %d %q, want 2 and one line", code, errOut)
	}
	t.Setenv("STORAGE_WEBHOOK_METRICS_SECURE", "true")
	if code, _, errOut := run(t, "", "serve", "--cluster", "../testdata/cluster", "--self-signed"); code != 2 || !strings.Contains(errOut, "--metrics-secure") {
		t.Errorf("through the environment: exit %d %q, want 2", code, errOut)
	}
}
