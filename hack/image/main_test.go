package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hcistorage/storage-webhook/internal/testbin"
)

const testRef = "docker.io/hcistorage/storage-webhook:v0.1.0"

// TestImageArchive builds the real webhook binary once, packs it, and checks
// the archive the way a runtime would read it.
func TestImageArchive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the packed binary is a linux binary; the test runs it")
	}
	dir := t.TempDir()
	bin := testbin.Path(t)

	created := "2025-01-02T03:04:05Z"
	archive := filepath.Join(dir, "image.tar")
	var stdout bytes.Buffer
	if err := run([]string{"-binary", bin, "-out", archive, "-ref", testRef, "-created", created}, &stdout); err != nil {
		t.Fatalf("run: %v", err)
	}
	desc, img := openArchive(t, archive)

	t.Run("prints the digest and the path", func(t *testing.T) {
		want := "digest " + desc.Digest.String() + "\nwrote " + archive
		if !strings.HasPrefix(stdout.String(), want) {
			t.Errorf("stdout = %q, want prefix %q", stdout.String(), want)
		}
	})

	t.Run("index names the image for containerd, docker and OCI tools", func(t *testing.T) {
		if got := desc.Annotations[annotationImageName]; got != testRef {
			t.Errorf("%s = %q, want %q", annotationImageName, got, testRef)
		}
		if got := desc.Annotations[annotationRefName]; got != "v0.1.0" {
			t.Errorf("%s = %q, want v0.1.0", annotationRefName, got)
		}
		if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != runtime.GOARCH {
			t.Errorf("platform = %+v, want linux/%s", desc.Platform, runtime.GOARCH)
		}
	})

	t.Run("config runs the webhook as non-root", func(t *testing.T) {
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.Config
		for _, check := range []struct {
			field     string
			got, want any
		}{
			{"User", c.User, nonRoot},
			{"Entrypoint", c.Entrypoint, []string{"/storage-webhook"}},
			{"Cmd", c.Cmd, []string{"serve"}},
			{"WorkingDir", c.WorkingDir, "/"},
			{"OS", cfg.OS, "linux"},
			{"Architecture", cfg.Architecture, runtime.GOARCH},
			{"ExposedPorts", sortedKeys(c.ExposedPorts), []string{"8080/tcp", "8443/tcp"}},
			{"source label", c.Labels["org.opencontainers.image.source"], "https://github.com/hcistorage/storage-webhook"},
			{"title label", c.Labels["org.opencontainers.image.title"], "storage-webhook"},
			{"Created", cfg.Created.UTC().Format(time.RFC3339), created},
		} {
			if !reflect.DeepEqual(check.got, check.want) {
				t.Errorf("%s = %v, want %v", check.field, check.got, check.want)
			}
		}
	})

	t.Run("manifest, config and layer use OCI media types", func(t *testing.T) {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != types.OCIManifestSchema1 || desc.MediaType != types.OCIManifestSchema1 {
			t.Errorf("manifest media type = %s (index says %s), want %s", m.MediaType, desc.MediaType, types.OCIManifestSchema1)
		}
		if m.Config.MediaType != types.OCIConfigJSON {
			t.Errorf("config media type = %s, want %s", m.Config.MediaType, types.OCIConfigJSON)
		}
		if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
			t.Errorf("layers = %+v, want one %s", m.Layers, types.OCILayer)
		}
	})

	t.Run("the only layer holds just the read-only root-owned binary, and it runs", func(t *testing.T) {
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 1 {
			t.Fatalf("%d layers, want 1", len(layers))
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		tr := tar.NewReader(rc)
		hdr, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != binaryName || hdr.Typeflag != tar.TypeReg || hdr.Mode != 0o555 || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("entry %q type %c mode %o uid %d gid %d, want %q regular 555 0 0",
				hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, binaryName)
		}
		extracted := filepath.Join(t.TempDir(), binaryName)
		writeFile(t, extracted, tr, 0o555)
		if next, err := tr.Next(); err != io.EOF {
			t.Errorf("second entry %v (err %v), want only %q", next, err, binaryName)
		}

		out, err := exec.Command(extracted, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s version: %v\n%s", binaryName, err, out)
		}
		if !strings.HasPrefix(string(out), "storage-webhook ") {
			t.Errorf("version output %q, want prefix %q", out, "storage-webhook ")
		}
	})

	t.Run("same inputs give a byte-identical archive", func(t *testing.T) {
		again := filepath.Join(t.TempDir(), "again.tar")
		if err := run([]string{"-binary", bin, "-out", again, "-ref", testRef, "-created", created}, io.Discard); err != nil {
			t.Fatalf("second run: %v", err)
		}
		first, err := os.ReadFile(archive)
		if err != nil {
			t.Fatal(err)
		}
		second, err := os.ReadFile(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			d2, _ := openArchive(t, again)
			t.Errorf("archives differ (digests %s and %s)", desc.Digest, d2.Digest)
		}
	})
}

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
