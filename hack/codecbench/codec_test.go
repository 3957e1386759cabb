// Package codecbench measures the JSON decoders considered for issue 15 (BENCHMARKS.md §7)
// on the benchmark VM review: the review envelope, the VM object into a reduced VM type,
// and the VM's volumeClaimTemplates annotation into full PersistentVolumeClaims. It is a
// module of its own so that the decoders it compares, and only it, depend on them.
//
//	cd hack/codecbench && go test -run '^$' -bench . -benchmem
package codecbench

import (
	"bytes"
	stdjson "encoding/json"
	"os"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsoniter "github.com/json-iterator/go"
	segjson "github.com/segmentio/encoding/json"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
)

// virtualMachine is a VM reduced to what VM-V1 and VM-V2 read, as validators had it before
// issue 15 (full metadata and KubeVirt volume types).
type virtualMachine struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Template *struct {
			Spec struct {
				Volumes []kubevirtv1.Volume `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
		DataVolumeTemplates []kubevirtv1.DataVolumeTemplateSpec `json:"dataVolumeTemplates"`
	} `json:"spec"`
	Status struct {
		VolumeRequests []kubevirtv1.VirtualMachineVolumeRequest `json:"volumeRequests"`
	} `json:"status"`
}

// inputs are the compacted review, its object and the object's volumeClaimTemplates.
func inputs(b *testing.B) (review, object, templates []byte) {
	data, err := os.ReadFile("../../testdata/bench/vm-8-disks.json")
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := stdjson.Compact(&buf, data); err != nil {
		b.Fatal(err)
	}
	var r admissionv1.AdmissionReview
	if err := stdjson.Unmarshal(buf.Bytes(), &r); err != nil {
		b.Fatal(err)
	}
	var vm virtualMachine
	if err := stdjson.Unmarshal(r.Request.Object.Raw, &vm); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes(), r.Request.Object.Raw, []byte(vm.Annotations["harvesterhci.io/volumeClaimTemplates"])
}

// decoders, each set to read as the API server does where it can: case-sensitive names,
// unknown fields ignored. goccy/go-json has no case-sensitive mode and is not measured.
var decoders = []struct {
	name   string
	decode func([]byte, any) error
}{
	{"sigs.k8s.io-json", sigsjson.UnmarshalCaseSensitivePreserveInts},
	{"encoding-json", stdjson.Unmarshal}, // case-insensitive: for scale only
	{"go-json-experiment-json", func(raw []byte, v any) error {
		return jsonv2.Unmarshal(raw, v, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	}},
	{"segmentio-encoding-json", func(raw []byte, v any) error {
		_, err := segjson.Parse(raw, v, segjson.DontMatchCaseInsensitiveStructFields)
		return err
	}},
	{"json-iterator", jsoniter.Config{CaseSensitive: true, ValidateJsonRawMessage: true}.Froze().Unmarshal},
}

func BenchmarkDecode(b *testing.B) {
	review, object, templates := inputs(b)
	cases := []struct {
		name string
		raw  []byte
		into func() any
	}{
		{"review", review, func() any { return new(admissionv1.AdmissionReview) }},
		{"vm", object, func() any { return new(virtualMachine) }},
		{"templates", templates, func() any { return new([]corev1.PersistentVolumeClaim) }},
	}
	for _, c := range cases {
		for _, d := range decoders {
			b.Run(c.name+"/"+d.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.raw)))
				for b.Loop() {
					if err := d.decode(c.raw, c.into()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
