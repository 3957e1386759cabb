package logjson_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hcistorage/storage-webhook/internal/logjson"
)

// TestSameAsLogrus: every entry is written exactly as logrus.JSONFormatter writes it, for
// the value types the service logs and for strings that need escaping.
func TestSameAsLogrus(t *testing.T) {
	at := time.Date(2026, 12, 1, 11, 37, 32, 123456789, time.FixedZone("CET", 3600))
	cases := []struct {
		name   string
		msg    string
		fields logrus.Fields
	}{
		{"a denial as the handler logs it", "denied: [PVC-V2] PVC default/x is the golden PVC", logrus.Fields{
			"webhook": "/validate/persistentvolumeclaims", "uid": types.UID("7f3c9a1e-0001"), "operation": "DELETE",
			"kind": "PersistentVolumeClaim", "namespace": "default", "name": "x", "user": "alice", "dryRun": false, "rule": "PVC-V2"}},
		{"no fields", "started", nil},
		{"numbers, durations and nil", "took", logrus.Fields{"status": 413, "ratio": 0.125, "big": int64(1) << 60, "took": 1500 * time.Millisecond, "nothing": nil}},
		{"an error", "request failed", logrus.Fields{logrus.ErrorKey: errors.New(`bad "quote" <b>`)}},
		{"escapes", "<script>&\u2028\u2029\t\x01\"\\ é", logrus.Fields{"invalid": "a\xffb", "html": "<&>", "unicode": "日本"}},
		{"standard keys in the fields", "clash", logrus.Fields{"msg": "m", "level": 3, "time": "t"}},
		{"a clash and its renamed key", "clash", logrus.Fields{"msg": "m", "fields.msg": "x", "fields.other": 1}},
		{"a slice and a map", "composite", logrus.Fields{"list": []string{"a", "b"}, "empty": []string(nil), "map": map[string]int{"b": 2, "a": 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, level := range []logrus.Level{logrus.InfoLevel, logrus.WarnLevel, logrus.ErrorLevel} {
				entry := &logrus.Entry{Logger: logrus.New(), Data: c.fields, Time: at, Level: level, Message: c.msg}
				if entry.Data == nil {
					entry.Data = logrus.Fields{}
				}
				want, err := (&logrus.JSONFormatter{}).Format(entry)
				if err != nil {
					t.Fatal(err)
				}
				got, err := logjson.Formatter{}.Format(entry)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Errorf("level %s:\ngot  %s\nwant %s", level, got, want)
				}
			}
		})
	}
}

func BenchmarkFormat(b *testing.B) {
	entry := &logrus.Entry{Logger: logrus.New(), Time: time.Now(), Level: logrus.InfoLevel, Message: "denied: [PVC-V2] PVC default/x is the golden PVC of image default/y", Data: logrus.Fields{
		"webhook": "/validate/persistentvolumeclaims", "uid": types.UID("7f3c9a1e-0001"), "operation": "DELETE",
		"kind": "PersistentVolumeClaim", "namespace": "default", "name": "x", "user": "alice", "dryRun": false, "rule": "PVC-V2"}}
	for _, f := range []struct {
		name string
		f    logrus.Formatter
	}{{"logrus", &logrus.JSONFormatter{}}, {"logjson", logjson.Formatter{}}} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.f.Format(entry); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
