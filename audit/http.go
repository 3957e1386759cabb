package audit

import (
	"encoding/json"
	"net/http"
)

// Handler serves GET /audit: the live findings as the JSON array of `audit -o json`, or 503
// until the watch caches have synced (an audit of a partial view would be wrong). It does
// not authenticate: serve wraps it in the API server's authentication and authorization,
// because findings name objects in every namespace.
func Handler(live *Live, ready func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "/audit answers GET only", http.StatusMethodNotAllowed)
			return
		}
		if !ready() {
			http.Error(w, "watch caches not synced yet: the audit is incomplete", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(live.Findings())
	})
}
