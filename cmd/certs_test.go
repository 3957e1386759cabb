package cmd

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/hcistorage/storage-webhook/internal/loadtest"
)

// TestCertsClientAuth: `certs --client-auth DIR` writes the client CA, the API server's
// client certificate and key, the kubeconfig (its user named by the webhook's host:port) and
// the admission configuration naming the files under --client-auth-path; serving material
// only with --out; bad values are usage errors naming them.
func TestCertsClientAuth(t *testing.T) {
	clientFiles := []string{"client-ca.crt", "apiserver-client.crt", "apiserver-client.key", "webhook-kubeconfig.yaml", "admission-config.yaml"}
	tests := []struct {
		name     string
		args     []string
		wantUser string // the kubeconfig's user
		wantOut  bool   // serving files in out/
	}{
		{"default host is the Service on 443", []string{"--service", "sw", "--namespace", "storage"}, "sw.storage.svc:443", false},
		{"--webhook-host names a URL webhook", []string{"--webhook-host", "127.0.0.1:9443"}, "127.0.0.1:9443", false},
		{"--out also writes the serving certificate", []string{"--out", "OUT"}, "storage-webhook.storage-webhook.svc:443", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, out := t.TempDir(), filepath.Join(t.TempDir(), "serving")
			args := []string{"certs", "--client-auth", dir, "--client-auth-path", "/etc/rancher/rke2/storage-webhook"}
			for _, a := range tt.args {
				args = append(args, strings.Replace(a, "OUT", out, 1))
			}
			code, stdout, errOut := run(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(stdout, "--admission-control-config-file=/etc/rancher/rke2/storage-webhook/admission-config.yaml") {
				t.Errorf("stdout does not say the API server flag: %s", stdout)
			}
			if strings.Contains(stdout, "kind: Secret") {
				t.Errorf("printed a serving Secret too: %s", stdout)
			}
			for _, f := range clientFiles {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
			kc, err := clientcmd.LoadFromFile(filepath.Join(dir, "webhook-kubeconfig.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if u := kc.AuthInfos[tt.wantUser]; u == nil || u.ClientCertificate != "/etc/rancher/rke2/storage-webhook/apiserver-client.crt" {
				t.Errorf("kubeconfig users %v, want %s with the certificate under --client-auth-path", kc.AuthInfos, tt.wantUser)
			}
			_, err = os.Stat(filepath.Join(out, "tls.crt"))
			if (err == nil) != tt.wantOut {
				t.Errorf("serving tls.crt written: %v, want %v", err == nil, tt.wantOut)
			}
		})
	}
	for _, c := range []struct{ name, flag, value, want string }{
		{"relative --client-auth-path", "--client-auth-path", "etc/sw", `"etc/sw"`},
		{"--webhook-host without a port", "--webhook-host", "storage-webhook.storage-webhook.svc", `"storage-webhook.storage-webhook.svc"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, "", "certs", "--client-auth", t.TempDir(), c.flag, c.value)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d %q, want 2 naming %s", code, errOut, c.want)
			}
		})
	}
}

// TestCertsClientAuthWithServe: serve with --client-ca-file set to the client-ca.crt that
// `certs --client-auth` wrote answers a client presenting apiserver-client.crt and .key, and
// refuses one without a certificate or with one of another run's CA.
func TestCertsClientAuthWithServe(t *testing.T) {
	mine, other := t.TempDir(), t.TempDir()
	for _, dir := range []string{mine, other} {
		if code, _, errOut := run(t, "", "certs", "--client-auth", dir, "--client-auth-path", dir); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	}
	ts := startServe(t, "--client-ca-file", filepath.Join(mine, "client-ca.crt"))
	url := "https://" + ts.webhook + "/validate/persistentvolumeclaims"
	tests := []struct {
		name   string
		certOf string // folder of the client certificate; "" for none
		wantOK bool
	}{
		{"no client certificate is refused", "", false},
		{"another CA's client certificate is refused", other, false},
		{"the API server's client certificate is answered", mine, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ts.tlsConfig()
			if tt.certOf != "" {
				cert, err := tls.LoadX509KeyPair(filepath.Join(tt.certOf, "apiserver-client.crt"), filepath.Join(tt.certOf, "apiserver-client.key"))
				if err != nil {
					t.Fatal(err)
				}
				cfg.Certificates = []tls.Certificate{cert}
			}
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
			err := loadtest.Send(client, url, review(t, pvcFixture))
			if (err == nil) != tt.wantOK {
				t.Errorf("send: %v, want ok = %v", err, tt.wantOK)
			}
		})
	}
}
