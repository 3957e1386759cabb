package harvester

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestCSIDriverConfigOf: as Harvester's LoadCSIDriverConfig (pkg/util/volume.go, v1.5.2 to
// v1.9.0-rc6): the default's entries, plus the value's for provisioners the default does not
// name; the default's win. A Setting without a default has Harvester's.
func TestCSIDriverConfigOf(t *testing.T) {
	lvm := `"lvm.driver.harvesterhci.io":{"volumeSnapshotClassName":"lvm-snapshot","backupVolumeSnapshotClassName":"lvm-backup"}`
	cases := []struct {
		name          string
		s             Setting
		lvm, longhorn string // the backup classes in force; "-" for no entry
		err           string
	}{
		{"no value: the default", Setting{Default: DefaultCSIDriverConfig}, "-", "longhorn", ""},
		{"no default: Harvester's", Setting{Value: "{" + lvm + "}"}, "lvm-backup", "longhorn", ""},
		{"the value adds a provisioner", Setting{Default: DefaultCSIDriverConfig, Value: "{" + lvm + "}"}, "lvm-backup", "longhorn", ""},
		{"the default's entry wins", Setting{Default: DefaultCSIDriverConfig,
			Value: `{"driver.longhorn.io":{"backupVolumeSnapshotClassName":"mine"},` + lvm + `}`}, "lvm-backup", "longhorn", ""},
		{"a value that is not JSON", Setting{Default: DefaultCSIDriverConfig, Value: `{"lvm`}, "", "", "its value is not a JSON object"},
		{"a value that is a list", Setting{Value: `[]`}, "", "", "its value is not a JSON object"},
		{"a value that is null", Setting{Value: `null`}, "", "", "null"},
		{"a default that is not JSON", Setting{Default: `x`}, "", "", "its default is not a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CSIDriverConfigOf(&c.s)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			entry := func(p string) string {
				if e, ok := got[p]; ok {
					return e.BackupVolumeSnapshotClassName
				}
				return "-"
			}
			if entry("lvm.driver.harvesterhci.io") != c.lvm || entry("driver.longhorn.io") != c.longhorn {
				t.Errorf("got %+v", got)
			}
		})
	}
}

// TestBackupTargetSet: as Harvester's DecodeBackupTarget and IsDefaultBackupTarget: empty,
// or every field empty, is no target.
func TestBackupTargetSet(t *testing.T) {
	cases := []struct {
		value string
		set   bool
		err   bool
	}{
		{"", false, false},
		{`{}`, false, false},
		{`{"type":"","endpoint":""}`, false, false},
		{`{"type":"nfs","endpoint":"nfs://x:/e"}`, true, false},
		{`{"type":"s3","endpoint":"https://s3","accessKeyId":"a","secretAccessKey":"b","bucketName":"c","bucketRegion":"d"}`, true, false},
		{`{"endpoint":"nfs://x:/e"}`, true, false},
		{`{"refreshIntervalInSeconds":60}`, true, false},
		{`not json`, false, true},
		{`{"type":3}`, false, true},
	}
	for _, c := range cases {
		set, err := BackupTargetSet(c.value)
		if set != c.set || (err != nil) != c.err {
			t.Errorf("BackupTargetSet(%s) = %v, %v; want %v, error %v", c.value, set, err, c.set, c.err)
		}
	}
}

// TestSettingsKeepNoCredentials: the cache keeps a Setting's name, value and default only,
// and of backup-target no credential, while whether a target is set reads the same.
func TestSettingsKeepNoCredentials(t *testing.T) {
	target := `{"type":"s3","endpoint":"https://s3.example","accessKeyId":"AKIA123","secretAccessKey":"very-secret","cert":"-----BEGIN","bucketName":"b"}`
	for _, c := range []struct{ value, wantIn, notIn string }{
		{target, `"secretAccessKey":"redacted"`, "very-secret"},
		{`{"type":"nfs","endpoint":"nfs://x:/e"}`, `"endpoint":"nfs://x:/e"`, "redacted"},
		{`garbage that may hold "a secret"`, "not JSON", "secret"},
	} {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting",
			"metadata": map[string]any{"name": SettingBackupTarget, "labels": map[string]any{"a": "b"}, "resourceVersion": "7"},
			"value":    c.value, "default": "", "customized": true, "status": map[string]any{"conditions": []any{}},
		}}
		s := SettingFromUnstructured(u)
		if !strings.Contains(s.Value, c.wantIn) || strings.Contains(s.Value, c.notIn) || s.Labels != nil || s.ResourceVersion != "7" {
			t.Errorf("%s: kept %+v", c.value, s)
		}
		before, errBefore := BackupTargetSet(c.value)
		after, errAfter := BackupTargetSet(s.Value)
		if before != after || (errBefore == nil) != (errAfter == nil) {
			t.Errorf("%s: set %v (%v) before redaction, %v (%v) after", c.value, before, errBefore, after, errAfter)
		}
	}
}
