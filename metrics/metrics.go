// Package metrics defines the Prometheus metrics of storage-webhook. They live in a
// registry of their own (no global state), served at /metrics.
package metrics

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the service's collectors.
type Metrics struct {
	Registry        *prometheus.Registry
	Requests        *prometheus.CounterVec   // webhook, resource, operation, outcome
	Duration        *prometheus.HistogramVec // webhook
	RuleResults     *prometheus.CounterVec   // rule, result (deny|warn|mutate)
	CacheSynced     *prometheus.GaugeVec     // informer
	ProviderLoads   *prometheus.CounterVec   // result (success|failure)
	PanicsRecovered prometheus.Counter
	// ServingCertificateExpiry is the NotAfter of the serving certificate in use, in Unix seconds
	// (0 until a certificate is set with SetServingCertificate).
	ServingCertificateExpiry prometheus.Gauge
	// AuditFindings counts the stored objects' current findings by rule and severity
	// (violation, drift, warning); no object names (audit/live.go).
	AuditFindings *prometheus.GaugeVec
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
			Help: "Rule outcomes by rule ID and result (deny, warn, mutate).",
		}, []string{"rule", "result"}),
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
		AuditFindings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "storage_webhook_audit_findings",
			Help: "Findings of the audit of stored objects by rule and severity (violation, drift, warning).",
		}, []string{"rule", "severity"}),
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
	}
	m.Registry.MustRegister(m.Requests, m.Duration, m.RuleResults, m.CacheSynced, m.ProviderLoads, m.PanicsRecovered, m.ServingCertificateExpiry,
		m.AuditFindings, m.AuditObjects, m.AccessReviews, m.HarvesterRelease, m.SettingProblems,
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
