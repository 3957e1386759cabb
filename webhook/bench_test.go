package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	kwhhttp "github.com/slok/kubewebhook/v2/pkg/http"
	kwhlog "github.com/slok/kubewebhook/v2/pkg/log"
	kwhmodel "github.com/slok/kubewebhook/v2/pkg/model"
	kwhmutating "github.com/slok/kubewebhook/v2/pkg/webhook/mutating"
	kwhvalidating "github.com/slok/kubewebhook/v2/pkg/webhook/validating"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/authz"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/hack/genview/gen"
	"github.com/hcistorage/storage-webhook/internal/logjson"
	"github.com/hcistorage/storage-webhook/metrics"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/webhook"
)

// benchCase is one realistic AdmissionReview (testdata/bench) sent to one webhook path, and
// what it gets back from the fixtures' cluster view (testdata/cluster), so a benchmark
// cannot silently measure an error path.
type benchCase struct {
	name, path, file string
	allowed          bool
	rules            []string // rules that denied or warned
	mutatedBy        []string
}

var benchCases = []benchCase{
	// A Harvester VM whose volumeClaimTemplates hold 8 disks from three images (VM-V1 looks
	// up each image; VM-V2 looks up each volume's claim).
	{name: "VMWith8Disks", path: "/validate/virtualmachines", file: "vm-8-disks.json", allowed: true},
	// An image on rbd-fast whose backend the CRD defaulted to backingimage: IMG-M1 copies the
	// class into the spec, IMG-M2 changes the backend to cdi and warns.
	{name: "Image", path: "/mutate/virtualmachineimages", file: "image-create.json", allowed: true,
		rules: []string{"IMG-M2"}, mutatedBy: []string{"IMG-M1", "IMG-M2"}},
	// CDI creating the golden PVC of default/image-debian12: PVC-M1 marks it.
	{name: "GoldenPVC", path: "/mutate/persistentvolumeclaims", file: "golden-pvc-create.json", allowed: true,
		mutatedBy: []string{"PVC-M1"}},
	// A user deleting that golden PVC: PVC-V2 denies.
	{name: "GoldenPVCDelete", path: "/validate/persistentvolumeclaims", file: "golden-pvc-delete.json", allowed: false,
		rules: []string{"PVC-V2"}},
	// A VM's DataVolume cloning the golden PVC into an LVM class: DV-M1 adds the clone type,
	// DV-V1 checks the size against the image.
	{name: "DataVolumeClone/mutating", path: "/mutate/datavolumes", file: "datavolume-clone.json", allowed: true,
		mutatedBy: []string{"DV-M1"}},
	{name: "DataVolumeClone/validating", path: "/validate/datavolumes", file: "datavolume-clone.json", allowed: true},
	// A new Longhorn v2 class: SC-M1 adds the clone strategy and migratable.
	{name: "StorageClass", path: "/mutate/storageclasses", file: "storageclass-create.json", allowed: true,
		mutatedBy: []string{"SC-M1"}},
}

// benchBody reads a review and compacts it, as an API server sends it.
func benchBody(tb testing.TB, file string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("../testdata/bench", file))
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	return buf.Bytes()
}

// benchEnv is the environment serve --cluster builds: the view, the built-in profiles and the
// Harvester of the view, the default privileged users and the view's RBAC objects answering
// IMG-V6.
func benchEnv(files *cluster.Files) *admit.Env {
	priv := map[string]bool{}
	for _, u := range admit.DefaultPrivilegedUsers {
		priv[u] = true
	}
	access, err := authz.NewRBAC(files.Objects())
	if err != nil {
		panic(err) // the test cluster view is ours
	}
	store := providers.NewStore(nil)
	store.UseHarvester(files, "", nil) // the release and Settings of the view, as serve --cluster follows them
	return &admit.Env{View: files, Providers: store, Privileged: priv, Access: access}
}

// benchHandler is the handler as serve builds it: JSON logs at info level (discarded here),
// metrics, the body cap and a readiness check on the view.
func benchHandler(files *cluster.Files, hooks []*webhook.Hook) *webhook.Handler {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetFormatter(logjson.Formatter{})
	return &webhook.Handler{
		Hooks: hooks, MaxBodyBytes: webhook.DefaultMaxBodyBytes, Log: log, Metrics: metrics.New(),
		Ready: func() bool { ok, _ := files.Synced(); return ok },
	}
}

func ruleHandler(files *cluster.Files) http.Handler {
	return benchHandler(files, webhook.Hooks(benchEnv(files))).Mux()
}

// rolloutHandler is ruleHandler under testdata/bench/rollout.yaml: 20 overrides every rule
// inherits and 100 exceptions naming every rule, none matching a benchmark review, so each
// decision tries them all and the answers are the rules handler's.
func rolloutHandler(tb testing.TB, files *cluster.Files) http.Handler {
	tb.Helper()
	data, err := os.ReadFile("../testdata/bench/rollout.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	f, err := providers.Parse(data, webhook.Catalogue())
	if err != nil {
		tb.Fatal(err)
	}
	if n, m := len(f.Policy().Overrides("VM-V1")), len(f.Policy().ExceptionsOf("VM-V1")); n != 20 || m != 100 {
		tb.Fatalf("the bench rollout gives VM-V1 %d overrides and %d exceptions, want 20 and 100", n, m)
	}
	env := benchEnv(files)
	env.Providers = providers.NewStore(f)
	env.Providers.UseHarvester(files, "", nil)
	return benchHandler(files, webhook.Hooks(env)).Mux()
}

// emptyHandler serves every path of the route table with hooks whose rules return an empty
// result: the handler still reads the body, decodes and checks the AdmissionReview
// (webhook.DecodeReview), checks the route, records metrics and encodes an allowed answer.
func emptyHandler(files *cluster.Files) http.Handler {
	env := benchEnv(files)
	nothing := func(*admit.Env, *admit.Request) admit.Result { return admit.Result{} }
	ops := []admit.Operation{admit.Create, admit.Update, admit.Delete}
	var hooks []*webhook.Hook
	for _, r := range webhook.Routes() {
		if r.Mutate != nil {
			hooks = append(hooks, webhook.NewHook(&r, true, ops, nothing, env))
		}
		if r.Validate != nil {
			hooks = append(hooks, webhook.NewHook(&r, false, ops, nothing, env))
		}
	}
	return benchHandler(files, hooks).Mux()
}

// kubewebhookHandler serves every path of the route table with kubewebhook v2's own HTTP
// handler and webhooks whose validator or mutator does nothing: the floor a service built
// the usual way with kubewebhook would have. Without an Obj, kubewebhook decodes each object
// into an unstructured.Unstructured (its dynamic mode, the one that serves any kind); a
// mutating webhook also marshals the object back to diff it into a patch.
func kubewebhookHandler(tb testing.TB) http.Handler {
	tb.Helper()
	mux := http.NewServeMux()
	for _, r := range webhook.Routes() {
		if r.Mutate != nil {
			wh, err := kwhmutating.NewWebhook(kwhmutating.WebhookConfig{ID: r.MutatePath(), Logger: kwhlog.Noop,
				Mutator: kwhmutating.MutatorFunc(func(context.Context, *kwhmodel.AdmissionReview, metav1.Object) (*kwhmutating.MutatorResult, error) {
					return &kwhmutating.MutatorResult{}, nil
				})})
			if err != nil {
				tb.Fatal(err)
			}
			mux.Handle(r.MutatePath(), kwhhttp.MustHandlerFor(kwhhttp.HandlerConfig{Webhook: wh, Logger: kwhlog.Noop}))
		}
		if r.Validate != nil {
			wh, err := kwhvalidating.NewWebhook(kwhvalidating.WebhookConfig{ID: r.ValidatePath(), Logger: kwhlog.Noop,
				Validator: kwhvalidating.ValidatorFunc(func(context.Context, *kwhmodel.AdmissionReview, metav1.Object) (*kwhvalidating.ValidatorResult, error) {
					return &kwhvalidating.ValidatorResult{Valid: true}, nil
				})})
			if err != nil {
				tb.Fatal(err)
			}
			mux.Handle(r.ValidatePath(), kwhhttp.MustHandlerFor(kwhhttp.HandlerConfig{Webhook: wh, Logger: kwhlog.Noop}))
		}
	}
	return mux
}

func fixtureView(tb testing.TB) *cluster.Files {
	tb.Helper()
	view, err := cluster.LoadFiles("../testdata/cluster")
	if err != nil {
		tb.Fatal(err)
	}
	return view
}

// send makes one HTTP round trip through the handler, as serve answers it.
func send(h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	return rec
}

func answer(tb testing.TB, rec *httptest.ResponseRecorder) *admissionv1.AdmissionResponse {
	tb.Helper()
	if rec.Code != http.StatusOK {
		tb.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		tb.Fatalf("answer is not an AdmissionReview with a response (%v): %s", err, rec.Body)
	}
	return out.Response
}

// checkBenchAnswer fails unless the answer is the one the case expects.
func checkBenchAnswer(tb testing.TB, c benchCase, rec *httptest.ResponseRecorder) {
	tb.Helper()
	resp := answer(tb, rec)
	rules, mutated := splitIDs(resp.AuditAnnotations["rules"]), splitIDs(resp.AuditAnnotations["mutated-by"])
	if resp.Allowed != c.allowed || !sameSet(rules, c.rules) || !sameSet(mutated, c.mutatedBy) || (len(c.mutatedBy) > 0) != (len(resp.Patch) > 0) {
		tb.Fatalf("%s: got %s, want allowed=%v rules=%v mutatedBy=%v", c.name, describe(resp), c.allowed, c.rules, c.mutatedBy)
	}
}

func describe(resp *admissionv1.AdmissionResponse) string {
	s := fmt.Sprintf("allowed=%v rules=%v mutatedBy=%v warnings=%d patchOps=", resp.Allowed,
		splitIDs(resp.AuditAnnotations["rules"]), splitIDs(resp.AuditAnnotations["mutated-by"]), len(resp.Warnings))
	var ops []any
	_ = json.Unmarshal(resp.Patch, &ops)
	return s + fmt.Sprint(len(ops))
}

// TestBenchReviews keeps the benchmark inputs honest: each review gets its expected answer
// from the fixtures' view, and the empty handler and kubewebhook's allow it without a patch.
func TestBenchReviews(t *testing.T) {
	view := fixtureView(t)
	rules, empty, kwh, rollout := ruleHandler(view), emptyHandler(view), kubewebhookHandler(t), rolloutHandler(t, view)
	for _, c := range benchCases {
		t.Run(c.name, func(t *testing.T) {
			body := benchBody(t, c.file)
			checkBenchAnswer(t, c, send(rules, c.path, body))
			checkBenchAnswer(t, c, send(rollout, c.path, body))
			if resp := answer(t, send(empty, c.path, body)); !resp.Allowed || resp.Patch != nil || len(resp.AuditAnnotations) > 0 {
				t.Errorf("empty handler: %s, want a plain allow", describe(resp))
			}
			if resp := answer(t, send(kwh, c.path, body)); !resp.Allowed || len(resp.Patch) > 2 { // kubewebhook's empty patch is "[]"
				t.Errorf("kubewebhook's handler: %s (patch %s), want a plain allow", describe(resp), resp.Patch)
			}
		})
	}
}

// benchReviews runs each case as a sub-benchmark; check, when set, vets the first answer
// before the timer starts.
func benchReviews(b *testing.B, h http.Handler, check func(testing.TB, benchCase, *httptest.ResponseRecorder)) {
	for _, c := range benchCases {
		body := benchBody(b, c.file)
		b.Run(c.name, func(b *testing.B) { benchReview(b, h, c, body, check) })
	}
}

// benchReview sends one review b.N times. Besides ns/op (wall time) it reports cpu-ns/op,
// the process's CPU time per review (every thread, so GC work too), which stays meaningful
// on a loaded machine where wall time also counts waiting for a CPU.
func benchReview(b *testing.B, h http.Handler, c benchCase, body []byte, check func(testing.TB, benchCase, *httptest.ResponseRecorder)) {
	if check != nil {
		check(b, c, send(h, c.path, body))
	}
	b.ReportAllocs()
	cpu, ok := processCPU()
	for b.Loop() {
		if rec := send(h, c.path, body); rec.Code != http.StatusOK {
			b.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
		}
	}
	if end, ok2 := processCPU(); ok && ok2 {
		b.ReportMetric(float64(end-cpu)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkReviews is each realistic review (benchCases) through three handlers:
//
//   - rules: the real handler and rules against the fixtures' cluster view;
//   - empty: the floor, the same handler and round trip with rules that do nothing
//     (emptyHandler);
//   - kubewebhook: kubewebhook's own handler with no-op webhooks (kubewebhookHandler), which
//     the floor must stay below;
//   - rollout: the rules under a rollout of 20 overrides and 100 exceptions that every
//     decision tries (rolloutHandler).
//
// The handlers take turns in blocks of reviews (alternate), so that all four see the same
// machine, and each one's CPU time, wall time and allocations per review are reported with
// the ratios to the floor. hack/benchratio prints the medians of several runs (`make bench`).
func BenchmarkReviews(b *testing.B) {
	view := fixtureView(b)
	handlers := []namedHandler{{"rules", ruleHandler(view)}, {"empty", emptyHandler(view)}, {"kubewebhook", kubewebhookHandler(b)},
		{"rollout", rolloutHandler(b, view)}}
	for _, c := range benchCases {
		body := benchBody(b, c.file)
		b.Run(c.name, func(b *testing.B) {
			checkBenchAnswer(b, c, send(handlers[0].h, c.path, body))
			checkBenchAnswer(b, c, send(handlers[3].h, c.path, body))
			alternate(b, handlers, func(int) (string, []byte) { return c.path, body })
		})
	}
}

// BenchmarkRules and BenchmarkFloor are the rules handler and the floor of BenchmarkReviews
// each on its own, for profiles (-cpuprofile, -memprofile) of one handler.
func BenchmarkRules(b *testing.B) { benchReviews(b, ruleHandler(fixtureView(b)), checkBenchAnswer) }

// BenchmarkRollout is the rollout handler of BenchmarkReviews on its own (hack/benchir.sh).
func BenchmarkRollout(b *testing.B) {
	view := fixtureView(b)
	benchReviews(b, rolloutHandler(b, view), checkBenchAnswer)
}
func BenchmarkFloor(b *testing.B) { benchReviews(b, emptyHandler(fixtureView(b)), nil) }

// BenchmarkFixtureMix is the stream `make bench-load` sends (every admission fixture,
// round-robin, compacted) through the rules and through the floor, reported like
// BenchmarkReviews: the in-process counterpart of the load test, without TLS, HTTP server
// or load generator.
func BenchmarkFixtureMix(b *testing.B) {
	files, err := filepath.Glob("../testdata/admission/*/*.json")
	if err != nil || len(files) == 0 {
		b.Fatalf("no fixtures: %v", err)
	}
	type review struct {
		path string
		body []byte
	}
	var mix []review
	for _, file := range files {
		fx := readFixture(b, file)
		var buf bytes.Buffer
		if err := json.Compact(&buf, fx.Review); err != nil {
			b.Fatalf("%s: %v", file, err)
		}
		mix = append(mix, review{fx.Webhook, buf.Bytes()})
	}
	view := fixtureView(b)
	alternate(b, []namedHandler{{"rules", ruleHandler(view)}, {"empty", emptyHandler(view)}},
		func(i int) (string, []byte) { r := mix[i%len(mix)]; return r.path, r.body })
}

type namedHandler struct {
	name string
	h    http.Handler
}

// alternateBlock is how many reviews a handler answers before the next one takes its turn:
// long enough that the garbage collections a block's allocations cause mostly run within
// it (a cycle comes every 40–100 reviews here: GODEBUG=gctrace=1 counted 626 in 24,000 VM
// reviews, 252 in 24,000 DataVolume ones), short enough (tens of milliseconds)
// that the machine's speed does not drift within a round of turns.
const alternateBlock = 1000

// alternate sends review i (from next) through the handlers in turns of alternateBlock
// reviews until b.N reviews are sent, and reports per review, for each handler, the process's
// CPU time (every thread, so garbage collection too: cpu-ns), wall time (ns) and allocations
// (B, allocs), and the ratios of every handler to the second one, the floor.
func alternate(b *testing.B, handlers []namedHandler, next func(i int) (path string, body []byte)) {
	type total struct {
		cpu, wall      time.Duration
		bytes, mallocs uint64
		reviews        int
	}
	totals := make([]total, len(handlers))
	var before, after runtime.MemStats
	b.ReportAllocs()
	for i := 0; i < b.N; {
		h := (i / alternateBlock) % len(handlers)
		n := min(alternateBlock, b.N-i)
		runtime.ReadMemStats(&before)
		cpu0, _ := processCPU()
		start := time.Now()
		for range n {
			path, body := next(i)
			if rec := send(handlers[h].h, path, body); rec.Code != http.StatusOK {
				b.Fatalf("%s %s: HTTP %d: %s", handlers[h].name, path, rec.Code, rec.Body)
			}
			i++
		}
		wall := time.Since(start)
		cpu1, _ := processCPU()
		runtime.ReadMemStats(&after)
		t := &totals[h]
		t.cpu, t.wall, t.reviews = t.cpu+cpu1-cpu0, t.wall+wall, t.reviews+n
		t.bytes, t.mallocs = t.bytes+after.TotalAlloc-before.TotalAlloc, t.mallocs+after.Mallocs-before.Mallocs
	}
	per := func(t total, v float64) float64 { return v / float64(t.reviews) }
	for k, t := range totals {
		if t.reviews == 0 {
			return // b.N too small for every handler to take a turn
		}
		name := handlers[k].name
		b.ReportMetric(per(t, float64(t.cpu)), name+"-cpu-ns/review")
		b.ReportMetric(per(t, float64(t.wall)), name+"-ns/review")
		b.ReportMetric(per(t, float64(t.bytes)), name+"-B/review")
		b.ReportMetric(per(t, float64(t.mallocs)), name+"-allocs/review")
	}
	floor := totals[1]
	for k, t := range totals {
		if k != 1 {
			b.ReportMetric(per(t, float64(t.cpu))/per(floor, float64(floor.cpu)), handlers[k].name+"/"+handlers[1].name+"-cpu")
			b.ReportMetric(per(t, float64(t.wall))/per(floor, float64(floor.wall)), handlers[k].name+"/"+handlers[1].name+"-wall")
		}
	}
}

// BenchmarkLargeView is the reviews of BenchmarkRules against (a) an empty view and (b) a
// generated view of gen.Full() size (10,000 PVCs, 2,000 images, 2,000 VMs, 10,000 pods,
// 200 classes) plus the fixtures' objects the reviews refer to, so that the answers are the
// same as in BenchmarkRules. Every lookup is an index or key lookup, so (b) should cost
// what BenchmarkRules costs. In the empty view the reviews take other paths (the images
// are unknown: VM-V1 warns, PVC-M1 marks nothing, PVC-V2 allows), so compare (a) with care.
func BenchmarkLargeView(b *testing.B) {
	b.Run("empty", func(b *testing.B) {
		view, err := cluster.NewFiles(nil)
		if err != nil {
			b.Fatal(err)
		}
		h := ruleHandler(view)
		logEmptyAnswers.Do(func() {
			for _, c := range benchCases {
				b.Logf("empty view, %s: %s", c.name, describe(answer(b, send(h, c.path, benchBody(b, c.file)))))
			}
		})
		benchReviews(b, h, nil)
	})
	b.Run("large", func(b *testing.B) {
		view := largeView(b)
		benchReviews(b, ruleHandler(view), checkBenchAnswer)
	})
}

var (
	logEmptyAnswers sync.Once
	largeOnce       sync.Once
	large           *cluster.Files
	largeErr        error
)

// largeView builds the generated view once per process, outside every timer, and logs what
// it took.
func largeView(b *testing.B) *cluster.Files {
	b.Helper()
	largeOnce.Do(func() {
		fixtures, err := cluster.ReadManifests("../testdata/cluster")
		if err != nil {
			largeErr = err
			return
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		stop := samplePeakHeap()
		start := time.Now()
		v, err := gen.Generate(gen.Full())
		if err != nil {
			largeErr = err
			return
		}
		generated := time.Since(start)
		objs, err := v.Objects()
		if err != nil {
			largeErr = err
			return
		}
		converted := time.Since(start)
		n := len(objs)
		large, largeErr = cluster.NewFiles(append(objs, fixtures...))
		total := time.Since(start)
		peak := stop()
		v, objs = nil, nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.Logf("large view: %d generated + %d fixture objects; generate %s, to unstructured %s, index (cluster.NewFiles) %s, total %s; "+
			"allocated %d MiB, peak live heap %d MiB, heap after GC %d MiB (was %d MiB before the build)",
			n, len(fixtures), generated.Round(time.Millisecond), (converted - generated).Round(time.Millisecond),
			(total - converted).Round(time.Millisecond), total.Round(time.Millisecond),
			(after.TotalAlloc-before.TotalAlloc)>>20, peak>>20, after.HeapAlloc>>20, before.HeapAlloc>>20)
	})
	if largeErr != nil {
		b.Fatal(largeErr)
	}
	return large
}

// samplePeakHeap samples the heap's object bytes every millisecond (runtime/metrics does not
// stop the world) until the returned func is called, which returns the largest sample.
func samplePeakHeap() func() uint64 {
	sample := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	done, peak := make(chan struct{}), make(chan uint64)
	go func() {
		var top uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			rtmetrics.Read(sample)
			top = max(top, sample[0].Value.Uint64())
			select {
			case <-done:
				peak <- top
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-peak }
}

// processCPU is the CPU time (user and system, all threads) of this process so far, from
// getrusage(2), which counts in microseconds; ok is false where it fails.
func processCPU() (cpu time.Duration, ok bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// allowAll is an authorizer that answers at once: IMG-V6's own cost, without a cache.
type allowAll struct{}

func (allowAll) MayGet(context.Context, authenticationv1.UserInfo, schema.GroupResource, string, string) (bool, error) {
	return true, nil
}

// BenchmarkImageAccess is a PVC whose image is in another namespace, so IMG-V6 asks whether
// the user may get that image, answered by serve's SubjectAccess from its cache (the API
// server is a fake clientset asked once: "sar-cached"), by an authorizer that answers at
// once ("stub"), and the floor. sar-cached/stub is what the cached answer costs a review; a
// miss costs a SubjectAccessReview round trip (authz's BenchmarkMayGet, and the real API
// server's in BENCHMARKS.md).
func BenchmarkImageAccess(b *testing.B) {
	view := fixtureView(b)
	kube := fake.NewClientset()
	kube.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, k8sruntime.Object, error) {
		sar := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		sar.Status.Allowed = true
		return true, sar, nil
	})
	withAccess := func(access admit.Access) http.Handler {
		env := benchEnv(view)
		env.Access = access
		return benchHandler(view, webhook.Hooks(env)).Mux()
	}
	sar := authz.NewSubjectAccess(kube.AuthorizationV1().SubjectAccessReviews(), 0, time.Hour)
	c := benchCase{name: "ImageOtherNamespace", path: "/validate/persistentvolumeclaims", file: "pvc-image-other-namespace.json", allowed: true, rules: []string{"PVC-V3"}}
	body := benchBody(b, c.file)
	handlers := []namedHandler{{"sar-cached", withAccess(sar)}, {"empty", emptyHandler(view)}, {"stub", withAccess(allowAll{})}}
	for _, h := range handlers {
		if h.name != "empty" {
			checkBenchAnswer(b, c, send(h.h, c.path, body))
		}
	}
	alternate(b, handlers, func(int) (string, []byte) { return c.path, body })
}
