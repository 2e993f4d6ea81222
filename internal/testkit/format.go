package testkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// TestFormat is the name of a vendor format that only tests use (RegisterTestFormat), so the
// engine's and the transports' tests need no real vendor decoder. Its payload is JSON:
//
//	{"readings":[{"sem":"since_reset","time":"2026-11-11T10:00:00Z","lines":[{"id":"1","in":3,"out":1}],
//	  "key":"...","seq":7,"region":"1","count":5,"from":"...","to":"...","epoch":"...","reset":false}]}
//
// "sem" is since_reset, interval, increment or absolute; a missing "seq" means none.
const TestFormat = "testkit"

var registerOnce sync.Once

// RegisterTestFormat registers TestFormat (once per test binary).
func RegisterTestFormat() {
	registerOnce.Do(func() {
		if _, ok := formats.Lookup(TestFormat); !ok {
			formats.Register(testFormat{})
		}
	})
}

type testFormat struct{}

func (testFormat) Name() string                { return TestFormat }
func (testFormat) Counting() formats.Semantics { return formats.SinceReset }

// TestReading is one reading of a TestFormat payload.
type TestReading struct {
	Sem    string     `json:"sem"`
	Time   *time.Time `json:"time,omitempty"`
	Lines  []TestLine `json:"lines,omitempty"`
	Key    string     `json:"key,omitempty"`
	Seq    *uint64    `json:"seq,omitempty"`
	Region string     `json:"region,omitempty"`
	Count  int64      `json:"count,omitempty"`
	From   *time.Time `json:"from,omitempty"`
	To     *time.Time `json:"to,omitempty"`
	Epoch  string     `json:"epoch,omitempty"`
	Reset  bool       `json:"reset,omitempty"`
}

// TestLine is one line of a TestReading.
type TestLine struct {
	ID  string `json:"id"`
	In  uint64 `json:"in"`
	Out uint64 `json:"out"`
}

// TestPayload encodes readings as a TestFormat payload.
func TestPayload(readings ...TestReading) string {
	b, err := json.Marshal(map[string]any{"readings": readings})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (testFormat) Decode(in formats.Input) ([]formats.Reading, error) {
	var p struct {
		Readings []TestReading `json:"readings"`
	}
	dec := json.NewDecoder(strings.NewReader(string(in.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, &formats.Rejection{Reason: "malformed", Err: err}
	}
	var out []formats.Reading
	for _, r := range p.Readings {
		rd := formats.Reading{Device: in.Device, Format: TestFormat, Key: r.Key, Region: r.Region, Count: r.Count, Epoch: r.Epoch, Reset: r.Reset}
		switch r.Sem {
		case "since_reset":
			rd.Semantics = formats.SinceReset
		case "interval":
			rd.Semantics = formats.Interval
		case "increment":
			rd.Semantics = formats.Increment
		case "absolute":
			rd.Semantics = formats.Absolute
		default:
			return nil, &formats.Rejection{Reason: "unsupported", Err: fmt.Errorf("sem %q", r.Sem)}
		}
		if r.Time != nil {
			rd.DeviceTime = *r.Time
		}
		if r.From != nil && r.To != nil {
			rd.WindowStart, rd.WindowEnd = *r.From, *r.To
		}
		if r.Seq != nil {
			rd.Seq, rd.HasSeq = *r.Seq, true
		}
		for _, l := range r.Lines {
			if l.ID == "" {
				return nil, &formats.Rejection{Reason: "malformed", Err: errors.New("line without id")}
			}
			rd.Lines = append(rd.Lines, formats.Line{ID: l.ID, In: l.In, Out: l.Out})
		}
		out = append(out, rd)
	}
	return out, nil
}
