package webhook

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	sigsjson "sigs.k8s.io/json"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/metrics"
	"github.com/hcistorage/storage-webhook/rollout"
)

// DefaultMaxBodyBytes is the default request body cap of SPEC §5.2 (7 MiB: an object of the
// API server's 3 MiB maximum appears twice in an UPDATE review, plus the envelope).
const DefaultMaxBodyBytes = 7 << 20

// Handler serves the admission webhooks of a route table. It does what kubewebhook v2.7.0's
// HTTP handler does not (measured): refuses a review without a request (kubewebhook
// dereferences it and panics) or without a UID, refuses admission.k8s.io/v1beta1, caps the
// body with 413 at a configurable size, checks the Content-Type, answers 503 before the
// caches have synced, and gives denials a status code and audit annotations.
type Handler struct {
	Hooks        []*Hook
	MaxBodyBytes int64
	// Ready reports whether requests may be answered; before that they get 503.
	Ready   func() bool
	Log     *logrus.Logger
	Metrics *metrics.Metrics
}

// Mux routes each hook's path to it. Paths are matched after path.Clean and never
// redirected: an API server does not follow a redirect of a webhook call, and envtest
// registers URLs like https://host:port//mutate/x.
func (h *Handler) Mux() http.Handler {
	routes := make(map[string]http.Handler, len(h.Hooks))
	for _, hook := range h.Hooks {
		routes[hook.ID()] = h.For(hook)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if route, ok := routes[path.Clean("/"+r.URL.Path)]; ok {
			route.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}

// For returns the HTTP handler of one hook. The hook's metric labels and its latency
// histogram are looked up once here, not for every request.
func (h *Handler) For(hook *Hook) http.Handler {
	id, resource := hook.ID(), hook.Route.GroupResource()
	var duration prometheus.Observer
	if h.Metrics != nil {
		duration = h.Metrics.Duration.WithLabelValues(id)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		outcome, op := "error", "unknown"
		defer func() {
			// A panic outside the rules (they recover their own) fails this request only.
			if p := recover(); p != nil {
				if h.Metrics != nil {
					h.Metrics.PanicsRecovered.Inc()
				}
				h.Log.WithFields(logrus.Fields{"webhook": id, "panic": fmt.Sprint(p), "stack": string(debug.Stack())}).Error("request failed: internal error")
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
			if h.Metrics != nil {
				h.Metrics.Requests.WithLabelValues(id, resource, op, outcome).Inc()
				duration.Observe(time.Since(start).Seconds())
			}
		}()
		outcome, op = h.serve(hook, w, r)
	})
}

// httpError answers a request that is not a usable AdmissionReview.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// serve answers one request and returns its outcome and operation for the metrics.
func (h *Handler) serve(hook *Hook, w http.ResponseWriter, r *http.Request) (outcome, op string) {
	review, err := h.readReview(r)
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			he = &httpError{http.StatusBadRequest, err.Error()}
		}
		h.Log.WithFields(logrus.Fields{"webhook": hook.ID(), "status": he.code}).Warn("request refused: " + he.msg)
		if he.code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		http.Error(w, he.msg, he.code)
		return "rejected", "unknown"
	}
	req := review.Request
	op = string(req.Operation)
	// The entry is built only when a line is written (most requests write none), in one
	// map with the line's own fields, which the entry takes as it is: WithFields and each
	// further WithField would copy it again.
	log := func(more ...any) logrus.FieldLogger {
		fields := make(logrus.Fields, 8+len(more)/2)
		fields["webhook"], fields["uid"], fields["operation"], fields["kind"] = hook.ID(), string(req.UID), string(req.Operation), req.Kind.Kind
		fields["namespace"], fields["name"], fields["user"] = req.Namespace, req.Name, req.UserInfo.Username
		fields["dryRun"] = req.DryRun != nil && *req.DryRun
		for i := 0; i+1 < len(more); i += 2 {
			fields[more[i].(string)] = more[i+1]
		}
		return &logrus.Entry{Logger: h.Log, Data: fields}
	}
	if h.Ready != nil && !h.Ready() {
		log().Warn("request refused: watch caches have not synced yet")
		w.Header().Set("Retry-After", "1")
		http.Error(w, "storage-webhook is not ready: watch caches have not synced yet", http.StatusServiceUnavailable)
		return "error", op
	}

	res, err := hook.Admit(r.Context(), req)
	if err != nil {
		more := []any{logrus.ErrorKey, err}
		var pe *PanicError
		if errors.As(err, &pe) {
			more = append(more, "stack", string(pe.Stack))
			if h.Metrics != nil {
				h.Metrics.PanicsRecovered.Inc()
			}
		}
		log(more...).Error("request failed")
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return "error", op
	}
	h.record(log, &res, req.Namespace)

	resp, outcome := Response(req.UID, hook.Mutating(), &res)
	body, err := json.Marshal(&admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	if err != nil {
		log(logrus.ErrorKey, err).Error("encode response")
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return "error", op
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return outcome, op
}

// readReview reads and checks the envelope: POST, JSON, under the cap, an
// admission.k8s.io/v1 AdmissionReview with a request and a UID.
func (h *Handler) readReview(r *http.Request) (*admissionv1.AdmissionReview, error) {
	if r.Method != http.MethodPost {
		return nil, &httpError{http.StatusMethodNotAllowed, "method " + r.Method + " is not allowed: send AdmissionReviews with POST"}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, &httpError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not supported: send application/json", ct)}
		}
	} else {
		return nil, &httpError{http.StatusUnsupportedMediaType, "Content-Type is missing: send application/json"}
	}
	limit := h.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, &httpError{http.StatusBadRequest, "read body: " + err.Error()}
	}
	if int64(len(body)) > limit {
		return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", limit)}
	}
	return DecodeReview(body)
}

// DecodeReview decodes and checks an admission.k8s.io/v1 AdmissionReview request.
func DecodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, errors.New("body is empty: send an admission.k8s.io/v1 AdmissionReview")
	}
	var review admissionv1.AdmissionReview
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &review); err != nil {
		return nil, fmt.Errorf("body is not an AdmissionReview: %v", err)
	}
	switch {
	case review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview":
		return nil, fmt.Errorf("body has apiVersion %s and kind %s, not an admission.k8s.io/v1 AdmissionReview: register the webhook with admissionReviewVersions [v1]",
			quoteOrNone(review.APIVersion), quoteOrNone(review.Kind))
	case review.Request == nil:
		return nil, errors.New("AdmissionReview has no request")
	case review.Request.UID == "":
		return nil, errors.New("AdmissionReview request has no uid")
	}
	return &review, nil
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}

// record logs one line per denial (SPEC §5.7) and per result the rollout kept out of the
// answer (a rule in Audit, an exception, a rule in Warn's denial), and counts each rule's
// result with its action: deny, warn, audit, skip and patch, once per rule and request for
// operations. A denial of a rule in Warn or Audit also counts as a request it would have
// denied, by namespace (the dashboard's "ready to enforce"). A rule's own warning is logged
// only at debug level, like a plain allow: it is already in the answer (kubectl shows it),
// in the API server's audit log (the reason audit annotation) and in the rule metrics, and
// its line cost the image review, which warns, 8 µs of its 86 (a profile, BENCHMARKS.md §7).
func (h *Handler) record(log func(...any) logrus.FieldLogger, res *admit.Result, namespace string) {
	count := func(rule, result string, action rollout.Action) {
		if h.Metrics != nil {
			h.Metrics.RuleResults.WithLabelValues(rule, result, string(cmp.Or(action, rollout.Enforce))).Inc()
		}
	}
	wouldDeny := func(f *admit.Finding) {
		if h.Metrics != nil {
			h.Metrics.WouldDeny.WithLabelValues(f.Rule, string(f.Action), namespace).Inc()
		}
	}
	for _, d := range res.Denials {
		count(d.Rule, "deny", rollout.Enforce)
		log("rule", d.Rule).Info("denied: " + d.Message)
	}
	debug := h.Log.IsLevelEnabled(logrus.DebugLevel)
	for i := range res.Warnings {
		w := &res.Warnings[i]
		count(w.Rule, "warn", w.Action)
		if w.Denial {
			wouldDeny(w)
			log("rule", w.Rule, "action", string(w.Action)).Info("warned instead of denying: " + w.Message)
		} else if debug {
			log("rule", w.Rule).Debug("warning: " + w.Message)
		}
	}
	for i := range res.Recorded {
		f := &res.Recorded[i]
		if f.Exception != "" {
			count(f.Rule, "skip", f.Action)
			log("rule", f.Rule, "action", string(f.Action), "exception", f.Exception).Info("skipped by exception: " + f.Message)
			continue
		}
		count(f.Rule, "audit", f.Action)
		if f.Denial {
			wouldDeny(f)
			log("rule", f.Rule, "action", string(f.Action)).Info("audit: would deny: " + f.Message)
		} else {
			log("rule", f.Rule, "action", string(f.Action)).Info("audit: would warn: " + f.Message)
		}
	}
	for _, rule := range res.Mutations() {
		count(rule, "patch", rollout.Enforce)
	}
	for _, w := range res.WithheldPatches() {
		if w.Exception != "" {
			count(w.Rule, "skip", w.Action)
			log("rule", w.Rule, "action", string(w.Action), "exception", w.Exception).Info("skipped by exception: would patch " + w.Patch)
		} else {
			count(w.Rule, "audit", w.Action)
			log("rule", w.Rule, "action", string(w.Action)).Info("audit: would patch " + w.Patch)
		}
	}
	if len(res.Denials) == 0 && len(res.Warnings) == 0 && debug {
		log().Debug("allowed")
	}
}

// Response builds the admission response of a result. Denials are answers (HTTP 200,
// allowed: false) with code 403, 400 when the object did not parse, or 503 when the only
// denials are answers that could not be had yet (Result.Retryable); the rule IDs and
// the reason go into audit annotations so the API server's audit log records why.
func Response(uid types.UID, mutating bool, res *admit.Result) (*admissionv1.AdmissionResponse, string) {
	resp := &admissionv1.AdmissionResponse{UID: uid, Allowed: res.Allowed(), Warnings: res.WarningTexts()}
	outcome, reasonText := "allowed", strings.Join(resp.Warnings, "; ")
	if !res.Allowed() {
		code, reason := int32(http.StatusForbidden), metav1.StatusReasonForbidden
		for _, d := range res.Denials {
			if d.Rule == admit.RuleDecode {
				code, reason = http.StatusBadRequest, metav1.StatusReasonBadRequest
			}
		}
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: res.Message()}
		if res.Retryable() {
			// The API server passes the code and the delay on to the client, and
			// client-go retries a 503 that carries Retry-After.
			resp.Result.Code, resp.Result.Reason = http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable
			resp.Result.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
		}
		outcome, reasonText = "denied", resp.Result.Message
	} else if mutating && len(res.Patch) > 0 {
		patch, _ := json.Marshal(res.Patch) // ops hold strings and string maps only
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
		outcome = "patched"
	}
	if ann := auditAnnotations(res, reasonText); len(ann) > 0 {
		resp.AuditAnnotations = ann
	}
	return resp, outcome
}

// auditAnnotations say which rules acted and why (reason: the denial message, else the
// warnings), and what the rollout kept out of the answer: audit-<rule> holds what a rule in
// Audit would have denied or patched, skipped-<rule> the exception that let the object
// skip it and what the rule found. The API server prefixes the keys with the webhook's name
// in the audit log.
func auditAnnotations(res *admit.Result, reason string) map[string]string {
	ann := map[string]string{}
	if ids := res.Rules(); len(ids) > 0 {
		ann["rules"] = strings.Join(ids, ",")
		ann["reason"] = reason
	}
	if ids := res.Mutations(); len(ids) > 0 {
		ann["mutated-by"] = strings.Join(ids, ",")
	}
	add := func(key, text string) {
		if ann[key] != "" {
			text = ann[key] + "; " + text
		}
		ann[key] = text
	}
	for _, f := range res.Recorded {
		if f.Exception != "" {
			add("skipped-"+f.Rule, "exception "+f.Exception+": "+f.Message)
		} else if f.Denial {
			add("audit-"+f.Rule, "would deny: "+f.Message)
		} else {
			add("audit-"+f.Rule, "would warn: "+f.Message)
		}
	}
	for _, w := range res.WithheldPatches() {
		if w.Exception != "" {
			add("skipped-"+w.Rule, "exception "+w.Exception+": would patch "+w.Patch)
		} else {
			add("audit-"+w.Rule, "would patch "+w.Patch)
		}
	}
	return ann
}
