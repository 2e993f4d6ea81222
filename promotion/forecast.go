package promotion

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/history"
)

// SlotLength is the forecast's and the roster's resolution.
const SlotLength = 30 * time.Minute

// Slot is one half hour of one zone on a recorded day.
type Slot struct {
	Entries int64 // people who came into the zone
	Peak    int64 // the highest occupancy
	Known   bool  // something was recorded in it
}

// Day is a comparable day: its half hours from the time that lines up with the plan's start.
type Day struct {
	Label string            // the date, or the earlier event's id
	Start time.Time         // what lines up with the plan's start
	Zones map[string][]Slot // per zone, SlotLength each
}

// Range is a figure over the comparable days, scaled: their mean, least and most.
type Range struct {
	Expected float64 `json:"expected"`
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
}

// Forecast is what a plan's day is expected to bring, per half hour and zone.
type Forecast struct {
	Event string    `json:"event"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Scale float64   `json:"scale"`
	// Basis says which days were compared: "events" (earlier events of the plan's kind),
	// "weekday" (the same weekday of earlier weeks) or "none" (nothing recorded).
	Basis string      `json:"basis"`
	Days  []string    `json:"days"`
	Slots []time.Time `json:"slots"` // each half hour's start
	// Arrivals are the people coming into the store (the top zones' entries) per half hour.
	// null where no comparable day recorded the half hour.
	Arrivals []*Range       `json:"arrivals"`
	Zones    []ZoneForecast `json:"zones"`
}

// ZoneForecast is one zone's expected figures.
type ZoneForecast struct {
	Zone     string   `json:"zone"`
	Name     string   `json:"name,omitempty"`
	Capacity int      `json:"capacity"` // in force during the plan
	Peak     *Range   `json:"peak"`     // the day's peak occupancy; null without history
	Entries  []*Range `json:"entries"`
	// Occupancy is the peak occupancy per half hour.
	Occupancy []*Range `json:"occupancy"`
}

// slotsOf is how many half hours cover [start, end).
func slotsOf(start, end time.Time) int {
	return int((end.Sub(start) + SlotLength - 1) / SlotLength)
}

// BuildForecast works out the forecast of plan from the comparable days (already chosen),
// scaled by the plan's factor.
func BuildForecast(cfg *configs.Config, plan configs.EventPlan, basis string, days []Day) *Forecast {
	n := slotsOf(plan.Start, plan.End)
	scale := plan.Scale()
	f := &Forecast{Event: plan.ID, Start: plan.Start, End: plan.End, Scale: scale, Basis: basis, Days: []string{},
		Slots: make([]time.Time, n), Arrivals: make([]*Range, n)}
	if len(days) == 0 {
		f.Basis = "none"
	}
	for _, d := range days {
		f.Days = append(f.Days, d.Label)
	}
	for i := range n {
		f.Slots[i] = plan.Start.Add(time.Duration(i) * SlotLength)
	}
	var roots []string
	for _, z := range cfg.Zones {
		if z.Parent == "" {
			roots = append(roots, z.ID)
		}
		zf := ZoneForecast{Zone: z.ID, Name: z.Name, Capacity: z.Capacity, Entries: make([]*Range, n), Occupancy: make([]*Range, n)}
		if c, ok := plan.Capacities[z.ID]; ok {
			zf.Capacity = c
		}
		var peaks []float64
		for _, d := range days {
			best, any := int64(0), false
			for _, s := range d.Zones[z.ID] {
				if s.Known {
					best, any = max(best, s.Peak), true
				}
			}
			if any {
				peaks = append(peaks, float64(best))
			}
		}
		zf.Peak = rangeOf(peaks, scale)
		for i := range n {
			var es, ps []float64
			for _, d := range days {
				if s := d.Zones[z.ID]; i < len(s) && s[i].Known {
					es = append(es, float64(s[i].Entries))
					ps = append(ps, float64(s[i].Peak))
				}
			}
			zf.Entries[i], zf.Occupancy[i] = rangeOf(es, scale), rangeOf(ps, scale)
		}
		f.Zones = append(f.Zones, zf)
	}
	for i := range n {
		var sums []float64
		for _, d := range days {
			sum, known := 0.0, false
			for _, r := range roots {
				if s := d.Zones[r]; i < len(s) && s[i].Known {
					sum, known = sum+float64(s[i].Entries), true
				}
			}
			if known {
				sums = append(sums, sum)
			}
		}
		f.Arrivals[i] = rangeOf(sums, scale)
	}
	return f
}

// rangeOf is the mean, least and most of vs times scale; nil without values.
func rangeOf(vs []float64, scale float64) *Range {
	if len(vs) == 0 {
		return nil
	}
	r := Range{Low: math.Inf(1), High: math.Inf(-1)}
	for _, v := range vs {
		r.Expected += v
		r.Low, r.High = min(r.Low, v), max(r.High, v)
	}
	r.Expected /= float64(len(vs))
	return &Range{Expected: round1(r.Expected * scale), Low: round1(r.Low * scale), High: round1(r.High * scale)}
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// SeriesReader is what the forecast reads from history (history.Reader).
type SeriesReader interface {
	History(ctx context.Context, q history.Query) (*history.Series, error)
}

// ComparableDays chooses and reads the days plan is compared with: the earlier events of its
// kind that left a record (up to staffing.weeks of them), else the same weekday of the
// staffing.weeks weeks before, at the same clock time, leaving out days another plan ran.
func ComparableDays(ctx context.Context, cfg *configs.Config, sched *Schedule, h SeriesReader, plan configs.EventPlan) (string, []Day, error) {
	length := plan.End.Sub(plan.Start)
	var days []Day
	for _, e := range sched.Earlier(plan.Kind, plan.Start) {
		if len(days) >= cfg.Staffing.Weeks {
			break
		}
		d, err := readDay(ctx, cfg, h, e.ID, e.Start, min(length, e.End.Sub(e.Start)), plan)
		if err != nil {
			return "", nil, err
		}
		if d != nil {
			days = append(days, *d)
		}
	}
	if len(days) > 0 {
		return "events", days, nil
	}
	loc := cfg.Location
	for k := 1; k <= cfg.Staffing.Weeks; k++ {
		s := plan.Start.In(loc).AddDate(0, 0, -7*k)
		if busy := sched.overlapping(s, s.Add(length)); busy {
			continue
		}
		d, err := readDay(ctx, cfg, h, s.Format(time.DateOnly), s, length, plan)
		if err != nil {
			return "", nil, err
		}
		if d != nil {
			days = append(days, *d)
		}
	}
	return "weekday", days, nil
}

// overlapping: does any plan run in [a, b)?
func (s *Schedule) overlapping(a, b time.Time) bool {
	for _, p := range s.plans {
		if p.Start.Before(b) && a.Before(p.End) {
			return true
		}
	}
	return false
}

// readDay reads the half hours of [start, start+length) for every zone; nil when nothing was
// recorded then.
func readDay(ctx context.Context, cfg *configs.Config, h SeriesReader, label string, start time.Time, length time.Duration, plan configs.EventPlan) (*Day, error) {
	n := slotsOf(plan.Start, plan.End)
	s, err := h.History(ctx, history.Query{From: start, To: start.Add(time.Duration(n) * SlotLength), Step: history.Step{D: SlotLength}})
	if err != nil {
		return nil, fmt.Errorf("forecast: reading %s: %w", label, err)
	}
	d := &Day{Label: label, Start: start, Zones: map[string][]Slot{}}
	known := false
	cut := start.Add(length)
	for _, z := range s.Zones {
		slots := make([]Slot, n)
		for _, p := range z.Points {
			i := int(p.Start.Sub(start) / SlotLength)
			if i < 0 || i >= n || !p.Start.Before(cut) || p.CoveredS <= 0 || p.Max == nil {
				continue
			}
			slots[i] = Slot{Entries: p.Entries, Peak: *p.Max, Known: true}
			known = true
		}
		d.Zones[z.Zone] = slots
	}
	if !known {
		return nil, nil
	}
	return d, nil
}
