// Package providers holds the provider profiles of SPEC §3: what the webhook knows about
// each kind of storage, and which profile a StorageClass gets.
package providers

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/rollout"
)

// Profile is one row of the provider table.
type Profile struct {
	Name        string `json:"name"`
	Provisioner string `json:"provisioner"`
	// Parameters must all be present with equal values in the class's parameters; an empty
	// value matches a parameter that is absent.
	Parameters    map[string]string `json:"parameters,omitempty"`
	Backend       string            `json:"backend"`
	CloneStrategy string            `json:"cloneStrategy,omitempty"`
	SnapshotClass string            `json:"snapshotClass,omitempty"`
	// AccessModes are the claim property sets CDI needs for a provisioner whose capabilities
	// it does not know (the default of storageProfileVolumeModeAccessModes).
	AccessModes       AccessModes       `json:"accessModes,omitempty"`
	DefaultParameters map[string]string `json:"defaultParameters,omitempty"`
	VolumeSnapshots   bool              `json:"volumeSnapshots"`
	VMSnapshots       bool              `json:"vmSnapshots"`
	VMBackups         bool              `json:"vmBackups"`
	ExportTarget      bool              `json:"exportTarget"`
	// FromRelease says which of the three abilities above are the Harvester release's in
	// force (Facts), not a value a providers file's row states: all of a built-in row's, and
	// those a file's row leaves unset. Denials say where the value came from.
	FromRelease AbilitiesSet `json:"-"`
}

// AbilitiesSet marks each of a profile's volume snapshot, VM snapshot and VM backup abilities.
type AbilitiesSet struct{ VolumeSnapshots, VMSnapshots, VMBackups bool }

// Row is one row of a providers file: a Profile whose volume snapshot, VM snapshot and VM
// backup abilities may be left unset, to follow the Harvester release in force. An unset one
// is the value of the built-in row that a class of the row's provisioner and parameters gets
// on that release (SPEC §3.1: a row that sets one keeps it on every release).
type Row struct {
	Profile
	VolumeSnapshots *bool `json:"volumeSnapshots,omitempty"`
	VMSnapshots     *bool `json:"vmSnapshots,omitempty"`
	VMBackups       *bool `json:"vmBackups,omitempty"`
}

// on is the row's profile on a release whose built-in table is builtins.
func (r *Row) on(builtins Table) Profile {
	p := r.Profile
	like, _ := builtins.Match(&storagev1.StorageClass{Provisioner: r.Provisioner, Parameters: r.Parameters})
	p.VolumeSnapshots, p.FromRelease.VolumeSnapshots = stated(r.VolumeSnapshots, like.VolumeSnapshots)
	p.VMSnapshots, p.FromRelease.VMSnapshots = stated(r.VMSnapshots, like.VMSnapshots)
	p.VMBackups, p.FromRelease.VMBackups = stated(r.VMBackups, like.VMBackups)
	return p
}

// stated is a row's value, or the release's when the row leaves it unset.
func stated(v *bool, release bool) (value, fromRelease bool) {
	if v == nil {
		return release, true
	}
	return *v, false
}

// AnyProvisioner is the provisioner of a profile that matches every class.
const AnyProvisioner = "*"

// CloneStrategies are CDI's clone strategies.
var CloneStrategies = []string{"copy", "snapshot", "csi-clone"}

// Table is an ordered list of profiles; the first match wins.
type Table []Profile

// Builtins is the built-in table of SPEC §3 on a Harvester release: the longhorn-v2 row's
// snapshot and backup abilities and clone strategy, and the lvm and other rows' VM snapshot
// and backup abilities, are the release's (Facts). The last row matches any provisioner.
func Builtins(b Behaviour) Table {
	lh2, tp := b.LonghornV2, b.ThirdParty
	t := Table{
		{Name: "longhorn-v1", Provisioner: LonghornProvisioner, Parameters: map[string]string{"dataEngine": ""},
			Backend: harvester.BackendBackingImage, VolumeSnapshots: true, VMSnapshots: true, VMBackups: true},
		{Name: "longhorn-v1", Provisioner: LonghornProvisioner, Parameters: map[string]string{"dataEngine": "v1"},
			Backend: harvester.BackendBackingImage, VolumeSnapshots: true, VMSnapshots: true, VMBackups: true},
		{Name: "longhorn-v2", Provisioner: LonghornProvisioner, Parameters: map[string]string{"dataEngine": "v2"},
			Backend: harvester.BackendCDI, CloneStrategy: lh2.CloneStrategy, SnapshotClass: "longhorn-snapshot",
			DefaultParameters: map[string]string{"migratable": "true"}, ExportTarget: true,
			VolumeSnapshots: lh2.VolumeSnapshots, VMSnapshots: lh2.VMSnapshots, VMBackups: lh2.VMBackups},
		{Name: "lvm", Provisioner: "lvm.driver.harvesterhci.io",
			Backend: harvester.BackendCDI, CloneStrategy: "snapshot", SnapshotClass: "lvm-snapshot",
			AccessModes:     AccessModes{corev1.PersistentVolumeBlock: {corev1.ReadWriteOnce}},
			VolumeSnapshots: true, VMSnapshots: tp.VMSnapshots, VMBackups: tp.VMBackups, ExportTarget: true},
		{Name: "other", Provisioner: AnyProvisioner,
			Backend: harvester.BackendCDI, VolumeSnapshots: true, VMSnapshots: tp.VMSnapshots, VMBackups: tp.VMBackups, ExportTarget: true},
	}
	for i := range t {
		t[i].FromRelease = AbilitiesSet{true, true, true}
	}
	return t
}

// Match returns the profile of a class: the first whose provisioner and parameters match.
// The second result is false only when no row matches (a file table without builtins and
// without a catch-all row).
func (t Table) Match(sc *storagev1.StorageClass) (Profile, bool) {
	for _, p := range t {
		if p.matches(sc) {
			return p, true
		}
	}
	return Profile{}, false
}

func (p *Profile) matches(sc *storagev1.StorageClass) bool {
	if p.Provisioner != AnyProvisioner && p.Provisioner != sc.Provisioner {
		return false
	}
	for k, want := range p.Parameters {
		if sc.Parameters[k] != want { // a missing key reads as "", which is how "absent" matches
			return false
		}
	}
	return true
}

// File is the shape of a --providers file.
type File struct {
	Providers []Row `json:"providers"`
	// Builtins appends the built-in table after the file's rows; absent means true.
	Builtins *bool `json:"builtins,omitempty"`
	// HarvesterVersion pins the Harvester release the rules follow (SPEC §3.1), instead of
	// the cluster's server-version Setting; --harvester-version wins over it.
	HarvesterVersion string `json:"harvesterVersion,omitempty"`
	// Config is the rollout of SPEC §8: rules (actions and overrides) and exceptions.
	rollout.Config `json:",inline"`
	// policy is Config compiled against the rules that exist.
	policy *rollout.Policy
}

// Policy is the file's rollout; nil (every rule enforced, no exception) for a nil file.
func (f *File) Policy() *rollout.Policy {
	if f == nil {
		return nil
	}
	return f.policy
}

// Table is the file's table on a Harvester release: its rows, then the built-in rows of
// that release unless it sets builtins: false. A nil file is the built-in table.
func (f *File) Table(b Behaviour) Table {
	builtins := Builtins(b)
	if f == nil {
		return builtins
	}
	t := make(Table, 0, len(f.Providers)+len(builtins))
	for i := range f.Providers {
		t = append(t, f.Providers[i].on(builtins))
	}
	if f.Builtins == nil || *f.Builtins {
		t = append(t, builtins...)
	}
	return t
}

// Parse reads and validates a providers file; its rules and exceptions are checked against
// the rules of cat. Unknown, duplicate and wrongly-cased fields are errors, so that a typo
// (say `clonestrategy`) does not silently fall back to a default.
func Parse(data []byte, cat rollout.Catalogue) (*File, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("providers file is empty")
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("providers file does not parse: %w", err)
	}
	var f File
	strictErrs, err := json.UnmarshalStrict(js, &f)
	if err == nil && len(strictErrs) > 0 {
		err = errors.Join(strictErrs...)
	}
	if err != nil {
		return nil, fmt.Errorf("providers file does not parse: %w", err)
	}
	for i, p := range f.Providers {
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("providers[%d] (%q): %w", i, p.Name, err)
		}
	}
	if f.Builtins != nil && !*f.Builtins && len(f.Providers) == 0 {
		return nil, fmt.Errorf("providers file sets builtins: false and lists no providers")
	}
	if f.HarvesterVersion != "" {
		if err := ValidPin(f.HarvesterVersion); err != nil {
			return nil, fmt.Errorf("harvesterVersion: %w", err)
		}
	}
	if f.policy, err = rollout.Compile(f.Config, cat); err != nil {
		return nil, err
	}
	return &f, nil
}

func (p *Profile) validate() error {
	switch {
	case p.Name == "":
		return fmt.Errorf("name is required")
	case p.Provisioner == "":
		return fmt.Errorf("provisioner is required (%q matches any)", AnyProvisioner)
	case p.Backend != harvester.BackendCDI && p.Backend != harvester.BackendBackingImage:
		return fmt.Errorf("backend %q must be %q or %q", p.Backend, harvester.BackendCDI, harvester.BackendBackingImage)
	case p.CloneStrategy != "" && !slices.Contains(CloneStrategies, p.CloneStrategy):
		return fmt.Errorf("cloneStrategy %q must be one of %v", p.CloneStrategy, CloneStrategies)
	case p.AccessModes != nil:
		if err := p.AccessModes.validate(); err != nil {
			return fmt.Errorf("accessModes: %w", err)
		}
	}
	return nil
}
