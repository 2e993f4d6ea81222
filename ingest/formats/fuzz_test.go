package formats

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// seed adds every fixture of a vendor's directory to the corpus.
func seed(f *testing.F, vendor string, add func(b []byte, name string)) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "formats", vendor, "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures for %s: %v", vendor, err)
	}
	for _, p := range files {
		if strings.HasSuffix(p, ".md") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		add(b, filepath.Base(p))
	}
}

// checkDecoded states what holds for any payload: a refusal is a *Rejection with a reason
// and no readings; readings are within the bounds, sorted and of a known kind.
func checkDecoded(t *testing.T, rs []Reading, err error) {
	t.Helper()
	if err != nil {
		var rej *Rejection
		if !errors.As(err, &rej) || rej.Reason == "" {
			t.Fatalf("refusal %v is not a *Rejection with a reason", err)
		}
		if rs != nil {
			t.Fatalf("refusal %v came with readings", err)
		}
		return
	}
	if len(rs) > MaxReadings {
		t.Fatalf("%d readings, more than %d", len(rs), MaxReadings)
	}
	for _, r := range rs {
		if r.Device != "fuzz" || r.Format == "" {
			t.Fatalf("reading without device or format: %+v", r)
		}
		if !slices.IsSortedFunc(r.Lines, func(a, b Line) int { return strings.Compare(a.ID, b.ID) }) {
			t.Fatalf("lines not sorted: %+v", r.Lines)
		}
		for i, l := range r.Lines {
			if i > 0 && r.Lines[i-1].ID == l.ID {
				t.Fatalf("line %s twice in one reading", l.ID)
			}
			limit := uint64(MaxTotal)
			if r.Semantics == Interval || r.Semantics == Increment {
				limit = MaxDelta
			}
			if r.Semantics == Increment {
				limit = 1
			}
			if l.In > limit || l.Out > limit {
				t.Fatalf("%s line %s: %d in, %d out is beyond %d", r.Semantics, l.ID, l.In, l.Out, limit)
			}
		}
		switch r.Semantics {
		case SinceReset, Interval, Increment:
			if len(r.Lines) == 0 || len(r.Lines) > maxLines {
				t.Fatalf("%s reading with %d lines", r.Semantics, len(r.Lines))
			}
		case Absolute:
			if r.Count < 0 || r.Count > MaxArea {
				t.Fatalf("area count %d beyond 0..%d", r.Count, MaxArea)
			}
		default:
			t.Fatalf("reading of unknown semantics %d", r.Semantics)
		}
		if r.Semantics == Interval && !r.WindowStart.IsZero() && !r.WindowEnd.After(r.WindowStart) {
			t.Fatalf("window %s..%s", r.WindowStart, r.WindowEnd)
		}
	}
}

// hasDuplicateName tells, independently of the decoders, whether a JSON text names a member
// twice in one object anywhere.
func hasDuplicateName(b []byte) bool {
	dec := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	type frame struct {
		names  map[string]bool
		object bool
		key    bool // the next token of an object is a name
	}
	var stack []*frame
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isName := top != nil && top.object && top.key && tok.Kind() == '"'
		if isName {
			name := tok.String()
			if top.names[name] {
				return true
			}
			top.names[name] = true
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true // a value was read (or begins); the next token is a name
		}
		switch tok.Kind() {
		case '{':
			stack = append(stack, &frame{names: map[string]bool{}, object: true, key: true})
		case '[':
			stack = append(stack, &frame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return false
			}
		}
		if len(stack) == 0 {
			return false
		}
	}
}

func fuzzJSON(f *testing.F, vendor string, d Decoder, topic string) {
	seed(f, vendor, func(b []byte, _ string) { f.Add(b) })
	f.Fuzz(func(t *testing.T, body []byte) {
		rs, err := d.Decode(Input{Device: "fuzz", Transport: "mqtt", Topic: topic, Body: body, ReceivedAt: time.Unix(1717071092, 0)})
		checkDecoded(t, rs, err)
		if err == nil && hasDuplicateName(body) {
			t.Fatalf("a payload naming a member twice decoded to %d readings", len(rs))
		}
	})
}

func FuzzMilesight(f *testing.F) { fuzzJSON(f, "milesight", Milesight, "") }
func FuzzXovis(f *testing.F)     { fuzzJSON(f, "xovis", Xovis, "") }
func FuzzAxis(f *testing.F) {
	fuzzJSON(f, "axis", Axis, "axis/B8A44F941234/event/CameraApplicationPlatform/ObjectAnalytics/Device1Scenario1")
}
func FuzzChirpstack(f *testing.F) { fuzzJSON(f, "chirpstack", Envelope(Milesight), "") }

func FuzzHikvision(f *testing.F) {
	seed(f, "hikvision", func(b []byte, name string) { f.Add(b, strings.HasSuffix(name, ".multipart")) })
	f.Fuzz(func(t *testing.T, body []byte, multipart bool) {
		in := Input{Device: "fuzz", Transport: "http", ContentType: "application/xml", Body: body}
		if multipart {
			in.ContentType = multipartType
		}
		rs, err := Hikvision.Decode(in)
		checkDecoded(t, rs, err)
		if err != nil || len(rs) == 0 || multipart {
			return
		}
		// What decoded must not decode with its count of entries given twice.
		// Only where the one <enter> is plainly peopleCounting's (no comment, CDATA or
		// childCounting to put it elsewhere).
		i := bytes.Index(body, []byte("<enter>"))
		pc, end := bytes.Index(body, []byte("<peopleCounting>")), bytes.Index(body, []byte("</peopleCounting>"))
		if i < 0 || bytes.Count(body, []byte("<enter>")) != 1 || pc < 0 || i < pc || end < i ||
			bytes.Contains(body, []byte("<!")) || bytes.Count(body, []byte("peopleCounting>")) != 2 {
			return
		}
		twice := slices.Concat(body[:i], []byte("<enter>0</enter>"), body[i:])
		if rs, err := Hikvision.Decode(Input{Device: "fuzz", Body: twice}); err == nil {
			t.Fatalf("an alert with <enter> twice decoded to %v", rs)
		}
	})
}
