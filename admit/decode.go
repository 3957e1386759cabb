package admit

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/json"
)

// Decode reads an object's JSON into a Go type the way the API server does: field names
// are case-sensitive and unknown fields are ignored (they stay in the raw JSON that patches
// apply to). A value of the wrong type is an error that names the field.
func Decode(raw []byte, into any) error {
	if len(raw) == 0 {
		return fmt.Errorf("no object in the request")
	}
	if err := json.UnmarshalCaseSensitivePreserveInts(raw, into); err != nil {
		if field := badQuantity(raw); field != "" {
			return fmt.Errorf("%s: %w", field, err)
		}
		return err
	}
	return nil
}

// badQuantity finds the first resource list entry (requests, limits, capacity) that is not
// a quantity and names it, because resource.Quantity's own error does not say where it was.
// It runs only after a decode has failed.
func badQuantity(raw []byte) string {
	var doc any
	if json.UnmarshalCaseSensitivePreserveInts(raw, &doc) != nil {
		return ""
	}
	var walk func(v any, path string) string
	walk = func(v any, path string) string {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if list, ok := child.(map[string]any); ok && (k == "requests" || k == "limits" || k == "capacity") {
					for name, q := range list {
						if !isQuantity(q) {
							return fmt.Sprintf("%s.%s.%s is %#v, not a quantity", path, k, name, q)
						}
					}
				}
				if f := walk(child, path+"."+k); f != "" {
					return f
				}
			}
		case []any:
			for i, child := range v {
				if f := walk(child, fmt.Sprintf("%s[%d]", path, i)); f != "" {
					return f
				}
			}
		}
		return ""
	}
	return strings.TrimPrefix(walk(doc, ""), ".")
}

// isQuantity accepts what resource.Quantity's UnmarshalJSON accepts: a string or a number.
func isQuantity(v any) bool {
	switch v.(type) {
	case string, int64, float64:
		_, err := resource.ParseQuantity(fmt.Sprint(v))
		return err == nil
	}
	return false
}

// Decode decodes raw into obj, or records the denial that says what did not parse.
func (r *Result) Decode(what string, raw []byte, obj any) bool {
	if err := Decode(raw, obj); err != nil {
		r.Deny(RuleDecode, "%s does not parse: %v", what, err)
		return false
	}
	return true
}

// Quantity renders a byte count the way people read sizes: binary units when exact
// (10Gi), else the plain number of bytes.
func Quantity(bytes int64) string {
	return resource.NewQuantity(bytes, resource.BinarySI).String()
}

// RuleDecode is the rule ID of a denial for an object that does not parse as its kind.
const RuleDecode = "DECODE"

// ObjectName is how messages name an object: "namespace/name", with the request's
// namespace when the object omits it, and "generateName*" for names still to be generated.
func ObjectName(req *Request, name, generateName string) string {
	if name == "" {
		name = req.Name
	}
	if name == "" && generateName != "" {
		name = generateName + "*"
	}
	if req.Namespace == "" {
		return name
	}
	return req.Namespace + "/" + name
}
