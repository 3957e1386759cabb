// Package metrics defines the Prometheus metrics of storage-webhook. They live in a
// registry of their own (no global state), served at /metrics.
package metrics

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the service's collectors.
type Metrics struct {
	Registry *prometheus.Registry
	Requests *prometheus.CounterVec   // webhook, resource, operation, outcome
	Duration *prometheus.HistogramVec // webhook
	// RuleResults counts every rule result by rule, result (deny, warn, audit, skip, patch)
	// and the action in force (Enforce, Warn, Audit): SPEC §8, README "Rolling out".
	RuleResults *prometheus.CounterVec
	// WouldDeny counts the requests a rule in Warn or Audit would have denied, by rule,
	// action and namespace: the dashboard's "ready to enforce".
	WouldDeny       *prometheus.CounterVec
	CacheSynced     *prometheus.GaugeVec   // informer
	ProviderLoads   *prometheus.CounterVec // result (success|failure)
	PanicsRecovered prometheus.Counter
	// ServingCertificateExpiry is the NotAfter of the serving certificate in use, in Unix seconds
	// (0 until a certificate is set with SetServingCertificate).
	ServingCertificateExpiry prometheus.Gauge
	// AuditFindings counts the stored objects' current findings by rule, severity
	// (violation, drift, warning, skip) and action, as the rollout in force at the scrape
	// decides them; no object names (audit/live.go sets it).
	AuditFindings *GaugeFunc
	// AuditObjects counts the objects the live audit has audited (the initial list and
	// every re-audit an informer event caused).
	AuditObjects prometheus.Counter
	// AccessReviews counts IMG-V6's answers by result (allowed, denied, error) and whether
	// the cache gave them (cached "true") or a SubjectAccessReview did.
	AccessReviews *prometheus.CounterVec
	// HarvesterRelease is 1 for the Harvester release the rules follow, labelled with the
	// release line, the version as given and its source (flag, providers-file, setting,
	// none); SetHarvesterRelease keeps exactly one series.
	HarvesterRelease *prometheus.GaugeVec
	// SettingProblems is 1 for each Harvester Setting whose value is not in force because it
	// does not parse (the last good value, or Harvester's default, is used instead).
	SettingProblems *prometheus.GaugeVec
	// RuleAction is 1 for each rule and the action it takes where no override applies;
	// Exceptions counts the providers file's exceptions by state (active, expired) at the
	// scrape, and ExceptionExpiry is each one's expiry in Unix seconds. serve sets them
	// from the configuration in force.
	RuleAction      *GaugeFunc
	Exceptions      *GaugeFunc
	ExceptionExpiry *GaugeFunc
}

// New registers every collector, and the Go and process collectors, in a new registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storage_webhook_requests_total",
			Help: "Admission requests by webhook path, resource, operation and outcome (allowed, patched, denied, error, rejected).",
		}, []string{"webhook", "resource", "operation", "outcome"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "storage_webhook_request_duration_seconds",
			Help:    "Time from reading the request body to writing the response.",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3},
		}, []string{"webhook"}),
		RuleResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storage_webhook_rule_results_total",
			Help: "Rule results by rule ID, result (deny, warn, audit, skip, patch) and the action in force (Enforce, Warn, Audit).",
		}, []string{"rule", "result", "action"}),
		WouldDeny: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storage_webhook_rule_would_deny_total",
			Help: "Requests a rule in Warn or Audit would have denied in Enforce, by rule ID, action and namespace (\"\" for cluster-scoped objects).",
		}, []string{"rule", "action", "namespace"}),
		CacheSynced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "storage_webhook_cache_synced",
			Help: "1 when the watch cache of the informer has synced.",
		}, []string{"informer"}),
		ProviderLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storage_webhook_provider_reloads_total",
			Help: "Reloads of the providers file by result (success, failure).",
		}, []string{"result"}),
		PanicsRecovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "storage_webhook_panics_recovered_total",
			Help: "Panics recovered while answering a request.",
		}),
		ServingCertificateExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "storage_webhook_serving_certificate_expiry_timestamp_seconds",
			Help: "NotAfter of the serving certificate being served, in Unix seconds (0 until one is loaded).",
		}),
		AuditFindings: NewGaugeFunc("storage_webhook_audit_findings",
			"Findings of the audit of stored objects by rule, severity (violation, drift, warning, skip) and action (Enforce, Warn, Audit).",
			"rule", "severity", "action"),
		AuditObjects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "storage_webhook_audit_objects_total",
			Help: "Stored objects audited: the initial list and every re-audit an informer event caused.",
		}),
		AccessReviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storage_webhook_access_reviews_total",
			Help: "IMG-V6's answers on whether a request's user may get an object, by result (allowed, denied, error) and cached (true: from the cache, false: a SubjectAccessReview).",
		}, []string{"result", "cached"}),
		HarvesterRelease: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "storage_webhook_harvester_release_info",
			Help: "1 for the Harvester release whose behaviour the rules follow: its release line, the version as given, and where it came from (flag, providers-file, setting, none).",
		}, []string{"release", "version", "source"}),
		SettingProblems: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "storage_webhook_harvester_setting_problem",
			Help: "1 when the value of a Harvester Setting the rules read (csi-driver-config, backup-target) does not parse and the last good value or Harvester's default is used instead.",
		}, []string{"setting"}),
		RuleAction: NewGaugeFunc("storage_webhook_rule_action",
			"1 for each rule ID and the action it takes (Enforce, Warn, Audit, Off) where no override of the providers file applies.",
			"rule", "action"),
		Exceptions: NewGaugeFunc("storage_webhook_exceptions",
			"Exceptions of the providers file by state (active, expired) at the time of the scrape.",
			"state"),
		ExceptionExpiry: NewGaugeFunc("storage_webhook_exception_expiry_timestamp_seconds",
			"When each exception of the providers file expires, in Unix seconds.",
			"exception"),
	}
	m.Registry.MustRegister(m.Requests, m.Duration, m.RuleResults, m.WouldDeny, m.CacheSynced, m.ProviderLoads, m.PanicsRecovered, m.ServingCertificateExpiry,
		m.AuditFindings, m.AuditObjects, m.AccessReviews, m.HarvesterRelease, m.SettingProblems,
		m.RuleAction, m.Exceptions, m.ExceptionExpiry,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetServingCertificate records the expiry of the certificate now being served: call it
// with every certificate the server starts serving (the initial one and each reload). It
// reads cert.Leaf, or parses the first certificate of the chain when Leaf is not set.
func (m *Metrics) SetServingCertificate(cert tls.Certificate) error {
	leaf := cert.Leaf
	if leaf == nil {
		if len(cert.Certificate) == 0 {
			return errNoCertificate
		}
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return err
		}
	}
	m.ServingCertificateExpiry.Set(float64(leaf.NotAfter.Unix()))
	return nil
}

var errNoCertificate = errors.New("serving certificate holds no certificate")

// SetHarvesterRelease makes the release series the only one, at 1, and sets each setting's
// problem gauge (settings: every Setting it can report, problems: those with a problem).
func (m *Metrics) SetHarvesterRelease(release, version, source string, settings []string, problems map[string]string) {
	m.HarvesterRelease.Reset()
	m.HarvesterRelease.WithLabelValues(release, version, source).Set(1)
	for _, s := range settings {
		v := 0.0
		if _, ok := problems[s]; ok {
			v = 1
		}
		m.SettingProblems.WithLabelValues(s).Set(v)
	}
}

// GaugeFunc is a gauge vector whose samples a function computes at each scrape: for values
// that depend on the time of the scrape (an exception expires at a second, with no event)
// or on the configuration in force. Until Set, it has no samples.
type GaugeFunc struct {
	desc *prometheus.Desc
	fn   atomic.Pointer[func() []Sample]
}

// Sample is one series of a GaugeFunc: its label values, in the vector's order, and value.
type Sample struct {
	Labels []string
	Value  float64
}

// NewGaugeFunc makes a GaugeFunc named name with the given label names.
func NewGaugeFunc(name, help string, labels ...string) *GaugeFunc {
	return &GaugeFunc{desc: prometheus.NewDesc(name, help, labels, nil)}
}

// Set makes fn compute the samples from now on; it must be safe to call concurrently.
func (g *GaugeFunc) Set(fn func() []Sample) { g.fn.Store(&fn) }

// Describe implements prometheus.Collector.
func (g *GaugeFunc) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect implements prometheus.Collector.
func (g *GaugeFunc) Collect(ch chan<- prometheus.Metric) {
	fn := g.fn.Load()
	if fn == nil {
		return
	}
	for _, s := range (*fn)() {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, s.Value, s.Labels...)
	}
}
