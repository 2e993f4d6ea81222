package history

import (
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Levels is where the recorder takes each zone's crowd level from: the alerting manager once
// it is wired (its levels have hysteresis and evacuations). Status may return nil.
type Levels interface {
	Status() *alerting.Status
}

// LevelFunc gives a zone's level from its state when no Levels source is wired, or when the
// source does not know the zone yet.
type LevelFunc func(z zones.ZoneState) levels.Level

// Default thresholds of DefaultLevel. They match the alerting issue's documented defaults so
// that history recorded before alerting is wired reads the same way.
const (
	BusyRatio       = 0.6
	WarningRatio    = 0.85
	CriticalRatio   = 1.0
	WarningDensity  = 2.0 // persons per m²
	CriticalDensity = 3.5
	EvacuateDensity = 5.0
)

// DefaultLevel is the higher of the level by occupancy ratio (busy 0.6, warning 0.85,
// critical 1.0) and the level by density (warning 2, critical 3.5, evacuate 5 persons/m²).
func DefaultLevel(z zones.ZoneState) levels.Level {
	return levels.Instant(z.Ratio, z.Density)
}

// Band is the occupancy at which a zone enters a level, for charts.
type Band struct {
	Level     levels.Level `json:"level"`
	Occupancy float64      `json:"occupancy"`
}

// DefaultBands are DefaultLevel's thresholds in persons for a zone: the lower of the ratio
// and density thresholds for each level.
func DefaultBands(capacity int, areaM2 float64) []Band {
	byRatio := map[levels.Level]float64{levels.Busy: BusyRatio, levels.Warning: WarningRatio, levels.Critical: CriticalRatio}
	byDensity := map[levels.Level]float64{levels.Warning: WarningDensity, levels.Critical: CriticalDensity, levels.Evacuate: EvacuateDensity}
	var out []Band
	for l := levels.Busy; l <= levels.Evacuate; l++ {
		occ, ok := 0.0, false
		if r, has := byRatio[l]; has && capacity > 0 {
			occ, ok = r*float64(capacity), true
		}
		if d, has := byDensity[l]; has && areaM2 > 0 {
			if v := d * areaM2; !ok || v < occ {
				occ, ok = v, true
			}
		}
		if ok {
			out = append(out, Band{Level: l, Occupancy: occ})
		}
	}
	return out
}

// Events is where reports take alert history from: the alerting manager's stored events.
type Events interface {
	Events(from, to time.Time) ([]alerting.Event, error)
}
