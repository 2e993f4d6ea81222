package alerting

import (
	"fmt"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/levels"
)

// Limits are one zone's resolved thresholds (configs.Thresholds with every field filled).
type Limits struct {
	// Ratio and Density triggers per level (index = levels.Level); 0 = that trigger is off.
	levels.Triggers
	// For is the hold-down per level.
	For         [levels.Count]time.Duration
	ClearFactor float64
	ClearAfter  time.Duration
	SurgePerMin float64
	SurgeWindow time.Duration
	FullHorizon time.Duration
	FullFor     time.Duration
}

// Built-in defaults: the level thresholds are the shared vocabulary's (package levels, which
// gives their sources); the surge and time-to-full figures are alerting's own.
var builtin = configs.Thresholds{
	BusyRatio:       ptr(levels.BusyRatio),
	WarningRatio:    ptr(levels.WarningRatio),
	CriticalRatio:   ptr(levels.CriticalRatio),
	EvacuateRatio:   ptr(levels.EvacuateRatio),
	WarningDensity:  ptr(levels.WarningDensity),
	CriticalDensity: ptr(levels.CriticalDensity),
	EvacuateDensity: ptr(levels.EvacuateDensity),
	WarningFor:      ptr(levels.WarningFor),
	CriticalFor:     ptr(levels.CriticalFor),
	EvacuateFor:     ptr(levels.EvacuateFor),
	ClearFactor:     ptr(levels.ClearFactor),
	ClearAfter:      ptr(levels.ClearAfter),
	SurgePerMin:     ptr(0.0),
	SurgeWindow:     ptr(time.Minute),
	FullHorizon:     ptr(5 * time.Minute),
	FullFor:         ptr(15 * time.Second),
}

func ptr[T any](v T) *T { return &v }

func pick[T any](vals ...*T) T {
	for _, v := range vals {
		if v != nil {
			return *v
		}
	}
	var zero T
	return zero
}

// ResolveLimits merges a zone's thresholds over the defaults block over the built-in figures,
// and checks the result is ordered (a zone override can break the order the defaults had).
func ResolveLimits(zone, defaults *configs.Thresholds) (Limits, error) {
	if zone == nil {
		zone = &configs.Thresholds{}
	}
	if defaults == nil {
		defaults = &configs.Thresholds{}
	}
	z, d, b := zone, defaults, &builtin
	l := Limits{
		ClearFactor: pick(z.ClearFactor, d.ClearFactor, b.ClearFactor),
		ClearAfter:  pick(z.ClearAfter, d.ClearAfter, b.ClearAfter),
		SurgePerMin: pick(z.SurgePerMin, d.SurgePerMin, b.SurgePerMin),
		SurgeWindow: pick(z.SurgeWindow, d.SurgeWindow, b.SurgeWindow),
		FullHorizon: pick(z.FullHorizon, d.FullHorizon, b.FullHorizon),
		FullFor:     pick(z.FullFor, d.FullFor, b.FullFor),
	}
	l.Ratio[levels.Busy] = pick(z.BusyRatio, d.BusyRatio, b.BusyRatio)
	l.Ratio[levels.Warning] = pick(z.WarningRatio, d.WarningRatio, b.WarningRatio)
	l.Ratio[levels.Critical] = pick(z.CriticalRatio, d.CriticalRatio, b.CriticalRatio)
	l.Ratio[levels.Evacuate] = pick(z.EvacuateRatio, d.EvacuateRatio, b.EvacuateRatio)
	l.Density[levels.Warning] = pick(z.WarningDensity, d.WarningDensity, b.WarningDensity)
	l.Density[levels.Critical] = pick(z.CriticalDensity, d.CriticalDensity, b.CriticalDensity)
	l.Density[levels.Evacuate] = pick(z.EvacuateDensity, d.EvacuateDensity, b.EvacuateDensity)
	l.For[levels.Warning] = pick(z.WarningFor, d.WarningFor, b.WarningFor)
	l.For[levels.Critical] = pick(z.CriticalFor, d.CriticalFor, b.CriticalFor)
	l.For[levels.Evacuate] = pick(z.EvacuateFor, d.EvacuateFor, b.EvacuateFor)
	for _, t := range []struct {
		name string
		v    [levels.Count]float64
	}{{"ratio", l.Ratio}, {"density", l.Density}} {
		last := 0.0
		for lv := levels.Busy; lv <= levels.Evacuate; lv++ {
			if t.v[lv] == 0 {
				continue
			}
			if t.v[lv] <= last {
				return l, fmt.Errorf("%s_%s %v must be above the lower levels' %s (%v)", lv, t.name, t.v[lv], t.name, last)
			}
			last = t.v[lv]
		}
	}
	return l, nil
}

// severityOf is each level's severity as an alert.
func severityOf(l levels.Level) Severity {
	switch l {
	case levels.Evacuate:
		return SeverityEmergency
	case levels.Critical:
		return SeverityCritical
	case levels.Warning:
		return SeverityWarning
	}
	return SeverityInfo
}

// levelTracker applies hold-downs and hysteresis to one zone's level. A level is entered
// once the figures have stayed at or above its trigger for its hold-down; it is left once
// they have stayed below ClearFactor x its trigger for ClearAfter, and then drops to the
// highest level the figures still hold.
type levelTracker struct {
	Level levels.Level `json:"level"`
	// Above[lv] is since when the figures have been at or above level lv's trigger.
	Above [levels.Count]time.Time `json:"above"`
	// Below is since when the figures have been under the current level's clear line.
	Below time.Time `json:"below"`
	// Since is when the current level was entered.
	Since time.Time `json:"since"`
	// Shown is the level the map, the screens, the API and the zone topic show: it rises the
	// moment the figures reach a trigger (no hold-down) and falls only once they are below
	// the clear line (ClearFactor x the trigger), with no time delay. Level is the paged
	// level, which waits out the hold-downs and ClearAfter.
	Shown levels.Level `json:"shown"`
}

// step moves the tracker to now and returns the level.
func (t *levelTracker) step(l *Limits, ratio float64, density *float64, now time.Time) levels.Level {
	enter := l.Reached(ratio, density, 1)
	t.Shown = shownLevel(l, t.Shown, ratio, density)
	for lv := levels.Busy; lv <= levels.Evacuate; lv++ {
		switch {
		case lv > enter:
			t.Above[lv] = time.Time{}
		case t.Above[lv].IsZero():
			t.Above[lv] = now
		}
	}
	for lv := levels.Evacuate; lv > t.Level; lv-- {
		if !t.Above[lv].IsZero() && now.Sub(t.Above[lv]) >= l.For[lv] {
			t.Level, t.Since, t.Below = lv, now, time.Time{}
			return t.Level
		}
	}
	if t.Level == levels.Normal {
		return t.Level
	}
	hold := l.Reached(ratio, density, l.ClearFactor)
	if hold >= t.Level {
		t.Below = time.Time{}
		return t.Level
	}
	if t.Below.IsZero() {
		t.Below = now
	}
	if now.Sub(t.Below) >= l.ClearAfter {
		t.Level, t.Since, t.Below = hold, now, time.Time{}
	}
	return t.Level
}

// shownLevel is the level a zone is shown at, given the level it is shown at now: at once the
// highest level whose trigger the figures reach, and a lower one only once the figures are
// below the shown level's clear line (the hysteresis of alerting, without its delays), so
// a figure over a trigger is never drawn below that trigger's level and the colour does not
// flicker at a threshold.
func shownLevel(l *Limits, shown levels.Level, ratio float64, density *float64) levels.Level {
	enter := l.Reached(ratio, density, 1)
	keep := l.Reached(ratio, density, l.ClearFactor)
	return max(enter, min(shown, keep))
}

// pending is the level of an alert waiting out its hold-down: the highest level above the
// paged one whose trigger the figures have been at since Above[lv]; ok false when none.
func (t *levelTracker) pending() (lv levels.Level, since time.Time, ok bool) {
	for lv := levels.Evacuate; lv > t.Level && lv >= levels.Warning; lv-- {
		if !t.Above[lv].IsZero() {
			return lv, t.Above[lv], true
		}
	}
	return levels.Normal, time.Time{}, false
}
