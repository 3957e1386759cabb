package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// File names WriteClientAuthFiles writes, and the admission configuration names in its paths.
const (
	ClientCAFile        = "client-ca.crt"        // the CA the webhook trusts (--client-ca-file)
	ClientCertFile      = "apiserver-client.crt" // the API server's client certificate
	ClientKeyFile       = "apiserver-client.key" // and its key
	KubeconfigFile      = "webhook-kubeconfig.yaml"
	AdmissionConfigFile = "admission-config.yaml"
)

// clientCACommonName and clientCommonName name the client CA and the API server's certificate.
const (
	clientCACommonName = "storage-webhook-client-ca"
	clientCommonName   = "kube-apiserver"
)

// ClientAuthOptions selects what the API server's client credentials are for and where they
// will live on the control-plane nodes.
type ClientAuthOptions struct {
	// WebhookHost is host:port as the API server dials the webhook, the name of the
	// kubeconfig's user entry: <service>.<namespace>.svc:443 for a Service reference, the
	// URL's host:port for a URL webhook.
	WebhookHost string
	// Dir is the absolute folder, as kube-apiserver sees it, that holds the files on every
	// control-plane node: the admission configuration names the kubeconfig there, and the
	// kubeconfig names the certificate and key there.
	Dir      string
	Validity time.Duration // lifetime of the client CA and certificate; > 0
}

// ClientAuth is PEM and YAML for API server client authentication: the CA the webhook trusts,
// the API server's client certificate and key signed by it, the kubeconfig that gives them
// to the API server for WebhookHost, and the AdmissionConfiguration that names the kubeconfig
// for both webhook admission plugins.
type ClientAuth struct {
	CACert, Cert, Key           []byte
	Kubeconfig, AdmissionConfig []byte
}

// GenerateClientAuth makes a client CA and a client certificate (ExtKeyUsageClientAuth) for
// the API server, and the kubeconfig and AdmissionConfiguration that hand it to the
// ValidatingAdmissionWebhook and MutatingAdmissionWebhook plugins. As with Generate, the CA
// key is discarded: renewing means a new CA, trusted next to the old one for the switch.
func GenerateClientAuth(o ClientAuthOptions) (*ClientAuth, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	caKey, caCert, caDER, err := newCA(clientCACommonName, o.Validity)
	if err != nil {
		return nil, err
	}
	cert, key, err := newLeaf(clientCommonName, nil, x509.ExtKeyUsageClientAuth, o.Validity, caCert, caKey)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := yaml.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		// The API server picks the user whose name is the webhook's host:port (for port
		// 443 also the host alone; "*." prefixes and "*" match too). The certificate and
		// key are files, so the API server re-reads them when they are renewed.
		"users": []any{map[string]any{
			"name": o.WebhookHost,
			"user": map[string]any{
				"client-certificate": path.Join(o.Dir, ClientCertFile),
				"client-key":         path.Join(o.Dir, ClientKeyFile),
			},
		}},
	})
	if err != nil {
		return nil, err
	}
	plugin := func(name string) map[string]any {
		return map[string]any{"name": name, "configuration": map[string]any{
			"apiVersion":     "apiserver.config.k8s.io/v1",
			"kind":           "WebhookAdmissionConfiguration",
			"kubeConfigFile": path.Join(o.Dir, KubeconfigFile),
		}}
	}
	admission, err := yaml.Marshal(map[string]any{
		"apiVersion": "apiserver.config.k8s.io/v1",
		"kind":       "AdmissionConfiguration",
		"plugins":    []any{plugin("ValidatingAdmissionWebhook"), plugin("MutatingAdmissionWebhook")},
	})
	if err != nil {
		return nil, err
	}
	return &ClientAuth{
		CACert:          pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert:            cert,
		Key:             key,
		Kubeconfig:      kubeconfig,
		AdmissionConfig: admission,
	}, nil
}

// validate reports the first invalid field of o, naming the bad value.
func (o ClientAuthOptions) validate() error {
	if _, port, err := net.SplitHostPort(o.WebhookHost); (err != nil || port == "") && o.WebhookHost != "*" {
		return fmt.Errorf("certs: invalid webhook host %q: want host:port as the API server dials it, e.g. storage-webhook.storage-webhook.svc:443", o.WebhookHost)
	}
	if !path.IsAbs(o.Dir) || strings.ContainsAny(o.Dir, " \t\n") {
		return fmt.Errorf("certs: invalid folder %q: want an absolute path on the control-plane nodes, without spaces", o.Dir)
	}
	if o.Validity <= 0 {
		return fmt.Errorf("certs: invalid validity %s: must be positive", o.Validity)
	}
	return nil
}

// WriteClientAuthFiles writes client-ca.crt, apiserver-client.crt, webhook-kubeconfig.yaml and
// admission-config.yaml (0644) and apiserver-client.key (0600) into dir, creating it (0755),
// each file replaced atomically.
func WriteClientAuthFiles(c *ClientAuth, dir string) error {
	if c == nil {
		return errors.New("certs: nil client auth")
	}
	return writeFiles(dir, []file{
		{ClientCAFile, c.CACert, 0o644},
		{ClientCertFile, c.Cert, 0o644},
		{ClientKeyFile, c.Key, 0o600},
		{KubeconfigFile, c.Kubeconfig, 0o644},
		{AdmissionConfigFile, c.AdmissionConfig, 0o644},
	})
}
