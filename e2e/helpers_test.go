//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const gcUser = "system:serviceaccount:kube-system:generic-garbage-collector"

var nsCounter atomic.Int32

// newNamespace makes a namespace of its own for a test: without a controller-manager,
// deleted namespaces never finish, so names are never reused.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("e2e-%d-%d", time.Now().Unix()%100000, nsCounter.Add(1))
	_, err := suite.kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// obj decodes a YAML manifest; namespace, when not empty, is set on it.
func obj(t *testing.T, namespace, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatalf("bad test manifest: %v\n%s", err, manifest)
	}
	if namespace != "" && !clusterScoped[u.GetKind()] {
		u.SetNamespace(namespace)
	}
	return u
}

// clusterScoped are the kinds obj and client never put in a namespace.
var clusterScoped = map[string]bool{"StorageClass": true, "StorageProfile": true, "Namespace": true, "VolumeSnapshotClass": true, "ClusterReport": true}

// client returns the dynamic client of a kind, acting as user when not empty.
func client(t *testing.T, kind, namespace, user string) dynamic.ResourceInterface {
	t.Helper()
	gvr, ok := gvrs[kind]
	if !ok {
		t.Fatalf("no resource for kind %s", kind)
	}
	dyn := suite.dyn
	if user != "" {
		dyn = as(user)
	}
	if namespace == "" || clusterScoped[kind] {
		return dyn.Resource(gvr)
	}
	return dyn.Resource(gvr).Namespace(namespace)
}

// as is a dynamic client that acts as user. A service account user also gets the groups
// the API server gives service accounts; TestMain lets those act as cluster-admin, as
// Harvester's account is and as CDI's and KubeVirt's roles nearly are.
func as(user string) dynamic.Interface {
	cfg := rest.CopyConfig(suite.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	if sa, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		ns, _, _ := strings.Cut(sa, ":")
		cfg.Impersonate.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	cfg.WarningHandler = suite.warnings
	return dynamic.NewForConfigOrDie(cfg)
}

// Request users of the controllers whose writes the tests replay (SPEC §5.4, Harvester's,
// CDI's and KubeVirt's charts, Kubernetes' controller-manager).
const (
	harvesterUser  = "system:serviceaccount:harvester-system:harvester"
	cdiUser        = "system:serviceaccount:cdi:cdi-sa"
	virtController = "system:serviceaccount:kubevirt:kubevirt-controller"
	virtAPI        = "system:serviceaccount:kubevirt:kubevirt-apiserver"
	pvBinder       = "system:serviceaccount:kube-system:persistent-volume-binder"
	nsController   = "system:serviceaccount:kube-system:namespace-controller"
	longhornUser   = "system:serviceaccount:longhorn-system:longhorn-service-account"
	someUser       = "alice"
)

// ensure creates a cluster-scoped object unless it exists (the suite shares one cluster).
func ensure(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	if _, err := create(t, u, false); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
}

// scrape reads a Prometheus text exposition: from the webhook's metrics port, or (url "")
// from the API server's /metrics.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	var body io.Reader
	if url == "" {
		raw, err := suite.kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	} else {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body = resp.Body
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// sum adds the counter (or histogram count) samples of a family whose labels keep accepts
// (all of them when keep is nil).
func sum(families map[string]*dto.MetricFamily, name string, keep func(labels map[string]string) bool) float64 {
	var total float64
	f := families[name]
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		if keep != nil && !keep(labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

func dryRun(on bool) []string {
	if on {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// create creates u (with dry run when asked) and returns what the API server stored.
func create(t *testing.T, u *unstructured.Unstructured, dry bool) (*unstructured.Unstructured, error) {
	t.Helper()
	return client(t, u.GetKind(), u.GetNamespace(), "").Create(context.Background(), u.DeepCopy(), metav1.CreateOptions{DryRun: dryRun(dry)})
}

func update(t *testing.T, u *unstructured.Unstructured, dry bool) (*unstructured.Unstructured, error) {
	t.Helper()
	return client(t, u.GetKind(), u.GetNamespace(), "").Update(context.Background(), u.DeepCopy(), metav1.UpdateOptions{DryRun: dryRun(dry)})
}

func remove(t *testing.T, kind, namespace, name, user string, dry bool) error {
	t.Helper()
	return client(t, kind, namespace, user).Delete(context.Background(), name, metav1.DeleteOptions{DryRun: dryRun(dry)})
}

func get(t *testing.T, kind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := client(t, kind, namespace, "").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", kind, namespace, name, err)
	}
	return u
}

// deniedBy reports whether err is a webhook denial by rule.
func deniedBy(err error, rule string) bool {
	return err != nil && apierrors.IsForbidden(err) && strings.Contains(err.Error(), "["+rule+"]")
}

// within is how long the webhook's watch caches may take to see a change.
const within = 20 * time.Second

// expectDenied retries the call as a dry run until rule denies it (the webhook's caches may
// lag the objects a test just created), then checks that the real call is denied too.
func expectDenied(t *testing.T, rule string, call func(dry bool) error) {
	t.Helper()
	var err error
	deadline := time.Now().Add(within)
	for err = call(true); !deniedBy(err, rule); err = call(true) {
		if time.Now().After(deadline) {
			t.Fatalf("not denied by %s within %v; last answer: %v", rule, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := call(false); !deniedBy(err, rule) {
		t.Fatalf("dry run denied by %s, the real request answered: %v", rule, err)
	}
}

// expectCreated retries a dry-run create until the stored object passes ok, then creates
// it for real and checks the stored object again.
func expectCreated(t *testing.T, u *unstructured.Unstructured, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	return expectCreatedAs(t, "", u, ok)
}

// expectCreatedAs is expectCreated acting as user (the suite's admin when empty).
func expectCreatedAs(t *testing.T, user string, u *unstructured.Unstructured, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	c := client(t, u.GetKind(), u.GetNamespace(), user)
	retry(t, func() error {
		got, err := c.Create(context.Background(), u.DeepCopy(), metav1.CreateOptions{DryRun: dryRun(true)})
		if err == nil && !ok(got) {
			err = fmt.Errorf("the stored object would not be as expected: %v", got.Object)
		}
		return err
	})
	got, err := c.Create(context.Background(), u.DeepCopy(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s %s as %q: %v", u.GetKind(), u.GetName(), user, err)
	}
	if !ok(got) {
		t.Fatalf("created %s %s is not as expected: %v", u.GetKind(), u.GetName(), got.Object)
	}
	return got
}

// retry calls call until it succeeds, for as long as the webhook's caches may lag the
// objects a test just made.
func retry(t *testing.T, call func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for err := call(); err != nil; err = call() {
		if time.Now().After(deadline) {
			t.Fatalf("not admitted within %v: %v", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kubectl runs the pinned kubectl against the suite's API server.
func kubectl(args ...string) (string, error) {
	out, err := exec.Command(suite.kubectl, append([]string{"--kubeconfig", suite.kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

// checkResult is one element of `storage-webhook check -o json`.
type checkResult struct {
	Allowed bool           `json:"allowed"`
	Message string         `json:"message"`
	Rules   []string       `json:"rules"`
	Object  map[string]any `json:"object"`
}

// checkJSON runs `storage-webhook check --kubeconfig ... -o json` and returns its answer and
// exit status; an input error (status 2) fails the test.
func checkJSON(t *testing.T, args ...string) ([]checkResult, int) {
	t.Helper()
	out, err := exec.Command(suite.bin, append([]string{"check", "--kubeconfig", suite.kubeconfig, "-o", "json"}, args...)...).Output()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 2:
		t.Fatalf("check: input error: %s", exit.Stderr)
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	var results []checkResult
	if err := json.Unmarshal(out, &results); err != nil || len(results) == 0 {
		t.Fatalf("check output %s: %v", out, err)
	}
	return results, code
}

func anyObject(*unstructured.Unstructured) bool { return true }

// str reads a nested string field.
func str(u *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	return s
}

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

// pollUntil calls check until it returns nil, failing the test after `within`.
func pollUntil(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for err := check(); err != nil; err = check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startTestWebhook is startWebhook for a test: `storage-webhook serve args...` ready on
// readyURL, stopped when the test ends, its log (logFile) logged if the test failed.
func startTestWebhook(t *testing.T, logFile, readyURL string, args ...string) *webhookProcess {
	t.Helper()
	w, err := startWebhook(args, logFile, readyURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.stop()
		if t.Failed() {
			t.Logf("webhook log:\n%s", readFile(logFile))
		}
	})
	return w
}

// copyDeploy copies deploy/ into a directory of the test's, with the manual overlay's
// certificate made by `storage-webhook certs --out`, and returns that directory (the copy is
// its deploy/).
func copyDeploy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../deploy", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy deploy/: %v %s", err, out)
	}
	if out, err := exec.Command(suite.bin, "certs", "--out", filepath.Join(dir, "deploy/overlays/manual/certs")).CombinedOutput(); err != nil {
		t.Fatalf("storage-webhook certs: %v %s", err, out)
	}
	return dir
}

// kustomizeComponents writes an overlay name into the copy of deploy/ in dir (copyDeploy)
// holding the base and the components (of deploy/components, in that order) and renders it
// with the pinned kubectl's kustomize.
func kustomizeComponents(t *testing.T, dir, name string, components ...string) []byte {
	t.Helper()
	overlay := filepath.Join(dir, "deploy/overlays", name)
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\ncomponents:\n"
	for _, c := range components {
		k += "- ../../components/" + c + "\n"
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return kustomize(t, overlay)
}

// kustomizeOverlayWith appends the components to the shipped overlay's kustomization in the
// copy of deploy/ in dir (once per copy: the overlay has no components: of its own) and
// renders it with the pinned kubectl's kustomize; with no components it renders the overlay
// as shipped.
func kustomizeOverlayWith(t *testing.T, dir, overlay string, components ...string) []byte {
	t.Helper()
	path := filepath.Join(dir, "deploy/overlays", overlay)
	if len(components) > 0 {
		k := filepath.Join(path, "kustomization.yaml")
		data, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, "\ncomponents:\n"...)
		for _, c := range components {
			data = append(data, "- ../../components/"+c+"\n"...)
		}
		if err := os.WriteFile(k, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return kustomize(t, path)
}

// kustomize renders a kustomization directory with the pinned kubectl.
func kustomize(t *testing.T, path string) []byte {
	t.Helper()
	out, err := exec.Command(suite.kubectl, "kustomize", path).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("kustomize %s: %v\n%s", path, err, exit.Stderr)
		}
		t.Fatalf("kustomize %s: %v", path, err)
	}
	return out
}

// serverSideDryRun has the API server accept a rendering with `kubectl apply --server-side
// --dry-run=server`, checks it accepted all `objects` objects, and returns kubectl's output.
// Namespaced objects need their namespace for a dry run, so it makes storage-webhook (the
// webhooks' namespaceSelector excludes it anyway) and cattle-dashboards (Rancher
// Monitoring's, where the monitoring component puts the dashboard); the webhook
// configurations are renamed configName (see renameWebhookConfigurations).
func serverSideDryRun(t *testing.T, rendered []byte, configName string, objects int) string {
	t.Helper()
	createNamespaces(t, "storage-webhook", "cattle-dashboards")
	file := filepath.Join(t.TempDir(), configName+".yaml")
	if err := os.WriteFile(file, renameWebhookConfigurations(t, rendered, configName), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := kubectl("apply", "--server-side", "--field-manager", "e2e", "--dry-run=server", "-f", file)
	if err != nil {
		t.Fatalf("server-side dry run: %v\n%s", err, out)
	}
	if n := strings.Count(out, "(server dry run)"); n != objects {
		t.Errorf("%d objects accepted, rendered %d:\n%s", n, objects, out)
	}
	return out
}

// createNamespaces makes each namespace unless it exists.
func createNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		_, err := suite.kube.CoreV1().Namespaces().Create(context.Background(),
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil && !isAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// clusterRoleFrom reads the ClusterRole name from a manifest file of one or more documents.
func clusterRoleFrom(t *testing.T, file, name string) *rbacv1.ClusterRole {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var r rbacv1.ClusterRole
		if yaml.Unmarshal([]byte(doc), &r) == nil && r.Kind == "ClusterRole" && r.Name == name {
			return &r
		}
	}
	t.Fatalf("%s has no ClusterRole %s", file, name)
	return nil
}

// roleTokens creates role (unless it exists) and two service accounts in ns, boundName bound
// to role (until the test ends) and unboundName bound to nothing, and returns their tokens
// (TokenRequest).
func roleTokens(t *testing.T, ctx context.Context, ns string, role *rbacv1.ClusterRole, boundName, unboundName string) (bound, unbound string) {
	t.Helper()
	if _, err := suite.kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		t.Fatal(err)
	}
	token := func(name string) string {
		if _, err := suite.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := suite.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	bound, unbound = token(boundName), token(unboundName)
	binding := boundName + "-" + ns
	if _, err := suite.kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binding},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: boundName, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = suite.kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding, metav1.DeleteOptions{})
	})
	return bound, unbound
}

// getWithToken GETs url with c, as the bearer of token (no Authorization header when token
// is empty), and returns the status code and the body.
func getWithToken(t *testing.T, c *http.Client, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}
