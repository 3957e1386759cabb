package loadtest

import "testing"

// The soak and the load harness refuse fixtures whose request UIDs collide (the answers
// could not be told apart); this catches a copied fixture in make test instead of in CI's
// soak step.
func TestTheAdmissionFixturesHaveDistinctRequestUIDs(t *testing.T) {
	reviews, err := Reviews("../../testdata/admission")
	if err != nil {
		t.Fatal(err)
	}
	if len(reviews) < 100 {
		t.Fatalf("read %d fixtures, want the whole testdata/admission tree", len(reviews))
	}
}
