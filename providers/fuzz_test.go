package providers_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hcistorage/storage-webhook/harvester"
	"github.com/hcistorage/storage-webhook/providers"
	"github.com/hcistorage/storage-webhook/rollout"
	"github.com/hcistorage/storage-webhook/webhook"
)

// FuzzParse parses providers files (seeds in testdata/fuzz/FuzzParse: the deployed
// ConfigMap's file, the README example, rollouts and bad files). Parse never panics; a file
// it accepts has a rollout in which no mutating rule warns and every exception expires, a
// table with only valid rows, and a class made from the first row's provisioner and
// parameters gets that row.
func FuzzParse(f *testing.F) {
	cat := webhook.Catalogue()
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzDeadline(fuzzTimeout, data)()
		file, err := providers.Parse(data, cat)
		if err != nil {
			if file != nil {
				t.Fatalf("Parse returned a file and an error: %v", err)
			}
			return
		}
		p := file.Policy()
		for id, mutating := range cat.Mutating {
			actions := []rollout.Action{p.Action(id)}
			for _, o := range p.Overrides(id) {
				actions = append(actions, o.Action)
			}
			for _, a := range actions {
				if !slices.Contains(rollout.Actions, a) || mutating && a == rollout.Warn {
					t.Fatalf("rule %s (mutating %v) takes action %q", id, mutating, a)
				}
			}
		}
		for _, e := range p.Exceptions() {
			if e.Expires.IsZero() || e.Name == "" || e.Reason == "" || len(e.Rules) == 0 {
				t.Fatalf("exception %+v lacks a required field", e)
			}
		}
		table := file.Table(providers.BehaviourOf(providers.Newest()))
		if len(table) == 0 {
			t.Fatal("Parse accepted an empty table")
		}
		for i, p := range table {
			switch {
			case p.Name == "":
				t.Fatalf("row %d has no name: %+v", i, p)
			case p.Provisioner == "":
				t.Fatalf("row %d (%s) has no provisioner", i, p.Name)
			case p.Backend != harvester.BackendCDI && p.Backend != harvester.BackendBackingImage:
				t.Fatalf("row %d (%s) has backend %q", i, p.Name, p.Backend)
			case p.CloneStrategy != "" && !slices.Contains(providers.CloneStrategies, p.CloneStrategy):
				t.Fatalf("row %d (%s) has clone strategy %q", i, p.Name, p.CloneStrategy)
			}
		}
		first := table[0]
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fuzz"},
			Provisioner: first.Provisioner, Parameters: maps.Clone(first.Parameters)}
		got, ok := table.Match(sc)
		if !ok {
			t.Fatalf("no profile matches a class made from the first row %+v", first)
		}
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("a class made from the first row %+v gets %+v", first, got)
		}
	})
}

// fuzzTimeout is how long one input may run, seed inputs under the race detector included.
const fuzzTimeout = 10 * time.Second

// fuzzDeadline makes one input that runs longer than d crash the fuzzing process, which
// then keeps the input as a crasher: Go's fuzzer does not notice a hang by itself (the
// first bug FuzzDecodeQuantity found was a quantity that took hours to parse).
func fuzzDeadline(d time.Duration, input any) (stop func() bool) {
	return time.AfterFunc(d, func() { panic(fmt.Sprintf("one input ran for over %v: %.200q", d, input)) }).Stop
}

// FuzzEffective computes the effective settings of classes with arbitrary annotations
// (seeds: the SC-V3 fixtures' values). It never panics; what it returns is always valid
// (a CDI clone strategy or none, access modes that validate and survive their own
// annotation form), and an invalid annotation is reported, never used.
func FuzzEffective(f *testing.F) {
	for _, seed := range [][5]string{
		{"lvm.driver.harvesterhci.io", "", "copy", `{"Block":["ReadWriteOnce"]}`, "0.055"},
		{"driver.longhorn.io", "v1", "csi-clone", "", "1"},
		{"rbd.csi.ceph.com", "", "rsync", `{"Block":[]}`, "1.0"},
		{"x", "", "", `{"Block":["ReadWriteOnce"],"Block":["ReadWriteMany"]}`, "5.5%"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4])
	}
	f.Fuzz(func(t *testing.T, provisioner, engine, clone, accessModes, overhead string) {
		defer fuzzDeadline(fuzzTimeout, []string{provisioner, engine, clone, accessModes, overhead})()
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fuzz", Annotations: map[string]string{
			harvester.AnnClassCloneStrategy: clone, harvester.AnnClassAccessModes: accessModes, harvester.AnnClassFilesystemOverhead: overhead}},
			Provisioner: provisioner, Parameters: map[string]string{"dataEngine": engine}}
		p, _ := providers.Builtins(providers.BehaviourOf(providers.Newest())).Match(sc)
		s, errs := providers.Effective(sc, p)
		if s.CloneStrategy != "" && !slices.Contains(providers.CloneStrategies, s.CloneStrategy) {
			t.Fatalf("effective clone strategy %q", s.CloneStrategy)
		}
		if s.AccessModes != nil {
			again, err := providers.ParseAccessModes(s.AccessModes.String())
			if err != nil || !reflect.DeepEqual(again, s.AccessModes) {
				t.Fatalf("access modes %v do not survive their annotation form: %v", s.AccessModes, err)
			}
		}
		if _, err := providers.ParseAccessModes(accessModes); err != nil && providers.AcceptsClassSettings(sc) && len(errs) == 0 {
			t.Fatalf("invalid access modes %q were not reported", accessModes)
		}
		if providers.ValidFilesystemOverhead(overhead) != nil && s.FilesystemOverhead != "" {
			t.Fatalf("invalid overhead %q was used", overhead)
		}
	})
}
