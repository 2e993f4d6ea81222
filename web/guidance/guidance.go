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

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/levels"
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
	// Metered entrances and drills (web/guidance/door.go).
	Enter State = "enter" // green: metered door, please enter now
	Wait  State = "wait"  // amber: metered door, please wait (with the expected wait)
	Drill State = "drill" // exit guidance marked DRILL; a real evacuation overrides it
)

// Rank orders states from the mildest to the most urgent. Moving up shows at once; moving
// down waits for the hold time.
func (s State) Rank() int {
	switch s {
	case Busy:
		return 1
	case Neutral:
		return 2
	case Full, Wait:
		return 3
	case Drill:
		return 4
	case Evacuate:
		return 5
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
	Screen     string       `json:"screen"`
	Zone       string       `json:"zone"`
	State      State        `json:"state"`
	Level      levels.Level `json:"level"`
	Occupancy  int64        `json:"occupancy"`
	Capacity   int          `json:"capacity"`
	PlacesLeft int64        `json:"places_left"`
	// Guards are the zones a person passing the screen enters (its zone first); Level,
	// Occupancy and Capacity are LimitingZone's, the one that decided the state (the worst
	// level, then the fewest places left); PlacesLeft is the smallest of the guarded zones'.
	Guards       []string `json:"guards"`
	LimitingZone string   `json:"limiting_zone,omitempty"`
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
	// Admission is a metered entrance's signal (web/guidance/door.go), for a gate or a light
	// to follow; nil when the screen's door is not metered now.
	Admission *Admission `json:"admission,omitempty"`
	// unmetered is the state before the admission applied (what Hold works on).
	unmetered State
	// label is each pointed-to place's label per language, for rendering; acceptable lists
	// the alternatives people may be sent to now and alt the least loaded of them.
	label      map[string]string
	acceptable []string
	alt        pointer
}

// Reading is one zone's figures and the level they put it at: the shown level
// (alerting.Status.Show), which rises the moment a figure crosses a trigger.
type Reading struct {
	Zone      zones.ZoneState
	Level     levels.Level
	Uncertain bool // a counter feeding the zone is down: the figure may be wrong
}

// Route is what a screen guards and where its alternatives lead, from the store's layout:
// Guards are the zones a person passing the screen enters (every zone the crossing of its
// door adds to: its zone and each enclosing zone the person was not in yet), and
// Alternatives[i] the zones the route through s.Alternatives[i] adds to.
type Route struct {
	Guards       []string
	Alternatives [][]string
}

// RouteFor works out s's route in the store m. A screen (or an alternative) that names its
// door guards what that door's crossing into its zone adds to; without a door, what the
// doors from outside or from the zone's parent into it add to; a zone that no such door
// leads into, the doors from anywhere else (a sibling: an escalator from the floor below);
// a zone without doors counts with every enclosing zone (the most a person can be entering).
func RouteFor(s configs.Screen, m *zones.Model) Route {
	r := Route{Guards: entered(m, s.Zone, s.Door)}
	for _, a := range s.Alternatives {
		r.Alternatives = append(r.Alternatives, entered(m, a.Zone, a.Door))
	}
	return r
}

// entered lists the zones a person entering zone through door (any door from outside or
// from the parent when door is "") is added to, zone first.
func entered(m *zones.Model, zone, door string) []string {
	zi, ok := m.Zone(zone)
	if !ok {
		return []string{zone}
	}
	parent := m.Zones[zi].Parent
	if parent == "" {
		parent = configs.Outside
	}
	set := map[int]bool{zi: true}
	found := false
	// any: also doors from elsewhere (a sibling), when no door leads in from outside or the parent.
	pass := func(any bool) {
		for _, d := range m.Doors {
			var adds []int
			switch {
			case door != "" && d.ID != door:
				continue
			case slices.Contains(d.Gain, zi) && (any || door != "" || d.From == parent || d.From == configs.Outside):
				adds = d.Gain // an "in" crossing enters zone
			case slices.Contains(d.Lose, zi) && (any || door != "" || d.To == parent || d.To == configs.Outside):
				adds = d.Lose // an "out" crossing enters zone
			default:
				continue
			}
			found = true
			for _, z := range adds {
				set[z] = true
			}
		}
	}
	pass(false)
	if !found {
		pass(true)
	}
	if !found {
		for _, z := range m.Zones[zi].Ancestors {
			set[z] = true
		}
	}
	out := []string{zone}
	for _, z := range m.Zones[zi].Ancestors { // zone, then outwards
		if set[z] && z != zi {
			out = append(out, m.Zones[z].ID)
		}
	}
	return out
}

// Compute is the guidance for a screen from the readings now, before any hold. A screen
// guards every zone in route.Guards (just s.Zone when empty): an evacuation of any of them
// turns it to exit guidance; then the worst of their shown levels decides (critical or
// evacuate: full; busy or warning: busy; normal: welcome), except that a zone without
// trustworthy figures (unknown or uncertain) makes it neutral unless another is already
// critical or full (no places left, whatever its thresholds say). Places left is the smallest of theirs; LimitingZone is the zone that decided.
// Busy and full point to an alternative only when it and every zone its route adds to are
// below busy, certain and not being evacuated (the least loaded of those); otherwise no arrow.
func Compute(s configs.Screen, route Route, readings map[string]Reading, evacuating map[string]bool, now time.Time) Guidance {
	g := Guidance{Screen: s.ID, Zone: s.Zone, Languages: s.Languages, Orientation: s.Orientation, At: now, Since: now}
	if len(g.Languages) == 0 {
		g.Languages = []string{"zh", "en"}
	}
	if g.Orientation == "" {
		g.Orientation = "landscape"
	}
	guards := route.Guards
	if len(guards) == 0 {
		guards = []string{s.Zone}
	}
	g.Guards = guards
	untrusted, evac := false, false
	limitLeft := int64(-1)
	for _, z := range guards {
		evac = evac || evacuating[z]
		r, ok := readings[z]
		if !ok {
			untrusted = true
			continue
		}
		untrusted = untrusted || r.Uncertain
		left := max(0, int64(r.Zone.Capacity)-r.Zone.Occupancy)
		if limitLeft < 0 || left < g.PlacesLeft {
			g.PlacesLeft = left
		}
		// The zone that decides: the worst level, then the fewest places left.
		if limitLeft < 0 || r.Level > g.Level || (r.Level == g.Level && left < limitLeft) {
			g.LimitingZone, g.Level, g.Occupancy, g.Capacity, limitLeft = z, r.Level, r.Zone.Occupancy, r.Zone.Capacity, left
		}
	}
	// The alternatives people may be sent to now, and the least loaded of them.
	best := -1
	var bestRatio float64
	for i, alt := range s.Alternatives {
		path := []string{alt.Zone}
		if i < len(route.Alternatives) && len(route.Alternatives[i]) > 0 {
			path = route.Alternatives[i]
		}
		ratio, fine := 0.0, true
		for _, z := range path {
			ar, found := readings[z]
			// At or over capacity is never acceptable, whatever the zone's thresholds say.
			if !found || ar.Uncertain || evacuating[z] || ar.Level >= levels.Busy || ar.Zone.Occupancy >= int64(ar.Zone.Capacity) {
				fine = false
				break
			}
			ratio = max(ratio, ar.Zone.Ratio)
		}
		if !fine {
			continue
		}
		g.acceptable = append(g.acceptable, alt.Zone)
		if best < 0 || ratio < bestRatio {
			best, bestRatio = i, ratio
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
	case evac:
		g.State = Evacuate
		g.point(pointer{zone: s.Exit.Zone, arrow: s.Exit.Arrow, label: s.Exit.Label})
	case limitLeft >= 0 && (g.Level >= levels.Critical || g.PlacesLeft == 0):
		g.State = Full
		g.point(g.alt)
	case limitLeft < 0 || untrusted:
		g.State = Neutral
	case g.Level >= levels.Busy:
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
	case shown.State == Evacuate || shown.State == Drill:
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
			return strings.NewReplacer("{n}", strconv.FormatInt(g.PlacesLeft, 10), "{target}", target, "{wait}", waitText(g.Admission)).Replace(s)
		}
		var tx Text
		tx.Title = t("sign." + string(g.State) + ".title")
		switch {
		case g.State == Enter || g.State == Wait:
			tx.Detail = t(detailKey(g))
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
	g := Compute(s, Route{}, nil, nil, now)
	return g
}
