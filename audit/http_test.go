package audit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/hcistorage/storage-webhook/audit"
	"github.com/hcistorage/storage-webhook/metrics"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/webhook"
)

// TestHandlerServesThePlantedFindings: GET /audit over the planted view answers exactly the
// findings `audit -o json` prints, and the gauge counts them by rule and severity; other
// methods get 405, and an unsynced view 503 (never a partial audit).
func TestHandlerServesThePlantedFindings(t *testing.T) {
	env, view := plantedEnv(t)
	gauge := metrics.NewGaugeFunc("f", "findings", "rule", "severity", "action")
	live := audit.NewLive(audit.New(env), view.Cache, gauge, nil, logrus.New())
	live.Start(context.Background())
	ready := true
	h := audit.Handler(live, func() bool { return ready })

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/audit", nil))
	var got []audit.Finding
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
		t.Fatalf("GET: %d %s", rec.Code, rec.Body)
	}
	want, _ := audit.New(env).All(view)
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(got)
	if string(gotJSON) != string(wantJSON) || len(got) != 16 {
		t.Errorf("GET /audit answered %d findings\n%s\nwant the 16 of All\n%s", len(got), gotJSON, wantJSON)
	}
	samples := gaugeSamples(t, gauge)
	for rule, sev := range map[string]string{"PVC-M1": "drift", "VS-V1": "violation", "SC-V3": "warning"} {
		if v := samples["action=Enforce,rule="+rule+",severity="+sev]; v != 1 {
			t.Errorf("gauge %s %s Enforce = %v, want 1", rule, sev, v)
		}
	}
	if v, ok := samples["action=Enforce,rule=SP-M1,severity=violation"]; !ok || v != 0 {
		t.Errorf("gauge SP-M1 violation Enforce = %v, %v; want a series at 0", v, ok)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/audit", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodGet {
		t.Errorf("POST: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	ready = false
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/audit", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("unsynced: %d, want 503", rec.Code)
	}
}

// gaugeSamples gathers a collector's samples by their labels, "name=value" joined with
// commas in the order of the names.
func gaugeSamples(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var values []string
			for _, l := range m.GetLabel() {
				values = append(values, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(values, ",")] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestLiveDecidesWhenRead: /audit and the gauge apply the rollout in force when they are
// read: an exception skips its finding until the second it expires, and then the finding
// is a violation again, with no event and no re-audit; a rule Off has no findings.
func TestLiveDecidesWhenRead(t *testing.T) {
	env, view := plantedEnv(t)
	f, err := providers.Parse([]byte(`rules: {SC-V1: {action: Off}, VM-V2: {action: Warn}}
exceptions:
- {name: small-root, rules: [VM-V1], names: [vm-v1-*], expires: "2030-01-01T00:00:00Z", reason: r}
`), webhook.Catalogue())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2029, 12, 31, 23, 59, 59, 0, time.UTC)
	f.Policy().Now = func() time.Time { return now }
	env.Providers = providers.NewStore(f)
	gauge := metrics.NewGaugeFunc("f", "findings", "rule", "severity", "action")
	live := audit.NewLive(audit.New(env), view.Cache, gauge, nil, logrus.New())
	live.Start(context.Background())
	find := func(rule string) (audit.Finding, bool) {
		for _, f := range live.Findings() {
			if f.Rule == rule {
				return f, true
			}
		}
		return audit.Finding{}, false
	}
	if f, _ := find("VM-V1"); f.Severity != audit.Skip || f.Exception != "small-root" {
		t.Errorf("before the expiry: %+v", f)
	}
	if f, ok := find("SC-V1"); ok {
		t.Errorf("a rule Off has a finding: %+v", f)
	}
	if f, _ := find("VM-V2"); f.Severity != audit.Violation || f.Action != "Warn" {
		t.Errorf("a rule in Warn: %+v", f)
	}
	if v := gaugeSamples(t, gauge)["action=Enforce,rule=VM-V1,severity=skip"]; v != 1 {
		t.Errorf("gauge of the skip = %v", v)
	}
	now = now.Add(time.Second)
	if f, _ := find("VM-V1"); f.Severity != audit.Violation || f.Exception != "" {
		t.Errorf("at the expiry: %+v", f)
	}
	if s := gaugeSamples(t, gauge); s["action=Enforce,rule=VM-V1,severity=violation"] != 1 || s["action=Enforce,rule=VM-V1,severity=skip"] != 0 {
		t.Errorf("gauge at the expiry: %v", s)
	}
}
