//go:build e2e

// Package e2e runs the real storage-webhook binary against a real kube-apiserver and etcd
// (controller-runtime's envtest on binaries built by hack/k8sbins), with the webhook
// configurations rendered from deploy/ and the real upstream CRDs of Harvester, CDI, KubeVirt
// and the external-snapshotter (testdata/crds/upstream, with their provenance). Run it with
// `make e2e`; every listener is on 127.0.0.1.
package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/hcistorage/storage-webhook/internal/loadtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// suite is the shared state of the run: one API server, one webhook process.
var suite struct {
	env        *envtest.Environment
	cfg        *rest.Config
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	warnings   *warningRecorder
	bin        string
	kubectl    string
	kubeconfig string
	// webhookKubeconfig is the suite webhook's: the token of deploy/base's service account,
	// with deploy/base's RBAC, so every test runs the service with the rights it ships with.
	webhookKubeconfig string
	tmp               string
	webhook           *suiteWebhook
	// providers is the suite webhook's --providers file, mounted as the kubelet mounts
	// deploy/base's ConfigMap; auditLog is the API server's audit log (auditPolicy).
	providers *configMapVolume
	auditLog  string
}

// auditPolicy records, at Metadata level (which carries the webhooks' audit annotations),
// every write of the kinds the rules guard; nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete]
  resources:
  - {group: "", resources: [persistentvolumeclaims]}
  - {group: kubevirt.io}
  - {group: harvesterhci.io}
  - {group: cdi.kubevirt.io}
  - {group: storage.k8s.io}
  - {group: snapshot.storage.k8s.io}
- level: None
`

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard())
	suite.bin = os.Getenv("STORAGE_WEBHOOK_BIN")
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if suite.bin == "" || assets == "" {
		fmt.Fprintln(os.Stderr, "e2e: set STORAGE_WEBHOOK_BIN and KUBEBUILDER_ASSETS (make e2e does)")
		return 2
	}
	suite.kubectl = filepath.Join(assets, "kubectl")
	tmp, err := os.MkdirTemp("", "storage-webhook-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	suite.tmp = tmp

	// The webhook configurations under test are the ones `kubectl kustomize deploy/base`
	// renders; envtest points them at 127.0.0.1 with a CA of its own.
	rendered := filepath.Join(tmp, "base.yaml")
	if out, err := exec.Command(suite.kubectl, "kustomize", "../deploy/base").Output(); err != nil {
		fmt.Fprintln(os.Stderr, "kustomize deploy/base:", err)
		return 1
	} else if err := os.WriteFile(rendered, out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	suite.env = &envtest.Environment{
		CRDDirectoryPaths:     []string{"testdata/crds/upstream", "testdata/crds/minimal"},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{rendered}, LocalServingHost: "127.0.0.1"},
	}
	policy := filepath.Join(tmp, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	suite.auditLog = filepath.Join(tmp, "audit.log")
	suite.env.ControlPlane.GetAPIServer().Configure().Set("audit-policy-file", policy).Set("audit-log-path", suite.auditLog)
	start := time.Now()
	if suite.cfg, err = suite.env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start envtest:", err)
		return 1
	}
	defer func() { _ = suite.env.Stop() }()
	fmt.Fprintf(os.Stderr, "e2e: API server up in %v\n", time.Since(start).Round(time.Millisecond))

	suite.warnings = &warningRecorder{}
	cfg := rest.CopyConfig(suite.cfg)
	cfg.WarningHandler = suite.warnings
	suite.kube = kubernetes.NewForConfigOrDie(cfg)
	suite.dyn = dynamic.NewForConfigOrDie(cfg)
	if suite.kubeconfig, err = writeKubeconfig(suite.cfg, filepath.Join(tmp, "kubeconfig")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Controllers' service accounts, and the user the tests act as, are cluster-admins here:
	// the tests replay their writes by impersonation, and no operator installs their roles.
	if _, err := suite.kube.RbacV1().ClusterRoleBindings().Create(context.Background(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-service-accounts-are-admins"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   append(controllerNamespaceGroups(), rbacv1.Subject{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: someUser}),
	}, metav1.CreateOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The cluster runs Harvester v1.6.1, the release the SPEC's provider table describes,
	// with csi-driver-config entries for the LVM and Ceph drivers and a backup target.
	if err := createHarvesterSettings(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "Harvester settings:", err)
		return 1
	}
	if suite.webhookKubeconfig, err = serviceAccountKubeconfig(context.Background(), filepath.Join(tmp, "webhook.kubeconfig")); err != nil {
		fmt.Fprintln(os.Stderr, "the webhook's service account:", err)
		return 1
	}
	if suite.providers, err = newConfigMapVolume(filepath.Join(tmp, "providers"), "providers.yaml", baseProviders()); err != nil {
		fmt.Fprintln(os.Stderr, "the providers file:", err)
		return 1
	}
	suite.webhook = &suiteWebhook{}
	if err := suite.webhook.start(); err != nil {
		fmt.Fprintln(os.Stderr, "start webhook:", err)
		return 1
	}
	defer suite.webhook.stop()
	fmt.Fprintf(os.Stderr, "e2e: webhook ready in %v\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// controllerNamespaceGroups are the service account groups of the namespaces whose
// controllers the tests replay (not every service account: TestLiveAudit needs one with
// no rights).
func controllerNamespaceGroups() []rbacv1.Subject {
	var out []rbacv1.Subject
	for _, ns := range []string{"harvester-system", "cdi", "kubevirt", "kube-system", "longhorn-system"} {
		out = append(out, rbacv1.Subject{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "system:serviceaccounts:" + ns})
	}
	return out
}

// writeKubeconfig writes the envtest admin's credentials for the webhook process.
func writeKubeconfig(cfg *rest.Config, path string) (string, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	return path, clientcmd.WriteToFile(*kc, path)
}

// suiteSettings are the Harvester Settings of the suite's cluster, as Harvester stores them.
var suiteSettings = map[string][2]string{ // name: value, default
	"server-version": {"v1.6.1", "dev"},
	"csi-driver-config": {`{"driver.longhorn.io":{"volumeSnapshotClassName":"longhorn-snapshot","backupVolumeSnapshotClassName":"longhorn"},` +
		`"lvm.driver.harvesterhci.io":{"volumeSnapshotClassName":"lvm-snapshot","backupVolumeSnapshotClassName":"lvm-snapshot"},` +
		`"rbd.csi.ceph.com":{"volumeSnapshotClassName":"csi-rbdplugin-snapclass","backupVolumeSnapshotClassName":"csi-rbdplugin-snapclass"}}`,
		`{"driver.longhorn.io":{"volumeSnapshotClassName":"longhorn-snapshot","backupVolumeSnapshotClassName":"longhorn"}}`},
	"backup-target": {`{"type":"nfs","endpoint":"nfs://backup.example.com:/export/harvester"}`, ""},
	// One the service must never read: its RBAC names the three above only.
	"ssl-certificates": {`{"publicCertificate":"x","privateKey":"y"}`, ""},
}

func createHarvesterSettings(ctx context.Context) error {
	for name, v := range suiteSettings {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting", "metadata": map[string]any{"name": name},
			"value": v[0], "default": v[1],
		}}
		if _, err := suite.dyn.Resource(settingsGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

var settingsGVR = schema.GroupVersionResource{Group: "harvesterhci.io", Version: "v1beta1", Resource: "settings"}

// serviceAccountKubeconfig applies deploy/base's namespace and RBAC, and writes a kubeconfig
// with a token of its service account.
func serviceAccountKubeconfig(ctx context.Context, path string) (string, error) {
	if out, err := kubectl("apply", "-f", "../deploy/base/namespace.yaml", "-f", "../deploy/base/rbac.yaml"); err != nil {
		return "", fmt.Errorf("apply deploy/base RBAC: %v: %s", err, out)
	}
	expiry := int64(24 * 3600)
	tr, err := suite.kube.CoreV1().ServiceAccounts("storage-webhook").CreateToken(ctx, "storage-webhook",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: suite.cfg.Host, CertificateAuthorityData: suite.cfg.CAData}
	kc.AuthInfos["storage-webhook"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "storage-webhook"}
	kc.CurrentContext = "envtest"
	return path, clientcmd.WriteToFile(*kc, path)
}

// suiteWebhook is the suite's webhook: the real binary, serving on the address envtest
// registered, its probes and metrics on probes. TestLife stops and restarts it.
type suiteWebhook struct {
	proc   *webhookProcess
	probes string
}

func (w *suiteWebhook) start() error {
	opts := suite.env.WebhookInstallOptions
	probePort, err := freePort()
	if err != nil {
		return err
	}
	w.probes = fmt.Sprintf("http://127.0.0.1:%d", probePort)
	w.proc, err = startWebhook([]string{
		"--listen", net.JoinHostPort(opts.LocalServingHost, fmt.Sprint(opts.LocalServingPort)),
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", probePort),
		"--tls-cert-file", filepath.Join(opts.LocalServingCertDir, "tls.crt"),
		"--tls-key-file", filepath.Join(opts.LocalServingCertDir, "tls.key"),
		"--kubeconfig", suite.webhookKubeconfig, "--log-format", "text",
		"--providers", suite.providers.path(),
	}, filepath.Join(suite.tmp, "webhook.log"), w.probes+"/readyz")
	return err
}

func (w *suiteWebhook) stop() {
	if w.proc != nil {
		w.proc.stop()
		w.proc = nil
	}
}

// webhookProcess is a running `storage-webhook serve`.
type webhookProcess struct {
	cmd     *exec.Cmd
	done    chan error // the result of Wait, once the process has exited
	logFile string
}

// webhookReadyWithin is how long a started webhook may take to answer its readiness URL.
const webhookReadyWithin = 30 * time.Second

// startWebhook runs `$STORAGE_WEBHOOK_BIN serve args...`, its output appended to logFile, and
// waits until readyURL (its /readyz) answers 200. It returns an error, the log attached, if the
// process exits first or is not ready within webhookReadyWithin (then it is stopped). It takes
// no *testing.T: TestMain starts the suite's webhook with it; tests use startTestWebhook.
func startWebhook(args []string, logFile, readyURL string) (*webhookProcess, error) {
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	w := &webhookProcess{cmd: exec.Command(suite.bin, append([]string{"serve"}, args...)...), logFile: logFile}
	w.cmd.Stdout, w.cmd.Stderr = log, log
	if err := w.cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	w.done = make(chan error, 1)
	go func() { w.done <- w.cmd.Wait(); log.Close() }()
	deadline := time.Now().Add(webhookReadyWithin)
	for {
		select {
		case err := <-w.done:
			return nil, fmt.Errorf("webhook exited: %v; log:\n%s", err, readFile(logFile))
		default:
		}
		err := ready(readyURL)
		if err == nil {
			return w, nil
		}
		if time.Now().After(deadline) {
			w.stop()
			return nil, fmt.Errorf("webhook not ready within %v: %v; log:\n%s", webhookReadyWithin, err, readFile(logFile))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready is nil when url answers 200.
func ready(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}

// stop interrupts the process and waits for it to exit, killing it after 20 s.
func (w *webhookProcess) stop() {
	_ = w.cmd.Process.Signal(os.Interrupt)
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func freePort() (int, error) { return loadtest.FreePort() }

// warningRecorder keeps the admission warnings the API server returns to the client.
type warningRecorder struct {
	mu   sync.Mutex
	list []string
}

func (r *warningRecorder) HandleWarningHeader(code int, agent, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, text)
}

// since returns the warnings recorded after mark.
func (r *warningRecorder) since(mark int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string{}, r.list[mark:]...)
}

func (r *warningRecorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.list)
}

// gvrs maps the kinds the tests create to their resources.
var gvrs = map[string]schema.GroupVersionResource{
	"VirtualMachineImage":   {Group: "harvesterhci.io", Version: "v1beta1", Resource: "virtualmachineimages"},
	"VirtualMachineBackup":  {Group: "harvesterhci.io", Version: "v1beta1", Resource: "virtualmachinebackups"},
	"DataVolume":            {Group: "cdi.kubevirt.io", Version: "v1beta1", Resource: "datavolumes"},
	"StorageProfile":        {Group: "cdi.kubevirt.io", Version: "v1beta1", Resource: "storageprofiles"},
	"VirtualMachine":        {Group: "kubevirt.io", Version: "v1", Resource: "virtualmachines"},
	"VolumeSnapshot":        {Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"},
	"VolumeSnapshotClass":   {Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotclasses"},
	"Addon":                 {Group: "harvesterhci.io", Version: "v1beta1", Resource: "addons"},
	"PersistentVolumeClaim": {Version: "v1", Resource: "persistentvolumeclaims"},
	"StorageClass":          {Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"},
	"Namespace":             {Version: "v1", Resource: "namespaces"},
	"Pod":                   {Version: "v1", Resource: "pods"},
	"Report":                {Group: "openreports.io", Version: "v1alpha1", Resource: "reports"},
	"ClusterReport":         {Group: "openreports.io", Version: "v1alpha1", Resource: "clusterreports"},
}
