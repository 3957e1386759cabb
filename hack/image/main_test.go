package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

const testRef = "docker.io/hcistorage/storage-webhook:v0.1.0"

// TestRunRejectsBadInvocations checks that bad flags are usage errors (exit 2)
// and that a binary scratch cannot run is refused before anything is written.
func TestRunRejectsBadInvocations(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	for _, tc := range []struct {
		name      string
		args      []string
		wantUsage bool
		wantErr   string
	}{
		{"missing -binary", []string{"-out", out, "-ref", testRef}, true, "-binary is required"},
		{"missing -out", []string{"-binary", notELF, "-ref", testRef}, true, "-out is required"},
		{"missing -ref", []string{"-binary", notELF, "-out", out}, true, "-ref is required"},
		{"ref without registry", []string{"-binary", notELF, "-out", out, "-ref", "hcistorage/storage-webhook:v0.1.0"}, true, "want registry/repository:tag"},
		{"ref without tag", []string{"-binary", notELF, "-out", out, "-ref", "docker.io/hcistorage/storage-webhook"}, true, "want registry/repository:tag"},
		{"created not RFC3339", []string{"-binary", notELF, "-out", out, "-ref", testRef, "-created", "yesterday"}, true, "want RFC3339"},
		{"unknown flag", []string{"-binary", notELF, "-out", out, "-ref", testRef, "-push"}, true, "-push"},
		{"stray argument", []string{"-binary", notELF, "-out", out, "-ref", testRef, "extra"}, true, `unexpected argument "extra"`},
		{"binary is not an executable", []string{"-binary", notELF, "-out", out, "-ref", testRef}, false, "not an ELF executable"},
		{"binary does not exist", []string{"-binary", filepath.Join(dir, "nope"), "-out", out, "-ref", testRef}, false, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, io.Discard)
			if err == nil {
				t.Fatal("run succeeded, want an error")
			}
			var usage usageError
			if errors.As(err, &usage) != tc.wantUsage {
				t.Errorf("usage error = %v, want %v (err: %v)", !tc.wantUsage, tc.wantUsage, err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tc.wantErr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s exists after a failed run", out)
			}
		})
	}
}

func TestCreatedTimeComesFromFlagThenSourceDateEpochThenEpoch(t *testing.T) {
	for _, tc := range []struct {
		name, flag, env string
		want            time.Time
		wantErr         bool
	}{
		{"neither: Unix epoch", "", "", time.Unix(0, 0).UTC(), false},
		{"SOURCE_DATE_EPOCH", "", "1700000000", time.Unix(1700000000, 0).UTC(), false},
		{"flag wins over SOURCE_DATE_EPOCH", "2025-01-02T03:04:05+02:00", "1700000000", time.Date(2025, 1, 2, 1, 4, 5, 0, time.UTC), false},
		{"flag drops sub-seconds", "2025-01-02T03:04:05.9Z", "", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), false},
		{"bad SOURCE_DATE_EPOCH", "", "soon", time.Time{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := createdTime(tc.flag, tc.env)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("got %v, want %v in UTC", got, tc.want)
			}
		})
	}
}

// openArchive untars an archive written by run and returns its only index
// entry and image, read back through go-containerregistry's layout reader.
func openArchive(t *testing.T, archive string) (v1.Descriptor, v1.Image) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			writeFile(t, path, tr, 0o644)
		default:
			t.Fatalf("unexpected entry %q of type %c", hdr.Name, hdr.Typeflag)
		}
	}

	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests[0], img
}

func writeFile(t *testing.T, path string, r io.Reader, mode os.FileMode) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, r); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func sortedKeys(m map[string]struct{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestDeploymentNamesTheImage: the Deployment in deploy/base runs the image `make image`
// builds, so a loaded tarball is the one the cluster starts.
func TestDeploymentNamesTheImage(t *testing.T) {
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var ref string
	for _, line := range strings.Split(string(makefile), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "IMAGE" && f[1] == "?=" {
			ref = f[2]
		}
	}
	deployment, err := os.ReadFile("../../deploy/base/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if ref == "" || !strings.Contains(string(deployment), "image: "+ref+"\n") {
		t.Errorf("deploy/base/deployment.yaml does not run the Makefile's IMAGE %q", ref)
	}
}
