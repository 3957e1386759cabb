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
	m := regexp.MustCompile(`(?m)^INTEGRATION_PKGS := (.+)$`).FindSubmatch(makefile)
	if m == nil {
		t.Fatal("Makefile has no INTEGRATION_PKGS line")
	}
	pkgs := strings.Fields(string(m[1]))
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
			t.Errorf("%s is tagged integration but INTEGRATION_PKGS (%s) does not name ./%s", rel, m[1], dir)
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
