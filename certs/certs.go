// Package certs creates TLS material for the admission webhook server: a
// throwaway self-signed certificate for local use, and a CA plus serving
// certificate for the in-cluster Service, in the forms Kubernetes expects
// (a kubernetes.io/tls Secret, a webhook caBundle, files on disk).
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Key names used in the Secret and as file names by WriteFiles.
const (
	certFile   = corev1.TLSCertKey       // "tls.crt"
	keyFile    = corev1.TLSPrivateKeyKey // "tls.key"
	caCertFile = "ca.crt"
)

// caCommonName is the subject CommonName of the CA created by Generate.
const caCommonName = "storage-webhook-ca"

// backdate is how far NotBefore is set in the past to tolerate clock skew.
const backdate = time.Minute

// SelfSigned returns an in-memory, self-signed ECDSA P-256 serving
// certificate for hosts. Hosts that parse as IP addresses become IP SANs,
// the others DNS SANs; the first host is the CommonName. The certificate
// is valid from a minute ago for validity. Leaf is set on the result.
func SelfSigned(hosts []string, validity time.Duration) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("certs: no hosts given for self-signed certificate")
	}
	if validity <= 0 {
		return tls.Certificate{}, fmt.Errorf("certs: validity %s must be positive", validity)
	}
	key, err := newKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl, err := template(hosts[0], validity)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: create self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: parse self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Options selects the Service the serving certificate is issued for.
type Options struct {
	Service   string        // Service name; a DNS-1123 label.
	Namespace string        // Service namespace; a DNS-1123 label.
	Validity  time.Duration // Lifetime of both the CA and the serving certificate; > 0.
}

// Bundle holds PEM-encoded TLS material: the CA certificate, and the
// serving certificate with its private key.
type Bundle struct {
	CACert []byte
	Cert   []byte
	Key    []byte
}

// Generate creates a fresh CA and a serving certificate signed by it for the
// DNS names <svc>, <svc>.<ns>, <svc>.<ns>.svc and
// <svc>.<ns>.svc.cluster.local.
//
// The CA private key is deliberately discarded: it is never needed again,
// and not keeping it means it cannot leak. Rotation is done by running
// Generate again and replacing both the Secret and the webhook caBundle.
func Generate(o Options) (*Bundle, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}

	caKey, caCert, caDER, err := newCA(caCommonName, o.Validity)
	if err != nil {
		return nil, err
	}

	names := serviceNames(o.Service, o.Namespace)
	cert, key, err := newLeaf(names[2], names, x509.ExtKeyUsageServerAuth, o.Validity, caCert, caKey) // CN <svc>.<ns>.svc
	if err != nil {
		return nil, err
	}
	return &Bundle{CACert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), Cert: cert, Key: key}, nil
}

// newLeaf returns a fresh certificate for commonName (and dnsNames) with one extended key
// usage, signed by the CA, and its key, both PEM.
func newLeaf(commonName string, dnsNames []string, usage x509.ExtKeyUsage, validity time.Duration, caCert *x509.Certificate, caKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := template(commonName, validity)
	if err != nil {
		return nil, nil, err
	}
	tmpl.DNSNames = dnsNames
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create certificate %s: %w", commonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: marshal key of %s: %w", commonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// newCA returns a fresh self-signed CA (key, parsed certificate and DER) named commonName.
func newCA(commonName string, validity time.Duration) (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl, err := template(commonName, validity)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("certs: create CA certificate %s: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("certs: parse CA certificate %s: %w", commonName, err)
	}
	return key, cert, der, nil
}

// validate reports the first invalid field of o, naming the bad value.
func (o Options) validate() error {
	if errs := validation.IsDNS1123Label(o.Service); len(errs) > 0 {
		return fmt.Errorf("certs: invalid service %q: %s", o.Service, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return fmt.Errorf("certs: invalid namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
	}
	if o.Validity <= 0 {
		return fmt.Errorf("certs: invalid validity %s: must be positive", o.Validity)
	}
	return nil
}

// serviceNames returns the DNS names a Service is reachable by in-cluster.
func serviceNames(svc, ns string) []string {
	return []string{
		svc,
		svc + "." + ns,
		svc + "." + ns + ".svc",
		svc + "." + ns + ".svc.cluster.local",
	}
}

// Secret returns a kubernetes.io/tls Secret holding the bundle under the
// keys tls.crt, tls.key and ca.crt.
func (b *Bundle) Secret(name, namespace string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			certFile:   b.Cert,
			keyFile:    b.Key,
			caCertFile: b.CACert,
		},
	}
}

// CABundle returns the CA certificate PEM in standard base64, the form used
// by the caBundle field of a webhook configuration.
func (b *Bundle) CABundle() string {
	return base64.StdEncoding.EncodeToString(b.CACert)
}

// WriteFiles writes tls.crt (0644), tls.key (0600) and ca.crt (0644) into
// dir, creating dir with mode 0755 if needed. Each file is replaced
// atomically, so a certificate watcher never sees a partial file.
func WriteFiles(b *Bundle, dir string) error {
	if b == nil {
		return errors.New("certs: nil bundle")
	}
	return writeFiles(dir, []file{
		{certFile, b.Cert, 0o644},
		{keyFile, b.Key, 0o600},
		{caCertFile, b.CACert, 0o644},
	})
}

// file is one file writeFiles writes.
type file struct {
	name string
	data []byte
	mode os.FileMode
}

// writeFiles creates dir (0755) and writes each file into it atomically.
func writeFiles(dir string, files []file) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("certs: create directory %q: %w", dir, err)
	}
	for _, f := range files {
		if err := writeAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic writes data to a temporary file next to path and renames it
// over path, so readers see either the old or the new content.
func writeAtomic(path string, data []byte, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: write %q: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("certs: write %q: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("certs: write %q: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("certs: write %q: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("certs: write %q: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: write %q: %w", path, err)
	}
	return nil
}

// newKey returns a fresh ECDSA P-256 private key.
func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generate key: %w", err)
	}
	return key, nil
}

// template returns a certificate template with a random serial number, the
// given CommonName, and a validity window starting a minute in the past.
func template(commonName string, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("certs: generate serial number: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
	}, nil
}
