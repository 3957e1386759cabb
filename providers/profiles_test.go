package providers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hcistorage/storage-webhook/internal/poll"
	"github.com/hcistorage/storage-webhook/rollout"
)

func class(provisioner string, params map[string]string) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: provisioner, Parameters: params}
}

// TestBuiltinsMatchSpecTable: each class gets the SPEC §3 profile, with the table's values
// on v1.5, the release the SPEC's table describes.
func TestBuiltinsMatchSpecTable(t *testing.T) {
	cases := []struct {
		name string
		sc   *storagev1.StorageClass
		want string
	}{
		{"longhorn without dataEngine is v1", class("driver.longhorn.io", map[string]string{"numberOfReplicas": "3"}), "longhorn-v1"},
		{"longhorn dataEngine v1", class("driver.longhorn.io", map[string]string{"dataEngine": "v1"}), "longhorn-v1"},
		{"longhorn dataEngine v2", class("driver.longhorn.io", map[string]string{"dataEngine": "v2"}), "longhorn-v2"},
		{"longhorn unknown engine falls to other", class("driver.longhorn.io", map[string]string{"dataEngine": "v3"}), "other"},
		{"lvm", class("lvm.driver.harvesterhci.io", nil), "lvm"},
		{"anything else", class("rbd.csi.ceph.com", nil), "other"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ok := Builtins(BehaviourOf(V1_5)).Match(c.sc)
			if !ok || p.Name != c.want {
				t.Fatalf("got %q (%v), want %q", p.Name, ok, c.want)
			}
		})
	}
	v2, _ := Builtins(BehaviourOf(V1_5)).Match(class("driver.longhorn.io", map[string]string{"dataEngine": "v2"}))
	if v2.Backend != "cdi" || v2.CloneStrategy != "copy" || v2.SnapshotClass != "longhorn-snapshot" || v2.DefaultParameters["migratable"] != "true" ||
		v2.VolumeSnapshots || v2.VMSnapshots || v2.VMBackups || !v2.ExportTarget {
		t.Errorf("longhorn-v2 profile = %+v", v2)
	}
}

// TestParse: file rows come first, builtins follow unless disabled, bad files are refused
// with a reason.
func TestParse(t *testing.T) {
	good := `providers:
- name: fast-rbd
  provisioner: rbd.csi.ceph.com
  parameters: {pool: fast}
  backend: cdi
  cloneStrategy: csi-clone
  volumeSnapshots: true
`
	file, err := Parse([]byte(good), testRules)
	if err != nil {
		t.Fatal(err)
	}
	tab := file.Table(BehaviourOf(Newest()))
	if p, _ := tab.Match(class("rbd.csi.ceph.com", map[string]string{"pool": "fast"})); p.Name != "fast-rbd" || p.CloneStrategy != "csi-clone" {
		t.Errorf("file row not first: %+v", p)
	}
	if p, _ := tab.Match(class("rbd.csi.ceph.com", map[string]string{"pool": "slow"})); p.Name != "other" {
		t.Errorf("builtins not appended: %+v", p)
	}
	file, err = Parse([]byte(good+"builtins: false\n"), testRules)
	if err != nil {
		t.Fatal(err)
	}
	tab = file.Table(BehaviourOf(Newest()))
	if _, ok := tab.Match(class("nfs.csi.k8s.io", nil)); ok {
		t.Error("builtins: false still matched the catch-all")
	}

	bad := []struct{ name, file, want string }{
		{"empty", "", "empty"},
		{"not yaml", "providers: [", "does not parse"},
		{"unknown field", "providers:\n- {name: a, provisioner: p, backend: cdi, clonestrategy: copy}\n", "clonestrategy"},
		{"bad backend", "providers:\n- {name: a, provisioner: p, backend: longhorn}\n", `backend "longhorn"`},
		{"bad clone strategy", "providers:\n- {name: a, provisioner: p, backend: cdi, cloneStrategy: rsync}\n", `cloneStrategy "rsync"`},
		{"no name", "providers:\n- {provisioner: p, backend: cdi}\n", "name is required"},
		{"no provisioner", "providers:\n- {name: a, backend: cdi}\n", "provisioner is required"},
		{"wrong type", "providers:\n- {name: a, provisioner: p, backend: cdi, vmBackups: maybe}\n", "does not parse"},
		{"nothing left", "builtins: false\n", "lists no providers"},
		{"duplicate key", "providers: []\nproviders: []\n", "does not parse"},
		{"rollout: unknown rule", "rules: {VM-V9: {action: Audit}}\n", "rules.VM-V9: no such rule"},
		{"rollout: unknown field", "rules: {VM-V1: {acton: Audit}}\n", "acton"},
		{"rollout: exception without expires", "exceptions:\n- {name: x, rules: [VM-V1], reason: r}\n", `exceptions[0] ("x"): expires is required`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse([]byte(c.file), testRules); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestStoreReloads: a changed file replaces the table; a broken one is reported and the
// previous table stays in force.
func TestStoreReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "providers.yaml")
	write := func(s string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil { // as a ConfigMap update: swap, not rewrite
			t.Fatal(err)
		}
	}
	row := func(name string) string {
		return "providers:\n- {name: " + name + ", provisioner: x.csi, backend: cdi}\n"
	}
	write(row("first"))
	errs := make(chan error, 10)
	s, err := Load(path, testRules, func(err error) { errs <- err })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Watch(ctx) }()
	name := func() string { p, _ := s.Table().Match(class("x.csi", nil)); return p.Name }

	poll.Until(t, 10*time.Second, func() bool { write(row("second")); return name() == "second" })
	write("providers: [")
	select {
	case err := <-drainTo(errs, func(e error) bool { return e != nil }):
		if !strings.Contains(err.Error(), "does not parse") {
			t.Errorf("reported %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("garbage file not reported within 10s")
	}
	if name() != "second" {
		t.Errorf("table after a garbage file = %q, want the previous one", name())
	}

	// The rollout is part of the file: followed, and a bad entry leaves the previous one.
	audit := row("third") + "rules: {VM-V1: {action: Audit}}\n"
	poll.Until(t, 10*time.Second, func() bool { write(audit); return s.Policy().Action("VM-V1") == rollout.Audit })
	write(row("fourth") + "rules: {VM-V1: {action: Sometimes}}\n")
	select {
	case err := <-drainTo(errs, func(e error) bool { return e != nil }):
		if !strings.Contains(err.Error(), `rules.VM-V1: action "Sometimes"`) {
			t.Errorf("reported %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bad rollout not reported within 10s")
	}
	if name() != "third" || s.Policy().Action("VM-V1") != rollout.Audit {
		t.Errorf("after a bad rollout: table %q, VM-V1 %s; want the previous file in force", name(), s.Policy().Action("VM-V1"))
	}
}

// testRules is a catalogue of two rules for files with a rollout.
var testRules = rollout.Catalogue{Mutating: map[string]bool{"VM-V1": false, "IMG-M1": true}, Kinds: []string{"VirtualMachine", "VirtualMachineImage"}}

// drainTo forwards the first error that matches.
func drainTo(in chan error, match func(error) bool) chan error {
	out := make(chan error, 1)
	go func() {
		for e := range in {
			if match(e) {
				out <- e
				return
			}
		}
	}()
	return out
}
