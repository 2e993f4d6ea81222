package history

import (
	"context"
	"testing"
	"time"
)

// TestQueryResolutionsAgree: raw, minute, hour and day steps over the same period, which ends
// in the middle of an hour the recorder has not closed, give the same totals, peaks and
// coverage: the composition of stored windows and finer data loses and repeats nothing.
func TestQueryResolutionsAgree(t *testing.T) {
	la, _ := time.LoadLocation("America/Los_Angeles")
	site := testSite(la)
	h := newHarness(t, site)
	h.flushEvery = 15 * time.Second
	c := newCrowd(site, 5)
	a := time.Date(2026, 11, 1, 0, 0, 0, 0, la) // a 25-hour day
	end := a.Add(3*time.Hour + 17*time.Minute + 40*time.Second)
	h.run(c, a, end, func(t time.Time) int { return 2 + t.Minute()%5 })
	to := a.AddDate(0, 0, 1)
	type total struct {
		entries, exits, max int64
		covered             float64
		points              int
	}
	var want total
	for i, step := range []string{"5s", "1m", "15m", "1h", "1d"} {
		st, _ := ParseStep(step)
		s, err := h.reader().History(context.Background(), Query{Zones: []string{"floor"}, From: a, To: to, Step: st})
		if err != nil {
			t.Fatal(err)
		}
		var got total
		for _, p := range s.Zones[0].Points {
			got.entries += p.Entries
			got.exits += p.Exits
			got.covered += p.CoveredS
			if p.Max != nil {
				got.max = max(got.max, *p.Max)
			}
		}
		got.points = len(s.Zones[0].Points)
		wantPoints := map[string]int{"5s": 25 * 720, "1m": 25 * 60, "15m": 25 * 4, "1h": 25, "1d": 1}[step]
		if got.points != wantPoints {
			t.Errorf("%s: %d points, want %d", step, got.points, wantPoints)
		}
		got.points = 0
		if i == 0 {
			want = got
			if want.entries == 0 || want.covered < 3*3600 {
				t.Fatalf("little recorded: %+v", want)
			}
			continue
		}
		if got != want {
			t.Errorf("step %s: %+v, step 5s: %+v", step, got, want)
		}
	}
}
