package dashboardtest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// dashboardFile is the one source of the dashboard: the monitoring component generates its
// ConfigMap from it, and deploy/chart's TestChartFilesFromKustomizeBase keeps the chart's
// files/dashboard.json equal to it.
const dashboardFile = "../../deploy/components/monitoring/dashboard.json"

func readDashboard(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDashboard: the shipped dashboard is one Grafana loads (title, uid, schemaVersion,
// tags, a Prometheus datasource variable every panel and query uses; panels with unique
// ids, a place on the grid, a type, a title, a description, a unit and queries with a refId
// and an expression), and every expression, with Grafana's variables replaced, parses with
// Prometheus's parser and reads only series and labels the service exports.
func TestDashboard(t *testing.T) {
	series, renamed := scrapedSeries(exportedSeries(t))
	for _, p := range checkDashboard(readDashboard(t), series, renamed) {
		t.Error(p)
	}
}

// TestExportedSeries: the series list comes from the live registry, GaugeFuncs and
// histograms included, and models the scrape's renaming.
func TestExportedSeries(t *testing.T) {
	exported := exportedSeries(t)
	series, _ := scrapedSeries(exported)
	for name, want := range map[string][]string{
		"storage_webhook_request_duration_seconds_bucket":              {"webhook", "le"},
		"storage_webhook_request_duration_seconds_count":               {"webhook"},
		"storage_webhook_rule_results_total":                           {"rule", "result", "action"},
		"storage_webhook_audit_findings":                               {"rule", "severity", "action"},
		"storage_webhook_rule_action":                                  {"rule", "action"},
		"storage_webhook_exceptions":                                   {"state"},
		"storage_webhook_exception_expiry_timestamp_seconds":           {"exception"},
		"storage_webhook_rule_would_deny_total":                        {"rule", "action", "exported_namespace", "pod"},
		"storage_webhook_serving_certificate_expiry_timestamp_seconds": {"pod"},
		"go_goroutines": {"pod"},
	} {
		have, ok := series[name]
		if !ok {
			t.Errorf("%s is not exported", name)
			continue
		}
		for _, l := range want {
			if !have[l] {
				t.Errorf("%s lacks label %s (has %s)", name, l, have)
			}
		}
	}
	if series["storage_webhook_rule_would_deny_total"]["namespace"] {
		t.Error("storage_webhook_rule_would_deny_total keeps namespace after the scrape; want it renamed exported_namespace")
	}
	if _, ok := exported["storage_webhook_request_duration_seconds"]; ok {
		t.Error("a histogram's own name is not a series; want _bucket, _sum and _count only")
	}
}

// TestChecksReport: each check can fail. Every case breaks the shipped dashboard in one
// way and must be reported with the given words; the unbroken one reports nothing.
func TestChecksReport(t *testing.T) {
	series, renamed := scrapedSeries(exportedSeries(t))
	data := readDashboard(t)
	setExpr := func(expr string) func(d map[string]any) {
		return func(d map[string]any) { targetAt(d, 0, 0)["expr"] = expr }
	}
	for _, c := range []struct {
		name   string
		break_ func(d map[string]any)
		want   string // "": no problem at all
	}{
		{"unbroken", func(map[string]any) {}, ""},
		{"unknown metric", setExpr(`sum(rate(storage_webhook_no_such_total[$__rate_interval]))`), "unknown metric storage_webhook_no_such_total"},
		{"histogram without suffix", setExpr(`rate(storage_webhook_request_duration_seconds[$__rate_interval])`), "unknown metric storage_webhook_request_duration_seconds"},
		{"unknown label in a matcher", setExpr(`sum(rate(storage_webhook_rule_results_total{verb="x"}[$__rate_interval]))`), `matches on label "verb"`},
		{"unknown label in by", setExpr(`sum by (rule, verb) (rate(storage_webhook_rule_results_total[$__rate_interval]))`), `have no label "verb"`},
		{"unknown label in without", setExpr(`sum without (verb) (rate(storage_webhook_rule_results_total[$__rate_interval]))`), `have no label "verb"`},
		{"label an inner aggregation dropped", setExpr(`max by (rule) (sum by (action) (storage_webhook_rule_action))`), `have no label "rule"`},
		{"on label missing on one side", setExpr(`storage_webhook_rule_action * on (rule) storage_webhook_exceptions`), `label "rule" is not on both sides`},
		{"ignoring label on neither side", setExpr(`storage_webhook_rule_action * ignoring (verb) storage_webhook_rule_action`), `neither side has label "verb"`},
		{"group_left label missing", setExpr(`storage_webhook_rule_action * on (rule) group_left (severity) storage_webhook_rule_results_total`), `right side has no label "severity"`},
		{"le outside a histogram", setExpr(`histogram_quantile(0.9, sum by (le) (rate(storage_webhook_requests_total[$__rate_interval])))`), `have no label "le"`},
		{"the pod's namespace for the object's", setExpr(`sum by (rule, namespace) (increase(storage_webhook_rule_would_deny_total[$__range]))`), "exported_namespace"},
		{"unparsable expression", setExpr(`sum by (rule (rate(storage_webhook_rule_results_total[$__rate_interval]))`), "does not parse"},
		{"unknown variable", setExpr(`sum(rate(storage_webhook_rule_results_total{rule=~"$nosuch"}[$__rate_interval]))`), "unknown variable $nosuch"},
		{"empty expression", setExpr(""), "no expr"},
		{"legend naming a dropped label", func(d map[string]any) { targetAt(d, 0, 0)["legendFormat"] = "{{rule}} {{webhook}}" }, `names "webhook"`},
		{"no refId", func(d map[string]any) { delete(targetAt(d, 0, 0), "refId") }, "no refId"},
		{"panel without unit", func(d map[string]any) {
			delete(panelAt(d, 0)["fieldConfig"].(map[string]any)["defaults"].(map[string]any), "unit")
		}, "no unit"},
		{"panel without title", func(d map[string]any) { panelAt(d, 1)["title"] = "" }, "no title"},
		{"panel without type", func(d map[string]any) { delete(panelAt(d, 1), "type") }, "no type"},
		{"panel without description", func(d map[string]any) { delete(panelAt(d, 1), "description") }, "no description"},
		{"panel without gridPos", func(d map[string]any) { delete(panelAt(d, 1), "gridPos") }, "no gridPos"},
		{"panel off the grid", func(d map[string]any) { panelAt(d, 1)["gridPos"].(map[string]any)["w"] = 9 }, "not inside the 24-column grid"},
		{"overlapping panels", func(d map[string]any) { panelAt(d, 1)["gridPos"].(map[string]any)["x"] = 12 }, "overlaps"},
		{"duplicate panel id", func(d map[string]any) { panelAt(d, 1)["id"] = panelAt(d, 0)["id"] }, "is also panel"},
		{"panel without targets", func(d map[string]any) { delete(panelAt(d, 1), "targets") }, "no targets"},
		{"panel on another datasource", func(d map[string]any) {
			panelAt(d, 1)["datasource"] = map[string]any{"type": "prometheus", "uid": "prom-1"}
		}, "want {type: prometheus, uid: ${datasource}}"},
		{"no datasource variable", func(d map[string]any) {
			tl := d["templating"].(map[string]any)
			tl["list"] = tl["list"].([]any)[1:]
		}, "no datasource variable"},
		{"variable query reading an unknown label", func(d map[string]any) {
			v := d["templating"].(map[string]any)["list"].([]any)[1].(map[string]any)
			v["query"] = "label_values(storage_webhook_rule_action, verb)"
		}, `has no label "verb"`},
		{"no uid", func(d map[string]any) { delete(d, "uid") }, "uid"},
		{"no title", func(d map[string]any) { d["title"] = " " }, "no title"},
		{"old schemaVersion", func(d map[string]any) { d["schemaVersion"] = 27 }, "schemaVersion 27"},
		{"not JSON", nil, "does not decode"},
	} {
		t.Run(c.name, func(t *testing.T) {
			broken := []byte("{")
			if c.break_ != nil {
				var d map[string]any
				if err := json.Unmarshal(data, &d); err != nil {
					t.Fatal(err)
				}
				c.break_(d)
				var err error
				if broken, err = json.Marshal(d); err != nil {
					t.Fatal(err)
				}
			}
			problems := checkDashboard(broken, series, renamed)
			if c.want == "" {
				for _, p := range problems {
					t.Error(p)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, c.want) {
					t.Logf("reported: %s", p)
					return
				}
			}
			t.Errorf("no problem mentions %q; got %q", c.want, problems)
		})
	}
}

func panelAt(d map[string]any, i int) map[string]any {
	return d["panels"].([]any)[i].(map[string]any)
}

func targetAt(d map[string]any, panel, i int) map[string]any {
	return panelAt(d, panel)["targets"].([]any)[i].(map[string]any)
}
