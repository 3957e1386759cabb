package admit

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/json"
)

// Decode reads an object's JSON into a Go type the way the API server does: field names
// are case-sensitive and unknown fields are ignored (they stay in the raw JSON that patches
// apply to). A value of the wrong type is an error that names the field, and so is a
// quantity too costly to parse (see costlyQuantity).
//
// Two decoders share the work (BENCHMARKS.md §7 has the measurements behind it). The fast
// one, go-json-experiment/json (encoding/json/v2), reads in one pass what the reference one,
// sigs.k8s.io/json (the API server's case-sensitive encoding/json), reads in two (it
// validates the whole document first): 2.2 times faster on a VM. Only when the fast decoder
// refuses does the reference decoder run, on a zeroed value: its answer, error text
// included, is the one returned, so a DECODE denial reads exactly as before and an input
// only the reference decoder accepts is still accepted. FuzzDecodeMatchesReference checks
// that whatever the fast decoder accepts, the reference one accepts with the same value.
func Decode(raw []byte, into any) error {
	if len(raw) == 0 {
		return fmt.Errorf("no object in the request")
	}
	if !referenceOnly.Load() && FastUnmarshal(raw, into) == nil {
		return nil
	}
	reflect.ValueOf(into).Elem().SetZero()
	if field := costlyQuantity(raw); field != "" {
		return errors.New(field)
	}
	if err := ReferenceUnmarshal(raw, into); err != nil {
		if field := badQuantity(raw); field != "" {
			return fmt.Errorf("%s: %w", field, err)
		}
		return err
	}
	return nil
}

// fastOptions make encoding/json/v2 read JSON as ReferenceUnmarshal does. Case-sensitive
// names and ignored unknown members are v2's defaults; the two jsontext options keep v1's
// tolerance of a repeated name (the last one wins) and of invalid UTF-8 (read as U+FFFD):
// objects from the API server have neither, files given to `check` may. An untyped value
// (`any`, read only by SP-M1) is handed to the reference decoder, which keeps integers as
// int64 where v2 makes every number a float64. A quantity is parsed only when it is within
// the bounds of costlyQuantity; one that is not fails the fast decode, and Decode's
// reference path then refuses it by name. Only the quantities of the fields a rule decodes
// are looked at, where the reference path has to scan the whole object first.
var fastOptions = jsonv2.JoinOptions(
	jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true),
	jsonv2.WithUnmarshalers(jsonv2.JoinUnmarshalers(
		jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, v *any) error {
			raw, err := dec.ReadValue()
			if err != nil {
				return err
			}
			return ReferenceUnmarshal(raw, v)
		}),
		jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, q *resource.Quantity) error {
			raw, err := dec.ReadValue()
			if err != nil {
				return err
			}
			if mayHoldCostlyQuantity(raw) {
				return errCostlyQuantity
			}
			return q.UnmarshalJSON(raw)
		}),
	)),
)

// referenceOnly makes Decode use the reference decoder alone (UseReferenceDecoder).
var referenceOnly atomic.Bool

// UseReferenceDecoder makes Decode use only the reference decoder until restore is called.
// It is for tests that hold the rules' answers with both decoders to be the same
// (FuzzRulesDecode); it affects every Decode in the process.
func UseReferenceDecoder() (restore func()) {
	referenceOnly.Store(true)
	return func() { referenceOnly.Store(false) }
}

var errCostlyQuantity = errors.New("a quantity beyond the bounds of costlyQuantity")

// FastUnmarshal decodes raw into into with encoding/json/v2 (go-json-experiment/json). Its
// errors are not the API server's: Decode returns ReferenceUnmarshal's instead.
func FastUnmarshal(raw []byte, into any) error { return jsonv2.Unmarshal(raw, into, fastOptions) }

// ReferenceUnmarshal decodes raw into into as the API server does (sigs.k8s.io/json,
// case-sensitive, integers kept as int64 in untyped values).
func ReferenceUnmarshal(raw []byte, into any) error {
	return json.UnmarshalCaseSensitivePreserveInts(raw, into)
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

// Bounds of the quantities Decode parses. resource.ParseQuantity multiplies a decimal
// exponent out when it rounds (1e-99999999 takes a minute; exponents past int32 wrap, and
// -1e999999999999999 takes hours) and reads long digit strings in quadratic time, and a
// typed decode parses every quantity of an object, including those of VMs and DataVolumes
// that the API server stores unparsed. No real size comes near these bounds.
const (
	maxQuantityExponent = 1000
	maxQuantityDigits   = 1000
)

// costlyQuantity names the first JSON string or number that is a quantity beyond those
// bounds. The type of each field is not known here, so such a value is refused wherever it
// is. A scan of the bytes spares the extra decode to objects that hold a long run of
// digits or a long exponent, which real objects almost never do.
func costlyQuantity(raw []byte) string {
	if !mayHoldCostlyQuantity(raw) {
		return ""
	}
	dec := stdjson.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keeps a number's text: as a float64, 1e-99999999 would read as 0
	var doc any
	if dec.Decode(&doc) != nil {
		return "" // the decode proper says what is wrong
	}
	var walk func(v any, path string) string
	walk = func(v any, path string) string {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				if f := walk(v[k], path+"."+k); f != "" {
					return f
				}
			}
		case []any:
			for i, child := range v {
				if f := walk(child, fmt.Sprintf("%s[%d]", path, i)); f != "" {
					return f
				}
			}
		case string:
			return costlyQuantityText(path, strings.TrimSpace(v))
		case stdjson.Number:
			return costlyQuantityText(path, string(v))
		}
		return ""
	}
	return strings.TrimPrefix(walk(doc, ""), ".")
}

// HoldsCostlyQuantity reports whether raw holds, anywhere, a number or string beyond the
// bounds of a quantity. The reference path of Decode refuses such an object; the fast path
// only when the value is in a quantity field of the type decoded into.
func HoldsCostlyQuantity(raw []byte) bool { return costlyQuantity(raw) != "" }

// costlyQuantityText describes s at path when it is a number with more digits or a larger
// decimal exponent than a quantity may have, and is "" otherwise.
func costlyQuantityText(path, s string) string {
	num := strings.TrimLeft(s, "+-")
	digits := strings.IndexFunc(num, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if digits < 0 {
		digits = len(num)
	}
	if digits == 0 {
		return ""
	}
	if digits > maxQuantityDigits {
		return fmt.Sprintf("%s is a number of %d characters, more than the %d a quantity may have", path, digits, maxQuantityDigits)
	}
	if suffix := num[digits:]; len(suffix) > 1 && (suffix[0] == 'e' || suffix[0] == 'E') {
		exp, err := strconv.ParseInt(suffix[1:], 10, 64)
		if errors.Is(err, strconv.ErrRange) || (err == nil && (exp > maxQuantityExponent || exp < -maxQuantityExponent)) {
			if len(s) > 40 {
				s = s[:40] + "..."
			}
			return fmt.Sprintf("%s is %q, a quantity whose exponent is beyond ±%d", path, s, maxQuantityExponent)
		}
	}
	return ""
}

// mayHoldCostlyQuantity reports whether raw has a run of more than maxQuantityDigits digits
// and dots, or a number token (one that starts after a quote, a JSON delimiter, a space or a
// sign) whose exponent marker is followed by more than 3 digits that end the token. Tokens
// inside identifiers, such as "…7f3c9a1e-0001-…" in a UID, are not numbers.
func mayHoldCostlyQuantity(raw []byte) bool {
	run, token := 0, false
	for i, c := range raw {
		switch {
		case c >= '0' && c <= '9' || c == '.':
			if run == 0 {
				token = i == 0 || startsToken(raw[i-1])
			}
			if run++; run > maxQuantityDigits {
				return true
			}
		case (c == 'e' || c == 'E') && run > 0 && token:
			j := i + 1
			if j < len(raw) && (raw[j] == '+' || raw[j] == '-') {
				j++
			}
			k := j
			for k < len(raw) && raw[k] >= '0' && raw[k] <= '9' {
				k++
			}
			if k-j > 3 && (k == len(raw) || endsToken(raw[k])) {
				return true
			}
			run = 0
		default:
			run = 0
		}
	}
	return false
}

func startsToken(c byte) bool {
	return c == '"' || c == ':' || c == ',' || c == '[' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '+' || c == '-'
}

func endsToken(c byte) bool {
	return c == '"' || c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
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

// Decode decodes raw into obj, or records the denial that says what did not parse. The
// first object decoded is the one SetAnnotation patches: every mutator decodes the
// request's object before the old one.
func (r *Result) Decode(what string, raw []byte, obj any) bool {
	if err := Decode(raw, obj); err != nil {
		r.Deny(RuleDecode, "%s does not parse: %v", what, err)
		return false
	}
	if r.decoded == nil {
		r.decoded = raw
	}
	return true
}

// scanners are the decoders of lacksMetadata, reused: a new one allocates its state.
var scanners = sync.Pool{New: func() any { return jsontext.NewDecoder(&bytes.Buffer{}) }}

// lacksMetadata reports whether an object has no metadata object (absent or null; the
// last of repeated names counts, as in a decode). It reads the object's top-level names
// with jsontext and skips their values unread: decoding the object again cost a DataVolume
// review 2.3 µs. TestLacksMetadata holds it to the decode it replaced.
func lacksMetadata(raw []byte) bool {
	// A decoder reads a bytes.Buffer's bytes in place; its own state is reused.
	dec := scanners.Get().(*jsontext.Decoder)
	defer func() { dec.Reset(&bytes.Buffer{}); scanners.Put(dec) }() // drop the reference to raw
	dec.Reset(bytes.NewBuffer(raw), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	switch tok, err := dec.ReadToken(); {
	case err == nil && tok.Kind() == 'n':
		return true // null reads as an object without metadata
	case err != nil || tok.Kind() != '{':
		return false
	}
	lacks := true
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return false
		}
		if name.String() == "metadata" {
			lacks = dec.PeekKind() == 'n'
		}
		if dec.SkipValue() != nil {
			return false
		}
	}
	return lacks
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
