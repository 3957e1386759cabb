package providers

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hcistorage/storage-webhook/harvester"
)

// SettingsSource is where Harvester's Settings are read: the cluster view (its watch
// caches, or files).
type SettingsSource interface {
	// HarvesterSetting returns one of the Settings the service reads (harvester.SettingNames).
	HarvesterSetting(name string) (*harvester.Setting, bool)
	// HarvesterInstalled reports whether the view has Harvester's Settings: in a live
	// cluster, the Setting CRD; in files, a server-version Setting.
	HarvesterInstalled() bool
	// SettingsGeneration changes whenever one of those Settings changes, so that what is
	// derived from them is recomputed only then.
	SettingsGeneration() uint64
}

// Where the release in force comes from: the label values of
// storage_webhook_harvester_release_info{source}.
const (
	FromFlag          = "flag"           // --harvester-version
	FromProvidersFile = "providers-file" // harvesterVersion in the providers file
	FromSetting       = "setting"        // Harvester's server-version Setting
	FromNone          = "none"           // no Harvester: the newest release's values
)

// Harvester is the Harvester the rules run beside: its release, whose Behaviour the rules
// follow, and the two Settings of its that VMB-V1 reads.
type Harvester struct {
	Behaviour
	// Installed: the cluster has Harvester's Settings (false: a KubeVirt/CDI cluster).
	Installed bool
	// Version is the version as given (the pin, or server-version's value), "" for none.
	Version string
	// Source is one of the From* constants; From says it for people.
	Source, From string
	// Note says what was assumed about Version (ParseRelease), "" when nothing was.
	Note string
	// CSIDrivers is csi-driver-config as Harvester computes it (harvester.CSIDriverConfigOf).
	CSIDrivers harvester.CSIDriverConfig
	// BackupTarget is whether backup-target names a target.
	BackupTarget bool
	// Problems name each Setting whose value does not parse, and what is in force instead:
	// the last good value, or Harvester's default. Denials that depend on one repeat it.
	Problems map[string]string
}

// String names the release in force and where it came from, for logs and messages.
func (h *Harvester) String() string {
	s := "Harvester " + h.Release.String()
	if h.Version != "" {
		s += " (" + h.Version + ", " + h.From + ")"
	} else {
		s += " (" + h.From + ")"
	}
	return s
}

// same reports whether two Harvesters would be logged the same: the release, its source,
// the note and the problems.
func (h *Harvester) same(o *Harvester) bool {
	if o == nil || h.Release != o.Release || h.Version != o.Version || h.Source != o.Source || h.Note != o.Note || len(h.Problems) != len(o.Problems) {
		return false
	}
	for k, v := range h.Problems {
		if o.Problems[k] != v {
			return false
		}
	}
	return true
}

// lastGood are the last values of the Settings that parsed, kept for when a later value
// does not (SPEC §3.1: the last good value stays in force).
type lastGood struct {
	csiDrivers   harvester.CSIDriverConfig
	backupTarget *bool
}

// resolveHarvester computes the Harvester in force. The release is, in this order: the
// flag's pin, the providers file's pin, the server-version Setting, and, in a cluster
// without Harvester, the newest release known. A pin has been validated (ValidPin); a
// Setting's version that does not parse counts as the newest, with a note.
func resolveHarvester(flagPin, filePin, filePath string, src SettingsSource, last *lastGood) *Harvester {
	h := &Harvester{Problems: map[string]string{}}
	var setting func(string) (*harvester.Setting, bool)
	if src != nil && src.HarvesterInstalled() {
		h.Installed, setting = true, src.HarvesterSetting
	} else {
		setting = func(string) (*harvester.Setting, bool) { return nil, false }
	}
	switch {
	case flagPin != "":
		h.Version, h.Source, h.From = flagPin, FromFlag, "pinned by --harvester-version"
	case filePin != "":
		h.Version, h.Source, h.From = filePin, FromProvidersFile, "pinned by harvesterVersion in the providers file"
		if filePath != "" {
			h.From += " " + filePath
		}
	case h.Installed:
		h.Source, h.From = FromSetting, "from Setting "+harvester.SettingServerVersion
		if s, ok := setting(harvester.SettingServerVersion); ok && s.Get() != "" {
			h.Version = s.Get()
		} else {
			h.Note = fmt.Sprintf("Setting %s is missing or empty: the newest release known, %s, is assumed", harvester.SettingServerVersion, Newest())
		}
	default:
		h.Source, h.From = FromNone, "no Harvester Settings: a KubeVirt/CDI cluster gets the newest release's values"
	}
	release := Newest()
	if h.Version != "" {
		release, h.Note = ParseRelease(h.Version)
	}
	h.Behaviour = BehaviourOf(release)

	h.CSIDrivers = last.csiDrivers
	if s, ok := setting(harvester.SettingCSIDriverConfig); !ok {
		h.CSIDrivers, _ = harvester.ParseCSIDriverConfig(harvester.DefaultCSIDriverConfig)
	} else if c, err := harvester.CSIDriverConfigOf(s); err == nil {
		h.CSIDrivers, last.csiDrivers = c, c
	} else {
		instead := "the last good value stays in force"
		if h.CSIDrivers == nil {
			h.CSIDrivers, _ = harvester.ParseCSIDriverConfig(harvester.DefaultCSIDriverConfig)
			instead = "Harvester's default is in force"
		}
		h.Problems[harvester.SettingCSIDriverConfig] = fmt.Sprintf("Setting %s: %v: %s", harvester.SettingCSIDriverConfig, err, instead)
	}
	if s, ok := setting(harvester.SettingBackupTarget); ok {
		if set, err := harvester.BackupTargetSet(s.Get()); err == nil {
			h.BackupTarget, last.backupTarget = set, &set
		} else {
			instead := "no backup target is assumed"
			if last.backupTarget != nil {
				h.BackupTarget, instead = *last.backupTarget, "the last good value stays in force"
			}
			h.Problems[harvester.SettingBackupTarget] = fmt.Sprintf("Setting %s: its value %v: %s", harvester.SettingBackupTarget, err, instead)
		}
	}
	return h
}

// ProblemsText joins the problems, sorted by Setting, for a log line or a message.
func (h *Harvester) ProblemsText() []string {
	out := make([]string, 0, len(h.Problems))
	for _, k := range slices.Sorted(maps.Keys(h.Problems)) {
		out = append(out, h.Problems[k])
	}
	return out
}
