// Command image packs the static storage-webhook binary into an OCI image
// archive without Docker:
//
//	go run ./hack/image -binary bin/storage-webhook -out bin/storage-webhook-image.tar \
//	    -ref docker.io/hcistorage/storage-webhook:v0.1.0
//
// The image is FROM scratch with a single layer holding /storage-webhook and
// runs as 65532:65532. The output is an OCI image layout in a tar file, which
// `ctr -n k8s.io images import`, `podman load` and `docker load` (>= 25) accept.
//
// The output is reproducible: every timestamp comes from -created (default:
// $SOURCE_DATE_EPOCH, else the Unix epoch), so the same binary and flags give a
// byte-identical tarball and the same image digest.
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// binaryName is the binary's file name in the layer; the entrypoint is "/"+binaryName.
	binaryName = "storage-webhook"
	// nonRoot is the distroless "nonroot" user and group.
	nonRoot = "65532:65532"

	// annotationRefName and annotationImageName name the image in index.json:
	// the OCI annotation holds the tag, the containerd one the full reference
	// (containerd and docker load name the image from the latter).
	annotationRefName   = "org.opencontainers.image.ref.name"
	annotationImageName = "io.containerd.image.name"
)

func main() {
	err := run(os.Args[1:], os.Stdout)
	var usage usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "image: %v (see -h)\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

// usageError marks a bad invocation (exit status 2) as opposed to a failed build (1).
type usageError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// options are the parsed flags.
type options struct {
	binary  string
	out     string
	ref     name.Tag
	created time.Time
}

// run parses args, writes the image archive and prints its digest and path to stdout.
func run(args []string, stdout io.Writer) error {
	opts, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	digest, err := writeArchive(opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "digest %s\nwrote %s (%s)\n", digest, opts.out, opts.ref)
	return nil
}

func parseFlags(args []string, stdout io.Writer) (options, error) {
	flags := flag.NewFlagSet("image", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // errors are reported once, by main
	binary := flags.String("binary", "", "static linux `path` of the storage-webhook binary (required)")
	out := flags.String("out", "", "`path` of the OCI archive to write (required)")
	ref := flags.String("ref", "", "full image `reference` with registry and tag, e.g. docker.io/hcistorage/storage-webhook:v0.1.0 (required)")
	created := flags.String("created", "", "image creation `time`, RFC3339 (default: $SOURCE_DATE_EPOCH, else 1970-01-01T00:00:00Z)")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: image -binary PATH -out PATH -ref REGISTRY/REPO:TAG [-created RFC3339]")
			flags.SetOutput(stdout)
			flags.PrintDefaults()
			return options{}, err
		}
		return options{}, usageError{err}
	}
	switch {
	case flags.NArg() > 0:
		return options{}, usagef("unexpected argument %q", flags.Arg(0))
	case *binary == "":
		return options{}, usagef("-binary is required")
	case *out == "":
		return options{}, usagef("-out is required")
	case *ref == "":
		return options{}, usagef("-ref is required")
	}
	// Strict: the name lands verbatim in containerd's image store, where kubelet
	// looks up the fully qualified form (docker.io/..., not hcistorage/...).
	tag, err := name.NewTag(*ref, name.StrictValidation)
	if err != nil {
		return options{}, usagef("-ref %q: want registry/repository:tag: %v", *ref, err)
	}
	when, err := createdTime(*created, os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return options{}, usageError{err}
	}
	return options{binary: *binary, out: *out, ref: tag, created: when}, nil
}

// createdTime resolves the image timestamp from -created, else
// SOURCE_DATE_EPOCH (seconds), else the Unix epoch. It is whole seconds in UTC.
func createdTime(flagValue, sourceDateEpoch string) (time.Time, error) {
	switch {
	case flagValue != "":
		t, err := time.Parse(time.RFC3339, flagValue)
		if err != nil {
			return time.Time{}, fmt.Errorf("-created %q: want RFC3339, e.g. 2025-01-02T15:04:05Z", flagValue)
		}
		return t.UTC().Truncate(time.Second), nil
	case sourceDateEpoch != "":
		secs, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since the Unix epoch", sourceDateEpoch)
		}
		return time.Unix(secs, 0).UTC(), nil
	default:
		return time.Unix(0, 0).UTC(), nil
	}
}

// writeArchive builds the image, writes it as an OCI layout into a temporary
// directory and tars that directory to opts.out. It returns the manifest digest.
func writeArchive(opts options) (v1.Hash, error) {
	img, err := buildImage(opts.binary, opts.created)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image digest: %w", err)
	}

	dir, err := os.MkdirTemp("", "storage-webhook-image-*")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("OCI layout: %w", err)
	}
	err = lp.AppendImage(img,
		layout.WithAnnotations(map[string]string{
			annotationRefName:   opts.ref.TagStr(),
			annotationImageName: opts.ref.String(),
		}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
	)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("OCI layout: %w", err)
	}

	// Write next to the target and rename, so a failed run leaves no half archive.
	f, err := os.CreateTemp(filepath.Dir(opts.out), ".storage-webhook-image-*.tar")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := tarDir(f, dir, opts.created); err != nil {
		f.Close()
		return v1.Hash{}, fmt.Errorf("write %s: %w", opts.out, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return v1.Hash{}, err
	}
	if err := f.Close(); err != nil {
		return v1.Hash{}, err
	}
	if err := os.Rename(f.Name(), opts.out); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// buildImage returns the scratch image holding the binary at /storage-webhook,
// with OCI media types and every timestamp set to created.
func buildImage(binaryPath string, created time.Time) (v1.Image, error) {
	bin, err := os.ReadFile(binaryPath)
	if err != nil {
		return nil, err
	}
	if err := checkStatic(binaryPath, bin); err != nil {
		return nil, err
	}

	// The layer is an in-memory tar with the one file: root-owned, read-only.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     binaryName,
		Mode:     0o555,
		Size:     int64(len(bin)),
		ModTime:  created,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerTar := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}

	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "COPY " + binaryName + " /" + binaryName + " # hack/image",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}

	// Start from the appended image's config so RootFS and History stay in step with the layer.
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg.Created = v1.Time{Time: created}
	cfg.OS = "linux"
	cfg.Architecture = runtime.GOARCH
	cfg.Config = v1.Config{
		User:         nonRoot,
		Entrypoint:   []string{"/" + binaryName},
		Cmd:          []string{"serve"},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{"8443/tcp": {}, "8080/tcp": {}},
		Labels: map[string]string{
			"org.opencontainers.image.source": "https://github.com/hcistorage/storage-webhook",
			"org.opencontainers.image.title":  binaryName,
		},
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return img, nil
}

// checkStatic fails unless bin is an ELF executable without a dynamic
// loader: scratch has no libc, and a dynamically linked binary would fail
// there with a misleading "no such file or directory".
func checkStatic(path string, bin []byte) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("-binary %s: not an ELF executable: %w", path, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("-binary %s is dynamically linked; build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// tarDir writes the regular files and directories under root to w as a tar
// stream that depends only on their names and contents: entries in lexical
// order, root-owned, fixed modes and mtime.
func tarDir(w io.Writer, root string, mtime time.Time) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			return tw.WriteHeader(hdr)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: not a regular file", rel)
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, info.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
