package admit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// decodeTargets are the Go types the rules decode objects into, or the upstream types their
// reduced types are cut from (same field types), plus untyped values, which the reference
// decoder reads with integers kept as int64.
var decodeTargets = []func() any{
	func() any { return new(corev1.PersistentVolumeClaim) },
	func() any { return new(storagev1.StorageClass) },
	func() any { return new(cdiv1.DataVolume) },
	func() any { return new(cdiv1.StorageProfile) },
	func() any { return new(harvester.VirtualMachineImage) },
	func() any { return new(kubevirtv1.VirtualMachine) },
	func() any { return new(struct{ Spec any }) },
	func() any { return new([]any) },
}

// FuzzDecodeMatchesReference: whatever the fast decoder (encoding/json/v2) accepts, the
// reference decoder (sigs.k8s.io/json, the API server's) accepts too, with the same Go
// value, for every type the rules decode into. That is what lets admit.Decode take the fast
// decoder's answer without asking the reference one. Inputs the fast decoder refuses go to
// the reference decoder in admit.Decode, so they need no check here. Seeds: every object of
// the admission fixtures and bad-input bodies, and the odd JSON below.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, seed := range []string{
		`{"metadata":{"name":"a","name":"b"}}`,                        // a repeated name: the last wins
		`{"metadata":{"labels":{"a":"1"},"labels":{"b":"2"}}}`,        // repeated objects merge
		"{\"metadata\":{\"name\":\"a\xff\xfe\"}}",                     // invalid UTF-8
		`{"metadata":{"name":"\ud800"}}`,                              // a lone surrogate escape
		`{"Metadata":{"Name":"a"}}`,                                   // names are case-sensitive
		`{"spec":{"resources":{"requests":{"storage":1e3}}}}`,         // a quantity as a number
		`{"spec":{"claimPropertySets":[{"x":12345678901234567890}]}}`, // an integer beyond int64 in an untyped value
		`{"Spec":{"n":9007199254740993,"f":1.5,"e":1e400}}`,           // integers beyond float64's precision, overflow
		`[1,2.0,-0,null,true,"s",{"a":[]}]`,
		`{"metadata":null,"spec":null}`,
	} {
		f.Add([]byte(seed))
	}
	for _, obj := range fixtureObjects(f) {
		f.Add(obj)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, target := range decodeTargets {
			fast, ref := target(), target()
			if admit.FastUnmarshal(raw, fast) != nil {
				continue
			}
			if err := admit.ReferenceUnmarshal(raw, ref); err != nil {
				t.Fatalf("%T: the fast decoder accepts what the reference refuses (%v): %q", fast, err, raw)
			}
			if !reflect.DeepEqual(fast, ref) {
				t.Fatalf("%T: the decoders disagree on %q:\nfast:      %#v\nreference: %#v", fast, raw, fast, ref)
			}
		}
	})
}

// fixtureObjects are the objects and old objects of the admission fixtures and the bodies of
// the bad-input table.
func fixtureObjects(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, glob := range []string{"../testdata/admission/*/*.json", "../testdata/bench/*.json", "../testdata/badinput/*.json"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			tb.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				tb.Fatal(err)
			}
			type request struct{ Object, OldObject json.RawMessage }
			var doc struct {
				Request request                   // a review
				Review  struct{ Request request } // an admission fixture
			}
			if json.Unmarshal(data, &doc) != nil || strings.HasPrefix(filepath.Base(file), "body-") {
				out = append(out, data)
				continue
			}
			for _, obj := range [][]byte{doc.Request.Object, doc.Request.OldObject, doc.Review.Request.Object, doc.Review.Request.OldObject} {
				if len(obj) > 0 {
					var buf bytes.Buffer
					if json.Compact(&buf, obj) == nil {
						out = append(out, buf.Bytes())
					}
				}
			}
		}
	}
	if len(out) < 300 {
		tb.Fatalf("%d fixture objects, want at least 300", len(out))
	}
	return out
}

// TestFastDecoderReadsTheFixtures: every fixture object the reference decoder reads, the
// fast decoder reads too, for every target type, so that no real object takes Decode's
// slower path (both decoders) unless it is refused.
func TestFastDecoderReadsTheFixtures(t *testing.T) {
	for _, raw := range fixtureObjects(t) {
		for _, target := range decodeTargets {
			fast, ref := target(), target()
			if admit.ReferenceUnmarshal(raw, ref) != nil {
				continue
			}
			if err := admit.FastUnmarshal(raw, fast); err != nil {
				t.Errorf("%T: only the reference decoder reads %.300s: %v", fast, raw, err)
			}
		}
	}
}
