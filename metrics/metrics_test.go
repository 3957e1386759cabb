package metrics

import (
	"crypto/tls"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/certs"
)

// prometheusRule is the part of deploy/components/monitoring/prometheusrule.yaml the test reads.
type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// targetLabels are the labels Prometheus Operator puts on every series a ServiceMonitor
// scrapes; an alert may group by them although no collector has them.
var targetLabels = []string{"pod", "namespace", "service", "instance", "job", "container", "endpoint"}

// TestAlertsUseRegisteredMetrics: every metric an alert expression reads is one that New
// registers, every label it matches on is one that metric has, and every label it groups
// by is one of those or a target label, so no alert watches a series that never exists.
func TestAlertsUseRegisteredMetrics(t *testing.T) {
	series := registeredSeries(t)
	data, err := os.ReadFile("../deploy/components/monitoring/prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pr prometheusRule
	if err := yaml.UnmarshalStrict(data, &pr); err != nil {
		t.Fatalf("prometheusrule.yaml: %v", err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || len(pr.Spec.Groups) == 0 {
		t.Fatalf("prometheusrule.yaml is a %s %s with %d groups, want a monitoring.coreos.com/v1 PrometheusRule with alerts", pr.APIVersion, pr.Kind, len(pr.Spec.Groups))
	}
	anchors := troubleshootingAnchors(t)
	alerts := map[string]bool{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if alerts[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			if !strings.Contains(r.Annotations["runbook"], "README.md#troubleshooting") {
				t.Errorf("%s: runbook %q does not point at the README's troubleshooting section", r.Alert, r.Annotations["runbook"])
			}
			if m := runbookAnchor.FindStringSubmatch(r.Annotations["runbook"]); m == nil || !anchors[m[1]] {
				t.Errorf("%s: runbook %q names no heading of docs/troubleshooting.md", r.Alert, r.Annotations["runbook"])
			}
			if r.Labels["severity"] == "" {
				t.Errorf("%s: no severity label", r.Alert)
			}
			refs := promqlRefs(r.Expr)
			if len(refs.metrics) == 0 {
				t.Errorf("%s: expression %q reads no metric", r.Alert, r.Expr)
			}
			known := slices.Clone(targetLabels)
			for _, name := range refs.metrics {
				labels, ok := series[name]
				if !ok {
					t.Errorf("%s: metric %s is not registered by metrics.New()", r.Alert, name)
					continue
				}
				known = append(known, labels...)
				for _, l := range refs.matchers[name] {
					if !slices.Contains(labels, l) {
						t.Errorf("%s: %s has no label %q (it has %v)", r.Alert, name, l, labels)
					}
				}
			}
			for _, l := range refs.grouping {
				if !slices.Contains(known, l) {
					t.Errorf("%s: groups by %q, which neither its metrics nor the scrape target have", r.Alert, l)
				}
			}
		}
	}
	// The alerts deploy/README.md and docs/troubleshooting.md describe.
	for _, a := range []string{"StorageWebhookHighLatency", "StorageWebhookDenialsSpike", "StorageWebhookCachesNotSynced",
		"StorageWebhookCertificateExpiring", "StorageWebhookPanics", "StorageWebhookProviderReloadFailed", "StorageWebhookAccessReviewsFailing"} {
		if !alerts[a] {
			t.Errorf("alert %s is missing", a)
		}
	}
}

var runbookAnchor = regexp.MustCompile(`docs/troubleshooting\.md#([a-z0-9-]+)`)

// troubleshootingAnchors are the GitHub anchors of the headings of docs/troubleshooting.md.
func troubleshootingAnchors(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("../docs/troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		var b strings.Builder
		for _, c := range strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#"))) {
			switch {
			case c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_':
				b.WriteRune(c)
			case c == ' ':
				b.WriteByte('-')
			}
		}
		anchors[b.String()] = true
	}
	return anchors
}

// registeredSeries gathers the registry of New, after giving every vector one child, and
// returns each series name (with _bucket, _sum and _count for histograms and summaries)
// and its label names.
func registeredSeries(t *testing.T) map[string][]string {
	t.Helper()
	m := New()
	m.Requests.WithLabelValues("w", "r", "CREATE", "allowed").Inc()
	m.Duration.WithLabelValues("w").Observe(0.001)
	m.RuleResults.WithLabelValues("PVC-V3", "deny", "Enforce").Inc()
	m.WouldDeny.WithLabelValues("PVC-V3", "Audit", "default").Inc()
	m.CacheSynced.WithLabelValues("pvcs").Set(1)
	m.ProviderLoads.WithLabelValues("failure").Inc()
	m.AuditFindings.Set(func() []Sample { return []Sample{{Labels: []string{"PVC-V3", "violation", "Enforce"}, Value: 1}} })
	m.RuleAction.Set(func() []Sample { return []Sample{{Labels: []string{"PVC-V3", "Audit"}, Value: 1}} })
	m.Exceptions.Set(func() []Sample { return []Sample{{Labels: []string{"active"}, Value: 1}} })
	m.ExceptionExpiry.Set(func() []Sample { return []Sample{{Labels: []string{"legacy-vm"}, Value: 2e9}} })
	m.AccessReviews.WithLabelValues("allowed", "false").Inc()
	m.SetHarvesterRelease("v1.8", "v1.8.2", "setting", []string{"csi-driver-config"}, nil)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gathered := map[string]*dto.MetricFamily{}
	for _, f := range families {
		gathered[f.GetName()] = f
	}
	// A collector added to Metrics must be touched above, or its series would be missing
	// here and an alert on it would be reported as unknown.
	for _, name := range collectorNames(t, m) {
		if gathered[name] == nil {
			t.Fatalf("%s is registered but not gathered: give its vector a child in registeredSeries", name)
		}
	}
	series := map[string][]string{}
	for name, f := range gathered {
		var labels []string
		for _, mt := range f.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if !slices.Contains(labels, lp.GetName()) {
					labels = append(labels, lp.GetName())
				}
			}
		}
		sort.Strings(labels)
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			series[name+"_bucket"] = append(slices.Clone(labels), "le")
			series[name+"_sum"], series[name+"_count"] = labels, labels
		case dto.MetricType_SUMMARY:
			series[name] = append(slices.Clone(labels), "quantile")
			series[name+"_sum"], series[name+"_count"] = labels, labels
		default:
			series[name] = labels
		}
	}
	return series
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// collectorNames are the metric names of every collector field of Metrics, from Describe.
func collectorNames(t *testing.T, m *Metrics) []string {
	t.Helper()
	var names []string
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "Registry" {
			continue
		}
		ch := make(chan *prometheus.Desc, 8)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			match := fqName.FindStringSubmatch(d.String())
			if match == nil {
				t.Fatalf("%s: cannot read the name of %s", v.Type().Field(i).Name, d)
			}
			names = append(names, match[1])
		}
	}
	if len(names) == 0 {
		t.Fatal("Metrics has no collectors")
	}
	return names
}

// refs are what a PromQL expression reads: metric names, the label names each selector
// matches on, and the label names of by/without/on/ignoring/group_left/group_right.
type refs struct {
	metrics  []string
	matchers map[string][]string
	grouping []string
}

var (
	// grouping keywords take a parenthesised list of label names.
	groupingKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	// operators and modifiers that look like identifiers.
	keywords = []string{"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
	// aggregations may have "by (...)" between their name and their "(".
	aggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)

// promqlRefs is a small PromQL lexer, enough for alert expressions: an identifier followed
// by "(" is a function (or a grouping keyword with its label list), one followed by "{"
// or anything else is a metric name; strings, numbers, durations and ranges are skipped.
func promqlRefs(expr string) refs {
	r := refs{matchers: map[string][]string{}}
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	i := 0
	skipSpace := func() {
		for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
	}
	ident := func() string {
		start := i
		for i < len(expr) && isIdent(expr[i]) {
			i++
		}
		return expr[start:i]
	}
	skipString := func() {
		quote := expr[i]
		for i++; i < len(expr) && expr[i] != quote; i++ {
			if expr[i] == '\\' && quote != '`' {
				i++
			}
		}
		i++
	}
	// labelList reads "(a, b)" or "{a="x", b=~"y"}" and returns the label names.
	labelList := func(closing byte) []string {
		var names []string
		for i++; i < len(expr) && expr[i] != closing; {
			switch c := expr[i]; {
			case c == '"' || c == '\'' || c == '`':
				skipString()
			case isIdentStart(c):
				names = append(names, ident())
			default:
				i++
			}
		}
		i++
		return names
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			skipString()
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case c == '[':
			for i < len(expr) && expr[i] != ']' {
				i++
			}
		case c == '{':
			labelList('}') // a selector without a metric name
		case isIdentStart(c):
			name := ident()
			skipSpace()
			switch {
			case slices.Contains(groupingKeywords, name):
				if i < len(expr) && expr[i] == '(' {
					r.grouping = append(r.grouping, labelList(')')...)
				}
			case i < len(expr) && expr[i] == '(' || slices.Contains(aggregations, name):
				// a function or aggregation; its arguments are read on
			case slices.Contains(keywords, strings.ToLower(name)):
			default:
				if !slices.Contains(r.metrics, name) {
					r.metrics = append(r.metrics, name)
				}
				if i < len(expr) && expr[i] == '{' {
					r.matchers[name] = append(r.matchers[name], labelList('}')...)
				}
			}
		default:
			i++
		}
	}
	return r
}

func TestPromqlRefs(t *testing.T) {
	got := promqlRefs(`histogram_quantile(0.99, sum by (le, webhook) (rate(a_bucket{x="b{c}", y=~'d'}[5m]))) >= 1e-3
		and on(pod) group_left (z) max(b_total offset 5m) by (pod) - time() < 14*24*3600 unless c`)
	want := refs{metrics: []string{"a_bucket", "b_total", "c"}, matchers: map[string][]string{"a_bucket": {"x", "y"}},
		grouping: []string{"le", "webhook", "pod", "z", "pod"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestServingCertificateExpiry: the gauge is the NotAfter of the certificate, with or
// without a parsed Leaf.
func TestServingCertificateExpiry(t *testing.T) {
	m := New()
	if got := testutil.ToFloat64(m.ServingCertificateExpiry); got != 0 {
		t.Errorf("before a certificate: %v, want 0", got)
	}
	cert, err := certs.SelfSigned([]string{"localhost"}, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := float64(cert.Leaf.NotAfter.Unix())
	for name, c := range map[string]tls.Certificate{"leaf": cert, "no leaf": {Certificate: cert.Certificate, PrivateKey: cert.PrivateKey}} {
		m.ServingCertificateExpiry.Set(0)
		if err := m.SetServingCertificate(c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := testutil.ToFloat64(m.ServingCertificateExpiry); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if err := m.SetServingCertificate(tls.Certificate{}); err == nil {
		t.Error("an empty certificate was accepted")
	}
}
