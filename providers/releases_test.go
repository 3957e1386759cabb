package providers

import (
	"strings"
	"testing"

	"github.com/hcistorage/storage-webhook/harvester"
)

// TestParseRelease: a Harvester version maps onto its release line; newer and older than
// the table map onto its ends, and a version that is not one onto the newest, each with a
// note to log.
func TestParseRelease(t *testing.T) {
	cases := []struct {
		version string
		want    Release
		note    string // substring; "" for none
	}{
		{"v1.5.2", V1_5, ""},
		{"v1.6.1", V1_6, ""},
		{"v1.7.3", V1_7, ""},
		{"v1.8.2", V1_8, ""},
		{"v1.9.0-rc6", V1_9, ""},
		{"v1.9", V1_9, ""},
		{"1.8.0", V1_8, ""},
		{"v1.8.2+dirty", V1_8, ""},
		{"v1.10.0", V1_9, "newer than the newest release"},
		{"v2.0.0", V1_9, "newer than the newest release"},
		{"v1.4.3", V1_5, "older than the oldest release"},
		{"v0.3.0", V1_5, "older than the oldest release"},
		{"dev", V1_9, "not a release version"},
		{"master-head", V1_9, "not a release version"},
		{"v1.8-head", V1_8, ""}, // a build of the v1.8 branch
		{"head", V1_9, "not a release version"},
		{"", V1_9, "not a release version"},
		{"v99999999999999999999.1", V1_9, "newer than"},
	}
	for _, c := range cases {
		t.Run(c.version, func(t *testing.T) {
			got, note := ParseRelease(c.version)
			if got != c.want || (c.note == "") != (note == "") || !strings.Contains(note, c.note) {
				t.Errorf("ParseRelease(%q) = %v, %q; want %v and a note containing %q", c.version, got, note, c.want, c.note)
			}
		})
	}
}

// TestFactsByRelease: the table's values on each line are those of SPEC §3.1, and every fact
// cites its source for every value.
func TestFactsByRelease(t *testing.T) {
	want := map[Release]Behaviour{
		V1_5: {LonghornV2: Abilities{CloneStrategy: "copy"}, ThirdParty: Abilities{VMSnapshots: true}},
		V1_6: {LonghornV2: Abilities{CloneStrategy: "copy"}, ThirdParty: Abilities{VMSnapshots: true}},
		V1_7: {LonghornV2: Abilities{VolumeSnapshots: true, VMSnapshots: true, VMBackups: true, CloneStrategy: "copy"}, ThirdParty: Abilities{VMSnapshots: true}},
		V1_8: {LonghornV2: Abilities{VolumeSnapshots: true, VMSnapshots: true, VMBackups: true, CloneStrategy: "copy"}, ThirdParty: Abilities{VMSnapshots: true}},
		V1_9: {LonghornV2: Abilities{VolumeSnapshots: true, CloneStrategy: "csi-clone"}, ThirdParty: Abilities{VMSnapshots: true, VMBackups: true},
			ShareableDisks: true, DisplayNameLabelValue: true},
	}
	for _, r := range Releases {
		w := want[r]
		w.Release = r
		if got := BehaviourOf(r); got != w {
			t.Errorf("%s: %+v\nwant %+v", r, got, w)
		}
		for _, f := range Facts {
			if v, src := f.At(r); v == "" || len(src) < 10 {
				t.Errorf("%s on %s: value %q, source %q", f.Name(), r, v, src)
			}
		}
	}
}

// TestBuiltinsFollowTheRelease: the built-in rows take their abilities and Longhorn v2 clone
// strategy from the release; a providers file's row keeps its own on every release.
func TestBuiltinsFollowTheRelease(t *testing.T) {
	lh2 := class(LonghornProvisioner, map[string]string{"dataEngine": "v2"})
	lvm := class("lvm.driver.harvesterhci.io", nil)
	for _, r := range Releases {
		b := BehaviourOf(r)
		p, _ := Builtins(b).Match(lh2)
		if p.VolumeSnapshots != b.LonghornV2.VolumeSnapshots || p.VMBackups != b.LonghornV2.VMBackups || p.CloneStrategy != b.LonghornV2.CloneStrategy || p.FromRelease != (AbilitiesSet{true, true, true}) {
			t.Errorf("%s: longhorn-v2 = %+v", r, p)
		}
		if p, _ := Builtins(b).Match(lvm); p.VMBackups != b.ThirdParty.VMBackups || !p.VolumeSnapshots {
			t.Errorf("%s: lvm = %+v", r, p)
		}
		file, err := Parse([]byte("providers:\n- {name: mine, provisioner: driver.longhorn.io, parameters: {dataEngine: v2}, backend: cdi, cloneStrategy: snapshot, volumeSnapshots: false, vmBackups: true}\n"), testRules)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := file.Table(b).Match(lh2); p.Name != "mine" || p.CloneStrategy != "snapshot" || p.VolumeSnapshots || !p.VMBackups ||
			p.VMSnapshots != b.LonghornV2.VMSnapshots || p.FromRelease != (AbilitiesSet{VMSnapshots: true}) {
			t.Errorf("%s: the file's row = %+v, want its own values and the release's VM snapshots, which it leaves unset", r, p)
		}
	}
}

// settingsView is a SettingsSource whose Settings a test changes.
type settingsView struct {
	installed bool
	settings  map[string]*harvester.Setting
	gen       uint64
}

func (v *settingsView) HarvesterSetting(name string) (*harvester.Setting, bool) {
	s, ok := v.settings[name]
	return s, ok
}
func (v *settingsView) HarvesterInstalled() bool   { return v.installed }
func (v *settingsView) SettingsGeneration() uint64 { return v.gen }

func (v *settingsView) set(name, value string) {
	v.settings[name] = &harvester.Setting{Value: value}
	v.gen++
}

// TestStoreFollowsTheSettings: the release and Settings in force follow the view's
// generation without anything else being told; a pin wins (flag over file over Setting);
// a Setting that does not parse leaves the last good value in force and says so; onChange
// hears each change once.
func TestStoreFollowsTheSettings(t *testing.T) {
	view := &settingsView{installed: true, settings: map[string]*harvester.Setting{}}
	view.set(harvester.SettingServerVersion, "v1.6.1")
	var heard []string
	s := NewStore(nil)
	s.UseHarvester(view, "", func(h *Harvester) { heard = append(heard, h.String()) })

	lh2 := class(LonghornProvisioner, map[string]string{"dataEngine": "v2"})
	snapshots := func() bool { p, _ := s.Table().Match(lh2); return p.VolumeSnapshots }
	if h := s.Harvester(); h.Release != V1_6 || h.Source != FromSetting || snapshots() {
		t.Errorf("v1.6.1: %+v, Longhorn v2 snapshots %v", h, snapshots())
	}
	if s.Harvester() != s.Harvester() {
		t.Error("an unchanged view recomputed the Harvester")
	}
	view.set(harvester.SettingServerVersion, "v1.8.2")
	if h := s.Harvester(); h.Release != V1_8 || !snapshots() {
		t.Errorf("after the upgrade to v1.8.2: %+v", h)
	}
	view.set(harvester.SettingServerVersion, "master-head")
	if h := s.Harvester(); h.Release != Newest() || !strings.Contains(h.Note, "not a release version") {
		t.Errorf("master-head: %+v", h)
	}

	view.set(harvester.SettingCSIDriverConfig, `{"lvm.driver.harvesterhci.io":{"volumeSnapshotClassName":"lvm-snapshot"}}`)
	if h := s.Harvester(); h.CSIDrivers["lvm.driver.harvesterhci.io"].VolumeSnapshotClassName != "lvm-snapshot" || h.CSIDrivers[LonghornProvisioner].BackupVolumeSnapshotClassName != "longhorn" {
		t.Errorf("csi-driver-config = %+v, want lvm's entry and Harvester's default Longhorn entry", h.CSIDrivers)
	}
	view.set(harvester.SettingCSIDriverConfig, `{"lvm`)
	if h := s.Harvester(); h.CSIDrivers["lvm.driver.harvesterhci.io"].VolumeSnapshotClassName != "lvm-snapshot" ||
		!strings.Contains(h.Problems[harvester.SettingCSIDriverConfig], "the last good value stays in force") {
		t.Errorf("a broken csi-driver-config: %+v, problems %v", h.CSIDrivers, h.Problems)
	}
	view.set(harvester.SettingBackupTarget, `{"type":"s3","endpoint":"https://s3.example","secretAccessKey":"k"}`)
	if h := s.Harvester(); !h.BackupTarget {
		t.Error("an s3 backup target is not set")
	}
	view.set(harvester.SettingBackupTarget, `{"type":"","endpoint":""}`)
	if h := s.Harvester(); h.BackupTarget {
		t.Error("an empty backup target is set")
	}

	pinned := NewStore(&File{HarvesterVersion: "v1.7"})
	pinned.UseHarvester(view, "", nil)
	if h := pinned.Harvester(); h.Release != V1_7 || h.Source != FromProvidersFile {
		t.Errorf("file pin: %+v", h)
	}
	pinned.UseHarvester(view, "v1.5.2", nil)
	if h := pinned.Harvester(); h.Release != V1_5 || h.Source != FromFlag {
		t.Errorf("flag pin over file pin: %+v", h)
	}
	none := NewStore(nil)
	none.UseHarvester(&settingsView{settings: map[string]*harvester.Setting{}}, "", nil)
	if h := none.Harvester(); h.Release != Newest() || h.Source != FromNone || h.Installed || h.BackupTarget || len(h.CSIDrivers) != 1 {
		t.Errorf("no Harvester: %+v", h)
	}

	if len(heard) != 4 { // v1.6.1, v1.8.2, master-head, the broken csi-driver-config; the rest is no news
		t.Errorf("onChange heard %d changes, want 4: %q", len(heard), heard)
	}
}

// BenchmarkStoreInForce is what a rule pays to read the configuration in force while
// nothing changes (BENCHMARKS.md §9): the table and the Harvester, from the memo.
func BenchmarkStoreInForce(b *testing.B) {
	view := &settingsView{installed: true, settings: map[string]*harvester.Setting{}}
	view.set(harvester.SettingServerVersion, "v1.8.2")
	s := NewStore(nil)
	s.UseHarvester(view, "", nil)
	b.ReportAllocs()
	for b.Loop() {
		if len(s.Table()) != 5 || !s.Harvester().Installed {
			b.Fatal("wrong configuration")
		}
	}
}
