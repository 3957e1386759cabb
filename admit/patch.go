package admit

import (
	"slices"
	"strings"

	"github.com/hcistorage/storage-webhook/rollout"
)

// Op is one RFC 6902 operation, tagged with the rule that made it. Mutations are always
// explicit add/replace operations on the paths the SPEC names, never a diff of a
// re-serialised object, so fields our Go types do not know are never touched.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
	Rule  string `json:"-"`
	// Action and Exception are what the rollout decided for the rule (Result.Apply).
	Action    rollout.Action `json:"-"`
	Exception string         `json:"-"`
}

// Pointer builds an RFC 6901 JSON pointer from unescaped tokens.
func Pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(pointerEscaper.Replace(t))
	}
	return b.String()
}

// PointerUnescape reads one RFC 6901 reference token back (what Pointer escaped).
func PointerUnescape(token string) string { return pointerUnescaper.Replace(token) }

var (
	pointerEscaper   = strings.NewReplacer("~", "~0", "/", "~1")
	pointerUnescaper = strings.NewReplacer("~1", "/", "~0", "~")
)

const (
	metadataPath    = "/metadata"
	annotationsPath = "/metadata/annotations"
)

// SetAnnotation adds or replaces one annotation. current is the object's annotation map as
// decoded (nil when absent or null); the map is created with the first annotation when
// neither it nor an earlier operation of this result made it, and so is /metadata when the
// decoded object has none (the API server always sends it; a hand-made review need not).
func (r *Result) SetAnnotation(rule string, current map[string]string, key, value string) {
	if current == nil && !r.made(annotationsPath) && !r.made(metadataPath) {
		if lacksMetadata(r.decoded) {
			r.Patch = append(r.Patch, Op{Op: "add", Path: metadataPath, Value: map[string]any{"annotations": map[string]string{key: value}}, Rule: rule})
		} else {
			r.Patch = append(r.Patch, Op{Op: "add", Path: annotationsPath, Value: map[string]string{key: value}, Rule: rule})
		}
		return
	}
	op := "add"
	if _, ok := current[key]; ok {
		op = "replace"
	}
	r.Patch = append(r.Patch, Op{Op: op, Path: Pointer("metadata", "annotations", key), Value: value, Rule: rule})
}

// RestoreAnnotations sets again, on an UPDATE, each of keys that the old object had and the
// update removes (SPEC §5.8: a re-applied manifest without an annotation a mutator added
// keeps it). An annotation the update sets to another value is left to the validators.
func (r *Result) RestoreAnnotations(rule string, current, old map[string]string, keys ...string) {
	for _, key := range keys {
		was, had := old[key]
		if _, has := current[key]; had && !has {
			r.SetAnnotation(rule, current, key, was)
		}
	}
}

// SetField sets a string member of an object that exists (such as /spec): "add" when the
// current value is empty or absent, "replace" when it changes a value.
func (r *Result) SetField(rule, current, value string, tokens ...string) {
	op := "add"
	if current != "" {
		op = "replace"
	}
	r.Patch = append(r.Patch, Op{Op: op, Path: Pointer(tokens...), Value: value, Rule: rule})
}

// AddMember adds a whole member, such as /spec when it is absent or a list; "add" replaces
// a member that exists (RFC 6902 §4.1), such as a list that is empty or null.
func (r *Result) AddMember(rule string, value any, tokens ...string) {
	r.Patch = append(r.Patch, Op{Op: "add", Path: Pointer(tokens...), Value: value, Rule: rule})
}

func (r *Result) made(path string) bool {
	for _, op := range r.Patch {
		if op.Path == path {
			return true
		}
	}
	return false
}

// keep returns the operations of ops that kept marks, rebased to apply without the others:
// an operation under a member that only a dropped "add" made (an annotation added to the
// annotations map that another rule's operation created) becomes the "add" of that member,
// holding what the operation sets. Operations are otherwise left as they are, in order.
func keep(ops []Op, kept []bool) []Op {
	out := make([]Op, 0, len(ops))
	var dropped, remade []string // paths of dropped member adds, and of those a kept op made again
	for i, op := range ops {
		if !kept[i] {
			if op.Op == "add" {
				if _, isMap := op.Value.(map[string]any); isMap || isStringMap(op.Value) {
					dropped = append(dropped, op.Path)
				}
			}
			continue
		}
		for _, parent := range dropped {
			if !strings.HasPrefix(op.Path, parent+"/") || slices.Contains(remade, parent) || op.Op != "add" {
				continue
			}
			// op.Path is parent/t1/.../tn: add parent {t1: ... {tn: value}}
			tokens := strings.Split(strings.TrimPrefix(op.Path, parent+"/"), "/")
			value := op.Value
			for j := len(tokens) - 1; j >= 0; j-- {
				value = map[string]any{PointerUnescape(tokens[j]): value}
			}
			op.Path, op.Value = parent, value
			remade = append(remade, parent)
			break
		}
		out = append(out, op)
	}
	return out
}

func isStringMap(v any) bool {
	_, ok := v.(map[string]string)
	return ok
}
