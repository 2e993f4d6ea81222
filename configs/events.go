package configs

import "time"

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
