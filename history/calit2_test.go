package history

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/firmware-sim/replay"
	"github.com/crowdwatch/crowdwatch/zones"
)

// calit2Dir holds the real door counts, copied into the repository (SOURCE.md says from where).
const calit2Dir = "../testdata/calit2/"

// importCalIt2 records the CalIt2 file through the recorder's core as the service would see
// it: the door's cumulative totals three times per half hour (replay.Spread), each stamped
// one second before its point so that a half hour's last crossings stay inside it.
func importCalIt2(t testing.TB) (*harness, []replay.HalfHour) {
	hs, err := replay.LoadFile(calit2Dir + "CalIt2.data")
	if err != nil {
		t.Fatalf("CalIt2 data (part of the repository): %v", err)
	}
	loc, _ := time.LoadLocation(replay.Zone)
	site := Site{ID: "calit2", Loc: loc, Zones: []ZoneInfo{{ID: "building", Capacity: 5000}},
		Doors: []DoorInfo{{ID: "main", From: "outside", To: "building"}}}
	h := newHarness(t, site)
	flushAt := hs[0].Start.Add(6 * time.Hour)
	var occ int64
	var prevIn, prevOut uint64
	for _, p := range replay.Spread(hs, 3) {
		at := p.At.Add(-time.Second)
		occ = max(0, occ+int64(p.In-prevIn)-int64(p.Out-prevOut))
		prevIn, prevOut = p.In, p.Out
		snap := &zones.Snapshot{Taken: at,
			Zones: []zones.ZoneState{{ID: "building", Occupancy: occ, Capacity: 5000, Ratio: float64(occ) / 5000}},
			Doors: []zones.DoorState{{ID: "main", In: p.In, Out: p.Out}}}
		if h.c.at == 0 {
			// The recorder's first look sets the door's baseline: start from zero totals.
			h.c.observe(at.Add(-time.Minute).UnixMilli(), &zones.Snapshot{Zones: snap.Zones[:1:1],
				Doors: []zones.DoorState{{ID: "main"}}}, nil, true)
		}
		h.c.observe(at.UnixMilli(), snap, nil, true)
		if at.After(flushAt) {
			h.flush(at)
			flushAt = flushAt.Add(6 * time.Hour)
		}
	}
	end := hs[len(hs)-1].End.Add(time.Hour)
	h.flush(end)
	return h, hs
}

// TestCalIt2DailyTotalsEqualFile: every day's report gives the file's daily sums, including
// 2005-10-30, which lasted 25 hours.
func TestCalIt2DailyTotalsEqualFile(t *testing.T) {
	h, hs := importCalIt2(t)
	r := h.reader()
	var bad []string
	var in, out int64
	for _, d := range replay.DailyTotals(hs) {
		day, _ := time.ParseInLocation(time.DateOnly, d.Date, hs[0].Start.Location())
		rep, err := r.Daily(context.Background(), day)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Visitors != int64(d.In) || rep.Departures != int64(d.Out) {
			bad = append(bad, fmt.Sprintf("%s: report %d in %d out, file %d in %d out", d.Date, rep.Visitors, rep.Departures, d.In, d.Out))
		}
		if rep.Zones[0].Entries != rep.Visitors {
			bad = append(bad, fmt.Sprintf("%s: zone entries %d, door visitors %d", d.Date, rep.Zones[0].Entries, rep.Visitors))
		}
		in += rep.Visitors
		out += rep.Departures
	}
	if len(bad) > 0 {
		t.Fatalf("%d days differ:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	if in != 19597 || out != 18837 {
		t.Fatalf("totals %d in %d out, want 19,597 and 18,837", in, out)
	}
}

type event struct{ from, to time.Time }

// loadEvents reads CalIt2.events: MM/DD/YY,HH:MM:SS,HH:MM:SS,label.
func loadEvents(t testing.TB, loc *time.Location) []event {
	f, err := os.Open(calit2Dir + "CalIt2.events")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	var evs []event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ",")
		if len(fs) < 3 {
			t.Fatalf("event line %q", sc.Text())
		}
		a, err1 := time.ParseInLocation("01/02/06 15:04:05", fs[0]+" "+fs[1], loc)
		b, err2 := time.ParseInLocation("01/02/06 15:04:05", fs[0]+" "+fs[2], loc)
		if err1 != nil || err2 != nil {
			t.Fatalf("event line %q: %v %v", sc.Text(), err1, err2)
		}
		evs = append(evs, event{a, b})
	}
	return evs
}

// TestUnusualTrafficOnCalIt2 evaluates the unusual-traffic flag against the 30 known events.
// A flagged half hour is a true positive when it overlaps an event or the half hour before it
// (people arrive before a conference starts); an event is found when one of its half hours, or
// the one before it, is flagged. Events in the first two weeks cannot be judged (no past weeks)
// and are left out of recall. The figures go to docs/accuracy.md.
func TestUnusualTrafficOnCalIt2(t *testing.T) {
	h, hs := importCalIt2(t)
	loc := hs[0].Start.Location()
	evs := loadEvents(t, loc)
	var since int64
	_ = h.reader().view(context.Background(), func(q *txq) error { since = q.firstRecord(); return nil })
	judged := time.UnixMilli(since).AddDate(0, 0, 7*DefaultUnusual.MinWeeks)
	evaluate := func(o UnusualOptions) (flagged []UnusualSlot, precision, recall float64, tp, found, judgedEvents int) {
		err := h.reader().view(context.Background(), func(q *txq) error {
			var err error
			flagged, err = q.unusual(hs[0].Start.UnixMilli(), hs[len(hs)-1].End.UnixMilli(), o)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		near := func(s UnusualSlot, e event) bool {
			return s.Start.Before(e.to) && s.End.After(e.from.Add(-HalfHour))
		}
		for _, s := range flagged {
			for _, e := range evs {
				if near(s, e) {
					tp++
					break
				}
			}
		}
		for _, e := range evs {
			if e.from.Before(judged) {
				continue
			}
			judgedEvents++
			for _, s := range flagged {
				if near(s, e) {
					found++
					break
				}
			}
		}
		return flagged, float64(tp) / float64(max(len(flagged), 1)), float64(found) / float64(max(judgedEvents, 1)), tp, found, judgedEvents
	}
	// The trade-off, for the docs: stricter settings flag less and find fewer events.
	for _, z := range []float64{3, 4, 5, 6} {
		for _, ex := range []float64{10, 15, 20} {
			o := DefaultUnusual
			o.Z, o.MinExcess = z, ex
			f, p, r, _, _, _ := evaluate(o)
			t.Logf("Z %.0f, min excess %2.0f: %3d flagged, precision %.2f, recall %.2f", z, ex, len(f), p, r)
		}
	}
	flagged, precision, recall, tp, found, judgedEvents := evaluate(DefaultUnusual)
	t.Logf("default %+v: %d half hours flagged, %d near a known event: precision %.2f; %d of %d judged events found: recall %.2f",
		DefaultUnusual, len(flagged), tp, precision, found, judgedEvents, recall)
	if testing.Verbose() {
		for _, s := range flagged {
			t.Logf("flagged %s %d visitors, baseline %.1f over %d weeks", s.Start.Format("Mon 2006-01-02 15:04"), s.Visitors, s.Baseline, s.Weeks)
		}
	}
	// A daily report reads only the same day of past weeks; it must flag what the whole run did.
	day := time.Date(2005, 10, 24, 0, 0, 0, 0, loc)
	rep, err := h.reader().Daily(context.Background(), day)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range flagged {
		if s.Start.Format(time.DateOnly) == "2005-10-24" {
			want = append(want, s.Start.Format("15:04"))
		}
	}
	var got []string
	for _, s := range rep.Unusual {
		got = append(got, s.Start.Format("15:04"))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") || len(want) == 0 {
		t.Errorf("daily report flags %v, the whole run %v", got, want)
	}
	if precision < 0.45 || recall < 0.7 {
		t.Errorf("precision %.2f or recall %.2f below the floors of 0.45 and 0.7", precision, recall)
	}
}
