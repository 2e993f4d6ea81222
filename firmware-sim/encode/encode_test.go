package encode

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

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
			lg := NewLedger(counting)
			rng := rand.New(rand.NewPCG(7, 11))
			truth, totals := map[string][2]uint64{}, map[string][2]uint64{}
			deliver := func(m Message) {
				rs, err := dec.Decode(formats.Input{Device: "dev-1", Transport: enc.Transport(), Topic: m.Topic, ContentType: m.ContentType, Body: m.Body})
				if err != nil {
					t.Fatalf("the decoder refuses the encoder: %v\n%s", err, m.Body)
				}
				for _, r := range rs {
					if err := lg.Apply(r); err != nil {
						t.Fatal(err)
					}
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
				if lg.Credit(l) != truth[l] {
					t.Errorf("line %s: the service would count %v, the device made %v", l, lg.Credit(l), truth[l])
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
			lg := NewLedger(dec.Counting())
			for i, n := range []int64{0, 14, 9, -2} {
				for _, m := range enc.Report(time.Unix(1773478800+int64(i)*10, 0), nil, n) {
					rs, err := dec.Decode(formats.Input{Device: "cam-1", Topic: m.Topic, ContentType: m.ContentType, Body: m.Body})
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range rs {
						if err := lg.Apply(r); err != nil {
							t.Fatal(err)
						}
					}
				}
				if want := max(n, 0); lg.Area(tc.want) != want {
					t.Fatalf("region %s reads %d, the sensor counted %d (%v)", tc.want, lg.Area(tc.want), want, lg.area)
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
