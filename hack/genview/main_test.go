package main

import (
	"io"
	"strings"
	"testing"

	"github.com/hcistorage/storage-webhook/cluster"
)

// TestWritesFilesTheClusterViewLoads writes a small view and loads it as `serve --cluster`
// does: the YAML must carry every object, and the same flags must write the same files.
func TestWritesFilesTheClusterViewLoads(t *testing.T) {
	args := []string{"-pvcs", "120", "-images", "30", "-vms", "20", "-pods", "90", "-classes", "10", "-namespaces", "4", "-seed", "3"}
	var objs [2][]string
	for i, dir := range []string{t.TempDir(), t.TempDir()} {
		var out strings.Builder
		if err := run(append([]string{"-out", dir}, args...), &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		read, err := cluster.ReadManifests(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(read) != 120+30+20+90+10 {
			t.Fatalf("read %d objects back, want 270:\n%s", len(read), out.String())
		}
		if _, err := cluster.NewFiles(read); err != nil {
			t.Fatal(err)
		}
		for _, u := range read {
			b, err := u.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			objs[i] = append(objs[i], string(b))
		}
	}
	if strings.Join(objs[0], "\n") != strings.Join(objs[1], "\n") {
		t.Error("the same flags wrote different objects")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"-out", t.TempDir(), "extra"}, {"-out", t.TempDir(), "-pods", "-1"}, {"-nope"}} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
