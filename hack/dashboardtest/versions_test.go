package dashboardtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBuildsWithServiceVersions: every module the metrics package and the PromQL parser
// build from here that the service's go.mod also requires is at the service's version, so
// the registry checked is the one the service builds (client_golang's Go collector, for
// one, names its metrics by version) and prometheus/prometheus raised nothing. A newer
// prometheus/prometheus whose requirements are above the service's fails here.
func TestBuildsWithServiceVersions(t *testing.T) {
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	service := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && strings.Contains(f[0], ".") && strings.HasPrefix(f[1], "v") {
			service[f[0]] = f[1]
		}
	}
	// Test binaries carry no module list (debug.ReadBuildInfo), so ask go list.
	out, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}",
		"github.com/hcistorage/storage-webhook/metrics", "github.com/prometheus/prometheus/promql/parser").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	compared := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		path, version, ok := strings.Cut(line, " ")
		want, required := service[path]
		if !ok || !required || compared[path] {
			continue
		}
		compared[path] = true
		if version != want {
			t.Errorf("%s %s here, the service builds with %s", path, version, want)
		}
	}
	for _, m := range []string{"github.com/prometheus/client_golang", "github.com/prometheus/common"} {
		if !compared[m] {
			t.Errorf("%s not compared: the metrics package's modules are %q", m, out)
		}
	}
}
