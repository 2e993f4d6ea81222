package configs

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// EventDay holds the settings of promotion-day operation at the door (docs/events.md):
// the opening alert, evacuation drills and the announcements for a PA gateway. Every value
// has a default; the store file's `event_day:` changes them.
type EventDay struct {
	// OpeningWindow is how long before a plan's doors_open the queue outside is watched
	// (30 min by default).
	OpeningWindow time.Duration `mapstructure:"opening_window"`
	// OpeningAbsorb is N: the queue outside must fit through the metered entrances, at
	// their rates, within the first N of opening (10 min), or security is alerted.
	OpeningAbsorb time.Duration `mapstructure:"opening_absorb"`
	// DrillEmptyAt: a drilled zone counts as empty once its occupancy is at or below this
	// many people (2 by default: door counters drift by a person or two over a morning).
	DrillEmptyAt int `mapstructure:"drill_empty_at"`
	// DrillMax ends a drill that has not emptied every zone after this long (30 min).
	DrillMax time.Duration `mapstructure:"drill_max"`
	// Announcements are the PA templates: state (busy, full, metering, evacuation, drill)
	// -> language -> text with {zone} (the zone's name) and {wait} (minutes). A state or a
	// language not given keeps the built-in text.
	Announcements map[string]map[string]string `mapstructure:"announcements"`
	// AnnounceRepeat is the least time between two automatic announcements of the same
	// state in a zone (2 min): busy, full and metering are not repeated more often, however
	// often the state comes and goes; evacuation and drill always go out at once.
	AnnounceRepeat time.Duration `mapstructure:"announce_repeat"`
}

// AnnouncementStates are the zone states the PA templates are written for.
var AnnouncementStates = []string{"busy", "full", "metering", "evacuation", "drill"}

func init() {
	AlertKinds = append(AlertKinds, "drill", "opening_queue", "doors_open")
	for k, v := range map[string]any{
		"event_day.opening_window":  "30m",
		"event_day.opening_absorb":  "10m",
		"event_day.drill_empty_at":  2,
		"event_day.drill_max":       "30m",
		"event_day.announce_repeat": "2m",
	} {
		defaults[k] = v
	}
}

// validateEventDay checks event_day.
func (c *Config) validateEventDay(bad func(key, format string, args ...any)) {
	e := &c.EventDay
	if e.OpeningWindow < time.Minute || e.OpeningWindow > 6*time.Hour {
		bad("event_day.opening_window", "%v must be between 1m and 6h", e.OpeningWindow)
	}
	if e.OpeningAbsorb < time.Minute || e.OpeningAbsorb > 2*time.Hour {
		bad("event_day.opening_absorb", "%v must be between 1m and 2h", e.OpeningAbsorb)
	}
	if e.DrillEmptyAt < 0 || e.DrillEmptyAt > 50 {
		bad("event_day.drill_empty_at", "%d must be between 0 and 50 people", e.DrillEmptyAt)
	}
	if e.DrillMax < time.Minute || e.DrillMax > 4*time.Hour {
		bad("event_day.drill_max", "%v must be between 1m and 4h", e.DrillMax)
	}
	if e.AnnounceRepeat < 10*time.Second || e.AnnounceRepeat > time.Hour {
		bad("event_day.announce_repeat", "%v must be between 10s and 1h", e.AnnounceRepeat)
	}
	for _, state := range slices.Sorted(maps.Keys(e.Announcements)) {
		if !slices.Contains(AnnouncementStates, state) {
			bad("event_day.announcements."+state, "unknown state %q: write one of %v", state, AnnouncementStates)
			continue
		}
		for _, lang := range slices.Sorted(maps.Keys(e.Announcements[state])) {
			key := fmt.Sprintf("event_day.announcements.%s.%s", state, lang)
			if !slices.Contains(Languages, lang) {
				bad(key, "unknown language %q: write one of %v", lang, Languages)
			} else if t := e.Announcements[state][lang]; len(t) == 0 || len(t) > 500 {
				bad(key, "the text must be 1 to 500 characters")
			}
		}
	}
}
