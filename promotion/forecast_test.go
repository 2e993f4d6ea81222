package promotion

import (
	"context"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/history"
)

// patternHistory is a history with a known pattern: on the recorded days (by local date) the
// zone's half hour i has entries (i+1) x 10 x factor and peak (i+1) x 20 x factor.
type patternHistory struct {
	cfg     *configs.Config
	factors map[string]float64 // date -> factor
	queries int
}

func (h *patternHistory) History(_ context.Context, q history.Query) (*history.Series, error) {
	h.queries++
	s := &history.Series{From: q.From, To: q.To}
	f, ok := h.factors[q.From.In(h.cfg.Location).Format(time.DateOnly)]
	for _, z := range h.cfg.Zones {
		zs := history.ZoneSeries{Zone: z.ID}
		for i, t := 0, q.From; t.Before(q.To); i, t = i+1, t.Add(q.Step.D) {
			p := history.Point{Start: t, End: t.Add(q.Step.D)}
			if ok {
				mx := int64(float64((i+1)*20) * f)
				p.CoveredS, p.Entries, p.Max = 1800, int64(float64((i+1)*10)*f), &mx
			}
			zs.Points = append(zs.Points, p)
		}
		s.Zones = append(s.Zones, zs)
	}
	return s, nil
}

// TestForecastFromWeekdays: four earlier Thursdays at 1, 2, 3 and 2 times the pattern (one
// Thursday not recorded at all) give the mean, least and most, times the scale.
func TestForecastFromWeekdays(t *testing.T) {
	cfg := testStore(t)
	cfg.Staffing.Weeks = 5
	// The plan: Thursday 2026-11-12 10:00-12:00 UTC, scale 1.5.
	plan := configs.EventPlan{ID: "sale", Kind: "flash", StartText: "2026-11-12 10:00", EndText: "2026-11-12 12:00", ForecastScale: 1.5,
		Capacities: map[string]int{"hall": 150}, Metered: []configs.MeteredDoor{{Door: "main", Queue: ""}}}
	if err := cfg.CheckEvent(&plan); err != nil {
		t.Fatal(err)
	}
	h := &patternHistory{cfg: cfg, factors: map[string]float64{"2026-11-05": 1, "2026-10-29": 2, "2026-10-22": 3, "2026-10-08": 2}}
	sched := ScheduleFromConfig(cfg) // the file's d11 plan (2026-11-11) is not a Thursday's 10:00
	basis, days, err := ComparableDays(context.Background(), cfg, sched, h, plan)
	if err != nil {
		t.Fatal(err)
	}
	if basis != "weekday" || len(days) != 4 || h.queries != 5 {
		t.Fatalf("basis %s, %d days, %d queries", basis, len(days), h.queries)
	}
	f := BuildForecast(cfg, plan, basis, days)
	if len(f.Slots) != 4 || f.Days[0] != "2026-11-05" {
		t.Fatalf("slots %v days %v", f.Slots, f.Days)
	}
	// Factors 1, 2, 3, 2: mean 2, least 1, most 3; times 1.5.
	for i := range 4 {
		base := float64((i + 1) * 10)
		want := Range{Expected: base * 2 * 1.5, Low: base * 1.5, High: base * 3 * 1.5}
		if got := *f.Zones[1].Entries[i]; got != want {
			t.Errorf("hall entries in half hour %d: %+v, want %+v", i, got, want)
		}
		// Arrivals are the top zones' entries: store and nook, the same pattern each.
		if got := *f.Arrivals[i]; got.Expected != 2*want.Expected || got.Low != 2*want.Low || got.High != 2*want.High {
			t.Errorf("arrivals in half hour %d: %+v", i, got)
		}
	}
	// The day's peak is the last half hour's: 80 x factor.
	if p := f.Zones[1].Peak; p == nil || *p != (Range{Expected: 240, Low: 120, High: 360}) {
		t.Errorf("hall peak %+v", p)
	}
	if f.Zones[1].Capacity != 150 || f.Zones[0].Capacity != 1000 {
		t.Errorf("capacities in force %d %d", f.Zones[1].Capacity, f.Zones[0].Capacity)
	}

	// Staffing with the default rules: one post per entrance, exit and queue, one more per
	// 100 people at the high end.
	r := BuildRoster(cfg, plan, f)
	hall := r.Zones[1]
	if len(hall.Entrances) != 2 || len(hall.Exits) != 1 || len(hall.Queues) != 1 || hall.Fixed != 4 {
		t.Fatalf("hall posts %+v", hall)
	}
	// The hall's high end per half hour: 20, 40, 60, 80 x 3 x 1.5 = 90, 180, 270, 360.
	for i, want := range []int{4 + 1, 4 + 2, 4 + 3, 4 + 4} {
		if hall.Staff[i] != want {
			t.Errorf("hall staff in half hour %d: %d, want %d", i, hall.Staff[i], want)
		}
	}
	// The store's own part: its figure less the hall's and the upper floor's (same pattern
	// each, so none left); its one post is the back door.
	store := r.Zones[0]
	if store.Fixed != 1 || store.Staff[3] != 1 || len(store.Entrances) != 1 {
		t.Errorf("store %+v", store)
	}
	sum := 0
	for _, z := range r.Zones {
		sum += z.Staff[3]
	}
	if r.Total[3] != sum {
		t.Errorf("total %d, sum %d", r.Total[3], sum)
	}
}

// TestForecastFromEarlierEvents: an earlier event of the same kind is preferred to weekdays,
// and without any history the roster staffs for the capacity in force.
func TestForecastFromEarlierEvents(t *testing.T) {
	cfg := testStore(t)
	plan := configs.EventPlan{ID: "d11b", Kind: "double11", StartText: "2027-11-11 07:00", EndText: "2027-11-11 08:00"}
	if err := cfg.CheckEvent(&plan); err != nil {
		t.Fatal(err)
	}
	h := &patternHistory{cfg: cfg, factors: map[string]float64{"2026-11-11": 2}}
	basis, days, err := ComparableDays(context.Background(), cfg, ScheduleFromConfig(cfg), h, plan)
	if err != nil || basis != "events" || len(days) != 1 || days[0].Label != "d11" {
		t.Fatalf("%v %s %+v", err, basis, days)
	}
	f := BuildForecast(cfg, plan, basis, days)
	if got := *f.Zones[1].Entries[1]; got.Expected != 40 {
		t.Errorf("entries %+v", got)
	}
	empty := BuildForecast(cfg, plan, "weekday", nil)
	if empty.Basis != "none" || empty.Zones[1].Peak != nil {
		t.Errorf("no history: %+v", empty)
	}
	r := BuildRoster(cfg, plan, empty)
	// The hall (capacity 300): 3 fixed posts (no queue) + 3 per 100.
	if r.Zones[1].Staff[0] != 6 || !r.Zones[1].FromCapacity[0] {
		t.Errorf("hall roster without history %+v", r.Zones[1])
	}
	cfg.Staffing.PeoplePerStaff = 30
	if r := BuildRoster(cfg, plan, empty); r.Zones[1].Staff[0] != 3+10 {
		t.Errorf("one per 30: %+v", r.Zones[1])
	}
}
