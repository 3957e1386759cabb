package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/authz"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/webhook"
)

// CheckResult is one element of `check -o json` (SPEC §7.1).
type CheckResult struct {
	Kind      string          `json:"kind"`
	Namespace string          `json:"namespace"`
	Name      string          `json:"name"`
	Operation string          `json:"operation"`
	Allowed   bool            `json:"allowed"`
	Message   string          `json:"message"`
	Warnings  []string        `json:"warnings"`
	Rules     []string        `json:"rules"`
	Patch     []admit.Op      `json:"patch"`
	Object    json.RawMessage `json:"object"`
	// Audit and Skipped are what the providers file's rollout kept out of the answer
	// (SPEC §8): denials and would-be patches of rules in Audit, and the results an
	// exception skipped, each naming it. They appear only when not empty, so that without
	// a rollout the shape is exactly SPEC §7.1's.
	Audit   []string `json:"audit,omitempty"`
	Skipped []string `json:"skipped,omitempty"`
}

// Check evaluates manifests as the API server would admit them. It reports whether any
// object was denied; an error is an input or usage error.
func Check(args []string, stdin io.Reader, stdout, stderr io.Writer) (denied bool, err error) {
	fs := newFlagSet("check", "check [--cluster PATH]... [--providers FILE] [--harvester-version V] [--enforce-all] [--operation CREATE|UPDATE|DELETE] [--user NAME] [--group NAME]... [-o text|json] FILE...", stderr)
	var src viewSource
	var privileged, groups stringList
	var operation, user, output string
	var enforceAll bool
	src.register(fs, "file or folder of the objects that already exist", "read the cluster view from this cluster (read-only: list and watch, and get for old objects)")
	fs.StringVar(&operation, "operation", "CREATE", "operation to admit: CREATE, UPDATE or DELETE")
	fs.StringVar(&user, "user", "kubernetes-admin", "request user")
	fs.Var(&groups, "group", "a group of the request user (repeatable), for IMG-V6's access check")
	fs.Var(&privileged, "privileged-user", "privileged request user (repeatable; default: the SPEC's list)")
	fs.StringVar(&output, "o", "text", "output: text or json")
	fs.BoolVar(&enforceAll, "enforce-all", false, "answer as if every rule were Enforce with no exception, whatever the providers file's rollout says: preview the switch")
	if err := parse(fs, args); err != nil {
		return false, err
	}
	op := admit.Operation(strings.ToUpper(operation))
	switch {
	case op != admit.Create && op != admit.Update && op != admit.Delete:
		return false, usageError{fmt.Errorf("--operation %q must be CREATE, UPDATE or DELETE", operation)}
	case output != "text" && output != "json":
		return false, usageError{fmt.Errorf("-o %q must be text or json", output)}
	case fs.NArg() == 0:
		return false, usageError{fmt.Errorf("no manifest FILE given")}
	}
	if err := src.validate(false); err != nil {
		return false, err
	}
	env, old, err := src.env(privileged)
	if err != nil {
		return false, err
	}
	env.EnforceAll = enforceAll
	var objs []*unstructured.Unstructured
	for _, file := range fs.Args() {
		var more []*unstructured.Unstructured
		if file == "-" {
			if more, err = cluster.ReadManifestStream(stdin); err != nil {
				err = fmt.Errorf("-: %w", err)
			}
		} else {
			more, err = cluster.ReadManifests(file)
		}
		if err != nil {
			return false, usageError{err}
		}
		objs = append(objs, more...)
	}
	hooks := webhook.Hooks(env)
	results := make([]CheckResult, 0, len(objs))
	for _, obj := range objs {
		r, err := checkOne(hooks, old, obj, op, authenticationv1.UserInfo{Username: user, Groups: groups})
		if err != nil {
			return false, err
		}
		denied = denied || !r.Allowed
		results = append(results, r)
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return denied, enc.Encode(results)
	}
	for _, r := range results {
		printText(stdout, &r)
	}
	return denied, nil
}

// offlineEnv is the environment of `check`, `review` and `audit --cluster`: a file-backed
// view, and a provider table and Harvester read once.
func offlineEnv(clusterPaths []string, providersFile, pin string, privileged []string, stderr io.Writer) (*admit.Env, *cluster.Files, error) {
	view, err := cluster.LoadFiles(clusterPaths...)
	if err != nil {
		return nil, nil, usageError{err}
	}
	file, err := readProviders(providersFile)
	if err != nil {
		return nil, nil, err
	}
	access, err := authz.NewRBAC(view.Objects())
	if err != nil {
		return nil, nil, usageError{err}
	}
	return &admit.Env{View: view, Providers: configStore(file, view, pin, stderr), Privileged: privilegedSet(privileged), Access: access}, view, nil
}

// readProviders reads a providers file; "" is the built-in table (nil).
func readProviders(path string) (*providers.File, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{err}
	}
	file, err := providers.Parse(data, webhook.Catalogue())
	if err != nil {
		return nil, usageError{err}
	}
	return file, nil
}

// liveSyncTimeout bounds how long `check --kubeconfig` waits for its watch caches.
const liveSyncTimeout = 60 * time.Second

// liveEnv is the environment of `check --kubeconfig`: the same watch caches serve uses,
// filled from a live cluster (read-only), and old objects read with a get.
func liveEnv(kubeconfig, providersFile, pin string, privileged []string, stderr io.Writer) (*admit.Env, oldObjects, error) {
	file, err := readProviders(providersFile)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("kubeconfig: %w", err)}
	}
	view, err := cluster.StartInformers(context.Background(), cfg) // the process ends after one check
	if err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(liveSyncTimeout)
	for ok, state := view.Synced(); !ok; ok, state = view.Synced() {
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("watch caches did not sync within %v: %v", liveSyncTimeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))
	old := func(gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error) {
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", gvk.Kind, err)}
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		u, err := ri.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return nil, usageError{fmt.Errorf("%s %s: the old object: %w", gvk.Kind, cluster.NamespacedName(ns, name), err)}
		}
		return u, nil
	}
	// IMG-V6 asks the API server as serve does; the kubeconfig's user needs create on
	// subjectaccessreviews, or those answers are errors (a retryable denial).
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	access := authz.NewSubjectAccess(kube.AuthorizationV1().SubjectAccessReviews(), 0, 0)
	env := &admit.Env{View: view, Providers: configStore(file, view, pin, stderr), Privileged: privilegedSet(privileged), Access: access}
	return env, old, nil
}

// oldObjects finds the stored object of an UPDATE or DELETE.
type oldObjects func(gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error)

func fileOldObjects(view *cluster.Files) oldObjects {
	return func(gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error) {
		u, ok := view.Object(cluster.ObjectKey{Kind: gvk.Kind, Namespace: ns, Name: name})
		if !ok {
			return nil, usageError{fmt.Errorf("%s %s: the operation needs the old object in the cluster view, and there is none", gvk.Kind, cluster.NamespacedName(ns, name))}
		}
		return u, nil
	}
}

func checkOne(hooks []*webhook.Hook, findOld oldObjects, obj *unstructured.Unstructured, op admit.Operation, user authenticationv1.UserInfo) (CheckResult, error) {
	gvk := obj.GroupVersionKind()
	mutating, validating := webhook.Chain(hooks, gvk.GroupKind())
	ns := obj.GetNamespace()
	if ns == "" && (mutating != nil && mutating.Route.Namespaced || validating != nil && validating.Route.Namespaced) {
		ns = "default" // as kubectl does
	}
	r := CheckResult{Kind: gvk.Kind, Namespace: ns, Name: obj.GetName(), Operation: string(op), Allowed: true,
		Warnings: []string{}, Rules: []string{}, Patch: []admit.Op{}}
	raw, err := obj.MarshalJSON()
	if err != nil {
		return r, usageError{err}
	}
	req := admit.Request{Operation: op, Namespace: ns, Name: obj.GetName(), User: user, Object: raw}
	if op != admit.Create {
		old, err := findOld(gvk, ns, obj.GetName())
		if err != nil {
			return r, err
		}
		if req.OldObject, err = old.MarshalJSON(); err != nil {
			return r, usageError{err}
		}
		if op == admit.Delete {
			req.Object = nil
		}
	}
	r.Object = req.Object
	if mutating == nil && validating == nil {
		r.Message = "no storage-webhook rule applies to " + gvk.Kind
		return r, nil
	}
	d, err := webhook.Evaluate(mutating, validating, req)
	if err != nil {
		return r, err
	}
	r.Allowed, r.Message, r.Patch, r.Object = d.Allowed, d.Message, d.Patch, d.Object
	r.Warnings = append(r.Warnings, d.Warnings...)
	r.Rules = append(r.Rules, d.Rules...)
	r.Audit = append(r.Audit, d.Audit...)
	r.Skipped = append(r.Skipped, d.Skipped...)
	if r.Object == nil {
		r.Object = json.RawMessage("null")
	}
	return r, nil
}

func printText(w io.Writer, r *CheckResult) {
	verdict := "allowed"
	if !r.Allowed {
		verdict = "DENIED"
	}
	name := r.Name
	if r.Namespace != "" {
		name = r.Namespace + "/" + r.Name
	}
	line := fmt.Sprintf("%s %s %s %s", verdict, r.Operation, r.Kind, name)
	if len(r.Patch) > 0 {
		line += fmt.Sprintf(" (%d patch operations)", len(r.Patch))
	}
	if r.Message != "" {
		line += ": " + r.Message
	}
	fmt.Fprintln(w, line)
	for _, wn := range r.Warnings {
		fmt.Fprintln(w, "  warning: "+wn)
	}
	for _, a := range r.Audit {
		fmt.Fprintln(w, "  audit: "+a)
	}
	for _, s := range r.Skipped {
		fmt.Fprintln(w, "  skipped: "+s)
	}
}
