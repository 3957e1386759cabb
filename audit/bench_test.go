package audit_test

import (
	"sync"
	"testing"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/audit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/hack/genview/gen"
	"github.com/hcistorage/storage-webhook/providers"
)

var (
	largeOnce sync.Once
	large     *cluster.Files
	largeErr  error
)

// largeView is hack/genview's full view (24,200 objects), loaded once.
func largeView(b testing.TB) *cluster.Files {
	b.Helper()
	largeOnce.Do(func() {
		v, err := gen.Generate(gen.Full())
		if err != nil {
			largeErr = err
			return
		}
		objs, err := v.Objects()
		if err != nil {
			largeErr = err
			return
		}
		large, largeErr = cluster.NewFiles(objs)
	})
	if largeErr != nil {
		b.Fatal(largeErr)
	}
	return large
}

// BenchmarkAuditLargeView: one full audit of the large view (SPEC goal: under 2 s). It
// reports the objects audited and the findings, and the heap the audit allocates.
func BenchmarkAuditLargeView(b *testing.B) {
	view := largeView(b)
	a := audit.New(&admit.Env{View: view, Providers: providers.NewStore(nil)})
	objects := 0
	for _, res := range a.Resources() {
		objects += len(view.List(res))
	}
	var findings int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		fs, errs := a.All(view)
		if len(errs) > 0 {
			b.Fatal(errs[0])
		}
		findings = len(fs)
	}
	b.ReportMetric(float64(objects), "objects/op")
	b.ReportMetric(float64(findings), "findings/op")
}

// BenchmarkReaudit is the work one informer event causes in serve: the dependents of the
// changed object (index lookups) and their audit. For each kind of event it reports the
// objects re-audited; the time follows them, not the 24,200 objects of the view.
func BenchmarkReaudit(b *testing.B) {
	view := largeView(b)
	a := audit.New(&admit.Env{View: view, Providers: providers.NewStore(nil)})
	for _, res := range []string{"virtualmachineimages", "persistentvolumeclaims", "virtualmachines", "storageclasses"} {
		objs := view.List(res)
		b.Run(res, func(b *testing.B) {
			var affected, events int
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				obj := objs[i%len(objs)]
				for _, k := range view.Dependents(res, obj) {
					if o, ok := view.Get(k); ok {
						if _, err := a.Object(k.Resource, o); err != nil {
							b.Fatal(err)
						}
						affected++
					}
				}
				events++
			}
			b.ReportMetric(float64(affected)/float64(events), "reaudited/event")
		})
	}
}
