package certs

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeClientAuth generates client auth material for host into a fresh folder that is also
// the folder the files name, as on a control-plane node.
func writeClientAuth(t *testing.T, host string) (*ClientAuth, string) {
	t.Helper()
	dir := t.TempDir()
	c, err := GenerateClientAuth(ClientAuthOptions{WebhookHost: host, Dir: dir, Validity: time.Hour})
	if err != nil {
		t.Fatalf("GenerateClientAuth: %v", err)
	}
	if err := WriteClientAuthFiles(c, dir); err != nil {
		t.Fatalf("WriteClientAuthFiles: %v", err)
	}
	return c, dir
}

// TestClientAuthCertificateVerifies: the API server's certificate is a client certificate of
// the client CA, which is what `serve --client-ca-file` verifies; it is no serving
// certificate, and another CA's client does not verify.
func TestClientAuthCertificateVerifies(t *testing.T) {
	c, dir := writeClientAuth(t, "storage-webhook.storage-webhook.svc:443")
	other, _ := writeClientAuth(t, "storage-webhook.storage-webhook.svc:443")
	leaf := parseCert(t, c.Cert)
	ca := parseCert(t, c.CACert)
	if !ca.IsCA || ca.Subject.CommonName != "storage-webhook-client-ca" {
		t.Fatalf("CA: IsCA %v, CN %q", ca.IsCA, ca.Subject.CommonName)
	}
	tests := []struct {
		name   string
		roots  []byte
		usage  x509.ExtKeyUsage
		wantOK bool
	}{
		{"verifies as a client of its CA", c.CACert, x509.ExtKeyUsageClientAuth, true},
		{"is not a serving certificate", c.CACert, x509.ExtKeyUsageServerAuth, false},
		{"does not verify against another client CA", other.CACert, x509.ExtKeyUsageClientAuth, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roots := x509.NewCertPool()
			roots.AddCert(parseCert(t, tt.roots))
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{tt.usage}})
			if (err == nil) != tt.wantOK {
				t.Errorf("Verify: %v, want ok = %v", err, tt.wantOK)
			}
		})
	}
	t.Run("files and modes", func(t *testing.T) {
		for _, f := range []struct {
			name string
			mode os.FileMode
			want []byte
		}{
			{ClientCAFile, 0o644, c.CACert},
			{ClientCertFile, 0o644, c.Cert},
			{ClientKeyFile, 0o600, c.Key},
			{KubeconfigFile, 0o644, c.Kubeconfig},
			{AdmissionConfigFile, 0o644, c.AdmissionConfig},
		} {
			fi, err := os.Stat(filepath.Join(dir, f.name))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(filepath.Join(dir, f.name))
			if fi.Mode().Perm() != f.mode || string(got) != string(f.want) {
				t.Errorf("%s: mode %v, want %v (contents equal: %v)", f.name, fi.Mode().Perm(), f.mode, string(got) == string(f.want))
			}
		}
	})
}

func TestGenerateClientAuthRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts ClientAuthOptions
		want string
	}{
		{"a host without a port is named", ClientAuthOptions{WebhookHost: "storage-webhook.storage-webhook.svc", Dir: "/etc/sw", Validity: time.Hour}, `webhook host "storage-webhook.storage-webhook.svc"`},
		{"an empty host is named", ClientAuthOptions{WebhookHost: "", Dir: "/etc/sw", Validity: time.Hour}, `webhook host ""`},
		{"a relative folder is named", ClientAuthOptions{WebhookHost: "a.b.svc:443", Dir: "etc/sw", Validity: time.Hour}, `folder "etc/sw"`},
		{"zero validity is named", ClientAuthOptions{WebhookHost: "a.b.svc:443", Dir: "/etc/sw"}, "validity 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := GenerateClientAuth(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("GenerateClientAuth(%+v) error %v, want one containing %q", tt.opts, err, tt.want)
			}
		})
	}
}
