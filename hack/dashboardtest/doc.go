// Package dashboardtest checks the Grafana dashboard of deploy/components/monitoring
// (dashboard.json; the chart's files/dashboard.json is a copy deploy/chart's tests keep
// equal): that Grafana can load it, and that every PromQL expression parses with
// Prometheus's own parser and reads only metrics and labels the live registry of
// metrics.New() exports.
//
// It is a module of its own (`make dashboard-test`) so that github.com/prometheus/prometheus,
// and what it requires, never raise the versions the service builds with: the service pins
// its k8s.io modules. The replace directive builds the metrics package from this checkout.
package dashboardtest
