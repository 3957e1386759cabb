package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
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
	// Abilities are what the class's profile allows on the Harvester release in force (a
	// built-in row's values are the release's, Facts; a providers file's row keeps its own).
	Abilities Abilities `json:"abilities"`
}

// Abilities are a profile's volume snapshot, VM snapshot and VM backup abilities.
type Abilities struct {
	VolumeSnapshots bool `json:"volumeSnapshots"`
	VMSnapshots     bool `json:"vmSnapshots"`
	VMBackups       bool `json:"vmBackups"`
}

// ProfilesOutput is `profiles -o json`: the Harvester the rules follow, and every class.
type ProfilesOutput struct {
	Harvester HarvesterReport `json:"harvester"`
	Classes   []ProfileReport `json:"classes"`
}

// HarvesterReport is the Harvester in force (SPEC §3.1): its release, where that came from,
// what was assumed, the Settings VMB-V1 reads, and the value of every fact of the table of
// what changes by release.
type HarvesterReport struct {
	Release string `json:"release"`
	Version string `json:"version"`
	// Source is flag, providers-file, setting or none; From says it for people.
	Source          string                    `json:"source"`
	From            string                    `json:"from"`
	Notes           []string                  `json:"notes"`
	CSIDriverConfig harvester.CSIDriverConfig `json:"csiDriverConfig"`
	BackupTarget    bool                      `json:"backupTarget"`
	Facts           []FactReport              `json:"facts"`
}

// FactReport is one fact of the table and its value on the release in force.
type FactReport struct {
	Fact   string `json:"fact"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func harvesterReport(h *providers.Harvester) HarvesterReport {
	r := HarvesterReport{Release: h.Release.String(), Version: h.Version, Source: h.Source, From: h.From,
		Notes: harvesterNotes(h), CSIDriverConfig: h.CSIDrivers, BackupTarget: h.BackupTarget, Facts: []FactReport{}}
	if r.Notes == nil {
		r.Notes = []string{}
	}
	for _, f := range providers.Facts {
		v, src := f.At(h.Release)
		r.Facts = append(r.Facts, FactReport{Fact: f.Name(), Value: v, Source: src})
	}
	return r
}

// noAccessModes is ProfileReport.CDIAccessModes when nothing gives a class access modes.
const noAccessModes = "none: CDI cannot size or bind spec.storage DataVolumes"

// Profiles lists every StorageClass of the --cluster files or of a live cluster (read-only:
// one list, and a get of each Setting the rules read), with its provider profile, per-class
// CDI annotations, effective settings and abilities, after the Harvester release in force.
// A class's invalid annotations are reported, not an error; an error is an input or usage
// error.
func Profiles(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("profiles", "profiles [--cluster PATH]... | [--kubeconfig FILE] [--providers FILE] [--harvester-version V] [-o table|json]", stderr)
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
	file, err := readProviders(src.providers)
	if err != nil {
		return err
	}
	var view *cluster.Files
	if src.kubeconfig != "" {
		view, err = liveProfilesView(src.kubeconfig)
	} else if view, err = cluster.LoadFiles(src.clusterPaths...); err != nil {
		err = usageError{err}
	}
	if err != nil {
		return err
	}
	store := configStore(file, view, src.harvesterVersion, stderr)
	table := store.Table()
	var classes []*storagev1.StorageClass
	for _, o := range view.List("storageclasses") {
		classes = append(classes, o.(*storagev1.StorageClass))
	}
	slices.SortFunc(classes, func(a, b *storagev1.StorageClass) int { return strings.Compare(a.Name, b.Name) })
	out := ProfilesOutput{Harvester: harvesterReport(store.Harvester()), Classes: make([]ProfileReport, 0, len(classes))}
	for _, sc := range classes {
		out.Classes = append(out.Classes, profileReport(table, sc))
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return printProfiles(stdout, &out)
}

// liveProfilesView reads what `profiles` needs of a live cluster, read-only: one list of
// the StorageClasses and a get of each Setting the rules read (none when the cluster has no
// Harvester), as a file view.
func liveProfilesView(kubeconfig string) (*cluster.Files, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, usageError{fmt.Errorf("kubeconfig: %w", err)}
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, usageError{fmt.Errorf("kubeconfig: %w", err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), liveSyncTimeout)
	defer cancel()
	list, err := dyn.Resource(storagev1.SchemeGroupVersion.WithResource("storageclasses")).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list StorageClasses: %w", err)
	}
	objs := make([]*unstructured.Unstructured, 0, len(list.Items)+len(harvester.SettingNames))
	for i := range list.Items {
		list.Items[i].SetAPIVersion(storagev1.SchemeGroupVersion.String()) // list items carry no type
		list.Items[i].SetKind("StorageClass")
		objs = append(objs, &list.Items[i])
	}
	for _, name := range harvester.SettingNames {
		s, err := dyn.Resource(harvester.SettingGVR).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue // no such Setting, or no Setting CRD: a cluster without Harvester
		case err != nil:
			return nil, fmt.Errorf("get Setting %s: %w", name, err)
		}
		objs = append(objs, s)
	}
	return cluster.NewFiles(objs)
}

func profileReport(table providers.Table, sc *storagev1.StorageClass) ProfileReport {
	r := ProfileReport{Class: sc.Name, Provisioner: sc.Provisioner, Profile: "none",
		Annotations: map[string]string{}, Problems: []string{}}
	p, ok := table.Match(sc)
	if ok {
		r.Profile = p.Name
		r.Abilities = Abilities{VolumeSnapshots: p.VolumeSnapshots, VMSnapshots: p.VMSnapshots, VMBackups: p.VMBackups}
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

// printProfiles prints the Harvester in force, one aligned row per class, then the legend
// and, by class, the problems the PROBLEMS column counts and the classes without access
// modes.
func printProfiles(w io.Writer, out *ProfilesOutput) error {
	h := out.Harvester
	from := h.From
	if h.Version != "" {
		from = h.Version + ", " + from
	}
	fmt.Fprintf(w, "Harvester %s (%s)\n", h.Release, from)
	for _, n := range h.Notes {
		fmt.Fprintln(w, "  warning: "+n)
	}
	drivers := make([]string, 0, len(h.CSIDriverConfig))
	for _, d := range slices.Sorted(maps.Keys(h.CSIDriverConfig)) {
		c := h.CSIDriverConfig[d]
		drivers = append(drivers, fmt.Sprintf("%s (snapshot: %s, backup: %s)", d, orDash(c.VolumeSnapshotClassName), orDash(c.BackupVolumeSnapshotClassName)))
	}
	target := "none"
	if h.BackupTarget {
		target = "set"
	}
	fmt.Fprintf(w, "  csi-driver-config: %s\n  backup-target: %s\n\n", strings.Join(drivers, ", "), target)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tPROVISIONER\tPROFILE\tCLONE\tSNAPSHOT-CLASS\tACCESS-MODES\tFS-OVERHEAD\tVOL-SNAP\tVM-SNAP\tVM-BACKUP\tPROBLEMS")
	var notes []string
	for _, r := range out.Classes {
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
		a := r.Abilities
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Class, r.Provisioner, r.Profile,
			settingCell(s, "cloneStrategy", s.CloneStrategy), settingCell(s, "snapshotClass", s.SnapshotClass),
			modes, settingCell(s, "filesystemOverhead", s.FilesystemOverhead), yesNo(a.VolumeSnapshots), yesNo(a.VMSnapshots), yesNo(a.VMBackups), problems)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\n*: set by the class's annotation (else by its profile); -: unset, CDI decides; PROBLEMS: invalid annotations")
	fmt.Fprintln(w, "cdi: CDI finds the access modes itself; NONE: nothing gives the class access modes")
	fmt.Fprintln(w, "VOL-SNAP, VM-SNAP, VM-BACKUP: what the profile allows on this release; a VM snapshot or backup also needs the provisioner in csi-driver-config, a backup a backup target")
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
