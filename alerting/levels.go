package alerting

import (
	"fmt"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

// Limits are one zone's resolved thresholds (configs.Thresholds with every field filled).
type Limits struct {
	// Ratio and Density triggers per level (index = Level); 0 = that trigger is off.
	Ratio   [5]float64
	Density [5]float64
	// For is the hold-down per level.
	For         [5]time.Duration
	ClearFactor float64
	ClearAfter  time.Duration
	SurgePerMin float64
	SurgeWindow time.Duration
	FullHorizon time.Duration
	FullFor     time.Duration
}

// Built-in defaults: crowd-safety.md (density 2 / 3.5 / 5 persons per m²; ratio 0.85 and 1.0;
// hold-downs 60 s / 15 s / 0 s; clear below 90 %). Busy at 60 % of capacity is a design
// choice: the point where a guidance screen starts pointing to alternatives.
var builtin = configs.Thresholds{
	BusyRatio:       ptr(0.6),
	WarningRatio:    ptr(0.85),
	CriticalRatio:   ptr(1.0),
	EvacuateRatio:   ptr(0.0),
	WarningDensity:  ptr(2.0),
	CriticalDensity: ptr(3.5),
	EvacuateDensity: ptr(5.0),
	WarningFor:      ptr(60 * time.Second),
	CriticalFor:     ptr(15 * time.Second),
	EvacuateFor:     ptr(time.Duration(0)),
	ClearFactor:     ptr(0.9),
	ClearAfter:      ptr(30 * time.Second),
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
	l.Ratio[LevelBusy] = pick(z.BusyRatio, d.BusyRatio, b.BusyRatio)
	l.Ratio[LevelWarning] = pick(z.WarningRatio, d.WarningRatio, b.WarningRatio)
	l.Ratio[LevelCritical] = pick(z.CriticalRatio, d.CriticalRatio, b.CriticalRatio)
	l.Ratio[LevelEvacuate] = pick(z.EvacuateRatio, d.EvacuateRatio, b.EvacuateRatio)
	l.Density[LevelWarning] = pick(z.WarningDensity, d.WarningDensity, b.WarningDensity)
	l.Density[LevelCritical] = pick(z.CriticalDensity, d.CriticalDensity, b.CriticalDensity)
	l.Density[LevelEvacuate] = pick(z.EvacuateDensity, d.EvacuateDensity, b.EvacuateDensity)
	l.For[LevelWarning] = pick(z.WarningFor, d.WarningFor, b.WarningFor)
	l.For[LevelCritical] = pick(z.CriticalFor, d.CriticalFor, b.CriticalFor)
	l.For[LevelEvacuate] = pick(z.EvacuateFor, d.EvacuateFor, b.EvacuateFor)
	for _, t := range []struct {
		name string
		v    [5]float64
	}{{"ratio", l.Ratio}, {"density", l.Density}} {
		last := 0.0
		for lv := LevelBusy; lv <= LevelEvacuate; lv++ {
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

// severity of each level as an alert.
func (l Level) severity() Severity {
	switch l {
	case LevelEvacuate:
		return SeverityEmergency
	case LevelCritical:
		return SeverityCritical
	case LevelWarning:
		return SeverityWarning
	}
	return SeverityInfo
}

// reached is how far a zone's figures go: the highest level whose ratio or density trigger
// they meet (the worse of the two counts), with scale applied to every trigger (1 to enter a
// level, ClearFactor to stay in it).
func (l *Limits) reached(ratio float64, density *float64, scale float64) Level {
	top := LevelNormal
	for lv := LevelBusy; lv <= LevelEvacuate; lv++ {
		if r := l.Ratio[lv]; r > 0 && ratio >= r*scale {
			top = lv
		}
		if d := l.Density[lv]; d > 0 && density != nil && *density >= d*scale {
			top = lv
		}
	}
	return top
}

// levelTracker applies hold-downs and hysteresis to one zone's level. A level is entered
// once the figures have stayed at or above its trigger for its hold-down; it is left once
// they have stayed below ClearFactor x its trigger for ClearAfter, and then drops to the
// highest level the figures still hold.
type levelTracker struct {
	Level Level `json:"level"`
	// Above[lv] is since when the figures have been at or above level lv's trigger.
	Above [5]time.Time `json:"above"`
	// Below is since when the figures have been under the current level's clear line.
	Below time.Time `json:"below"`
	// Since is when the current level was entered.
	Since time.Time `json:"since"`
	// Shown is the level the map, the screens, the API and the zone topic show: it rises the
	// moment the figures reach a trigger (no hold-down) and falls only once they are below
	// the clear line (ClearFactor x the trigger), with no time delay. Level is the paged
	// level, which waits out the hold-downs and ClearAfter.
	Shown Level `json:"shown"`
}

// step moves the tracker to now and returns the level.
func (t *levelTracker) step(l *Limits, ratio float64, density *float64, now time.Time) Level {
	enter := l.reached(ratio, density, 1)
	t.Shown = shownLevel(l, t.Shown, ratio, density)
	for lv := LevelBusy; lv <= LevelEvacuate; lv++ {
		switch {
		case lv > enter:
			t.Above[lv] = time.Time{}
		case t.Above[lv].IsZero():
			t.Above[lv] = now
		}
	}
	for lv := LevelEvacuate; lv > t.Level; lv-- {
		if !t.Above[lv].IsZero() && now.Sub(t.Above[lv]) >= l.For[lv] {
			t.Level, t.Since, t.Below = lv, now, time.Time{}
			return t.Level
		}
	}
	if t.Level == LevelNormal {
		return t.Level
	}
	hold := l.reached(ratio, density, l.ClearFactor)
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
func shownLevel(l *Limits, shown Level, ratio float64, density *float64) Level {
	enter := l.reached(ratio, density, 1)
	keep := l.reached(ratio, density, l.ClearFactor)
	return max(enter, min(shown, keep))
}

// pending is the level of an alert waiting out its hold-down: the highest level above the
// paged one whose trigger the figures have been at since Above[lv]; ok false when none.
func (t *levelTracker) pending() (lv Level, since time.Time, ok bool) {
	for lv := LevelEvacuate; lv > t.Level && lv >= LevelWarning; lv-- {
		if !t.Above[lv].IsZero() {
			return lv, t.Above[lv], true
		}
	}
	return LevelNormal, time.Time{}, false
}

// InstantLevel is a zone's level by the built-in thresholds alone, without hold-downs or
// hysteresis: the fallback of screens and history for a zone the alert manager has not
// evaluated yet.
func InstantLevel(ratio float64, density *float64) Level {
	l, _ := ResolveLimits(nil, nil)
	return l.reached(ratio, density, 1)
}
