package audit

import (
	"context"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/metrics"
	"github.com/hcistorage/storage-webhook/rollout"
)

// Live keeps the audit of a watch-cache view current in `serve`. Each informer event
// (the initial list included) queues the changed object and what depends on it
// (cluster.Cache.Dependents: index lookups), and one worker re-audits each queued object
// from the cache. The queue folds repeated events of one object into one audit, so the
// work follows the objects affected, never the size of the cluster. Objects audited before
// what they read has arrived (a PVC before its image) are audited again when it arrives,
// because the arrival is an event whose dependents include them.
type Live struct {
	auditor *Auditor
	view    *cluster.Cache
	queue   workqueue.TypedInterface[cluster.Key]
	log     logrus.FieldLogger
	// audited counts the objects audited (storage_webhook_audit_objects_total).
	audited prometheus.Counter

	mu sync.RWMutex
	// byKey holds each object's findings with every rule enforced; the rollout is applied
	// when they are read (Findings, Samples).
	byKey map[cluster.Key][]Finding
}

// NewLive makes a Live audit of view. findings (storage_webhook_audit_findings, which
// Samples computes at each scrape) and audited may be nil.
func NewLive(a *Auditor, view *cluster.Cache, findings *metrics.GaugeFunc, audited prometheus.Counter, log logrus.FieldLogger) *Live {
	l := &Live{
		auditor: a, view: view, log: log, audited: audited,
		queue: workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[cluster.Key]{Name: "audit"}),
		byKey: map[cluster.Key][]Finding{},
	}
	if findings != nil {
		findings.Set(l.Samples)
	}
	return l
}

// Start subscribes to the view's informers and audits until ctx ends. A view without
// informers (files) is audited once, here, and never changes.
func (l *Live) Start(ctx context.Context) {
	if !l.view.Subscribe(l.Enqueue) {
		for _, res := range l.auditor.Resources() {
			for _, obj := range l.view.List(res) {
				if k, ok := cluster.KeyOf(res, obj); ok {
					l.audit(k)
				}
			}
		}
		return
	}
	go func() {
		<-ctx.Done()
		l.queue.ShutDown()
	}()
	go func() {
		// Events queue keys from the start; auditing waits until every cache has synced, so
		// that the first audit of an object reads a complete view and the initial list's
		// decoding and the initial audit do not add up in memory.
		if !cache.WaitForCacheSync(ctx.Done(), func() bool { ok, _ := l.view.Synced(); return ok }) {
			return
		}
		start, initial := time.Now(), true
		for {
			k, quit := l.queue.Get()
			if quit {
				return
			}
			l.audit(k)
			l.queue.Done(k)
			if initial && l.queue.Len() == 0 {
				initial = false
				n := l.total()
				// The initial audit allocates about 7 KB per object, once: give that
				// back to the OS now rather than over the scavenger's minutes.
				debug.FreeOSMemory()
				l.log.WithFields(logrus.Fields{"findings": n, "took": time.Since(start).Round(time.Millisecond).String()}).Info("audit: initial audit done")
			}
		}
	}()
}

// Pending is the number of objects queued for audit (storage_webhook_audit_queue_length):
// 0 once the initial audit and the re-audits of every event so far are done.
func (l *Live) Pending() int { return l.queue.Len() }

// Enqueue queues an object of resource and its dependents for audit.
func (l *Live) Enqueue(resource string, obj any) {
	for _, k := range l.view.Dependents(resource, obj) {
		l.queue.Add(k)
	}
}

// audit re-audits one object (a deleted one has no findings).
func (l *Live) audit(k cluster.Key) {
	var fs []Finding
	if obj, ok := l.view.Get(k); ok {
		var err error
		if fs, err = l.auditor.Object(k.Resource, obj); err != nil {
			l.log.WithError(err).WithField("object", k).Error("audit: a rule failed")
		}
		if l.audited != nil {
			l.audited.Inc()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(fs) == 0 {
		delete(l.byKey, k)
	} else {
		l.byKey[k] = fs
	}
}

// total is the number of current findings, every rule enforced.
func (l *Live) total() (n int) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, fs := range l.byKey {
		n += len(fs)
	}
	return n
}

// decided is every current finding as the rollout in force decides it now, unsorted.
func (l *Live) decided() []Finding {
	l.mu.RLock()
	all := make([]Finding, 0, len(l.byKey))
	for _, fs := range l.byKey {
		all = append(all, fs...)
	}
	l.mu.RUnlock()
	return l.auditor.Decide(all)
}

// Findings returns every current finding as the rollout in force decides it now, sorted as
// All sorts them.
func (l *Live) Findings() []Finding {
	out := l.decided()
	Sort(out)
	return out
}

// Samples are the series of storage_webhook_audit_findings{rule,severity,action} at this
// moment. Every rule of Rules that is not Off has its violation, drift and warning series
// from the start, at 0 under the action it takes where no override applies.
func (l *Live) Samples() []metrics.Sample {
	type key struct {
		rule string
		sev  Severity
		act  rollout.Action
	}
	counts := map[key]int{}
	policy := l.auditor.env.Policy()
	for _, rule := range Rules {
		if a := policy.Action(rule); a != rollout.Off {
			for _, sev := range []Severity{Violation, Drift, Warning} {
				counts[key{rule, sev, a}] = 0
			}
		}
	}
	for _, f := range l.decided() {
		counts[key{f.Rule, f.Severity, f.Action}]++
	}
	out := make([]metrics.Sample, 0, len(counts))
	for k, n := range counts {
		out = append(out, metrics.Sample{Labels: []string{k.rule, string(k.sev), string(k.act)}, Value: float64(n)})
	}
	return out
}
