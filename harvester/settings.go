package harvester

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SettingGVR is Harvester's cluster-scoped Setting resource.
var SettingGVR = schema.GroupVersionResource{Group: "harvesterhci.io", Version: "v1beta1", Resource: "settings"}

// The Settings the rules read (SPEC §3.1), by name. The service watches these three and no
// other: its RBAC names them (resourceNames), and each has a watch of its own.
const (
	SettingServerVersion   = "server-version"
	SettingCSIDriverConfig = "csi-driver-config"
	SettingBackupTarget    = "backup-target"
)

// SettingNames are the Settings the service reads.
var SettingNames = []string{SettingServerVersion, SettingCSIDriverConfig, SettingBackupTarget}

// Setting is harvesterhci.io/v1beta1 Setting reduced to what the service keeps: its name,
// value and default. Harvester reads a setting as its value, else its default.
type Setting struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Value             string `json:"value,omitempty"`
	Default           string `json:"default,omitempty"`
}

// Get is the setting as Harvester reads it: the value, else the default.
func (s *Setting) Get() string {
	if s.Value != "" {
		return s.Value
	}
	return s.Default
}

// DeepCopyObject implements runtime.Object so Settings can live in client-go caches.
func (s *Setting) DeepCopyObject() runtime.Object {
	out := *s
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return &out
}

// SettingFromUnstructured keeps a Setting's name, resource version, value and default. The
// value of backup-target holds the target's credentials: only what says whether a target is
// set is kept (RedactBackupTarget), so no secret lives in the service's memory or can reach
// a log line or a message.
func SettingFromUnstructured(u *unstructured.Unstructured) *Setting {
	s := &Setting{
		TypeMeta:   metav1.TypeMeta{APIVersion: u.GetAPIVersion(), Kind: u.GetKind()},
		ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), UID: u.GetUID(), ResourceVersion: u.GetResourceVersion()},
	}
	s.Value, _, _ = unstructured.NestedString(u.Object, "value")
	s.Default, _, _ = unstructured.NestedString(u.Object, "default")
	if s.Name == SettingBackupTarget {
		s.Value, s.Default = RedactBackupTarget(s.Value), RedactBackupTarget(s.Default)
	}
	return s
}

// CSIDriverInfo is one provisioner's entry of csi-driver-config: the VolumeSnapshotClasses
// Harvester's VM snapshots (type snapshot) and VM backups (type backup) use.
type CSIDriverInfo struct {
	VolumeSnapshotClassName       string `json:"volumeSnapshotClassName"`
	BackupVolumeSnapshotClassName string `json:"backupVolumeSnapshotClassName"`
}

// DefaultCSIDriverConfig is Harvester's built-in default of csi-driver-config (the same from
// v1.5.2 to v1.9.0-rc6, pkg/settings/settings.go).
const DefaultCSIDriverConfig = `{"driver.longhorn.io":{"volumeSnapshotClassName":"longhorn-snapshot","backupVolumeSnapshotClassName":"longhorn"}}`

// CSIDriverConfig is csi-driver-config: provisioner → its snapshot classes.
type CSIDriverConfig map[string]CSIDriverInfo

// ParseCSIDriverConfig reads a csi-driver-config value: a JSON object of objects.
func ParseCSIDriverConfig(v string) (CSIDriverConfig, error) {
	var c CSIDriverConfig
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return nil, fmt.Errorf("is not a JSON object of provisioners to {volumeSnapshotClassName, backupVolumeSnapshotClassName}: %v", err)
	}
	if c == nil { // "null"
		return nil, fmt.Errorf("is not a JSON object of provisioners to {volumeSnapshotClassName, backupVolumeSnapshotClassName}: null")
	}
	return c, nil
}

// CSIDriverConfigOf is the csi-driver-config in force as Harvester's LoadCSIDriverConfig
// computes it (pkg/util/volume.go, v1.5.2 to v1.9.0-rc6): the default's entries, and the
// value's entries for provisioners the default does not name (the default's win). A
// Setting without a default has Harvester's built-in one. The error is the part that does
// not parse.
func CSIDriverConfigOf(s *Setting) (CSIDriverConfig, error) {
	def := s.Default
	if def == "" {
		def = DefaultCSIDriverConfig
	}
	out, err := ParseCSIDriverConfig(def)
	if err != nil {
		return nil, fmt.Errorf("its default %w", err)
	}
	if s.Value == "" {
		return out, nil
	}
	value, err := ParseCSIDriverConfig(s.Value)
	if err != nil {
		return nil, fmt.Errorf("its value %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(value)) {
		if _, ok := out[k]; !ok {
			out[k] = value[k]
		}
	}
	return out, nil
}

// backupTarget is Harvester's BackupTarget (pkg/settings/settings_helper.go), the value of
// backup-target. Harvester counts a target as not set when every field is empty
// (IsDefaultBackupTarget).
type backupTarget struct {
	Type                     string `json:"type"`
	Endpoint                 string `json:"endpoint"`
	AccessKeyID              string `json:"accessKeyId"`
	SecretAccessKey          string `json:"secretAccessKey"`
	BucketName               string `json:"bucketName"`
	BucketRegion             string `json:"bucketRegion"`
	Cert                     string `json:"cert"`
	VirtualHostedStyle       bool   `json:"virtualHostedStyle"`
	RefreshIntervalInSeconds int64  `json:"refreshIntervalInSeconds"`
}

// BackupTargetSet reads a backup-target value: whether a target is set. An empty value is
// no target; a value that is not a BackupTarget JSON object is an error (Harvester's VM
// backup webhook refuses backups then).
func BackupTargetSet(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	var t backupTarget
	if err := json.Unmarshal([]byte(v), &t); err != nil {
		return false, fmt.Errorf("is not a backup target JSON object: %v", err)
	}
	return t != backupTarget{}, nil
}

// unparsableBackupTarget replaces a backup-target value that does not parse: it does not
// parse either, and holds nothing of the original.
const unparsableBackupTarget = "(a value that is not JSON)"

// RedactBackupTarget keeps of a backup-target value only its type and endpoint, and marks
// each credential that was set as "redacted": whether a target is set reads the same.
func RedactBackupTarget(v string) string {
	if v == "" {
		return ""
	}
	var t backupTarget
	if json.Unmarshal([]byte(v), &t) != nil {
		return unparsableBackupTarget
	}
	for _, secret := range []*string{&t.AccessKeyID, &t.SecretAccessKey, &t.Cert} {
		if *secret != "" {
			*secret = "redacted"
		}
	}
	out, _ := json.Marshal(t) // a struct of strings, a bool and an int always marshals
	return string(out)
}
