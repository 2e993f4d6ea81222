package guidance

import (
	"strconv"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

// Admission is what a metered entrance says now (door.Meter computes it): "enter" while
// the meter has released places that nobody has taken yet and no zone on the path is at its
// limit, else "wait". The same signal goes on the screen and, inside the guidance, on the
// retained guidance topic, so a gate or a light can follow it.
type Admission struct {
	Door  string `json:"door"`
	State State  `json:"state"` // Enter or Wait
	// Mode is "rate" (below the limit: the queue is released at RatePerMin) or
	// "one_out_one_in" (a zone on the path reached its limit: one admitted per one who left).
	Mode       string  `json:"mode"`
	RatePerMin float64 `json:"rate_per_min"`
	// Reason says why it waits: "limit" (a zone on the path is at its limit), "paced" (the
	// next release is not due yet), "stale" (the figures cannot be trusted).
	Reason string `json:"reason,omitempty"`
	// Granted counts the admissions released since metering began, Allowance those not
	// taken yet: a gate lets one person through per grant it has not seen pass.
	Granted   uint64 `json:"granted"`
	Allowance int    `json:"allowance"`
	// Queue is the queue counted outside (nil: not counted) and WaitSeconds the expected
	// wait at the back of it (queue / admission rate; nil when unknown).
	Queue        *int64    `json:"queue,omitempty"`
	WaitSeconds  *float64  `json:"wait_seconds,omitempty"`
	LimitingZone string    `json:"limiting_zone,omitempty"`
	At           time.Time `json:"at"`
}

// ApplyDrill marks a screen DRILL when a zone it guards is being drilled, pointing to its
// exit like an evacuation would. A real evacuation (State Evacuate) is never touched: it
// overrides a drill.
func ApplyDrill(g *Guidance, s configs.Screen, drilling map[string]bool) {
	if g.State == Evacuate {
		return
	}
	for _, z := range g.Guards {
		if drilling[z] {
			g.State = Drill
			g.point(pointer{zone: s.Exit.Zone, arrow: s.Exit.Arrow, label: s.Exit.Label})
			return
		}
	}
}

// detailKey is the catalogue key of a metered screen's second line.
func detailKey(g *Guidance) string {
	a := g.Admission
	switch {
	case g.State == Enter:
		return "sign.enter.detail"
	case a != nil && a.Reason == "stale":
		return "sign.wait.detail_stale"
	case a != nil && a.Reason == "closed":
		return "sign.wait.detail_closed"
	case a != nil && a.Mode == "one_out_one_in":
		return "sign.wait.detail_full"
	case a != nil && a.WaitSeconds != nil:
		return "sign.wait.detail_queue"
	}
	return "sign.wait.detail"
}

// ApplyAdmission puts a metered door's signal on its screen, after Hold (the alternation
// of enter and wait is the meter's pacing, not flicker). It never makes a screen more
// reassuring than it was: exit guidance (evacuation, drill) is left alone and carries no
// admission; a neutral screen (figures not trusted) and a full one say wait whatever the
// meter says; an admission older than staleAfter says wait. Unmetered undoes it.
func ApplyAdmission(g *Guidance, a Admission, now time.Time, staleAfter time.Duration) {
	if g.State == Evacuate || g.State == Drill {
		return
	}
	if staleAfter > 0 && now.Sub(a.At) > staleAfter {
		a.State, a.Reason, a.Allowance = Wait, "stale", 0
	}
	switch g.State {
	case Neutral:
		a.State, a.Reason, a.Allowance = Wait, "stale", 0
	case Full:
		if a.State == Enter {
			a.State, a.Reason, a.Allowance = Wait, "limit", 0
		}
	}
	if a.State != Enter {
		a.State, a.Allowance = Wait, 0
	}
	g.unmetered = g.State
	g.State = a.State
	g.Admission = &a
	if g.State == Enter {
		g.point(pointer{}) // straight in
	}
}

// Unmetered is g as it was before ApplyAdmission: what Hold compares the next guidance with.
func Unmetered(g Guidance) Guidance {
	if g.unmetered != "" {
		g.State, g.unmetered, g.Admission = g.unmetered, "", nil
	}
	return g
}

// waitText is the expected wait for the catalogue's {wait} (whole minutes, at least 1).
func waitText(a *Admission) string {
	if a == nil || a.WaitSeconds == nil {
		return ""
	}
	return strconv.Itoa(max(1, int((*a.WaitSeconds+59)/60)))
}
