package configs

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// EventPlan is a promotion's crowd-control plan, decided before the event (docs/events.md).
// While it runs (Start <= now < End) its Capacities replace the zones' everyday ones
// everywhere: levels, screens, reports. Plans come from the store file (`events:`) or from
// the API (manager role); both have this shape.
//
// The times are written as RFC 3339 with a zone ("2026-11-11T07:00:00+08:00") or as a local
// "2026-11-11 07:00" in site.timezone; validation parses them into the fields without tags.
type EventPlan struct {
	ID    string `mapstructure:"id"`
	Names Names  `mapstructure:"name"`
	Name  string `mapstructure:"-"` // Names.Default()
	// Kind groups comparable events ("double11", "black-friday"): the forecast and the review
	// compare an event with earlier ones of its kind.
	Kind string `mapstructure:"kind"`

	StartText     string    `mapstructure:"start"`
	EndText       string    `mapstructure:"end"`
	DoorsOpenText string    `mapstructure:"doors_open"`
	Start         time.Time `mapstructure:"-"`
	End           time.Time `mapstructure:"-"`
	DoorsOpen     time.Time `mapstructure:"-"` // when the doors open to the public

	// Capacities are the event capacities per zone id, replacing zones[].capacity while the
	// plan runs. A zone not named keeps its everyday capacity.
	Capacities map[string]int `mapstructure:"capacities"`
	// Metered are the entrances whose screens meter admission while the plan runs.
	Metered []MeteredDoor `mapstructure:"metered"`
	// ForecastScale multiplies the forecast from comparable days (1 when 0).
	ForecastScale float64 `mapstructure:"forecast_scale"`
}

// MeteredDoor is an entrance whose guidance screen admits people at a controlled rate.
type MeteredDoor struct {
	Door string `mapstructure:"door"`
	// RatePerMin is the release rate below the limit, persons per minute; 0 means half the
	// door's flow limit (width_m x alerting.evac_time.flow_per_metre).
	RatePerMin float64 `mapstructure:"rate_per_min"`
	// Queue is the zone outside the door where the queue stands (an area sensor or its own
	// counters count it), "" when the queue is not counted.
	Queue string `mapstructure:"queue"`
}

// eventTime reads a plan's time: RFC 3339 with a zone, or "2006-01-02 15:04" in the site's zone.
func eventTime(text string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, text); err == nil {
		return t, nil
	}
	if loc == nil {
		loc = time.UTC
	}
	t, err := time.ParseInLocation("2006-01-02 15:04", text, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time: write 2026-11-11T08:00:00+08:00 or \"2026-11-11 08:00\" (site time)", text)
	}
	return t, nil
}

// validateEvents checks the promotion plans: ids, times in order, capacities of known zones,
// metered doors that exist.
func (c *Config) validateEvents(bad func(key, format string, args ...any)) {
	zones := map[string]bool{}
	for _, z := range c.Zones {
		zones[z.ID] = true
	}
	doors := map[string]bool{}
	for _, d := range c.Doors {
		doors[d.ID] = true
	}
	ids := map[string]int{}
	for i := range c.Events {
		e := &c.Events[i]
		key := fmt.Sprintf("events[%d]", i)
		if !idPattern.MatchString(e.ID) {
			bad(key+".id", "%q must be letters, digits, '.', '_' or '-' (at most 64)", e.ID)
		} else if j, dup := ids[e.ID]; dup {
			bad(key+".id", "duplicate event %q (also events[%d])", e.ID, j)
		} else {
			ids[e.ID] = i
		}
		e.Name = e.Names.Default()
		if e.Name == "" {
			e.Name = e.ID
		}
		var err error
		if e.Start, err = eventTime(e.StartText, c.Location); err != nil {
			bad(key+".start", "%v", err)
		}
		if e.End, err = eventTime(e.EndText, c.Location); err != nil {
			bad(key+".end", "%v", err)
		} else if !e.Start.IsZero() && !e.End.After(e.Start) {
			bad(key+".end", "%s must be after start %s", e.EndText, e.StartText)
		}
		if e.DoorsOpenText == "" {
			e.DoorsOpen = e.Start
		} else if e.DoorsOpen, err = eventTime(e.DoorsOpenText, c.Location); err != nil {
			bad(key+".doors_open", "%v", err)
		} else if !e.Start.IsZero() && !e.End.IsZero() && (e.DoorsOpen.Before(e.Start) || !e.DoorsOpen.Before(e.End)) {
			bad(key+".doors_open", "%s must be within the event (%s to %s)", e.DoorsOpenText, e.StartText, e.EndText)
		}
		for _, z := range slices.Sorted(maps.Keys(e.Capacities)) {
			if !zones[z] {
				bad(key+".capacities."+z, "unknown zone %q", z)
			} else if e.Capacities[z] <= 0 {
				bad(key+".capacities."+z, "capacity must be > 0, got %d", e.Capacities[z])
			}
		}
		seen := map[string]bool{}
		for j, m := range e.Metered {
			mk := fmt.Sprintf("%s.metered[%d]", key, j)
			switch {
			case !doors[m.Door]:
				bad(mk+".door", "unknown door %q", m.Door)
			case seen[m.Door]:
				bad(mk+".door", "door %q is metered twice", m.Door)
			}
			seen[m.Door] = true
			if m.RatePerMin < 0 || m.RatePerMin > 10000 {
				bad(mk+".rate_per_min", "%v must be between 0 (half the door's flow limit) and 10000", m.RatePerMin)
			}
			if m.Queue != "" && !zones[m.Queue] {
				bad(mk+".queue", "unknown zone %q", m.Queue)
			}
		}
		if e.ForecastScale < 0 || e.ForecastScale > 100 {
			bad(key+".forecast_scale", "%v must be between 0 (means 1) and 100", e.ForecastScale)
		}
	}
}
