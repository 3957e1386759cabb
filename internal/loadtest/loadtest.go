// Package loadtest holds what the soak, the load harness and the fault tests share: the
// fixture reviews as a request stream, sending one and checking the answer, free local
// ports, and a process's RSS.
package loadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/hcistorage/storage-webhook/webhook"
)

// Review is one fixture of testdata/admission: the webhook path, the AdmissionReview body,
// its request UID and whether the fixture expects it allowed.
type Review struct {
	Path    string
	Body    []byte
	UID     string
	Allowed bool
}

// Reviews reads every fixture under dir/*/*.json, in name order. UIDs must be unique, so
// answers can be told apart.
func Reviews(dir string) ([]Review, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no fixtures under %s: %v", dir, err)
	}
	slices.Sort(files)
	var out []Review
	seen := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var fx struct {
			Webhook string          `json:"webhook"`
			Review  json.RawMessage `json:"review"`
			Want    struct {
				Allowed bool `json:"allowed"`
			} `json:"want"`
		}
		if err := json.Unmarshal(data, &fx); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		review, err := webhook.DecodeReview(fx.Review)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		uid := string(review.Request.UID)
		if other, dup := seen[uid]; dup {
			return nil, fmt.Errorf("%s and %s share the request uid %s: answers could not be told apart", other, f, uid)
		}
		seen[uid] = f
		out = append(out, Review{Path: fx.Webhook, Body: fx.Review, UID: uid, Allowed: fx.Want.Allowed})
	}
	return out, nil
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RSS reads a process's resident set size in bytes from /proc.
func RSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// Send posts one review and checks that the answer is a complete AdmissionReview: HTTP 200
// and a response with a UID. Anything else is an error that quotes the answer.
func Send(client *http.Client, url string, body []byte) error {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &out); err != nil || out.Response == nil || out.Response.UID == "" {
		return fmt.Errorf("incomplete answer %.200q: %v", b, err)
	}
	return nil
}
