package cmd

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hcistorage/storage-webhook/harvester"
)

// profileClasses are the StorageClasses the profiles tests write to a temp dir.
const profileClasses = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: lh-v2}
provisioner: driver.longhorn.io
parameters: {dataEngine: v2}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: lh-v2-csi-clone
  annotations: {cdi.harvesterhci.io/storageProfileCloneStrategy: csi-clone}
provisioner: driver.longhorn.io
parameters: {dataEngine: v2}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: lvm-rsync
  annotations: {cdi.harvesterhci.io/storageProfileCloneStrategy: rsync}
provisioner: lvm.driver.harvesterhci.io
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: example}
provisioner: csi.example.com
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: lvm}
provisioner: lvm.driver.harvesterhci.io
parameters: {type: striped}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: rbd}
provisioner: rbd.csi.ceph.com
parameters: {pool: fast}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-class, namespace: default}
`

func writeProfileClasses(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "classes.yaml"), []byte(profileClasses), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func profilesJSON(t *testing.T, args ...string) map[string]ProfileReport {
	t.Helper()
	code, out, errOut := run(t, "", append([]string{"profiles", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var output ProfilesOutput
	if err := json.Unmarshal([]byte(out), &output); err != nil {
		t.Fatalf("output is not the JSON of ProfilesOutput: %v\n%s", err, out)
	}
	byName := map[string]ProfileReport{}
	var names []string
	for _, r := range output.Classes {
		names = append(names, r.Class)
		byName[r.Class] = r
	}
	if !slices.IsSorted(names) || len(byName) != len(names) {
		t.Errorf("classes %v are not sorted and unique", names)
	}
	return byName
}

// TestProfilesJSON: `profiles -o json` reports, for each class, the matched profile, the
// per-class annotations, the effective settings with their source, where CDI gets access
// modes when the settings have none, and the problems of invalid annotations.
func TestProfilesJSON(t *testing.T) {
	reports := profilesJSON(t, "--cluster", writeProfileClasses(t), "--harvester-version", "v1.8.2")
	if len(reports) != 6 {
		t.Errorf("%d classes, want the 6 StorageClasses of the file (not the ConfigMap)", len(reports))
	}
	lvmModes := `{"Block":["ReadWriteOnce"]}`
	cases := []struct {
		class, profile string
		annotations    map[string]string
		clone          string
		cloneFrom      string
		snapshotClass  string
		accessModes    string // JSON; "" for none
		accessFrom     string
		cdi            string // prefix of cdiAccessModes
		problem        string // substring of the only problem; "" for none
	}{
		{class: "lh-v2", profile: "longhorn-v2", clone: "copy", cloneFrom: "profile longhorn-v2",
			snapshotClass: "longhorn-snapshot", cdi: "CDI "},
		{class: "lh-v2-csi-clone", profile: "longhorn-v2",
			annotations: map[string]string{harvester.AnnClassCloneStrategy: "csi-clone"},
			clone:       "csi-clone", cloneFrom: harvester.AnnClassCloneStrategy, snapshotClass: "longhorn-snapshot", cdi: "CDI "},
		{class: "lvm-rsync", profile: "lvm",
			annotations: map[string]string{harvester.AnnClassCloneStrategy: "rsync"},
			clone:       "snapshot", cloneFrom: "profile lvm", snapshotClass: "lvm-snapshot",
			accessModes: lvmModes, accessFrom: "profile lvm", problem: `"rsync" is not a CDI clone strategy`},
		{class: "example", profile: "other", cdi: noAccessModes},
		{class: "lvm", profile: "lvm", clone: "snapshot", cloneFrom: "profile lvm", snapshotClass: "lvm-snapshot",
			accessModes: lvmModes, accessFrom: "profile lvm"},
		{class: "rbd", profile: "other", cdi: "CDI "},
	}
	for _, c := range cases {
		t.Run(c.class, func(t *testing.T) {
			r, ok := reports[c.class]
			if !ok {
				t.Fatalf("no report for %s", c.class)
			}
			e := r.Effective
			if r.Profile != c.profile {
				t.Errorf("profile = %q, want %q", r.Profile, c.profile)
			}
			if want := c.annotations; len(r.Annotations) != len(want) || !mapsEqual(r.Annotations, want) {
				t.Errorf("annotations = %v, want %v", r.Annotations, want)
			}
			if e.CloneStrategy != c.clone || e.From["cloneStrategy"] != c.cloneFrom {
				t.Errorf("clone strategy = %q from %q, want %q from %q", e.CloneStrategy, e.From["cloneStrategy"], c.clone, c.cloneFrom)
			}
			if e.SnapshotClass != c.snapshotClass {
				t.Errorf("snapshot class = %q, want %q", e.SnapshotClass, c.snapshotClass)
			}
			got := ""
			if e.AccessModes != nil {
				got = e.AccessModes.String()
			}
			if got != c.accessModes || e.From["accessModes"] != c.accessFrom {
				t.Errorf("access modes = %q from %q, want %q from %q", got, e.From["accessModes"], c.accessModes, c.accessFrom)
			}
			if c.cdi == "" && r.CDIAccessModes != "" || !strings.HasPrefix(r.CDIAccessModes, c.cdi) {
				t.Errorf("cdiAccessModes = %q, want it to start with %q", r.CDIAccessModes, c.cdi)
			}
			if e.FilesystemOverhead != "" {
				t.Errorf("filesystem overhead = %q, want unset", e.FilesystemOverhead)
			}
			switch {
			case c.problem == "" && len(r.Problems) != 0:
				t.Errorf("problems = %q, want none", r.Problems)
			case c.problem != "" && (len(r.Problems) != 1 || !strings.Contains(r.Problems[0], c.problem)):
				t.Errorf("problems = %q, want one containing %q", r.Problems, c.problem)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return len(a) == len(b)
}

// TestProfilesJSONFields: every element has exactly the documented fields, and the empty
// ones are {} and [] rather than null.
func TestProfilesJSONFields(t *testing.T) {
	code, out, errOut := run(t, "", "profiles", "-o", "json", "--cluster", writeProfileClasses(t))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var top struct {
		Harvester map[string]json.RawMessage   `json:"harvester"`
		Classes   []map[string]json.RawMessage `json:"classes"`
	}
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatal(err)
	}
	hkeys := []string{"release", "version", "source", "from", "notes", "csiDriverConfig", "backupTarget", "facts"}
	if len(top.Harvester) != len(hkeys) {
		t.Errorf("harvester has %d fields, want %d: %v", len(top.Harvester), len(hkeys), top.Harvester)
	}
	for _, k := range hkeys {
		if v, ok := top.Harvester[k]; !ok || string(v) == "null" {
			t.Errorf("harvester: %q is %s", k, v)
		}
	}
	keys := []string{"class", "provisioner", "profile", "annotations", "effective", "cdiAccessModes", "problems", "abilities"}
	for _, r := range top.Classes {
		if len(r) != len(keys) {
			t.Errorf("%s has %d fields, want %d", r["class"], len(r), len(keys))
		}
		for _, k := range keys {
			if v, ok := r[k]; !ok || string(v) == "null" {
				t.Errorf("%s: %q is %s", r["class"], k, v)
			}
		}
	}
}

// TestProfilesExampleCluster: the example cluster's classes each get their profile; the
// classes of the other manifests (VolumeSnapshotClasses, PVCs) are not listed.
func TestProfilesExampleCluster(t *testing.T) {
	reports := profilesJSON(t, "--cluster", "../testdata/cluster")
	want := map[string]string{"longhorn": "longhorn-v1", "longhorn-v2": "longhorn-v2", "lvm-striped": "lvm", "rbd-fast": "other"}
	for class, profile := range want {
		if r, ok := reports[class]; !ok || r.Profile != profile {
			t.Errorf("%s: profile %q (listed: %v), want %q", class, r.Profile, ok, profile)
		}
	}
	for _, notClass := range []string{"longhorn-snapshot", "lvm-snapshot", "csi-rbdplugin-snapclass"} {
		if _, ok := reports[notClass]; ok {
			t.Errorf("VolumeSnapshotClass %s is listed as a StorageClass", notClass)
		}
	}
	if r := reports["longhorn"]; r.Effective.CloneStrategy != "" || r.CDIAccessModes == "" || r.CDIAccessModes == noAccessModes {
		t.Errorf("longhorn (v1): %+v, want no clone strategy and CDI's access modes", r)
	}

	code, out, errOut := run(t, "", "profiles", "--cluster", "../testdata/cluster")
	if code != 0 {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	rows := tableRows(t, out)
	for class, profile := range want {
		if row := rows[class]; len(row) < 3 || row[2] != profile {
			t.Errorf("table row of %s = %q, want profile %s", class, row, profile)
		}
	}
}

// tableRows splits the rows of `profiles -o table` (no cell holds a space) by class, and
// checks the header.
func tableRows(t *testing.T, out string) map[string][]string {
	t.Helper()
	lines := tableLines(t, out)
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		if l == "" {
			break
		}
		f := strings.Fields(l)
		if len(f) != 11 {
			t.Errorf("row %q has %d cells, want 11", l, len(f))
			continue
		}
		rows[f[0]] = f
	}
	return rows
}

// tableLines are the lines of `profiles -o table` from the header on (the Harvester in
// force comes first), after checking the header.
func tableLines(t *testing.T, out string) []string {
	t.Helper()
	header := "CLASS PROVISIONER PROFILE CLONE SNAPSHOT-CLASS ACCESS-MODES FS-OVERHEAD VOL-SNAP VM-SNAP VM-BACKUP PROBLEMS"
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "CLASS ") {
			if strings.Join(strings.Fields(l), " ") != header {
				t.Fatalf("header %q, want the columns %s", l, header)
			}
			return lines[i:]
		}
	}
	t.Fatalf("no header line:\n%s", out)
	return nil
}

// TestProfilesTable: one aligned row per class; an annotation's value is marked *, CDI's
// access modes show as cdi, missing ones as NONE, and the problems are listed below.
func TestProfilesTable(t *testing.T) {
	code, out, errOut := run(t, "", "profiles", "--cluster", writeProfileClasses(t), "--harvester-version", "v1.8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rows := tableRows(t, out)
	want := map[string]string{
		"example":         "example csi.example.com other - - NONE - yes yes no -",
		"lh-v2":           "lh-v2 driver.longhorn.io longhorn-v2 copy longhorn-snapshot cdi - yes yes yes -",
		"lh-v2-csi-clone": "lh-v2-csi-clone driver.longhorn.io longhorn-v2 csi-clone* longhorn-snapshot cdi - yes yes yes -",
		"lvm":             `lvm lvm.driver.harvesterhci.io lvm snapshot lvm-snapshot {"Block":["ReadWriteOnce"]} - yes yes no -`,
		"lvm-rsync":       `lvm-rsync lvm.driver.harvesterhci.io lvm snapshot lvm-snapshot {"Block":["ReadWriteOnce"]} - yes yes no 1`,
		"rbd":             "rbd rbd.csi.ceph.com other - - cdi - yes yes no -",
	}
	if len(rows) != len(want) {
		t.Errorf("%d rows, want %d:\n%s", len(rows), len(want), out)
	}
	for class, w := range want {
		if got := strings.Join(rows[class], " "); got != w {
			t.Errorf("row of %s:\n got %s\nwant %s", class, got, w)
		}
	}
	lines := tableLines(t, out)
	if len(lines) < 1+len(want) {
		t.Fatalf("too few lines:\n%s", out)
	}
	var starts []int
	for i := range lines[0] {
		if lines[0][i] != ' ' && (i == 0 || lines[0][i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	for _, l := range lines[1 : 1+len(want)] {
		cells := strings.Fields(l)
		for i, start := range starts {
			if start > len(l) || !strings.HasPrefix(l[start:], cells[i]+" ") && l[start:] != cells[i] {
				t.Errorf("cell %q of %q does not start at column %d under the header", cells[i], l, start)
			}
		}
	}
	for _, s := range []string{
		"Harvester v1.8 (v1.8, pinned by --harvester-version)\n",
		"  csi-driver-config: driver.longhorn.io (snapshot: longhorn-snapshot, backup: longhorn)\n  backup-target: none\n",
		"*: set by the class's annotation",
		"\nnotes:\n",
		"lvm-rsync: annotation " + harvester.AnnClassCloneStrategy + `: "rsync" is not a CDI clone strategy`,
		"example: access modes: " + noAccessModes,
	} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
}

// TestProfilesProvidersFile: --providers rows are tried first, and a table without a
// catch-all row leaves a class with profile "none".
func TestProfilesProvidersFile(t *testing.T) {
	dir := writeProfileClasses(t)
	file := filepath.Join(t.TempDir(), "providers.yaml")
	rows := "providers:\n- {name: ceph, provisioner: rbd.csi.ceph.com, backend: cdi, cloneStrategy: csi-clone}\nbuiltins: false\n"
	if err := os.WriteFile(file, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	reports := profilesJSON(t, "--cluster", dir, "--providers", file)
	if r := reports["rbd"]; r.Profile != "ceph" || r.Effective.CloneStrategy != "csi-clone" || r.Effective.From["cloneStrategy"] != "profile ceph" {
		t.Errorf("rbd = %+v, want profile ceph and its clone strategy", r)
	}
	if r := reports["lh-v2"]; r.Profile != "none" || r.Effective.CloneStrategy != "" {
		t.Errorf("lh-v2 = %+v, want profile none and no settings", r)
	}
}

// TestProfilesKubeconfigListsOnly: with --kubeconfig the command reads only: one list of
// StorageClasses and a get of each Setting the rules read (here there are none: a cluster
// without Harvester).
func TestProfilesKubeconfigListsOnly(t *testing.T) {
	var mu sync.Mutex
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/apis/storage.k8s.io/v1/storageclasses" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"apiVersion":"storage.k8s.io/v1","kind":"StorageClassList","metadata":{},"items":[
			{"metadata":{"name":"rbd"},"provisioner":"rbd.csi.ceph.com"},
			{"metadata":{"name":"lvm","annotations":{"cdi.harvesterhci.io/filesystemOverhead":"0.1"}},"provisioner":"lvm.driver.harvesterhci.io"}]}`))
	}))
	defer srv.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: " + srv.URL + "}}]\n" +
		"contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {}}]\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	reports := profilesJSON(t, "--kubeconfig", kubeconfig)
	if r := reports["lvm"]; r.Profile != "lvm" || r.Effective.FilesystemOverhead != "0.1" || r.Annotations[harvester.AnnClassFilesystemOverhead] != "0.1" {
		t.Errorf("lvm = %+v", r)
	}
	if r := reports["rbd"]; r.Profile != "other" || !strings.HasPrefix(r.CDIAccessModes, "CDI ") {
		t.Errorf("rbd = %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"GET /apis/storage.k8s.io/v1/storageclasses", "GET /apis/harvesterhci.io/v1beta1/settings/server-version",
		"GET /apis/harvesterhci.io/v1beta1/settings/csi-driver-config", "GET /apis/harvesterhci.io/v1beta1/settings/backup-target"}
	if !slices.Equal(requests, want) {
		t.Errorf("requests = %q, want %q", requests, want)
	}
}

// TestProfilesUsageErrors: usage and input errors exit 2 with a one-line reason.
func TestProfilesUsageErrors(t *testing.T) {
	dir := writeProfileClasses(t)
	badProviders := filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(badProviders, []byte("providers:\n- {name: x, provisioner: p, backend: cdi, clonestrategy: copy}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad output", []string{"--cluster", dir, "-o", "yaml"}, `-o "yaml" must be table or json`},
		{"no source", nil, "give --cluster PATH or --kubeconfig FILE"},
		{"both sources", []string{"--cluster", dir, "--kubeconfig", "kc"}, "alternatives"},
		{"argument", []string{"--cluster", dir, "extra"}, `unexpected argument "extra"`},
		{"missing path", []string{"--cluster", filepath.Join(dir, "absent")}, "absent"},
		{"bad providers file", []string{"--cluster", dir, "--providers", badProviders}, "clonestrategy"},
		{"missing kubeconfig", []string{"--kubeconfig", filepath.Join(dir, "absent")}, "kubeconfig"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, "", append([]string{"profiles"}, c.args...)...)
			if code != 2 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || out != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want 2 and one line containing %q", code, errOut, out, c.want)
			}
		})
	}
}
