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
// metered doors that exist, no two plans at once; and the assessment and staffing figures.
func (c *Config) validateEvents(bad func(key, format string, args ...any)) {
	ids := map[string]int{}
	for i := range c.Events {
		e := &c.Events[i]
		key := fmt.Sprintf("events[%d]", i)
		if j, dup := ids[e.ID]; dup && e.ID != "" {
			bad(key+".id", "duplicate event %q (also events[%d])", e.ID, j)
		} else {
			ids[e.ID] = i
		}
		c.checkEvent(key, e, bad)
	}
	for _, pair := range Overlapping(c.Events) {
		bad("events", "plans %s overlap: one plan at a time decides the capacities", pair)
	}
	c.validatePlanning(bad) // configs/planning.go
}

// CheckEvent validates one plan against the store (the API's plans), filling in its parsed
// times and name like validation does for the file's; the error lists every problem.
func (c *Config) CheckEvent(e *EventPlan) error {
	var errs []error
	c.checkEvent("event", e, func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	})
	if len(errs) > 0 {
		return &ValidationError{Problems: errs}
	}
	return nil
}

func (c *Config) checkEvent(key string, e *EventPlan, bad func(key, format string, args ...any)) {
	zones := map[string]bool{}
	for _, z := range c.Zones {
		zones[z.ID] = true
	}
	doors := map[string]bool{}
	for _, d := range c.Doors {
		doors[d.ID] = true
	}
	if !idPattern.MatchString(e.ID) {
		bad(key+".id", "%q must be letters, digits, '.', '_' or '-' (at most 64)", e.ID)
	}
	if e.Kind != "" && !idPattern.MatchString(e.Kind) {
		bad(key+".kind", "%q must be letters, digits, '.', '_' or '-' (at most 64)", e.Kind)
	}
	e.Names.validate(key+".name", bad)
	e.Name = e.Names.Default()
	if e.Name == "" {
		e.Name = e.ID
	}
	var err error
	e.Start, e.End, e.DoorsOpen = time.Time{}, time.Time{}, time.Time{}
	if e.Start, err = eventTime(e.StartText, c.Location); err != nil {
		bad(key+".start", "%v", err)
	}
	if e.End, err = eventTime(e.EndText, c.Location); err != nil {
		bad(key+".end", "%v", err)
	} else if !e.Start.IsZero() && !e.End.After(e.Start) {
		bad(key+".end", "%s must be after start %s", e.EndText, e.StartText)
	} else if !e.Start.IsZero() && e.End.Sub(e.Start) > MaxEventSpan {
		bad(key+".end", "the event lasts %v, more than %v: plan each day of a long promotion on its own", e.End.Sub(e.Start), MaxEventSpan)
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
		} else if e.Capacities[z] <= 0 || e.Capacities[z] > MaxCapacity {
			bad(key+".capacities."+z, "capacity must be between 1 and %d, got %d", MaxCapacity, e.Capacities[z])
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

// MaxEventSpan is the longest one plan may run: its forecast, roster and review are per half
// hour, and a plan that silently held event capacities for weeks would be a mistake.
const MaxEventSpan = 7 * 24 * time.Hour

// Scale is the plan's forecast scale factor (1 when not set).
func (e *EventPlan) Scale() float64 {
	if e.ForecastScale == 0 {
		return 1
	}
	return e.ForecastScale
}
