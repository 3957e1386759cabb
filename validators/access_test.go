package validators

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/providers"
)

// access is an admit.Access that gives one answer and records the questions.
type access struct {
	allowed bool
	err     error
	asked   []string
}

func (a *access) MayGet(_ context.Context, user authenticationv1.UserInfo, r schema.GroupResource, ns, name string) (bool, error) {
	a.asked = append(a.asked, user.Username+" get "+r.String()+" "+ns+"/"+name)
	return a.allowed, a.err
}

// TestImageAccessNeverAllowsWhatItCouldNotAsk: IMG-V6 on an export and on a PVC's image
// reference to another namespace, for each answer the authorizer can give. An error, a
// timeout or no authorizer is a retryable denial, never an allow; a same-namespace
// reference asks nothing (the audit's answer: audit.TestAuditAsksNoOneWhoMayRead).
func TestImageAccessNeverAllowsWhatItCouldNotAsk(t *testing.T) {
	view, err := cluster.LoadFiles("../testdata/cluster")
	if err != nil {
		t.Fatal(err)
	}
	export, _ := json.Marshal(map[string]any{
		"apiVersion": "harvesterhci.io/v1beta1", "kind": "VirtualMachineImage",
		"metadata": map[string]any{"name": "img", "namespace": "default"},
		"spec":     map[string]any{"sourceType": "export-from-volume", "pvcNamespace": "vault", "pvcName": "secrets", "backend": "cdi", "targetStorageClassName": "rbd-fast"},
	})
	pvc := func(ref string) []byte {
		b, _ := json.Marshal(map[string]any{
			"apiVersion": "v1", "kind": "PersistentVolumeClaim",
			"metadata": map[string]any{"name": "disk", "namespace": "default", "annotations": map[string]string{"harvesterhci.io/imageId": ref}},
			"spec":     map[string]any{"resources": map[string]any{"requests": map[string]string{"storage": "100Gi"}}},
		})
		return b
	}
	timeout := context.DeadlineExceeded
	for _, tc := range []struct {
		name      string
		access    *access // nil: no authorizer
		user      string
		rule      func(*admit.Env, *admit.Request) admit.Result
		object    []byte
		allowed   bool
		retryable bool
		says      string
		asked     int
	}{
		{"export, user may get the PVC", &access{allowed: true}, "bob", Image, export, false, false, "source PVC vault/secrets does not exist", 1},
		{"export, user may not get the PVC: nothing about it is said", &access{}, "bob", Image, export, false, false, `user "bob" may not get PersistentVolumeClaim vault/secrets, so it cannot export it`, 1},
		{"export, the review failed", &access{err: errors.New("connection refused")}, "bob", Image, export, false, true, "could not check whether user \"bob\" may get PersistentVolumeClaim vault/secrets (connection refused): try again", 1},
		{"export, the review timed out", &access{err: timeout}, "bob", Image, export, false, true, "context deadline exceeded", 1},
		{"export, no authorizer", nil, "bob", Image, export, false, true, "no authorizer is configured", 0},
		{"image reference to another namespace, may get", &access{allowed: true}, "bob", PVC, pvc("images/nfs-image-00"), true, false, "not known yet", 1},
		{"image reference to another namespace, may not", &access{}, "bob", PVC, pvc("images/nfs-image-00"), false, false, "may not get VirtualMachineImage images/nfs-image-00", 1},
		{"image reference to another namespace, review failed", &access{err: timeout}, "bob", PVC, pvc("images/nfs-image-00"), false, true, "try again", 1},
		{"image reference to the request's namespace asks nothing", &access{err: timeout}, "bob", PVC, pvc("default/image-debian12"), true, false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &admit.Env{View: view, Providers: providers.NewStore(nil)}
			if tc.access != nil {
				env.Access = tc.access
			}
			req := &admit.Request{Operation: admit.Create, Namespace: "default", Name: "x", Object: tc.object,
				User: authenticationv1.UserInfo{Username: tc.user}}
			res := tc.rule(env, req)
			got := res.Message() + strings.Join(res.WarningTexts(), "")
			if res.Allowed() != tc.allowed || res.Retryable() != tc.retryable || !strings.Contains(got, tc.says) {
				t.Errorf("allowed %v retryable %v %q; want allowed %v retryable %v saying %q", res.Allowed(), res.Retryable(), got, tc.allowed, tc.retryable, tc.says)
			}
			if tc.access != nil && len(tc.access.asked) != tc.asked {
				t.Errorf("asked %q, want %d question(s)", tc.access.asked, tc.asked)
			}
		})
	}
}
