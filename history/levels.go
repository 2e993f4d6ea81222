package history

import (
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Levels is where the recorder takes each zone's crowd level from: the alerting manager,
// whose levels have hysteresis and evacuations. It is declared here, in the words history
// needs, so that history does not depend on alerting: the service adapts the manager to it.
type Levels interface {
	// LevelView is the latest view of the zones' levels; nil when there is none yet.
	LevelView() LevelView
}

// LevelView is one moment's view of the zones' levels.
type LevelView interface {
	// AlertLevel is the zone's alert (paged) level; ok false for a zone the view does not know.
	AlertLevel(zone string) (lv levels.Level, ok bool)
}

// LevelFunc gives a zone's level from its state when no Levels source is wired, or when the
// source does not know the zone yet.
type LevelFunc func(z zones.ZoneState) levels.Level

// DefaultLevel is a zone's level by the built-in thresholds (levels.Instant): the higher of
// the level by occupancy ratio and the level by density.
func DefaultLevel(z zones.ZoneState) levels.Level {
	return levels.Instant(z.Ratio, z.Density)
}

// Band is the occupancy at which a zone enters a level, for charts.
type Band struct {
	Level     levels.Level `json:"level"`
	Occupancy float64      `json:"occupancy"`
}

// Bands are the triggers t in persons for a zone: for each level the lower of its ratio and
// density trigger; a level with neither is left out.
func Bands(t levels.Triggers, capacity int, areaM2 float64) []Band {
	var out []Band
	for l := levels.Busy; l <= levels.Evacuate; l++ {
		if occ, ok := t.Occupancy(l, capacity, areaM2); ok {
			out = append(out, Band{Level: l, Occupancy: occ})
		}
	}
	return out
}

// DefaultBands are DefaultLevel's thresholds in persons for a zone.
func DefaultBands(capacity int, areaM2 float64) []Band {
	return Bands(levels.Default(), capacity, areaM2)
}

// Events is where reports take alert history from: the alerting manager's stored events,
// adapted by the service (history does not depend on alerting).
type Events interface {
	AlertEvents(from, to time.Time) ([]AlertEvent, error)
}

// AlertEvent is one entry of the alert history, with the fields reports use.
type AlertEvent struct {
	At      time.Time
	AlertID string // "" for an evacuation event
	Kind    string // alert kind: level, surge, ...
	Zone    string
	// What happened: fired, acknowledged, resolved, ..., evacuation_declared,
	// evacuation_recommended, evacuation_stood_down.
	What     string
	Severity string
	Level    levels.Level
	By       string
	Note     string
}
