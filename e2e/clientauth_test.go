//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// TestClientAuth runs the client authentication of deploy/README.md end to end on an API
// server of its own (the shared one's webhook takes direct POSTs from other tests): the files
// of `storage-webhook certs --client-auth` as the API server's admission configuration, the
// webhook configurations and client CA Secret rendered from deploy/base plus
// deploy/components/client-auth, and the real binary serving with the component's
// --client-ca-file. The API server's reviews pass; anyone else is refused in the TLS
// handshake, before any handler runs.
func TestClientAuth(t *testing.T) {
	start := time.Now()
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	// envtest rewrites the Service references to https://127.0.0.1:<port>/<path>: that
	// host:port is the name the API server looks the webhook's user up by.
	host := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	apiserverDir, otherDir := filepath.Join(dir, "apiserver"), filepath.Join(dir, "other")
	for _, d := range []string{apiserverDir, otherDir} {
		if out, err := exec.Command(suite.bin, "certs", "--client-auth", d, "--client-auth-path", d, "--webhook-host", host).CombinedOutput(); err != nil {
			t.Fatalf("storage-webhook certs --client-auth: %v\n%s", err, out)
		}
	}

	rendered, clientCA := renderClientAuthComponent(t, dir, filepath.Join(apiserverDir, "client-ca.crt"))

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{"testdata/crds/upstream", "testdata/crds/minimal"},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: os.Getenv("KUBEBUILDER_ASSETS"),
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{rendered}, LocalServingHost: "127.0.0.1", LocalServingPort: port},
	}
	env.ControlPlane.GetAPIServer().Configure().Set("admission-control-config-file", filepath.Join(apiserverDir, "admission-config.yaml"))
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest with the admission configuration: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig, err := writeKubeconfig(cfg, filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	opts := env.WebhookInstallOptions
	probes := startClientAuthWebhook(t, dir, host, opts.LocalServingCertDir, kubeconfig, clientCA)
	t.Logf("API server with the admission configuration and webhook with --client-ca-file ready in %v", time.Since(start).Round(time.Millisecond))

	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := context.Background()
	images := dyn.Resource(gvrs["VirtualMachineImage"]).Namespace("clientauth")

	t.Run("the API server's reviews pass: a StorageClass create is mutated, an image gets its class and backend, IMG-V1 denies with its message", func(t *testing.T) {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "clientauth"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Fail webhooks (mutate and validate storageclasses): refused if the API server's
		// client certificate were not accepted.
		sc, err := dyn.Resource(gvrs["StorageClass"]).Create(ctx, obj(t, "", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: clientauth-v2}\nprovisioner: driver.longhorn.io\nparameters: {dataEngine: \"v2\"}\n"), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("StorageClass create through the Fail webhooks: %v", err)
		}
		if str(sc, "parameters", "migratable") != "true" {
			t.Errorf("SC-M1's mutation did not land: %v", sc.Object)
		}
		var got *unstructured.Unstructured
		pollUntil(t, "IMG-M1/IMG-M2 mutate an image on the new class", func() error {
			got, err = images.Create(ctx, obj(t, "clientauth", image("mutated", "clientauth-v2", "")), metav1.CreateOptions{})
			if err == nil && (str(got, "spec", "targetStorageClassName") != "clientauth-v2" || str(got, "spec", "backend") != "cdi") {
				return fmt.Errorf("stored image not mutated: %v", got.Object["spec"])
			}
			return err
		})
		differ := obj(t, "clientauth", image("differ", "clientauth-v2", ""))
		_ = unstructured.SetNestedField(differ.Object, "other-class", "spec", "targetStorageClassName")
		pollUntil(t, "IMG-V1 denies", func() error {
			_, err := images.Create(ctx, differ, metav1.CreateOptions{})
			if !deniedBy(err, "IMG-V1") {
				return fmt.Errorf("want a denial by IMG-V1, got %v", err)
			}
			if !strings.Contains(err.Error(), "other-class") {
				return fmt.Errorf("IMG-V1's message does not name the spec's class: %v", err)
			}
			return nil
		})
	})

	review := imageReview(t)
	url := fmt.Sprintf("https://%s/validate/virtualmachineimages", host)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(opts.LocalServingCAData)
	post := func(cert string) (*admissionv1.AdmissionReview, error) {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if cert != "" {
			pair, err := tls.LoadX509KeyPair(filepath.Join(cert, "apiserver-client.crt"), filepath.Join(cert, "apiserver-client.key"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		defer client.CloseIdleConnections()
		resp, err := client.Post(url, "application/json", bytes.NewReader(review))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return &out, json.NewDecoder(resp.Body).Decode(&out)
	}
	requests := func() float64 { return sum(scrape(t, probes+"/metrics"), "storage_webhook_requests_total", nil) }

	for _, c := range []struct{ name, cert, alert string }{
		{"a direct POST without a client certificate fails in the TLS handshake", "", "certificate required"},
		{"a direct POST with a client certificate from another CA fails in the TLS handshake", otherDir, "unknown certificate authority"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := requests()
			answer, err := post(c.cert)
			var opErr *net.OpError
			if err == nil || !errors.As(err, &opErr) || opErr.Op != "remote error" || !strings.Contains(err.Error(), "tls: "+c.alert) {
				t.Fatalf("got answer %v, error %v; want the server's TLS alert %q", answer, err, c.alert)
			}
			if after := requests(); after != before {
				t.Errorf("storage_webhook_requests_total went from %v to %v: a request reached the handler", before, after)
			}
			t.Logf("refused: %v", err)
		})
	}

	t.Run("a direct POST with the API server's client certificate is answered by the rules", func(t *testing.T) {
		answer, err := post(apiserverDir)
		if err != nil {
			t.Fatal(err)
		}
		if answer.Response == nil || answer.Response.UID != "c0ffee00-0000-4000-8000-000000000001" || answer.Response.Allowed ||
			answer.Response.Result == nil || !strings.Contains(answer.Response.Result.Message, "[IMG-V1]") {
			t.Errorf("answer %+v, want IMG-V1's denial of the review's UID", answer.Response)
		}
	})

	t.Run("a webhook the API server has no client certificate for is refused, and failurePolicy Fail refuses the write", func(t *testing.T) {
		// localhost:<port> is the same server under a name the kubeconfig has no user for:
		// what every call looks like when the webhook requires client certificates before
		// the API server presents one (deploy/README.md, order of operations).
		hook := fmt.Sprintf("https://%s/validate/storageclasses", net.JoinHostPort("localhost", fmt.Sprint(port)))
		_, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "clientauth-unmatched"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name:                    "unmatched.clientauth.e2e",
				ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &hook, CABundle: opts.LocalServingCAData},
				Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
				ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"e2e-clientauth": "unmatched"}},
				FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
				SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
				AdmissionReviewVersions: []string{"v1"},
				TimeoutSeconds:          ptr.To(int32(3)),
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		pollUntil(t, "the write is refused", func() error {
			n++
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unmatched-%d", n), Labels: map[string]string{"e2e-clientauth": "unmatched"}}}
			_, err := kube.CoreV1().ConfigMaps("clientauth").Create(ctx, cm, metav1.CreateOptions{})
			if err == nil || !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), `failed calling webhook "unmatched.clientauth.e2e"`) {
				return fmt.Errorf("want the API server to refuse the write after its call failed, got %v", err)
			}
			if !strings.Contains(err.Error(), "tls: certificate required") {
				return fmt.Errorf("refused, but not for want of a client certificate: %v", err)
			}
			t.Logf("refused: %v", err)
			return nil
		})
	})
	t.Logf("TestClientAuth took %v", time.Since(start).Round(time.Millisecond))
}

// renderClientAuthComponent renders deploy/base with deploy/components/client-auth (its
// client-ca.crt the one given) with the pinned kubectl's kustomize, checks the Deployment gets
// --client-ca-file with the component's Secret mounted where the flag points, checks both
// overlays render with the component, and returns the rendering's path and the Secret's
// ca.crt written to a file (what the pod would mount).
func renderClientAuthComponent(t *testing.T, dir, clientCA string) (string, string) {
	t.Helper()
	deploy := copyDeploy(t)
	ca, err := os.ReadFile(clientCA)
	if err != nil {
		t.Fatal(err)
	}
	writeOrFail(t, filepath.Join(deploy, "deploy/components/client-auth/client-ca.crt"), ca)
	rendered := kustomizeComponents(t, deploy, "clientauth-e2e", "client-auth")
	if got := checkClientAuthRendering(t, rendered); !bytes.Equal(got, ca) {
		t.Fatal("clientauth-e2e: the client CA Secret's ca.crt is not client-ca.crt")
	}
	for _, o := range []string{"cert-manager", "manual"} {
		if got := checkClientAuthRendering(t, kustomizeOverlayWith(t, deploy, o, "client-auth")); !bytes.Equal(got, ca) {
			t.Fatalf("%s: the client CA Secret's ca.crt is not client-ca.crt", o)
		}
	}
	return writeOrFail(t, filepath.Join(dir, "clientauth.yaml"), rendered), writeOrFail(t, filepath.Join(dir, "client-ca-secret.crt"), ca)
}

func writeOrFail(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkClientAuthRendering checks the Deployment of a rendering reads --client-ca-file from the
// mounted client CA Secret, and returns that Secret's ca.crt.
func checkClientAuthRendering(t *testing.T, rendered []byte) []byte {
	t.Helper()
	var deployment struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args         []string
						VolumeMounts []struct{ Name, MountPath string } `json:"volumeMounts"`
					}
					Volumes []struct {
						Name   string
						Secret struct{ SecretName string } `json:"secret"`
					}
				}
			}
		}
	}
	secrets := map[string][]byte{}
	for _, doc := range strings.Split(string(rendered), "\n---\n") {
		var o struct {
			Kind     string
			Metadata struct{ Name string }
			Data     map[string]string // base64 in a Secret
		}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		switch o.Kind {
		case "Deployment":
			if err := yaml.Unmarshal([]byte(doc), &deployment); err != nil {
				t.Fatal(err)
			}
		case "Secret":
			ca, err := base64.StdEncoding.DecodeString(o.Data["ca.crt"])
			if err != nil {
				t.Fatalf("Secret %s: ca.crt: %v", o.Metadata.Name, err)
			}
			secrets[o.Metadata.Name] = ca
		}
	}
	c := deployment.Spec.Template.Spec.Containers
	if len(c) != 1 || !slices.Contains(c[0].Args, "--client-ca-file=/etc/storage-webhook/client-ca/ca.crt") {
		t.Fatalf("the Deployment's container lacks --client-ca-file: %+v", c)
	}
	for _, m := range c[0].VolumeMounts {
		if m.MountPath != "/etc/storage-webhook/client-ca" {
			continue
		}
		for _, v := range deployment.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && strings.HasPrefix(v.Secret.SecretName, "storage-webhook-client-ca") && secrets[v.Secret.SecretName] != nil {
				return secrets[v.Secret.SecretName]
			}
		}
	}
	t.Fatalf("no rendered Secret storage-webhook-client-ca* mounted at /etc/storage-webhook/client-ca: %+v", deployment.Spec.Template.Spec)
	return nil
}

// startClientAuthWebhook runs the binary as the component configures it (--client-ca-file) on
// host, against the API server of kubeconfig, until the test ends; it returns the probes' URL.
func startClientAuthWebhook(t *testing.T, dir, host, certDir, kubeconfig, clientCA string) string {
	t.Helper()
	probePort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	probes := fmt.Sprintf("http://127.0.0.1:%d", probePort)
	startTestWebhook(t, filepath.Join(dir, "webhook.log"), probes+"/readyz",
		"--listen", host, "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", probePort),
		"--tls-cert-file", filepath.Join(certDir, "tls.crt"), "--tls-key-file", filepath.Join(certDir, "tls.key"),
		"--client-ca-file", clientCA, "--kubeconfig", kubeconfig, "--log-format", "text", "--shutdown-delay", "0s")
	return probes
}

// imageReview is a VirtualMachineImage CREATE review whose annotation and spec name different
// classes (IMG-V1), as the API server would send it.
func imageReview(t *testing.T) []byte {
	t.Helper()
	img := obj(t, "clientauth", image("posted", "clientauth-v2", ""))
	_ = unstructured.SetNestedField(img.Object, "other-class", "spec", "targetStorageClassName")
	raw, err := json.Marshal(img.Object)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid":       "c0ffee00-0000-4000-8000-000000000001",
			"kind":      map[string]string{"group": "harvesterhci.io", "version": "v1beta1", "kind": "VirtualMachineImage"},
			"resource":  map[string]string{"group": "harvesterhci.io", "version": "v1beta1", "resource": "virtualmachineimages"},
			"namespace": "clientauth", "name": "posted", "operation": "CREATE",
			"userInfo": map[string]string{"username": someUser},
			"object":   json.RawMessage(raw),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
