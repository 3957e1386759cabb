package webhook

import (
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hcistorage/storage-webhook/admit"
)

// Decision is what the API server would decide for one object: every matching mutating
// rule, then every matching validating rule on the mutated object.
type Decision struct {
	Allowed  bool
	Message  string
	Warnings []string
	Rules    []string
	Patch    []admit.Op
	Object   json.RawMessage // the object after mutation
	// Audit are the results the rollout only records (rules in Audit: a denial, or the
	// would-be patch); Skipped those an exception skipped, each naming it (RecordTexts).
	Audit, Skipped []string
}

// Chain finds a kind's mutating and validating hooks (either may be nil).
func Chain(hooks []*Hook, gk schema.GroupKind) (mutating, validating *Hook) {
	for _, h := range hooks {
		if h.Route.Group != gk.Group || h.Route.Kind != gk.Kind {
			continue
		}
		if h.Mutating() {
			mutating = h
		} else {
			validating = h
		}
	}
	return mutating, validating
}

// Evaluate runs the mutating then the validating hook of the request's kind, as the API
// server would. An error is an internal failure (a rule panicked, a patch did not apply),
// never a policy decision.
func Evaluate(mutating, validating *Hook, req admit.Request) (*Decision, error) {
	var all admit.Result
	d := &Decision{Object: json.RawMessage(req.Object)}
	if mutating != nil {
		res, err := mutating.Run(&req)
		if err != nil {
			return nil, err
		}
		all = res
		if res.Allowed() && len(res.Patch) > 0 {
			if d.Object, err = ApplyPatch(req.Object, res.Patch); err != nil {
				return nil, err
			}
			req.Object = d.Object
		}
	}
	if validating != nil && all.Allowed() {
		res, err := validating.Run(&req)
		if err != nil {
			return nil, err
		}
		all.Denials = append(all.Denials, res.Denials...)
		all.Warnings = append(all.Warnings, res.Warnings...)
		all.Recorded = append(all.Recorded, res.Recorded...)
	}
	d.Allowed, d.Message, d.Warnings, d.Rules, d.Patch = all.Allowed(), all.Message(), all.WarningTexts(), all.Rules(), all.Patch
	d.Audit, d.Skipped = all.RecordTexts()
	if d.Patch == nil {
		d.Patch = []admit.Op{}
	}
	return d, nil
}

// ApplyPatch applies RFC 6902 operations to a JSON document.
func ApplyPatch(doc []byte, ops []admit.Op) ([]byte, error) {
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		return nil, fmt.Errorf("patch does not decode: %w", err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		return nil, fmt.Errorf("patch does not apply: %w", err)
	}
	return out, nil
}
