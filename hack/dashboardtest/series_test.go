package dashboardtest

import (
	"reflect"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hcistorage/storage-webhook/metrics"
)

// targetLabels are the labels the Prometheus Operator gives every series a ServiceMonitor
// scrapes. With honor_labels false (the default, and the monitoring component's and the
// chart's ServiceMonitor), a label of the service's own with one of these names is kept as
// exported_<name>, and the name is the target's: storage_webhook_rule_would_deny_total's
// namespace (the object's) is exported_namespace in Prometheus, its namespace the pod's.
var targetLabels = []string{"job", "instance", "namespace", "service", "pod", "container", "endpoint"}

// exportedSeries gathers the live registry of metrics.New() after giving every vector
// (and GaugeFunc) of Metrics one series, and returns each series name with its label
// names: name_bucket (with le), name_sum and name_count for histograms, name (with
// quantile), name_sum and name_count for summaries. A collector that Describe names but
// Gather does not return fails the test, so a new metric cannot slip past the checks.
func exportedSeries(t testing.TB) map[string]labelSet {
	t.Helper()
	m := metrics.New()
	described := map[string]string{} // metric name: the Metrics field
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		field := v.Type().Field(i).Name
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Field(i).IsNil() {
			continue
		}
		for _, d := range describe(c) {
			name, names := descInfo(t, d)
			values := make([]string, len(names))
			for j := range values {
				values[j] = "x"
			}
			switch c := c.(type) {
			case *prometheus.CounterVec:
				c.WithLabelValues(values...).Inc()
			case *prometheus.GaugeVec:
				c.WithLabelValues(values...).Set(1)
			case *prometheus.HistogramVec:
				c.WithLabelValues(values...).Observe(0.001)
			case *prometheus.SummaryVec:
				c.WithLabelValues(values...).Observe(0.001)
			case *metrics.GaugeFunc:
				c.Set(func() []metrics.Sample { return []metrics.Sample{{Labels: values, Value: 1}} })
			}
			described[name] = field
		}
	}
	if len(described) == 0 {
		t.Fatal("metrics.Metrics has no collector fields")
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]labelSet{}
	for _, f := range families {
		names := labelSet{}
		for _, mt := range f.GetMetric() {
			for _, lp := range mt.GetLabel() {
				names[lp.GetName()] = true
			}
		}
		name := f.GetName()
		delete(described, name)
		with := func(extra string) labelSet {
			s := setOf(extra)
			for n := range names {
				s[n] = true
			}
			return s
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			series[name+"_bucket"] = with("le")
			series[name+"_sum"], series[name+"_count"] = names, names
		case dto.MetricType_SUMMARY:
			series[name] = with("quantile")
			series[name+"_sum"], series[name+"_count"] = names, names
		default:
			series[name] = names
		}
	}
	for name, field := range described {
		t.Fatalf("Metrics.%s describes %s, which Gather does not return: give exportedSeries a way to make a series of its type", field, name)
	}
	return series
}

func describe(c prometheus.Collector) []*prometheus.Desc {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	var descs []*prometheus.Desc
	for d := range ch {
		descs = append(descs, d)
	}
	return descs
}

// descInfo returns a Desc's metric name and variable label names (Desc keeps both
// private) from a constant metric of it, gathered: NewConstMetric refuses every count of
// label values but the right one.
func descInfo(t testing.TB, d *prometheus.Desc) (name string, labels []string) {
	t.Helper()
	for n := 0; n <= 16; n++ {
		values := make([]string, n)
		for i := range values {
			values[i] = "x" // a label with an empty value is no label
		}
		metric, err := prometheus.NewConstMetric(d, prometheus.UntypedValue, 0, values...)
		if err != nil {
			continue
		}
		r := prometheus.NewPedanticRegistry()
		if err := r.Register(constCollector{d, metric}); err != nil {
			t.Fatal(err)
		}
		families, err := r.Gather()
		if err != nil || len(families) != 1 || len(families[0].GetMetric()) != 1 {
			t.Fatalf("%s: gathered %d families: %v", d, len(families), err)
		}
		for _, lp := range families[0].GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		return families[0].GetName(), labels
	}
	t.Fatalf("%s: no label count from 0 to 16 makes a metric", d)
	return "", nil
}

type constCollector struct {
	desc   *prometheus.Desc
	metric prometheus.Metric
}

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.metric }

// scrapedSeries is what Prometheus holds after a ServiceMonitor scrape with honor_labels
// false: each series gets the target labels, and a label of the service's own that has a
// target label's name is renamed exported_<name>. Such a series is not given that target
// label here, although Prometheus has it: the dashboard must not read the pod's namespace
// where it means the object's, so namespace on storage_webhook_rule_would_deny_total is
// reported with a hint to use exported_namespace. renamed holds the renamed labels.
func scrapedSeries(exported map[string]labelSet) (series, renamed map[string]labelSet) {
	series, renamed = map[string]labelSet{}, map[string]labelSet{}
	for name, own := range exported {
		s := setOf(targetLabels...)
		for l := range own {
			if !slices.Contains(targetLabels, l) {
				s[l] = true
				continue
			}
			if renamed[name] == nil {
				renamed[name] = labelSet{}
			}
			renamed[name][l] = true
			delete(s, l)
			s["exported_"+l] = true
		}
		series[name] = s
	}
	return series, renamed
}
