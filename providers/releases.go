package providers

import (
	"fmt"
	"regexp"
	"strconv"
)

// Release is a Harvester minor release line, such as v1.8: Harvester changes its storage
// behaviour between minor releases, never within one.
type Release struct{ Major, Minor int }

func (r Release) String() string { return fmt.Sprintf("v%d.%d", r.Major, r.Minor) }

// Less reports whether r is older than o.
func (r Release) Less(o Release) bool {
	return r.Major < o.Major || r.Major == o.Major && r.Minor < o.Minor
}

// The release lines the table knows, oldest first.
var (
	V1_5 = Release{1, 5}
	V1_6 = Release{1, 6}
	V1_7 = Release{1, 7}
	V1_8 = Release{1, 8}
	V1_9 = Release{1, 9}

	Releases = []Release{V1_5, V1_6, V1_7, V1_8, V1_9}
)

// Newest is the newest release line the table knows: what a cluster without Harvester, and
// a version that does not parse, get.
func Newest() Release { return Releases[len(Releases)-1] }

var versionPattern = regexp.MustCompile(`^v?(\d+)\.(\d+)(\.\d+)?([-+].*)?$`)

// ParseRelease reads a Harvester version as its server-version Setting holds it (v1.8.2,
// v1.9.0-rc6) or as an administrator pins it (v1.8): the release line whose behaviour it
// has. A version newer than the newest line known counts as the newest, one older than the
// oldest as the oldest; one that does not parse (dev, master-head) as the newest. note is
// "" when the version maps exactly onto a known line, else says what was assumed and why:
// the caller logs it as a warning.
func ParseRelease(version string) (r Release, note string) {
	m := versionPattern.FindStringSubmatch(version)
	if m == nil {
		return Newest(), fmt.Sprintf("Harvester version %q is not a release version (vMAJOR.MINOR[.PATCH]): the newest release known, %s, is assumed", version, Newest())
	}
	major, _ := strconv.Atoi(m[1]) // \d+ of a sane length always converts; a huge one reads as 0 and is handled below
	minor, _ := strconv.Atoi(m[2])
	r = Release{major, minor}
	switch {
	case Newest().Less(r):
		return Newest(), fmt.Sprintf("Harvester %s is newer than the newest release this service knows, %s: %s's behaviour is assumed", version, Newest(), Newest())
	case r.Less(Releases[0]):
		return Releases[0], fmt.Sprintf("Harvester %s is older than the oldest release this service knows, %s: %s's behaviour is assumed", version, Releases[0], Releases[0])
	}
	return r, ""
}

// Abilities are what a storage engine can do on one release: the values the built-in
// profiles take from the table.
type Abilities struct {
	VolumeSnapshots, VMSnapshots, VMBackups bool
	CloneStrategy                           string
}

// Behaviour is what Harvester does on one release line: every fact of Facts at that line.
// Rules read it (through the built-in profiles and Harvester), never a version.
type Behaviour struct {
	Release Release
	// LonghornV2 are the built-in longhorn-v2 profile's abilities and clone strategy.
	LonghornV2 Abilities
	// ThirdParty are the VM snapshot and VM backup abilities of the built-in lvm and other
	// profiles (their volume snapshots and clone strategies do not change by release).
	ThirdParty Abilities
	// ShareableDisks: VM-V3, and VS-V1 and VMB-V1 refuse volumes and VMs with shareable disks.
	ShareableDisks bool
	// DisplayNameLabelValue: IMG-V7, an image's displayName must be a label value.
	DisplayNameLabelValue bool
}

// Fact is one row of the table of what changes by release (SPEC §3.1): a behaviour, its
// value from each release on, and the Harvester source that shows each value.
type Fact interface {
	// Name says what the fact is, with the rules that read it.
	Name() string
	// At is the fact's value on a release line, as text, and the source of that value.
	At(r Release) (value, source string)
	apply(b *Behaviour)
}

// Since is a fact's value from release From on, until the next change.
type Since[T any] struct {
	From   Release
	Value  T
	Source string // the Harvester commit, tag or file that shows it (github.com/harvester/harvester)
}

type fact[T any] struct {
	name  string
	field func(*Behaviour) *T
	since []Since[T] // oldest first; the first is from the oldest release known
}

func (f fact[T]) Name() string { return f.name }

func (f fact[T]) at(r Release) Since[T] {
	cur := f.since[0]
	for _, s := range f.since[1:] {
		if !r.Less(s.From) {
			cur = s
		}
	}
	return cur
}

func (f fact[T]) At(r Release) (string, string) {
	s := f.at(r)
	return fmt.Sprint(s.Value), s.Source
}

func (f fact[T]) apply(b *Behaviour) { *f.field(b) = f.at(b.Release).Value }

func row[T any](name string, field func(*Behaviour) *T, since ...Since[T]) Fact {
	return fact[T]{name: name, field: field, since: since}
}

// Facts is the table of what Harvester changed between releases, each value with the
// upstream source it was checked against at the tag (v1.5.2, v1.6.1, v1.7.3, v1.8.2,
// v1.9.0-rc6; commits on github.com/harvester/harvester, the v1.9 cherry-pick beside the
// master commit). Every release-dependent behaviour of the rules comes from here.
var Facts = []Fact{
	row("Longhorn v2 volume snapshots (VS-V1, built-in profile longhorn-v2)",
		func(b *Behaviour) *bool { return &b.LonghornV2.VolumeSnapshots },
		Since[bool]{V1_5, false, "the article Harvester v1.5 documents: Longhorn v2 volumes cannot be snapshotted, and Harvester's UI hides the action"},
		Since[bool]{V1_7, true, "5940cb6c (v1.7.0, \"allow LHv2 backup and snapshot\"): Longhorn v2 takes snapshots like v1"}),
	row("VM snapshots of VMs with a Longhorn v2 volume (VMB-V1, built-in profile longhorn-v2)",
		func(b *Behaviour) *bool { return &b.LonghornV2.VMSnapshots },
		Since[bool]{V1_5, false, "pkg/webhook/util/snapshot.go genAbilityMatrix at v1.5.2 and v1.6.1: v2 is {false, false}"},
		Since[bool]{V1_7, true, "5940cb6c (v1.7.0): genAbilityMatrix has v2 {true, true} (v1.7.3, v1.8.2)"},
		Since[bool]{V1_9, false, "a857860e (v1.9: 6446d501): \"vm %s/%s contains Longhorn v2 volume %s from PVC %s/%s, which does not support VM backup\", for every backup type"}),
	row("VM backups of VMs with a Longhorn v2 volume (VMB-V1, built-in profile longhorn-v2)",
		func(b *Behaviour) *bool { return &b.LonghornV2.VMBackups },
		Since[bool]{V1_5, false, "pkg/webhook/util/snapshot.go genAbilityMatrix at v1.5.2 and v1.6.1: v2 is {false, false}"},
		Since[bool]{V1_7, true, "5940cb6c (v1.7.0): genAbilityMatrix has v2 {true, true} (v1.7.3, v1.8.2)"},
		Since[bool]{V1_9, false, "a857860e (v1.9: 6446d501): Harvester's VM backup webhook refuses Longhorn v2 volumes"}),
	row("VM snapshots of third-party volumes (VMB-V1, built-in profiles lvm and other)",
		func(b *Behaviour) *bool { return &b.ThirdParty.VMSnapshots },
		Since[bool]{V1_5, true, "pkg/webhook/util/snapshot.go defaultAbility {snapshot: true, backup: false} (v1.5.2 to v1.8.2)"},
		Since[bool]{V1_9, true, "50ba20f1 (v1.9): the ability matrix is removed; csi-driver-config alone decides"}),
	row("VM backups of third-party volumes (VMB-V1, built-in profiles lvm and other)",
		func(b *Behaviour) *bool { return &b.ThirdParty.VMBackups },
		Since[bool]{V1_5, false, "pkg/webhook/util/snapshot.go defaultAbility {snapshot: true, backup: false} (v1.5.2 to v1.8.2)"},
		Since[bool]{V1_9, true, "50ba20f1 (v1.9): the ability matrix is removed; csi-driver-config alone decides"}),
	row("clone strategy of a new Longhorn v2 class (SC-M1; SP-M1 and DV-M1 where the class names none)",
		func(b *Behaviour) *string { return &b.LonghornV2.CloneStrategy },
		Since[string]{V1_5, "copy", "SPEC §3 built-in table (v1.5 has no storage class mutator); v1.6.1 to v1.8.2 pkg/webhook/resources/storageclass/mutator.go writes copy (CloneStrategyHostAssisted)"},
		Since[string]{V1_9, "csi-clone", "53d246c7 (v1.9: cc2c5eec): the storage class mutator writes csi-clone"}),
	row("shareable disks (VM-V3, and VS-V1 and VMB-V1 on VMs with one)",
		func(b *Behaviour) *bool { return &b.ShareableDisks },
		Since[bool]{V1_5, false, "no shareable-disk checks before v1.9"},
		Since[bool]{V1_9, true, "ba08b5d8 (v1.9: 9169e7d1): pkg/util/virtualmachine CheckShareableVolume; VM, VM backup and volume snapshot webhooks"}),
	row("image displayName must be a label value (IMG-V7)",
		func(b *Behaviour) *bool { return &b.DisplayNameLabelValue },
		Since[bool]{V1_5, false, "no such check before v1.9"},
		Since[bool]{V1_9, true, "89116a65 (v1.9): pkg/image/common/validator.go CheckDisplayName"}),
}

// BehaviourOf is the behaviour of a release line: every fact's value there.
func BehaviourOf(r Release) Behaviour {
	b := Behaviour{Release: r}
	for _, f := range Facts {
		f.apply(&b)
	}
	return b
}

// ValidPin checks a pinned version (--harvester-version, harvesterVersion in the providers
// file). Unlike the server-version Setting, which Harvester writes, a pin is an
// administrator's: a typo is an error rather than silently the newest release.
func ValidPin(v string) error {
	if !versionPattern.MatchString(v) {
		return fmt.Errorf("%q is not a Harvester version such as v1.8 or v1.8.2", v)
	}
	return nil
}
