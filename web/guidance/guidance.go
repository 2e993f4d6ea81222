// Package guidance decides what a guidance screen shows: welcome with the places left, busy
// with an arrow to the least loaded alternative, full with a red X, exit guidance during an
// evacuation, or the neutral "please follow staff instructions" when the figures cannot be
// trusted. The page, the MQTT publication and the tests all use these functions, so they agree.
package guidance

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
)

// State is what a screen shows.
type State string

const (
	Welcome  State = "welcome"  // green: come in, N places left
	Busy     State = "busy"     // amber: busy, please use the alternative ->
	Neutral  State = "neutral"  // grey: please follow staff instructions (data not trustworthy)
	Full     State = "full"     // red X: full, please wait
	Evacuate State = "evacuate" // exit guidance; overrides everything
)

// Rank orders states from the mildest to the most urgent. Moving up shows at once; moving
// down waits for the hold time.
func (s State) Rank() int {
	switch s {
	case Busy:
		return 1
	case Neutral:
		return 2
	case Full:
		return 3
	case Evacuate:
		return 4
	}
	return 0
}

// Text is one language's lines on a screen.
type Text struct {
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
}

// Guidance is what one screen shows, as the page, the MQTT topic and the tests see it.
type Guidance struct {
	Screen     string         `json:"screen"`
	Zone       string         `json:"zone"`
	State      State          `json:"state"`
	Level      alerting.Level `json:"level"`
	Occupancy  int64          `json:"occupancy"`
	Capacity   int            `json:"capacity"`
	PlacesLeft int64          `json:"places_left"`
	// Arrow and Target: where the screen points (the alternative when busy or full, the exit
	// during an evacuation); empty when it points nowhere.
	Arrow       string   `json:"arrow,omitempty"`
	Target      string   `json:"target,omitempty"`
	Languages   []string `json:"languages"`
	Orientation string   `json:"orientation"`
	// Text holds the lines in each of Languages, from the message catalogue.
	Text map[string]Text `json:"text"`
	// Since is when the screen entered its state; At is when this guidance was computed. A
	// screen or sign that has not seen a newer At within StaleAfterMS shows the neutral message.
	Since        time.Time `json:"since"`
	At           time.Time `json:"at"`
	StaleAfterMS int64     `json:"stale_after_ms"`
	// label is each pointed-to place's label per language, for rendering; acceptable lists
	// the alternatives people may be sent to now and alt the least loaded of them.
	label      map[string]string
	acceptable []string
	alt        pointer
}

// Reading is one zone's figures and the level they put it at.
type Reading struct {
	Zone      zones.ZoneState
	Level     alerting.Level
	Uncertain bool // a counter feeding the zone is down: the figure may be wrong
}

// Thresholds of DefaultLevel (occupancy ratio and persons per m²).
const (
	BusyRatio         = 0.6
	WarningRatio      = 0.85
	CriticalRatio     = 1.0
	WarningDensity    = 2.0
	CriticalDensity   = 3.5
	EvacuationDensity = 5.0
)

// DefaultLevel is a zone's level when no alerting is wired: busy at 60% of capacity, warning at
// 85% or 2 persons/m², critical at 100% or 3.5 persons/m², evacuate at 5 persons/m². The
// alerting package's levels (with hysteresis and hold-down) replace it when present.
func DefaultLevel(z zones.ZoneState) alerting.Level {
	return alerting.InstantLevel(z.Ratio, z.Density)
}

// Compute is the guidance for a screen from the readings now, before any hold: evacuation of
// the guarded zone overrides everything; an unknown or uncertain zone is neutral; then the
// zone's level decides (normal: welcome; busy or warning: busy; critical or evacuate: full).
// Busy and full point to the alternative with the lowest occupancy ratio among those below
// warning level; when there is none, busy shows no arrow.
func Compute(s configs.Screen, readings map[string]Reading, evacuating map[string]bool, now time.Time) Guidance {
	g := Guidance{Screen: s.ID, Zone: s.Zone, Languages: s.Languages, Orientation: s.Orientation, At: now, Since: now}
	if len(g.Languages) == 0 {
		g.Languages = []string{"zh", "en"}
	}
	if g.Orientation == "" {
		g.Orientation = "landscape"
	}
	r, ok := readings[s.Zone]
	if ok {
		g.Level, g.Occupancy, g.Capacity = r.Level, r.Zone.Occupancy, r.Zone.Capacity
		g.PlacesLeft = max(0, int64(r.Zone.Capacity)-r.Zone.Occupancy)
	}
	// The alternatives people may be sent to now, and the least loaded of them.
	best := -1
	var bestRatio float64
	for i, alt := range s.Alternatives {
		ar, found := readings[alt.Zone]
		if !found || ar.Uncertain || evacuating[alt.Zone] || ar.Level >= alerting.LevelWarning || (ok && ar.Zone.Ratio >= r.Zone.Ratio) {
			continue
		}
		g.acceptable = append(g.acceptable, alt.Zone)
		if best < 0 || ar.Zone.Ratio < bestRatio {
			best, bestRatio = i, ar.Zone.Ratio
		}
	}
	if best >= 0 {
		alt := s.Alternatives[best]
		g.alt = pointer{zone: alt.Zone, arrow: alt.Arrow, label: alt.Label}
		if g.alt.label == nil {
			name := readings[alt.Zone].Zone.Name
			if name == "" {
				name = alt.Zone
			}
			g.alt.label = map[string]string{"en": name, "zh": name}
		}
	}
	switch {
	case evacuating[s.Zone]:
		g.State = Evacuate
		g.point(pointer{zone: s.Exit.Zone, arrow: s.Exit.Arrow, label: s.Exit.Label})
	case !ok || r.Uncertain:
		g.State = Neutral
	case r.Level >= alerting.LevelCritical:
		g.State = Full
		g.point(g.alt)
	case r.Level >= alerting.LevelBusy:
		g.State = Busy
		g.point(g.alt)
	default:
		g.State = Welcome
	}
	return g
}

// pointer is a place a screen can point to.
type pointer struct {
	zone, arrow string
	label       map[string]string
}

func (g *Guidance) point(p pointer) {
	g.Target, g.Arrow, g.label = p.zone, p.arrow, p.label
}

func (g *Guidance) pointing() pointer { return pointer{zone: g.Target, arrow: g.Arrow, label: g.label} }

// accepts reports whether people may still be sent to zone ("" always).
func (g *Guidance) accepts(zone string) bool {
	return zone == "" || slices.Contains(g.acceptable, zone)
}

// Hold applies the minimum display time. A more urgent state (and evacuation) shows at once;
// a milder one only once the shown state has been up for hold. Meanwhile the screen keeps its
// state with fresh figures, and keeps pointing where it pointed while that place may still
// take people; a place that may not is never pointed to, held or not (the least loaded
// acceptable place, or none, replaces it at once). shown is the guidance on the screen now;
// ok is false for a screen that shows nothing yet.
func Hold(shown Guidance, ok bool, next Guidance, hold time.Duration) Guidance {
	if !ok || next.State.Rank() > shown.State.Rank() {
		return next
	}
	relaxed := next.At.Sub(shown.Since) >= hold
	if next.State == shown.State {
		next.Since = shown.Since
		if next.Target != shown.Target && !relaxed && shown.Target != "" && next.accepts(shown.Target) {
			next.point(shown.pointing()) // do not swap arrows back and forth
		}
		return next
	}
	if relaxed {
		return next
	}
	held := next
	held.State, held.Since = shown.State, shown.Since
	switch {
	case shown.State == Evacuate:
		held.point(shown.pointing()) // the exit
	case shown.State != Busy && shown.State != Full:
		held.point(pointer{})
	case shown.Target != "" && next.accepts(shown.Target):
		held.point(shown.pointing())
	default:
		held.point(next.alt)
	}
	return held
}

// Catalogue is the message catalogue: language -> key -> text with {placeholders}.
type Catalogue map[string]map[string]string

// Render fills g.Text for each of g's languages from the catalogue (English where a language
// lacks a key).
func Render(g *Guidance, cat Catalogue) {
	g.Text = make(map[string]Text, len(g.Languages))
	for _, lang := range g.Languages {
		t := func(key string) string {
			s, ok := cat[lang][key]
			if !ok {
				s = cat["en"][key]
			}
			target := g.label[lang]
			if target == "" {
				target = g.label["en"]
			}
			return strings.NewReplacer("{n}", strconv.FormatInt(g.PlacesLeft, 10), "{target}", target).Replace(s)
		}
		var tx Text
		tx.Title = t("sign." + string(g.State) + ".title")
		switch {
		case g.State == Welcome || g.State == Neutral:
			tx.Detail = t("sign." + string(g.State) + ".detail")
		case g.Target != "" || len(g.label) > 0:
			tx.Detail = t("sign." + string(g.State) + ".detail_target")
		default:
			tx.Detail = t("sign." + string(g.State) + ".detail")
		}
		g.Text[lang] = tx
	}
}

// NeutralFor is the neutral guidance a screen shows when its data is stale.
func NeutralFor(s configs.Screen, now time.Time) Guidance {
	g := Compute(s, nil, nil, now)
	return g
}
