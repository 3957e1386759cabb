// Package metrics defines the Prometheus metrics of storage-webhook. They live in a
// registry of their own (no global state), served at /metrics.
package metrics

import (
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
	}
	m.Registry.MustRegister(m.Requests, m.Duration, m.RuleResults, m.CacheSynced, m.ProviderLoads, m.PanicsRecovered,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
