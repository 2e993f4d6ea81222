package encode

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// ledger credits readings the way docs/protocol.md ("Vendor formats") says the engine does,
// so that the round trip encoder → decoder can be checked for exactness: one kind of
// crossing reading counted per device, totals by their increase (a decrease or a new epoch
// is a reset, an older report changes nothing), windows and events once per key, area counts
// as the latest.
type ledger struct {
	counting formats.Semantics
	credit   map[string][2]uint64
	last     map[string][2]uint64
	epoch    map[string]string
	at       map[string]time.Time
	keys     map[string]bool
	area     map[string]int64
}

func newLedger(c formats.Semantics) *ledger {
	return &ledger{counting: c, credit: map[string][2]uint64{}, last: map[string][2]uint64{}, epoch: map[string]string{},
		at: map[string]time.Time{}, keys: map[string]bool{}, area: map[string]int64{}}
}

func (lg *ledger) apply(t *testing.T, r formats.Reading) {
	if r.Semantics == formats.Absolute {
		lg.area[r.Region] = r.Count
		return
	}
	if r.Semantics != lg.counting {
		return
	}
	switch r.Semantics {
	case formats.SinceReset:
		if r.DeviceTime.IsZero() {
			t.Fatalf("totals without a time cannot be ordered: %+v", r)
		}
		for _, l := range r.Lines {
			prev, seen := lg.last[l.ID]
			if seen && r.DeviceTime.Before(lg.at[l.ID]) {
				continue // an older report delivered late
			}
			c := lg.credit[l.ID]
			if !seen || r.Epoch != lg.epoch[l.ID] || l.In < prev[0] || l.Out < prev[1] {
				c[0], c[1] = c[0]+l.In, c[1]+l.Out // counted since a reset
				if !seen {
					c[0], c[1] = l.In, l.Out
				}
			} else {
				c[0], c[1] = c[0]+l.In-prev[0], c[1]+l.Out-prev[1]
			}
			lg.credit[l.ID], lg.last[l.ID], lg.epoch[l.ID], lg.at[l.ID] = c, [2]uint64{l.In, l.Out}, r.Epoch, r.DeviceTime
		}
	case formats.Interval, formats.Increment:
		if r.Key == "" {
			t.Fatalf("%s reading without a key cannot be de-duplicated: %+v", r.Semantics, r)
		}
		if lg.keys[r.Key] {
			return
		}
		lg.keys[r.Key] = true
		for _, l := range r.Lines {
			c := lg.credit[l.ID]
			lg.credit[l.ID] = [2]uint64{c[0] + l.In, c[1] + l.Out}
		}
	}
}

// The simulated devices' reports, read by the service's decoders, give exactly the crossings
// and head counts the devices made, through duplicates, late deliveries and resets.
func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name, format string
		interval     bool
		lines        []string
		counting     formats.Semantics // 0: the format's own
	}{
		{"milesight totals", "milesight", false, []string{"1", "2"}, 0},
		{"milesight periodic", "milesight", true, []string{"1"}, formats.Interval},
		{"milesight trigger beside periodic", "milesight", true, []string{"1"}, formats.SinceReset},
		{"chirpstack totals", "chirpstack", false, []string{"1", "2"}, 0},
		{"chirpstack periods", "chirpstack", true, []string{"1"}, formats.Interval},
		{"xovis live data", "xovis", false, []string{"1008", "1010"}, 0},
		{"xovis count data", "xovis", true, []string{"1008"}, formats.Interval},
		{"axis retail data", "axis", false, []string{"1"}, 0},
		{"hikvision realTime", "hikvision", false, []string{"1", "2"}, 0},
		{"hikvision timeRange", "hikvision", true, []string{"1"}, formats.Interval},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			decoded := ""
			if tc.format == "chirpstack" {
				decoded = "milesight"
			}
			dec, err := formats.ForDevice(tc.format, decoded)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
			enc, err := New(tc.format, Device{ID: "dev-1", Lines: tc.lines, Interval: tc.interval, TopicBase: "cw/store/", Start: start})
			if err != nil {
				t.Fatal(err)
			}
			counting := tc.counting
			if counting == 0 {
				counting = dec.Counting()
			}
			lg := newLedger(counting)
			rng := rand.New(rand.NewPCG(7, 11))
			truth, totals := map[string][2]uint64{}, map[string][2]uint64{}
			deliver := func(m Message) {
				rs, err := dec.Decode(formats.Input{Device: "dev-1", Transport: enc.Transport(), Topic: m.Topic, ContentType: m.ContentType, Body: m.Body})
				if err != nil {
					t.Fatalf("the decoder refuses the encoder: %v\n%s", err, m.Body)
				}
				for _, r := range rs {
					lg.apply(t, r)
				}
			}
			var held []Message
			resets := 0
			now := start
			for step := range 300 {
				now = now.Add(10 * time.Second)
				for _, l := range tc.lines {
					in, out := uint64(rng.IntN(30)), uint64(rng.IntN(30))
					tr, to := truth[l], totals[l]
					truth[l], totals[l] = [2]uint64{tr[0] + in, tr[1] + out}, [2]uint64{to[0] + in, to[1] + out}
				}
				msgs := enc.Report(now, totals, 0)
				switch {
				case held == nil && rng.IntN(8) == 0:
					held = msgs // delivered after the next report
					continue
				}
				for _, m := range msgs {
					deliver(m)
					if rng.IntN(5) == 0 {
						deliver(m) // sent twice
					}
				}
				for _, m := range held {
					deliver(m)
				}
				held = nil
				if bad := enc.Malformed(); len(bad.Body) > 0 {
					if _, err := dec.Decode(formats.Input{Device: "dev-1", Topic: bad.Topic, ContentType: bad.ContentType, Body: bad.Body}); err == nil {
						t.Fatalf("the malformed report decodes: %s", bad.Body)
					}
				}
				if step%97 == 50 && enc.ResetDetectable(totals) {
					totals = map[string][2]uint64{}
					enc.Reset(now)
					resets++
				}
			}
			for _, m := range held {
				deliver(m)
			}
			if resets == 0 {
				t.Fatal("no reset happened: the test would not show resets are survived")
			}
			for _, l := range tc.lines {
				if lg.credit[l] != truth[l] {
					t.Errorf("line %s: the service would count %v, the device made %v", l, lg.credit[l], truth[l])
				}
			}
		})
	}
}

func TestSensorsRoundTrip(t *testing.T) {
	for _, tc := range []struct{ format, region, want string }{
		{"milesight", "", "1"}, {"chirpstack", "2", "2"}, {"xovis", "1010", "1010"}, {"axis", "", "Device1Scenario1"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			decoded := ""
			if tc.format == "chirpstack" {
				decoded = "milesight"
			}
			dec, _ := formats.ForDevice(tc.format, decoded)
			enc, err := New(tc.format, Device{ID: "cam-1", Sensor: true, Region: tc.region, TopicBase: "cw/store/", Start: time.Unix(1773478800, 0)})
			if err != nil {
				t.Fatal(err)
			}
			lg := newLedger(dec.Counting())
			for i, n := range []int64{0, 14, 9, -2} {
				for _, m := range enc.Report(time.Unix(1773478800+int64(i)*10, 0), nil, n) {
					rs, err := dec.Decode(formats.Input{Device: "cam-1", Topic: m.Topic, ContentType: m.ContentType, Body: m.Body})
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range rs {
						lg.apply(t, r)
					}
				}
				if want := max(n, 0); lg.area[tc.want] != want {
					t.Fatalf("region %s reads %d, the sensor counted %d (%v)", tc.want, lg.area[tc.want], want, lg.area)
				}
			}
		})
	}
	if _, err := New("hikvision", Device{ID: "cam-1", Sensor: true}); err == nil {
		t.Error("a Hikvision sensor was accepted: PeopleCounting has no area counts")
	}
}

func TestLinesTheFormatCannotName(t *testing.T) {
	for _, tc := range []struct{ format, line string }{
		{"chirpstack", "north"}, {"chirpstack", "10"}, {"xovis", "north"}, {"axis", "2"}, {"hikvision", "north"},
	} {
		if _, err := New(tc.format, Device{ID: "d", Lines: []string{tc.line}}); err == nil {
			t.Errorf("%s accepted line %q", tc.format, tc.line)
		}
	}
	if _, err := New("milesight", Device{ID: "d", Lines: []string{"north"}}); err != nil {
		t.Errorf("milesight PoE names lines freely: %v", err)
	}
}
