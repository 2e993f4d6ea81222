package ingest

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
)

func TestTopics(t *testing.T) {
	tp := NewTopics("crowdwatch", "store-042")
	cases := []struct {
		topic, kind, device string
		ok                  bool
	}{
		{"crowdwatch/store-042/counter/dc-01", KindCounter, "dc-01", true},
		{"crowdwatch/store-042/occupancy/cam-07", KindOccupancy, "cam-07", true},
		{"crowdwatch/store-042/status/dc-01", KindStatus, "dc-01", true},
		{"crowdwatch/store-042/zone/hall", "", "", false},
		{"crowdwatch/other/counter/dc-01", "", "", false},
		{"crowdwatch/store-042/counter/", "", "", false},
		{"crowdwatch/store-042/counter/a/b", "", "", false},
		{"crowdwatch/store-042/counter", "", "", false},
	}
	for _, tc := range cases {
		kind, dev, ok := tp.Parse(tc.topic)
		if kind != tc.kind || dev != tc.device || ok != tc.ok {
			t.Errorf("Parse(%q) = %q %q %v", tc.topic, kind, dev, ok)
		}
	}
	if got := tp.Device(KindCounter, "dc-01"); got != "crowdwatch/store-042/counter/dc-01" {
		t.Errorf("Device topic %q", got)
	}
}

// TestOutgoingTopics: every topic the service writes comes from Topics, with a prefix that
// itself contains "/", and the broker's ACL knows them as the service's own.
func TestOutgoingTopics(t *testing.T) {
	tp := TopicsFor(&configs.Config{MQTT: configs.MQTT{TopicPrefix: "acme/crowdwatch"}, Site: configs.Site{ID: "store-1"}})
	built := []struct{ got, want string }{
		{tp.Zone("hall"), "acme/crowdwatch/store-1/zone/hall"},
		{tp.Guidance("door-a"), "acme/crowdwatch/store-1/guidance/door-a"},
		{tp.Alert("level:hall"), "acme/crowdwatch/store-1/alert/level:hall"},
		{tp.Service(), "acme/crowdwatch/store-1/service/status"},
		{tp.Announce("hall"), "acme/crowdwatch/store-1/announce/hall"},
		{tp.Device(KindCounter, "dc-01"), "acme/crowdwatch/store-1/counter/dc-01"},
	}
	for _, b := range built {
		if b.got != b.want {
			t.Errorf("topic %q, want %q", b.got, b.want)
		}
	}
	own := []struct {
		topic      string
		own, signs bool
	}{
		{"acme/crowdwatch/store-1/zone/hall", true, true},
		{"acme/crowdwatch/store-1/guidance/door-a", true, true},
		{"acme/crowdwatch/store-1/guidance/#", true, true},
		{"acme/crowdwatch/store-1/alert/level:hall", true, false},
		{"acme/crowdwatch/store-1/service/status", true, true},
		{"acme/crowdwatch/store-1/service/other", true, false},
		{"acme/crowdwatch/store-1/announce/hall", true, true}, // PA gateways read, nobody else writes
		{"acme/crowdwatch/store-1/announce/#", true, true},
		{"acme/crowdwatch/store-1/counter/dc-01", false, false},
		{"acme/crowdwatch/store-1/zoneless", false, false},
		{"crowdwatch/store-1/zone/hall", false, false}, // another prefix
		{"acme/crowdwatch/store-2/zone/hall", false, false},
	}
	for _, o := range own {
		if got := tp.Own(o.topic); got != o.own {
			t.Errorf("Own(%q) = %v, want %v", o.topic, got, o.own)
		}
		if got := tp.ForSigns(o.topic); got != o.signs {
			t.Errorf("ForSigns(%q) = %v, want %v", o.topic, got, o.signs)
		}
	}
}

func TestDecodeCounter(t *testing.T) {
	cases := []struct {
		name     string
		payload  string
		reject   string // reason, or "" for accepted
		lines    []zones.LineCount
		interval bool
		boot     string
	}{
		{"one line", `{"boot":"b1","seq":3,"ts":"2026-11-11T10:00:00+08:00","in":12,"out":4}`, "",
			[]zones.LineCount{{Line: "1", In: 12, Out: 4}}, false, "b1"},
		{"several lines sorted", `{"boot":"b1","seq":3,"ts":"2026-11-11T02:00:00Z","lines":{"2":{"in":1,"out":0},"1":{"in":5,"out":6}}}`, "",
			[]zones.LineCount{{Line: "1", In: 5, Out: 6}, {Line: "2", In: 1, Out: 0}}, false, "b1"},
		{"interval report", `{"boot":"b1","seq":3,"ts":"2026-11-11T02:00:00Z","period_in":2,"period_out":1}`, "",
			[]zones.LineCount{{Line: "1", In: 2, Out: 1}}, true, "b1"},
		{"integer boot", `{"boot":17,"seq":1,"ts":"2026-11-11T02:00:00Z","in":0,"out":0}`, "",
			[]zones.LineCount{{Line: "1"}}, false, "17"},
		{"unknown fields are ignored", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":1,"out":1,"battery":93}`, "",
			[]zones.LineCount{{Line: "1", In: 1, Out: 1}}, false, "b"},
		{"not JSON", `in=3 out=4`, "malformed", nil, false, ""},
		{"JSON array", `[1,2]`, "malformed", nil, false, ""},
		{"trailing data", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":1,"out":1} {}`, "malformed", nil, false, ""},
		{"string where number", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":"many","out":1}`, "wrong_type", nil, false, ""},
		{"fraction", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":1.5,"out":1}`, "wrong_type", nil, false, ""},
		{"negative", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":-1,"out":1}`, "negative", nil, false, ""},
		{"negative seq", `{"boot":"b","seq":-1,"ts":"2026-11-11T02:00:00Z","in":1,"out":1}`, "negative", nil, false, ""},
		{"huge", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":99999999999999999999999,"out":1}`, "out_of_range", nil, false, ""},
		{"full 64-bit counter", `{"boot":"b","seq":18446744073709551615,"ts":"2026-11-11T02:00:00Z","in":18446744073709551615,"out":1}`, "",
			[]zones.LineCount{{Line: "1", In: 1<<64 - 1, Out: 1}}, false, "b"},
		{"missing boot", `{"seq":1,"ts":"2026-11-11T02:00:00Z","in":1,"out":1}`, "missing_field", nil, false, ""},
		{"empty boot", `{"boot":"","seq":1,"ts":"2026-11-11T02:00:00Z","in":1,"out":1}`, "wrong_type", nil, false, ""},
		{"missing seq", `{"boot":"b","ts":"2026-11-11T02:00:00Z","in":1,"out":1}`, "missing_field", nil, false, ""},
		{"missing ts", `{"boot":"b","seq":1,"in":1,"out":1}`, "missing_field", nil, false, ""},
		{"ts without zone", `{"boot":"b","seq":1,"ts":"2026-11-11 10:00:00","in":1,"out":1}`, "wrong_type", nil, false, ""},
		{"no counts", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z"}`, "missing_field", nil, false, ""},
		{"one direction only", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":1}`, "missing_field", nil, false, ""},
		{"both forms", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":1,"out":1,"lines":{"1":{"in":1,"out":1}}}`, "malformed", nil, false, ""},
		{"mixed totals and periods", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","lines":{"1":{"in":1,"out":1},"2":{"period_in":1,"period_out":1}}}`, "malformed", nil, false, ""},
		{"empty lines", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","lines":{}}`, "missing_field", nil, false, ""},
		{"lines wrong type", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","lines":[1]}`, "wrong_type", nil, false, ""},
		{"line wrong type", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","lines":{"1":7}}`, "wrong_type", nil, false, ""},
		{"not UTF-8", "{\"boot\":\"\xff\",\"seq\":1}", "malformed", nil, false, ""},
		// A quoted number was once counted (`"in":"900"` as 900 people); counts, seq and an
		// integer boot must be JSON numbers.
		{"quoted count", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":"900","out":0}`, "wrong_type", nil, false, ""},
		{"quoted out", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":1,"out":"0"}`, "wrong_type", nil, false, ""},
		{"quoted seq", `{"boot":"A","seq":"9","ts":"2026-11-11T02:00:00Z","in":1,"out":0}`, "wrong_type", nil, false, ""},
		{"quoted line count", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","lines":{"1":{"in":"5","out":0}}}`, "wrong_type", nil, false, ""},
		{"quoted period count", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","period_in":"5","period_out":0}`, "wrong_type", nil, false, ""},
		{"quoted negative", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":"-1","out":0}`, "wrong_type", nil, false, ""},
		{"quoted boot is a string boot", `{"boot":"17","seq":1,"ts":"2026-11-11T02:00:00Z","in":0,"out":0}`, "",
			[]zones.LineCount{{Line: "1"}}, false, "17"},
		{"fractional boot", `{"boot":17.5,"seq":1,"ts":"2026-11-11T02:00:00Z","in":0,"out":0}`, "wrong_type", nil, false, ""},
		{"null count is missing", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":null,"out":0}`, "missing_field", nil, false, ""},
		// Duplicate names are ambiguous (`"in":64,"in":1000` was counted as 1000): refused.
		{"duplicate count", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":64,"in":1000,"out":0}`, "duplicate_key", nil, false, ""},
		{"duplicate seq", `{"boot":"A","seq":9,"seq":10,"ts":"2026-11-11T02:00:00Z","in":64,"out":0}`, "duplicate_key", nil, false, ""},
		{"duplicate boot", `{"boot":"A","boot":"B","seq":9,"ts":"2026-11-11T02:00:00Z","in":64,"out":0}`, "duplicate_key", nil, false, ""},
		{"duplicate escaped name", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":64,"\u0069n":1000,"out":0}`, "duplicate_key", nil, false, ""},
		{"duplicate line id", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","lines":{"1":{"in":1,"out":0},"1":{"in":900,"out":0}}}`, "duplicate_key", nil, false, ""},
		{"duplicate inside a line", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","lines":{"1":{"in":1,"out":0,"in":900}}}`, "duplicate_key", nil, false, ""},
		{"duplicate unknown field", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":1,"out":0,"battery":3,"battery":4}`, "duplicate_key", nil, false, ""},
		{"too many lines", `{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","lines":{` + manyLines(maxLines+1) + `}}`, "out_of_range", nil, false, ""},
		{"exponent", `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":1e3,"out":1}`, "wrong_type", nil, false, ""},
		{"seq too large", `{"boot":"b","seq":18446744073709551616,"ts":"2026-11-11T02:00:00Z","in":1,"out":1}`, "out_of_range", nil, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := Decode(KindCounter, "dc-01", []byte(tc.payload), 4096)
			if tc.reject != "" {
				if m.Reject == nil || m.Reject.Reason != tc.reject {
					t.Fatalf("want rejection %q, got %+v %+v", tc.reject, m.Reject, m.Report)
				}
				if !strings.Contains(m.Reject.Error(), `"dc-01"`) {
					t.Errorf("rejection does not name the device: %v", m.Reject)
				}
				if strings.Contains(m.Reject.Error(), "ingest.") || strings.Contains(m.Reject.Error(), "map[") {
					t.Errorf("rejection speaks Go, not JSON: %v", m.Reject)
				}
				return
			}
			if m.Reject != nil {
				t.Fatalf("rejected: %v", m.Reject)
			}
			r := m.Report
			if r.Boot != tc.boot || r.Interval != tc.interval || r.Kind != zones.KindCounter || r.Device != "dc-01" {
				t.Fatalf("report %+v", r)
			}
			if len(r.Lines) != len(tc.lines) {
				t.Fatalf("lines %+v", r.Lines)
			}
			for i := range r.Lines {
				if r.Lines[i] != tc.lines[i] {
					t.Fatalf("line %d: %+v, want %+v", i, r.Lines[i], tc.lines[i])
				}
			}
		})
	}
}

// manyLines is n lines' members of a lines object, ids "1".."n".
func manyLines(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"%d":{"in":1,"out":0}`, i+1)
	}
	return strings.Join(parts, ",")
}

func TestDecodeOversized(t *testing.T) {
	payload := `{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":1,"out":1,"pad":"` + strings.Repeat("x", 5000) + `"}`
	m := Decode(KindCounter, "dc-01", []byte(payload), 4096)
	if m.Reject == nil || m.Reject.Reason != "oversized" {
		t.Fatalf("oversized payload: %+v", m.Reject)
	}
}

func TestDecodeOccupancyAndStatus(t *testing.T) {
	m := Decode(KindOccupancy, "cam-07", []byte(`{"boot":"x","seq":9,"ts":"2026-11-11T02:00:00Z","count":37}`), 4096)
	if m.Reject != nil || m.Report.Count != 37 || m.Report.Kind != zones.KindSensor {
		t.Fatalf("occupancy: %+v %v", m.Report, m.Reject)
	}
	if m := Decode(KindOccupancy, "cam-07", []byte(`{"boot":"x","seq":9,"ts":"2026-11-11T02:00:00Z","count":-2}`), 4096); m.Reject == nil || m.Reject.Reason != "negative" {
		t.Fatalf("negative count: %+v", m.Reject)
	}
	if m := Decode(KindOccupancy, "cam-07", []byte(`{"boot":"x","seq":9,"ts":"2026-11-11T02:00:00Z"}`), 4096); m.Reject == nil || m.Reject.Reason != "missing_field" {
		t.Fatalf("missing count: %+v", m.Reject)
	}
	status := []struct {
		payload string
		online  bool
		reject  bool
	}{
		{"online", true, false},
		{"offline", false, false},
		{`"offline"`, false, false},
		{`{"ts":"2026-11-11T02:00:00Z","uptime_s":30}`, true, false},
		{`{"status":"offline"}`, false, false},
		{`null`, false, true},
		{`maybe`, false, true},
	}
	for _, s := range status {
		m := Decode(KindStatus, "dc-01", []byte(s.payload), 4096)
		if s.reject {
			if m.Reject == nil {
				t.Errorf("status %q accepted", s.payload)
			}
			continue
		}
		if m.Reject != nil || m.Status.Online != s.online {
			t.Errorf("status %q: %+v %v", s.payload, m.Status, m.Reject)
		}
	}
}

// facts is what an independent reading of a payload, encoding/json's token stream, finds in
// it: the fuzz properties compare the strict decoder against it.
type facts struct {
	valid     bool              // one well-formed JSON value
	duplicate bool              // some object names a member twice
	numbers   map[string]string // JSON pointer of each number → its literal
	strings   map[string]bool   // JSON pointers of strings
}

func readFacts(payload []byte) facts {
	f := facts{numbers: map[string]string{}, strings: map[string]bool{}}
	dec := stdjson.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case stdjson.Number:
			f.numbers[path] = string(v)
		case string:
			f.strings[path] = true
		case stdjson.Delim:
			switch v {
			case '{':
				seen := map[string]bool{}
				for dec.More() {
					name, err := dec.Token()
					if err != nil {
						return err
					}
					key, _ := name.(string)
					if seen[key] {
						f.duplicate = true
					}
					seen[key] = true
					esc := strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
					if err := walk(path + "/" + esc); err != nil {
						return err
					}
				}
				_, err = dec.Token()
				return err
			case '[':
				for i := 0; dec.More(); i++ {
					if err := walk(fmt.Sprintf("%s/%d", path, i)); err != nil {
						return err
					}
				}
				_, err = dec.Token()
				return err
			}
		}
		return nil
	}
	f.valid = walk("") == nil
	return f
}

// countFields are the members that must be JSON numbers wherever they appear.
var countFields = []string{"seq", "count", "in", "out", "period_in", "period_out"}

// checkDecoded asserts what any decoded message must satisfy.
func checkDecoded(t *testing.T, kind string, m *zones.Message, payload []byte) {
	t.Helper()
	if (m.Report != nil) == (m.Reject != nil) && m.Status == nil {
		t.Fatalf("%s %q: decoded to %+v", kind, payload, m)
	}
	f := readFacts(payload)
	if m.Reject != nil {
		if m.Reject.Reason == "" || m.Report != nil || m.Status != nil {
			t.Fatalf("%s %q: rejection without a reason or with a result: %+v", kind, payload, m)
		}
		return
	}
	if len(payload) > 4096 {
		t.Fatalf("accepted an oversized payload")
	}
	if f.duplicate {
		t.Fatalf("%s %q: accepted a payload that names a member twice", kind, payload)
	}
	r := m.Report
	if r == nil {
		return
	}
	if !f.valid {
		t.Fatalf("%s %q: accepted what encoding/json cannot read", kind, payload)
	}
	for p := range f.strings {
		if slices.Contains(countFields, p[strings.LastIndexByte(p, '/')+1:]) && (strings.Count(p, "/") == 1 || strings.HasPrefix(p, "/lines/")) {
			t.Fatalf("%s %q: accepted a quoted number at %s", kind, payload, p)
		}
	}
	// Every figure decoded is exactly the JSON number in the payload.
	equal := func(path string, got uint64) {
		t.Helper()
		want, err := strconv.ParseUint(f.numbers[path], 10, 64)
		if err != nil || got != want {
			t.Fatalf("%s %q: decoded %d at %s, the payload says %q", kind, payload, got, path, f.numbers[path])
		}
	}
	equal("/seq", r.Seq)
	if n, ok := f.numbers["/boot"]; ok && r.Boot != n {
		t.Fatalf("%s %q: integer boot %s decoded as %q", kind, payload, n, r.Boot)
	}
	if r.Boot == "" || r.TS.IsZero() {
		t.Fatalf("accepted a report without boot or ts: %+v", r)
	}
	switch kind {
	case KindCounter:
		if len(r.Lines) == 0 || len(r.Lines) > maxLines {
			t.Fatalf("accepted a counter report with %d lines", len(r.Lines))
		}
		in, out := "in", "out"
		if r.Interval {
			in, out = "period_in", "period_out"
		}
		for _, l := range r.Lines {
			prefix := "/"
			if _, top := f.numbers["/"+in]; !top {
				prefix = "/lines/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(l.Line) + "/"
			}
			equal(prefix+in, l.In)
			equal(prefix+out, l.Out)
		}
	case KindOccupancy:
		if r.Count < 0 {
			t.Fatalf("accepted a negative count")
		}
		equal("/count", uint64(r.Count))
	}
}

// fuzzSeeds are payloads that break the strict rules: quoted numbers, duplicate names.
var fuzzSeeds = []string{
	`{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":"900","out":0}`,
	`{"boot":"A","seq":"9","ts":"2026-11-11T02:00:00Z","in":1,"out":0}`,
	`{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":64,"in":1000,"out":0}`,
	`{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":64,"\u0069n":1000,"out":0}`,
	`{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","lines":{"1":{"in":1,"out":0},"1":{"in":900,"out":0}}}`,
	`{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","lines":{"1":{"in":"5","out":0}}}`,
	`{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","in":1,"out":0,"x":{"a":1,"a":2}}`,
	`{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","count":"37"}`,
	`{"boot":"A","seq":9,"ts":"2026-11-11T02:00:00Z","count":3,"count":37}`,
	`{"boot":18446744073709551615,"seq":18446744073709551615,"ts":"2026-11-11T02:00:00Z","in":18446744073709551615,"out":0}`,
}

func FuzzDecodeCounter(f *testing.F) {
	for _, s := range append([]string{
		`{"boot":"b1","seq":3,"ts":"2026-11-11T10:00:00+08:00","in":12,"out":4}`,
		`{"boot":"b1","seq":3,"ts":"2026-11-11T02:00:00Z","lines":{"2":{"in":1,"out":0},"1":{"in":5,"out":6}}}`,
		`{"boot":7,"seq":3,"ts":"2026-11-11T02:00:00Z","period_in":2,"period_out":1}`,
		`{"boot":"b","seq":1,"ts":"2026-11-11T02:00:00Z","in":-1,"out":1e5}`,
		`[]`, `null`, ``,
	}, fuzzSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecoded(t, KindCounter, Decode(KindCounter, "dc-01", payload, 4096), payload)
	})
}

func FuzzDecodeOccupancy(f *testing.F) {
	f.Add([]byte(`{"boot":"x","seq":9,"ts":"2026-11-11T02:00:00Z","count":37}`))
	f.Add([]byte(`{"boot":"x","seq":9,"ts":"2026-11-11T02:00:00Z","count":-1}`))
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecoded(t, KindOccupancy, Decode(KindOccupancy, "cam-07", payload, 4096), payload)
	})
}

func FuzzDecodeStatus(f *testing.F) {
	for _, s := range []string{"online", "offline", `{"uptime_s":3}`, `{"status":"offline"}`, `"x"`,
		`{"status":"offline","status":"online"}`, `{"uptime_s":3,"uptime_s":"4"}`, `{"a":{"b":1,"b":2}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m := Decode(KindStatus, "dc-01", payload, 4096)
		if (m.Status == nil) == (m.Reject == nil) {
			t.Fatalf("status %q: %+v", payload, m)
		}
		if m.Status != nil && readFacts(payload).duplicate {
			t.Fatalf("status %q: accepted a payload that names a member twice", payload)
		}
	})
}

func FuzzTopicParse(f *testing.F) {
	tp := NewTopics("crowdwatch", "s1")
	f.Add("crowdwatch/s1/counter/dc-01")
	f.Add("crowdwatch/s1/zone/x")
	f.Fuzz(func(t *testing.T, topic string) {
		kind, dev, ok := tp.Parse(topic)
		if ok && tp.Device(kind, dev) != topic {
			t.Fatalf("Parse(%q) = %q %q does not round-trip", topic, kind, dev)
		}
	})
}

// TestRefusedPayloadsAreCountedByReason runs a quoted count, a duplicate key and an impossible
// jump through the decoder and a real engine: each refusal is counted in /metrics under its
// reason and moves nobody.
func TestRefusedPayloadsAreCountedByReason(t *testing.T) {
	cfg, err := configs.Parse([]byte(benchStore(1)), map[string]any{"storage.path": filepath.Join(t.TempDir(), "b.db")})
	if err != nil {
		t.Fatal(err)
	}
	store, err := zones.OpenStore(cfg.Storage.Path, cfg.Site.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	engine, err := zones.NewEngine(zones.NewModel(cfg), store, zones.NewMetrics(reg), zones.Options{ResetHour: -1,
		CommitOnIdle: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = engine.Run(ctx) }()
	defer func() { cancel(); <-done }()

	ts := time.Now().UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		payload string
		want    zones.Outcome
	}{
		{`{"boot":"A","seq":9,"ts":"` + ts + `","in":"900","out":0}`, zones.Rejected},
		{`{"boot":"A","seq":9,"ts":"` + ts + `","in":64,"in":1000,"out":0}`, zones.Rejected},
		{`{"boot":"A","seq":10,"ts":"` + ts + `","in":64,"out":0}`, zones.Applied},
		// A 32-bit counter jumping from 64 to its top a moment later: an impossible jump.
		{`{"boot":"A","seq":11,"ts":"` + ts + `","in":4294967295,"out":0}`, zones.Rejected},
	} {
		m := Decode(KindCounter, "dc-0", []byte(tc.payload), 4096)
		got := make(chan zones.Outcome, 1)
		m.Done = func(o zones.Outcome) { got <- o }
		if err := engine.Submit(ctx, m); err != nil {
			t.Fatal(err)
		}
		select {
		case o := <-got:
			if o != tc.want {
				t.Fatalf("%s: %v, want %v", tc.payload, o, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no outcome within 10 s")
		}
	}
	if z, _ := engine.Snapshot().Zone("store"); z.Occupancy != 64 {
		t.Fatalf("occupancy %d, want 64", z.Occupancy)
	}
	want := `
# HELP crowdwatch_ingest_messages_total Device messages by outcome (applied, duplicate, rejected, failed) and rejection reason.
# TYPE crowdwatch_ingest_messages_total counter
crowdwatch_ingest_messages_total{outcome="applied",reason=""} 1
crowdwatch_ingest_messages_total{outcome="rejected",reason="duplicate_key"} 1
crowdwatch_ingest_messages_total{outcome="rejected",reason="out_of_range"} 1
crowdwatch_ingest_messages_total{outcome="rejected",reason="wrong_type"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "crowdwatch_ingest_messages_total"); err != nil {
		t.Error(err)
	}
}
