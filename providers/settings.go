package providers

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	sigsjson "sigs.k8s.io/json"

	"github.com/hcistorage/storage-webhook/harvester"
)

// Settings are the CDI settings of one StorageClass that the rules use (SPEC §3, effective
// settings): the class's per-class annotations where present, else its profile's values.
// An empty field means CDI decides.
type Settings struct {
	CloneStrategy      string      `json:"cloneStrategy,omitempty"`
	SnapshotClass      string      `json:"snapshotClass,omitempty"`
	AccessModes        AccessModes `json:"accessModes,omitempty"`
	FilesystemOverhead string      `json:"filesystemOverhead,omitempty"`
	// From says where each set field came from, by its JSON name: an annotation key, or
	// "profile <name>".
	From map[string]string `json:"from,omitempty"`
}

// Effective returns the effective settings of a class whose profile is p. Precedence, as CDI
// itself resolves a clone strategy: Harvester's annotation (its controller copies it into
// the StorageProfile's spec, which CDI prefers), then CDI's own class annotation
// cdi.kubevirt.io/clone-strategy, then the profile. An annotation whose value is invalid is
// skipped, so the next source applies, and is reported in the errors; so are Harvester's
// annotations on a Longhorn v1 class, which Harvester's controller ignores (SC-V3 refuses
// both, so only a class stored before this webhook can have them).
func Effective(sc *storagev1.StorageClass, p Profile) (Settings, []error) {
	s := Settings{From: map[string]string{}}
	var errs []error
	profile := "profile " + p.Name
	set := func(field, value, from string) string {
		if value != "" {
			s.From[field] = from
		}
		return value
	}
	ann := sc.Annotations
	if !AcceptsClassSettings(sc) {
		for _, k := range harvester.ClassSettingKeys {
			if _, ok := ann[k]; ok {
				errs = append(errs, fmt.Errorf("annotation %s is ignored: %s", k, longhornV1Reason))
			}
		}
		ann = nil
	}
	// Clone strategy: Harvester's annotation, then CDI's, which applies to every class.
	for _, c := range []struct {
		key string
		ann map[string]string
	}{{harvester.AnnClassCloneStrategy, ann}, {harvester.AnnCDIClassCloneStrategy, sc.Annotations}} {
		v, ok := c.ann[c.key]
		if !ok || s.CloneStrategy != "" {
			continue
		}
		if err := ValidCloneStrategy(v); err != nil {
			errs = append(errs, fmt.Errorf("annotation %s: %w", c.key, err))
			continue
		}
		s.CloneStrategy = set("cloneStrategy", v, c.key)
	}
	if s.CloneStrategy == "" {
		s.CloneStrategy = set("cloneStrategy", p.CloneStrategy, profile)
	}
	// Snapshot class: whether it exists is SC-V3's to check against the cluster view.
	if v, ok := ann[harvester.AnnClassSnapshotClass]; ok && v != "" {
		s.SnapshotClass = set("snapshotClass", v, harvester.AnnClassSnapshotClass)
	} else {
		if ok {
			errs = append(errs, fmt.Errorf("annotation %s is empty", harvester.AnnClassSnapshotClass))
		}
		s.SnapshotClass = set("snapshotClass", p.SnapshotClass, profile)
	}
	// Access modes.
	if v, ok := ann[harvester.AnnClassAccessModes]; ok {
		if m, err := ParseAccessModes(v); err != nil {
			errs = append(errs, fmt.Errorf("annotation %s: %w", harvester.AnnClassAccessModes, err))
		} else {
			s.AccessModes = m
			s.From["accessModes"] = harvester.AnnClassAccessModes
		}
	}
	if s.AccessModes == nil && len(p.AccessModes) > 0 {
		s.AccessModes = p.AccessModes
		s.From["accessModes"] = profile
	}
	// Filesystem overhead: no profile value; absent means CDI's global setting.
	if v, ok := ann[harvester.AnnClassFilesystemOverhead]; ok {
		if err := ValidFilesystemOverhead(v); err != nil {
			errs = append(errs, fmt.Errorf("annotation %s: %w", harvester.AnnClassFilesystemOverhead, err))
		} else {
			s.FilesystemOverhead = set("filesystemOverhead", v, harvester.AnnClassFilesystemOverhead)
		}
	}
	return s, errs
}

const longhornV1Reason = "Longhorn v1 classes (dataEngine: v1) keep images as backing images, and Harvester's storage class controller skips them"

// AcceptsClassSettings reports whether Harvester's per-class CDI settings apply to a class:
// all but Longhorn classes that say dataEngine: v1, which Harvester's controller skips. A
// Longhorn class without dataEngine (Harvester's own harvester-longhorn, longhorn-static)
// does take them, as Harvester's controller processes it.
func AcceptsClassSettings(sc *storagev1.StorageClass) bool {
	return !(sc.Provisioner == LonghornProvisioner && sc.Parameters["dataEngine"] == "v1")
}

// LonghornProvisioner is Longhorn's CSI driver.
const LonghornProvisioner = "driver.longhorn.io"

// ValidCloneStrategy checks a clone strategy against CDI's.
func ValidCloneStrategy(v string) error {
	if slices.Contains(CloneStrategies, v) {
		return nil
	}
	return fmt.Errorf("%q is not a CDI clone strategy: use one of %s", v, strings.Join(CloneStrategies, ", "))
}

// filesystemOverhead is CDI's Percent pattern, which Harvester's webhook also applies.
var filesystemOverhead = regexp.MustCompile(`^(0(?:\.\d{1,3})?|1)$`)

// ValidFilesystemOverhead checks a filesystem overhead: a decimal in [0, 1] with at most
// three decimals, written as CDI's Percent type requires.
func ValidFilesystemOverhead(v string) error {
	if filesystemOverhead.MatchString(v) {
		return nil
	}
	return fmt.Errorf("%q is not a fraction CDI accepts: write a decimal from 0 to 1 with at most 3 decimals, such as 0, 0.055 or 1", v)
}

// AccessModes is the value of storageProfileVolumeModeAccessModes, and a profile's
// accessModes: for each volume mode, the access modes CDI may give a claim of that mode.
type AccessModes map[corev1.PersistentVolumeMode][]corev1.PersistentVolumeAccessMode

var (
	volumeModes = []corev1.PersistentVolumeMode{corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem}
	accessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod}
)

// ParseAccessModes parses the annotation's JSON object, such as {"Block":["ReadWriteOnce"]}.
// Unlike Harvester's parser it also refuses what would leave CDI with nothing to use: an
// empty object, a volume mode with no access modes, and duplicate keys.
func ParseAccessModes(v string) (AccessModes, error) {
	var m AccessModes
	strict, err := sigsjson.UnmarshalStrict([]byte(v), &m)
	if err == nil && len(strict) > 0 {
		err = errors.Join(strict...)
	}
	if err != nil {
		return nil, fmt.Errorf("%q is not a JSON object of volume modes to access mode lists, such as {\"Block\":[\"ReadWriteOnce\"]}: %v", v, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%q: %w", v, err)
	}
	return m, nil
}

func (a AccessModes) validate() error {
	if len(a) == 0 {
		return fmt.Errorf("names no volume mode: give at least one, such as {\"Block\":[\"ReadWriteOnce\"]}")
	}
	for _, mode := range slices.Sorted(maps.Keys(a)) {
		if !slices.Contains(volumeModes, mode) {
			return fmt.Errorf("volume mode %q must be one of %s", mode, join(volumeModes))
		}
		if len(a[mode]) == 0 {
			return fmt.Errorf("volume mode %s lists no access modes", mode)
		}
		for _, am := range a[mode] {
			if !slices.Contains(accessModes, am) {
				return fmt.Errorf("access mode %q of volume mode %s must be one of %s", am, mode, join(accessModes))
			}
		}
	}
	return nil
}

func join[T ~string](items []T) string {
	s := make([]string, len(items))
	for i, it := range items {
		s[i] = string(it)
	}
	return strings.Join(s, ", ")
}

// ClaimPropertySets returns CDI's form of the access modes in the order Harvester's
// storage class controller brings them to before it compares (sets by volume mode, access
// modes sorted), so that the controller finds nothing to change in what SP-M1 wrote.
func (a AccessModes) ClaimPropertySets() []cdiv1.ClaimPropertySet {
	out := make([]cdiv1.ClaimPropertySet, 0, len(a))
	for _, mode := range slices.Sorted(maps.Keys(a)) {
		ams := slices.Clone(a[mode])
		slices.Sort(ams)
		out = append(out, cdiv1.ClaimPropertySet{VolumeMode: &mode, AccessModes: ams})
	}
	return out
}

// String is the annotation value: JSON with sorted keys.
func (a AccessModes) String() string {
	b, _ := json.Marshal(a) // a map of strings to string lists always marshals
	return string(b)
}
