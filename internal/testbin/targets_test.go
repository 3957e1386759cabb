package testbin

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// TestMakeIntegrationRunsEveryIntegrationFile: a test file tagged `integration` is left out
// of make test, so the Makefile's INTEGRATION_PKGS must name its package (or a ./dir/...
// above it), and the file must say which target runs it.
func TestMakeIntegrationRunsEveryIntegrationFile(t *testing.T) {
	root := "../.."
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	list := makeVar(t, makefile, "INTEGRATION_PKGS")
	pkgs := strings.Fields(list)
	runs := func(dir string) bool {
		return slices.ContainsFunc(pkgs, func(p string) bool {
			p = strings.TrimPrefix(p, "./")
			if tree, ok := strings.CutSuffix(p, "/..."); ok {
				return dir == tree || strings.HasPrefix(dir, tree+"/")
			}
			return dir == p
		})
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		tag, err := buildTag(path)
		if err != nil || tag != "integration" {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		files = append(files, rel)
		if dir := filepath.ToSlash(filepath.Dir(rel)); !runs(dir) {
			t.Errorf("%s is tagged integration but INTEGRATION_PKGS (%s) does not name ./%s", rel, list, dir)
		}
		if src, _ := os.ReadFile(path); !bytes.Contains(src, []byte("make integration")) {
			t.Errorf("%s does not say it is run by `make integration`", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("found no file tagged integration: is the walk reading the repository?")
	}
}

// makeVar is the value of the Makefile's `NAME := value` line, with the $(OTHER) variables
// it names replaced by their own `:=` values.
func makeVar(t *testing.T, makefile []byte, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + ` := (.+)$`).FindSubmatch(makefile)
	if m == nil {
		t.Fatalf("Makefile has no %s := line", name)
	}
	return regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(string(m[1]), func(ref string) string {
		return makeVar(t, makefile, ref[2:len(ref)-1])
	})
}

// buildTag is the expression of a Go file's //go:build line ("" without one).
func buildTag(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if expr, ok := strings.CutPrefix(line, "//go:build "); ok {
			return expr, nil
		}
		if line != "" && !strings.HasPrefix(line, "//") {
			return "", nil // the package clause: build constraints come before it
		}
	}
	return "", s.Err()
}

// TestHelmBuildReusesTheTestCompile: hack/helmbin builds helm with make test's flags, and a
// package is compiled once only if every module below it is at the same version in both
// builds. A module hack/helmbin/go.mod requires at a version older than go.mod's (helm's
// release pins an older client-go, say) makes the chart tests compile that module, and all
// that imports it, a second time: 24 MB of k8s.io source, minutes on an empty build cache.
// Helm requiring a newer version than ours is left as it is (lowering it is not possible).
func TestHelmBuildReusesTheTestCompile(t *testing.T) {
	read := func(path string) map[string]string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := modfile.ParseLax(path, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		versions := map[string]string{}
		for _, r := range f.Require {
			versions[r.Mod.Path] = r.Mod.Version
		}
		return versions
	}
	service, helm := read("../../go.mod"), read("../../hack/helmbin/go.mod")
	compared := 0
	for path, want := range service {
		got, ok := helm[path]
		if !ok {
			continue
		}
		compared++
		if semver.Compare(got, want) < 0 {
			t.Errorf("hack/helmbin/go.mod requires %s %s, go.mod %s: raise it (cd hack/helmbin && go get %s@%s && go mod tidy)",
				path, got, want, path, want)
		}
	}
	if compared < 10 {
		t.Fatalf("compared %d modules required by both go.mod files: are they read?", compared)
	}
}
