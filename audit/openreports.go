package audit

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/webhook"

	"github.com/hcistorage/storage-webhook/cluster"
)

// OpenReports constants.
const (
	OpenReportsAPIVersion = "openreports.io/v1alpha1"
	OpenReportsName       = "storage-webhook" // metadata.name of every report
	OpenReportsPolicy     = "storage-webhook" // results[].policy
	OpenReportsSource     = "storage-webhook" // source of the reports and of each result
)

// orResult is one results[] item of an OpenReports report.
type orResult struct {
	Policy     string            `json:"policy"`
	Rule       string            `json:"rule"`
	Result     string            `json:"result"`
	Severity   string            `json:"severity"`
	Scored     bool              `json:"scored"`
	Category   string            `json:"category,omitempty"`
	Message    string            `json:"message,omitempty"`
	Source     string            `json:"source"`
	Properties map[string]string `json:"properties,omitempty"`
	Resources  []orObjectRef     `json:"resources"`
	Timestamp  orTimestamp       `json:"timestamp"`
}

type orObjectRef struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	UID        string `json:"uid,omitempty"`
}

type orTimestamp struct {
	Seconds int64 `json:"seconds"`
	Nanos   int32 `json:"nanos"`
}

type orSummary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

type orMetadata struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

type orReport struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   orMetadata `json:"metadata"`
	Source     string     `json:"source"`
	Summary    orSummary  `json:"summary"`
	Results    []orResult `json:"results"`
}

// orMapping is the result, severity and scored of each finding severity (see OpenReports).
var orMapping = map[Severity]struct {
	result, severity string
	scored           bool
}{
	Violation: {"fail", "high", true},
	Drift:     {"warn", "medium", false},
	Warning:   {"warn", "low", false},
	Skip:      {"skip", "info", false},
}

// ruleCategory is the Kind of the route that holds each rule ID.
var ruleCategory = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	for _, r := range webhook.Routes() {
		for _, rule := range r.Rules {
			if _, ok := m[rule.ID]; !ok {
				m[rule.ID] = r.Kind
			}
		}
	}
	return m
})

// OpenReports renders findings as OpenReports objects: a ClusterReport for the findings
// without a namespace, then a Report per namespace in name order, as YAML documents
// separated by "---\n"; nothing when there are no findings. now is the results' timestamp.
// The input is not changed; the same findings in any order give the same bytes.
//
// `audit -o openreports` prints the findings as OpenReports objects (openreports.io/v1alpha1,
// the format of the Kubernetes policy working group that Kyverno and Policy Reporter read):
// one Report named storage-webhook in each namespace that has findings, and one ClusterReport
// named storage-webhook for the findings on cluster-scoped objects (StorageClass,
// StorageProfile: a finding without a namespace). It never writes them to the cluster; an
// administrator who wants them there pipes them to kubectl.
//
// The mapping of a finding to a result:
//
//	violation → result fail, severity high,   scored true:  a validating rule would deny the
//	            object today; the requirement is not met.
//	drift     → result warn, severity medium, scored false: the webhook admitted the object
//	            (it predates the webhook or a rule), and a mutating rule would only add or
//	            correct a field. It is worth fixing — the field changes how CDI and Harvester
//	            treat the object, and the fix is an exact patch — but no rule refuses the
//	            object as it is. Counting drift as fail would turn every object created before
//	            the webhook into a policy failure on the day it is installed, and would hide
//	            the violations among them.
//	warning   → result warn, severity low,    scored false: the rule itself only warns at
//	            admission.
//	skip      → result skip, severity info,   scored false: an unexpired exception of the
//	            providers file lets the object break the rule; properties.exception names it.
//
// Policy Reporter ranks results by them: a fail by its severity (high → priority error), a
// warn at priority warning, so violations come first in its dashboards and alert filters,
// and its severity filters still tell drift (medium) from warnings (low). scored follows
// Kyverno's convention (policies.kyverno.io/scored: a failure of a non-scored policy is
// reported as warn) and the CRD's summary (warn counts "non-scored policies whose
// requirements were not met").
//
// Every result has policy and source "storage-webhook", rule the rule ID, category the Kind
// of the resource the rule is about (the route table's), message the finding's message,
// properties {"fix": the fix, "severity": violation|drift|warning|skip, "action": the rule's
// action for the object (Enforce, Warn, Audit), "exception": the exception of a skip},
// resources one reference to
// the object (apiVersion, kind, name, namespace, uid as known) and timestamp now. summary
// counts the results of a report by result; audit reports no passes, so pass stays 0.
//
// With no findings there is no report, so the output is empty (zero documents): as with the
// namespaces, a report exists only where there is something to report, and an empty
// document stream is what "nothing to report" looks like to a pipe; the exit code of
// `audit` says the cluster is clean. Reports of an earlier run are not deleted by applying a
// later one; their label app.kubernetes.io/managed-by=storage-webhook selects them.
func OpenReports(findings []Finding, now time.Time) ([]byte, error) {
	fs := slices.Clone(findings)
	Sort(fs)
	ts := orTimestamp{Seconds: now.Unix(), Nanos: int32(now.Nanosecond())}

	byNS := map[string]*orReport{}
	for _, f := range fs {
		m, ok := orMapping[f.Severity]
		if !ok {
			return nil, fmt.Errorf("%s %s: %s: unknown severity %q", f.Kind, cluster.NamespacedName(f.Namespace, f.Name), f.Rule, f.Severity)
		}
		if f.Rule == "" {
			return nil, fmt.Errorf("%s %s: finding without a rule", f.Kind, cluster.NamespacedName(f.Namespace, f.Name))
		}
		rep := byNS[f.Namespace]
		if rep == nil {
			rep = &orReport{
				APIVersion: OpenReportsAPIVersion,
				Kind:       "Report",
				Metadata: orMetadata{Name: OpenReportsName, Namespace: f.Namespace,
					Labels: map[string]string{"app.kubernetes.io/managed-by": "storage-webhook"}},
				Source: OpenReportsSource,
			}
			if f.Namespace == "" {
				rep.Kind = "ClusterReport"
			}
			byNS[f.Namespace] = rep
		}
		category := ruleCategory()[f.Rule]
		if category == "" {
			category = f.Kind
		}
		props := map[string]string{"severity": string(f.Severity)}
		if f.Fix != "" {
			props["fix"] = f.Fix
		}
		if f.Action != "" {
			props["action"] = string(f.Action)
		}
		if f.Exception != "" {
			props["exception"] = f.Exception
		}
		rep.Results = append(rep.Results, orResult{
			Policy:     OpenReportsPolicy,
			Rule:       f.Rule,
			Result:     m.result,
			Severity:   m.severity,
			Scored:     m.scored,
			Category:   category,
			Message:    f.Message,
			Source:     OpenReportsSource,
			Properties: props,
			Resources: []orObjectRef{{APIVersion: f.APIVersion, Kind: f.Kind, Name: f.Name,
				Namespace: f.Namespace, UID: string(f.UID)}},
			Timestamp: ts,
		})
		switch m.result {
		case "fail":
			rep.Summary.Fail++
		case "warn":
			rep.Summary.Warn++
		case "skip":
			rep.Summary.Skip++
		}
	}

	namespaces := make([]string, 0, len(byNS))
	for ns := range byNS {
		namespaces = append(namespaces, ns)
	}
	slices.Sort(namespaces) // "" (the ClusterReport) first
	var out bytes.Buffer
	for i, ns := range namespaces {
		doc, err := yaml.Marshal(byNS[ns])
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", byNS[ns].Kind, cluster.NamespacedName(ns, OpenReportsName), err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(doc)
	}
	return out.Bytes(), nil
}
