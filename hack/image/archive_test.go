//go:build integration

// Run by `make integration` (.ci/run runs it), without the race detector (the Makefile says
// why): it packs the built binary (STORAGE_WEBHOOK_BIN, or one testbin builds).

package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hcistorage/storage-webhook/internal/testbin"
)

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
