package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestSelfSigned(t *testing.T) {
	cert, err := SelfSigned([]string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatalf("SelfSigned: %v", err)
	}
	if cert.Leaf == nil {
		t.Fatal("Leaf is not set")
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)

	tests := []struct {
		name   string
		host   string
		wantOK bool
	}{
		{"verifies for DNS name localhost", "localhost", true},
		{"verifies for IP 127.0.0.1", "127.0.0.1", true},
		{"rejects host not in SANs", "example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: tt.host, Roots: roots})
			if (err == nil) != tt.wantOK {
				t.Errorf("Verify(%q) error = %v, want ok = %v", tt.host, err, tt.wantOK)
			}
		})
	}

	t.Run("NotBefore is in the past", func(t *testing.T) {
		if !cert.Leaf.NotBefore.Before(time.Now().Add(-30 * time.Second)) {
			t.Errorf("NotBefore = %v, want about a minute ago", cert.Leaf.NotBefore)
		}
	})
}

func TestGenerateServingCertVerifiesAgainstCA(t *testing.T) {
	b := mustGenerate(t)
	caCert := parseCert(t, b.CACert)
	if !caCert.IsCA || caCert.Subject.CommonName != "storage-webhook-ca" {
		t.Fatalf("CA: IsCA = %v, CN = %q", caCert.IsCA, caCert.Subject.CommonName)
	}
	leaf := parseCert(t, b.Cert)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)

	tests := []struct {
		name   string
		host   string
		wantOK bool
	}{
		{"verifies for service name", "webhook", true},
		{"verifies for service.namespace", "webhook.storage", true},
		{"verifies for service.namespace.svc", "webhook.storage.svc", true},
		{"verifies for cluster.local FQDN", "webhook.storage.svc.cluster.local", true},
		{"rejects another service", "other.storage.svc", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: tt.host, Roots: roots})
			if (err == nil) != tt.wantOK {
				t.Errorf("Verify(%q) error = %v, want ok = %v", tt.host, err, tt.wantOK)
			}
		})
	}
}

func TestGenerateRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // substring the error must contain
	}{
		{"empty service is named", Options{Service: "", Namespace: "storage", Validity: time.Hour}, `service ""`},
		{"uppercase namespace is named", Options{Service: "webhook", Namespace: "Storage", Validity: time.Hour}, `namespace "Storage"`},
		{"zero validity is named", Options{Service: "webhook", Namespace: "storage", Validity: 0}, "validity 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Generate(tt.opts)
			if err == nil {
				t.Fatalf("Generate(%+v) = %v, want error", tt.opts, b)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestSecret(t *testing.T) {
	b := mustGenerate(t)
	s := b.Secret("webhook-tls", "storage")

	t.Run("is kubernetes.io/tls with TypeMeta", func(t *testing.T) {
		if s.Type != corev1.SecretTypeTLS || s.APIVersion != "v1" || s.Kind != "Secret" {
			t.Errorf("type = %q, apiVersion = %q, kind = %q", s.Type, s.APIVersion, s.Kind)
		}
		if s.Name != "webhook-tls" || s.Namespace != "storage" {
			t.Errorf("name/namespace = %q/%q", s.Name, s.Namespace)
		}
	})

	t.Run("has tls.crt, tls.key and ca.crt", func(t *testing.T) {
		want := map[string][]byte{"tls.crt": b.Cert, "tls.key": b.Key, "ca.crt": b.CACert}
		if !reflect.DeepEqual(s.Data, want) {
			t.Errorf("Data keys = %v, want tls.crt, tls.key, ca.crt with bundle contents", keys(s.Data))
		}
	})

	t.Run("round-trips through sigs.k8s.io/yaml", func(t *testing.T) {
		out, err := yaml.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var got corev1.Secret
		if err := yaml.UnmarshalStrict(out, &got); err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if !reflect.DeepEqual(&got, s) {
			t.Errorf("round trip mismatch:\n got %+v\nwant %+v", got, *s)
		}
	})
}

func TestCABundleDecodesToCAPEM(t *testing.T) {
	b := mustGenerate(t)
	got, err := base64.StdEncoding.DecodeString(b.CABundle())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !bytes.Equal(got, b.CACert) {
		t.Errorf("decoded caBundle differs from CA PEM")
	}
}

func TestWriteFiles(t *testing.T) {
	b := mustGenerate(t)
	dir := filepath.Join(t.TempDir(), "nested", "certs") // does not exist yet
	if err := WriteFiles(b, dir); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}

	tests := []struct {
		name string
		file string
		mode os.FileMode
		want []byte
	}{
		{"tls.crt is world-readable with serving cert", "tls.crt", 0o644, b.Cert},
		{"tls.key is owner-only with key", "tls.key", 0o600, b.Key},
		{"ca.crt is world-readable with CA cert", "ca.crt", 0o644, b.CACert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatalf("stat: %v", err)
			}
			if fi.Mode().Perm() != tt.mode {
				t.Errorf("mode = %v, want %v", fi.Mode().Perm(), tt.mode)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("contents differ from bundle")
			}
		})
	}

	t.Run("leaves no temporary files behind", func(t *testing.T) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 3 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("dir has %v, want exactly the three files", names)
		}
	})

	t.Run("tls.crt and tls.key load as a key pair", func(t *testing.T) {
		certPEM, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, err := os.ReadFile(filepath.Join(dir, "tls.key"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			t.Errorf("X509KeyPair: %v", err)
		}
	})

	t.Run("overwrites existing files", func(t *testing.T) {
		b2 := mustGenerate(t)
		if err := WriteFiles(b2, dir); err != nil {
			t.Fatalf("second WriteFiles: %v", err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b2.Cert) {
			t.Errorf("tls.crt was not replaced")
		}
	})
}

func mustGenerate(t *testing.T) *Bundle {
	t.Helper()
	b, err := Generate(Options{Service: "webhook", Namespace: "storage", Validity: time.Hour})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return b
}

func parseCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a CERTIFICATE PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
