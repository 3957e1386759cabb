package rollout

import (
	"path"
	"testing"
)

// TestGlobsMatchAsPathMatch: the compiled forms (literal, "*", prefix*, *suffix) answer what
// path.Match answers, "/" included, for every pattern and name of the table.
func TestGlobsMatchAsPathMatch(t *testing.T) {
	patterns := []string{"team-a", "*", "team-*", "*-legacy", "team-?", "t[ae]am-*", "team-*-db", `te\am`, "system:serviceaccount:backup:*", "**"}
	names := []string{"", "team-a", "team-b", "team-", "team-a-legacy", "prod-legacy", "-legacy", "team-a-db", "tam-x", "team", "team-a/b", "a/-legacy",
		"system:serviceaccount:backup:operator", "system:serviceaccount:backup:", "system:serviceaccount:other:x", "team-ab"}
	for _, p := range patterns {
		gs, err := compileGlobs([]string{p})
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		for _, n := range names {
			want, _ := path.Match(p, n)
			if got := gs.match(n); got != want {
				t.Errorf("%q against %q: %v, path.Match says %v", p, n, got, want)
			}
		}
	}
	if _, err := compileGlobs([]string{"team-["}); err == nil {
		t.Error("a bad pattern compiled")
	}
}
