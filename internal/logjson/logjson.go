// Package logjson formats logrus entries as logrus's JSONFormatter does, byte for byte, but
// writes them with encoding/json/v2's token encoder (jsontext) instead of encoding/json's
// reflection over a map: 2.2 µs a line against logrus's 3.6 µs (BenchmarkFormat, one run).
// TestSameAsLogrus holds the two to the same bytes.
package logjson

import (
	"bytes"
	stdjson "encoding/json"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/sirupsen/logrus"
)

// Formatter is logrus.JSONFormatter{} with its defaults: RFC 3339 time, keys sorted, HTML
// characters escaped, a field named like a standard key ("time", "msg", "level") renamed
// "fields.<key>". Caller reporting is not supported (serve does not turn it on).
type Formatter struct{}

// encodeOptions escape as encoding/json does (<, >, &, U+2028 and U+2029; invalid UTF-8 as
// U+FFFD); values other than strings, booleans and errors are marshalled with encoding/json's
// rules.
var encodeOptions = jsonv2.JoinOptions(jsonv1.DefaultOptionsV1(),
	jsontext.EscapeForHTML(true), jsontext.EscapeForJS(true), jsontext.AllowInvalidUTF8(true))

// encoders are reused: a new one allocates its buffers for each line.
var encoders = sync.Pool{New: func() any { return jsontext.NewEncoder(io.Discard) }}

// clashPrefix renames a field named like a standard key.
const clashPrefix = "fields."

var standardKeys = []string{logrus.FieldKeyTime, logrus.FieldKeyMsg, logrus.FieldKeyLevel}

// Format writes one entry as one line of JSON.
func (Formatter) Format(e *logrus.Entry) ([]byte, error) {
	// The keys are sorted as strings (sorting key-value pairs with a comparison closure
	// cost 1.6 µs a line), and each value is looked up by its key.
	keys := make([]string, 0, len(e.Data)+len(standardKeys))
	for k := range e.Data {
		if slices.Contains(standardKeys, k) {
			k = clashPrefix + k
		}
		keys = append(keys, k)
	}
	keys = append(keys, standardKeys...)
	slices.Sort(keys)
	keys = slices.Compact(keys) // "msg" renamed, and "fields.msg" too: logrus keeps one
	value := func(key string) any {
		switch key {
		case logrus.FieldKeyTime:
			return e.Time.Format("2006-01-02T15:04:05Z07:00")
		case logrus.FieldKeyMsg:
			return e.Message
		case logrus.FieldKeyLevel:
			return e.Level.String()
		}
		if k, ok := strings.CutPrefix(key, clashPrefix); ok && slices.Contains(standardKeys, k) {
			return e.Data[k] // logrus moves a clashing field there, over one of that name
		}
		return e.Data[key]
	}

	b := e.Buffer
	if b == nil {
		b = new(bytes.Buffer)
	}
	enc := encoders.Get().(*jsontext.Encoder)
	enc.Reset(b, encodeOptions)
	defer func() { enc.Reset(io.Discard); encoders.Put(enc) }() // drop the reference to b
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return nil, err
	}
	for _, key := range keys {
		if err := enc.WriteToken(jsontext.String(key)); err != nil {
			return nil, err
		}
		var err error
		switch v := value(key).(type) {
		case string:
			err = writeString(enc, v)
		case bool:
			err = enc.WriteToken(jsontext.Bool(v))
		case error:
			err = writeString(enc, v.Error())
		default:
			err = jsonv2.MarshalEncode(enc, v, encodeOptions)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := enc.WriteToken(jsontext.EndObject); err != nil {
		return nil, err
	}
	return b.Bytes(), nil // the encoder ends each top-level value with a newline
}

// writeString writes a string; one with invalid UTF-8 (rare) is written by encoding/json,
// which writes each bad byte as the escape \ufffd where jsontext writes the rune itself.
func writeString(enc *jsontext.Encoder, s string) error {
	if utf8.ValidString(s) {
		return enc.WriteToken(jsontext.String(s))
	}
	raw, err := stdjson.Marshal(s)
	if err != nil {
		return err
	}
	return enc.WriteValue(raw)
}
