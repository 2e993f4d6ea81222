// Package levels is the crowd-level vocabulary every part of the service shares: the levels
// (normal, busy, warning, critical, evacuate), their names on the wire, and the built-in
// thresholds that put a zone's figures at a level. alerting (hold-downs, hysteresis, paging),
// history (what is recorded and charted) and the guidance screens all read levels from here,
// so that a figure means the same level everywhere. It imports nothing of the project.
package levels

import "time"

// Level is a zone's crowd level, in increasing order of danger.
type Level int

const (
	Normal Level = iota
	Busy
	Warning
	Critical
	Evacuate
)

// Count is the number of levels: arrays indexed by Level have this length.
const Count = int(Evacuate) + 1

var names = [Count]string{"normal", "busy", "warning", "critical", "evacuate"}

func (l Level) String() string {
	if l < 0 || int(l) >= len(names) {
		return "unknown"
	}
	return names[l]
}

// MarshalText writes the level's name, so JSON carries "warning", not 2.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a level's name.
func (l *Level) UnmarshalText(b []byte) error {
	lv, ok := Parse(string(b))
	if !ok {
		return &UnknownError{Name: string(b)}
	}
	*l = lv
	return nil
}

// Parse reads a level's name.
func Parse(s string) (Level, bool) {
	for i, n := range names {
		if n == s {
			return Level(i), true
		}
	}
	return Normal, false
}

// UnknownError names a level that does not exist.
type UnknownError struct{ Name string }

func (e *UnknownError) Error() string {
	return "unknown level \"" + e.Name + "\" (normal, busy, warning, critical, evacuate)"
}

// Built-in thresholds. Sources: the crowd-safety figures (density 2 / 3.5 / 5 persons per m²;
// occupancy ratio 0.85 and 1.0; hold-downs 60 s / 15 s / 0 s; clear below 90 %). Busy at 60 %
// of capacity is a design choice: the point where a guidance screen starts pointing to
// alternatives. There is no evacuate ratio: a full store is critical, a crush is a density.
const (
	BusyRatio       = 0.6
	WarningRatio    = 0.85
	CriticalRatio   = 1.0
	EvacuateRatio   = 0.0 // off
	WarningDensity  = 2.0 // persons per m²
	CriticalDensity = 3.5
	EvacuateDensity = 5.0

	WarningFor  = 60 * time.Second
	CriticalFor = 15 * time.Second
	EvacuateFor = time.Duration(0)

	// ClearFactor is the hysteresis: a level is left once the figures are below this
	// fraction of its trigger.
	ClearFactor = 0.9
	ClearAfter  = 30 * time.Second
)

// Triggers are the figures at which a zone enters each level, indexed by Level; 0 means that
// trigger is off.
type Triggers struct {
	Ratio   [Count]float64 // occupancy / capacity
	Density [Count]float64 // persons per m²
}

// Default are the built-in triggers.
func Default() Triggers {
	var t Triggers
	t.Ratio[Busy], t.Ratio[Warning], t.Ratio[Critical], t.Ratio[Evacuate] = BusyRatio, WarningRatio, CriticalRatio, EvacuateRatio
	t.Density[Warning], t.Density[Critical], t.Density[Evacuate] = WarningDensity, CriticalDensity, EvacuateDensity
	return t
}

// Reached is how far a zone's figures go: the highest level whose ratio or density trigger
// they meet (the worse of the two counts), with scale applied to every trigger (1 to enter a
// level, the clear factor to stay in it).
func (t *Triggers) Reached(ratio float64, density *float64, scale float64) Level {
	top := Normal
	for lv := Busy; lv <= Evacuate; lv++ {
		if r := t.Ratio[lv]; r > 0 && ratio >= r*scale {
			top = lv
		}
		if d := t.Density[lv]; d > 0 && density != nil && *density >= d*scale {
			top = lv
		}
	}
	return top
}

// Occupancy is the number of persons at which a zone of this capacity and area enters lv:
// the lower of its ratio and density triggers; ok is false when neither applies.
func (t *Triggers) Occupancy(lv Level, capacity int, areaM2 float64) (occ float64, ok bool) {
	if r := t.Ratio[lv]; r > 0 && capacity > 0 {
		occ, ok = r*float64(capacity), true
	}
	if d := t.Density[lv]; d > 0 && areaM2 > 0 {
		if v := d * areaM2; !ok || v < occ {
			occ, ok = v, true
		}
	}
	return occ, ok
}

var builtin = Default()

// Instant is a zone's level by the built-in triggers alone, without hold-downs or
// hysteresis: the fallback of screens and history for a zone the alert manager has not
// evaluated yet.
func Instant(ratio float64, density *float64) Level {
	return builtin.Reached(ratio, density, 1)
}
