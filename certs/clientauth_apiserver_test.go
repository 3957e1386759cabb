//go:build integration

// Run by `make integration` (.ci/run runs it): it compiles kube-apiserver's admission
// configuration loaders (k8s.io/apiserver), a heavy test-only dependency.

package certs

import (
	"crypto/tls"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/admission"
	webhookconfig "k8s.io/apiserver/pkg/admission/plugin/webhook/config"
	apiserverapi "k8s.io/apiserver/pkg/apis/apiserver"
	apiserverapiv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// TestClientAuthAdmissionConfigReadByTheAPIServersLoaders: kube-apiserver's own loaders
// (k8s.io/apiserver) read the admission configuration, strictly, for both webhook plugins,
// and find the kubeconfig; the kubeconfig's only user is named by the webhook's host:port
// (e2e TestClientAuth shows a real API server matching it) and holds the files.
func TestClientAuthAdmissionConfigReadByTheAPIServersLoaders(t *testing.T) {
	scheme := runtime.NewScheme()
	utilruntime.Must(apiserverapi.AddToScheme(scheme))
	utilruntime.Must(apiserverapiv1.AddToScheme(scheme))
	for _, host := range []string{"storage-webhook.storage-webhook.svc:443", "127.0.0.1:9443", "*"} {
		t.Run(host, func(t *testing.T) {
			_, dir := writeClientAuth(t, host)
			plugins := []string{"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"}
			provider, err := admission.ReadAdmissionConfiguration(plugins, filepath.Join(dir, AdmissionConfigFile), scheme)
			if err != nil {
				t.Fatalf("ReadAdmissionConfiguration: %v", err)
			}
			for _, plugin := range plugins {
				r, err := provider.ConfigFor(plugin)
				if err != nil || r == nil {
					t.Fatalf("%s: no configuration (%v)", plugin, err)
				}
				cfg, err := webhookconfig.LoadConfig(r)
				if err != nil {
					t.Fatalf("%s: LoadConfig: %v", plugin, err)
				}
				if want := filepath.Join(dir, KubeconfigFile); cfg.KubeConfigFile != want {
					t.Errorf("%s: kubeConfigFile %q, want %q", plugin, cfg.KubeConfigFile, want)
				}
			}
			kc, err := clientcmd.LoadFromFile(filepath.Join(dir, KubeconfigFile))
			if err != nil {
				t.Fatalf("kubeconfig: %v", err)
			}
			user, ok := kc.AuthInfos[host]
			if len(kc.AuthInfos) != 1 || !ok {
				t.Fatalf("kubeconfig users %v, want one named %q", kc.AuthInfos, host)
			}
			if user.ClientCertificate != filepath.Join(dir, ClientCertFile) || user.ClientKey != filepath.Join(dir, ClientKeyFile) {
				t.Errorf("user %q: certificate %q key %q, want the files in %s", host, user.ClientCertificate, user.ClientKey, dir)
			}
			if _, err := tls.LoadX509KeyPair(user.ClientCertificate, user.ClientKey); err != nil {
				t.Errorf("the files the kubeconfig names are not a key pair: %v", err)
			}
		})
	}
}
