package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// sarServer is an API server endpoint for SubjectAccessReviews on 127.0.0.1: it records
// every review and allows the users of allowed; with hang set it answers nothing until the
// client gives up; with fail set it answers 500.
type sarServer struct {
	mu      sync.Mutex
	reviews []authorizationv1.SubjectAccessReviewSpec
	allowed []string
	hang    bool
	fail    bool
}

func (s *sarServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/apis/authorization.k8s.io/v1/subjectaccessreviews" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	var sar authorizationv1.SubjectAccessReview
	if err := json.NewDecoder(r.Body).Decode(&sar); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.reviews = append(s.reviews, sar.Spec)
	hang, fail := s.hang, s.fail
	sar.Status.Allowed = slices.Contains(s.allowed, sar.Spec.User)
	s.mu.Unlock()
	switch {
	case hang:
		<-r.Context().Done()
		return
	case fail:
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":500}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&sar)
}

func (s *sarServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reviews)
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func newTestAccess(t *testing.T, srv *sarServer, timeout, ttl time.Duration, clock *fakeClock) *SubjectAccess {
	t.Helper()
	ts := httptest.NewServer(srv) // 127.0.0.1
	t.Cleanup(ts.Close)
	kube, err := kubernetes.NewForConfig(&rest.Config{Host: ts.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	if clock == nil {
		return NewSubjectAccess(kube.AuthorizationV1().SubjectAccessReviews(), timeout, ttl)
	}
	return newSubjectAccess(kube.AuthorizationV1().SubjectAccessReviews(), timeout, ttl, clock)
}

var (
	pvcs  = schema.GroupResource{Resource: "persistentvolumeclaims"}
	alice = authenticationv1.UserInfo{Username: "alice", UID: "u-1", Groups: []string{"team-a", "system:authenticated"},
		Extra: map[string]authenticationv1.ExtraValue{"scopes": {"read"}}}
	bob = authenticationv1.UserInfo{Username: "bob", Groups: []string{"system:authenticated"}}
)

// TestSubjectAccessAsksForTheRequestsUserAndObject: the review carries the user's name, UID,
// groups and extra, and get on exactly the object; the answer is the API server's.
func TestSubjectAccessAsksForTheRequestsUserAndObject(t *testing.T) {
	srv := &sarServer{allowed: []string{"alice"}}
	a := newTestAccess(t, srv, 0, -1, nil)
	for _, tc := range []struct {
		user authenticationv1.UserInfo
		want bool
	}{{alice, true}, {bob, false}} {
		ok, err := a.MayGet(context.Background(), tc.user, pvcs, "vault", "secrets")
		if err != nil || ok != tc.want {
			t.Errorf("%s: MayGet = %v, %v; want %v", tc.user.Username, ok, err, tc.want)
		}
	}
	got := srv.reviews[0]
	want := authorizationv1.ResourceAttributes{Verb: "get", Resource: "persistentvolumeclaims", Namespace: "vault", Name: "secrets"}
	if got.User != "alice" || got.UID != "u-1" || !slices.Equal(got.Groups, alice.Groups) ||
		!slices.Equal(got.Extra["scopes"], authorizationv1.ExtraValue{"read"}) || got.ResourceAttributes == nil || *got.ResourceAttributes != want {
		t.Errorf("review spec = %+v, attributes %+v", got, got.ResourceAttributes)
	}
}

// TestSubjectAccessCachesAnswersBriefly: the same user and object are asked once per TTL;
// another object, another group set or an expired answer asks again.
func TestSubjectAccessCachesAnswersBriefly(t *testing.T) {
	srv := &sarServer{allowed: []string{"alice"}}
	clock := &fakeClock{now: time.Unix(1000, 0)}
	a := newTestAccess(t, srv, 0, 10*time.Second, clock)
	observed := map[string]int{}
	a.Observe = func(result string, cached bool) {
		if cached {
			result += "/cached"
		}
		observed[result]++
	}
	ask := func(user authenticationv1.UserInfo, name string) {
		t.Helper()
		if _, err := a.MayGet(context.Background(), user, pvcs, "vault", name); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		what    string
		do      func()
		reviews int
	}{
		{"first question", func() { ask(alice, "a") }, 1},
		{"same question", func() { ask(alice, "a") }, 1},
		{"denied answers are cached too", func() { ask(bob, "a"); ask(bob, "a") }, 2},
		{"another object", func() { ask(alice, "b") }, 3},
		{"same name, other groups", func() {
			u := alice
			u.Groups = []string{"system:authenticated"}
			ask(u, "a")
		}, 4},
		{"9 s later, still cached", func() { clock.now = clock.now.Add(9 * time.Second); ask(alice, "a") }, 4},
		{"past the TTL, asked again", func() { clock.now = clock.now.Add(2 * time.Second); ask(alice, "a") }, 5},
	}
	for _, s := range steps {
		s.do()
		if got := srv.count(); got != s.reviews {
			t.Fatalf("%s: %d reviews, want %d", s.what, got, s.reviews)
		}
	}
	if observed["allowed"] != 4 || observed["allowed/cached"] != 2 || observed["denied"] != 1 || observed["denied/cached"] != 1 {
		t.Errorf("observed %v", observed)
	}
}

// TestSubjectAccessErrorsAreNotAnswers: a failing or hanging API server is an error (never
// an allow), within the timeout, and errors are not cached.
func TestSubjectAccessErrorsAreNotAnswers(t *testing.T) {
	srv := &sarServer{allowed: []string{"alice"}, hang: true}
	a := newTestAccess(t, srv, 200*time.Millisecond, 10*time.Second, nil)
	start := time.Now()
	ok, err := a.MayGet(context.Background(), alice, pvcs, "vault", "a")
	if ok || err == nil {
		t.Fatalf("hanging API server: MayGet = %v, %v; want an error", ok, err)
	}
	// Generous bound: the point is that it ends at the timeout, not at the client's default.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v, want about the 200ms timeout", d)
	}
	srv.mu.Lock()
	srv.hang, srv.fail = false, true
	srv.mu.Unlock()
	if ok, err = a.MayGet(context.Background(), alice, pvcs, "vault", "a"); ok || err == nil || !strings.Contains(err.Error(), "SubjectAccessReview") {
		t.Fatalf("failing API server: MayGet = %v, %v; want an error naming the review", ok, err)
	}
	srv.mu.Lock()
	srv.fail = false
	srv.mu.Unlock()
	if ok, err = a.MayGet(context.Background(), alice, pvcs, "vault", "a"); !ok || err != nil {
		t.Fatalf("recovered API server: MayGet = %v, %v; want allowed (errors are not cached)", ok, err)
	}
	if n := srv.count(); n < 3 {
		t.Errorf("%d reviews, want 3: errors must not be cached", n)
	}
}

// TestSubjectAccessStopsWithTheRequest: when the API server stops waiting for the admission
// review (its context ends), the review ends too.
func TestSubjectAccessStopsWithTheRequest(t *testing.T) {
	srv := &sarServer{hang: true}
	a := newTestAccess(t, srv, time.Minute, -1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := a.MayGet(ctx, alice, pvcs, "vault", "a"); ok || err == nil {
		t.Fatalf("MayGet = %v, %v; want an error", ok, err)
	}
}

// BenchmarkMayGet is one IMG-V6 answer from the cache, and one that takes a
// SubjectAccessReview round trip to an HTTP server on 127.0.0.1 (no TLS, no authorizer
// behind it: the client's share of a miss).
func BenchmarkMayGet(b *testing.B) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", time.Hour}, {"uncached-local-http", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := &sarServer{allowed: []string{"alice"}}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			kube, err := kubernetes.NewForConfig(&rest.Config{Host: ts.URL, QPS: -1, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
			if err != nil {
				b.Fatal(err)
			}
			a := NewSubjectAccess(kube.AuthorizationV1().SubjectAccessReviews(), 0, tc.ttl)
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := a.MayGet(context.Background(), alice, pvcs, "vault", "secrets"); !ok || err != nil {
					b.Fatal(ok, err)
				}
				srv.mu.Lock()
				srv.reviews = srv.reviews[:0]
				srv.mu.Unlock()
			}
		})
	}
}
