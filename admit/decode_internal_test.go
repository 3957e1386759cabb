package admit

import "testing"

// TestLacksMetadata: the top-level scan answers as decoding into struct{Metadata *struct{}}
// does, for every shape of metadata and document.
func TestLacksMetadata(t *testing.T) {
	for _, raw := range []string{
		`{}`, `{"metadata":null}`, `{"metadata":{}}`, `{"metadata":{"name":"a"},"spec":{}}`,
		`{"metadata":{},"metadata":null}`, `{"metadata":null,"metadata":{}}`, `{"meta\u0064ata":{}}`,
		`{"Metadata":{}}`, `{"spec":{"metadata":{}}}`, `{"metadata":5}`, `{"metadata":[]}`,
		`null`, `[]`, `"x"`, `{"a":[1,{"metadata":{}}],"metadata":{"x":[null]}}`, " { \"metadata\" : { } } ",
	} {
		var obj struct {
			Metadata *struct{} `json:"metadata"`
		}
		want := ReferenceUnmarshal([]byte(raw), &obj) == nil && obj.Metadata == nil
		if got := lacksMetadata([]byte(raw)); got != want {
			t.Errorf("lacksMetadata(%s) = %v, want %v", raw, got, want)
		}
	}
}
