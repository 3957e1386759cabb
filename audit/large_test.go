//go:build integration

// Run by `make integration` (and so by .ci/run): under the race detector this test took
// 19.7 s (14 s building hack/genview's 24,200 objects, 5.5 s auditing them), a third of
// make test's time budget.

package audit_test

import (
	"maps"
	"runtime"
	"testing"
	"time"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/audit"
	"github.com/hcistorage/storage-webhook/providers"
)

// TestAuditLargeView: the generated view (seeded, so always the same objects) has exactly the
// findings its generator makes: its Longhorn v2 and LVM classes carry none of the per-class
// CDI settings SC-M1 writes (drift), and the 3 % of its images still importing have no size,
// so the disks and VMs made from them are warned about (PVC-V3, VM-V1). It logs the time and
// allocation of one audit (BenchmarkAuditLargeView measures them).
func TestAuditLargeView(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 24,200 objects")
	}
	view := largeView(t)
	a := audit.New(&admit.Env{View: view, Providers: providers.NewStore(nil)})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	fs, errs := a.All(view)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	byRule := map[string]int{}
	for _, f := range fs {
		byRule[f.Rule+" "+string(f.Severity)]++
	}
	want := map[string]int{"SC-M1 drift": 80, "PVC-V3 warning": 56, "VM-V1 warning": 56}
	if !maps.Equal(byRule, want) {
		t.Errorf("findings by rule %v, want %v", byRule, want)
	}
	t.Logf("BENCH audit of the large view: %d findings in %v, %.1f MiB allocated", len(fs), took.Round(time.Millisecond), float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
}
