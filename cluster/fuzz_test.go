package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hcistorage/storage-webhook/cluster"
)

// FuzzDecodeManifests decodes YAML or JSON streams (seeds in testdata/fuzz/FuzzDecodeManifests:
// the fixtures' and examples' cluster views and manifests, lists, empty documents and small
// alias bombs). DecodeManifests never panics and returns only objects with apiVersion, kind
// and name; a view built from them is refused or answers every lookup without panicking.
func FuzzDecodeManifests(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzDeadline(fuzzTimeout, data)()
		objs, err := cluster.DecodeManifests(data)
		if err != nil {
			return
		}
		for i, u := range objs {
			if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
				t.Fatalf("object %d lacks apiVersion, kind or name: %v", i, u.Object)
			}
		}
		view, err := cluster.NewFiles(objs)
		if err != nil {
			return
		}
		view.DefaultStorageClass()
		view.ImagesUsingStorageClass("")
		view.RunningPodsUsingPVC("", "")
		for _, u := range objs {
			ns, name := u.GetNamespace(), u.GetName()
			if got, ok := view.Object(cluster.ObjectKey{Kind: u.GetKind(), Namespace: ns, Name: name}); !ok || got != u {
				t.Fatalf("view does not hold %s %s/%s as read", u.GetKind(), ns, name)
			}
			view.StorageClass(name)
			view.PVC(ns, name)
			view.Image(ns, name)
			view.RunningPodsUsingPVC(ns, name)
			view.ImagesUsingStorageClass(name)
			view.VirtualMachine(ns, name)
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
