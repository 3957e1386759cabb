//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/hcistorage/storage-webhook/authz"
	"github.com/hcistorage/storage-webhook/hack/genview/gen"
	"github.com/hcistorage/storage-webhook/internal/loadtest"
	"github.com/hcistorage/storage-webhook/internal/poll"
	"github.com/hcistorage/storage-webhook/webhook"
)

// benchEnabled gates the measurements of BENCHMARKS.md: they take a while and report
// figures rather than pass or fail on them (`make bench-apiserver` sets it).
func benchEnabled(t *testing.T) {
	if os.Getenv("STORAGE_WEBHOOK_BENCH") == "" {
		t.Skip("set STORAGE_WEBHOOK_BENCH=1 (make bench-apiserver) to run the measurements")
	}
}

// TestBenchCreateThroughAPIServer creates PVCs four ways in one run, alternating in rounds
// so noise hits all alike: plain PVCs where storage-webhook is registered (a normal
// namespace: its matchConditions keep the API server from calling it), disks from an image
// in that namespace (PVC-V3 is called for each), PVCs where no webhook is called
// (kube-system, which every webhook leaves out), and PVCs where only a no-op webhook on the
// same TLS stack is called (the storage-webhook namespace, left out by ours, selected by the
// no-op's). It reports the time ratios. Goal: plain/none at most 1.15.
func TestBenchCreateThroughAPIServer(t *testing.T) {
	benchEnabled(t)
	const total, rounds, workers = 1000, 10, 8
	matched := newNamespace(t)
	unmatched, noopNS := "kube-system", "storage-webhook"
	for _, ns := range []string{unmatched, noopNS} {
		if _, err := suite.kube.CoreV1().Namespaces().Create(context.Background(),
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	calls := startNoopWebhook(t, noopNS)
	class := obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: e2e-bench}\nprovisioner: rbd.csi.ceph.com\n")
	if _, err := create(t, class, false); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	// The image the disks are made from, 1Gi: PVC-V3 allows each disk without a warning.
	img := obj(t, matched, image("bench-image", "e2e-bench", "cdi"))
	_ = unstructured.SetNestedField(img.Object, map[string]any{"virtualSize": int64(1 << 30)}, "status")
	expectCreated(t, img, anyObject)
	ref := map[string]string{"harvesterhci.io/imageId": matched + "/bench-image"}
	poll.Until(t, within, func() bool { // until the webhook's cache has the image
		mark := suite.warnings.mark()
		createPVCs(t, matched, "probe", 1, 1, ref, true)
		return len(suite.warnings.since(mark)) == 0
	})
	ownBefore := sum(scrape(t, suite.webhook.probes+"/metrics"), "storage_webhook_requests_total", nil)
	series := []struct {
		name, ns    string
		annotations map[string]string
	}{{"plain", matched, nil}, {"disks", matched, ref}, {"none", unmatched, nil}, {"noop", noopNS, nil}}
	took := map[string]time.Duration{}
	for round := range rounds {
		for _, s := range series {
			took[s.name] += createPVCs(t, s.ns, fmt.Sprintf("%s-r%d", s.name, round), total/rounds, workers, s.annotations, false)
		}
	}
	if n := calls.Load(); n < total {
		t.Fatalf("the no-op webhook answered %d calls, want at least %d", n, total)
	}
	own := sum(scrape(t, suite.webhook.probes+"/metrics"), "storage_webhook_requests_total", nil) - ownBefore
	if own != total {
		t.Errorf("storage-webhook answered %v calls, want %d (one per disk, none per plain PVC)", own, total)
	}
	plain, disks, none, noop := took["plain"], took["disks"], took["none"], took["noop"]
	rate := func(d time.Duration) float64 { return float64(total) / d.Seconds() }
	t.Logf("BENCH create %d PVCs each, %d workers: plain %v (%.0f/s), disks from an image %v (%.0f/s), no webhook %v (%.0f/s), no-op webhook %v (%.0f/s); storage-webhook answered %v calls",
		total, workers, plain.Round(time.Millisecond), rate(plain), disks.Round(time.Millisecond), rate(disks),
		none.Round(time.Millisecond), rate(none), noop.Round(time.Millisecond), rate(noop), own)
	t.Logf("BENCH ratios: plain/none %.3f (goal <= 1.15), disks/none %.3f, no-op/none %.3f, disks/no-op %.3f",
		float64(plain)/float64(none), float64(disks)/float64(none), float64(noop)/float64(none), float64(disks)/float64(noop))
}

// startNoopWebhook serves a mutating webhook that allows everything, on the same Go TLS
// stack as storage-webhook, registered for PVC CREATEs in namespace ns only. It returns
// the count of calls answered.
func startNoopWebhook(t *testing.T, ns string) *atomic.Int64 {
	t.Helper()
	dir := suite.env.WebhookInstallOptions.LocalServingCertDir
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	calls := &atomic.Int64{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		review, err := webhook.DecodeReview(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		calls.Add(1)
		_ = json.NewEncoder(w).Encode(&admissionv1.AdmissionReview{TypeMeta: review.TypeMeta,
			Response: &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}})
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	url := "https://" + ln.Addr().String() + "/noop"
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-noop"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "noop.e2e.hcistorage.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: suite.env.WebhookInstallOptions.LocalServingCAData},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"persistentvolumeclaims"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			TimeoutSeconds:          ptr.To[int32](5),
		}},
	}
	if _, err := suite.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = suite.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), "e2e-noop", metav1.DeleteOptions{})
	})
	// The API server picks up a new configuration within a moment: wait until it calls.
	probe := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "noop-probe", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	poll.Until(t, within, func() bool {
		_, _ = suite.kube.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return calls.Load() > 0
	})
	calls.Store(0)
	return calls
}

// createPVCs creates n PVCs with annotations in ns from workers goroutines (as dry runs when
// dry) and returns the wall time.
func createPVCs(t *testing.T, ns, prefix string, n, workers int, annotations map[string]string, dry bool) time.Duration {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				p := &corev1.PersistentVolumeClaim{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Namespace: ns, Annotations: annotations},
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
						StorageClassName: ptr.To("e2e-bench"),
						Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
					},
				}
				if _, err := suite.kube.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), p, metav1.CreateOptions{DryRun: dryRun(dry)}); err != nil {
					failed.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("create in %s: %v", ns, err)
	}
	return time.Since(start)
}

// TestBenchLargeView fills the API server with the generated large view (10,000 PVCs,
// 2,000 images, 2,000 VMs, 10,000 pods, 200 storage classes), then starts a second webhook
// process against it and reports the time to sync its watch caches (to /readyz) and its
// RSS once synced. Goals: sync under 10 s, RSS under 150 MiB.
func TestBenchLargeView(t *testing.T) {
	benchEnabled(t)
	view, err := gen.Generate(gen.Full())
	if err != nil {
		t.Fatal(err)
	}
	objs, err := view.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs { // the API server assigns these
		u.SetResourceVersion("")
		u.SetUID("")
	}
	namespaces := map[string]bool{}
	for _, u := range objs {
		if ns := u.GetNamespace(); ns != "" && !namespaces[ns] {
			namespaces[ns] = true
			if _, err := suite.kube.CoreV1().Namespaces().Create(context.Background(),
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
				t.Fatal(err)
			}
		}
	}
	start := time.Now()
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(objs)); i = next.Add(1) - 1 {
				u := objs[i]
				if _, err := client(t, u.GetKind(), u.GetNamespace(), "").Create(context.Background(), u, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err))
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("BENCH large view: %d objects created through the API server (and the webhooks) in %v, %d refused (first: %v)",
		len(objs), time.Since(start).Round(time.Millisecond), failed.Load(), firstErr.Load())

	probePort, _ := freePort()
	webhookPort, _ := freePort()
	certDir := suite.env.WebhookInstallOptions.LocalServingCertDir
	cmd := exec.Command(suite.bin, "serve", "--kubeconfig", suite.kubeconfig,
		"--listen", fmt.Sprintf("127.0.0.1:%d", webhookPort), "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", probePort),
		"--tls-cert-file", filepath.Join(certDir, "tls.crt"), "--tls-key-file", filepath.Join(certDir, "tls.key"), "--log-level", "warning")
	logFile := filepath.Join(t.TempDir(), "webhook.log")
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); log.Close() }()
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(readyz)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not ready within 120s: %s\n%s", body, readFile(logFile))
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("not ready within 120s: %v\n%s", err, readFile(logFile))
		}
	}
	synced := time.Since(started)
	time.Sleep(2 * time.Second) // bounded: let the caches settle before reading RSS
	rss, err := loadtest.RSS(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BENCH large view: caches synced in %v (goal < 10s); RSS once synced %.1f MiB (goal < 150 MiB)", synced.Round(time.Millisecond), float64(rss)/(1<<20))

	// The live audit: every object of an audited kind (all but the pods) audited once.
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", probePort)
	audited := func() (objects, cpu float64) {
		m := scrape(t, metricsURL)
		return sum(m, "storage_webhook_audit_objects_total", nil), sum(m, "process_cpu_seconds_total", nil)
	}
	auditable := -int(failed.Load()) // the objects of an audited kind that exist: not the pods, not the refused
	for _, u := range objs {
		if u.GetKind() != "Pod" {
			auditable++
		}
	}
	caughtUp := func() bool {
		m := scrape(t, metricsURL)
		return sum(m, "storage_webhook_audit_objects_total", nil) >= float64(auditable) && sum(m, "storage_webhook_audit_queue_length", nil) == 0
	}
	poll.Until(t, 120*time.Second, caughtUp)
	first := time.Since(started)
	rss, _ = loadtest.RSS(cmd.Process.Pid)
	heap := sum(scrape(t, metricsURL), "go_memstats_heap_alloc_bytes", nil)
	t.Logf("BENCH large view: live audit of %d objects done %v after start (%v after sync); RSS %.1f MiB, heap in use %.1f MiB",
		auditable, first.Round(time.Millisecond), (first - synced).Round(time.Millisecond), float64(rss)/(1<<20), heap/(1<<20))

	// Re-audit per informer event: Harvester's image controller writes 200 images' status;
	// each event re-audits the image and what references it, not the view.
	var images []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() != "VirtualMachineImage" || len(images) == 200 {
			continue
		}
		got, err := client(t, "VirtualMachineImage", u.GetNamespace(), harvesterUser).Get(context.Background(), u.GetName(), metav1.GetOptions{})
		if err == nil { // not the ones IMG-V5 refused above
			images = append(images, got)
		}
	}
	objects0, cpu0 := audited()
	for i, got := range images {
		_ = unstructured.SetNestedField(got.Object, int64(i+1), "status", "progress")
		if _, err := client(t, "VirtualMachineImage", got.GetNamespace(), harvesterUser).Update(context.Background(), got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 60*time.Second, func() bool { n, _ := audited(); return n-objects0 >= float64(len(images)) && caughtUp() })
	objects1, cpu1 := audited()
	t.Logf("BENCH large view: %d image events re-audited %.0f objects (%.1f per event), %.1f ms of CPU per event (watch decode included)",
		len(images), objects1-objects0, (objects1-objects0)/float64(len(images)), (cpu1-cpu0)*1000/float64(len(images)))

	// The one-shot audit of the same cluster, through list and watch.
	start = time.Now()
	out, err := exec.Command(suite.bin, "audit", "--kubeconfig", suite.kubeconfig, "-o", "json").Output()
	var findings []map[string]any
	if jerr := json.Unmarshal(out, &findings); jerr != nil {
		t.Fatalf("audit --kubeconfig: %v %v", err, jerr)
	}
	t.Logf("BENCH large view: storage-webhook audit --kubeconfig: %d findings in %v (cache sync included)", len(findings), time.Since(start).Round(time.Millisecond))
}

// TestBenchSubjectAccessReview is what an IMG-V6 cache miss costs: 500 SubjectAccessReviews
// for a user with no grant, through the same code serve uses (authz.SubjectAccess, cache
// off), against the real API server and its RBAC authorizer, one at a time.
func TestBenchSubjectAccessReview(t *testing.T) {
	benchEnabled(t)
	sar := authz.NewSubjectAccess(suite.kube.AuthorizationV1().SubjectAccessReviews(), 0, -1)
	user := authenticationv1.UserInfo{Username: "bench-nobody", Groups: []string{"system:authenticated"}}
	pvcs := schema.GroupResource{Resource: "persistentvolumeclaims"}
	const n = 500
	took := make([]time.Duration, n)
	for i := range took {
		start := time.Now()
		if ok, err := sar.MayGet(context.Background(), user, pvcs, "vault", fmt.Sprintf("pvc-%d", i)); ok || err != nil {
			t.Fatalf("review %d: %v %v, want a plain no", i, ok, err)
		}
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	t.Logf("BENCH SubjectAccessReview round trip (%d, sequential): median %v, p99 %v, max %v",
		n, took[n/2].Round(time.Microsecond), took[n*99/100].Round(time.Microsecond), took[n-1].Round(time.Microsecond))
}
