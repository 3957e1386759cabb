//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// benchEnabled gates the measurements of BENCHMARKS.md: they take a while and report
// figures rather than pass or fail on them (`make bench-apiserver` sets it).
func benchEnabled(t *testing.T) {
	if os.Getenv("STORAGE_WEBHOOK_BENCH") == "" {
		t.Skip("set STORAGE_WEBHOOK_BENCH=1 (make bench-apiserver) to run the measurements")
	}
}

// TestBenchCreateThroughAPIServer creates N PVCs that the webhooks match (a mutating and a
// validating call each) and N that they do not (in the webhook's own namespace, which the
// namespaceSelector leaves out), alternating in rounds so noise hits both alike, and
// reports the time ratio. Goal: at most 1.15.
func TestBenchCreateThroughAPIServer(t *testing.T) {
	benchEnabled(t)
	const total, rounds, workers = 1000, 10, 8
	matched := newNamespace(t)
	unmatched := "storage-webhook" // excluded by every webhook's namespaceSelector
	if _, err := suite.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: unmatched}}, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	class := obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: e2e-bench}\nprovisioner: rbd.csi.ceph.com\n")
	if _, err := create(t, class, false); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	var with, without time.Duration
	for round := range rounds {
		for _, ns := range []string{matched, unmatched} {
			d := createPVCs(t, ns, fmt.Sprintf("r%d", round), total/rounds, workers)
			if ns == matched {
				with += d
			} else {
				without += d
			}
		}
	}
	ratio := float64(with) / float64(without)
	t.Logf("BENCH create %d PVCs, %d workers: with webhooks %v (%.0f/s), without %v (%.0f/s), ratio %.3f (goal <= 1.15)",
		total, workers, with.Round(time.Millisecond), float64(total)/with.Seconds(), without.Round(time.Millisecond), float64(total)/without.Seconds(), ratio)
}

// createPVCs creates n PVCs in ns from workers goroutines and returns the wall time.
func createPVCs(t *testing.T, ns, prefix string, n, workers int) time.Duration {
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
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Namespace: ns},
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
						StorageClassName: ptr.To("e2e-bench"),
						Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
					},
				}
				if _, err := suite.kube.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
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
