package audit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"

	"github.com/hcistorage/storage-webhook/audit"
)

// TestHandlerServesThePlantedFindings: GET /audit over the planted view answers exactly the
// findings `audit -o json` prints, and the gauge counts them by rule and severity; other
// methods get 405, and an unsynced view 503 (never a partial audit).
func TestHandlerServesThePlantedFindings(t *testing.T) {
	env, view := plantedEnv(t)
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "f"}, []string{"rule", "severity"})
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
	for rule, sev := range map[string]string{"PVC-M1": "drift", "VS-V1": "violation", "SC-V3": "warning"} {
		if v := testutil.ToFloat64(gauge.WithLabelValues(rule, sev)); v != 1 {
			t.Errorf("gauge %s %s = %v, want 1", rule, sev, v)
		}
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
