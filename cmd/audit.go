package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hcistorage/storage-webhook/audit"
	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/rollout"
)

// Audit evaluates the stored objects of a cluster view (files or a live cluster, read-only)
// against every rule that can hold for a stored object, under the providers file's rollout.
// It reports whether there was any finding that no exception skips; an error is an input or
// usage error.
func Audit(args []string, stdout, stderr io.Writer) (found bool, err error) {
	fs := newFlagSet("audit", "audit [--cluster PATH]... | [--kubeconfig FILE] [--providers FILE] [--harvester-version V] [-o text|json|openreports]", stderr)
	var src viewSource
	var output string
	src.register(fs, "file or folder of the stored objects", "audit this cluster (read-only: list and watch)")
	fs.StringVar(&output, "o", "text", "output: text, json or openreports")
	if err := parse(fs, args); err != nil {
		return false, err
	}
	switch {
	case output != "text" && output != "json" && output != "openreports":
		return false, usageError{fmt.Errorf("-o %q must be text, json or openreports", output)}
	case fs.NArg() > 0:
		return false, usageError{fmt.Errorf("unexpected argument %q: audit reads the cluster view, not manifests", fs.Arg(0))}
	}
	if err := src.validate(true); err != nil {
		return false, err
	}
	env, _, err := src.env(nil)
	if err != nil {
		return false, err
	}
	view, ok := env.View.(audit.Lister)
	if !ok {
		return false, fmt.Errorf("the cluster view cannot list its objects")
	}
	findings, errs := audit.New(env).All(view)
	if len(errs) > 0 {
		return false, fmt.Errorf("a rule failed on %d object(s): %w", len(errs), errors.Join(errs...))
	}
	now := time.Now()
	for _, e := range env.Policy().Exceptions() {
		if e.Expired(now) {
			fmt.Fprintf(stderr, "warning: exception %s (rules %s) expired at %s and lets nothing through: remove it from the providers file, or renew it\n",
				e.Name, strings.Join(e.Rules, ", "), e.Expires.UTC().Format(time.RFC3339))
		}
	}
	switch output {
	case "json":
		if findings == nil {
			findings = []audit.Finding{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(findings)
	case "openreports":
		var out []byte
		if out, err = audit.OpenReports(findings, now); err == nil {
			_, err = stdout.Write(out)
		}
	default:
		printFindings(stdout, findings)
	}
	// Findings an exception lets the object have are reported, but are not what audit
	// exits 1 for.
	return slices.ContainsFunc(findings, func(f audit.Finding) bool { return f.Severity != audit.Skip }), err
}

// printFindings prints one line per finding, its fix under it, and a total.
func printFindings(w io.Writer, findings []audit.Finding) {
	count := map[audit.Severity]int{}
	objects := map[string]bool{}
	for _, f := range findings {
		rule := f.Rule
		if f.Action != rollout.Enforce && f.Action != "" {
			rule += " (" + string(f.Action) + ")"
		}
		msg := f.Message
		if f.Exception != "" {
			msg = "exception " + f.Exception + ": " + msg
		}
		fmt.Fprintf(w, "%-9s %-7s %s %s: %s\n", f.Severity, rule, f.Kind, cluster.NamespacedName(f.Namespace, f.Name), msg)
		if f.Fix != "" {
			fmt.Fprintf(w, "  fix: %s\n", f.Fix)
		}
		count[f.Severity]++
		objects[f.Kind+"/"+f.Namespace+"/"+f.Name] = true
	}
	total := fmt.Sprintf("%d finding(s) in %d object(s): %d violation(s), %d drift, %d warning(s)",
		len(findings), len(objects), count[audit.Violation], count[audit.Drift], count[audit.Warning])
	if count[audit.Skip] > 0 {
		total += fmt.Sprintf(", %d skipped by exceptions", count[audit.Skip])
	}
	fmt.Fprintln(w, total)
}
