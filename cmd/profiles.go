package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hcistorage/storage-webhook/cluster"
	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/providers"
)

// ProfileReport is one element of `profiles -o json`: a StorageClass, its provider profile
// and the effective settings the rules use for it.
type ProfileReport struct {
	Class       string `json:"class"`
	Provisioner string `json:"provisioner"`
	// Profile is the matched profile's name, "none" when no row of the table matches.
	Profile string `json:"profile"`
	// Annotations are the class's per-class CDI setting annotations (Harvester's four and
	// cdi.kubevirt.io/clone-strategy), raw values, only those present.
	Annotations map[string]string  `json:"annotations"`
	Effective   providers.Settings `json:"effective"`
	// CDIAccessModes says where CDI gets access modes when the effective settings have none
	// (providers.CDIAccessModes), noAccessModes when CDI has none either, and "" when the
	// effective settings have access modes.
	CDIAccessModes string `json:"cdiAccessModes"`
	// Problems are the errors of the class's invalid annotations (providers.Effective).
	Problems []string `json:"problems"`
}

// noAccessModes is ProfileReport.CDIAccessModes when nothing gives a class access modes.
const noAccessModes = "none: CDI cannot size or bind spec.storage DataVolumes"

// Profiles lists every StorageClass of the --cluster files or of a live cluster (one
// read-only list), with its provider profile, per-class CDI annotations and effective
// settings. A class's invalid annotations are reported, not an error; an error is an input
// or usage error.
func Profiles(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("profiles", "profiles [--cluster PATH]... | [--kubeconfig FILE] [--providers FILE] [-o table|json]", stderr)
	var src viewSource
	var output string
	src.register(fs, "file or folder of manifests whose StorageClasses to list", "list the StorageClasses of this cluster (read-only: one list)")
	fs.StringVar(&output, "o", "table", "output: table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case output != "table" && output != "json":
		return usageError{fmt.Errorf("-o %q must be table or json", output)}
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q: give StorageClasses with --cluster PATH or --kubeconfig FILE", fs.Arg(0))}
	}
	if err := src.validate(true); err != nil {
		return err
	}
	table, err := readProviders(src.providers)
	if err != nil {
		return err
	}
	var classes []*storagev1.StorageClass
	if src.kubeconfig != "" {
		classes, err = liveStorageClasses(src.kubeconfig)
	} else {
		classes, err = fileStorageClasses(src.clusterPaths)
	}
	if err != nil {
		return err
	}
	slices.SortFunc(classes, func(a, b *storagev1.StorageClass) int { return strings.Compare(a.Name, b.Name) })
	reports := make([]ProfileReport, 0, len(classes))
	for _, sc := range classes {
		reports = append(reports, profileReport(table, sc))
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	}
	return printProfiles(stdout, reports)
}

// fileStorageClasses are the StorageClasses of manifests, as the file-backed cluster view
// reads them.
func fileStorageClasses(paths []string) ([]*storagev1.StorageClass, error) {
	view, err := cluster.LoadFiles(paths...)
	if err != nil {
		return nil, usageError{err}
	}
	var classes []*storagev1.StorageClass
	for _, o := range view.List("storageclasses") {
		classes = append(classes, o.(*storagev1.StorageClass))
	}
	return classes, nil
}

// liveStorageClasses lists the StorageClasses of a cluster: one read-only list call.
func liveStorageClasses(kubeconfig string) ([]*storagev1.StorageClass, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, usageError{fmt.Errorf("kubeconfig: %w", err)}
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, usageError{fmt.Errorf("kubeconfig: %w", err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), liveSyncTimeout)
	defer cancel()
	list, err := client.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list StorageClasses: %w", err)
	}
	classes := make([]*storagev1.StorageClass, len(list.Items))
	for i := range list.Items {
		classes[i] = &list.Items[i]
	}
	return classes, nil
}

func profileReport(table providers.Table, sc *storagev1.StorageClass) ProfileReport {
	r := ProfileReport{Class: sc.Name, Provisioner: sc.Provisioner, Profile: "none",
		Annotations: map[string]string{}, Problems: []string{}}
	p, ok := table.Match(sc)
	if ok {
		r.Profile = p.Name
	}
	for _, k := range harvester.ClassCDIKeys {
		if v, ok := sc.Annotations[k]; ok {
			r.Annotations[k] = v
		}
	}
	var errs []error
	r.Effective, errs = providers.Effective(sc, p)
	for _, err := range errs {
		r.Problems = append(r.Problems, err.Error())
	}
	if len(r.Effective.AccessModes) == 0 {
		r.CDIAccessModes = providers.CDIAccessModes(sc)
		if r.CDIAccessModes == "" {
			r.CDIAccessModes = noAccessModes
		}
	}
	return r
}

// printProfiles prints one aligned row per class, then the legend and, by class, the
// problems the PROBLEMS column counts and the classes without access modes.
func printProfiles(w io.Writer, reports []ProfileReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tPROVISIONER\tPROFILE\tCLONE\tSNAPSHOT-CLASS\tACCESS-MODES\tFS-OVERHEAD\tPROBLEMS")
	var notes []string
	for _, r := range reports {
		s := r.Effective
		modes := "cdi"
		switch {
		case len(s.AccessModes) > 0:
			modes = settingCell(s, "accessModes", s.AccessModes.String())
		case r.CDIAccessModes == noAccessModes:
			modes = "NONE"
			notes = append(notes, r.Class+": access modes: "+noAccessModes)
		}
		problems := "-"
		if len(r.Problems) > 0 {
			problems = fmt.Sprint(len(r.Problems))
		}
		for _, p := range r.Problems {
			notes = append(notes, r.Class+": "+p)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Class, r.Provisioner, r.Profile,
			settingCell(s, "cloneStrategy", s.CloneStrategy), settingCell(s, "snapshotClass", s.SnapshotClass),
			modes, settingCell(s, "filesystemOverhead", s.FilesystemOverhead), problems)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\n*: set by the class's annotation (else by its profile); -: unset, CDI decides; PROBLEMS: invalid annotations")
	fmt.Fprintln(w, "cdi: CDI finds the access modes itself; NONE: nothing gives the class access modes")
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
	return nil
}

// settingCell is a setting's value, "-" when unset, with a trailing * when an annotation
// set it.
func settingCell(s providers.Settings, field, value string) string {
	if value == "" {
		return "-"
	}
	if from := s.From[field]; from != "" && !strings.HasPrefix(from, "profile ") {
		return value + "*"
	}
	return value
}
