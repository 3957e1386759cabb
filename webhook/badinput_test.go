package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/hcistorage/storage-webhook/webhook"
)

// badInputCase is one malformed or hostile request sent through the real HTTP handler. Its
// body is testdata/badinput/<file>; build, when set, makes the large inputs (huge values,
// deep nesting, bodies at the size cap) from that file in Go instead of committing them.
type badInputCase struct {
	name string
	file string // under ../testdata/badinput
	// path, contentType and method default to /validate/persistentvolumeclaims,
	// application/json and POST; contentType noContentType sends no Content-Type header.
	path, contentType, method string
	// maxBody sets Handler.MaxBodyBytes from the body; nil keeps the 7 MiB default.
	maxBody func(body []byte) int64
	build   func(t *testing.T, file []byte) []byte

	status int // the exact HTTP status
	// text holds fragments of the HTTP body (non-200) or of the denial message (200), each
	// of which must be present: they prove the answer names what is wrong.
	text []string
	// For 200 answers: allowed, the denial's status code, the rule IDs of the audit
	// annotation "rules", the rules that patched, one fragment per expected warning, and
	// the exact patch when one is expected.
	allowed   bool
	code      int32
	rules     []string
	mutatedBy []string
	warnings  []string
	patch     string
	// sameAs names an earlier case whose response must be identical, byte for byte.
	sameAs string
	header map[string]string // response headers that must be set
}

const (
	noContentType = "-"
	pvcValidate   = "/validate/persistentvolumeclaims"
	pvcMutate     = "/mutate/persistentvolumeclaims"
	vmValidate    = "/validate/virtualmachines"
	// quantityRegexp is resource.ParseQuantity's error text.
	quantityRegexp = "quantities must match the regular expression"
)

var envelopeHint = "not an admission.k8s.io/v1 AdmissionReview: register the webhook with admissionReviewVersions [v1]"

// TestBadInputTable: no input crashes the handler or gets a 500; a body that is not a
// usable AdmissionReview gets the exact 4xx with a message naming the problem; an object
// that does not parse is a DECODE denial naming the field; odd but well-formed objects get
// the answer the rules give them, and a dry run answers the same (SPEC §5.1-5.3).
func TestBadInputTable(t *testing.T) {
	cases := []badInputCase{
		// Bodies that are not an AdmissionReview at all.
		{name: "not-json", file: "not-json.txt", status: 400,
			text: []string{"body is not an AdmissionReview: invalid character 'h' looking for beginning of value"}},
		{name: "truncated-json", status: 400, text: []string{"body is not an AdmissionReview: unexpected end of JSON input"}},
		{name: "empty-body", file: "empty-body.txt", status: 400,
			text: []string{"body is empty: send an admission.k8s.io/v1 AdmissionReview"}},
		{name: "whitespace-only", file: "whitespace-only.txt", status: 400, text: []string{"body is empty"}},
		// JSON null decodes into nothing: neither apiVersion nor kind is set.
		{name: "json-null", status: 400, text: []string{"body has apiVersion (none) and kind (none), " + envelopeHint}},
		{name: "json-array", status: 400,
			text: []string{"body is not an AdmissionReview: json: cannot unmarshal array into Go value of type v1.AdmissionReview"}},
		{name: "json-string", status: 400,
			text: []string{"body is not an AdmissionReview: json: cannot unmarshal string into Go value of type v1.AdmissionReview"}},
		{name: "json-number", status: 400, text: []string{"cannot unmarshal number into Go value of type v1.AdmissionReview"}},
		{name: "trailing-garbage", status: 400, text: []string{"body is not an AdmissionReview: invalid character '{' after top-level value"}},
		// A UTF-8 byte order mark is not JSON whitespace; the error names its first byte.
		{name: "utf8-bom", status: 400, text: []string{"body is not an AdmissionReview: invalid character 'ï' looking for beginning of value"}},

		// Transport: Content-Type, method, path and the body cap.
		{name: "content-type-text-plain", contentType: "text/plain", status: 415,
			text: []string{`Content-Type "text/plain" is not supported: send application/json`}},
		{name: "content-type-yaml", contentType: "application/yaml", status: 415,
			text: []string{`Content-Type "application/yaml" is not supported: send application/json`}},
		{name: "content-type-missing", contentType: noContentType, status: 415,
			text: []string{"Content-Type is missing: send application/json"}},
		{name: "content-type-json-patch", contentType: "application/json-patch+json", status: 415,
			text: []string{`Content-Type "application/json-patch+json" is not supported`}},
		{name: "content-type-malformed", contentType: "application/json; charset", status: 415,
			text: []string{`Content-Type "application/json; charset" is not supported`}},
		{name: "content-type-charset", contentType: "application/json; charset=utf-8", status: 200, allowed: true},
		// Media types are case-insensitive (RFC 9110 §8.3.1).
		{name: "content-type-uppercase", contentType: "Application/JSON", status: 200, allowed: true},
		{name: "method-get", method: http.MethodGet, status: 405, header: map[string]string{"Allow": "POST"},
			text: []string{"method GET is not allowed: send AdmissionReviews with POST"}},
		{name: "method-put", method: http.MethodPut, status: 405, header: map[string]string{"Allow": "POST"},
			text: []string{"method PUT is not allowed: send AdmissionReviews with POST"}},
		{name: "unknown-path", path: "/validate/pods", status: 404, text: []string{"404 page not found"}},
		{name: "body-over-cap", maxBody: func(b []byte) int64 { return int64(len(b)) - 1 }, status: 413,
			text: []string{"body is larger than"}},
		{name: "body-at-cap", maxBody: func(b []byte) int64 { return int64(len(b)) }, status: 200, allowed: true},
		{name: "body-over-default-cap", build: padTo(webhook.DefaultMaxBodyBytes + 1), status: 413,
			text: []string{"body is larger than 7340032 bytes"}},
		{name: "body-at-default-cap", build: padTo(webhook.DefaultMaxBodyBytes), status: 200, allowed: true},

		// The envelope.
		{name: "v1beta1-review", status: 400,
			text: []string{`body has apiVersion "admission.k8s.io/v1beta1" and kind "AdmissionReview", ` + envelopeHint}},
		{name: "apiversion-missing", status: 400, text: []string{`body has apiVersion (none) and kind "AdmissionReview", ` + envelopeHint}},
		{name: "kind-missing", status: 400, text: []string{`body has apiVersion "admission.k8s.io/v1" and kind (none), ` + envelopeHint}},
		{name: "kind-pod", status: 400, text: []string{`body has apiVersion "admission.k8s.io/v1" and kind "Pod", ` + envelopeHint}},
		{name: "no-request", status: 400, text: []string{"AdmissionReview has no request"}},
		{name: "request-null", status: 400, text: []string{"AdmissionReview has no request"}},
		{name: "response-instead-of-request", status: 400, text: []string{"AdmissionReview has no request"}},
		{name: "no-uid", status: 400, text: []string{"AdmissionReview request has no uid"}},
		{name: "empty-uid", status: 400, text: []string{"AdmissionReview request has no uid"}},
		{name: "uid-number", status: 400,
			text: []string{"body is not an AdmissionReview: json: cannot unmarshal number into Go struct field AdmissionRequest.request.uid of type types.UID"}},
		{name: "user-info-string", status: 400,
			text: []string{"cannot unmarshal string into Go struct field AdmissionRequest.request.userInfo of type v1.UserInfo"}},
		// An operation outside a webhook's operations is answered like one its rules do not
		// handle: allowed, no rule runs. The PVC requests 1Gi from a 10Gi image, which PVC-V3
		// denies on CREATE; CONNECT and PATCH (not an admission operation at all: the API
		// server sends patches as UPDATE), a lower-case "create" and no operation all pass.
		// Only the API server calls the webhook, and it sends only the registered operations.
		{name: "operation-connect", status: 200, allowed: true},
		{name: "operation-patch", status: 200, allowed: true},
		{name: "operation-lowercase", status: 200, allowed: true},
		{name: "operation-missing", status: 200, allowed: true},
		{name: "wrong-resource", status: 200, code: 403, rules: []string{"ROUTE"},
			text: []string{`[ROUTE] webhook /validate/persistentvolumeclaims serves persistentvolumeclaims, not pods (subresource ""): fix the rules of the webhook configuration`}},
		{name: "wrong-subresource", status: 200, code: 403, rules: []string{"ROUTE"},
			text: []string{`serves persistentvolumeclaims, not persistentvolumeclaims (subresource "status")`}},

		// The object.
		{name: "object-missing-create", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"[DECODE] PersistentVolumeClaim does not parse: no object in the request"}},
		// RawExtension reads null as no object.
		{name: "object-null-create", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"[DECODE] PersistentVolumeClaim does not parse: no object in the request"}},
		// The Go type a message ends with is the rule's reduced type (admit.ObjectMeta keeps
		// upstream's name for field paths), so the cases below stop before it.
		{name: "object-array", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"[DECODE] PersistentVolumeClaim does not parse: json: cannot unmarshal array into Go value of type "}},
		{name: "object-string", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"[DECODE] PersistentVolumeClaim does not parse: json: cannot unmarshal string into Go value of type "}},
		// A Pod sent as a PVC decodes (kind is not checked, Pod-only fields are unknown and
		// ignored, status.phase and conditions fit the PVC types): it is a PVC with the
		// image reference and no storage request, so PVC-V3 sees a request of 0.
		{name: "object-pod-as-pvc", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{"[PVC-V3] PVC default/disk-a requests 0 (0 bytes), less than 10Gi (10737418240 bytes), the minimum size of image default/image-debian12"}},
		// ... and a Pod named like a cdi image, owned by the DataVolume of its name, gets
		// PVC-M1's golden mark.
		{name: "object-pod-as-pvc-mutate", path: pvcMutate, status: 200, allowed: true, mutatedBy: []string{"PVC-M1"},
			patch: `[{"op":"add","path":"/metadata/annotations","value":{"harvesterhci.io/goldenImage":"true"}}]`},
		// sigs.k8s.io/json decodes duplicate keys like encoding/json: a repeated scalar or
		// map entry takes the last value (imageId default/image-odd, storage 5Gi), with no
		// error. (The API server re-serialises objects, so a webhook never sees duplicates.)
		{name: "duplicate-key-last-wins", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{"[PVC-V3] PVC default/disk-a requests 5Gi (5368709120 bytes), less than 5368709121 (5368709121 bytes), the minimum size of image default/image-odd"}},
		// A repeated object member is decoded into the same struct: the two metadata objects
		// merge (name from the second, the imageId annotation of the first survives).
		{name: "duplicate-key-objects-merge", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{"[PVC-V3] PVC default/disk-b requests 1Gi (1073741824 bytes), less than 10Gi", "image default/image-debian12"}},
		// Field names are case-sensitive, as in the API server: "Metadata", "Annotations" and
		// a differently cased annotation key are unknown, so the 1Gi PVC carries no image
		// reference and PVC-V3 has nothing to check.
		{name: "case-variant-metadata", status: 200, allowed: true},
		{name: "case-variant-annotations", status: 200, allowed: true},
		{name: "case-variant-annotation-key", status: 200, allowed: true},
		{name: "annotations-string", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"[DECODE] PersistentVolumeClaim does not parse: json: cannot unmarshal string into Go struct field ObjectMeta.metadata.annotations of type map[string]string"}},
		{name: "annotations-array", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"cannot unmarshal array into Go struct field ObjectMeta.metadata.annotations of type map[string]string"}},
		{name: "annotations-number", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type map[string]string"}},
		{name: "annotation-value-number", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"[DECODE] PersistentVolumeClaim does not parse: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type string"}},
		{name: "labels-string", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"cannot unmarshal string into Go struct field ObjectMeta.metadata.labels of type map[string]string"}},
		{name: "label-value-bool", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string"}},

		// Quantities.
		{name: "quantity-ten-gigs", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{`[DECODE] PersistentVolumeClaim does not parse: spec.resources.requests.storage is "ten gigs", not a quantity: ` + quantityRegexp}},
		{name: "quantity-unknown-suffix", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{`spec.resources.requests.storage is "1Qi", not a quantity: ` + quantityRegexp}},
		{name: "quantity-empty", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{`spec.resources.requests.storage is "", not a quantity: ` + quantityRegexp}},
		{name: "quantity-double-minus", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{`spec.resources.requests.storage is "--1", not a quantity: unable to parse quantity's suffix`}},
		{name: "quantity-bool", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"spec.resources.requests.storage is true, not a quantity"}},
		{name: "quantity-negative-with-image", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{"[PVC-V3] PVC default/disk-a requests -1Gi (-1073741824 bytes), less than 10Gi (10737418240 bytes), the minimum size of image default/image-debian12: request at least 10Gi"}},
		// Beyond int64 bytes is compared exactly, never read as 0: 20E and 1e400 (string or
		// JSON number) are far above the image; -20E is far below and named exactly.
		{name: "quantity-beyond-int64", status: 200, allowed: true},
		{name: "quantity-1e400-string", status: 200, allowed: true},
		{name: "quantity-1e400-number", status: 200, allowed: true},
		{name: "quantity-negative-beyond-int64", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{"[PVC-V3] PVC default/disk-a requests -20E (-20000000000000000000 bytes), less than 10Gi"}},

		// The VM's volumeClaimTemplates annotation (a JSON array of PVCs in a string).
		{name: "vct-not-json", path: vmValidate, status: 200, code: 403, rules: []string{"VM-V1"},
			text: []string{"[VM-V1] VM default/web-9: annotation harvesterhci.io/volumeClaimTemplates is not a JSON array of PersistentVolumeClaims: invalid character 'd' looking for beginning of value: fix the annotation"}},
		{name: "vct-object", path: vmValidate, status: 200, code: 403, rules: []string{"VM-V1"},
			text: []string{"annotation harvesterhci.io/volumeClaimTemplates is not a JSON array of PersistentVolumeClaims: json: cannot unmarshal object into Go value of type "}},
		{name: "vct-array-of-strings", path: vmValidate, status: 200, code: 403, rules: []string{"VM-V1"},
			text: []string{"annotation harvesterhci.io/volumeClaimTemplates is not a JSON array of PersistentVolumeClaims: json: cannot unmarshal string into Go value of type "}},
		// A null entry decodes as an empty PVC without an image reference: nothing to check.
		{name: "vct-array-with-null", path: vmValidate, status: 200, allowed: true},
		{name: "vct-huge-array", path: vmValidate, build: repeatTemplates(1000), status: 200, allowed: true},
		{name: "vct-entry-bad-quantity", path: vmValidate, status: 200, code: 403, rules: []string{"VM-V1"},
			text: []string{`annotation harvesterhci.io/volumeClaimTemplates is not a JSON array of PersistentVolumeClaims: [1].spec.resources.requests.storage is "twenty", not a quantity`}},
		{name: "vct-not-a-string", path: vmValidate, status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"[DECODE] VirtualMachine does not parse: json: cannot unmarshal array into Go struct field ObjectMeta.metadata.annotations of type string"}},
		// 10,001 levels inside the annotation string: the envelope is fine, the annotation
		// hits the JSON decoder's depth limit and VM-V1 says so.
		{name: "vct-deeply-nested", path: vmValidate, build: nestedTemplates(10001), status: 200, code: 403, rules: []string{"VM-V1"},
			text: []string{"annotation harvesterhci.io/volumeClaimTemplates is not a JSON array of PersistentVolumeClaims", "exceeded max depth"}},

		// The image reference annotation.
		{name: "imageid-empty", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{`[PVC-V3] PVC default/disk-a: annotation harvesterhci.io/imageId is "", which is not "<namespace>/<image name>": fix the image reference`}},
		{name: "imageid-slash", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{`annotation harvesterhci.io/imageId is "/", which is not "<namespace>/<image name>"`}},
		{name: "imageid-no-name", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{`annotation harvesterhci.io/imageId is "a/", which is not "<namespace>/<image name>"`}},
		{name: "imageid-no-namespace", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{`annotation harvesterhci.io/imageId is "/b", which is not "<namespace>/<image name>"`}},
		{name: "imageid-three-parts", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{`annotation harvesterhci.io/imageId is "a/b/c", which is not "<namespace>/<image name>"`}},
		{name: "imageid-no-slash", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{`annotation harvesterhci.io/imageId is "image-debian12", which is not "<namespace>/<image name>"`}},

		// Large and strange values.
		// 10,000 levels inside the object put the body past the JSON decoder's depth limit
		// (10,000): a 400 before any rule runs, without recursion, so no stack overflow.
		{name: "deeply-nested-object", build: nested(10000), status: 400,
			text: []string{"body is not an AdmissionReview", "exceeded max depth"}},
		// Just under the limit, the unknown field is skipped and the PVC is allowed.
		{name: "nested-just-under-limit", build: nested(9990), status: 200, allowed: true},
		// The same depth next to a bad quantity: naming the field walks the whole document.
		{name: "nested-with-bad-quantity", build: nested(9990), status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{`spec.resources.requests.storage is "ten gigs", not a quantity`}},
		{name: "huge-annotation-value", build: hugeValue(1 << 20), status: 200, allowed: true},
		// Names are not validated here (the API server does that); they are quoted as sent,
		// invalid UTF-8 as U+FFFD (the JSON decoder replaces it).
		{name: "unicode-name", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{"[PVC-V3] PVC default/диск-☃-ü requests 1Gi (1073741824 bytes), less than 10Gi"}},
		{name: "control-chars-in-name", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{"[PVC-V3] PVC default/disk\x00a\nb\x1b[31m requests 1Gi (1073741824 bytes), less than 10Gi"}},
		{name: "invalid-utf8-in-name", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{"[PVC-V3] PVC default/disk-\uFFFD\uFFFD requests 1Gi"}},

		// Old objects.
		{name: "old-object-missing-update", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"[DECODE] old PersistentVolumeClaim does not parse: no object in the request"}},
		{name: "old-vm-missing-update", path: vmValidate, status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"[DECODE] old VirtualMachine does not parse: no object in the request"}},
		// PVC-V2 without the old object looks the PVC up in the cache: the golden PVC of
		// image-debian12 is protected, a PVC not in the cache is allowed, and so is the
		// garbage collector.
		{name: "old-object-missing-delete-golden", status: 200, code: 403, rules: []string{"PVC-V2"},
			text: []string{`[PVC-V2] PVC default/image-debian12 is the golden PVC of image default/image-debian12 and cannot be deleted while the image exists (user "alice" is not privileged)`}},
		{name: "old-object-null-delete-golden", status: 200, code: 403, rules: []string{"PVC-V2"},
			text: []string{"[PVC-V2] PVC default/image-debian12 is the golden PVC of image default/image-debian12"}},
		{name: "old-object-missing-delete-not-cached", status: 200, allowed: true},
		{name: "old-object-missing-delete-privileged", status: 200, allowed: true},
		{name: "old-object-array-delete", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{"[DECODE] old PersistentVolumeClaim does not parse: json: cannot unmarshal array into Go value of type "}},

		// Dry run: each file is an earlier case's review with dryRun: true (same uid).
		{name: "dry-run-quantity-ten-gigs", sameAs: "quantity-ten-gigs", status: 200, code: 400, rules: []string{"DECODE"},
			text: []string{`spec.resources.requests.storage is "ten gigs"`}},
		{name: "dry-run-imageid-slash", sameAs: "imageid-slash", status: 200, code: 403, rules: []string{"PVC-V3"},
			text: []string{`annotation harvesterhci.io/imageId is "/"`}},
		{name: "dry-run-vct-object", path: vmValidate, sameAs: "vct-object", status: 200, code: 403, rules: []string{"VM-V1"},
			text: []string{"is not a JSON array of PersistentVolumeClaims"}},
		{name: "dry-run-old-object-missing-delete-golden", sameAs: "old-object-missing-delete-golden", status: 200, code: 403,
			rules: []string{"PVC-V2"}, text: []string{"cannot be deleted while the image exists"}},
		{name: "dry-run-no-uid", sameAs: "no-uid", status: 400, text: []string{"AdmissionReview request has no uid"}},
	}

	answers := map[string]*httptest.ResponseRecorder{}
	used := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.file == "" {
				c.file = c.name + ".json"
			}
			if used[c.file] {
				t.Fatalf("file %s is used by two cases", c.file)
			}
			used[c.file] = true
			body, err := os.ReadFile(filepath.Join("../testdata/badinput", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if c.build != nil {
				body = c.build(t, body)
			}
			rec := serveBadInput(t, &c, body)
			answers[c.name] = rec
			checkBadInput(t, &c, body, rec)
			if c.sameAs != "" {
				prev, ok := answers[c.sameAs]
				if !ok {
					t.Fatalf("sameAs %q: no earlier case of that name", c.sameAs)
				}
				if prev.Code != rec.Code || prev.Body.String() != rec.Body.String() {
					t.Errorf("answer differs from %s:\n%d %s\n%d %s", c.sameAs, rec.Code, rec.Body, prev.Code, prev.Body)
				}
			}
		})
	}
	files, err := filepath.Glob("../testdata/badinput/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !used[filepath.Base(f)] {
			t.Errorf("%s is not used by any case", f)
		}
	}
	if len(cases) < 45 {
		t.Errorf("%d cases, want at least 45", len(cases))
	}
}

// serveBadInput sends one case through the handler's mux and fails if it does not answer
// within a generous time (a stack overflow would crash the test binary instead).
func serveBadInput(t *testing.T, c *badInputCase, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	h := testHandler(t)
	if c.maxBody != nil {
		h.MaxBodyBytes = c.maxBody(body)
	}
	path, method := c.path, c.method
	if path == "" {
		path = pvcValidate
	}
	if method == "" {
		method = http.MethodPost
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	switch c.contentType {
	case "":
		req.Header.Set("Content-Type", "application/json")
	case noContentType:
	default:
		req.Header.Set("Content-Type", c.contentType)
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Mux().ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("no answer within 30s")
	}
	return rec
}

func checkBadInput(t *testing.T, c *badInputCase, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != c.status {
		t.Fatalf("HTTP %d, want %d: %.500s", rec.Code, c.status, rec.Body)
	}
	for k, v := range c.header {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if c.status != http.StatusOK {
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type of a refusal = %q, want text/plain", ct)
		}
		for _, s := range c.text {
			if !strings.Contains(rec.Body.String(), s) {
				t.Errorf("body %.500q does not contain %q", rec.Body, s)
			}
		}
		return
	}

	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var in, out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatalf("request: %v", err)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response %s: %v", rec.Body, err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Request != nil || out.Response == nil {
		t.Fatalf("not a v1 AdmissionReview response: %s", rec.Body)
	}
	resp := out.Response
	if resp.UID != in.Request.UID {
		t.Errorf("uid = %q, want the request's %q", resp.UID, in.Request.UID)
	}
	if c.allowed != (c.code == 0) {
		t.Fatalf("case: allowed %v with denial code %d", c.allowed, c.code)
	}
	if resp.Allowed != c.allowed {
		t.Fatalf("allowed = %v, want %v (result %+v)", resp.Allowed, c.allowed, resp.Result)
	}
	if c.allowed {
		if resp.Result != nil {
			t.Errorf("an allow carries a status: %+v", resp.Result)
		}
	} else {
		if resp.Result == nil || resp.Result.Code != c.code {
			t.Fatalf("denial status = %+v, want code %d", resp.Result, c.code)
		}
		if resp.Patch != nil {
			t.Errorf("a denial carries a patch: %s", resp.Patch)
		}
		for _, s := range c.text {
			if !strings.Contains(resp.Result.Message, s) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, s)
			}
		}
		if resp.AuditAnnotations["reason"] != resp.Result.Message {
			t.Errorf("audit reason %q, want the message", resp.AuditAnnotations["reason"])
		}
	}
	checkRulesAndWarnings(t, resp, c.rules, c.mutatedBy, c.warnings)
	if string(resp.Patch) != c.patch {
		t.Errorf("patch = %s, want %s", resp.Patch, c.patch)
	}
}

// padTo appends spaces (JSON whitespace) to the review until the body is exactly n bytes.
func padTo(n int) func(*testing.T, []byte) []byte {
	return func(t *testing.T, file []byte) []byte {
		if len(file) > n {
			t.Fatalf("file is already %d bytes", len(file))
		}
		return append(file, bytes.Repeat([]byte(" "), n-len(file))...)
	}
}

// nested replaces the file's "NESTED" placeholder by depth nested arrays.
func nested(depth int) func(*testing.T, []byte) []byte {
	return func(t *testing.T, file []byte) []byte {
		deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		return replaceOnce(t, file, `"NESTED"`, deep)
	}
}

// hugeValue replaces the file's "BLOB" placeholder by a string of n bytes.
func hugeValue(n int) func(*testing.T, []byte) []byte {
	return func(t *testing.T, file []byte) []byte {
		return replaceOnce(t, file, `"BLOB"`, `"`+strings.Repeat("x", n)+`"`)
	}
}

// nestedTemplates sets the VM's volumeClaimTemplates annotation to depth nested arrays.
func nestedTemplates(depth int) func(*testing.T, []byte) []byte {
	return func(t *testing.T, file []byte) []byte {
		return setTemplates(t, file, func(string) string {
			return strings.Repeat("[", depth) + strings.Repeat("]", depth)
		})
	}
}

// repeatTemplates makes n copies, each with its own name, of the first entry of the VM's
// volumeClaimTemplates annotation.
func repeatTemplates(n int) func(*testing.T, []byte) []byte {
	return func(t *testing.T, file []byte) []byte {
		return setTemplates(t, file, func(current string) string {
			var templates []map[string]any
			if err := json.Unmarshal([]byte(current), &templates); err != nil || len(templates) == 0 {
				t.Fatalf("annotation %q: %v", current, err)
			}
			entry, err := json.Marshal(templates[0])
			if err != nil {
				t.Fatal(err)
			}
			out := make([]json.RawMessage, n)
			for i := range out {
				out[i] = bytes.Replace(entry, []byte(`"web-9-disk-0"`), fmt.Appendf(nil, `"web-9-disk-%d"`, i), 1)
			}
			all, err := json.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			return string(all)
		})
	}
}

// setTemplates rewrites the harvesterhci.io/volumeClaimTemplates annotation of the review's
// object.
func setTemplates(t *testing.T, file []byte, value func(current string) string) []byte {
	t.Helper()
	var review map[string]any
	if err := json.Unmarshal(file, &review); err != nil {
		t.Fatal(err)
	}
	ann := review["request"].(map[string]any)["object"].(map[string]any)["metadata"].(map[string]any)["annotations"].(map[string]any)
	const key = "harvesterhci.io/volumeClaimTemplates"
	ann[key] = value(ann[key].(string))
	out, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func replaceOnce(t *testing.T, file []byte, placeholder, with string) []byte {
	t.Helper()
	if n := bytes.Count(file, []byte(placeholder)); n != 1 {
		t.Fatalf("placeholder %s occurs %d times", placeholder, n)
	}
	return bytes.Replace(file, []byte(placeholder), []byte(with), 1)
}
