package admit_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hcistorage/storage-webhook/admit"
)

// FuzzDecodeQuantity decodes a PVC whose spec.resources.requests.storage is the fuzzed
// string, as the rules do (seeds in testdata/fuzz/FuzzDecodeQuantity). A request that
// decodes is a quantity resource.ParseQuantity accepts, with the same value; one that does
// not is a decode error that names the field. Like the API server (Quantity.UnmarshalJSON),
// Decode ignores white space around the quantity, so the string is trimmed before
// ParseQuantity.
func FuzzDecodeQuantity(f *testing.F) {
	f.Fuzz(func(t *testing.T, storage string) {
		defer fuzzDeadline(fuzzTimeout, storage)()
		doc, err := json.Marshal(map[string]any{
			"apiVersion": "v1",
			"kind":       "PersistentVolumeClaim",
			"metadata":   map[string]any{"name": "disk", "namespace": "default"},
			"spec": map[string]any{
				"accessModes": []string{"ReadWriteOnce"},
				"resources":   map[string]any{"requests": map[string]any{"storage": storage}},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		var pvc corev1.PersistentVolumeClaim
		if err := admit.Decode(doc, &pvc); err != nil {
			if !strings.Contains(err.Error(), "spec.resources.requests.storage") {
				t.Fatalf("storage %q: the decode error does not name spec.resources.requests.storage: %v", storage, err)
			}
			return
		}
		want, err := resource.ParseQuantity(strings.TrimSpace(storage))
		if err != nil {
			t.Fatalf("storage %q decodes, but ParseQuantity refuses it: %v", storage, err)
		}
		got, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		if !ok {
			t.Fatalf("storage %q decodes to no storage request", storage)
		}
		if got.Cmp(want) != 0 {
			t.Fatalf("storage %q decodes to %s, ParseQuantity gives %s", storage, got.String(), want.String())
		}
	})
}

// fuzzTimeout is how long one input may run, seed inputs under the race detector included.
const fuzzTimeout = 10 * time.Second

// fuzzDeadline makes one input that runs longer than d crash the fuzzing process, which
// then keeps the input as a crasher: Go's fuzzer does not notice a hang by itself (the
// first bug FuzzDecodeQuantity found was a quantity that took hours to parse).
func fuzzDeadline(d time.Duration, input any) (stop func() bool) {
	return time.AfterFunc(d, func() { panic(fmt.Sprintf("one input ran for over %v: %.200q", d, input)) }).Stop
}
