package rollout_test

import (
	"os"
	"testing"

	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/rollout"
	"github.com/hcistorage/storage-webhook/webhook"
)

// BenchmarkDecide is one decision under testdata/bench/rollout.yaml (20 overrides every rule
// inherits, 100 exceptions naming every rule, none matching): what each rule result of a
// review costs under that rollout (BENCHMARKS.md §10).
func BenchmarkDecide(b *testing.B) {
	data, err := os.ReadFile("../testdata/bench/rollout.yaml")
	if err != nil {
		b.Fatal(err)
	}
	f, err := providers.Parse(data, webhook.Catalogue())
	if err != nil {
		b.Fatal(err)
	}
	p := f.Policy()
	lookup := namespaceLabels{"default": {"kubernetes.io/metadata.name": "default"}}
	b.ReportAllocs()
	for b.Loop() {
		s := rollout.Subject{Kind: "PersistentVolumeClaim", Namespace: "default", Name: "image-debian12", User: "alice",
			Groups: []string{"system:authenticated"}, Namespaces: lookup}
		if d := p.Decide("PVC-V2", &s); d.Action != rollout.Enforce || d.Exception != "" {
			b.Fatal(d)
		}
	}
}
